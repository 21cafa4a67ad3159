import {
  type BeforeApplicationShutdown,
  type DynamicModule,
  Inject,
  Logger,
  Module,
  type OnApplicationBootstrap,
  type Provider,
} from '@nestjs/common';
import { type ConfigType } from '@nestjs/config';
import { getConnectionToken } from '@nestjs/mongoose';
import { type Connection } from 'mongoose';
import { relationConfig } from '../config/config.module.js';
import { finishAbandoned, logFinished, ReferencesMany, removePulled } from './references-many.js';
import { type ReferencesManyDefinition, relationToken } from './references-many.definition.js';

/** How often the sweeper removes what deletions have marked and pulled. */
const REMOVE_EVERY_MS = 1_000;
/** How often it also looks for deletions that a killed process left half done, and how old those must be. */
const ABANDONED_EVERY = 30;
const ABANDONED_AFTER_MS = 10_000;

/**
 * Finishes the deletions of a relation's targets (references-many.ts, "Deleting a target"):
 * every one a killed process left half done, before the service takes requests; then, while it
 * runs, the removal of marked targets in batches, and now and then a look for abandoned ones
 * (another instance may have been killed).
 */
class DeletionSweeper implements OnApplicationBootstrap, BeforeApplicationShutdown {
  private readonly logger = new Logger('Deletion');
  private timer?: NodeJS.Timeout;
  private running?: Promise<void>;
  private ticks = 0;

  constructor(private readonly relation: ReferencesMany) {}

  async onApplicationBootstrap(): Promise<void> {
    logFinished(await finishAbandoned(this.relation.targets), this.relation.definition.target);
    this.timer = setInterval(() => {
      this.running ??= this.sweep().finally(() => (this.running = undefined));
    }, REMOVE_EVERY_MS).unref();
  }

  async beforeApplicationShutdown(): Promise<void> {
    clearInterval(this.timer);
    await this.running;
    await removePulled(this.relation.targets).catch(() => undefined);
  }

  private async sweep(): Promise<void> {
    try {
      await removePulled(this.relation.targets);
      this.ticks += 1;
      if (this.ticks % ABANDONED_EVERY === 0) {
        const count = await finishAbandoned(this.relation.targets, new Date(Date.now() - ABANDONED_AFTER_MS));
        logFinished(count, this.relation.definition.target);
      }
    } catch (error) {
      // The database may be away for a while; the next sweep tries again.
      this.logger.warn(`Sweep failed: ${(error as Error).message}`);
    }
  }
}

/**
 * `ReferencesManyModule.register(definition)` provides the relation as `ReferencesMany`,
 * injected with `@InjectRelation(definition.name)`, and keeps its targets' deletions finished.
 * The models themselves are registered by their feature modules; the target's schema applies
 * `referencesManyTarget`.
 */
@Module({})
export class ReferencesManyModule {
  static register(definition: ReferencesManyDefinition): DynamicModule {
    const token = relationToken(definition.name);
    const providers: Provider[] = [
      {
        provide: token,
        inject: [getConnectionToken(), relationConfig.KEY],
        useFactory: (connection: Connection, config: ConfigType<typeof relationConfig>) =>
          new ReferencesMany(definition, connection, definition.maxSize(config)),
      },
      { provide: DeletionSweeper, inject: [token], useFactory: (relation: ReferencesMany) => new DeletionSweeper(relation) },
    ];
    return { module: ReferencesManyModule, providers, exports: [token] };
  }
}

/** Injects the `ReferencesMany` registered under `name`. */
export function InjectRelation(name: string): ParameterDecorator {
  return Inject(relationToken(name));
}

import { type CommandStartedEvent, type MongoClient } from 'mongodb';

/** A command as the driver put it on the wire. */
export interface SentCommand {
  /** The command's name: `find`, `update`, `delete`, `findAndModify`, `aggregate`… */
  name: string;
  /** The collection it names, for the commands that name one. */
  collection?: string;
  database: string;
  body: Record<string, unknown>;
}

/** Commands sent for the engine's own bookkeeping, not for a request's data. */
const HOUSEKEEPING = new Set(['hello', 'ismaster', 'isMaster', 'ping', 'endSessions', 'buildInfo', 'saslStart', 'saslContinue']);

/**
 * Records the commands a MongoClient sends, through the driver's command monitoring (the
 * client must have been created with `monitorCommands: true`, as the service's is while its
 * metrics are on). What the service sends is then judged from the outside, on the wire.
 */
export class CommandRecorder {
  private recorded: SentCommand[] = [];
  private readonly listener = (event: CommandStartedEvent) => {
    if (HOUSEKEEPING.has(event.commandName)) return;
    const body = event.command as Record<string, unknown>;
    const target = body[event.commandName];
    this.recorded.push({
      name: event.commandName,
      collection: typeof target === 'string' ? target : undefined,
      database: event.databaseName,
      body,
    });
  };

  constructor(private readonly client: MongoClient) {
    client.on('commandStarted', this.listener);
  }

  /** Everything recorded since the start or the last `clear`. */
  get sent(): readonly SentCommand[] {
    return this.recorded;
  }

  /** The recorded commands of one name, on one collection when given. */
  named(name: string, collection?: string): SentCommand[] {
    return this.recorded.filter((command) => command.name === name && (collection === undefined || command.collection === collection));
  }

  clear(): void {
    this.recorded = [];
  }

  stop(): void {
    this.client.off('commandStarted', this.listener);
  }
}

/** The statements of an `update` or `delete` command (`updates`/`deletes`), each with its filter `q`. */
export function statementsOf(command: SentCommand): Array<Record<string, unknown> & { q: Record<string, unknown> }> {
  const statements = command.body.updates ?? command.body.deletes ?? [];
  return statements as Array<Record<string, unknown> & { q: Record<string, unknown> }>;
}

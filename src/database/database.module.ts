import { Inject, Injectable, Logger, Module, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import { type ConfigType } from '@nestjs/config';
import { InjectConnection, MongooseModule } from '@nestjs/mongoose';
import { type Connection, type Schema } from 'mongoose';
import { timeLimit } from '../common/schema/time-limit.js';
import { databaseConfig, metricsConfig } from '../config/config.module.js';
import { type DatabaseEngine } from './database-engine.js';
import { resolveDatabase } from './resolve-database.js';

export const DATABASE_ENGINE = Symbol('DATABASE_ENGINE');

const logger = new Logger('Database');

@Module({
  providers: [
    {
      provide: DATABASE_ENGINE,
      inject: [databaseConfig.KEY],
      useFactory: (config: ConfigType<typeof databaseConfig>) =>
        resolveDatabase({ uri: config.uri, dataDir: config.dataDir, log: (message) => logger.log(message) }),
    },
  ],
  exports: [DATABASE_ENGINE],
})
class DatabaseEngineModule {}

/** Owns the lifetime of the database: indexes ready before the first request, engine stopped last. */
@Injectable()
class DatabaseLifecycle implements OnApplicationBootstrap, OnApplicationShutdown {
  constructor(
    @Inject(DATABASE_ENGINE) private readonly engine: DatabaseEngine,
    @InjectConnection() private readonly connection: Connection,
  ) {}

  /**
   * Unique indexes are what turn a duplicate `myId` into a 409; Mongoose builds them in the
   * background, so the service waits for them rather than racing its first requests.
   */
  async onApplicationBootstrap(): Promise<void> {
    await Promise.all(Object.values(this.connection.models).map((model) => model.init()));
  }

  /** The connection closes before the engine it talks to stops. */
  async onApplicationShutdown(): Promise<void> {
    await this.connection.close();
    await this.engine.stop();
  }
}

/**
 * `maxTimeMS` on every query, aggregate and write the models send: the connection option covers
 * finds, counts, distinct, findOneAndUpdate and aggregates; updates and deletes get it from
 * limitWrites. Engines that do not honour it (mongo-java-server) ignore it.
 */
function limitEveryOperation(connection: Connection, timeoutMs: number): Connection {
  connection.set('maxTimeMS', timeoutMs);
  connection.plugin(limitWrites);
  return connection;
}

/**
 * Updates and deletes carry the limit of the connection their model belongs to, read as they are
 * sent. Mongoose applies connection plugins to a schema once, for the first connection that
 * compiles a model of it, and a schema is shared by every connection in the process: a limit
 * captured here would be that first connection's for all of them (bug: the updates and deletes
 * of a second application in one process carried the first one's DB_TIMEOUT_MS).
 */
function limitWrites(schema: Schema): void {
  schema.pre(['updateOne', 'updateMany', 'replaceOne', 'deleteOne', 'deleteMany'], { document: false, query: true }, function () {
    const { maxTimeMS } = timeLimit(this.model);
    if (this.getOptions().maxTimeMS === undefined && maxTimeMS !== undefined) this.maxTimeMS(maxTimeMS);
  });
}

@Module({
  imports: [
    DatabaseEngineModule,
    MongooseModule.forRootAsync({
      imports: [DatabaseEngineModule],
      inject: [DATABASE_ENGINE, databaseConfig.KEY, metricsConfig.KEY],
      useFactory: (engine: DatabaseEngine, config: ConfigType<typeof databaseConfig>, metrics: ConfigType<typeof metricsConfig>) => ({
        uri: engine.uri,
        // Every operation carries a server-side time limit, so no request leaves work running in
        // the database after it has been answered (DESIGN.md, Invariant 4); the socket timeout is
        // the last line when the server does not answer at all.
        connectionFactory: (connection: Connection) => limitEveryOperation(connection, config.timeoutMs),
        socketTimeoutMS: 2 * config.timeoutMs,
        // Command durations for /metrics (src/metrics); off, the driver builds no events.
        monitorCommands: metrics.mode !== 'off',
        // A request that needs an unavailable database fails within DB_TIMEOUT_MS (503)
        // instead of waiting for it, whether the driver is selecting a server or Mongoose
        // is buffering the operation until it reconnects.
        serverSelectionTimeoutMS: config.timeoutMs,
        connectTimeoutMS: config.timeoutMs,
        bufferTimeoutMS: config.timeoutMs,
        // Notice an outage (and the recovery) within a second rather than the default ten.
        heartbeatFrequencyMS: 1_000,
        // Fail start-up at once with a clear message; after start-up the driver reconnects by itself.
        retryAttempts: 0,
      }),
    }),
  ],
  providers: [DatabaseLifecycle],
  exports: [DatabaseEngineModule],
})
export class DatabaseModule {}

import 'reflect-metadata';
import { existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { type NestFastifyApplication } from '@nestjs/platform-fastify';
import { type Logger } from 'pino';
import { type Configuration, loadConfiguration } from './config/configuration.js';
import { DatabaseUnavailableError } from './database/database-engine.js';
import { startResolvingDatabase } from './database/resolve-database.js';
import { createLogger } from './logging/logger.js';
import { PinoNestLogger } from './logging/pino-nest.logger.js';

/** The service's log, once there is one: flushed before the line that says why a start failed. */
let log: Logger | undefined;

async function bootstrap(config: Configuration): Promise<void> {
  // Before anything starts (an embedded engine takes seconds): a busy port fails at once.
  await assertCanListen(config.http.host, config.http.port);
  // The logger exists before the application, so each start-up step (the database engine
  // fetched and started, the modules, the routes) is logged when it happens, not after.
  log = createLogger(config.logging);
  const logger = new PinoNestLogger(log);
  logger.log(`Starting refmany on Node.js ${process.version} (pid ${process.pid})`, 'Bootstrap');
  // An embedded engine boots while the application's modules load (both take seconds); the
  // database module is handed the engine this starts.
  const { uri, dataDir } = config.database;
  await startResolvingDatabase({ uri, dataDir, log: (message) => logger.log(message, 'Database') });
  const [{ NestFactory }, { AppModule }, { configureApp, createAdapter }] = await Promise.all([
    import('@nestjs/core'),
    import('./app.module.js'),
    import('./app.setup.js'),
  ]);
  logger.log(`Modules loaded, ${seconds()} after the process started`, 'Bootstrap');
  const adapter = createAdapter(config.http, config.logging, log);
  // A failure to start is reported by the one line in the catch below, not Nest's stack trace.
  logger.holdErrorsUntilStarted();
  const app = await NestFactory.create<NestFastifyApplication>(AppModule, adapter, { logger, abortOnError: false });
  logger.started();
  await configureApp(app, config.http);
  shutDownOn(['SIGTERM', 'SIGINT'], app, logger, config.http.shutdownTimeoutMs);
  const { host, port } = config.http;
  await app.listen(port, host);
  logger.log(
    `Listening on http://${host}:${port}/api (Swagger UI at http://${host}:${port}/docs), ${seconds()} after the process started`,
    'Bootstrap',
  );
}

/** Time since the process started (performance's time origin). */
function seconds(): string {
  return `${(performance.now() / 1000).toFixed(1)} s`;
}

function assertCanListen(host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(port, host, () => probe.close(() => resolve()));
  });
}

/**
 * Graceful shutdown: stop accepting connections, let the requests in flight finish, close the
 * database connection, stop the embedded engine, exit 0. Past `timeoutMs` it exits 1 anyway;
 * a second signal does not interrupt the first shutdown.
 */
function shutDownOn(signals: NodeJS.Signals[], app: NestFastifyApplication, logger: PinoNestLogger, timeoutMs: number): void {
  let closing = false;
  const shutDown = (signal: NodeJS.Signals) => {
    if (closing) return;
    closing = true;
    logger.log(`${signal}: finishing requests in flight, then stopping (at most ${timeoutMs} ms)`, 'Shutdown');
    setTimeout(() => {
      logger.error(`Shutdown took longer than ${timeoutMs} ms; exiting anyway`, undefined, 'Shutdown');
      process.exit(1);
    }, timeoutMs).unref();
    app.close().then(
      () => process.exit(0),
      (error: unknown) => {
        logger.error(error, undefined, 'Shutdown');
        process.exit(1);
      },
    );
  };
  for (const signal of signals) process.on(signal, shutDown);
}

/** One line that says what went wrong and what to do about it. */
function describeStartupError(error: unknown, config?: Configuration): string {
  const { code, message = String(error), name } = (error ?? {}) as { code?: string; message?: string; name?: string };
  if (code === 'EADDRINUSE')
    return `port ${config?.http.port} on ${config?.http.host} is already in use: stop what is using it, or set PORT to another port`;
  if (code === 'EACCES') return `no permission to listen on port ${config?.http.port}: set PORT to a port above 1023`;
  if (code === 'EADDRNOTAVAIL' || code === 'ENOTFOUND')
    return `cannot listen on HOST ${config?.http.host}: set HOST to an address of this machine`;
  if (error instanceof DatabaseUnavailableError) return message;
  if (/ServerSelection|MongoNetwork|MongoParse|MongoAPIError/.test(name ?? '') || /ECONNREFUSED|getaddrinfo/.test(message)) {
    return `cannot reach the database at MONGODB_URI within ${config?.database.timeoutMs} ms (${message.split('\n')[0]}): check MONGODB_URI and that MongoDB is running`;
  }
  return message.split('\n')[0];
}

let config: Configuration | undefined;
try {
  // .env as @nestjs/config reads it for the application (a variable already set wins), so the
  // configuration read here is the one the application gets.
  if (existsSync('.env')) process.loadEnvFile('.env');
  config = loadConfiguration();
  await bootstrap(config);
} catch (error) {
  await new Promise<void>((resolve) => (log ? log.flush(() => resolve()) : resolve()));
  console.error(`refmany could not start: ${describeStartupError(error, config)}`);
  process.exit(1);
}

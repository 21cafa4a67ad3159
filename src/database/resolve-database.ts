import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { type DatabaseEngine, type DatabaseEngineOptions, DatabaseUnavailableError } from './database-engine.js';
import { installMongoJavaServer, MONGO_JAVA_SERVER_VERSION, startMongoJavaServer } from './mongo-java-server.js';
import { findMongod, startMongod } from './mongod.js';

const DATABASE_NAME = 'refmany';

/** Resolutions started ahead of the module that asks for them, by their options. */
const early = new Map<string, Promise<DatabaseEngine>>();
const keyOf = ({ uri, dataDir, port }: DatabaseEngineOptions) => JSON.stringify([uri, dataDir, port]);

/**
 * Starts resolving the database now; the next `resolveDatabase` with the same options gets this
 * resolution instead of starting another. Resolves once the quick checks are done and the engine
 * chosen is being started (or nothing is to be started): the bootstrap then loads the application
 * while the engine boots, each on a core of its own. Loading the modules first would hold up the
 * checks, which need the event loop the loading keeps busy.
 */
export function startResolvingDatabase(options: DatabaseEngineOptions): Promise<void> {
  return new Promise((starting) => {
    const resolution = resolveNow(options, () => starting());
    // Reported by whoever takes it; a start that fails before that exits anyway.
    resolution.then(
      () => starting(),
      () => starting(),
    );
    early.set(keyOf(options), resolution);
  });
}

/**
 * Resolves the database in the order DESIGN.md gives: MONGODB_URI, an embedded mongod through
 * mongodb-memory-server, mongo-java-server on the JVM, or an error saying how to provide one.
 * Each step that is passed over is logged with its reason.
 */
export function resolveDatabase(options: DatabaseEngineOptions = {}): Promise<DatabaseEngine> {
  const key = keyOf(options);
  const started = early.get(key);
  if (!started) return resolveNow(options);
  early.delete(key);
  return started;
}

/** `starting`: called when the engine chosen begins to start (a download, a build or a boot). */
async function resolveNow(options: DatabaseEngineOptions, starting: () => void = () => {}): Promise<DatabaseEngine> {
  const log = options.log ?? (() => {});
  if (options.uri) {
    log(`Database: external MongoDB from MONGODB_URI (${redact(options.uri)})`);
    return { name: 'external', uri: options.uri, persistent: true, stop: async () => {} };
  }

  const dataDir = options.dataDir ? resolve(options.dataDir) : undefined;
  const where = dataDir ? `data in ${dataDir}` : 'in memory';
  const reasons: string[] = [];

  log('Looking for a mongod binary for mongodb-memory-server…');
  const mongod = await findMongod();
  if (mongod.reason) {
    reasons.push(`mongod: ${mongod.reason}`);
    log(`Embedded mongod unavailable: ${mongod.reason}`);
  } else {
    const pending = startMongod({ dataDir, port: options.port });
    starting();
    const server = await pending;
    const uri = withDatabase(server.uri, DATABASE_NAME);
    log(`Database: embedded mongod (mongodb-memory-server), ${where}, at ${uri}`);
    return { name: 'mongod (mongodb-memory-server)', uri, persistent: !!dataDir, stop: () => server.stop() };
  }

  try {
    // A first start fetches and compiles for a while: the application may load meanwhile.
    await installMongoJavaServer(log, starting);
    let dataFile: string | undefined;
    if (dataDir) {
      mkdirSync(dataDir, { recursive: true });
      dataFile = join(dataDir, 'mongo-java-server.mv');
    }
    log(`Starting mongo-java-server ${MONGO_JAVA_SERVER_VERSION} on the JVM, ${where}…`);
    const startedAt = performance.now();
    // The JVM is spawned before this returns; it boots while the application loads.
    const pending = startMongoJavaServer({ port: options.port, dataFile });
    starting();
    const server = await pending;
    const uri = `mongodb://127.0.0.1:${server.port}/${DATABASE_NAME}`;
    log(
      `Database: embedded mongo-java-server ${MONGO_JAVA_SERVER_VERSION} (reports MongoDB 7.0.0, JVM pid ${server.pid}), ${where}, up ${((performance.now() - startedAt) / 1000).toFixed(1)} s after its launch, at ${uri}`,
    );
    return { name: 'mongo-java-server', uri, persistent: !!dataDir, stop: () => server.stop() };
  } catch (error) {
    if (!(error instanceof DatabaseUnavailableError)) throw error;
    reasons.push(`mongo-java-server: ${error.message}`);
  }

  throw new DatabaseUnavailableError(
    'No database available: set MONGODB_URI to a MongoDB 7+, or give mongodb-memory-server a mongod ' +
      '(MONGOMS_SYSTEM_BINARY=/path/to/mongod, or internet access to download one), or install Java 17+ and Maven ' +
      `for the embedded mongo-java-server. Tried: ${reasons.map((reason) => reason.replace(/\s*\n\s*/g, ' ')).join('; ')}`,
  );
}

function withDatabase(uri: string, database: string): string {
  const url = new URL(uri);
  url.pathname = `/${database}`;
  return url.toString();
}

/** Never log credentials. */
export function redact(uri: string): string {
  return uri.replace(/\/\/[^@/]*@/, '//***@');
}

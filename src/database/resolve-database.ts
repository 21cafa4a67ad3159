import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { type DatabaseEngine, type DatabaseEngineOptions, DatabaseUnavailableError } from './database-engine.js';
import { installMongoJavaServer, MONGO_JAVA_SERVER_VERSION, startMongoJavaServer } from './mongo-java-server.js';
import { findMongod, startMongod } from './mongod.js';

const DATABASE_NAME = 'refmany';

/**
 * Resolves the database in the order DESIGN.md gives: MONGODB_URI, an embedded mongod through
 * mongodb-memory-server, mongo-java-server on the JVM, or an error saying how to provide one.
 * Each step that is passed over is logged with its reason.
 */
export async function resolveDatabase(options: DatabaseEngineOptions = {}): Promise<DatabaseEngine> {
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
    const server = await startMongod({ dataDir, port: options.port });
    const uri = withDatabase(server.uri, DATABASE_NAME);
    log(`Database: embedded mongod (mongodb-memory-server), ${where}, at ${uri}`);
    return { name: 'mongod (mongodb-memory-server)', uri, persistent: !!dataDir, stop: () => server.stop() };
  }

  try {
    await installMongoJavaServer(log);
    let dataFile: string | undefined;
    if (dataDir) {
      mkdirSync(dataDir, { recursive: true });
      dataFile = join(dataDir, 'mongo-java-server.mv');
    }
    log(`Starting mongo-java-server ${MONGO_JAVA_SERVER_VERSION} on the JVM, ${where}…`);
    const startedAt = performance.now();
    const server = await startMongoJavaServer({ port: options.port, dataFile });
    const uri = `mongodb://127.0.0.1:${server.port}/${DATABASE_NAME}`;
    log(
      `Database: embedded mongo-java-server ${MONGO_JAVA_SERVER_VERSION} (reports MongoDB 7.0.0, JVM pid ${server.pid}), ${where}, started in ${((performance.now() - startedAt) / 1000).toFixed(1)} s, at ${uri}`,
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

// Jest loads global setup outside its module system, where TypeScript sources with ESM `.js`
// specifiers do not resolve; tsx loads the database resolver from src/ as it is.
import { tsImport } from 'tsx/esm/api';

/**
 * One database engine for the whole run, resolved as the service resolves it (MONGODB_URI,
 * else an embedded mongod, else mongo-java-server in memory). Each Jest worker uses a
 * database of its own on it (see env.ts).
 */
export default async function globalSetup() {
  const { resolveDatabase } = await tsImport('../../src/database/resolve-database.ts', import.meta.url);
  const engine = await resolveDatabase({ uri: process.env.MONGODB_URI, log: (message) => console.log(`\n${message}`) });
  globalThis.__DATABASE_ENGINE__ = engine;
  process.env.TEST_MONGODB_URI = engine.uri;
  process.env.TEST_DATABASE_ENGINE = engine.name === 'external' ? await flavourOf(engine.uri) : engine.name;
}

/** `ferretdb` or `mongodb` for a database given by URI: FerretDB names itself in buildInfo. */
async function flavourOf(uri) {
  const { MongoClient } = await import('mongodb');
  const client = await MongoClient.connect(uri, { serverSelectionTimeoutMS: 10_000 });
  try {
    const info = await client.db('admin').command({ buildInfo: 1 });
    return info.ferretdb ? 'ferretdb' : 'mongodb';
  } finally {
    await client.close();
  }
}

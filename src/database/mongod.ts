import { mkdirSync } from 'node:fs';
import { join } from 'node:path';

// mongodb-memory-server is loaded when an embedded engine is wanted: with MONGODB_URI set (as in
// production) the service never pays the second or so its modules take to load.
const memoryServer = () => import('mongodb-memory-server');
const downloadUrl = () => import('mongodb-memory-server-core/lib/util/MongoBinaryDownloadUrl.js');
const configuration = () => import('mongodb-memory-server-core/lib/util/resolveConfig.js');

/** How long to wait for the download host before calling the machine offline. */
const DOWNLOAD_PROBE_TIMEOUT_MS = 3_000;

export interface Mongod {
  readonly uri: string;
  stop(): Promise<void>;
}

/**
 * Where a mongod binary can be had without a long wait: one already on disk
 * (MONGOMS_SYSTEM_BINARY or mongodb-memory-server's cache), or a download host that answers
 * within a few seconds. Returns a reason string when there is none, so the resolver can log
 * why it moved on instead of hanging on a download that cannot work.
 */
export async function findMongod(): Promise<{ binary?: string; reason?: string }> {
  const [{ DryMongoBinary }, { MongoBinaryDownloadUrl }, { envToBool, resolveConfig, ResolveConfigVariables }] = await Promise.all([
    memoryServer(),
    downloadUrl(),
    configuration(),
  ]);
  const options = await DryMongoBinary.generateOptions();
  const binary = await DryMongoBinary.locateBinary(options);
  if (binary) return { binary };
  if (!envToBool(resolveConfig(ResolveConfigVariables.RUNTIME_DOWNLOAD) ?? 'true')) {
    return { reason: 'no mongod binary on disk and MONGOMS_RUNTIME_DOWNLOAD is off' };
  }
  try {
    const url = await new MongoBinaryDownloadUrl(options).getDownloadUrl();
    const response = await fetch(url, { method: 'HEAD', signal: AbortSignal.timeout(DOWNLOAD_PROBE_TIMEOUT_MS) });
    if (response.ok) return {};
    return { reason: `no mongod binary on disk and its download answered ${response.status}` };
  } catch (error) {
    return { reason: `no mongod binary on disk and no download (${(error as Error).message})` };
  }
}

/** Starts mongod through mongodb-memory-server, downloading it first when needed. */
export async function startMongod(options: { dataDir?: string; port?: number }): Promise<Mongod> {
  const dbPath = options.dataDir ? join(options.dataDir, 'mongod') : undefined;
  if (dbPath) mkdirSync(dbPath, { recursive: true });
  const { MongoMemoryServer } = await memoryServer();
  const server = await MongoMemoryServer.create({
    instance: {
      ip: '127.0.0.1',
      port: options.port || undefined,
      dbPath,
      storageEngine: 'wiredTiger',
    },
  });
  return {
    uri: server.getUri(),
    stop: async () => {
      await server.stop({ doCleanup: !dbPath });
    },
  };
}

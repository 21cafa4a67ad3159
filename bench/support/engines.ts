/**
 * The database engines a run can use: the embedded mongo-java-server, started as the service
 * would start it, and FerretDB 2 + DocumentDB, a throw-away instance on private ports started
 * with the shared docdb.sh (or MONGODB_URI, when given, used as it is).
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { MongoClient } from 'mongodb';
import { projectRoot } from '../../src/database/project-root.js';
import { resolveDatabase } from '../../src/database/resolve-database.js';
import { freePort } from './processes.js';

export const ENGINES = ['embedded', 'ferretdb'] as const;
export type EngineName = (typeof ENGINES)[number];

export interface Engine {
  readonly name: EngineName;
  readonly label: string;
  /** Without a database name; `uriFor` adds one. */
  readonly uri: string;
  /** The engine's processes by role, when it is ours to see (for CPU accounting). */
  processes(): Record<string, number[]>;
  stop(): Promise<void>;
}

export function uriFor(engine: Engine, database: string): string {
  const url = new URL(engine.uri);
  url.pathname = `/${database}`;
  return url.toString();
}

const run = promisify(execFile);

/** docdb.sh: $REFMANY_ENGINES_DIR (the engines folder or its documentdb/), ../shared beside the repo, /work/shared. */
function docdbScript(): string {
  const root = process.env.REFMANY_ENGINES_DIR;
  const candidates = [
    ...(root ? [join(root, 'docdb.sh'), join(root, 'documentdb', 'docdb.sh')] : []),
    resolve(projectRoot(), '..', 'shared', 'engines', 'documentdb', 'docdb.sh'),
    '/work/shared/engines/documentdb/docdb.sh',
  ];
  const found = candidates.find((path) => existsSync(path));
  if (!found) throw new Error(`docdb.sh not found (looked at ${candidates.join(', ')}); set REFMANY_ENGINES_DIR`);
  return found;
}

/** Two consecutive free ports: FerretDB takes the MongoDB port and the next one (its debug listener). */
async function freePortPair(): Promise<number> {
  for (;;) {
    const port = (await freePort())!;
    if (await freePort(port + 1)) return port;
  }
}

async function label(uri: string, fallback: string): Promise<string> {
  const client = await new MongoClient(uri, { directConnection: true }).connect();
  try {
    const info = await client.db('admin').command({ buildInfo: 1 });
    return info.ferretdb
      ? `FerretDB ${info.ferretdb.version} + DocumentDB (reports MongoDB ${info.version})`
      : `${fallback} ${info.version}`;
  } finally {
    await client.close();
  }
}

export async function startEngine(name: EngineName, log: (message: string) => void): Promise<Engine> {
  if (name === 'embedded') {
    // It holds three copies of the data: at the full size that is close to the JVM's default
    // heap (a quarter of the memory), where it would spend its time collecting garbage.
    const javaOptions = process.env.JAVA_TOOL_OPTIONS;
    process.env.JAVA_TOOL_OPTIONS ??= '-Xmx12g';
    let jvm = 0;
    const engine = await resolveDatabase({ log: (message) => (log(message), (jvm ||= Number(/JVM pid (\d+)/.exec(message)?.[1]) || 0)) });
    if (javaOptions === undefined) delete process.env.JAVA_TOOL_OPTIONS;
    const uri = engine.uri.replace(/\/[^/]*$/, '/');
    return {
      name,
      uri,
      label: engine.name === 'mongo-java-server' ? 'mongo-java-server 1.47.0 (in memory)' : await label(uri, engine.name),
      processes: () => ({ engine: jvm ? [jvm] : [] }),
      stop: () => engine.stop(),
    };
  }
  const given = process.env.MONGODB_URI;
  if (given) return { name, uri: given, label: await label(given, 'MongoDB'), processes: () => ({}), stop: async () => {} };

  const script = docdbScript();
  const dir = mkdtempSync(join(tmpdir(), 'refmany-bench-docdb-'));
  const env = { ...process.env, DOCDB_DIR: dir, PG_PORT: String(await freePort()), MONGO_PORT: String(await freePortPair()) };
  const stop = async () => void (await run(script, ['wipe'], { env }).catch((error: unknown) => log(`docdb.sh wipe: ${String(error)}`)));
  try {
    const { stdout } = await run(script, ['start'], { env });
    const uri = stdout.trim().split('\n').pop()!;
    log(`FerretDB started by ${script} at ${uri} (state in ${dir})`);
    const pid = (file: string) => Number(readFileSync(file, 'utf8').split('\n')[0]) || 0;
    return {
      name,
      uri,
      label: await label(uri, 'MongoDB'),
      processes: () => {
        const postmaster = pid(join(dir, 'pgdata', 'postmaster.pid'));
        const backends = readFileSync(`/proc/${postmaster}/task/${postmaster}/children`, 'utf8').split(' ').filter(Boolean).map(Number);
        return { FerretDB: [pid(join(dir, 'ferretdb.pid'))], PostgreSQL: [postmaster, ...backends] };
      },
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}

import { type ChildProcessWithoutNullStreams, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, statSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { createInterface } from 'node:readline';
import { DatabaseUnavailableError } from './database-engine.js';
import { projectRoot } from './project-root.js';

export const MONGO_JAVA_SERVER_VERSION = '1.47.0';

const LAUNCHER = 'EmbeddedMongo';
const START_TIMEOUT_MS = 60_000;
const STOP_TIMEOUT_MS = 5_000;

function paths() {
  const root = projectRoot();
  const sources = join(root, 'src', 'database', 'mongo-java-server');
  const cache = join(root, '.cache', 'mongo-java-server');
  return {
    pom: join(sources, 'pom.xml'),
    launcherSource: join(sources, `${LAUNCHER}.java`),
    lib: join(cache, 'lib'),
    classes: join(cache, 'classes'),
  };
}

function run(command: string, args: string[]): { ok: boolean; output: string } {
  const result = spawnSync(command, args, { encoding: 'utf8' });
  if (result.error) return { ok: false, output: result.error.message };
  return { ok: result.status === 0, output: `${result.stdout}${result.stderr}`.trim() };
}

function tail(text: string, lines = 15): string {
  return text.split('\n').slice(-lines).join('\n');
}

/**
 * Makes sure the jars are in the cache (Maven resolves them from Maven Central through the
 * project's pom on first use) and the launcher is compiled. Throws DatabaseUnavailableError
 * saying what is missing.
 */
export function installMongoJavaServer(log: (message: string) => void = () => {}): void {
  const p = paths();
  if (!run('java', ['-version']).ok) {
    throw new DatabaseUnavailableError('mongo-java-server needs Java 17+ ("java" is not on PATH)');
  }
  const hasJars =
    existsSync(p.lib) && readdirSync(p.lib).some((file) => file.startsWith(`mongo-java-server-core-${MONGO_JAVA_SERVER_VERSION}`));
  if (!hasJars) {
    log(`Fetching mongo-java-server ${MONGO_JAVA_SERVER_VERSION} with Maven into ${p.lib} (first use only)`);
    const mvn = run('mvn', ['-B', '-q', '-f', p.pom, 'dependency:copy-dependencies', `-DoutputDirectory=${p.lib}`]);
    if (!mvn.ok) {
      throw new DatabaseUnavailableError(`Maven could not fetch mongo-java-server:\n${tail(mvn.output)}`);
    }
  }
  const compiled = join(p.classes, `${LAUNCHER}.class`);
  if (!existsSync(compiled) || statSync(compiled).mtimeMs < statSync(p.launcherSource).mtimeMs) {
    mkdirSync(p.classes, { recursive: true });
    const javac = run('javac', ['-d', p.classes, '-cp', join(p.lib, '*'), p.launcherSource]);
    if (!javac.ok) throw new DatabaseUnavailableError(`javac could not compile the launcher:\n${tail(javac.output)}`);
  }
}

export interface MongoJavaServer {
  readonly port: number;
  readonly pid: number;
  stop(): Promise<void>;
}

export interface MongoJavaServerOptions {
  host?: string;
  /** 0 picks a free port. */
  port?: number;
  /** H2 data file; without one the data is kept in memory. */
  dataFile?: string;
}

/** Starts the engine in a child JVM and resolves once it accepts connections. */
export async function startMongoJavaServer(options: MongoJavaServerOptions = {}): Promise<MongoJavaServer> {
  const p = paths();
  const args = ['-cp', [p.classes, join(p.lib, '*')].join(delimiter), LAUNCHER];
  args.push(options.host ?? '127.0.0.1', String(options.port ?? 0));
  if (options.dataFile) args.push(options.dataFile);

  // A process group of its own: Ctrl-C in a terminal reaches only the service, which finishes
  // its requests before it stops the engine. The JVM also stops by itself when its stdin
  // closes, which covers a parent killed outright.
  const child = spawn('java', args, { stdio: ['pipe', 'pipe', 'pipe'], detached: true });
  const killOnExit = () => child.kill('SIGKILL');
  process.once('exit', killOnExit);

  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
    stderr = tail(stderr + chunk, 30);
  });

  const port = await waitForListening(child, () => stderr).catch((error: unknown) => {
    process.removeListener('exit', killOnExit);
    child.kill('SIGKILL');
    throw error;
  });

  const exited = new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    else child.once('exit', () => resolve());
  });

  return {
    port,
    pid: child.pid!,
    async stop() {
      process.removeListener('exit', killOnExit);
      child.stdin.end();
      const timer = setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT_MS);
      await exited;
      clearTimeout(timer);
    },
  };
}

function waitForListening(child: ChildProcessWithoutNullStreams, stderr: () => string): Promise<number> {
  return new Promise((resolve, reject) => {
    const lines = createInterface({ input: child.stdout });
    const timer = setTimeout(() => fail(`did not start within ${START_TIMEOUT_MS / 1000} s`), START_TIMEOUT_MS);
    function fail(reason: string) {
      clearTimeout(timer);
      lines.close();
      reject(new DatabaseUnavailableError(`mongo-java-server ${reason}\n${stderr()}`.trim()));
    }
    child.once('error', (error) => fail(`could not be started: ${error.message}`));
    child.once('exit', (code, signal) => fail(`exited during start-up (${signal ?? `code ${code}`})`));
    lines.on('line', (line) => {
      const match = /^LISTENING (\d+)$/.exec(line.trim());
      if (!match) return;
      clearTimeout(timer);
      child.removeAllListeners('exit');
      child.removeAllListeners('error');
      // Keep draining stdout so the JVM never blocks on a full pipe.
      resolve(Number(match[1]));
    });
  });
}

import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, statSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { createInterface } from 'node:readline';
import { DatabaseUnavailableError } from './database-engine.js';
import { projectRoot } from './project-root.js';

export const MONGO_JAVA_SERVER_VERSION = '1.47.0';

const LAUNCHER = 'EmbeddedMongo';
const NO_JAVA = 'mongo-java-server needs Java 17+ ("java" is not on PATH)';
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

interface RunResult {
  ok: boolean;
  output: string;
}

/** Runs a command to its end without blocking the event loop; `onLine` sees its output as it comes. */
function run(command: string, args: string[], onLine: (line: string) => void = () => {}): Promise<RunResult> {
  return new Promise((resolve) => {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    for (const stream of [child.stdout, child.stderr]) {
      createInterface({ input: stream }).on('line', (line) => {
        output = tail(`${output}\n${line}`, 40);
        onLine(line);
      });
    }
    child.once('error', (error) => resolve({ ok: false, output: error.message }));
    child.once('close', (code) => resolve({ ok: code === 0, output: output.trim() }));
  });
}

function tail(text: string, lines = 15): string {
  return text.split('\n').slice(-lines).join('\n');
}

function seconds(since: number): string {
  return `${((performance.now() - since) / 1000).toFixed(1)} s`;
}

/** How often a long fetch says it is still going. */
const PROGRESS_EVERY_MS = 3_000;

/**
 * Resolves the jars from Maven Central into the cache, saying so before, every few seconds while
 * Maven downloads (files and kilobytes so far, from its "Downloaded from" lines), and after.
 */
async function fetchJars(p: ReturnType<typeof paths>, log: (message: string) => void): Promise<void> {
  log(`Fetching mongo-java-server ${MONGO_JAVA_SERVER_VERSION} and its dependencies with Maven into ${p.lib} (first use only)…`);
  const startedAt = performance.now();
  let files = 0;
  let kilobytes = 0;
  let copied = 0;
  const progress = setInterval(
    () =>
      log(
        `…still fetching with Maven: ${files} files (${Math.round(kilobytes)} kB) downloaded, ${copied} jars copied, ${seconds(startedAt)}`,
      ),
    PROGRESS_EVERY_MS,
  );
  const mvn = await run('mvn', ['-B', '-f', p.pom, 'dependency:copy-dependencies', `-DoutputDirectory=${p.lib}`], (line) => {
    if (/Copying \S+\.jar/.test(line)) copied += 1;
    const downloaded = /Downloaded from \S+: \S+ \(([\d.,]+) (B|kB|MB)/.exec(line);
    if (!downloaded) return;
    files += 1;
    const size = Number(downloaded[1].replace(',', ''));
    kilobytes += downloaded[2] === 'MB' ? size * 1024 : downloaded[2] === 'B' ? size / 1024 : size;
  }).finally(() => clearInterval(progress));
  if (!mvn.ok) throw new DatabaseUnavailableError(`Maven could not fetch mongo-java-server:\n${tail(mvn.output)}`);
  const fetched = files ? `${files} files (${Math.round(kilobytes)} kB) downloaded, the rest from ~/.m2` : 'all from ~/.m2';
  log(`Fetched mongo-java-server ${MONGO_JAVA_SERVER_VERSION} in ${seconds(startedAt)}: ${copied} jars, ${fetched}`);
}

/**
 * Makes sure the jars are in the cache (Maven resolves them from Maven Central through the
 * project's pom on first use) and the launcher is compiled. Throws DatabaseUnavailableError
 * saying what is missing.
 */
function installed(p = paths()): { hasJars: boolean; upToDate: boolean } {
  const hasJars =
    existsSync(p.lib) && readdirSync(p.lib).some((file) => file.startsWith(`mongo-java-server-core-${MONGO_JAVA_SERVER_VERSION}`));
  const compiled = join(p.classes, `${LAUNCHER}.class`);
  const upToDate = existsSync(compiled) && statSync(compiled).mtimeMs >= statSync(p.launcherSource).mtimeMs;
  return { hasJars, upToDate };
}

/**
 * `busy` is called once Maven or javac is running, work of seconds that needs no event loop:
 * the caller may load the application meanwhile.
 */
export async function installMongoJavaServer(log: (message: string) => void = () => {}, busy: () => void = () => {}): Promise<void> {
  const p = paths();
  const { hasJars, upToDate } = installed(p);
  if (hasJars && upToDate) return;
  // Only when there is work to do: a warm start does not pay for a JVM that prints its version
  // (startMongoJavaServer says the same if java is missing).
  if (!(await run('java', ['-version'])).ok) throw new DatabaseUnavailableError(NO_JAVA);
  if (!hasJars) {
    const fetching = fetchJars(p, log);
    busy();
    await fetching;
  }
  if (!upToDate) {
    busy();
    log(`Compiling the mongo-java-server launcher (${LAUNCHER}.java)…`);
    const startedAt = performance.now();
    mkdirSync(p.classes, { recursive: true });
    const javac = await run('javac', ['-d', p.classes, '-cp', join(p.lib, '*'), p.launcherSource]);
    if (!javac.ok) throw new DatabaseUnavailableError(`javac could not compile the launcher:\n${tail(javac.output)}`);
    log(`Compiled the launcher in ${seconds(startedAt)}`);
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
    function fail(reason: string, message = `mongo-java-server ${reason}\n${stderr()}`.trim()) {
      clearTimeout(timer);
      lines.close();
      reject(new DatabaseUnavailableError(message));
    }
    child.once('error', (error: NodeJS.ErrnoException) =>
      error.code === 'ENOENT' ? fail('', NO_JAVA) : fail(`could not be started: ${error.message}`),
    );
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

/**
 * The processes a run measures: the servers under test (each a process of its own, so the
 * kernel accounts its CPU and memory apart), and their CPU time and peak memory from /proc.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { projectRoot } from '../../src/database/project-root.js';

export const SERVERS = ['ours', 'limit', 'textbook'] as const;
export type ServerName = (typeof SERVERS)[number];

export interface Commands {
  counts: Record<string, number>;
  /** Sent and not answered yet. */
  pending: number;
}

export interface Server {
  readonly name: ServerName;
  readonly url: string;
  readonly pid: number;
  /** The database commands its driver has sent so far (support/count-commands.mjs). */
  commands(): Promise<Commands>;
  stop(): Promise<void>;
}

const CLOCK_TICKS = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;

/** User + system CPU seconds of a process so far (fields 14 and 15 of /proc/<pid>/stat); 0 once it is gone. */
export function cpuSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
  } catch {
    return 0;
  }
}

/** CPU seconds the whole machine has been busy so far, all cores summed (/proc/stat). */
export function machineBusySeconds(): number {
  const [user, nice, system, , , irq, softirq] = readFileSync('/proc/stat', 'utf8').split('\n')[0].split(/\s+/).slice(1).map(Number);
  return (user + nice + system + irq + softirq) / CLOCK_TICKS;
}

/** Resets VmHWM to the current RSS (writing 5 to clear_refs), so the next read is this window's peak. */
export function resetPeakRss(pid: number): void {
  writeFileSync(`/proc/${pid}/clear_refs`, '5');
}

export function peakRssMB(pid: number): number {
  const match = /^VmHWM:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return match ? Number(match[1]) / 1024 : NaN;
}

/** Listens on `port` (0: any) for a moment: the port it got, or undefined when it is taken. */
export function freePort(port = 0): Promise<number | undefined> {
  return new Promise((resolve) => {
    const server = createServer().once('error', () => resolve(undefined));
    server.listen(port, '127.0.0.1', () => {
      const { port: got } = server.address() as { port: number };
      server.close(() => resolve(got));
    });
  });
}

export const HOOK = join(projectRoot(), 'bench', 'support', 'count-commands.mjs');

/**
 * Starts one server on `mongodbUri` and waits until it answers HTTP. Ours is the built service
 * (`dist/main.js`), logging to /dev/null as it would in production (writing the log is part of
 * its cost), rate limit off; the baselines run from source (`--import tsx`, in this process
 * rather than the tsx CLI's child, so the pid is the server's).
 */
export async function startServer(name: ServerName, mongodbUri: string, env: Record<string, string> = {}): Promise<Server> {
  const port = await freePort();
  const entry =
    name === 'ours'
      ? ['--import', HOOK, join(projectRoot(), 'dist', 'main.js')]
      : ['--import', 'tsx', '--import', HOOK, join(projectRoot(), 'bench', 'baselines', `${name}.ts`)];
  const child = spawn(process.execPath, entry, {
    cwd: projectRoot(),
    env: {
      ...process.env,
      MONGODB_URI: mongodbUri,
      PORT: String(port),
      HOST: '127.0.0.1',
      LOG_FORMAT: 'json',
      RATE_LIMIT_MAX: '0',
      ...env,
    },
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
  });
  const url = `http://127.0.0.1:${port}`;
  for (const deadline = Date.now() + 120_000; ; await sleep(200)) {
    if (child.exitCode !== null) throw new Error(`${name} exited with code ${child.exitCode}`);
    if (Date.now() > deadline) throw new Error(`${name} did not listen within 120 s`);
    if (await fetch(`${url}/api/devices/000000000000000000000000/accounts`).catch(() => undefined)) break;
  }
  return { name, url, pid: child.pid!, commands: () => ask(child), stop: () => stop(child) };
}

function ask(child: ChildProcess): Promise<Commands> {
  return new Promise((resolve) => {
    child.once('message', (message) => resolve(message as Commands));
    child.send('commands');
  });
}

export function stop(child: ChildProcess): Promise<void> {
  return new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

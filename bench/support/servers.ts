/**
 * The three servers under test, each started as a process of its own so the kernel accounts
 * its CPU and memory apart from the benchmark's.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import { projectRoot } from '../../src/database/project-root.js';
import { freePort, startService } from './service.js';

export const SERVERS = ['ours', 'limit', 'textbook'] as const;
export type ServerName = (typeof SERVERS)[number];

export interface Server {
  readonly name: ServerName;
  readonly url: string;
  readonly pid: number;
  stop(): Promise<void>;
}

function stopper(child: ChildProcess): () => Promise<void> {
  return () =>
    new Promise<void>((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) return resolve();
      const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
      child.once('exit', () => {
        clearTimeout(timer);
        resolve();
      });
      child.kill('SIGTERM');
    });
}

/** Any HTTP answer means it listens; its database connection was made before it listened. */
async function waitUntilListening(url: string, child: ChildProcess, name: string): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`${name} exited with code ${child.exitCode}`);
    try {
      await fetch(`${url}/api/devices/000000000000000000000000/accounts`);
      return;
    } catch {
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }
  throw new Error(`${name} did not listen within 60 s`);
}

export async function startServer(name: ServerName, mongodbUri: string): Promise<Server> {
  if (name === 'ours') {
    // Logging stays on (to /dev/null): writing a line per request is part of the real cost.
    const service = await startService(mongodbUri, { LOG_LEVEL: 'info', LOG_FORMAT: 'json', RATE_LIMIT_MAX: '0' });
    await waitUntilListening(service.url, service.process, name);
    return { name, url: service.url, pid: service.process.pid!, stop: service.stop };
  }
  const port = await freePort();
  // node --import tsx, not the tsx CLI: the CLI would run the server in a child of its own,
  // and the pid measured would be the wrapper's.
  const child = spawn(process.execPath, ['--import', 'tsx', join(projectRoot(), 'bench', 'baselines', `${name}.ts`)], {
    cwd: projectRoot(),
    env: { ...process.env, MONGODB_URI: mongodbUri, PORT: String(port) },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const url = `http://127.0.0.1:${port}`;
  await waitUntilListening(url, child, name);
  return { name, url, pid: child.pid!, stop: stopper(child) };
}

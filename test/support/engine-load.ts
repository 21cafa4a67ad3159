import { readdirSync, readFileSync, readlinkSync } from 'node:fs';

/**
 * How busy the database engine is, read from /proc: the process listening on the port of the
 * test database's URI (the JVM of mongo-java-server, or FerretDB), and every local server it
 * holds connections to, with their children (FerretDB's PostgreSQL and its backends, where
 * DocumentDB runs the queries). Linux only; the tests run as root, so every /proc entry reads.
 */

const CLOCK_TICKS_PER_SECOND = 100;
const LISTEN = '0A';
const ESTABLISHED = '01';

interface Socket {
  localPort: number;
  remotePort: number;
  state: string;
  inode: string;
}

function sockets(): Socket[] {
  const found: Socket[] = [];
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const fields = line.trim().split(/\s+/);
      if (fields.length < 10) continue;
      const port = (address: string) => parseInt(address.split(':')[1], 16);
      found.push({ localPort: port(fields[1]), remotePort: port(fields[2]), state: fields[3], inode: fields[9] });
    }
  }
  return found;
}

function processIds(): number[] {
  return readdirSync('/proc')
    .filter((name) => /^\d+$/.test(name))
    .map(Number);
}

function socketInodes(pid: number): Set<string> {
  const inodes = new Set<string>();
  try {
    for (const fd of readdirSync(`/proc/${pid}/fd`)) {
      try {
        const match = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
        if (match) inodes.add(match[1]);
      } catch {
        // closed meanwhile
      }
    }
  } catch {
    // gone, or not ours to read
  }
  return inodes;
}

function parentOf(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
  } catch {
    return undefined;
  }
}

function listenerOf(port: number, all: Socket[], pids: number[]): number | undefined {
  const inodes = new Set(all.filter((socket) => socket.localPort === port && socket.state === LISTEN).map((socket) => socket.inode));
  return pids.find((pid) => [...socketInodes(pid)].some((inode) => inodes.has(inode)));
}

/** The engine's processes for a `mongodb://host:port/...` URI on this machine. */
export function engineProcesses(uri: string): number[] {
  const port = Number(new URL(uri).port || 27017);
  const all = sockets();
  const pids = processIds();
  const listener = listenerOf(port, all, pids);
  if (listener === undefined) throw new Error(`no process on this machine listens on port ${port} (${uri})`);
  const engine = new Set([listener]);
  const own = socketInodes(listener);
  const upstreamPorts = new Set(
    all
      .filter((socket) => own.has(socket.inode) && socket.state === ESTABLISHED && socket.remotePort !== port)
      .map((socket) => socket.remotePort),
  );
  for (const upstream of upstreamPorts) {
    const server = listenerOf(upstream, all, pids);
    if (server === undefined) continue;
    engine.add(server);
    for (const pid of pids) if (parentOf(pid) === server) engine.add(pid);
  }
  return [...engine];
}

/** CPU time (user + system) the given processes have used so far, in seconds. */
export function cpuSeconds(pids: number[]): number {
  let ticks = 0;
  for (const pid of pids) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      ticks += Number(fields[11]) + Number(fields[12]);
    } catch {
      // a backend that ended: its time is no longer load
    }
  }
  return ticks / CLOCK_TICKS_PER_SECOND;
}

/** The share of one core the processes use over the next `ms` milliseconds (1 = one core busy). */
export async function coreShare(pids: number[], ms: number): Promise<number> {
  const before = cpuSeconds(pids);
  const started = performance.now();
  await new Promise((resolve) => setTimeout(resolve, ms));
  return (cpuSeconds(pids) - before) / ((performance.now() - started) / 1000);
}

/**
 * Load with autocannon and what it cost each server: a warm-up, then a measured window whose
 * CPU (from /proc), database commands (counted in the server) and peak RSS are read at its
 * edges, once the server has finished every request it was sent.
 */
import autocannon from 'autocannon';
import { cpuSeconds, peakRssMB, resetPeakRss, type Server, sleep } from './processes.js';

export type Plan =
  /** The paths in turn, round and round. */
  | { kind: 'cycle'; method: 'GET'; paths: string[] }
  /** Each connection links a pair, then unlinks it, then takes the next pair. */
  | { kind: 'churn'; pairs: Array<[account: string, device: string]> }
  /** Each path once; the window ends early when they are used up. */
  | { kind: 'drain'; method: 'DELETE'; paths: string[] };

export interface Settings {
  connections: number;
  warmUpSeconds: number;
  seconds: number;
}

export interface Measured {
  requestsPerSecond: number;
  /** Server CPU milliseconds and database commands per request sent in the window. */
  cpuMsPerRequest: number;
  roundTripsPerRequest: number;
  commandsPerRequest: Record<string, number>;
  peakRssMB: number;
  sent: number;
  errors: number;
}

const QUIET_MS = 1_500;
/** A drain's warm-up may use this share of its paths; the rest is for the window. */
const WARM_UP_SHARE = 0.25;

interface Cursor {
  next: number;
  sent: number;
}

function requests(plan: Plan, cursor: Cursor): autocannon.Request[] {
  const take = (path: string) => ((cursor.sent += 1), path);
  if (plan.kind === 'churn') {
    const rel = ([account, device]: [string, string]) => `/api/accounts/${account}/devices/rel/${device}`;
    return [
      {
        method: 'PUT',
        setupRequest: (request, context) => ({
          ...request,
          path: take(((context as { path: string }).path = rel(plan.pairs[cursor.next++ % plan.pairs.length]))),
        }),
      },
      { method: 'DELETE', setupRequest: (request, context) => ({ ...request, path: take((context as { path: string }).path) }) },
    ];
  }
  return [{ method: plan.method, setupRequest: (request) => ({ ...request, path: take(plan.paths[cursor.next++ % plan.paths.length]) }) }];
}

/**
 * One run of `connections` spread over `urls` (connection i to url i mod n), sharing one cursor.
 * In a churn each connection stops right after its first unlink answered past `seconds`, so the
 * window holds whole link/unlink pairs; this reaches into autocannon's per-connection client: a
 * client whose requests reach `responseMax` closes before sending another.
 */
async function run(urls: string[], plan: Plan, cursor: Cursor, seconds: number, connections: number, cap?: number) {
  const started = performance.now();
  let lastAnswer = started;
  const share = (i: number) => Math.floor(connections / urls.length) + (i < connections % urls.length ? 1 : 0);
  const results = await Promise.all(
    urls.map((url, i) => {
      const capOfUrl = cap === undefined ? undefined : Math.max(1, Math.floor(cap / urls.length));
      const instance = autocannon(
        {
          url,
          connections: capOfUrl === undefined ? share(i) : Math.max(1, Math.min(share(i), capOfUrl)),
          duration: plan.kind === 'churn' ? seconds + 120 : seconds,
          timeout: 120,
          sampleInt: 100,
          requests: requests(plan, cursor),
          ...(capOfUrl !== undefined ? { maxOverallRequests: capOfUrl } : {}),
        },
        () => {},
      );
      instance.on('response', (client: unknown) => {
        lastAnswer = performance.now();
        const state = client as { reqsMade: number; responseMax: number; requestIterator: { currentRequest: { method?: string } } };
        if (plan.kind === 'churn' && lastAnswer >= started + seconds * 1000 && state.requestIterator.currentRequest.method === 'DELETE')
          state.responseMax = state.reqsMade;
      });
      return new Promise<autocannon.Result>((resolve) => instance.on('done', resolve));
    }),
  );
  const answered = results.reduce((sum, r) => sum + r['2xx'] + r.non2xx, 0);
  return { answered, seconds: (lastAnswer - started) / 1000, errors: results.reduce((sum, r) => sum + r.non2xx + r.errors, 0) };
}

/**
 * Waits until the servers have sent no database command and used no CPU for QUIET_MS: longer
 * than the service's deletion sweeper takes to run (every second), so work a window's requests
 * left for it belongs to that window.
 */
async function settle(servers: Server[]): Promise<void> {
  const state = async () => {
    const commands = await Promise.all(servers.map((server) => server.commands()));
    return {
      cpu: servers.map((server) => cpuSeconds(server.pid)),
      sent: commands.map(({ counts }) => Object.values(counts).reduce((a, b) => a + b, 0)),
      pending: commands.some(({ pending }) => pending > 0),
    };
  };
  let last = await state();
  let quietSince = performance.now();
  for (const deadline = performance.now() + 180_000; performance.now() < deadline;) {
    await sleep(250);
    const now = await state();
    if (now.pending || now.sent.some((sent, i) => sent !== last.sent[i]) || now.cpu.some((cpu, i) => cpu - last.cpu[i] > 0.01))
      quietSince = performance.now();
    else if (performance.now() - quietSince >= QUIET_MS) return;
    last = now;
  }
  throw new Error(`${servers.map((server) => server.name).join(', ')} still busy after 180 s`);
}

async function snapshot(servers: Server[], others: Array<() => number>) {
  const commands: Record<string, number> = {};
  for (const server of servers)
    for (const [name, count] of Object.entries((await server.commands()).counts)) commands[name] = (commands[name] ?? 0) + count;
  return { cpu: [...servers.map((server) => cpuSeconds(server.pid)), ...others.map((cpu) => cpu())], commands };
}

/**
 * Loads `servers` (one, or several instances of one service) with `plan` and measures the
 * window. `others` read more CPU seconds (of other processes, of the machine) whose use over
 * the window is returned in cores.
 */
export async function measure(servers: Server[], plan: Plan, settings: Settings, others: Array<() => number> = []) {
  const cursor: Cursor = { next: 0, sent: 0 };
  const urls = servers.map((server) => server.url);
  const total = plan.kind === 'drain' ? plan.paths.length : undefined;
  await run(urls, plan, cursor, settings.warmUpSeconds, settings.connections, total && Math.floor(total * WARM_UP_SHARE));
  await settle(servers);
  for (const server of servers) resetPeakRss(server.pid);
  const before = await snapshot(servers, others);
  const sentBefore = cursor.sent;
  const startedAt = performance.now();
  const window = await run(urls, plan, cursor, settings.seconds, settings.connections, total && total - cursor.next);
  const wallSeconds = (performance.now() - startedAt) / 1000;
  const othersCores = others.map((cpu, i) => (cpu() - before.cpu[servers.length + i]) / wallSeconds);
  await settle(servers);
  const after = await snapshot(servers, others);
  const sent = cursor.sent - sentBefore;
  const commandsPerRequest = Object.fromEntries(
    Object.entries(after.commands).map(([name, count]) => [name, (count - (before.commands[name] ?? 0)) / sent]),
  );
  const cpu = servers.map((_, i) => after.cpu[i] - before.cpu[i]);
  const result: Measured = {
    requestsPerSecond: window.answered / window.seconds,
    cpuMsPerRequest: (1000 * cpu.reduce((a, b) => a + b, 0)) / sent,
    roundTripsPerRequest: Object.values(commandsPerRequest).reduce((a, b) => a + b, 0),
    commandsPerRequest: Object.fromEntries(Object.entries(commandsPerRequest).filter(([, perRequest]) => perRequest > 0)),
    peakRssMB: Math.max(...servers.map((server) => peakRssMB(server.pid))),
    sent,
    errors: window.errors,
  };
  // Cores kept busy over the window: the servers' (the requests they were sent) and each of `others`.
  return { ...result, serversCores: cpu.reduce((a, b) => a + b, 0) / wallSeconds, othersCores };
}

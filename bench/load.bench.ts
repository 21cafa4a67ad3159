/**
 * The load benchmark: the service against two baselines (bench/baselines/) and the engine's
 * own ceiling, workload by workload. See bench/README.md.
 *
 *   npm run bench          100,000 accounts, 200,000 devices, 10 s windows
 *   npm run bench:quick    5,000 accounts, 15,000 devices, 4 s windows
 *
 * Options (after `--`): --seconds N, --warm-up N, --connections N, --only W1,W3.
 * MONGODB_URI (mongodb://, one host) points it at a MongoDB of your own instead of the embedded
 * engine; it drops and fills the databases bench_ours, bench_limit, bench_textbook and
 * bench_ceiling there.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { MongoClient, ObjectId } from 'mongodb';
import { MONGO_JAVA_SERVER_VERSION } from '../src/database/mongo-java-server.js';
import { projectRoot } from '../src/database/project-root.js';
import { resolveDatabase } from '../src/database/resolve-database.js';
import { limitQueries } from './baselines/limit-queries.js';
import { type CeilingResult, runCeiling } from './support/ceiling.js';
import { generate, ProgressBar, seed, SIZES } from './support/dataset.js';
import { type DriverMessage, type LoadResult, type LoadSpec } from './support/load-plan.js';
import { cpuSeconds, peakRssBytes, resetPeakRss } from './support/process-stats.js';
import { type BenchReport, type ServerResult, printReport, writeReport } from './support/report.js';
import { type Server, type ServerName, SERVERS, startServer } from './support/servers.js';
import { difference, startWireProxy, type WireProxy } from './support/wire-proxy.js';
import { type Workload, workloads } from './support/workloads.js';

const { values: options } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    seconds: { type: 'string' },
    'warm-up': { type: 'string' },
    connections: { type: 'string' },
    only: { type: 'string' },
  },
});

const size = options.quick ? SIZES.quick : SIZES.full;
const settings = {
  connections: Number(options.connections ?? 10),
  warmUpSeconds: Number(options['warm-up'] ?? (options.quick ? 2 : 3)),
  seconds: Number(options.seconds ?? (options.quick ? 4 : 10)),
  // W4 deletes each device once: the warm-up may use at most this share of them.
  warmUpShare: 0.25,
};
const only = options.only?.split(',').map((id) => id.trim().toUpperCase());
const CEILING = 'ceiling';
const IDLE_SECONDS = 5;
const DRIVER = join(projectRoot(), 'bench', 'support', 'load-driver.ts');

const log = (message: string) => process.stderr.write(`${message}\n`);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const databaseName = (who: ServerName | typeof CEILING) => `bench_${who}`;

/** The URI of `base`'s server, pointed at another host:port and database, without discovery. */
function uriFor(base: string, hostPort: string, database: string): string {
  const url = new URL(base);
  url.host = hostPort;
  url.pathname = `/${database}`;
  url.searchParams.set('directConnection', 'true');
  return url.toString();
}

/**
 * Waits until the server has finished every request it was sent: no command awaiting a
 * reply, none for 250 ms, and the process idle. The load driver abandons the requests in
 * flight when a run ends; the server still completes them, and they belong to that run.
 */
async function settle(pid: number, proxy: WireProxy): Promise<boolean> {
  const deadline = performance.now() + 180_000;
  let cpu = cpuSeconds(pid);
  while (performance.now() < deadline) {
    await sleep(250);
    const now = cpuSeconds(pid);
    const idle = now - cpu <= 0.02;
    cpu = now;
    if (idle && proxy.pending() === 0 && performance.now() - proxy.lastActivity() >= 250) return true;
  }
  return false;
}

function driverMessages(child: ChildProcess): () => Promise<DriverMessage> {
  const queue: DriverMessage[] = [];
  const waiting: Array<(message: DriverMessage) => void> = [];
  const deliver = (message: DriverMessage) => {
    const resolve = waiting.shift();
    if (resolve) resolve(message);
    else queue.push(message);
  };
  child.on('message', (message: DriverMessage) => deliver(message));
  child.on('exit', (code) => deliver({ type: 'failed', error: `the load driver exited with code ${code}` }));
  return () => new Promise((resolve) => (queue.length > 0 ? resolve(queue.shift()!) : waiting.push(resolve)));
}

async function expect<T extends DriverMessage['type']>(next: () => Promise<DriverMessage>, type: T) {
  const message = await next();
  if (message.type === 'failed') throw new Error(message.error);
  if (message.type !== type) throw new Error(`expected ${type} from the load driver, got ${message.type}`);
  return message as Extract<DriverMessage, { type: T }>;
}

async function measure(server: Server, proxy: WireProxy, workload: Workload, enginePid: number | undefined): Promise<ServerResult> {
  const spec: LoadSpec = { url: server.url, plan: workload.plan, ...settings };
  const child = spawn(process.execPath, ['--import', 'tsx', DRIVER], {
    cwd: projectRoot(),
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const next = driverMessages(child);
  try {
    child.send(spec);
    await expect(next, 'warmed');
    const settledBefore = await settle(server.pid, proxy);
    const peakReset = resetPeakRss(server.pid);
    const before = { cpu: cpuSeconds(server.pid), engine: enginePid ? cpuSeconds(enginePid) : NaN, wire: proxy.snapshot() };
    child.send('measure');
    const result: LoadResult = (await expect(next, 'measured')).result;
    const settledAfter = await settle(server.pid, proxy);
    const after = { cpu: cpuSeconds(server.pid), engine: enginePid ? cpuSeconds(enginePid) : NaN, wire: proxy.snapshot() };
    const wire = difference(after.wire, before.wire);
    const perRequest = (value: number) => value / result.sent;
    return {
      requests: result.completed,
      sent: result.sent,
      seconds: result.seconds,
      requestsPerSecond: result.completed / result.seconds,
      p50Ms: result.p50Ms,
      p99Ms: result.p99Ms,
      errors: result.non2xx + result.errors,
      statusCodes: result.statusCodes,
      cpuSecondsPer1k: 1000 * perRequest(after.cpu - before.cpu),
      engineCpuSecondsPer1k: 1000 * perRequest(after.engine - before.engine),
      peakRssMB: peakRssBytes(server.pid) / 2 ** 20,
      peakRssSinceWindow: peakReset,
      roundTripsPerRequest: perRequest(wire.commands),
      kbFromDbPerRequest: perRequest(wire.bytesFromDb) / 1024,
      kbToDbPerRequest: perRequest(wire.bytesToDb) / 1024,
      commandsPerRequest: Object.fromEntries(Object.entries(wire.byName).map(([name, count]) => [name, perRequest(count)])),
      monitoringMessages: wire.monitoringMessages,
      listUsed: result.used,
      exhausted: result.exhausted,
      settled: settledBefore && settledAfter,
    };
  } finally {
    if (child.exitCode === null) child.kill();
  }
}

/** Unlinks the pairs a churn run may have left linked, so later workloads see the seeded data. */
async function unlinkChurnPairs(client: MongoClient, database: string, pairs: Array<[string, string]>, used: number): Promise<void> {
  const operations = pairs.slice(0, Math.min(used, pairs.length)).map(([account, device]) => ({
    updateOne: { filter: { _id: new ObjectId(account) }, update: { $pull: { deviceIds: new ObjectId(device) } } },
  }));
  if (operations.length > 0)
    await client.db(database).collection<{ deviceIds: ObjectId[] }>('accounts').bulkWrite(operations, { ordered: false });
}

async function main(): Promise<void> {
  const startedAt = new Date();
  const started = performance.now();
  let enginePid: number | undefined;
  // The embedded engine holds four copies of the data set: at the full size that is close to
  // the JVM's default heap (a quarter of the memory), where it would spend its time in GC.
  const javaOptions = process.env.JAVA_TOOL_OPTIONS;
  if (javaOptions === undefined) process.env.JAVA_TOOL_OPTIONS = '-Xmx12g';
  const engine = await resolveDatabase({
    uri: process.env.MONGODB_URI || undefined,
    log: (message) => {
      enginePid ??= Number(/JVM pid (\d+)/.exec(message)?.[1]) || undefined;
      log(message);
    },
  });
  if (javaOptions === undefined) delete process.env.JAVA_TOOL_OPTIONS;
  // Each server reaches the database through a proxy standing in for one host.
  if (!/^mongodb:\/\/([^@/]*@)?[^,/]+(\/|$)/.test(engine.uri)) {
    await engine.stop();
    throw new Error('MONGODB_URI must be a mongodb:// URI naming one host (the benchmark proxies each server to it)');
  }
  const stops: Array<() => Promise<void>> = [() => engine.stop()];
  const stopAll = async () => {
    for (const stop of stops.splice(0).reverse()) await stop().catch((error: unknown) => log(`while stopping: ${String(error)}`));
  };
  process.once('SIGINT', () => void stopAll().then(() => process.exit(130)));

  try {
    const admin = await new MongoClient(engine.uri, { directConnection: true }).connect();
    stops.push(() => admin.close());
    const { version } = await admin.db('admin').command({ buildInfo: 1 });
    const engineLabel =
      engine.name === 'mongo-java-server'
        ? `mongo-java-server ${MONGO_JAVA_SERVER_VERSION} (in memory, reports MongoDB ${version})`
        : engine.name === 'external'
          ? `MongoDB ${version}`
          : `mongod ${version} (mongodb-memory-server)`;

    log(`Generating the ${size.name} data set…`);
    const dataset = generate(size);
    const seedStarted = performance.now();
    const databases = ([...SERVERS, CEILING] as const).map((who) => databaseName(who));
    const progress = new ProgressBar(
      `Seeding ${databases.length} databases`,
      databases.length * (dataset.devices.length + dataset.accounts.length),
    );
    for (const database of databases) await seed(engine.uri, database, dataset, progress);
    const seedSeconds = (performance.now() - seedStarted) / 1000;
    log(`Seeded ${databases.join(', ')} in ${seedSeconds.toFixed(1)} s`);

    const engineUrl = new URL(engine.uri);
    const proxies = {} as Record<ServerName, WireProxy>;
    const servers = {} as Record<ServerName, Server>;
    for (const name of SERVERS) {
      const proxy = await startWireProxy(engineUrl.hostname, Number(engineUrl.port || 27017));
      stops.push(() => proxy.close());
      proxies[name] = proxy;
      const server = await startServer(name, uriFor(engine.uri, `127.0.0.1:${proxy.port}`, databaseName(name)));
      stops.push(() => server.stop());
      servers[name] = server;
      log(`Started ${name} (pid ${server.pid}) at ${server.url}`);
    }
    const queries = limitQueries(admin.db(databaseName(CEILING)));

    // What each server costs doing nothing (timers, the driver's heartbeats): at a few
    // requests per second, as W4 and W5 run on a slow engine, it weighs in the CPU per request.
    const idle = {} as BenchReport['idle'];
    await Promise.all(SERVERS.map((name) => settle(servers[name].pid, proxies[name])));
    const idleBefore = SERVERS.map((name) => ({ cpu: cpuSeconds(servers[name].pid), wire: proxies[name].snapshot() }));
    await sleep(IDLE_SECONDS * 1000);
    SERVERS.forEach((name, index) => {
      const wire = difference(proxies[name].snapshot(), idleBefore[index].wire);
      idle[name] = {
        cpuMsPerSecond: (1000 * (cpuSeconds(servers[name].pid) - idleBefore[index].cpu)) / IDLE_SECONDS,
        heartbeatMessagesPerSecond: wire.monitoringMessages / IDLE_SECONDS,
        commandsPerSecond: wire.commands / IDLE_SECONDS,
      };
    });

    const report: BenchReport = {
      date: startedAt.toISOString(),
      machine: {
        cpu: cpus()[0]?.model ?? 'unknown CPU',
        cores: cpus().length,
        memoryGB: Math.round(totalmem() / 2 ** 30),
        node: process.version,
        platform: `${process.platform} ${process.arch}`,
      },
      engine: { name: engine.name, version, label: engineLabel },
      size,
      settings,
      dataShape: dataset.shape,
      seedSeconds,
      totalSeconds: NaN,
      idle,
      workloads: [],
    };

    for (const workload of workloads(dataset.targets, size.bigAccountDevices)) {
      if (only && !only.includes(workload.id)) continue;
      // The ceiling first: it also warms the engine's code paths for this workload's queries,
      // which would otherwise be paid for by whichever server came first.
      log(`${workload.id} engine ceiling: ${settings.warmUpSeconds} s warm-up, ${settings.seconds} s measured…`);
      const ceiling: CeilingResult & { used: number } = await runCeiling(workload.ceiling(queries), { ...settings, items: workload.items });
      if (workload.churnPairs) await unlinkChurnPairs(admin, databaseName(CEILING), workload.churnPairs, ceiling.used);
      const results = {} as Record<ServerName, ServerResult>;
      for (const name of SERVERS) {
        log(`${workload.id} ${name}: ${settings.warmUpSeconds} s warm-up, ${settings.seconds} s measured…`);
        results[name] = await measure(servers[name], proxies[name], workload, enginePid);
        if (workload.churnPairs) await unlinkChurnPairs(admin, databaseName(name), workload.churnPairs, results[name].listUsed);
      }
      report.workloads.push({ id: workload.id, route: workload.route, on: workload.on, label: workload.label, servers: results, ceiling });
    }

    report.totalSeconds = (performance.now() - started) / 1000;
    printReport(report);
    const files = writeReport(report, join(projectRoot(), 'bench', 'results'), options.quick ? 'bench-quick' : 'bench');
    log(`Wrote ${files.join(' and ')}; seeding ${seedSeconds.toFixed(0)} s, whole run ${report.totalSeconds.toFixed(0)} s`);
  } finally {
    await stopAll();
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});

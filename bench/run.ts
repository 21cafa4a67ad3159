/**
 * The benchmark (bench/README.md): per engine, the workloads W1–W5 on the service beside the
 * limit and the textbook baselines, the relation at 1,000–10,000 references, and on FerretDB
 * 1 against 3 instances of the service on one database.
 *
 *   npm run bench -- --engine both        the full size; the README's numbers
 *   npm run bench:quick -- --engine both  a small data set and short windows, to try it
 *
 * Options: --engine embedded|ferretdb|both, --parts load,sizes,scaleout, --only W1,W3,
 * --sizes 1000,5000,10000, --seconds N, --warm-up N, --connections N.
 */
import { cpus, totalmem } from 'node:os';
import { parseArgs } from 'node:util';
import { generate, seed, SIZES } from './support/dataset.js';
import { type Engine, ENGINES, type EngineName, startEngine, uriFor } from './support/engines.js';
import { measure, type Settings } from './support/load.js';
import { cpuSeconds, machineBusySeconds, SERVERS, type Server, type ServerName, startServer } from './support/processes.js';
import { type EngineReport, markdown, type Report, type ScaleOutRow, write } from './support/report.js';
import { measureSizes } from './support/sizes.js';
import { workloads } from './support/workloads.js';

const { values: options } = parseArgs({
  options: {
    engine: { type: 'string', default: 'embedded' },
    quick: { type: 'boolean', default: false },
    parts: { type: 'string', default: 'load,sizes,scaleout' },
    only: { type: 'string' },
    sizes: { type: 'string' },
    seconds: { type: 'string' },
    'warm-up': { type: 'string' },
    connections: { type: 'string' },
  },
});
const engines: EngineName[] = options.engine === 'both' ? [...ENGINES] : [options.engine as EngineName];
if (!engines.every((name) => ENGINES.includes(name))) throw new Error(`--engine takes embedded, ferretdb or both, not ${options.engine}`);
const parts = new Set(options.parts.split(','));
const only = options.only?.toUpperCase().split(',');
const size = options.quick ? SIZES.quick : SIZES.full;
const settings: Settings = {
  connections: Number(options.connections ?? 10),
  warmUpSeconds: Number(options['warm-up'] ?? (options.quick ? 2 : 3)),
  seconds: Number(options.seconds ?? (options.quick ? 4 : 10)),
};
const sizes = (options.sizes ?? (options.quick ? '500,1000,2000' : '1000,5000,10000')).split(',').map(Number);
const SCALE_OUT = { instances: [1, 3], workloads: ['W1', 'W3'] };

const log = (message: string) => process.stderr.write(`${message}\n`);
const dataset = generate(size);
const plans = workloads(dataset.targets, size.bigAccountDevices).filter((workload) => !only || only.includes(workload.id));

async function seeded(engine: Engine, database: string): Promise<string> {
  const uri = uriFor(engine, database);
  await seed(uri, dataset);
  return uri;
}

async function load(engine: Engine, report: EngineReport): Promise<void> {
  const started = performance.now();
  const uris = await Promise.all(SERVERS.map((name) => seeded(engine, `bench_${name}`)));
  report.seedSeconds = (performance.now() - started) / 1000;
  log(`${engine.name}: seeded ${SERVERS.length} databases in ${report.seedSeconds.toFixed(0)} s`);
  const servers: Server[] = [];
  try {
    for (const [i, name] of SERVERS.entries()) servers.push(await startServer(name, uris[i]));
    for (const workload of plans) {
      const results = {} as Record<ServerName, Awaited<ReturnType<typeof measure>>>;
      for (const server of servers) {
        log(`${engine.name} ${workload.id} ${server.name}: ${settings.warmUpSeconds} s warm-up, ${settings.seconds} s measured…`);
        results[server.name] = await measure([server], workload.plan, settings);
      }
      report.workloads.push({ id: workload.id, label: workload.label, route: workload.route, servers: results });
    }
  } finally {
    await Promise.all(servers.map((server) => server.stop()));
  }
}

/** The same service 1 and 3 times on one database, the load spread over them; who keeps the cores busy. */
async function scaleOut(engine: Engine, report: EngineReport): Promise<void> {
  const uri = await seeded(engine, 'bench_scaleout');
  report.scaleOut = [];
  for (const instances of SCALE_OUT.instances) {
    const servers: Server[] = [];
    try {
      for (let i = 0; i < instances; i += 1) servers.push(await startServer('ours', uri));
      const groups = Object.entries(engine.processes());
      const others = [
        () => process.cpuUsage().user / 1e6 + process.cpuUsage().system / 1e6,
        // Read anew each time: PostgreSQL's backends come and go with FerretDB's connections.
        ...groups.map(
          ([role]) =>
            () =>
              (engine.processes()[role] ?? []).reduce((sum, pid) => sum + cpuSeconds(pid), 0),
        ),
        machineBusySeconds,
      ];
      for (const workload of plans.filter((candidate) => SCALE_OUT.workloads.includes(candidate.id))) {
        log(`${engine.name} scale-out, ${instances} instance(s), ${workload.id}…`);
        // Each instance gets as much warm-up as one alone would: cold code costs CPU per request.
        const result = await measure(servers, workload.plan, { ...settings, warmUpSeconds: settings.warmUpSeconds * instances }, others);
        const [generator, ...rest] = result.othersCores;
        const machine = rest.pop()!;
        const cores: Record<string, number> = { services: result.serversCores, 'load generator': generator };
        groups.forEach(([role], i) => (cores[role] = rest[i]));
        cores['anything else'] = machine - Object.values(cores).reduce((a, b) => a + b, 0);
        cores.machine = machine;
        report.scaleOut.push({
          instances,
          workload: workload.id,
          requestsPerSecond: result.requestsPerSecond,
          cpuMsPerRequest: result.cpuMsPerRequest,
          cores,
        } satisfies ScaleOutRow);
      }
    } finally {
      await Promise.all(servers.map((server) => server.stop()));
    }
  }
}

const report: Report = {
  date: new Date().toISOString(),
  machine: `${cpus()[0]?.model ?? 'unknown CPU'}, ${cpus().length} cores, ${Math.round(totalmem() / 2 ** 30)} GB, Node ${process.version}`,
  data:
    `${size.name} data set: ${size.accounts.toLocaleString('en-US')} accounts (0–50 devices, ${size.bigAccounts} with ` +
    `${size.bigAccountDevices.toLocaleString('en-US')}), ${size.devices.toLocaleString('en-US')} devices (0–100 accounts each)`,
  load: `${settings.connections} connections, ${settings.seconds} s measured after ${settings.warmUpSeconds} s warm-up; CPU and round trips per request sent`,
  engines: [],
};
const started = performance.now();
for (const name of engines) {
  const engine = await startEngine(name, log);
  const stopping = () => void engine.stop().finally(() => process.exit(130));
  process.once('SIGINT', stopping);
  try {
    const entry: EngineReport = { engine: name, label: engine.label, workloads: [] };
    report.engines.push(entry);
    log(`${name}: ${engine.label}`);
    if (parts.has('load')) await load(engine, entry);
    if (parts.has('sizes')) entry.sizes = await measureSizes(engine, sizes, (message) => log(`${name} ${message}`));
    if (parts.has('scaleout') && name === 'ferretdb') await scaleOut(engine, entry);
  } finally {
    process.off('SIGINT', stopping);
    await engine.stop();
  }
}
console.log(markdown(report));
const files = await write(report, options.quick ? 'bench-quick' : 'bench');
log(`Wrote ${files.join(', ')}; the whole run took ${((performance.now() - started) / 1000).toFixed(0)} s`);

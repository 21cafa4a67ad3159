/**
 * The benchmark's output: Markdown tables on stdout (ready for the README), the whole report
 * as JSON, and the chart as SVG, drawn by Vega-Lite.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as vega from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';
import { type EngineName } from './engines.js';
import { type Measured } from './load.js';
import { SERVERS, type ServerName } from './processes.js';
import { growth, OPERATIONS, type SizesResult } from './sizes.js';

export interface ScaleOutRow {
  instances: number;
  workload: string;
  requestsPerSecond: number;
  cpuMsPerRequest: number;
  /** Cores kept busy during the window, by whom. */
  cores: Record<string, number>;
}

export interface EngineReport {
  engine: EngineName;
  label: string;
  seedSeconds?: number;
  workloads: Array<{ id: string; label: string; route: string; servers: Record<ServerName, Measured> }>;
  sizes?: SizesResult;
  scaleOut?: ScaleOutRow[];
}

export interface Report {
  date: string;
  machine: string;
  data: string;
  load: string;
  engines: EngineReport[];
}

const number = (value: number) =>
  !Number.isFinite(value) ? '–' : value >= 100 ? Math.round(value).toLocaleString('en-US') : value.toPrecision(3);
const times = (value: number) => (Number.isFinite(value) ? `${value.toFixed(2)}×` : '–');
const row = (cells: Array<string | number>) => `| ${cells.join(' | ')} |`;
const header = (...cells: string[]) => ['', row(cells), row(cells.map(() => '---'))];

type Servers = Record<ServerName, Measured>;
type Key = 'requestsPerSecond' | 'cpuMsPerRequest' | 'roundTripsPerRequest' | 'peakRssMB';
const each = (servers: Servers, key: Key, format = number) => SERVERS.map((name) => format(servers[name][key])).join(' · ');
const ratio = (servers: Servers, key: Key) => servers.ours[key] / servers.limit[key];

/** The targets against the limit that this run missed: CPU ≤ 1.0×, round trips equal, req/s ≥ 0.9×, W1 peak RSS ≤ 1.2×. */
function missed({ workloads }: EngineReport): string[] {
  return workloads.flatMap(({ id, servers }) =>
    [
      ratio(servers, 'cpuMsPerRequest') > 1 && `${id} CPU ${times(ratio(servers, 'cpuMsPerRequest'))}`,
      ratio(servers, 'roundTripsPerRequest') > 1.005 && `${id} round trips ${times(ratio(servers, 'roundTripsPerRequest'))}`,
      ratio(servers, 'requestsPerSecond') < 0.9 && `${id} req/s ${times(ratio(servers, 'requestsPerSecond'))}`,
      id === 'W1' && ratio(servers, 'peakRssMB') > 1.2 && `W1 peak RSS ${times(ratio(servers, 'peakRssMB'))}`,
    ].filter((miss) => typeof miss === 'string'),
  );
}

export function markdown(report: Report): string {
  const out = [
    `${report.machine}; ${report.data}; ${report.load}.`,
    '',
    ...report.engines.map(({ engine, label }) => `- ${engine}: ${label}`),
  ];
  const loaded = report.engines.filter((engine) => engine.workloads.length > 0);
  if (loaded.length > 0) {
    out.push(
      ...header(
        'workload',
        'engine',
        'req/s ours · limit · textbook',
        'ours/limit',
        'CPU ms/req ours · limit · textbook',
        'ours/limit',
        'round trips ours · limit · textbook',
        'peak RSS MB ours · limit · textbook',
      ),
    );
    for (const { id, label } of loaded[0].workloads)
      for (const engine of loaded) {
        const servers = engine.workloads.find((workload) => workload.id === id)?.servers;
        if (servers)
          out.push(
            row([
              `${id} ${label}`,
              engine.engine,
              each(servers, 'requestsPerSecond'),
              times(ratio(servers, 'requestsPerSecond')),
              each(servers, 'cpuMsPerRequest'),
              times(ratio(servers, 'cpuMsPerRequest')),
              each(servers, 'roundTripsPerRequest', (value) => value.toFixed(2)),
              each(servers, 'peakRssMB'),
            ]),
          );
      }
    out.push('');
    for (const engine of loaded) {
      for (const { id, servers } of engine.workloads) {
        const commands = SERVERS.map(
          (name) =>
            `${name} ${Object.entries(servers[name].commandsPerRequest)
              .map(([command, n]) => `${command} ${n.toFixed(2)}`)
              .join(', ')}`,
        );
        const errors = SERVERS.filter((name) => servers[name].errors > 0).map((name) => `${name} ${servers[name].errors} errors`);
        out.push(`- ${engine.engine} ${id} commands per request: ${[commands.join(' · '), ...errors].join('; ')}`);
      }
      const misses = missed(engine);
      out.push(`- ${engine.engine}: targets against the limit ${misses.length ? `not met: ${misses.join(', ')}` : 'all met'}`);
    }
  }
  const sized = report.engines.filter((engine) => engine.sizes);
  if (sized.length > 0) {
    out.push(
      ...header(
        'operation, one account',
        'engine',
        ...sized[0].sizes!.sizes.map((n) => `${n.toLocaleString('en-US')} refs`),
        'time per reference, size to size',
        'linear',
      ),
    );
    for (const operation of OPERATIONS)
      for (const { engine, sizes } of sized) {
        const ratios = growth(sizes!.seconds[operation], sizes!.sizes);
        // Below 50 ms at every size the machine's noise outweighs any growth.
        const flat = sizes!.seconds[operation].every((value) => value !== null && value < 0.05);
        const linear = ratios.some(Number.isNaN) ? '–' : flat ? 'flat (< 50 ms)' : ratios.every((value) => value <= 1.5) ? 'yes' : 'no';
        out.push(
          row([
            operation,
            engine,
            ...sizes!.seconds[operation].map((value) => (value === null ? 'failed' : `${number(value)} s`)),
            ratios.map(times).join(' · '),
            linear,
          ]),
        );
      }
    out.push('');
    for (const { engine, sizes } of sized)
      out.push(
        `- ${engine}: the integrity scan is its database work; the whole \`npm run integrity\`, start-up included, took ${sizes!.integrityWholeSeconds.map((value) => `${number(value)} s`).join(' · ')}` +
          (sizes!.failures.length ? `; failed: ${sizes!.failures.join('; ')}` : ''),
      );
  }
  for (const { scaleOut } of report.engines.filter((engine) => engine.scaleOut)) {
    const roles = Object.keys(scaleOut![0].cores);
    out.push(...header('instances', 'workload', 'req/s', 'service CPU ms/req', ...roles.map((role) => `cores: ${role}`)));
    for (const line of scaleOut!)
      out.push(
        row([
          line.instances,
          line.workload,
          number(line.requestsPerSecond),
          number(line.cpuMsPerRequest),
          ...roles.map((role) => line.cores[role].toFixed(2)),
        ]),
      );
  }
  return out.join('\n');
}

const METRICS = {
  cpuMsPerRequest: 'server CPU ms per request',
  requestsPerSecond: 'requests per second',
};

/** Two rows of panels (CPU per request, requests per second), a panel per workload on its own scale. */
export async function chart(report: Report): Promise<string> {
  const values = report.engines.flatMap(({ engine, workloads }) =>
    workloads.flatMap(({ id, label, servers }) =>
      SERVERS.flatMap((server) =>
        (['cpuMsPerRequest', 'requestsPerSecond'] as const).map((key) => ({
          engine,
          workload: `${id} ${label}`,
          server,
          metric: METRICS[key],
          value: servers[server][key],
        })),
      ),
    ),
  );
  const spec: TopLevelSpec = {
    title: {
      text: 'ours, the limit and the textbook on each engine: CPU per request (lower is better), requests per second (higher is better)',
      subtitle: [report.machine, report.data],
    },
    data: { values },
    facet: {
      row: { field: 'metric', title: null, sort: 'descending', header: { labelFontWeight: 'bold' } },
      column: { field: 'workload', title: null, header: { labelFontWeight: 'bold' } },
    },
    spec: {
      width: 140,
      height: 150,
      mark: 'bar',
      encoding: {
        x: { field: 'engine', title: null, axis: { labelAngle: 0 } },
        xOffset: { field: 'server', sort: [...SERVERS] },
        y: { field: 'value', type: 'quantitative', title: null },
        color: { field: 'server', sort: [...SERVERS], scale: { range: ['#2563eb', '#16a34a', '#d97706'] }, title: null },
      },
    },
    resolve: { scale: { y: 'independent' } },
    config: { background: 'white', font: 'Helvetica, Arial, sans-serif' },
  };
  return new vega.View(vega.parse(compile(spec).spec), { renderer: 'none' }).toSVG();
}

/** Writes `<base>.json`, `<base>.md` and (with load results) `<base>.svg`; returns their paths. */
export async function write(report: Report, base: string): Promise<string[]> {
  const directory = join(import.meta.dirname, '..', 'results');
  mkdirSync(directory, { recursive: true });
  const files: Array<[string, string]> = [
    [`${base}.json`, `${JSON.stringify(report, null, 2)}\n`],
    [`${base}.md`, `${markdown(report)}\n`],
  ];
  if (report.engines.some((engine) => engine.workloads.length > 0)) files.push([`${base}.svg`, await chart(report)]);
  for (const [name, content] of files) writeFileSync(join(directory, name), content);
  return files.map(([name]) => join(directory, name));
}

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
const header = (cells: string[]) => [row(cells), row(cells.map(() => '---'))];

/** The issue's targets against the limit, missed ones only: CPU ≤ 1.0×, round trips equal, req/s ≥ 0.9×, W1 peak RSS ≤ 1.2×. */
function misses(engine: EngineReport): string[] {
  return engine.workloads.flatMap(({ id, servers: { ours, limit } }) =>
    [
      ours.cpuMsPerRequest > limit.cpuMsPerRequest ? `${id} CPU ${times(ours.cpuMsPerRequest / limit.cpuMsPerRequest)}` : '',
      ours.roundTripsPerRequest > limit.roundTripsPerRequest + 0.01
        ? `${id} round trips ${number(ours.roundTripsPerRequest)} vs ${number(limit.roundTripsPerRequest)}`
        : '',
      ours.requestsPerSecond < 0.9 * limit.requestsPerSecond
        ? `${id} req/s ${times(ours.requestsPerSecond / limit.requestsPerSecond)}`
        : '',
      id === 'W1' && ours.peakRssMB > 1.2 * limit.peakRssMB ? `W1 peak RSS ${times(ours.peakRssMB / limit.peakRssMB)}` : '',
    ].filter(Boolean),
  );
}

export function markdown(report: Report): string {
  const out = [
    `${report.machine}; ${report.data}; ${report.load}.`,
    '',
    ...report.engines.map((engine) => `- ${engine.engine}: ${engine.label}`),
    '',
  ];
  const engines = report.engines;
  if (engines.some((engine) => engine.workloads.length > 0)) {
    out.push(
      ...header([
        'workload',
        'engine',
        'req/s ours · limit · textbook',
        'ours/limit',
        'CPU ms/req ours · limit · textbook',
        'ours/limit',
        'round trips ours · limit · textbook',
      ]),
    );
    for (const { id, label } of engines.find((engine) => engine.workloads.length > 0)!.workloads)
      for (const engine of engines) {
        const workload = engine.workloads.find((candidate) => candidate.id === id);
        if (!workload) continue;
        const of = (key: keyof Measured, format = number) =>
          SERVERS.map((name) => format(workload.servers[name][key] as number)).join(' · ');
        const ratio = (key: keyof Measured) => times((workload.servers.ours[key] as number) / (workload.servers.limit[key] as number));
        out.push(
          row([
            `${id} ${label}`,
            engine.engine,
            of('requestsPerSecond'),
            ratio('requestsPerSecond'),
            of('cpuMsPerRequest'),
            ratio('cpuMsPerRequest'),
            of('roundTripsPerRequest', (value) => value.toFixed(2)),
          ]),
        );
      }
    out.push('');
    for (const engine of engines.filter((candidate) => candidate.workloads.length > 0)) {
      const w1 = engine.workloads.find((workload) => workload.id === 'W1');
      if (w1)
        out.push(
          `- ${engine.engine} peak RSS under W1, ours · limit · textbook: ${SERVERS.map((name) => `${number(w1.servers[name].peakRssMB)} MB`).join(' · ')} (ours/limit ${times(w1.servers.ours.peakRssMB / w1.servers.limit.peakRssMB)})`,
        );
      for (const { id, servers } of engine.workloads) {
        const described = SERVERS.map(
          (name) =>
            `${name} ${Object.entries(servers[name].commandsPerRequest)
              .map(([command, perRequest]) => `${command} ${perRequest.toFixed(2)}`)
              .join(', ')}`,
        );
        const errors = SERVERS.filter((name) => servers[name].errors > 0).map((name) => `${name} ${servers[name].errors} errors`);
        out.push(
          `- ${engine.engine} ${id} commands per request: ${described.join(' · ')}${errors.length ? ` — ${errors.join(', ')}` : ''}`,
        );
      }
      const missed = misses(engine);
      out.push(`- ${engine.engine} targets against the limit ${missed.length ? `not met: ${missed.join('; ')}` : 'all met'}`);
    }
  }
  const sized = engines.filter((engine) => engine.sizes);
  if (sized.length > 0) {
    const sizes = sized[0].sizes!.sizes;
    out.push(
      '',
      ...header([
        'operation, one account',
        'engine',
        ...sizes.map((n) => `${n.toLocaleString('en-US')} refs`),
        'time per reference, size to size',
        'linear',
      ]),
    );
    for (const operation of OPERATIONS)
      for (const engine of sized) {
        const seconds = engine.sizes!.seconds[operation];
        const ratios = growth(seconds, engine.sizes!.sizes);
        const linear = ratios.every((ratio) => ratio <= 1.5) ? 'yes' : ratios.some(Number.isNaN) ? '–' : 'no';
        out.push(
          row([
            operation,
            engine.engine,
            ...seconds.map((value) => (value === null ? 'failed' : `${number(value)} s`)),
            ratios.map(times).join(' · '),
            linear,
          ]),
        );
      }
    for (const { engine, sizes } of sized)
      out.push(
        `- ${engine}: the integrity command takes ${number(sizes!.integrityStartUpSeconds!)} s on an empty database` +
          (sizes!.failures.length ? `; failed: ${sizes!.failures.join('; ')}` : ''),
      );
  }
  for (const engine of engines.filter((candidate) => candidate.scaleOut)) {
    const roles = Object.keys(engine.scaleOut![0].cores);
    out.push('', ...header(['instances', 'workload', 'req/s', 'service CPU ms/req', ...roles.map((role) => `cores: ${role}`)]));
    for (const line of engine.scaleOut!)
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

/** Two rows of panels (CPU per request, requests per second), a panel per workload on its own scale. */
export async function chart(report: Report): Promise<string> {
  const values = report.engines.flatMap((engine) =>
    engine.workloads.flatMap((workload) =>
      SERVERS.flatMap((server) => [
        {
          engine: engine.engine,
          workload: `${workload.id} ${workload.label}`,
          server,
          metric: 'server CPU ms per request (lower is better)',
          value: workload.servers[server].cpuMsPerRequest,
        },
        {
          engine: engine.engine,
          workload: `${workload.id} ${workload.label}`,
          server,
          metric: 'requests per second (higher is better)',
          value: workload.servers[server].requestsPerSecond,
        },
      ]),
    ),
  );
  const spec: TopLevelSpec = {
    title: { text: 'refmany: ours, the limit and the textbook on each engine', subtitle: report.machine },
    data: { values },
    facet: {
      row: {
        field: 'metric',
        title: null,
        sort: 'descending',
        header: { labelAngle: 0, labelOrient: 'top', labelAnchor: 'start', labelFontWeight: 'bold' },
      },
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

/**
 * The benchmark's output: a table per workload on stdout, the targets checked, the whole
 * report as JSON, and a bar chart as a hand-written SVG.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type CeilingResult } from './ceiling.js';
import { type Dataset, type Size } from './dataset.js';
import { type ServerName, SERVERS } from './servers.js';

export interface ServerResult {
  /** Answered within the window, and sent in it (the server finishes every one it was sent). */
  requests: number;
  sent: number;
  seconds: number;
  requestsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  /** Non-2xx answers, connection errors and timeouts. */
  errors: number;
  statusCodes: Record<string, number>;
  /** The server process's user + system CPU seconds per 1,000 requests sent. */
  cpuSecondsPer1k: number;
  /** The same for the database engine's process, when it is ours to see. */
  engineCpuSecondsPer1k: number;
  peakRssMB: number;
  /** False when the kernel would not reset the peak: it is then the peak since start. */
  peakRssSinceWindow: boolean;
  roundTripsPerRequest: number;
  kbFromDbPerRequest: number;
  kbToDbPerRequest: number;
  commandsPerRequest: Record<string, number>;
  /** hello/isMaster heartbeats in the window: counted apart, as command monitoring does. */
  monitoringMessages: number;
  listUsed: number;
  exhausted: boolean;
  /** False when the server was still busy with a previous window's requests at a boundary. */
  settled: boolean;
}

export interface WorkloadReport {
  id: string;
  route: string;
  on: string;
  label: string;
  servers: Record<ServerName, ServerResult>;
  ceiling: CeilingResult & { used: number };
}

export interface BenchReport {
  date: string;
  machine: { cpu: string; cores: number; memoryGB: number; node: string; platform: string };
  engine: { name: string; version: string; label: string };
  size: Size;
  settings: { connections: number; warmUpSeconds: number; seconds: number; warmUpShare: number };
  dataShape: Dataset['shape'];
  seedSeconds: number;
  totalSeconds: number;
  /** Each server with no requests: CPU, heartbeats, and any other database commands. */
  idle: Record<ServerName, { cpuMsPerSecond: number; heartbeatMessagesPerSecond: number; commandsPerSecond: number }>;
  workloads: WorkloadReport[];
}

const RATIO_KEYS = [
  'requestsPerSecond',
  'p50Ms',
  'p99Ms',
  'cpuSecondsPer1k',
  'peakRssMB',
  'roundTripsPerRequest',
  'kbFromDbPerRequest',
  'engineCpuSecondsPer1k',
] as const;
type Ratios = Record<(typeof RATIO_KEYS)[number], number>;

function ratios(ours: ServerResult, other: ServerResult): Ratios {
  return Object.fromEntries(RATIO_KEYS.map((key) => [key, ours[key] / other[key]])) as Ratios;
}

export interface TargetCheck {
  target: string;
  measured: string;
  /** null: does not apply (the workload is engine-bound) or was not measured. */
  met: boolean | null;
}

const times = (value: number) => (Number.isFinite(value) ? `${value.toFixed(2)}×` : '–');

/** The issue's targets, checked against this run. */
export function checkTargets(report: BenchReport): TargetCheck[] {
  const byId = new Map(report.workloads.map((workload) => [workload.id, workload]));
  const checks: TargetCheck[] = [];
  const cpuAgainst = (id: string, other: ServerName, bound: number) => {
    const workload = byId.get(id);
    if (!workload) return;
    const ratio = workload.servers.ours.cpuSecondsPer1k / workload.servers[other].cpuSecondsPer1k;
    checks.push({ target: `${id} CPU per request ≤ ${bound}× the ${other}'s`, measured: times(ratio), met: ratio <= bound });
  };
  cpuAgainst('W1', 'limit', 1.5);
  cpuAgainst('W3', 'limit', 1.5);
  cpuAgainst('W5', 'limit', 1.5);
  cpuAgainst('W1', 'textbook', 0.5);
  for (const id of ['W1', 'W3']) {
    const workload = byId.get(id);
    if (!workload) continue;
    const trips = workload.servers.ours.roundTripsPerRequest;
    checks.push({ target: `${id} round trips per request ≤ 2`, measured: trips.toFixed(2), met: trips <= 2.005 });
  }
  const w4 = byId.get('W4');
  if (w4) {
    const commands = w4.servers.ours.commandsPerRequest;
    const multi = commands['update(multi)'] ?? 0;
    checks.push({
      target: 'W4 exactly one updateMany per request',
      measured: `${multi.toFixed(2)} updateMany/request (${describeCommands(commands)})`,
      met: Math.abs(multi - 1) < 0.02,
    });
  }
  const big = byId.get('W2');
  const small = byId.get('W2-50');
  if (big && small) {
    const ratio = big.servers.ours.kbFromDbPerRequest / small.servers.ours.kbFromDbPerRequest;
    checks.push({
      target: 'W2 DB bytes for a page of a 10,000-device account ≤ 1.2× a 50-device account’s',
      measured: `${times(ratio)} (${big.servers.ours.kbFromDbPerRequest.toFixed(1)} / ${small.servers.ours.kbFromDbPerRequest.toFixed(1)} KB)`,
      met: ratio <= 1.2,
    });
  }
  const w1 = byId.get('W1');
  if (w1) {
    const ratio = w1.servers.ours.peakRssMB / w1.servers.limit.peakRssMB;
    checks.push({ target: 'W1 peak RSS ≤ 1.2× the limit’s', measured: times(ratio), met: ratio <= 1.2 });
  }
  for (const workload of report.workloads) {
    const ours = workload.servers.ours.requestsPerSecond;
    const ofCeiling = ours / workload.ceiling.opsPerSecond;
    const ratio = ours / workload.servers.limit.requestsPerSecond;
    const engineBound = ofCeiling >= 0.8;
    checks.push({
      target: `${workload.id} throughput ≥ 0.8× the limit’s where not engine-bound`,
      measured: `${times(ratio)} of the limit; ${Math.round(100 * ofCeiling)}% of the engine ceiling${engineBound ? ' (engine-bound)' : ''}`,
      met: engineBound ? null : ratio >= 0.8,
    });
  }
  return checks;
}

function describeCommands(commands: Record<string, number>): string {
  return (
    Object.entries(commands)
      .filter(([, perRequest]) => perRequest >= 0.005)
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([name, perRequest]) => `${name} ${perRequest.toFixed(2)}`)
      .join(', ') || 'none'
  );
}

function fixed(value: number, digits: number): string {
  return Number.isFinite(value) ? value.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits }) : '–';
}

/** Three significant digits, without going to exponents. */
function significant(value: number): string {
  if (!Number.isFinite(value)) return '–';
  if (value === 0) return '0';
  const digits = Math.max(0, 2 - Math.floor(Math.log10(Math.abs(value))));
  return fixed(value, digits);
}

function table(header: string[], rows: string[][], numeric = true): string {
  const widths = header.map((cell, column) => Math.max(cell.length, ...rows.map((row) => row[column].length)));
  const line = (cells: string[]) =>
    cells
      .map((cell, column) => (column === 0 || !numeric ? cell.padEnd(widths[column]) : cell.padStart(widths[column])))
      .join('  ')
      .trimEnd();
  return [line(header), ...rows.map(line)].join('\n');
}

/** The share of a run's CPU that the server would have spent with no requests at all. */
function idleShare(report: BenchReport, name: ServerName, r: ServerResult): number {
  const measured = (r.cpuSecondsPer1k * r.sent) / 1000;
  return ((report.idle[name].cpuMsPerSecond / 1000) * r.seconds) / measured;
}

export function printReport(report: BenchReport): void {
  const { machine, size, settings } = report;
  const out: string[] = [];
  out.push(
    '',
    `Machine: ${machine.cpu}, ${machine.cores} cores, ${machine.memoryGB} GB, Node ${machine.node}`,
    `Engine:  ${report.engine.label}`,
    `Data:    ${size.name}: ${size.accounts.toLocaleString('en-US')} accounts (0–50 devices, ${size.bigAccounts} with ` +
      `${size.bigAccountDevices.toLocaleString('en-US')}), ${size.devices.toLocaleString('en-US')} devices (0–100 accounts each)`,
    `Load:    ${settings.connections} connections, ${settings.seconds} s measured after ${settings.warmUpSeconds} s warm-up; ` +
      `CPU, trips and KB are per request sent; seeding took ${report.seedSeconds.toFixed(0)} s`,
    `Idle:    ${SERVERS.map((name) => `${name} ${fixed(report.idle[name].cpuMsPerSecond, 1)} ms CPU/s, ${fixed(report.idle[name].heartbeatMessagesPerSecond, 1)} heartbeat msgs/s`).join(' · ')}` +
      ' (heartbeats are left out of the trips and KB)',
  );
  const header = ['', 'req/s', 'p50 ms', 'p99 ms', 'errors', 'CPU s/1k req', 'peak RSS MB', 'DB trips/req', 'DB KB/req', 'engine CPU s/1k'];
  for (const workload of report.workloads) {
    const { ceiling } = workload;
    out.push(
      '',
      `${workload.id}  ${workload.route}  on ${workload.on}`,
      `engine ceiling (the limit's queries, raw driver, no HTTP): ${fixed(ceiling.opsPerSecond, 0)} ops/s, p50 ${significant(ceiling.p50Ms)} ms` +
        (ceiling.failures ? `, ${ceiling.failures} failed` : '') +
        (ceiling.exhausted ? `, stopped early: devices used up after ${ceiling.ops}` : ''),
    );
    const rows = SERVERS.map((name) => {
      const r = workload.servers[name];
      return [
        name,
        significant(r.requestsPerSecond),
        significant(r.p50Ms),
        significant(r.p99Ms),
        String(r.errors),
        significant(r.cpuSecondsPer1k),
        fixed(r.peakRssMB, 0),
        fixed(r.roundTripsPerRequest, 2),
        significant(r.kbFromDbPerRequest),
        significant(r.engineCpuSecondsPer1k),
      ];
    });
    for (const other of ['limit', 'textbook'] as const) {
      const ratio = ratios(workload.servers.ours, workload.servers[other]);
      rows.push([
        `ours/${other}`,
        times(ratio.requestsPerSecond),
        times(ratio.p50Ms),
        times(ratio.p99Ms),
        '',
        times(ratio.cpuSecondsPer1k),
        times(ratio.peakRssMB),
        times(ratio.roundTripsPerRequest),
        times(ratio.kbFromDbPerRequest),
        times(ratio.engineCpuSecondsPer1k),
      ]);
    }
    out.push(table(header, rows));
    out.push(
      `commands/req: ${SERVERS.map((name) => `${name}: ${describeCommands(workload.servers[name].commandsPerRequest)}`).join(' · ')}`,
    );
    const notes = SERVERS.flatMap((name) => {
      const r = workload.servers[name];
      return [
        r.exhausted ? `${name} used up its devices: ${r.requests} deletions measured` : '',
        r.settled ? '' : `${name} was still busy at a window boundary`,
        r.errors ? `${name} status codes ${JSON.stringify(r.statusCodes)}` : '',
        idleShare(report, name, r) > 0.25
          ? `${Math.round(100 * idleShare(report, name, r))}% of ${name}'s CPU here is what it spends idle`
          : '',
      ].filter(Boolean);
    });
    if (notes.length > 0) out.push(`note: ${notes.join('; ')}`);
  }
  out.push('', 'Targets (ours)');
  out.push(
    table(
      ['target', '', 'measured'],
      checkTargets(report).map((check) => [check.target, check.met === null ? 'n/a' : check.met ? 'met' : 'NOT MET', check.measured]),
      false,
    ),
  );
  console.log(out.join('\n'));
}

const COLORS: Record<ServerName, string> = { ours: '#2563eb', limit: '#16a34a', textbook: '#d97706' };

function escapeXml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/** Short labels for bars: 0.123, 1.23, 12.3, 123, 1.2k. */
function short(value: number): string {
  if (!Number.isFinite(value)) return '–';
  if (value >= 10_000) return `${(value / 1000).toFixed(0)}k`;
  if (value >= 1000) return `${(value / 1000).toFixed(1)}k`;
  return significant(value).replace(/,/g, '');
}

/**
 * Two panels of grouped bars (CPU per 1,000 requests, requests per second), one group per
 * workload, each group on its own scale: the workloads differ by orders of magnitude, and
 * the comparison that matters is between servers within one workload.
 */
export function renderSvg(report: BenchReport): string {
  const width = 1000;
  const left = 40;
  const right = 20;
  const panelHeight = 200;
  const top = 134;
  const gap = 92;
  const groups = report.workloads;
  const groupWidth = (width - left - right) / Math.max(1, groups.length);
  const barWidth = Math.min(38, groupWidth * 0.24);
  const parts: string[] = [];
  const text = (x: number, y: number, content: string, attributes = '') =>
    parts.push(`<text x="${x.toFixed(1)}" y="${y.toFixed(1)}" ${attributes}>${escapeXml(content)}</text>`);

  const { machine, size, settings } = report;
  text(left, 28, `Load benchmark: ours vs the limit vs the textbook (${size.name} data set)`, 'font-size="18" font-weight="bold"');
  text(left, 50, `${machine.cpu}, ${machine.cores} cores, ${machine.memoryGB} GB, Node ${machine.node}`, 'font-size="13"');
  text(left, 68, `Engine: ${report.engine.label}`, 'font-size="13"');
  text(
    left,
    86,
    `${size.accounts.toLocaleString('en-US')} accounts, ${size.devices.toLocaleString('en-US')} devices; ${settings.connections} connections, ` +
      `${settings.seconds} s after ${settings.warmUpSeconds} s warm-up; each workload on its own scale`,
    'font-size="12" fill="#555"',
  );
  SERVERS.forEach((name, index) => {
    const x = width - right - 300 + index * 100;
    parts.push(`<rect x="${x}" y="40" width="12" height="12" fill="${COLORS[name]}"/>`);
    text(x + 17, 51, name, 'font-size="13"');
  });

  const panels: Array<{ title: string; value: (r: ServerResult) => number; ceiling?: (w: WorkloadReport) => number }> = [
    { title: 'Server CPU seconds per 1,000 requests (lower is better)', value: (r) => r.cpuSecondsPer1k },
    {
      title: "Requests per second (higher is better); dashed: the engine ceiling (the limit's queries, raw driver, no HTTP)",
      value: (r) => r.requestsPerSecond,
      ceiling: (w) => w.ceiling.opsPerSecond,
    },
  ];
  panels.forEach((panel, p) => {
    const y0 = top + p * (panelHeight + gap);
    const base = y0 + panelHeight;
    text(left, y0 - 14, panel.title, 'font-size="14" font-weight="bold"');
    parts.push(`<line x1="${left}" y1="${base}" x2="${width - right}" y2="${base}" stroke="#999"/>`);
    groups.forEach((workload, g) => {
      const values = SERVERS.map((name) => panel.value(workload.servers[name]));
      const ceiling = panel.ceiling?.(workload);
      const max = Math.max(...values.filter(Number.isFinite), ceiling ?? 0) || 1;
      const scale = (panelHeight - 24) / max;
      const x0 = left + g * groupWidth + (groupWidth - 3 * barWidth - 2 * 6) / 2;
      values.forEach((value, index) => {
        const height = Number.isFinite(value) ? value * scale : 0;
        const x = x0 + index * (barWidth + 6);
        parts.push(
          `<rect x="${x.toFixed(1)}" y="${(base - height).toFixed(1)}" width="${barWidth.toFixed(1)}" height="${height.toFixed(1)}" fill="${COLORS[SERVERS[index]]}"/>`,
        );
        text(x + barWidth / 2, base - height - 4, short(value), 'font-size="11" text-anchor="middle"');
      });
      if (ceiling !== undefined && Number.isFinite(ceiling)) {
        const y = base - ceiling * scale;
        parts.push(
          `<line x1="${(x0 - 6).toFixed(1)}" y1="${y.toFixed(1)}" x2="${(x0 + 3 * barWidth + 18).toFixed(1)}" y2="${y.toFixed(1)}" stroke="#111" stroke-dasharray="5,3"/>`,
        );
      }
      const centre = left + g * groupWidth + groupWidth / 2;
      text(centre, base + 18, workload.id, 'font-size="13" font-weight="bold" text-anchor="middle"');
      text(centre, base + 33, workload.label, 'font-size="11" text-anchor="middle" fill="#555"');
      if (ceiling !== undefined) text(centre, base + 48, `ceiling ${short(ceiling)}/s`, 'font-size="11" text-anchor="middle" fill="#111"');
    });
  });

  const height = top + 2 * panelHeight + gap + 64;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="Helvetica, Arial, sans-serif">`,
    `<rect width="${width}" height="${height}" fill="#fff"/>`,
    ...parts,
    '</svg>',
    '',
  ].join('\n');
}

/** Writes `<base>.json` and `<base>.svg` into `directory`; returns their paths. */
export function writeReport(report: BenchReport, directory: string, base: string): string[] {
  mkdirSync(directory, { recursive: true });
  const json = join(directory, `${base}.json`);
  const svg = join(directory, `${base}.svg`);
  const workloads = report.workloads.map((workload) => ({
    ...workload,
    oursOverLimit: ratios(workload.servers.ours, workload.servers.limit),
    oursOverTextbook: ratios(workload.servers.ours, workload.servers.textbook),
  }));
  writeFileSync(json, `${JSON.stringify({ ...report, workloads, targets: checkTargets(report) }, null, 2)}\n`);
  writeFileSync(svg, renderSvg(report));
  return [json, svg];
}

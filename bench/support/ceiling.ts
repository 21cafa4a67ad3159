/**
 * The engine's ceiling: a workload's queries with the raw driver in a loop, at the same
 * concurrency and for the same time as the HTTP runs, with no HTTP at all.
 */
import { type ObjectId } from 'mongodb';
import { type CeilingStep, type Cursor } from './workloads.js';

export interface CeilingResult {
  ops: number;
  seconds: number;
  opsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  /** Steps whose queries found nothing to act on (should stay 0). */
  failures: number;
  exhausted: boolean;
}

function percentile(sorted: Float64Array, p: number): number {
  return sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))];
}

async function loop(steps: CeilingStep[], connections: number, seconds: number, cursor: Cursor): Promise<CeilingResult> {
  const latencies: number[] = [];
  let failures = 0;
  let exhausted = false;
  const started = performance.now();
  const deadline = started + seconds * 1000;
  const worker = async () => {
    let context: Record<string, ObjectId> = {};
    // The clock is looked at only between cycles, so W3 ends on whole link/unlink pairs.
    for (let index = 0; (index !== 0 || performance.now() < deadline) && !exhausted; index = (index + 1) % steps.length) {
      if (index === 0) context = {};
      const before = performance.now();
      const outcome = await steps[index](context, cursor);
      if (outcome === 'exhausted') {
        exhausted = true;
        break;
      }
      latencies.push(performance.now() - before);
      if (!outcome) failures += 1;
    }
  };
  await Promise.all(Array.from({ length: connections }, worker));
  const elapsed = (performance.now() - started) / 1000;
  const sorted = Float64Array.from(latencies).sort();
  return {
    ops: latencies.length,
    seconds: elapsed,
    opsPerSecond: latencies.length / elapsed,
    p50Ms: percentile(sorted, 0.5),
    p99Ms: percentile(sorted, 0.99),
    failures,
    exhausted,
  };
}

export async function runCeiling(
  steps: CeilingStep[],
  options: { connections: number; warmUpSeconds: number; seconds: number; items?: number; warmUpShare: number },
): Promise<CeilingResult & { used: number }> {
  const cursor: Cursor = { next: 0, cap: options.items === undefined ? Infinity : Math.floor(options.items * options.warmUpShare) };
  await loop(steps, options.connections, options.warmUpSeconds, cursor);
  cursor.cap = options.items ?? Infinity;
  const result = await loop(steps, options.connections, options.seconds, cursor);
  return { ...result, used: cursor.next };
}

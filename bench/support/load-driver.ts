/**
 * The load generator, in a process of its own so that its CPU is never the server's or the
 * benchmark's. The parent sends a LoadSpec; this runs the warm-up, reports, waits for the
 * parent to open its measurement window, runs the measured period and reports again.
 */
import autocannon from 'autocannon';
import { type DriverMessage, type LoadPlan, type LoadResult, type LoadSpec } from './load-plan.js';

interface Cursor {
  next: number;
  sent: number;
}

function requestsFor(plan: LoadPlan, cursor: Cursor): autocannon.Request[] {
  switch (plan.kind) {
    case 'cycle':
      return [
        {
          method: plan.method,
          setupRequest: (request) => {
            cursor.sent += 1;
            return { ...request, path: plan.paths[cursor.next++ % plan.paths.length] };
          },
        },
      ];
    case 'drain':
      return [
        {
          method: plan.method,
          setupRequest: (request) => {
            cursor.sent += 1;
            return { ...request, path: plan.paths[cursor.next++] };
          },
        },
      ];
    case 'churn':
      return [
        {
          method: 'PUT',
          setupRequest: (request, context) => {
            const pair = context as { path?: string };
            const [account, device] = plan.pairs[cursor.next++ % plan.pairs.length];
            pair.path = `/api/accounts/${account}/devices/rel/${device}`;
            cursor.sent += 1;
            return { ...request, method: 'PUT', path: pair.path };
          },
        },
        {
          method: 'DELETE',
          setupRequest: (request, context) => {
            cursor.sent += 1;
            return { ...request, method: 'DELETE', path: (context as { path: string }).path };
          },
        },
      ];
  }
}

/** The parts of autocannon's per-connection client that ending on a whole pair needs. */
interface ClientState {
  reqsMade: number;
  responseMax: number;
  requestIterator: { currentRequest: { method?: string } };
}

/**
 * One autocannon run. `cap` limits the requests overall (autocannon stops each connection
 * after its share, and the cap may not be below the number of connections); `wholePairsAfter`
 * ends each churn connection at its first unlink answered after that many seconds.
 */
async function run(
  spec: LoadSpec,
  cursor: Cursor,
  seconds: number,
  options: { cap?: number; wholePairsAfter?: number } = {},
): Promise<LoadResult> {
  const { cap, wholePairsAfter } = options;
  const sentBefore = cursor.sent;
  const connections = cap === undefined ? spec.connections : Math.max(1, Math.min(spec.connections, cap));
  const started = performance.now();
  let lastAnswer = started;
  const result = await new Promise<autocannon.Result>((resolve, reject) => {
    const instance = autocannon(
      {
        url: spec.url,
        connections,
        duration: wholePairsAfter === undefined ? seconds : wholePairsAfter + 120,
        timeout: 120,
        // autocannon notices the end of a run at its next sample: by default a second later,
        // idle time that a run ending on a count would otherwise include.
        sampleInt: 100,
        requests: requestsFor(spec.plan, cursor),
        ...(cap !== undefined ? { maxOverallRequests: cap } : {}),
      },
      (error, done) => (error ? reject(error) : resolve(done)),
    );
    instance.on('response', () => {
      lastAnswer = performance.now();
    });
    if (wholePairsAfter === undefined) return;
    // A window cut by the clock ends with some connections between their PUT and their
    // DELETE; at a few requests per second that tilts the mix towards PUTs. Each connection
    // stops instead right after its first DELETE answered past the window's length, so the
    // window holds whole pairs and no request is left in flight. This reaches into
    // autocannon's client: the answered request is still its current one, and a client
    // whose requests reach `responseMax` closes before sending another.
    const deadline = started + wholePairsAfter * 1000;
    instance.on('response', (client: unknown) => {
      const state = client as ClientState;
      if (performance.now() >= deadline && state.requestIterator.currentRequest.method === 'DELETE') state.responseMax = state.reqsMade;
    });
  });
  const statusCodes = Object.fromEntries(
    Object.entries(result.statusCodeStats ?? {}).map(([code, stats]) => [code, Number((stats as { count: number }).count)]),
  );
  return {
    sent: cursor.sent - sentBefore,
    completed: Object.values(statusCodes).reduce((sum, count) => sum + count, 0),
    // Up to the last answer: the requests abandoned at the end are not in `completed`.
    seconds: (lastAnswer - started) / 1000,
    p50Ms: result.latency.p50,
    p99Ms: result.latency.p99,
    non2xx: result.non2xx,
    errors: result.errors,
    timeouts: result.timeouts,
    statusCodes,
    used: cursor.next,
    exhausted: spec.plan.kind === 'drain' && cursor.next >= spec.plan.paths.length,
  };
}

function send(message: DriverMessage): Promise<void> {
  return new Promise((resolve) => process.send!(message, () => resolve()));
}

process.once('message', async (spec: LoadSpec) => {
  try {
    const cursor: Cursor = { next: 0, sent: 0 };
    const total = spec.plan.kind === 'drain' ? spec.plan.paths.length : undefined;
    const warmUpCap = total === undefined ? undefined : Math.floor(total * spec.warmUpShare);
    const warm = await run(spec, cursor, spec.warmUpSeconds, { cap: warmUpCap });
    await send({ type: 'warmed', result: warm });
    await new Promise((resolve) => process.once('message', resolve));
    const left = total === undefined ? undefined : total - cursor.next;
    if (left === 0) throw new Error('the warm-up used every path');
    const whole = spec.plan.kind === 'churn' ? spec.seconds : undefined;
    await send({ type: 'measured', result: await run(spec, cursor, spec.seconds, { cap: left, wholePairsAfter: whole }) });
  } catch (error) {
    await send({ type: 'failed', error: error instanceof Error ? error.message : String(error) });
  }
  process.exit(0);
});

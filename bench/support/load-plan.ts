/** What the load driver sends: plain data, as it crosses to the driver's process. */
export type LoadPlan =
  /** The paths in turn, round and round. */
  | { kind: 'cycle'; method: 'GET'; paths: string[] }
  /** Each connection links a pair, then unlinks it, then takes the next pair. */
  | { kind: 'churn'; pairs: Array<[account: string, device: string]> }
  /** Each path once; the run ends early when they are used up. */
  | { kind: 'drain'; method: 'DELETE'; paths: string[] };

export interface LoadSpec {
  url: string;
  plan: LoadPlan;
  connections: number;
  warmUpSeconds: number;
  seconds: number;
  /** For `drain`: the share of the paths the warm-up may use. */
  warmUpShare: number;
}

export interface LoadResult {
  /** Requests sent; the server finishes each, answered before the window closed or not. */
  sent: number;
  completed: number;
  seconds: number;
  p50Ms: number;
  p99Ms: number;
  non2xx: number;
  errors: number;
  timeouts: number;
  statusCodes: Record<string, number>;
  /** How far into the plan's list the run got (pairs or paths used, warm-up included). */
  used: number;
  /** `drain` only: the paths ran out before the window's end. */
  exhausted: boolean;
}

export type DriverMessage =
  { type: 'warmed'; result: LoadResult } | { type: 'measured'; result: LoadResult } | { type: 'failed'; error: string };

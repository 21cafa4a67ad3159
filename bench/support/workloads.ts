/**
 * The workloads: what each sends over HTTP (a LoadPlan for the load driver) and the same work
 * with the raw driver for the engine ceiling (the limit's queries, without HTTP).
 */
import { ObjectId } from 'mongodb';
import { type LimitQueries } from '../baselines/limit-queries.js';
import { MAX_DEVICES, seededRandom, type Targets } from './dataset.js';
import { type LoadPlan } from './load-plan.js';

/** Shared by the connections of a run: how far into the workload's list they are. */
export interface Cursor {
  next: number;
  /** Past this the list counts as used up (a drain's warm-up stops at its share). */
  cap: number;
}

/** One request's worth of work; `'exhausted'` when a drain has nothing left. */
export type CeilingStep = (context: Record<string, ObjectId>, cursor: Cursor) => Promise<boolean | 'exhausted'>;

export interface Workload {
  readonly id: string;
  readonly route: string;
  readonly on: string;
  /** A few words for the chart. */
  readonly label: string;
  readonly plan: LoadPlan;
  /** The steps each connection takes in turn, as autocannon cycles through `requests`. */
  ceiling(queries: LimitQueries): CeilingStep[];
  /** Length of the list a drain uses up. */
  readonly items?: number;
  /** W3 leaves pairs linked when a window ends mid-pair: these are unlinked afterwards. */
  readonly churnPairs?: Array<[string, string]>;
}

const PAGE = 20;

export function workloads(targets: Targets, bigAccountDevices: number): Workload[] {
  const random = seededRandom(7);
  const below = (n: number) => Math.floor(random() * n);
  const oid = (hex: string) => new ObjectId(hex);
  const cycle = <T>(items: T[], cursor: Cursor) => items[cursor.next++ % items.length];

  const fifty = targets.fiftyDeviceAccounts;
  const bigPages = Array.from({ length: 1000 }, (_, i) => ({
    account: targets.bigAccounts[i % targets.bigAccounts.length],
    skip: below(bigAccountDevices - PAGE + 1),
  }));
  const smallPages = fifty.map((account) => ({ account, skip: below(MAX_DEVICES - PAGE + 1) }));
  const pagePath = ({ account, skip }: { account: string; skip: number }) =>
    `/api/accounts/${account}/devices?filter=${encodeURIComponent(JSON.stringify({ limit: PAGE, skip }))}`;
  const page =
    (queries: LimitQueries, pages: Array<{ account: string; skip: number }>): CeilingStep =>
    async (_context, cursor) => {
      const { account, skip } = cycle(pages, cursor);
      return (await queries.devicePage(oid(account), skip, PAGE)) !== null;
    };

  return [
    {
      id: 'W1',
      label: '50 devices',
      route: 'GET /api/accounts/:id?include=devices',
      on: '50-device accounts',
      plan: { kind: 'cycle', method: 'GET', paths: fifty.map((id) => `/api/accounts/${id}?include=devices`) },
      ceiling: (queries) => [async (_context, cursor) => (await queries.account(oid(cycle(fifty, cursor)), true)) !== null],
    },
    {
      id: 'W2',
      label: 'page of 10,000',
      route: 'GET /api/accounts/:id/devices?filter={"limit":20,"skip":…}',
      on: `${bigAccountDevices.toLocaleString('en-US')}-device accounts`,
      plan: { kind: 'cycle', method: 'GET', paths: bigPages.map(pagePath) },
      ceiling: (queries) => [page(queries, bigPages)],
    },
    {
      id: 'W2-50',
      label: 'page of 50',
      route: 'GET /api/accounts/:id/devices?filter={"limit":20,"skip":…}',
      on: '50-device accounts (W2’s yardstick)',
      plan: { kind: 'cycle', method: 'GET', paths: smallPages.map(pagePath) },
      ceiling: (queries) => [page(queries, smallPages)],
    },
    {
      id: 'W3',
      label: 'link/unlink',
      route: 'PUT then DELETE /api/accounts/:id/devices/rel/:fk',
      on: 'link/unlink churn over distinct pairs',
      plan: { kind: 'churn', pairs: targets.churnPairs },
      churnPairs: targets.churnPairs,
      ceiling: (queries) => [
        async (context, cursor) => {
          const [account, device] = cycle(targets.churnPairs, cursor);
          context.account = oid(account);
          context.device = oid(device);
          return (await queries.link(context.account, context.device)) !== null;
        },
        async (context) => queries.unlink(context.account, context.device),
      ],
    },
    {
      id: 'W5',
      label: 'reverse lookup',
      route: 'GET /api/devices/:id/accounts',
      on: 'devices referenced by 100 accounts',
      plan: { kind: 'cycle', method: 'GET', paths: targets.reverseDevices.map((id) => `/api/devices/${id}/accounts`) },
      ceiling: (queries) => [async (_context, cursor) => (await queries.accountsOf(oid(cycle(targets.reverseDevices, cursor)))) !== null],
    },
    {
      id: 'W4',
      label: 'delete, 100 refs',
      route: 'DELETE /api/devices/:id',
      on: 'devices referenced by 100 accounts, each deleted once',
      plan: { kind: 'drain', method: 'DELETE', paths: targets.deleteDevices.map((id) => `/api/devices/${id}`) },
      items: targets.deleteDevices.length,
      ceiling: (queries) => [
        async (_context, cursor) => {
          if (cursor.next >= cursor.cap) return 'exhausted';
          return queries.deleteDevice(oid(targets.deleteDevices[cursor.next++]));
        },
      ],
    },
  ];
}

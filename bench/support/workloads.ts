/** The workloads W1–W5: what each sends, on which of the data set's ids. */
import { seededRandom, type Targets } from './dataset.js';
import { type Plan } from './load.js';

export interface Workload {
  readonly id: string;
  /** A few words for the table and the chart. */
  readonly label: string;
  readonly route: string;
  readonly plan: Plan;
}

const PAGE = 20;

export function workloads(targets: Targets, bigAccountDevices: number): Workload[] {
  const random = seededRandom(7);
  const page = (i: number) => {
    const filter = JSON.stringify({ limit: PAGE, skip: Math.floor(random() * (bigAccountDevices - PAGE + 1)) });
    return `/api/accounts/${targets.bigAccounts[i % targets.bigAccounts.length]}/devices?filter=${encodeURIComponent(filter)}`;
  };
  return [
    {
      id: 'W1',
      label: 'account + 50 devices',
      route: 'GET /api/accounts/:id?include=devices',
      plan: { kind: 'cycle', method: 'GET', paths: targets.fiftyDeviceAccounts.map((id) => `/api/accounts/${id}?include=devices`) },
    },
    {
      id: 'W2',
      label: 'page of 10,000',
      route: 'GET /api/accounts/:id/devices?filter={"limit":20,"skip":…}',
      plan: { kind: 'cycle', method: 'GET', paths: Array.from({ length: 1000 }, (_, i) => page(i)) },
    },
    {
      id: 'W3',
      label: 'link/unlink',
      route: 'PUT then DELETE /api/accounts/:id/devices/rel/:fk',
      plan: { kind: 'churn', pairs: targets.churnPairs },
    },
    {
      id: 'W5',
      label: 'reverse lookup',
      route: 'GET /api/devices/:id/accounts (100 accounts)',
      plan: { kind: 'cycle', method: 'GET', paths: targets.reverseDevices.map((id) => `/api/devices/${id}/accounts`) },
    },
    // Last: it deletes devices that W5 and the others do not use, each once.
    {
      id: 'W4',
      label: 'delete, 100 refs',
      route: 'DELETE /api/devices/:id (held by 100 accounts)',
      plan: { kind: 'drain', method: 'DELETE', paths: targets.deleteDevices.map((id) => `/api/devices/${id}`) },
    },
  ];
}

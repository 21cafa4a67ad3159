// A client of every operation, as an SDK user would write it: typed by the types
// openapi-typescript generates from /docs-json (./openapi.d.ts, written next to this file by
// test/docs.e2e-spec.ts) and compiled with tsc --strict before it runs. A parameter
// typed wrongly in the document (the account id was `Record<string, never>`) fails the compile.
import createClient from 'openapi-fetch';
import type { paths } from './openapi.js';

export interface Call {
  operation: string;
  status: number;
}

const baseUrl = process.argv[2];
const apiKey = process.argv[3];
const client = createClient<paths>({ baseUrl, headers: apiKey ? { 'X-API-Key': apiKey } : {} });
const calls: Call[] = [];

/** Records the call and hands back its body, failing loudly when a step the next needs did not succeed. */
async function call<T>(operation: string, sent: Promise<{ data?: T; error?: unknown; response: Response }>): Promise<T> {
  return (await answer(operation, sent)).data;
}

/** As `call`, with the response's headers too (its ETag). */
async function answer<T>(
  operation: string,
  sent: Promise<{ data?: T; error?: unknown; response: Response }>,
): Promise<{ data: T; headers: Headers }> {
  const { data, error, response } = await sent;
  calls.push({ operation, status: response.status });
  if (!response.ok) throw new Error(`${operation}: ${response.status} ${JSON.stringify(error)}`);
  return { data: data as T, headers: response.headers };
}

const UNKNOWN_ACCOUNT = '6650c0ffee0000000000a001';

await call('GET /health', client.GET('/health'));
await call('GET /health/ready', client.GET('/health/ready'));

const thermostat = await call(
  'POST /api/devices',
  client.POST('/api/devices', { body: { myId: 'thermostat-kitchen', deviceUID: 'UID-0017-A3' } }),
);
const lamp = await call('POST /api/devices', client.POST('/api/devices', { body: { myId: 'lamp-hall', deviceUID: 'UID-0042-B1' } }));
const thermostatId: string = thermostat._id;

await call(
  'GET /api/devices',
  client.GET('/api/devices', { params: { query: { filter: '{"where":{"myId":{"like":"^therm"}},"order":"createdAt DESC","limit":20}' } } }),
);
await call('GET /api/devices/count', client.GET('/api/devices/count', { params: { query: { where: '{"myId":{"inq":["lamp-hall"]}}' } } }));
const updated = await call(
  'POST /api/devices/update',
  client.POST('/api/devices/update', { params: { query: { where: '{"myId":"thermostat-kitchen"}' } }, body: { deviceUID: 'UID-0017-A4' } }),
);
if (updated.count !== 1) throw new Error(`updateAll changed ${updated.count} devices, not 1`);
await call(
  'GET /api/devices/findOne',
  client.GET('/api/devices/findOne', { params: { query: { filter: '{"where":{"myId":"lamp-hall"}}' } } }),
);
await call(
  'GET /api/devices/{id}',
  client.GET('/api/devices/{id}', { params: { path: { id: 'thermostat-kitchen' }, query: { filter: '{"fields":{"myId":true}}' } } }),
);
await call('HEAD /api/devices/{id}', client.HEAD('/api/devices/{id}', { params: { path: { id: thermostatId } } }));
const { exists } = await call(
  'GET /api/devices/{id}/exists',
  client.GET('/api/devices/{id}/exists', { params: { path: { id: 'lamp-hall' } } }),
);
if (!exists) throw new Error('lamp-hall should exist');
const lampRead = await answer('GET /api/devices/{id}', client.GET('/api/devices/{id}', { params: { path: { id: 'lamp-hall' } } }));
await call(
  'PATCH /api/devices/{id}',
  client.PATCH('/api/devices/{id}', {
    params: { path: { id: 'lamp-hall' }, header: { 'If-Match': lampRead.headers.get('ETag')! } },
    body: { deviceUID: 'UID-0042-B2' },
  }),
);
await call(
  'PUT /api/devices/{id}',
  client.PUT('/api/devices/{id}', { params: { path: { id: lamp._id } }, body: { myId: 'lamp-hall', deviceUID: 'UID-0042-B3' } }),
);

const account = await call(
  'POST /api/accounts',
  client.POST('/api/accounts', { body: { name: 'Kitchen', deviceIds: ['thermostat-kitchen'] } }),
);
const accountId: string = account._id;
await call(
  'GET /api/accounts',
  client.GET('/api/accounts', { params: { query: { filter: '{"where":{"name":{"like":"^Kit"}}}', include: 'devices' } } }),
);
await call(
  'GET /api/accounts/count',
  client.GET('/api/accounts/count', { params: { query: { where: `{"deviceIds":"${thermostatId}"}` } } }),
);
await call(
  'GET /api/accounts/findOne',
  client.GET('/api/accounts/findOne', { params: { query: { filter: '{"where":{"deviceIds":"thermostat-kitchen"}}' } } }),
);
const read = await call(
  'GET /api/accounts/{id}',
  client.GET('/api/accounts/{id}', { params: { path: { id: accountId }, query: { include: 'devices' } } }),
);
const myIds: string[] = (read.devices ?? []).map((device) => device.myId);
if (myIds.join() !== 'thermostat-kitchen') throw new Error(`include=devices gave ${myIds.join()}`);
await call('HEAD /api/accounts/{id}', client.HEAD('/api/accounts/{id}', { params: { path: { id: accountId } } }));
const unknown = await call(
  'GET /api/accounts/{id}/exists',
  client.GET('/api/accounts/{id}/exists', { params: { path: { id: UNKNOWN_ACCOUNT } } }),
);
if (unknown.exists) throw new Error(`${UNKNOWN_ACCOUNT} should not exist`);
await call(
  'PATCH /api/accounts/{id}',
  client.PATCH('/api/accounts/{id}', { params: { path: { id: accountId } }, body: { name: 'Kitchen (ground floor)' } }),
);
await call(
  'POST /api/accounts/update',
  client.POST('/api/accounts/update', { params: { query: { all: true } }, body: { name: 'Kitchen' } }),
);
await call(
  'PUT /api/accounts/{id}',
  client.PUT('/api/accounts/{id}', { params: { path: { id: accountId } }, body: { name: 'Kitchen', deviceIds: [thermostatId] } }),
);

const path = { id: accountId };
await call(
  'PUT /api/accounts/{id}/devices/rel/{fk}',
  client.PUT('/api/accounts/{id}/devices/rel/{fk}', { params: { path: { ...path, fk: 'lamp-hall' }, query: { position: 'end' } } }),
);
await call(
  'HEAD /api/accounts/{id}/devices/rel/{fk}',
  client.HEAD('/api/accounts/{id}/devices/rel/{fk}', { params: { path: { ...path, fk: 'lamp-hall' } } }),
);
const page = await call(
  'GET /api/accounts/{id}/devices',
  client.GET('/api/accounts/{id}/devices', { params: { path, query: { filter: '{"fields":{"myId":true},"limit":10}' } } }),
);
if (page.map((device) => device.myId).join() !== 'thermostat-kitchen,lamp-hall') throw new Error('devices not in reference order');
await call(
  'GET /api/accounts/{id}/devices/count',
  client.GET('/api/accounts/{id}/devices/count', { params: { path, query: { where: '{"myId":"lamp-hall"}' } } }),
);
await call(
  'POST /api/accounts/{id}/devices',
  client.POST('/api/accounts/{id}/devices', { params: { path }, body: { myId: 'sensor-door.front', deviceUID: 'UID-0099-C7' } }),
);
await call(
  'GET /api/accounts/{id}/devices/{fk}',
  client.GET('/api/accounts/{id}/devices/{fk}', { params: { path: { ...path, fk: 'sensor-door.front' } } }),
);
await call(
  'PUT /api/accounts/{id}/devices/{fk}',
  client.PUT('/api/accounts/{id}/devices/{fk}', {
    params: { path: { ...path, fk: 'sensor-door.front' } },
    body: { deviceUID: 'UID-0099-C8' },
  }),
);
await call(
  'DELETE /api/accounts/{id}/devices/rel/{fk}',
  client.DELETE('/api/accounts/{id}/devices/rel/{fk}', { params: { path: { ...path, fk: thermostatId } } }),
);
const linked = await answer(
  'POST /api/accounts/{id}/devices/rel',
  client.POST('/api/accounts/{id}/devices/rel', {
    params: { path, query: { position: 'before:lamp-hall' } },
    body: { ids: ['thermostat-kitchen'] },
  }),
);
await call(
  'PUT /api/accounts/{id}/devices/rel',
  client.PUT('/api/accounts/{id}/devices/rel', {
    params: { path, header: { 'If-Match': linked.headers.get('ETag')! } },
    body: { ids: ['lamp-hall', thermostatId, 'sensor-door.front'] },
  }),
);
await call(
  'GET /api/devices/{id}/accounts',
  client.GET('/api/devices/{id}/accounts', { params: { path: { id: 'lamp-hall' }, query: { filter: '{"fields":{"name":true}}' } } }),
);
await call(
  'DELETE /api/accounts/{id}/devices/{fk}',
  client.DELETE('/api/accounts/{id}/devices/{fk}', { params: { path: { ...path, fk: 'sensor-door.front' } } }),
);
const deleted = await call('DELETE /api/accounts/{id}/devices', client.DELETE('/api/accounts/{id}/devices', { params: { path } }));
if (deleted.count !== 2) throw new Error(`deleted ${deleted.count} of the account's 2 devices`);
await call('POST /api/devices', client.POST('/api/devices', { body: { myId: 'plug-garage', deviceUID: 'UID-0100-D1' } }));
await call('DELETE /api/devices/{id}', client.DELETE('/api/devices/{id}', { params: { path: { id: 'plug-garage' } } }));
await call('DELETE /api/accounts/{id}', client.DELETE('/api/accounts/{id}', { params: { path } }));

console.log(JSON.stringify(calls));

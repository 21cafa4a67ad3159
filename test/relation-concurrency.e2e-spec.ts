import { type AddressInfo } from 'node:net';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import request from 'supertest';
import { relationConfig } from '../src/config/config.module.js';
import { createTestApp, type TestApp } from './support/test-app.js';

interface DeviceBody {
  _id: string;
  myId: string;
}

/**
 * The application listening on a loopback port of its own, so that many requests in flight at
 * once share one server instead of each opening and closing an ephemeral one.
 */
async function listening(app: TestApp): Promise<string> {
  await app.app.listen(0, '127.0.0.1');
  return `http://127.0.0.1:${(app.http.address() as AddressInfo).port}`;
}

describe('Relation under concurrent requests', () => {
  let t: TestApp;
  let base: string;

  beforeAll(async () => {
    t = await createTestApp();
    base = await listening(t);
  });
  afterAll(() => t.close());
  beforeEach(() => t.clear());

  const createDevice = (url: string, myId: string): Promise<DeviceBody> =>
    request(url)
      .post('/api/devices')
      .send({ myId, deviceUID: `uid-${myId}` })
      .expect(201)
      .then((res) => res.body);
  const createAccount = (url: string, name: string, deviceIds: string[] = []): Promise<string> =>
    request(url)
      .post('/api/accounts')
      .send({ name, deviceIds })
      .expect(201)
      .then((res) => res.body._id);

  /** Every id in every account names an existing device, and no account holds an id twice. */
  async function expectNoDanglingOrRepeatedIds(app: TestApp) {
    const accounts = await app.accounts.find({}, { deviceIds: 1 }).lean();
    const referenced = [...new Set(accounts.flatMap((account) => account.deviceIds.map(String)))];
    const existing = await app.devices.find({ _id: { $in: referenced } }, { _id: 1 }).lean();
    expect(existing.map((device) => String(device._id)).sort()).toEqual(referenced.sort());
    for (const account of accounts) expect(new Set(account.deviceIds.map(String)).size).toBe(account.deviceIds.length);
  }

  describe('PUT /api/accounts/:id/devices/rel/:fk racing DELETE /api/devices/:id', () => {
    it('leaves no account referencing the deleted device, over 20 rounds of 15 links and one delete', async () => {
      const keeper = await createDevice(base, 'keeper');
      const accounts = [
        await createAccount(base, 'a', ['keeper']),
        await createAccount(base, 'b', ['keeper']),
        await createAccount(base, 'c', ['keeper']),
      ];
      const statuses = new Map<string, number>();
      const count = (key: string) => statuses.set(key, (statuses.get(key) ?? 0) + 1);

      for (let round = 0; round < 20; round += 1) {
        const device = await createDevice(base, `racer-${round}`);
        const links = accounts.flatMap((account) =>
          Array.from(
            { length: 5 },
            (_, i) => () => request(base).put(`/api/accounts/${account}/devices/rel/${i % 2 === 0 ? device._id : device.myId}`),
          ),
        );
        const remove = () => request(base).delete(`/api/devices/${device._id}`);
        // The delete takes a different place among the links each round.
        const calls = [...links];
        calls.splice(round % (links.length + 1), 0, remove);
        const responses = await Promise.all(calls.map((call) => call()));

        const deleteResponse = responses[round % (links.length + 1)];
        expect(deleteResponse.status).toBe(200);
        expect(deleteResponse.body).toEqual({ count: 1 });
        for (const res of responses.filter((res) => res !== deleteResponse)) {
          expect([200, 404]).toContain(res.status);
          count(`PUT ${res.status}`);
          if (res.status === 200) expect(res.body).toMatchObject({ _id: device._id, myId: device.myId });
        }
        expect(await t.devices.exists({ _id: device._id })).toBeNull();
        expect(await t.accounts.countDocuments({ deviceIds: device._id })).toBe(0);
      }

      await expectNoDanglingOrRepeatedIds(t);
      for (const account of accounts) expect((await t.accounts.findById(account).lean())?.deviceIds.map(String)).toEqual([keeper._id]);
      expect((statuses.get('PUT 200') ?? 0) + (statuses.get('PUT 404') ?? 0)).toBe(20 * 15);
    });
  });

  describe('PUT and DELETE /api/accounts/:id/devices/rel/:fk on one pair', () => {
    it('keeps the id at most once and HEAD agrees with the stored state, over 5 rounds of 20 mixed requests', async () => {
      const before = await createDevice(base, 'before');
      const target = await createDevice(base, 'target');
      const after = await createDevice(base, 'after');
      const account = await createAccount(base, 'pair', ['before', 'after']);

      for (let round = 0; round < 5; round += 1) {
        const calls = Array.from({ length: 20 }, (_, i) => {
          const fk = (i + round) % 3 === 0 ? target.myId : target._id;
          return (i + round) % 2 === 0
            ? () => request(base).put(`/api/accounts/${account}/devices/rel/${fk}`)
            : () => request(base).delete(`/api/accounts/${account}/devices/rel/${fk}`);
        });
        const responses = await Promise.all(calls.map((call) => call()));
        responses.forEach((res, i) => expect((i + round) % 2 === 0 ? [200] : [204, 404]).toContain(res.status));

        const stored = (await t.accounts.findById(account).lean())!.deviceIds.map(String);
        const occurrences = stored.filter((id) => id === target._id).length;
        expect(occurrences).toBeLessThanOrEqual(1);
        expect(stored.filter((id) => id !== target._id)).toEqual([before._id, after._id]);
        const head = await request(base).head(`/api/accounts/${account}/devices/rel/${target._id}`);
        expect(head.status).toBe(occurrences === 1 ? 200 : 404);
        const listed = await request(base).get(`/api/accounts/${account}/devices/count`).expect(200);
        expect(listed.body).toEqual({ count: stored.length });
      }
      await expectNoDanglingOrRepeatedIds(t);
    });

    it('links once however many identical links arrive together', async () => {
      const device = await createDevice(base, 'once');
      const account = await createAccount(base, 'idempotent');
      const responses = await Promise.all(
        Array.from({ length: 30 }, (_, i) => request(base).put(`/api/accounts/${account}/devices/rel/${i % 2 ? device._id : device.myId}`)),
      );
      expect(responses.map((res) => res.status)).toEqual(Array.from({ length: 30 }, () => 200));
      expect((await t.accounts.findById(account).lean())?.deviceIds.map(String)).toEqual([device._id]);
    });
  });

  describe('POST /api/accounts/:id/devices/rel with maxDevicesPerAccount 20', () => {
    let limited: TestApp;
    let limitedBase: string;

    beforeAll(async () => {
      limited = await createTestApp((builder) => builder.overrideProvider(relationConfig.KEY).useValue({ maxDevicesPerAccount: 20 }));
      limitedBase = await listening(limited);
    });
    afterAll(() => limited.close());

    it('never stores more than 20 or a duplicate, and answers 422 to every request it refuses, for 100 concurrent bulk links', async () => {
      const devices: DeviceBody[] = [];
      for (let i = 0; i < 40; i += 1) devices.push(await createDevice(limitedBase, `bulk-${i}`));
      const account = await createAccount(limitedBase, 'bulk');

      // Request i links 2 or 3 distinct devices, overlapping its neighbours, by ObjectId or myId.
      const batches = Array.from({ length: 100 }, (_, i) => {
        const size = i % 2 === 0 ? 3 : 2;
        return Array.from({ length: size }, (_, k) => devices[(i * 3 + k * 7) % devices.length]);
      });
      const responses = await Promise.all(
        batches.map((batch, i) =>
          request(limitedBase)
            .post(`/api/accounts/${account}/devices/rel`)
            .send({ ids: batch.map((device) => (i % 3 === 0 ? device.myId : device._id)) }),
        ),
      );

      const stored = (await limited.accounts.findById(account).lean())!.deviceIds.map(String);
      expect(stored.length).toBeLessThanOrEqual(20);
      expect(new Set(stored).size).toBe(stored.length);

      const accepted = new Set<string>();
      responses.forEach((res, i) => {
        expect([200, 422]).toContain(res.status);
        if (res.status === 422) {
          expect(res.body).toEqual({
            statusCode: 422,
            error: 'Unprocessable Entity',
            message: expect.any(String),
            details: [{ path: 'ids', code: 'too_many_devices', message: expect.any(String) }],
          });
        } else {
          expect(res.body.deviceIds.length).toBeLessThanOrEqual(20);
          for (const device of batches[i]) {
            accepted.add(device._id);
            expect(res.body.deviceIds).toContain(device._id);
          }
        }
      });
      // All or nothing: exactly the devices of the accepted requests are linked.
      expect(accepted.size).toBeGreaterThan(0);
      expect([...stored].sort()).toEqual([...accepted].sort());
      expect(responses.some((res) => res.status === 422)).toBe(true);
      await expectNoDanglingOrRepeatedIds(limited);
    });
  });
});

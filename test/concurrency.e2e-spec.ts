import { afterAll, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import { Types } from 'mongoose';
import request from 'supertest';
import { createAccount, createDevice, type DeviceBody, seedDevices, storedIds } from './support/bodies.js';
import { expectError } from './support/http.js';
import { createTestApp, listen, type TestApp } from './support/test-app.js';

/** Every id in every account names an existing device, and no account holds an id twice. */
async function expectNoDanglingOrRepeatedIds(app: TestApp) {
  const accounts = await app.accounts.find({}, { deviceIds: 1 }).lean();
  const referenced = [...new Set(accounts.flatMap((account) => account.deviceIds.map(String)))];
  const existing = await app.devices.find({ _id: { $in: referenced } }, { _id: 1 }).lean();
  expect(existing.map((device) => String(device._id)).sort()).toEqual(referenced.sort());
  for (const account of accounts) expect(new Set(account.deviceIds.map(String)).size).toBe(account.deviceIds.length);
}

describe('Relation under concurrent requests', () => {
  let t: TestApp;
  let base: string;
  let account: string;

  beforeAll(async () => {
    t = await createTestApp();
    base = await listen(t);
  });
  afterAll(() => t.close());
  beforeEach(async () => {
    await t.clear();
    account = (await t.accounts.create({ name: 'busy' }))._id.toHexString();
  });

  describe('PUT /api/accounts/:id/devices/rel/:fk', () => {
    it('keeps every one of 100 distinct devices linked concurrently, each exactly once', async () => {
      const ids = await seedDevices(t, 100);
      // Half by ObjectId, half by myId: both resolve to the same stored ObjectId.
      const responses = await Promise.all(
        ids.map((id, i) => request(t.http).put(`/api/accounts/${account}/devices/rel/${i % 2 ? id : `dev-${i}`}`)),
      );
      expect(responses.map((res) => res.status)).toEqual(ids.map(() => 200));
      expect(responses.map((res) => res.body._id)).toEqual(ids);
      const stored = await storedIds(t, account);
      expect(stored).toHaveLength(100);
      expect(new Set(stored).size).toBe(100);
      expect([...stored].sort()).toEqual([...ids].sort());
    });

    it('keeps one copy of a device linked 30 times concurrently, and answers 200 to all 30', async () => {
      const [other, id] = await seedDevices(t, 2);
      await request(t.http).put(`/api/accounts/${account}/devices/rel/${other}`).expect(200);
      const responses = await Promise.all(
        Array.from({ length: 30 }, (_, i) => request(t.http).put(`/api/accounts/${account}/devices/rel/${i % 2 ? id : 'dev-1'}`)),
      );
      expect(responses.map((res) => res.status)).toEqual(Array(30).fill(200));
      expect(responses.every((res) => res.body._id === id)).toBe(true);
      expect(await storedIds(t, account)).toEqual([other, id]);
    });
  });

  describe('PUT and DELETE /api/accounts/:id/devices/rel/:fk', () => {
    it('loses no link when links and unlinks of different devices interleave', async () => {
      const ids = await seedDevices(t, 40);
      const [kept, dropped] = [ids.slice(0, 20), ids.slice(20)];
      await t.accounts.updateOne({ _id: account }, { $set: { deviceIds: dropped } });
      const responses = await Promise.all([
        ...kept.map((id) => request(t.http).put(`/api/accounts/${account}/devices/rel/${id}`)),
        ...dropped.map((id) => request(t.http).delete(`/api/accounts/${account}/devices/rel/${id}`)),
      ]);
      expect(responses.map((res) => res.status)).toEqual([...kept.map(() => 200), ...dropped.map(() => 204)]);
      const stored = await storedIds(t, account);
      expect([...stored].sort()).toEqual([...kept].sort());
    });

    it('keeps the id at most once and HEAD agrees with the stored state, over 5 rounds of 20 mixed requests', async () => {
      const before = await createDevice(base, 'before');
      const target = await createDevice(base, 'target');
      const after = await createDevice(base, 'after');
      const account = await createAccount(base, ['before', 'after'], 'pair');

      for (let round = 0; round < 5; round += 1) {
        const calls = Array.from({ length: 20 }, (_, i) => {
          const fk = (i + round) % 3 === 0 ? target.myId : target._id;
          return (i + round) % 2 === 0
            ? () => request(base).put(`/api/accounts/${account}/devices/rel/${fk}`)
            : () => request(base).delete(`/api/accounts/${account}/devices/rel/${fk}`);
        });
        const responses = await Promise.all(calls.map((call) => call()));
        responses.forEach((res, i) => expect((i + round) % 2 === 0 ? [200] : [204, 404]).toContain(res.status));

        const stored = await storedIds(t, account);
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
  });

  describe('PUT /api/accounts/:id/devices/rel/:fk racing DELETE /api/devices/:id', () => {
    it('leaves no dangling id when links race the deletion of the same devices', async () => {
      const ids = await seedDevices(t, 20);
      const responses = await Promise.all(
        ids.flatMap((id) => [
          request(t.http).put(`/api/accounts/${account}/devices/rel/${id}`),
          request(t.http).delete(`/api/devices/${id}`),
        ]),
      );
      const links = responses.filter((_, i) => i % 2 === 0);
      const deletes = responses.filter((_, i) => i % 2 === 1);
      expect(deletes.map((res) => res.status)).toEqual(ids.map(() => 200));
      for (const link of links) expect([200, 404]).toContain(link.status);
      expect(await t.devices.countDocuments()).toBe(0);
      expect(await storedIds(t, account)).toEqual([]);
    });

    it('leaves no account referencing the deleted device, over 20 rounds of 15 links and one delete', async () => {
      const keeper = await createDevice(base, 'keeper');
      const accounts = [
        await createAccount(base, ['keeper'], 'a'),
        await createAccount(base, ['keeper'], 'b'),
        await createAccount(base, ['keeper'], 'c'),
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
      for (const account of accounts) expect(await storedIds(t, account)).toEqual([keeper._id]);
      expect((statuses.get('PUT 200') ?? 0) + (statuses.get('PUT 404') ?? 0)).toBe(20 * 15);
    });
  });
});

describe('Relation under concurrent requests, with a limit of 10 devices per account', () => {
  let t: TestApp;
  let account: string;

  beforeAll(async () => {
    t = await createTestApp({ config: { relation: { maxDevicesPerAccount: 10 } } });
  });
  afterAll(() => t.close());
  beforeEach(async () => {
    await t.clear();
    account = (await t.accounts.create({ name: 'limited' }))._id.toHexString();
  });

  describe('PUT /api/accounts/:id/devices/rel/:fk', () => {
    it('stores exactly 10 of 40 distinct devices linked concurrently and answers 422 to the other 30', async () => {
      const ids = await seedDevices(t, 40);
      const responses = await Promise.all(ids.map((id) => request(t.http).put(`/api/accounts/${account}/devices/rel/${id}`)));
      const linked = ids.filter((_, i) => responses[i].status === 200);
      const refused = responses.filter((res) => res.status === 422);
      expect(linked).toHaveLength(10);
      expect(refused).toHaveLength(30);
      for (const res of refused) {
        expectError(res, 422, [{ path: 'fk', code: 'too_many_devices' }]);
      }
      const stored = await storedIds(t, account);
      expect(stored).toHaveLength(10);
      expect([...stored].sort()).toEqual([...linked].sort());
    });

    it('answers 404 to concurrent links of unknown devices and 200 to a known one on an account one short of the limit (bug: an unknown ObjectId is written before it is checked and takes the last slot)', async () => {
      const ids = await seedDevices(t, 10);
      await t.accounts.updateOne({ _id: account }, { $set: { deviceIds: ids.slice(0, 9) } });
      const unknown = Array.from({ length: 20 }, () => new Types.ObjectId().toHexString());
      const responses = await Promise.all([
        ...unknown.slice(0, 10).map((id) => request(t.http).put(`/api/accounts/${account}/devices/rel/${id}`)),
        request(t.http).put(`/api/accounts/${account}/devices/rel/${ids[9]}`),
        ...unknown.slice(10).map((id) => request(t.http).put(`/api/accounts/${account}/devices/rel/${id}`)),
      ]);
      const statuses = responses.map((res) => res.status);
      expect(statuses).toEqual([...Array(10).fill(404), 200, ...Array(10).fill(404)]);
      expect(await storedIds(t, account)).toEqual(ids);
    });

    it('answers 200 to concurrent re-links of devices a full account already holds', async () => {
      const ids = await seedDevices(t, 12);
      await t.accounts.updateOne({ _id: account }, { $set: { deviceIds: ids.slice(0, 10) } });
      const responses = await Promise.all([
        ...ids.slice(0, 10).map((id) => request(t.http).put(`/api/accounts/${account}/devices/rel/${id}`)),
        ...ids.slice(10).map((id) => request(t.http).put(`/api/accounts/${account}/devices/rel/${id}`)),
      ]);
      expect(responses.map((res) => res.status)).toEqual([...Array(10).fill(200), 422, 422]);
      expect(await storedIds(t, account)).toEqual(ids.slice(0, 10));
    });
  });
});

describe('Relation under concurrent requests, with a limit of 20 devices per account', () => {
  let limited: TestApp;
  let limitedBase: string;

  beforeAll(async () => {
    limited = await createTestApp({ config: { relation: { maxDevicesPerAccount: 20 } } });
    limitedBase = await listen(limited);
  });
  afterAll(() => limited.close());

  describe('POST /api/accounts/:id/devices/rel', () => {
    it('never stores more than 20 or a duplicate, and answers 422 to every request it refuses, for 100 concurrent bulk links', async () => {
      const devices: DeviceBody[] = [];
      for (let i = 0; i < 40; i += 1) devices.push(await createDevice(limitedBase, `bulk-${i}`));
      const account = await createAccount(limitedBase, [], 'bulk');

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

      const stored = await storedIds(limited, account);
      expect(stored.length).toBeLessThanOrEqual(20);
      expect(new Set(stored).size).toBe(stored.length);

      const accepted = new Set<string>();
      responses.forEach((res, i) => {
        expect([200, 422]).toContain(res.status);
        if (res.status === 422) {
          expectError(res, 422, [{ path: 'ids', code: 'too_many_devices' }]);
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

import { beforeEach, describe, expect, it } from '@jest/globals';
import request, { type Response } from 'supertest';
import { appUnderTest, expectErrorAt } from './support/api-client.js';
import { type DeviceBody } from './support/bodies.js';

const UNKNOWN_ID = '0123456789abcdef01234567';

describe('Link at a position', () => {
  const app = appUnderTest();
  let devices: Record<string, DeviceBody>;

  beforeEach(async () => {
    devices = {};
    for (const myId of ['a', 'b', 'c', 'x', 'y', 'z']) devices[myId] = await app.api.device(myId);
  });

  const link = (account: string, fk: string, position?: string) =>
    request(app.t.http)
      .put(`/api/accounts/${account}/devices/rel/${fk}`)
      .query(position === undefined ? {} : { position });
  const linkMany = (account: string, ids: string[], position?: string) =>
    request(app.t.http)
      .post(`/api/accounts/${account}/devices/rel`)
      .query(position === undefined ? {} : { position })
      .send({ ids });
  const stored = async (account: string) => {
    const ids = (await app.t.accounts.findById(account).lean())!.deviceIds.map(String);
    const myIdOf = new Map(Object.values(devices).map((device) => [device._id, device.myId]));
    return ids.map((id) => myIdOf.get(id) ?? id);
  };

  describe('PUT /api/accounts/:id/devices/rel/:fk?position=', () => {
    it.each([
      ['start', ['x', 'a', 'b', 'c']],
      ['end', ['a', 'b', 'c', 'x']],
      ['before:b', ['a', 'x', 'b', 'c']],
      ['after:b', ['a', 'b', 'x', 'c']],
      ['before:a', ['x', 'a', 'b', 'c']],
      ['after:c', ['a', 'b', 'c', 'x']],
    ])('puts a new device at %s', async (position, expected) => {
      const account = await app.api.account('home', ['a', 'b', 'c']);
      const res = await link(account._id, 'x', position).expect(200);
      expect(res.body).toMatchObject({ _id: devices.x._id, myId: 'x' });
      expect(await stored(account._id)).toEqual(expected);
      expect(await app.api.myIds(account._id)).toEqual(expected);
    });

    it('names the device and the anchor by ObjectId or myId alike', async () => {
      const account = await app.api.account('home', ['a', 'b']);
      await link(account._id, devices.x._id, `before:${devices.b._id}`).expect(200);
      await link(account._id, 'y', `after:${devices.a._id}`).expect(200);
      await link(account._id, devices.z._id, 'after:b').expect(200);
      expect(await stored(account._id)).toEqual(['a', 'y', 'x', 'b', 'z']);
    });

    it('leaves a linked device where it is without a position, and moves it with one', async () => {
      const account = await app.api.account('home', ['a', 'b', 'c', 'x']);
      await link(account._id, 'b').expect(200);
      expect(await stored(account._id)).toEqual(['a', 'b', 'c', 'x']);
      await link(account._id, 'b', 'start').expect(200);
      expect(await stored(account._id)).toEqual(['b', 'a', 'c', 'x']);
      await link(account._id, 'b', 'end').expect(200);
      expect(await stored(account._id)).toEqual(['a', 'c', 'x', 'b']);
      await link(account._id, 'b', 'before:c').expect(200);
      expect(await stored(account._id)).toEqual(['a', 'b', 'c', 'x']);
      await link(account._id, 'a', 'after:x').expect(200);
      expect(await stored(account._id)).toEqual(['b', 'c', 'x', 'a']);
    });

    it.each(['start', 'end', 'before:c', 'after:a'])(
      'is idempotent at %s: asked again, the list and its ETag stay as they are',
      async (position) => {
        const account = await app.api.account('home', ['a', 'b', 'c']);
        await link(account._id, 'x', position).expect(200);
        const once = await stored(account._id);
        const etag = await app.api.etag(`/api/accounts/${account._id}`);
        await link(account._id, 'x', position).expect(200);
        await link(account._id, devices.x._id, position).expect(200);
        expect(await stored(account._id)).toEqual(once);
        expect(await app.api.etag(`/api/accounts/${account._id}`)).toBe(etag);
      },
    );

    it.each([
      ['a word it does not know', 'middle'],
      ['an empty anchor', 'before:'],
      ['an anchor that is no device id', 'after:has space'],
      ['an anchor that is a route word', 'before:count'],
      ['the wrong case', 'START'],
      ['no side', ':b'],
    ])('answers 400 naming position for %s, and changes nothing', async (_case, position) => {
      const account = await app.api.account('home', ['a', 'b']);
      expectErrorAt(await link(account._id, 'x', position), 400, 'position', 'invalid_position');
      expect(await stored(account._id)).toEqual(['a', 'b']);
    });

    it('answers 400 naming position when it is given twice', async () => {
      const account = await app.api.account('home', ['a', 'b']);
      const res = await request(app.t.http).put(`/api/accounts/${account._id}/devices/rel/x?position=start&position=end`);
      expectErrorAt(res, 400, 'position', 'invalid_position');
      expect(await stored(account._id)).toEqual(['a', 'b']);
    });

    it.each([
      ['a device that is not linked', 'before:c', 'anchor_not_linked'],
      ['a device that does not exist (myId)', 'after:nowhere', 'anchor_not_linked'],
      ['a device that does not exist (ObjectId)', `after:${UNKNOWN_ID}`, 'anchor_not_linked'],
      ['the device being linked', 'before:x', 'anchor_placed'],
    ])('answers 422 naming position for an anchor that is %s, and changes nothing', async (_case, position, code) => {
      const account = await app.api.account('home', ['a', 'b', 'x']);
      const etag = await app.api.etag(`/api/accounts/${account._id}`);
      expectErrorAt(await link(account._id, 'x', position), 422, 'position', code);
      expectErrorAt(await link(account._id, 'y', position === 'before:x' ? 'before:y' : position), 422, 'position', code);
      expect(await stored(account._id)).toEqual(['a', 'b', 'x']);
      expect(await app.api.etag(`/api/accounts/${account._id}`)).toBe(etag);
    });

    it.each(['start', 'end', 'after:a'])('answers 404 for an unknown device at %s and leaves the list as it was', async (position) => {
      const account = await app.api.account('home', ['a', 'b']);
      expect((await link(account._id, UNKNOWN_ID, position)).status).toBe(404);
      expect((await link(account._id, 'nowhere', position)).status).toBe(404);
      expect(await stored(account._id)).toEqual(['a', 'b']);
    });

    it('answers 404 for an unknown account', async () => {
      const res = await link(UNKNOWN_ID, 'x', 'start');
      expect(res.status).toBe(404);
      expect(res.body.message).toBe(`Account ${UNKNOWN_ID} not found`);
    });
  });

  describe('POST /api/accounts/:id/devices/rel?position=', () => {
    it.each([
      ['start', ['x', 'y', 'a', 'b', 'c']],
      ['end', ['a', 'b', 'c', 'x', 'y']],
      ['before:b', ['a', 'x', 'y', 'b', 'c']],
      ['after:b', ['a', 'b', 'x', 'y', 'c']],
    ])('places new devices at %s as one block, in the order given', async (position, expected) => {
      const account = await app.api.account('home', ['a', 'b', 'c']);
      const res = await linkMany(account._id, ['x', devices.y._id], position).expect(200);
      expect(res.body.deviceIds).toEqual(expected.map((myId) => devices[myId]._id));
      expect(res.headers.etag).toBe(await app.api.etag(`/api/accounts/${account._id}`));
      expect(await stored(account._id)).toEqual(expected);
    });

    it('moves the linked ones among them into the block; without a position they stay and new ones are appended', async () => {
      const account = await app.api.account('home', ['a', 'b', 'c', 'x']);
      await linkMany(account._id, ['y', 'c', 'a']).expect(200);
      expect(await stored(account._id)).toEqual(['a', 'b', 'c', 'x', 'y']);
      await linkMany(account._id, ['y', 'c', 'a'], 'after:x').expect(200);
      expect(await stored(account._id)).toEqual(['b', 'x', 'y', 'c', 'a']);
      await linkMany(account._id, ['a', 'b'], 'start').expect(200);
      expect(await stored(account._id)).toEqual(['a', 'b', 'x', 'y', 'c']);
      // The same request again finds everything in place and writes nothing.
      const etag = await app.api.etag(`/api/accounts/${account._id}`);
      await linkMany(account._id, ['a', 'b'], 'start').expect(200);
      expect(await app.api.etag(`/api/accounts/${account._id}`)).toBe(etag);
    });

    it('is all or nothing: an unknown id among them is a 422 naming it, and nothing moves', async () => {
      const account = await app.api.account('home', ['a', 'b', 'c']);
      expectErrorAt(await linkMany(account._id, ['c', 'nowhere', 'x'], 'start'), 422, 'ids[1]', 'unknown_device');
      expect(await stored(account._id)).toEqual(['a', 'b', 'c']);
    });

    it('answers 422 naming position for an anchor among the ids placed, or not linked, even with no ids, and changes nothing', async () => {
      const account = await app.api.account('home', ['a', 'b', 'c']);
      expectErrorAt(await linkMany(account._id, ['x', 'b'], 'after:b'), 422, 'position', 'anchor_placed');
      expectErrorAt(await linkMany(account._id, ['x'], 'after:y'), 422, 'position', 'anchor_not_linked');
      expectErrorAt(await linkMany(account._id, [], 'after:y'), 422, 'position', 'anchor_not_linked');
      expect(await stored(account._id)).toEqual(['a', 'b', 'c']);
    });

    it('is documented on both link routes, with a pattern that admits its examples and refuses what the service refuses', async () => {
      interface Parameter {
        name: string;
        in: string;
        schema: { pattern: string };
        examples: Record<string, { value: string }>;
      }
      const { paths } = (await request(app.t.http).get('/docs-json').expect(200)).body as {
        paths: Record<string, Record<string, { parameters: Parameter[]; responses: Record<string, unknown> }>>;
      };
      for (const [method, path] of [
        ['put', '/api/accounts/{id}/devices/rel/{fk}'],
        ['post', '/api/accounts/{id}/devices/rel'],
      ]) {
        const position = paths[path][method].parameters.find((parameter) => parameter.name === 'position')!;
        expect(position.in).toBe('query');
        const pattern = new RegExp(position.schema.pattern);
        for (const { value } of Object.values(position.examples)) expect(pattern.test(value)).toBe(true);
        for (const value of ['middle', 'before:', 'after:count', 'START', 'before:has space']) expect(pattern.test(value)).toBe(false);
        expect(JSON.stringify(paths[path][method].responses['422'])).toContain('anchor_not_linked');
        expect(JSON.stringify(paths[path][method].responses['400'])).toContain('invalid_position');
      }
    });

    it('answers 400 naming position for a malformed one before it looks at the ids', async () => {
      const account = await app.api.account('home', ['a']);
      expectErrorAt(await linkMany(account._id, ['nowhere'], 'first'), 400, 'position', 'invalid_position');
      expect(await stored(account._id)).toEqual(['a']);
    });
  });
});

describe('Link at a position, at the size limit', () => {
  const app = appUnderTest({ config: { relation: { maxDevicesPerAccount: 3 } } });

  beforeEach(async () => {
    for (const myId of ['a', 'b', 'c', 'x', 'y']) await app.api.device(myId);
  });

  it.each(['start', 'end', 'before:b', 'after:b'])(
    'refuses a new device at %s in a full list (422), and still moves a linked one there',
    async (position) => {
      const account = await app.api.account('full', ['a', 'b', 'c']);
      const refused = await request(app.t.http).put(`/api/accounts/${account._id}/devices/rel/x`).query({ position });
      expectErrorAt(refused, 422, 'fk', 'too_many_devices');
      const many = await request(app.t.http)
        .post(`/api/accounts/${account._id}/devices/rel`)
        .query({ position })
        .send({ ids: ['x'] });
      expectErrorAt(many, 422, 'ids', 'too_many_devices');
      expect(await app.api.myIds(account._id)).toEqual(['a', 'b', 'c']);

      const mover = position.endsWith(':b') ? 'c' : 'b';
      await request(app.t.http).put(`/api/accounts/${account._id}/devices/rel/${mover}`).query({ position }).expect(200);
      expect((await app.api.myIds(account._id)).sort()).toEqual(['a', 'b', 'c']);
    },
  );

  it('admits new ids up to the limit exactly, with one place left', async () => {
    const account = await app.api.account('almost', ['a']);
    await request(app.t.http)
      .post(`/api/accounts/${account._id}/devices/rel`)
      .query({ position: 'start' })
      .send({ ids: ['x', 'y'] })
      .expect(200);
    expect(await app.api.myIds(account._id)).toEqual(['x', 'y', 'a']);
    const over = await request(app.t.http)
      .post(`/api/accounts/${account._id}/devices/rel`)
      .query({ position: 'before:a' })
      .send({ ids: ['b'] });
    expectErrorAt(over, 422, 'ids', 'too_many_devices');
  });
});

describe('Link at a position under concurrent requests', () => {
  const app = appUnderTest({}, { listening: true });

  /**
   * Sends a request until it gets an answer other than 503 (the relation gives up on a list
   * that keeps changing under it and says so; a client tries again), at most 5 times.
   */
  async function settled(send: () => Promise<Response>, busy: { count: number }): Promise<Response> {
    for (let attempt = 1; ; attempt += 1) {
      const res = await send();
      if (res.status !== 503 || attempt === 5) return res;
      busy.count += 1;
    }
  }

  it('keeps every device exactly once, each on its side of the anchor, over 6 rounds of 12 mixed links', async () => {
    await app.api.device('anchor');
    const account = (await app.api.account('busy', ['anchor']))._id;
    const positions = ['start', 'end', 'before:anchor', 'after:anchor'];
    const side = new Map<string, 'before' | 'after'>();
    const busy = { count: 0 };
    for (let round = 0; round < 6; round += 1) {
      const fresh = await Promise.all(Array.from({ length: 12 }, (_, i) => app.api.device(`r${round}-${i}`)));
      // Half named by ObjectId, half by myId; each position taken by three of the twelve.
      const calls = fresh.map((device, i) => {
        const position = positions[(i + round) % positions.length];
        side.set(device.myId, position === 'start' || position === 'before:anchor' ? 'before' : 'after');
        const fk = i % 2 === 0 ? device._id : device.myId;
        return () => settled(() => request(app.server).put(`/api/accounts/${account}/devices/rel/${fk}`).query({ position }), busy);
      });
      const responses = await Promise.all(calls.map((call) => call()));
      expect(responses.map((res) => res.status)).toEqual(fresh.map(() => 200));
    }

    const myIds = await app.api.myIds(account);
    expect(myIds).toHaveLength(6 * 12 + 1);
    expect(new Set(myIds).size).toBe(myIds.length);
    const anchorAt = myIds.indexOf('anchor');
    const misplaced = myIds.filter((myId, index) => myId !== 'anchor' && (index < anchorAt ? 'before' : 'after') !== side.get(myId));
    expect(misplaced).toEqual([]);
    const stored = (await app.t.accounts.findById(account).lean())!.deviceIds.map(String);
    expect(new Set(stored).size).toBe(6 * 12 + 1);
    // Printed for the record: how often the compare-and-set gave up (503) and a retry went through.
    console.log(`concurrent positioned links: ${busy.count} answers 503 retried`);
  });

  it('loses no device when moves race links of new devices on one list, over 6 rounds', async () => {
    const names = ['m0', 'm1', 'm2', 'm3'];
    for (const myId of names) await app.api.device(myId);
    const account = (await app.api.account('moving', names))._id;
    const busy = { count: 0 };
    for (let round = 0; round < 6; round += 1) {
      const fresh = await Promise.all(Array.from({ length: 4 }, (_, i) => app.api.device(`n${round}-${i}`)));
      const moves = names.map(
        (myId, i) => () =>
          settled(
            () =>
              request(app.server)
                .put(`/api/accounts/${account}/devices/rel/${myId}`)
                .query({ position: i % 2 === 0 ? 'start' : `after:${names[(i + 1) % names.length]}` }),
            busy,
          ),
      );
      const links = fresh.map(
        (device, i) => () =>
          settled(
            () =>
              request(app.server)
                .post(`/api/accounts/${account}/devices/rel`)
                .query(i % 2 === 0 ? {} : { position: 'end' })
                .send({ ids: [device.myId] }),
            busy,
          ),
      );
      const responses = await Promise.all([...moves, ...links].map((call) => call()));
      expect(responses.map((res) => res.status)).toEqual([...moves, ...links].map(() => 200));
      const myIds = await app.api.myIds(account);
      expect(myIds).toHaveLength(names.length + 4 * (round + 1));
      expect(new Set(myIds).size).toBe(myIds.length);
    }
    console.log(`concurrent moves and links: ${busy.count} answers 503 retried`);
  });

  it('leaves no account referencing a device deleted while it is linked at positions, over 10 rounds', async () => {
    await app.api.device('keeper');
    const accounts = [(await app.api.account('p', ['keeper']))._id, (await app.api.account('q', ['keeper']))._id];
    const positions = ['start', 'end', 'before:keeper', 'after:keeper'];
    for (let round = 0; round < 10; round += 1) {
      const device = await app.api.device(`doomed-${round}`);
      const links = accounts.flatMap((account) =>
        positions.map(
          (position, i) => () =>
            request(app.server)
              .put(`/api/accounts/${account}/devices/rel/${i % 2 === 0 ? device._id : device.myId}`)
              .query({ position }),
        ),
      );
      const remove = () => request(app.server).delete(`/api/devices/${device._id}`);
      const calls = [...links];
      calls.splice(round % (links.length + 1), 0, remove);
      const responses = await Promise.all(calls.map((call) => call()));
      for (const res of responses) expect([200, 404]).toContain(res.status);
      expect(await app.t.accounts.countDocuments({ deviceIds: device._id })).toBe(0);
    }
    for (const account of accounts) expect(await app.api.myIds(account)).toEqual(['keeper']);
  });
});

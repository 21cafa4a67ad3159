import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import qs from 'qs';
import { Types } from 'mongoose';
import request from 'supertest';
import { type AccountBody, type DeviceBody, myIds } from './support/bodies.js';
import { expectError } from './support/http.js';
import { createTestApp, type TestApp } from './support/test-app.js';

type Filter = Record<string, unknown>;

/** `?filter=` as URL-encoded JSON. */
const json = (filter: unknown, key = 'filter') => `${key}=${encodeURIComponent(JSON.stringify(filter))}`;
/** `?filter[where][myId]=a`: brackets left as they are, values encoded. */
const bracket = (filter: unknown, key = 'filter') => qs.stringify({ [key]: filter }, { encodeValuesOnly: true });

const FORMS: Array<[string, (filter: unknown) => string]> = [
  ['JSON', (filter) => json(filter)],
  ['bracket form', (filter) => bracket(filter)],
];

/*
 * One data set for the whole file (every test here only reads):
 *   devices, in creation order, with createdAt on the first of months 1–6 of 2024
 *   accounts Kitchen [beta-1, alpha-1], Garage [alpha-2, beta-2, Gamma.1], attic []
 */
const DEVICES: Array<[string, string]> = [
  ['alpha-1', 'UID-100'],
  ['alpha-2', 'UID-200'],
  ['beta-1', 'UID-300'],
  ['beta-2', 'uid-400'],
  ['Gamma.1', 'UID-500'],
  ['delta:6', 'UID-600'],
];
const ALL = DEVICES.map(([myId]) => myId);
const month = (m: number, day = 1) => new Date(Date.UTC(2024, m - 1, day));

describe('Filter language', () => {
  let t: TestApp;
  const device: Record<string, DeviceBody> = {};
  const account: Record<string, AccountBody> = {};

  beforeAll(async () => {
    t = await createTestApp();
    await t.clear();
    for (const [index, [myId, deviceUID]] of DEVICES.entries()) {
      const res = await request(t.http).post('/api/devices').send({ myId, deviceUID }).expect(201);
      await t.devices.collection.updateOne({ _id: new Types.ObjectId(res.body._id) }, { $set: { createdAt: month(index + 1) } });
      device[myId] = { ...res.body, createdAt: month(index + 1).toISOString() };
    }
    const accounts: Array<[string, string[]]> = [
      ['Kitchen', ['beta-1', 'alpha-1']],
      ['Garage', ['alpha-2', 'beta-2', 'Gamma.1']],
      ['attic', []],
    ];
    for (const [index, [name, deviceIds]] of accounts.entries()) {
      const res = await request(t.http).post('/api/accounts').send({ name, deviceIds }).expect(201);
      await t.accounts.collection.updateOne({ _id: new Types.ObjectId(res.body._id) }, { $set: { createdAt: month(index + 1, 10) } });
      account[name] = res.body;
    }
  });
  afterAll(() => t.close());

  const names = (res: request.Response) => res.body.map((item: AccountBody) => item.name);

  it('starts from the data set it describes', async () => {
    expect(await t.devices.countDocuments()).toBe(6);
    expect(await t.devices.countDocuments({ createdAt: { $lt: month(2) } })).toBe(1);
    expect((await t.accounts.findOne({ name: 'Garage' }).lean())?.deviceIds.map(String)).toEqual(
      ['alpha-2', 'beta-2', 'Gamma.1'].map((id) => device[id]._id),
    );
  });

  describe('GET /api/devices?filter[where]', () => {
    const cases: Array<[string, () => Filter, string[]]> = [
      ['equality', () => ({ myId: 'beta-1' }), ['beta-1']],
      ['equality on a date', () => ({ createdAt: month(3).toISOString() }), ['beta-1']],
      ['neq', () => ({ myId: { neq: 'alpha-1' } }), ALL.filter((id) => id !== 'alpha-1')],
      ['gt on a string', () => ({ myId: { gt: 'beta-1' } }), ['beta-2', 'delta:6']],
      ['gte on a string', () => ({ myId: { gte: 'beta-1' } }), ['beta-1', 'beta-2', 'delta:6']],
      ['lt on a date', () => ({ createdAt: { lt: month(2).toISOString() } }), ['alpha-1']],
      ['lte on a date', () => ({ createdAt: { lte: month(2).toISOString() } }), ['alpha-1', 'alpha-2']],
      ['gt and lt together', () => ({ createdAt: { gt: month(2).toISOString(), lt: month(5).toISOString() } }), ['beta-1', 'beta-2']],
      ['between dates', () => ({ createdAt: { between: ['2024-02-15', month(5).toISOString()] } }), ['beta-1', 'beta-2', 'Gamma.1']],
      ['between strings', () => ({ deviceUID: { between: ['UID-200', 'UID-400'] } }), ['alpha-2', 'beta-1']],
      ['inq', () => ({ myId: { inq: ['delta:6', 'alpha-2', 'nobody'] } }), ['alpha-2', 'delta:6']],
      ['nin', () => ({ myId: { nin: ['delta:6', 'alpha-2'] } }), ['alpha-1', 'beta-1', 'beta-2', 'Gamma.1']],
      ['like', () => ({ myId: { like: 'pha' } }), ['alpha-1', 'alpha-2']],
      ['like with an anchored pattern', () => ({ myId: { like: '^beta-\\d$' } }), ['beta-1', 'beta-2']],
      ['like with options i', () => ({ myId: { like: 'GAMMA', options: 'i' } }), ['Gamma.1']],
      ['nlike', () => ({ myId: { nlike: 'a-' } }), ['Gamma.1', 'delta:6']],
      ['ilike', () => ({ deviceUID: { ilike: 'uid-[45]' } }), ['beta-2', 'Gamma.1']],
      ['nilike', () => ({ deviceUID: { nilike: '^UID-[1-3]' } }), ['beta-2', 'Gamma.1', 'delta:6']],
      ['regexp /pattern/flags', () => ({ myId: { regexp: '/^ALPHA/i' } }), ['alpha-1', 'alpha-2']],
      ['regexp as a plain pattern', () => ({ myId: { regexp: '\\.1$' } }), ['Gamma.1']],
      ['exists true', () => ({ deviceUID: { exists: true } }), ALL],
      ['exists false', () => ({ deviceUID: { exists: false } }), []],
      ['and', () => ({ and: [{ myId: { like: '^beta' } }, { createdAt: { gt: '2024-03-15' } }] }), ['beta-2']],
      ['or', () => ({ or: [{ myId: 'alpha-1' }, { deviceUID: 'UID-600' }] }), ['alpha-1', 'delta:6']],
      [
        'or inside and',
        () => ({ and: [{ or: [{ myId: 'alpha-1' }, { myId: 'beta-2' }] }, { deviceUID: { neq: 'UID-100' } }] }),
        ['beta-2'],
      ],
      ['_id by ObjectId', () => ({ _id: device['beta-1']._id }), ['beta-1']],
      ['_id by myId', () => ({ _id: 'Gamma.1' }), ['Gamma.1']],
      ['_id by an unknown myId', () => ({ _id: 'nobody' }), []],
      ['_id inq of an ObjectId and a myId', () => ({ _id: { inq: [device['alpha-1']._id, 'delta:6'] } }), ['alpha-1', 'delta:6']],
      ['_id nin by myId', () => ({ _id: { nin: ['alpha-1', 'alpha-2', 'beta-1'] } }), ['beta-2', 'Gamma.1', 'delta:6']],
      ['_id neq by myId', () => ({ _id: { neq: 'alpha-1' } }), ALL.filter((id) => id !== 'alpha-1')],
    ];

    for (const [form, encode] of FORMS) {
      it.each(cases)(`finds devices by %s (${form})`, async (_case, where, expected) => {
        const res = await request(t.http)
          .get(`/api/devices?${encode({ where: where() })}`)
          .expect(200);
        expect(myIds(res)).toEqual(expected);
        expect(res.headers['x-total-count']).toBe(String(expected.length));
      });
    }

    it('reads a hand-written bracket-form inq and exists', async () => {
      const res = await request(t.http)
        .get('/api/devices?filter[where][myId][inq][0]=beta-2&filter[where][myId][inq][1]=alpha-1&filter[where][deviceUID][exists]=true')
        .expect(200);
      expect(myIds(res)).toEqual(['alpha-1', 'beta-2']);
    });

    it('reads a bracket-form list given with empty brackets', async () => {
      const res = await request(t.http)
        .get('/api/devices?filter[where][myId][nin][]=alpha-1&filter[where][myId][nin][]=alpha-2')
        .expect(200);
      expect(myIds(res)).toEqual(['beta-1', 'beta-2', 'Gamma.1', 'delta:6']);
    });

    it('reads a bracket-form or with encoded values', async () => {
      const res = await request(t.http)
        .get(
          `/api/devices?filter[where][or][0][myId]=${encodeURIComponent('delta:6')}&filter[where][or][1][myId][like]=${encodeURIComponent('^Gam+a\\.')}`,
        )
        .expect(200);
      expect(myIds(res)).toEqual(['Gamma.1', 'delta:6']);
    });

    it('reads a bracket-form order with a space in it beside a limit', async () => {
      const res = await request(t.http)
        .get(`/api/devices?filter[limit]=1&filter[order]=${encodeURIComponent('myId DESC')}`)
        .expect(200);
      expect(myIds(res)).toEqual(['delta:6']);
    });
  });

  describe('GET /api/devices?filter[fields]', () => {
    it.each<[string, string]>([
      ['a JSON list', json({ fields: ['myId'], limit: 2 })],
      ['a JSON object', json({ fields: { myId: true }, limit: 2 })],
      ['a bracket-form list', 'filter[fields][0]=myId&filter[limit]=2'],
      ['a bracket-form object', 'filter[fields][myId]=true&filter[limit]=2'],
      ['a comma-separated string', `filter[fields]=${encodeURIComponent('myId,_id')}&filter[limit]=2`],
    ])('returns only _id and the listed fields for %s', async (_case, query) => {
      const res = await request(t.http).get(`/api/devices?${query}`).expect(200);
      expect(res.body).toEqual([
        { _id: device['alpha-1']._id, myId: 'alpha-1' },
        { _id: device['alpha-2']._id, myId: 'alpha-2' },
      ]);
    });

    it('leaves out fields set to false, _id included', async () => {
      const res = await request(t.http)
        .get(`/api/devices?${json({ fields: { _id: false, createdAt: false, updatedAt: false }, limit: 1 })}`)
        .expect(200);
      expect(res.body).toEqual([{ myId: 'alpha-1', deviceUID: 'UID-100' }]);
    });

    it('combines fields with where', async () => {
      const res = await request(t.http)
        .get(`/api/devices?${bracket({ where: { myId: 'beta-2' }, fields: ['deviceUID', 'createdAt'] })}`)
        .expect(200);
      expect(res.body).toEqual([{ _id: device['beta-2']._id, deviceUID: 'uid-400', createdAt: month(4).toISOString() }]);
    });
  });

  describe('GET /api/devices?filter[order]', () => {
    const byMyId = [...ALL].sort();
    it.each<[string, string, string[]]>([
      ['"myId DESC" in JSON', json({ order: 'myId DESC' }), [...byMyId].reverse()],
      ['"myId ASC" in the bracket form', `filter[order]=${encodeURIComponent('myId ASC')}`, byMyId],
      ['a bare field', 'filter[order]=deviceUID', ['alpha-1', 'alpha-2', 'beta-1', 'Gamma.1', 'delta:6', 'beta-2']],
      ['a date DESC', json({ order: ['createdAt DESC'] }), [...ALL].reverse()],
      ['a list in the bracket form', `filter[order][0]=${encodeURIComponent('createdAt DESC')}&filter[order][1]=myId`, [...ALL].reverse()],
      [
        'a comma-separated list',
        json({ order: 'deviceUID DESC, myId ASC' }),
        ['beta-2', 'delta:6', 'Gamma.1', 'beta-1', 'alpha-2', 'alpha-1'],
      ],
    ])('sorts by %s', async (_case, query, expected) => {
      const res = await request(t.http).get(`/api/devices?${query}`).expect(200);
      expect(myIds(res)).toEqual(expected);
    });
  });

  describe('GET /api/devices?filter[limit], [skip], [offset]', () => {
    it.each<[string, string, string[], string]>([
      ['limit in JSON', json({ limit: 2 }), ['alpha-1', 'alpha-2'], '6'],
      ['limit "2" in the bracket form', 'filter[limit]=2', ['alpha-1', 'alpha-2'], '6'],
      ['limit and skip', json({ limit: 2, skip: 1 }), ['alpha-2', 'beta-1'], '6'],
      ['limit and skip in the bracket form', 'filter[limit]=2&filter[skip]=3', ['beta-2', 'Gamma.1'], '6'],
      ['offset', json({ offset: 4 }), ['Gamma.1', 'delta:6'], '6'],
      ['offset in the bracket form', 'filter[offset]=5', ['delta:6'], '6'],
      ['a skip past the end', json({ skip: 10 }), [], '6'],
      [
        'where, order, skip and limit',
        json({ where: { myId: { like: 'a-' } }, order: 'myId DESC', skip: 1, limit: 2 }),
        ['beta-1', 'alpha-2'],
        '4',
      ],
      ['limit 1000', json({ limit: 1000 }), ALL, '6'],
    ])('pages by %s with X-Total-Count of every match', async (_case, query, expected, total) => {
      const res = await request(t.http).get(`/api/devices?${query}`).expect(200);
      expect(myIds(res)).toEqual(expected);
      expect(res.headers['x-total-count']).toBe(total);
    });
  });

  describe('GET /api/accounts?filter[where]', () => {
    const cases: Array<[string, () => Filter, string[]]> = [
      ['name equality', () => ({ name: 'Garage' }), ['Garage']],
      ['name neq', () => ({ name: { neq: 'Garage' } }), ['Kitchen', 'attic']],
      ['name gt', () => ({ name: { gt: 'Kitchen' } }), ['attic']],
      ['name gte', () => ({ name: { gte: 'Kitchen' } }), ['Kitchen', 'attic']],
      ['name lt', () => ({ name: { lt: 'Kitchen' } }), ['Garage']],
      ['name lte', () => ({ name: { lte: 'Kitchen' } }), ['Kitchen', 'Garage']],
      ['name between', () => ({ name: { between: ['G', 'L'] } }), ['Kitchen', 'Garage']],
      ['name inq', () => ({ name: { inq: ['attic', 'Garage'] } }), ['Garage', 'attic']],
      ['name nin', () => ({ name: { nin: ['attic', 'Garage'] } }), ['Kitchen']],
      ['name like', () => ({ name: { like: 'a' } }), ['Garage', 'attic']],
      ['name like with options i', () => ({ name: { like: 'ATTIC', options: 'i' } }), ['attic']],
      ['name nlike', () => ({ name: { nlike: '^[A-Z]' } }), ['attic']],
      ['name ilike', () => ({ name: { ilike: 'kitchen' } }), ['Kitchen']],
      ['name nilike', () => ({ name: { nilike: 'G' } }), ['Kitchen', 'attic']],
      ['name regexp', () => ({ name: { regexp: '/^k/i' } }), ['Kitchen']],
      ['name exists', () => ({ name: { exists: true } }), ['Kitchen', 'Garage', 'attic']],
      ['deviceIds by ObjectId', () => ({ deviceIds: device['alpha-1']._id }), ['Kitchen']],
      ['deviceIds by myId', () => ({ deviceIds: 'alpha-2' }), ['Garage']],
      ['deviceIds by an unlinked device', () => ({ deviceIds: 'delta:6' }), []],
      ['deviceIds by an unknown myId', () => ({ deviceIds: 'nobody' }), []],
      ['deviceIds inq of a myId and an ObjectId', () => ({ deviceIds: { inq: ['beta-1', device['beta-2']._id] } }), ['Kitchen', 'Garage']],
      ['deviceIds nin', () => ({ deviceIds: { nin: ['beta-1'] } }), ['Garage', 'attic']],
      ['deviceIds neq', () => ({ deviceIds: { neq: device['Gamma.1']._id } }), ['Kitchen', 'attic']],
      ['_id inq', () => ({ _id: { inq: [account.attic._id, account.Kitchen._id] } }), ['Kitchen', 'attic']],
      ['_id neq', () => ({ _id: { neq: account.Kitchen._id } }), ['Garage', 'attic']],
      ['createdAt gt', () => ({ createdAt: { gt: month(1, 10).toISOString() } }), ['Garage', 'attic']],
      ['createdAt between', () => ({ createdAt: { between: ['2024-01-01', '2024-02-28'] } }), ['Kitchen', 'Garage']],
      ['updatedAt exists', () => ({ updatedAt: { exists: true } }), ['Kitchen', 'Garage', 'attic']],
      ['and', () => ({ and: [{ name: { like: 'a' } }, { deviceIds: { exists: true } }, { createdAt: { lt: '2024-03-01' } }] }), ['Garage']],
      ['or', () => ({ or: [{ deviceIds: 'beta-1' }, { name: 'attic' }] }), ['Kitchen', 'attic']],
    ];

    for (const [form, encode] of FORMS) {
      it.each(cases)(`finds accounts by %s (${form})`, async (_case, where, expected) => {
        const res = await request(t.http)
          .get(`/api/accounts?${encode({ where: where() })}`)
          .expect(200);
        expect(names(res)).toEqual(expected);
        expect(res.headers['x-total-count']).toBe(String(expected.length));
      });
    }

    it('reads a hand-written bracket-form where on deviceIds by myId and by ObjectId', async () => {
      const byMyId = await request(t.http).get('/api/accounts?filter[where][deviceIds]=beta-2').expect(200);
      expect(names(byMyId)).toEqual(['Garage']);
      const byObjectId = await request(t.http).get(`/api/accounts?filter[where][deviceIds]=${device['beta-1']._id}`).expect(200);
      expect(names(byObjectId)).toEqual(['Kitchen']);
      expect(byObjectId.body[0].deviceIds).toEqual([device['beta-1']._id, device['alpha-1']._id]);
    });

    it('sorts, pages and picks fields of accounts', async () => {
      const res = await request(t.http)
        .get(`/api/accounts?${json({ order: 'name DESC', skip: 1, limit: 1, fields: ['name'] })}`)
        .expect(200);
      expect(res.body).toEqual([{ _id: account.Kitchen._id, name: 'Kitchen' }]);
      expect(res.headers['x-total-count']).toBe('3');
      const offset = await request(t.http).get('/api/accounts?filter[offset]=2&filter[fields][name]=true').expect(200);
      expect(offset.body).toEqual([{ _id: account.attic._id, name: 'attic' }]);
    });
  });

  describe('GET /api/accounts?filter[include]', () => {
    const devicesOf = (res: request.Response) =>
      Object.fromEntries(res.body.map((item: AccountBody) => [item.name, item.devices?.map((d) => d.myId)]));

    it.each<[string, string]>([
      ['"devices" in JSON', json({ include: 'devices' })],
      ['the bracket form', 'filter[include]=devices'],
      ['a relation object', json({ include: { relation: 'devices' } })],
      ['the ?include=devices shorthand', 'include=devices'],
      ['a list in the bracket form', 'filter[include][0]=devices'],
    ])('adds whole devices in deviceIds order and keeps deviceIds, given %s', async (_case, query) => {
      const res = await request(t.http).get(`/api/accounts?${query}`).expect(200);
      const kitchen = res.body.find((item: AccountBody) => item.name === 'Kitchen');
      expect(kitchen.devices).toEqual([device['beta-1'], device['alpha-1']]);
      expect(kitchen.deviceIds).toEqual([device['beta-1']._id, device['alpha-1']._id]);
      expect(devicesOf(res)).toEqual({ Kitchen: ['beta-1', 'alpha-1'], Garage: ['alpha-2', 'beta-2', 'Gamma.1'], attic: [] });
    });

    it.each<[string, Filter, Record<string, string[]>]>([
      ['where', { where: { myId: { like: '^beta' } } }, { Kitchen: ['beta-1'], Garage: ['beta-2'], attic: [] }],
      ['order', { order: 'myId ASC' }, { Kitchen: ['alpha-1', 'beta-1'], Garage: ['Gamma.1', 'alpha-2', 'beta-2'], attic: [] }],
      ['limit', { limit: 1 }, { Kitchen: ['beta-1'], Garage: ['alpha-2'], attic: [] }],
      ['skip and limit', { skip: 1, limit: 1 }, { Kitchen: ['alpha-1'], Garage: ['beta-2'], attic: [] }],
      [
        'order, skip and limit',
        { order: 'createdAt DESC', skip: 1, limit: 5 },
        { Kitchen: ['alpha-1'], Garage: ['beta-2', 'alpha-2'], attic: [] },
      ],
      [
        'where on _id by myId',
        { where: { _id: { inq: ['alpha-1', 'Gamma.1'] } } },
        { Kitchen: ['alpha-1'], Garage: ['Gamma.1'], attic: [] },
      ],
    ])('honours the scope %s for each account', async (_case, scope, expected) => {
      for (const query of [json({ include: { relation: 'devices', scope } }), bracket({ include: { relation: 'devices', scope } })]) {
        const res = await request(t.http).get(`/api/accounts?${query}`).expect(200);
        expect(devicesOf(res)).toEqual(expected);
      }
    });

    it('honours the scope fields', async () => {
      const res = await request(t.http)
        .get('/api/accounts?filter[where][name]=Kitchen&filter[include][relation]=devices&filter[include][scope][fields][0]=myId')
        .expect(200);
      expect(res.body[0].devices).toEqual([
        { _id: device['beta-1']._id, myId: 'beta-1' },
        { _id: device['alpha-1']._id, myId: 'alpha-1' },
      ]);
    });

    it('honours scope fields that leave _id out', async () => {
      const res = await request(t.http)
        .get(
          `/api/accounts?${json({ where: { name: 'Kitchen' }, include: { relation: 'devices', scope: { fields: { _id: false, myId: true } } } })}`,
        )
        .expect(200);
      expect(res.body[0].devices).toEqual([{ myId: 'beta-1' }, { myId: 'alpha-1' }]);
    });

    it('includes devices even when fields leaves deviceIds out, and does not return deviceIds', async () => {
      const res = await request(t.http)
        .get(`/api/accounts?${json({ where: { name: 'Garage' }, fields: ['name'], include: 'devices' })}`)
        .expect(200);
      expect(res.body).toEqual([
        { _id: account.Garage._id, name: 'Garage', devices: [device['alpha-2'], device['beta-2'], device['Gamma.1']] },
      ]);
    });
  });

  describe('GET /api/accounts/:id?filter', () => {
    it('adds devices with ?include=devices', async () => {
      const res = await request(t.http).get(`/api/accounts/${account.Garage._id}?include=devices`).expect(200);
      expect(res.body).toMatchObject({ _id: account.Garage._id, name: 'Garage', deviceIds: account.Garage.deviceIds });
      expect(res.body.devices).toEqual([device['alpha-2'], device['beta-2'], device['Gamma.1']]);
    });

    it('honours an include scope with where, order, limit and fields', async () => {
      const scope = { where: { myId: { neq: 'beta-2' } }, order: 'myId DESC', limit: 1, fields: ['myId', 'deviceUID'] };
      for (const query of [json({ include: { relation: 'devices', scope } }), bracket({ include: { relation: 'devices', scope } })]) {
        const res = await request(t.http).get(`/api/accounts/${account.Garage._id}?${query}`).expect(200);
        expect(res.body.devices).toEqual([{ _id: device['alpha-2']._id, myId: 'alpha-2', deviceUID: 'UID-200' }]);
        expect(res.body.deviceIds).toEqual(account.Garage.deviceIds);
      }
    });

    it('picks fields of the account', async () => {
      const res = await request(t.http).get(`/api/accounts/${account.Kitchen._id}?filter[fields][0]=deviceIds`).expect(200);
      expect(res.body).toEqual({ _id: account.Kitchen._id, deviceIds: [device['beta-1']._id, device['alpha-1']._id] });
    });

    it('answers an empty devices list for an account without devices', async () => {
      const res = await request(t.http)
        .get(`/api/accounts/${account.attic._id}?${json({ include: 'devices' })}`)
        .expect(200);
      expect(res.body.devices).toEqual([]);
      expect(res.body.deviceIds).toEqual([]);
    });
  });

  describe('and/or three deep (bug: refused as "nesting deeper than 8")', () => {
    // alpha-1 by its UID; beta-1 and beta-2 as betas created from March on.
    const where = {
      and: [
        { myId: { like: '^(alpha|beta)' } },
        {
          or: [
            { deviceUID: 'UID-100' },
            { and: [{ myId: { inq: ['beta-1', 'beta-2', 'Gamma.1'] } }, { createdAt: { gte: month(3).toISOString() } }] },
          ],
        },
      ],
    };

    it.each(FORMS)('finds the devices it describes, in %s', async (_form, query) => {
      const res = await request(t.http)
        .get(`/api/devices?${query({ where, order: 'myId ASC' })}`)
        .expect(200);
      expect(myIds(res)).toEqual(['alpha-1', 'beta-1', 'beta-2']);
    });

    it('counts them on /api/devices/count and within an account on the relation', async () => {
      expect(
        (
          await request(t.http)
            .get(`/api/devices/count?${json(where, 'where')}`)
            .expect(200)
        ).body,
      ).toEqual({ count: 3 });
      expect(
        (
          await request(t.http)
            .get(`/api/accounts/${account.Garage._id}/devices/count?${json(where, 'where')}`)
            .expect(200)
        ).body,
      ).toEqual({
        count: 1,
      });
      const res = await request(t.http)
        .get(`/api/accounts/${account.Kitchen._id}/devices?${json({ where })}`)
        .expect(200);
      expect(myIds(res)).toEqual(['beta-1', 'alpha-1']);
    });

    it('reads it in an include scope', async () => {
      const res = await request(t.http)
        .get(`/api/accounts/${account.Garage._id}?${json({ include: { relation: 'devices', scope: { where } } })}`)
        .expect(200);
      expect(res.body.devices.map((item: DeviceBody) => item.myId)).toEqual(['beta-2']);
    });
  });

  describe('patterns an engine refuses (bug: 500)', () => {
    const refused = ['{', 'a{', 'x{,5}', '[^]', '[]', '\\u{41}'];
    const routes: Array<[string, (pattern: string) => string, string]> = [
      ['GET /api/devices, like in JSON', (p) => `/api/devices?${json({ where: { myId: { like: p } } })}`, 'filter.where.myId.like'],
      [
        'GET /api/devices, like in bracket form',
        (p) => `/api/devices?filter[where][myId][like]=${encodeURIComponent(p)}`,
        'filter.where.myId.like',
      ],
      [
        'GET /api/accounts, nlike in bracket form',
        (p) => `/api/accounts?filter[where][name][nlike]=${encodeURIComponent(p)}`,
        'filter.where.name.nlike',
      ],
      [
        'GET /api/accounts/count, regexp',
        (p) => `/api/accounts/count?${json({ name: { regexp: `/${p}/i` } }, 'where')}`,
        'where.name.regexp',
      ],
      [
        'GET /api/accounts/:id/devices, ilike',
        (p) => `/api/accounts/${account.Garage._id}/devices?filter[where][deviceUID][ilike]=${encodeURIComponent(p)}`,
        'filter.where.deviceUID.ilike',
      ],
    ];

    it.each(refused.flatMap((pattern) => routes.map(([route, url, path]) => [pattern, route, url, path] as const)))(
      'answers 400 invalid_pattern to %j on %s',
      async (pattern, _route, url, path) => {
        const res = await request(t.http).get(url(pattern));
        expectError(res, 400, { including: [{ path, code: 'invalid_pattern' }] });
        expect(res.body.message).toContain(path);
      },
    );
  });

  describe('a filter holding many patterns (bug: one request filled the pattern check queue, 503)', () => {
    it('answers 400 too_many_patterns naming the first pattern past 100, and still answers 100', async () => {
      const or = (count: number) => Array.from({ length: count }, (_, i) => ({ myId: { like: `^many-${i}-` } }));
      const res = await request(t.http).get(`/api/devices?${json({ where: { or: or(150) } })}`);
      expectError(res, 400, { including: [{ path: 'filter.where.or[100].myId.like', code: 'too_many_patterns' }] });
      expect(res.body.details.every((detail: { path: string }) => !/or\[\d\d?\]\./.test(detail.path))).toBe(true);
      await request(t.http)
        .get(`/api/devices?${json({ where: { or: or(20) } })}`)
        .expect(200);
    });
  });

  describe('refused filters', () => {
    it.each<[string, string, string, string, string]>([
      ['malformed JSON', '/api/devices', 'filter={"where":', 'filter', 'invalid_json'],
      ['malformed JSON on accounts', '/api/accounts', `filter=${encodeURIComponent("{'limit':1}")}`, 'filter', 'invalid_json'],
      ['a malformed where on count', '/api/devices/count', 'where={myId', 'where', 'invalid_json'],
      ['a malformed include shorthand', '/api/accounts', 'include=[devices', 'include', 'invalid_json'],
      ['$where', '/api/devices', json({ where: { $where: 'sleep(100)' } }), 'filter.where.$where', 'forbidden_key'],
      ['a raw $ne', '/api/accounts', json({ where: { name: { $ne: null } } }), 'filter.where.name.$ne', 'forbidden_key'],
      ['a bracket-form $ne', '/api/accounts', 'filter[where][name][$ne]=x', 'filter.where.name.$ne', 'forbidden_key'],
      [
        '__proto__',
        '/api/devices',
        `filter=${encodeURIComponent('{"where":{"__proto__":{"polluted":1}}}')}`,
        'filter.where.__proto__',
        'forbidden_key',
      ],
      [
        'nesting past level 12 (five and-levels, then a field and its operator)',
        '/api/devices',
        json({ where: { and: [{ and: [{ and: [{ and: [{ and: [{ myId: { neq: 'x' } }] }] }] }] }] } }),
        'filter.where.and[0].and[0].and[0].and[0].and[0].myId.neq',
        'too_deep',
      ],
      ['an order on $natural', '/api/accounts', json({ order: '$natural ASC' }), 'filter.order', 'forbidden_value'],
      [
        '1001 inq values',
        '/api/devices',
        json({ where: { myId: { inq: Array.from({ length: 1001 }, () => 'a') } } }),
        'filter.where.myId.inq',
        'too_many_values',
      ],
      [
        'a 257-character pattern',
        '/api/devices',
        json({ where: { myId: { like: 'a'.repeat(257) } } }),
        'filter.where.myId.like',
        'pattern_too_long',
      ],
      [
        'an invalid regular expression',
        '/api/devices',
        `filter[where][myId][regexp]=${encodeURIComponent('/(a/')}`,
        'filter.where.myId.regexp',
        'invalid_pattern',
      ],
      [
        'an unknown field',
        '/api/devices',
        json({ where: { or: [{ myId: 'a' }, { owner: 'b' }] } }),
        'filter.where.or[1].owner',
        'unknown_field',
      ],
      ['an unknown operator', '/api/accounts', 'filter[where][name][contains]=a', 'filter.where.name.contains', 'unknown_operator'],
      ['an unknown key', '/api/devices', json({ sort: 'myId' }), 'filter.sort', 'unknown_key'],
      ['limit 0', '/api/devices', 'filter[limit]=0', 'filter.limit', 'out_of_range'],
      ['limit 1001', '/api/accounts', json({ limit: 1001 }), 'filter.limit', 'out_of_range'],
      ['skip and offset together', '/api/devices', 'filter[skip]=1&filter[offset]=1', 'filter.offset', 'conflict'],
      ['include on devices', '/api/devices', json({ include: 'devices' }), 'filter.include', 'unknown_relation'],
      ['an unknown relation', '/api/accounts', 'filter[include]=owners', 'filter.include', 'unknown_relation'],
      ['an unknown relation in the shorthand', '/api/accounts', 'include=owners', 'filter.include', 'unknown_relation'],
      [
        'an unknown field in a scope',
        '/api/accounts',
        json({ include: { relation: 'devices', scope: { where: { name: 'x' } } } }),
        'filter.include.scope.where.name',
        'unknown_field',
      ],
      ['an invalid date', '/api/devices', 'filter[where][createdAt][gt]=yesterday', 'filter.where.createdAt.gt', 'invalid_value'],
      [
        'an invalid device id in where',
        '/api/accounts',
        json({ where: { deviceIds: 'not valid!' } }),
        'filter.where.deviceIds',
        'invalid_value',
      ],
      [
        'an order on an unknown field',
        '/api/devices',
        `filter[order]=${encodeURIComponent('secret DESC')}`,
        'filter.order',
        'unknown_field',
      ],
      ['an unknown field on count', '/api/accounts/count', json({ owner: 'a' }, 'where'), 'where.owner', 'unknown_field'],
      ['a $ key on count', '/api/devices/count', 'where[myId][$gt]=', 'where.myId.$gt', 'forbidden_key'],
      [
        'an invalid pattern on findOne',
        '/api/devices/findOne',
        json({ where: { myId: { like: '(' } } }),
        'filter.where.myId.like',
        'invalid_pattern',
      ],
    ])('answers 400 for %s', async (_case, route, query, path, code) => {
      const res = await request(t.http).get(`${route}?${query}`);
      expectError(res, 400, { including: [{ path, code }] });
      expect(res.body.message).toContain(path);
    });

    it('says that $ is refused when an order names $natural (bug: "must be field ASC or field DESC")', async () => {
      for (const query of [json({ order: '$natural ASC' }), `filter[order]=${encodeURIComponent('$natural ASC')}`]) {
        const res = await request(t.http).get(`/api/devices?${query}`);
        expectError(res, 400, { including: [{ path: 'filter.order', code: 'forbidden_value' }] });
        expect(res.body.message).toContain('filter.order');
        expect(res.body.message).toMatch(/starting with \$ are refused/);
      }
    });

    it('answers 400 on GET /api/accounts/:id for a refused include', async () => {
      const res = await request(t.http).get(
        `/api/accounts/${account.Kitchen._id}?${json({ include: { relation: 'devices', scope: { limit: 0 } } })}`,
      );
      expectError(res, 400, { including: [{ path: 'filter.include.scope.limit', code: 'out_of_range' }] });
      expect(res.body.message).toContain('filter.include.scope.limit');
    });

    it('reports every problem of one filter in details', async () => {
      const res = await request(t.http).get(`/api/devices?${json({ where: { owner: 'a' }, limit: 0 })}`);
      expect(res.status).toBe(400);
      expect(res.body.details.map((detail: { path: string; code: string }) => `${detail.path}:${detail.code}`).sort()).toEqual([
        'filter.limit:out_of_range',
        'filter.where.owner:unknown_field',
      ]);
    });

    it('changed nothing after all the refused filters', async () => {
      expect(await t.devices.countDocuments()).toBe(6);
      expect(await t.accounts.countDocuments()).toBe(3);
      expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    });
  });
});

import { afterAll, beforeAll, beforeEach, describe, expect, it, jest } from '@jest/globals';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type mongo, Types } from 'mongoose';
import request from 'supertest';
import { type MigrationReport } from '../src/migrate/lb3-migration.js';
import { type AccountBody, type DeviceBody } from './support/bodies.js';
import { freePort, runService } from './support/processes.js';
import { createTestApp, type TestApp } from './support/test-app.js';

const ROOT = join(import.meta.dirname, '..');

type Report = MigrationReport & { target: string };

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the built converter (dist/migrate/main.js, built by `npm test`'s pretest) as a real process. */
function run(command: string, args: string[], env: Record<string, string> = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      cwd: ROOT,
      env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env } as NodeJS.ProcessEnv,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

jest.setTimeout(120_000);

describe('npm run migrate:lb3', () => {
  let t: TestApp;
  let source: mongo.Db;
  let target: mongo.Db;
  const sourceUri = new URL(process.env.MONGODB_URI!);
  sourceUri.pathname = `/lb3_fixture_${process.env.JEST_WORKER_ID ?? '1'}`;
  const FROM = sourceUri.toString();
  const TO = process.env.MONGODB_URI!;

  async function convert(args: string[], env: Record<string, string> = {}): Promise<Run & { report: Report }> {
    const result = await run(process.execPath, [join(ROOT, 'dist', 'migrate', 'main.js'), '--from', FROM, '--json', ...args], env);
    if (result.code !== 0) throw new Error(`the converter exited ${result.code}:\n${result.stderr}\n${result.stdout}`);
    return { ...result, report: JSON.parse(result.stdout) as Report };
  }

  /** Dry run, --apply, --apply again; checks what holds for every fixture, returns the three reports. */
  async function convertThrice(args: string[] = [], env: Record<string, string> = {}) {
    const dry = await convert(['--to', TO, ...args], env);
    expect(dry.report.mode).toBe('dry-run');
    expect(await target.listCollections().toArray()).toEqual([]);
    expect(dry.stderr).toBe(''); // no terminal, no progress

    const applied = await convert(['--to', TO, '--apply', ...args], env);
    expect(applied.report.mode).toBe('apply');
    expect(applied.report.integrity?.damaged).toEqual([]);
    // The dry run reported exactly what --apply did.
    const plan = ({ timings: _timings, mode: _mode, integrity: _integrity, ...rest }: Report) => rest;
    expect(plan(applied.report)).toEqual(plan(dry.report));

    const again = await convert(['--to', TO, '--apply', ...args], env);
    expect(again.report.upToDate).toBe(true);
    expect(again.report.devices.writes).toMatchObject({ insert: 0, update: 0, failed: 0 });
    expect(again.report.accounts.writes).toMatchObject({ insert: 0, update: 0, failed: 0 });
    expect(again.report.integrity?.damaged).toEqual([]);

    const integrity = await run(process.execPath, [join(ROOT, 'dist', 'integrity', 'main.js'), '--json'], { MONGODB_URI: TO, ...env });
    expect(integrity.code).toBe(0);
    expect(JSON.parse(integrity.stdout)).toMatchObject({ damaged: [] });
    return { dry: dry.report, applied: applied.report, again: again.report };
  }

  async function account(id: Types.ObjectId | string): Promise<AccountBody> {
    const response = await request(t.http)
      .get(`/api/accounts/${String(id)}?include=devices`)
      .expect(200);
    return response.body as AccountBody;
  }

  beforeAll(async () => {
    t = await createTestApp();
    source = t.connection.getClient().db(sourceUri.pathname.slice(1));
    target = t.connection.db!;
  });
  afterAll(async () => {
    await source.dropDatabase();
    await t.close();
  });
  beforeEach(async () => {
    await source.dropDatabase();
    await target.dropDatabase();
  });

  it('custom string ids (myId declared id: true): new ObjectIds, the old id kept as myId, every reference rewritten', async () => {
    const accountId = new Types.ObjectId();
    await source.collection('Device').insertMany([
      { _id: 'kitchen', deviceUID: 'UID-K' },
      { _id: 'hall', deviceUID: 'UID-H' },
    ] as never[]);
    await source.collection('Account').insertOne({ _id: accountId, name: 'Home', deviceIds: ['hall', 'kitchen'] });

    const { dry, applied } = await convertThrice();

    expect(dry.devices.newIds.map((entry) => entry.device).sort()).toEqual(['"hall"', '"kitchen"']);
    expect(dry.devices.writes).toEqual({ insert: 2, update: 0, unchanged: 0, failed: 0 });
    expect(dry.accounts.references).toEqual({ read: 2, kept: 2, rewritten: 2, dropped: 0, duplicates: 0 });
    expect(applied.accounts.writes).toEqual({ insert: 1, update: 0, unchanged: 0, failed: 0 });

    const body = await account(accountId);
    expect(body.devices?.map((device) => device.myId)).toEqual(['hall', 'kitchen']);
    const kitchen = (await request(t.http).get('/api/devices/kitchen').expect(200)).body as DeviceBody;
    expect(kitchen._id).toBe(dry.devices.newIds.find((entry) => entry.device === '"kitchen"')?.id);
    expect(body.deviceIds[1]).toBe(kitchen._id);
    // The service works on the converted data: relation count, and the cleanup on delete.
    await request(t.http).get(`/api/accounts/${accountId.toHexString()}/devices/count`).expect(200, { count: 2 });
    await request(t.http).delete('/api/devices/kitchen').expect(200);
    expect((await account(accountId)).deviceIds).toEqual([body.deviceIds[0]]);

    // The collections have the service's indexes, and the documents exactly its shape.
    const indexes = await target.collection('devices').indexes();
    expect(indexes).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ key: { myId: 1 }, unique: true }),
        expect.objectContaining({ key: { deviceUID: 1 }, unique: true }),
      ]),
    );
    expect(await target.collection('accounts').indexes()).toEqual(
      expect.arrayContaining([expect.objectContaining({ key: { deviceIds: 1 } })]),
    );
    const stored = await target.collection('devices').findOne({ myId: 'hall' });
    expect(Object.keys(stored!)).toEqual(['_id', 'myId', 'deviceUID', 'createdAt', 'updatedAt', 'rev']);
    expect(stored!._id).toBeInstanceOf(Types.ObjectId);
    const storedAccount = await target.collection('accounts').findOne({ _id: accountId });
    expect(Object.keys(storedAccount!)).toEqual(['_id', 'name', 'deviceIds', 'createdAt', 'updatedAt', 'rev']);
    expect(storedAccount!.deviceIds.every((id: unknown) => id instanceof Types.ObjectId)).toBe(true);
  });

  it('ObjectId devices with myId as a property; deviceIds holding ObjectIds, their hex strings, myIds and a mix', async () => {
    const [a, b, c] = [new Types.ObjectId(), new Types.ObjectId(), new Types.ObjectId()];
    const accounts = {
      objectIds: new Types.ObjectId(),
      hexes: new Types.ObjectId(),
      myIds: new Types.ObjectId(),
      mix: new Types.ObjectId(),
    };
    await source.collection('Device').insertMany([
      { _id: a, myId: 'lamp-a', deviceUID: 'UID-A' },
      { _id: b, myId: 'lamp-b', deviceUID: 'UID-B' },
      { _id: c, myId: 'lamp-c', deviceUID: 'UID-C' },
    ]);
    await source.collection('Account').insertMany([
      { _id: accounts.objectIds, name: 'objectIds', deviceIds: [c, a] },
      { _id: accounts.hexes, name: 'hexes', deviceIds: [b.toHexString(), a.toHexString().toUpperCase()] },
      { _id: accounts.myIds, name: 'myIds', deviceIds: ['lamp-c', 'lamp-b', 'lamp-a'] },
      { _id: accounts.mix, name: 'mix', deviceIds: ['lamp-b', c.toHexString(), a] },
    ]);

    const { dry } = await convertThrice();

    expect(dry.devices).toMatchObject({ read: 3, converted: 3, keptIds: 3, newIds: [], renamedMyIds: [], merged: [], refused: [] });
    expect(dry.accounts.references).toEqual({ read: 10, kept: 10, rewritten: 7, dropped: 0, duplicates: 0 });
    expect(dry.accounts.changed).toEqual([]);
    const myIds = async (id: Types.ObjectId) => (await account(id)).devices?.map((device) => device.myId);
    expect(await myIds(accounts.objectIds)).toEqual(['lamp-c', 'lamp-a']);
    expect(await myIds(accounts.hexes)).toEqual(['lamp-b', 'lamp-a']);
    expect(await myIds(accounts.myIds)).toEqual(['lamp-c', 'lamp-b', 'lamp-a']);
    expect(await myIds(accounts.mix)).toEqual(['lamp-b', 'lamp-c', 'lamp-a']);
    expect((await account(accounts.mix)).deviceIds).toEqual([b, c, a].map(String));
  });

  it('a half-migrated database: an old string-id device and its ObjectId successor with the same myId are merged', async () => {
    const successor = new Types.ObjectId();
    const [oldHolder, newHolder] = [new Types.ObjectId(), new Types.ObjectId()];
    await source.collection('Device').insertMany([
      { _id: 'thermostat', deviceUID: 'UID-OLD' },
      { _id: successor, myId: 'thermostat', deviceUID: 'UID-NEW' },
      { _id: 'sensor', deviceUID: 'UID-S' },
    ] as never[]);
    await source.collection('Account').insertMany([
      { _id: oldHolder, name: 'old', deviceIds: ['thermostat', 'sensor'] },
      { _id: newHolder, name: 'new', deviceIds: [successor, 'thermostat'] },
    ]);

    const { dry } = await convertThrice();

    expect(dry.devices.merged).toEqual([{ device: '"thermostat"', into: successor.toHexString(), reason: 'both have myId "thermostat"' }]);
    expect(dry.devices.converted).toBe(2);
    expect(dry.accounts.changed).toEqual([{ account: newHolder.toHexString(), dropped: [], duplicates: ['"thermostat"'] }]);
    const thermostat = (await request(t.http).get('/api/devices/thermostat').expect(200)).body as DeviceBody;
    expect(thermostat).toMatchObject({ _id: successor.toHexString(), deviceUID: 'UID-NEW' });
    expect((await account(oldHolder)).devices?.map((device) => device.myId)).toEqual(['thermostat', 'sensor']);
    expect((await account(newHolder)).deviceIds).toEqual([successor.toHexString()]);
  });

  it('devices without deviceUID: refused and their references dropped, or converted with --uid-from', async () => {
    const holder = new Types.ObjectId();
    const serialOnly = new Types.ObjectId();
    await source
      .collection('Device')
      .insertMany([
        { _id: 'kitchen' },
        { _id: serialOnly, myId: 'hall', hardware: { serial: 'SN-1' } },
        { _id: 'garage', deviceUID: 'UID-G' },
      ] as never[]);
    await source.collection('Account').insertOne({ _id: holder, name: 'Home', deviceIds: ['kitchen', 'hall', 'garage'] });

    const strict = await convert(['--to', TO]);
    expect(strict.report.devices.refused).toEqual([
      { device: '"kitchen"', reason: 'it has no deviceUID (name a field to take one from with --uid-from)' },
      { device: serialOnly.toHexString(), reason: 'it has no deviceUID (name a field to take one from with --uid-from)' },
    ]);
    expect(strict.report.accounts.changed).toEqual([
      {
        account: holder.toHexString(),
        dropped: [
          { id: '"kitchen"', reason: 'names device "kitchen", which was refused' },
          { id: '"hall"', reason: `names device ${serialOnly.toHexString()}, which was refused` },
        ],
        duplicates: [],
      },
    ]);

    const { dry } = await convertThrice(['--uid-from', 'myId']);
    expect(dry.devices.refused).toEqual([]);
    expect(dry.devices.uidFrom.map((entry) => [entry.device, entry.deviceUID])).toEqual([
      [serialOnly.toHexString(), 'hall'],
      ['"kitchen"', 'kitchen'],
    ]);
    const devices = (await account(holder)).devices!;
    expect(devices.map((device) => [device.myId, device.deviceUID])).toEqual([
      ['kitchen', 'kitchen'],
      ['hall', 'hall'],
      ['garage', 'UID-G'],
    ]);
  });

  it('myIds that break our rules (route word, 24-hex, bad characters, too long, none) are renamed and reported', async () => {
    const hexMyId = new Types.ObjectId().toHexString();
    const [withHexMyId, withoutMyId, longOne, holder] = [
      new Types.ObjectId(),
      new Types.ObjectId(),
      new Types.ObjectId(),
      new Types.ObjectId(),
    ];
    await source.collection('Device').insertMany([
      { _id: 'count', deviceUID: 'U1' },
      { _id: withHexMyId, myId: hexMyId, deviceUID: 'U2' },
      { _id: 'kitchen lamp', deviceUID: 'U3' },
      { _id: longOne, myId: 'x'.repeat(200), deviceUID: 'U4' },
      { _id: withoutMyId, deviceUID: 'U5' },
    ] as never[]);
    await source.collection('Account').insertOne({
      _id: holder,
      name: 'Home',
      deviceIds: ['count', hexMyId, 'kitchen lamp', 'x'.repeat(200), withoutMyId],
    });

    const { dry } = await convertThrice();

    const renamed = Object.fromEntries(dry.devices.renamedMyIds.map((entry) => [entry.from ?? '(none)', entry.to]));
    expect(renamed).toEqual({
      count: 'lb3-count',
      [hexMyId]: `lb3-${hexMyId}`,
      'kitchen lamp': 'kitchen_lamp',
      ['x'.repeat(200)]: 'x'.repeat(128),
      '(none)': `lb3-${withoutMyId.toHexString()}`,
    });
    expect(dry.accounts.references).toMatchObject({ read: 5, kept: 5, dropped: 0 });
    expect((await account(holder)).devices?.map((device) => device.myId)).toEqual([
      'lb3-count',
      `lb3-${hexMyId}`,
      'kitchen_lamp',
      'x'.repeat(128),
      `lb3-${withoutMyId.toHexString()}`,
    ]);
    await request(t.http).get('/api/devices/lb3-count').expect(200);
    await request(t.http).get('/api/devices/kitchen_lamp').expect(200);
  });

  it('ids that name no device are dropped and reported per account, never silently', async () => {
    const [alpha, beta, clean] = [new Types.ObjectId(), new Types.ObjectId(), new Types.ObjectId()];
    const ghost = new Types.ObjectId();
    await source.collection('Device').insertMany([{ _id: 'kitchen', deviceUID: 'U1' }] as never[]);
    await source.collection('Account').insertMany([
      { _id: alpha, name: 'alpha', deviceIds: ['ghost', 'kitchen', ghost, 'ghost'] },
      { _id: beta, name: 'beta', deviceIds: [ghost.toHexString(), 42, null, { id: 'kitchen' }] },
      { _id: clean, name: 'clean', deviceIds: ['kitchen'] },
    ]);

    const { dry } = await convertThrice();

    expect(dry.accounts.changed).toEqual([
      {
        account: alpha.toHexString(),
        dropped: [
          { id: '"ghost"', reason: 'names no device' },
          { id: ghost.toHexString(), reason: 'names no device' },
        ],
        duplicates: [],
      },
      {
        account: beta.toHexString(),
        dropped: [
          { id: JSON.stringify(ghost.toHexString()), reason: 'names no device' },
          { id: '42', reason: 'names no device' },
          { id: 'null', reason: 'is not a device id' },
          { id: '{"id":"kitchen"}', reason: 'is not a device id' },
        ],
        duplicates: [],
      },
    ]);
    expect(dry.accounts.references).toEqual({ read: 9, kept: 2, rewritten: 2, dropped: 7, duplicates: 0 });
    expect((await account(alpha)).devices?.map((device) => device.myId)).toEqual(['kitchen']);
    expect((await account(beta)).deviceIds).toEqual([]);
  });

  it('a device repeated under several spellings is kept once, at its first place', async () => {
    const lamp = new Types.ObjectId();
    const holder = new Types.ObjectId();
    await source.collection('Device').insertMany([
      { _id: lamp, myId: 'lamp', deviceUID: 'U1' },
      { _id: 'fan', deviceUID: 'U2' },
    ] as never[]);
    await source
      .collection('Account')
      .insertOne({ _id: holder, name: 'Home', deviceIds: ['fan', lamp, 'lamp', lamp.toHexString(), 'fan', lamp] });

    const { dry } = await convertThrice();

    expect(dry.accounts.changed).toEqual([
      {
        account: holder.toHexString(),
        dropped: [],
        duplicates: ['"lamp"', JSON.stringify(lamp.toHexString()), '"fan"', lamp.toHexString()],
      },
    ]);
    expect(dry.accounts.references).toMatchObject({ read: 6, kept: 2, duplicates: 4, dropped: 0 });
    expect((await account(holder)).devices?.map((device) => device.myId)).toEqual(['fan', 'lamp']);
  });

  it('an account over MAX_DEVICES_PER_ACCOUNT is refused for that account and reported; the others are converted', async () => {
    const [big, small] = [new Types.ObjectId(), new Types.ObjectId()];
    await source
      .collection('Device')
      .insertMany(Array.from({ length: 4 }, (_, index) => ({ _id: `d${index}`, deviceUID: `U${index}` })) as never[]);
    await source.collection('Account').insertMany([
      { _id: big, name: 'big', deviceIds: ['d0', 'd1', 'd2', 'd3'] },
      { _id: small, name: 'small', deviceIds: ['d0', 'd1', 'd2', 'd2'] },
    ]);

    const { dry, again } = await convertThrice([], { MAX_DEVICES_PER_ACCOUNT: '3' });

    expect(dry.limit).toBe(3);
    expect(dry.accounts.refused).toEqual([
      { account: big.toHexString(), reason: 'it references 4 devices, more than MAX_DEVICES_PER_ACCOUNT (3)', leftInTarget: false },
    ]);
    expect(again.accounts.refused).toHaveLength(1);
    await request(t.http).get(`/api/accounts/${big.toHexString()}`).expect(404);
    expect((await account(small)).devices?.map((device) => device.myId)).toEqual(['d0', 'd1', 'd2']);
  });

  it('a device whose myId the target already gives another device is refused, and references to it dropped', async () => {
    await request(t.http).post('/api/devices').send({ myId: 'kitchen', deviceUID: 'ALREADY-HERE' }).expect(201);
    const holder = new Types.ObjectId();
    await source.collection('Device').insertMany([
      { _id: 'kitchen', deviceUID: 'UID-K' },
      { _id: 'hall', deviceUID: 'UID-H' },
    ] as never[]);
    await source.collection('Account').insertOne({ _id: holder, name: 'Home', deviceIds: ['kitchen', 'hall'] });

    const dry = (await convert(['--to', TO])).report;
    const applied = (await convert(['--to', TO, '--apply'])).report;
    const again = (await convert(['--to', TO, '--apply'])).report;

    for (const report of [dry, applied, again]) {
      expect(report.devices.refused).toEqual([
        { device: '"kitchen"', reason: expect.stringMatching(/^the target already has myId "kitchen" on device [0-9a-f]{24}$/) },
      ]);
      expect(report.targetOnly.devices).toBe(1);
    }
    expect(applied.integrity?.damaged).toEqual([]);
    expect(again.upToDate).toBe(true);
    expect((await account(holder)).devices?.map((device) => device.deviceUID)).toEqual(['UID-H']);
    expect(((await request(t.http).get('/api/devices/kitchen').expect(200)).body as DeviceBody).deviceUID).toBe('ALREADY-HERE');
  });

  it('a write the target refuses is reported, and references to that device are dropped, so nothing dangles', async () => {
    // A unique index of the target's own, which the converter cannot foresee: the two devices
    // below get the same createdAt (neither has one, nor an ObjectId to take it from).
    await target.collection('devices').createIndex({ createdAt: 1 }, { unique: true });
    const holder = new Types.ObjectId();
    await source.collection('Device').insertMany([
      { _id: 'alpha', deviceUID: 'U1' },
      { _id: 'beta', deviceUID: 'U2' },
    ] as never[]);
    await source.collection('Account').insertOne({ _id: holder, name: 'Home', deviceIds: ['alpha', 'beta'] });

    const applied = await run(process.execPath, [
      join(ROOT, 'dist', 'migrate', 'main.js'),
      '--from',
      FROM,
      '--to',
      TO,
      '--apply',
      '--json',
    ]);
    expect(applied.code).toBe(1);
    const report = JSON.parse(applied.stdout) as Report;
    expect(report.writeErrors).toEqual([
      { collection: 'devices', id: expect.stringMatching(/^[0-9a-f]{24}$/), message: expect.any(String) },
    ]);
    expect(report.devices.writes).toMatchObject({ insert: 1, failed: 1 });
    expect(report.devices.refused).toEqual([
      { device: expect.stringMatching(/^"(alpha|beta)"$/), reason: expect.stringMatching(/^its write failed: /) },
    ]);
    const failed = report.devices.refused[0].device;
    expect(report.accounts.changed).toEqual([
      { account: holder.toHexString(), dropped: [{ id: failed, reason: `names device ${failed}, which was refused` }], duplicates: [] },
    ]);
    expect(report.integrity?.damaged).toEqual([]);
    expect((await account(holder)).devices).toHaveLength(1);
  });

  it('custom collection names, accounts with custom ids, no name and extra fields, into the database MONGODB_URI names', async () => {
    const named = new Types.ObjectId();
    await source.collection('gadgets').insertMany([{ _id: 'kitchen', deviceUID: 'U1', color: 'red' }] as never[]);
    await source.collection('customers').insertMany([
      { _id: 'customer-1', deviceIds: ['kitchen'], email: 'a@example.com', password: 'hash' },
      { _id: named, name: 'Named', nickname: 'N', deviceIds: [] },
    ] as never[]);
    const args = ['--from-devices', 'gadgets', '--from-accounts', 'customers'];

    const dry = (await convert(args, { MONGODB_URI: TO })).report;
    expect(dry.target).toMatch(/^external MongoDB from MONGODB_URI/);
    expect(dry.source).toEqual({ database: sourceUri.pathname.slice(1), devices: 'gadgets', accounts: 'customers' });
    const newId = dry.accounts.changed[0].newId!;
    expect(dry.accounts.changed).toEqual([
      {
        account: '"customer-1"',
        newId: expect.stringMatching(/^[0-9a-f]{24}$/),
        name: { from: null, to: `Account ${newId}`, reason: 'no name; named after its id' },
        dropped: [],
        duplicates: [],
      },
    ]);
    expect(dry.accounts.fieldsNotCarried).toEqual({ email: 1, password: 1, nickname: 1 });
    expect(dry.devices.fieldsNotCarried).toEqual({ color: 1 });

    await convert([...args, '--apply'], { MONGODB_URI: TO });
    expect((await convert([...args, '--apply'], { MONGODB_URI: TO })).report.upToDate).toBe(true);
    expect((await account(newId)).devices?.map((device) => device.myId)).toEqual(['kitchen']);
    expect((await account(named)).name).toBe('Named');
    expect(await target.collection('accounts').findOne({ _id: named }, { projection: { nickname: 1 } })).toEqual({ _id: named });
  });

  it('without --to or MONGODB_URI, writes into the embedded engine in DATA_DIR, where the service then finds it', async () => {
    const holder = new Types.ObjectId();
    await source.collection('Device').insertOne({ _id: 'kitchen', deviceUID: 'U1' } as never);
    await source.collection('Account').insertOne({ _id: holder, name: 'Home', deviceIds: ['kitchen'] });
    const dataDir = mkdtempSync(join(tmpdir(), 'refmany-migrate-'));
    try {
      const applied = (await convert(['--apply'], { DATA_DIR: dataDir })).report;
      expect(applied.target).toMatch(/^embedded .*, data in .*refmany-migrate-/);
      expect(applied.integrity?.damaged).toEqual([]);

      const service = runService({ DATA_DIR: dataDir }, await freePort());
      try {
        await service.waitForLine(/Listening on http/, 90_000);
        const response = await fetch(`${service.url}/api/accounts/${holder.toHexString()}?include=devices`);
        expect(response.status).toBe(200);
        expect(((await response.json()) as AccountBody).devices?.map((device) => device.myId)).toEqual(['kitchen']);
      } finally {
        service.child.kill('SIGTERM');
        await service.exited;
      }
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });

  it('says what is wrong with its input: a missing collection, a bad option, no --from', async () => {
    await source.collection('Device').insertOne({ _id: 'kitchen', deviceUID: 'U1' } as never);
    const converter = join(ROOT, 'dist', 'migrate', 'main.js');

    const missing = await run(process.execPath, [converter, '--from', FROM, '--to', TO]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/has no collection "Account" .*--from-accounts/);

    const unknown = await run(process.execPath, [converter, '--from', FROM, '--frm', 'x']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/--frm/);
    const noFrom = await run(process.execPath, [converter, '--apply']);
    expect(noFrom).toMatchObject({ code: 2, stderr: expect.stringContaining('--from is required') });
    const noDatabase = await run(process.execPath, [converter, '--from', 'mongodb://127.0.0.1:1/']);
    expect(noDatabase).toMatchObject({ code: 2, stderr: expect.stringContaining('names the database') });
    const help = await run(process.execPath, [converter, '--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('--uid-from <field>');
  });

  it('shows its progress on a terminal, and a readable report', async () => {
    await source.collection('Device').insertOne({ _id: 'kitchen', deviceUID: 'U1' } as never);
    await source.collection('Account').insertOne({ name: 'Home', deviceIds: ['kitchen', 'ghost'] });
    // script(1) gives the converter a pseudo-terminal; its output then carries both streams.
    const command = [process.execPath, join(ROOT, 'dist', 'migrate', 'main.js'), '--from', FROM, '--to', TO, '--apply']
      .map((part) => `'${part}'`)
      .join(' ');
    const terminal = await run('script', ['-qefc', command, '/dev/null']);
    expect(terminal.code).toBe(0);
    expect(terminal.stdout).toContain('\r\x1b[2KWriting accounts: 1/1 (100%)');
    expect(terminal.stdout).toContain('Applied.');
    expect(terminal.stdout).toMatch(/dropped "ghost" \(names no device\)/);
    expect(terminal.stdout).toContain('Integrity scan: 1 account and 1 device, no damage found.');
    expect(terminal.stdout).toContain('Wrote 2 documents.');

    const again = await run(process.execPath, [join(ROOT, 'dist', 'migrate', 'main.js'), '--from', FROM, '--to', TO, '--apply']);
    expect(again.stdout).toContain('Nothing changed: the target already held this conversion.');
    expect(again.stderr).toBe('');
  });
});

import { afterAll, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { getConnectionToken } from '@nestjs/mongoose';
import { type INestApplicationContext } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { type Connection, Types } from 'mongoose';
import { relationConfig } from '../../src/config/config.module.js';
import { IntegrityModule } from '../../src/integrity/integrity.module.js';
import { IntegrityService } from '../../src/integrity/integrity.service.js';

/** `npm run integrity`'s command line, run as the built command (dist/integrity/main.js). */
const CLI = join(import.meta.dirname, '..', '..', 'dist', 'integrity', 'main.js');

function integrityCommand(...args: string[]) {
  // No MONGODB_URI: a run that reached the database would start an engine; these must not.
  const env = { PATH: process.env.PATH, HOME: process.env.HOME };
  return spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', env, timeout: 20_000 });
}

describe('Integrity check (npm run integrity)', () => {
  let context: INestApplicationContext;
  let integrity: IntegrityService;
  let accounts: ReturnType<Connection['collection']>;
  let devices: ReturnType<Connection['collection']>;

  beforeAll(async () => {
    const moduleRef = await Test.createTestingModule({ imports: [IntegrityModule] })
      .overrideProvider(relationConfig.KEY)
      .useValue({ maxDevicesPerAccount: 3 })
      .compile();
    context = await moduleRef.init();
    integrity = context.get(IntegrityService);
    const connection = context.get<Connection>(getConnectionToken());
    // Damage is planted through the driver's collections, around Mongoose and the service.
    accounts = connection.collection('accounts');
    devices = connection.collection('devices');
  });
  afterAll(() => context.close());
  beforeEach(async () => {
    await accounts.deleteMany({});
    await devices.deleteMany({});
  });

  async function plantDevices(count: number): Promise<Types.ObjectId[]> {
    const ids = Array.from({ length: count }, () => new Types.ObjectId());
    await devices.insertMany(ids.map((_id, index) => ({ _id, myId: `planted-${index}`, deviceUID: `UID-${index}` })));
    return ids;
  }

  it('reports nothing on a healthy database', async () => {
    const [a, b] = await plantDevices(2);
    await accounts.insertOne({ name: 'healthy', deviceIds: [a, b] });
    const report = await integrity.check({ fix: false });
    expect(report).toMatchObject({ accountsScanned: 1, devicesScanned: 2, limit: 3, damaged: [] });
  });

  it('finds dangling, repeated and over-limit ids and leaves them without --fix', async () => {
    const [a, b, c, d] = await plantDevices(4);
    const ghost = new Types.ObjectId();
    const dangling = await accounts.insertOne({ name: 'dangling', deviceIds: [a, ghost, b] });
    const repeated = await accounts.insertOne({ name: 'repeated', deviceIds: [a, b, a] });
    const overLimit = await accounts.insertOne({ name: 'over', deviceIds: [a, b, c, d] });

    const report = await integrity.check({ fix: false });

    const byId = new Map(report.damaged.map((damage) => [damage.accountId, damage]));
    expect(report.damaged).toHaveLength(3);
    expect(byId.get(dangling.insertedId.toHexString())).toEqual({
      accountId: dangling.insertedId.toHexString(),
      dangling: [ghost.toHexString()],
      duplicates: [],
      overLimit: [],
      repaired: false,
    });
    expect(byId.get(repeated.insertedId.toHexString())).toMatchObject({ dangling: [], duplicates: [a.toHexString()], overLimit: [] });
    expect(byId.get(overLimit.insertedId.toHexString())).toMatchObject({ dangling: [], duplicates: [], overLimit: [d.toHexString()] });
    expect((await accounts.findOne({ _id: repeated.insertedId }))?.deviceIds).toHaveLength(3);
  });

  it('repairs every kind of damage with --fix, keeping first occurrences in order', async () => {
    const [a, b, c, d] = await plantDevices(4);
    const ghost = new Types.ObjectId();
    const all = await accounts.insertOne({ name: 'all of it', deviceIds: [c, ghost, a, c, b, d, a] });
    const fine = await accounts.insertOne({ name: 'fine', deviceIds: [d] });

    const report = await integrity.check({ fix: true });

    expect(report.damaged).toEqual([
      {
        accountId: all.insertedId.toHexString(),
        dangling: [ghost.toHexString()],
        duplicates: [c.toHexString(), a.toHexString()],
        overLimit: [d.toHexString()],
        repaired: true,
      },
    ]);
    expect((await accounts.findOne({ _id: all.insertedId }))?.deviceIds.map(String)).toEqual([c, a, b].map(String));
    expect((await accounts.findOne({ _id: fine.insertedId }))?.deviceIds.map(String)).toEqual([String(d)]);
    expect((await integrity.check({ fix: false })).damaged).toEqual([]);
  });
});

describe('npm run integrity -- --help (bug: it printed "Unknown option --help")', () => {
  it.each(['--help', '-h'])('%s prints what the command does, its options and exit codes, and exits 0', (flag) => {
    const result = integrityCommand(flag);
    expect(result.status).toBe(0);
    expect(result.stderr).toBe('');
    expect(result.stdout).toMatch(/^Usage: npm run integrity -- \[--fix\] \[--json\]/);
    for (const text of ['dangling', 'repeated', '--fix', '--json', '--help', 'MONGODB_URI', 'DATA_DIR', 'Exit status']) {
      expect(result.stdout).toContain(text);
    }
  });

  it('refuses an unknown option with exit code 2, naming it and pointing at --help', () => {
    const result = integrityCommand('--fxi');
    expect(result.status).toBe(2);
    expect(result.stdout).toBe('');
    expect(result.stderr).toMatch(/'--fxi'/);
    expect(result.stderr).toContain('--help');
  });
});

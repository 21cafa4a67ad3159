import { describe, expect, it } from '@jest/globals';
import { Types } from 'mongoose';
import { convertAccount, keyOf, planDevices, renameMyId, type SourceDocument, targetIdOf } from './lb3-conversion.js';

const rules = { maxDevicesPerAccount: 5 };
/** planDevices over these sources, with the default rules. */
const planOf = (...sources: SourceDocument[]) => planDevices(sources, rules);
const hex = (id: { toHexString(): string } | undefined) => id?.toHexString();

describe('keyOf and targetIdOf', () => {
  it('treats an ObjectId and its 24-hex string, in either case, as one id that is kept', () => {
    const id = new Types.ObjectId();
    expect(keyOf(id)).toBe(id.toHexString());
    expect(keyOf(id.toHexString().toUpperCase())).toBe(id.toHexString());
    expect(hex(targetIdOf('device', id))).toBe(id.toHexString());
    expect(hex(targetIdOf('device', id.toHexString()))).toBe(id.toHexString());
  });

  it('derives the same new ObjectId for a custom id on every run, distinct per id and per model', () => {
    const first = targetIdOf('device', 'kitchen');
    expect(first).toBeInstanceOf(Types.ObjectId);
    expect(hex(targetIdOf('device', 'kitchen'))).toBe(hex(first));
    expect(hex(targetIdOf('device', 'hall'))).not.toBe(hex(first));
    expect(hex(targetIdOf('account', 'kitchen'))).not.toBe(hex(first));
    expect(hex(targetIdOf('device', 42))).toBe(hex(targetIdOf('device', '42')));
  });

  it('finds no id in values that name nothing', () => {
    for (const value of [undefined, null, '', 1.5, true, { a: 1 }, ['x']]) {
      expect(keyOf(value)).toBeUndefined();
      expect(targetIdOf('device', value)).toBeUndefined();
    }
  });
});

describe('renameMyId', () => {
  const id = new Types.ObjectId('0123456789abcdef01234567');
  it.each([
    ['count', 'lb3-count'],
    ['rel', 'lb3-rel'],
    ['kitchen lamp/2', 'kitchen_lamp_2'],
    ['caf\u00e9', 'caf_'],
    ['5f0c1a2b3c4d5e6f7a8b9c0d', 'lb3-5f0c1a2b3c4d5e6f7a8b9c0d'],
    ['x'.repeat(300), 'x'.repeat(128)],
  ])('makes %j a valid myId: %j', (original, renamed) => {
    expect(renameMyId(original, id, new Set())).toBe(renamed);
  });

  it('falls back to lb3-<_id> when the name is taken or there is none', () => {
    expect(renameMyId('kitchen lamp', id, new Set(['kitchen_lamp']))).toBe('lb3-0123456789abcdef01234567');
    expect(renameMyId(undefined, id, new Set())).toBe('lb3-0123456789abcdef01234567');
  });
});

describe('planDevices', () => {
  it('takes the myId from a custom string _id (myId declared id: true) and from the property otherwise', () => {
    const objectId = new Types.ObjectId();
    const plan = planOf({ _id: 'kitchen', deviceUID: 'U1' }, { _id: objectId, myId: 'hall', deviceUID: 'U2' });
    expect(plan.devices.map((device) => [hex(device._id), device.myId, device.deviceUID])).toEqual([
      [hex(targetIdOf('device', 'kitchen')), 'kitchen', 'U1'],
      [objectId.toHexString(), 'hall', 'U2'],
    ]);
    expect(plan.notes.newIds).toEqual([{ device: '"kitchen"', id: hex(targetIdOf('device', 'kitchen')) }]);
    expect(plan.keptIds).toBe(1);
  });

  it('resolves ObjectIds, their hex strings, custom ids and myIds to the converted device', () => {
    const objectId = new Types.ObjectId();
    const plan = planOf({ _id: 'kitchen', deviceUID: 'U1' }, { _id: objectId, myId: 'hall', deviceUID: 'U2' });
    const kitchen = hex(targetIdOf('device', 'kitchen'));
    for (const [value, expected] of [
      ['kitchen', kitchen],
      [objectId, objectId.toHexString()],
      [objectId.toHexString(), objectId.toHexString()],
      ['hall', objectId.toHexString()],
    ] as const) {
      const resolution = plan.resolve(value);
      expect('id' in resolution && resolution.id.toHexString()).toBe(expected);
    }
    expect(plan.resolve('ghost')).toEqual({ problem: 'names no device' });
    expect(plan.resolve(new Types.ObjectId())).toEqual({ problem: 'names no device' });
    expect(plan.resolve({ id: 'x' })).toEqual({ problem: 'is not a device id' });
  });

  it('merges a string-_id device into the ObjectId one with the same myId, whichever sorts first', () => {
    const objectId = new Types.ObjectId();
    const plan = planOf({ _id: 'hall', deviceUID: 'OLD' }, { _id: objectId, myId: 'hall', deviceUID: 'NEW' });
    expect(plan.devices).toHaveLength(1);
    expect(plan.devices[0]).toMatchObject({ myId: 'hall', deviceUID: 'NEW' });
    expect(plan.notes.merged).toEqual([{ device: '"hall"', into: objectId.toHexString(), reason: 'both have myId "hall"' }]);
    const resolution = plan.resolve('hall');
    expect('id' in resolution && resolution.id.equals(objectId)).toBe(true);
  });

  it('gives a merged device the deviceUID of the document merged into it when it has none', () => {
    const objectId = new Types.ObjectId();
    const plan = planOf({ _id: 'hall', deviceUID: 'OLD' }, { _id: objectId, myId: 'hall' });
    expect(plan.devices).toEqual([expect.objectContaining({ myId: 'hall', deviceUID: 'OLD' })]);
    expect(plan.notes.uidFrom).toEqual([
      { device: objectId.toHexString(), field: 'deviceUID of "hall", merged into it', deviceUID: 'OLD' },
    ]);
    expect(plan.notes.refused).toEqual([]);
  });

  it('merges a device stored under the 24-hex string of another one’s ObjectId', () => {
    const objectId = new Types.ObjectId();
    const plan = planOf({ _id: objectId.toHexString(), deviceUID: 'U-string' }, { _id: objectId, myId: 'lamp', deviceUID: 'U-object' });
    expect(plan.devices.map((device) => device.deviceUID)).toEqual(['U-object']);
    expect(plan.notes.merged).toEqual([
      { device: JSON.stringify(objectId.toHexString()), into: objectId.toHexString(), reason: 'both ids name the same ObjectId' },
    ]);
  });

  it('renames myIds that break the rules and reports each with its reason', () => {
    const objectId = new Types.ObjectId();
    const plan = planOf(
      { _id: 'count', deviceUID: 'U1' },
      { _id: 'a b', deviceUID: 'U2' },
      { _id: 'a_b', deviceUID: 'U3' },
      { _id: objectId, deviceUID: 'U4' },
      { _id: new Types.ObjectId(), myId: 17, deviceUID: 'U5' },
    );
    expect(Object.fromEntries(plan.devices.map((device) => [device.deviceUID, device.myId]))).toEqual({
      U1: 'lb3-count',
      U2: `lb3-${hex(targetIdOf('device', 'a b'))}`,
      U3: 'a_b',
      U4: `lb3-${objectId.toHexString()}`,
      U5: '17',
    });
    expect(plan.notes.renamedMyIds.map((entry) => [entry.from, entry.reason])).toEqual(
      expect.arrayContaining([
        ['count', expect.stringContaining('route words')],
        ['a b', expect.stringContaining('letters, digits')],
        [null, 'it has no myId'],
      ]),
    );
    // References still use the old id.
    const resolution = plan.resolve('count');
    expect('id' in resolution && resolution.id.toHexString()).toBe(hex(targetIdOf('device', 'count')));
  });

  it('refuses devices without deviceUID unless --uid-from names where to take one', () => {
    const sources: SourceDocument[] = [{ _id: 'kitchen' }, { _id: new Types.ObjectId(), myId: 'hall', hardware: { serial: 'S-9' } }];
    const strict = planDevices(sources, rules);
    expect(strict.devices).toEqual([]);
    expect(strict.notes.refused.map((entry) => entry.reason)).toEqual([
      'it has no deviceUID (name a field to take one from with --uid-from)',
      'it has no deviceUID (name a field to take one from with --uid-from)',
    ]);
    expect(strict.resolve('kitchen')).toEqual({ problem: 'names device "kitchen", which was refused' });

    expect(planDevices(sources, { ...rules, uidFrom: 'myId' }).devices.map((device) => device.deviceUID)).toEqual(['kitchen', 'hall']);
    const bySerial = planDevices(sources, { ...rules, uidFrom: 'hardware.serial' });
    expect(bySerial.devices.map((device) => device.deviceUID)).toEqual(['S-9']);
    expect(bySerial.notes.refused).toEqual([
      { device: '"kitchen"', reason: 'it has no deviceUID and no hardware.serial to take one from' },
    ]);
    expect(bySerial.notes.uidFrom).toEqual([{ device: expect.any(String), field: 'hardware.serial', deviceUID: 'S-9' }]);
  });

  it('refuses the second device with a deviceUID already taken, and devices whose _id names nothing', () => {
    const plan = planOf(
      { _id: 'a', deviceUID: 'SAME' },
      { _id: 'b', deviceUID: 'SAME' },
      { _id: { weird: true }, deviceUID: 'U3' },
      { _id: 'c', deviceUID: 'x'.repeat(257) },
    );
    expect(plan.devices.map((device) => device.myId)).toEqual(['a']);
    expect(plan.notes.refused).toEqual([
      { device: '"b"', reason: 'deviceUID "SAME" is already device "a"\'s' },
      { device: '{"weird":true}', reason: 'its _id is neither an ObjectId, a string nor an integer' },
      { device: '"c"', reason: 'its deviceUID is longer than 256 characters' },
    ]);
  });

  it('counts the fields it does not carry over, and takes timestamps from the source or the ObjectId', () => {
    const objectId = new Types.ObjectId();
    const updatedAt = new Date('2020-01-02T03:04:05Z');
    const plan = planOf(
      { _id: objectId, myId: 'a', deviceUID: 'U1', color: 'red', updatedAt },
      { _id: 'b', deviceUID: 'U2', color: 'blue', ownerId: 1 },
    );
    expect(plan.notes.fieldsNotCarried).toEqual({ color: 2, ownerId: 1 });
    expect(plan.devices[0]).toMatchObject({ createdAt: objectId.getTimestamp(), updatedAt });
    expect(plan.devices[1].createdAt).toBeUndefined();
  });

  it('takes a device out after planning, and its references with it', () => {
    const plan = planOf({ _id: 'a', deviceUID: 'U1' });
    plan.refuse(targetIdOf('device', 'a')!, 'the target already has myId "a" on device x');
    expect(plan.devices).toEqual([]);
    expect(plan.notes.newIds).toEqual([]);
    expect(plan.resolve('a')).toEqual({ problem: 'names device "a", which was refused' });
  });
});

describe('convertAccount', () => {
  const objectIds = [new Types.ObjectId(), new Types.ObjectId()];
  const plan = planOf(
    { _id: 'kitchen', deviceUID: 'U1' },
    { _id: objectIds[0], myId: 'hall', deviceUID: 'U2' },
    { _id: objectIds[1], myId: 'garage', deviceUID: 'U3' },
    { _id: 'broken' },
  );
  const kitchen = targetIdOf('device', 'kitchen')!;

  it('rewrites every spelling to the ObjectId, keeps the first of repeats in order and lists what it drops', () => {
    const accountId = new Types.ObjectId();
    const outcome = convertAccount(
      {
        _id: accountId,
        name: 'Home',
        deviceIds: ['hall', 'kitchen', 'ghost', objectIds[0], 'kitchen', objectIds[1].toHexString(), 'ghost', 'broken', null],
      },
      plan,
      rules,
    );
    expect(outcome.converted?.deviceIds.map(hex)).toEqual([objectIds[0], kitchen, objectIds[1]].map(hex));
    expect(hex(outcome.converted?._id)).toBe(accountId.toHexString());
    expect(outcome.dropped).toEqual([
      { id: '"ghost"', reason: 'names no device' },
      { id: '"broken"', reason: 'names device "broken", which was refused' },
      { id: 'null', reason: 'is not a device id' },
    ]);
    expect(outcome.duplicates).toEqual([objectIds[0].toHexString(), '"kitchen"']);
    expect(outcome.references).toEqual({ read: 9, kept: 3, rewritten: 3 });
    expect(outcome.newId).toBeUndefined();
  });

  it('refuses an account over the limit rather than cutting its relation', () => {
    const many = planDevices(
      Array.from({ length: 6 }, (_, index) => ({ _id: `d${index}`, deviceUID: `U${index}` })),
      rules,
    );
    const outcome = convertAccount(
      { _id: new Types.ObjectId(), name: 'big', deviceIds: ['d0', 'd1', 'd2', 'd3', 'd4', 'd5', 'd5'] },
      many,
      rules,
    );
    expect(outcome.converted).toBeUndefined();
    expect(outcome.refused).toBe('it references 6 devices, more than MAX_DEVICES_PER_ACCOUNT (5)');
    expect(outcome.duplicates).toEqual(['"d5"']);
    expect(
      convertAccount({ _id: new Types.ObjectId(), name: 'ok', deviceIds: ['d0', 'd1', 'd2', 'd3', 'd4'] }, many, rules).converted,
    ).toBeDefined();
  });

  it('names an account without a name, cuts an overlong one, and gives a custom _id a new one', () => {
    const nameless = convertAccount({ _id: 'acc-1', deviceIds: [] }, plan, rules);
    const id = targetIdOf('account', 'acc-1')!;
    expect(nameless.converted).toMatchObject({ name: `Account ${id.toHexString()}`, deviceIds: [] });
    expect(nameless.newId).toBe(id.toHexString());
    expect(convertAccount({ _id: 'acc-1', title: 'From title' }, plan, { ...rules, nameFrom: 'title' }).converted?.name).toBe('From title');
    const long = convertAccount({ _id: new Types.ObjectId(), name: 'n'.repeat(250) }, plan, rules);
    expect(long.converted?.name).toBe('n'.repeat(200));
    expect(long.name?.reason).toBe('longer than 200 characters, cut');
  });

  it('refuses an account whose deviceIds is not an array, or whose _id names nothing', () => {
    expect(convertAccount({ _id: new Types.ObjectId(), name: 'x', deviceIds: 'kitchen' }, plan, rules).refused).toBe(
      'its deviceIds is not an array ("kitchen")',
    );
    expect(convertAccount({ _id: 2.5, name: 'x' }, plan, rules).refused).toBe('its _id is neither an ObjectId, a string nor an integer');
  });
});

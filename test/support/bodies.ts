import request, { type Response } from 'supertest';
import { type TestApp } from './test-app.js';

/** A device as the API returns it in JSON. */
export interface DeviceBody {
  _id: string;
  myId: string;
  deviceUID: string;
  createdAt: string;
  updatedAt: string;
}

/** An account as the API returns it in JSON. */
export interface AccountBody {
  _id: string;
  name: string;
  deviceIds: string[];
  createdAt?: string;
  updatedAt?: string;
  devices?: Array<Partial<DeviceBody>>;
}

/** What supertest sends requests to: a test app's server, or the URL of a running service. */
type Target = Parameters<typeof request>[0];

/** Creates a device over HTTP (201), its deviceUID derived from the myId unless given. */
export function createDevice(target: Target, myId: string, deviceUID = `uid-${myId}`): Promise<DeviceBody> {
  return request(target)
    .post('/api/devices')
    .send({ myId, deviceUID })
    .expect(201)
    .then((res) => res.body as DeviceBody);
}

/** Creates an account over HTTP (201) referencing `deviceIds` (ObjectIds or myIds); returns its id. */
export function createAccount(target: Target, deviceIds: string[] = [], name = 'acc'): Promise<string> {
  return request(target)
    .post('/api/accounts')
    .send({ name, deviceIds })
    .expect(201)
    .then((res) => (res.body as AccountBody)._id);
}

/**
 * Creates devices straight through the model, one per myId given (or, given a number, that many
 * named `<prefix>-<i>`), each with the deviceUID `uid-<myId>`; returns their ObjectIds as hex, in order.
 */
export async function seedDevices(t: TestApp, myIds: number | readonly string[], prefix = 'dev'): Promise<string[]> {
  const names = typeof myIds === 'number' ? Array.from({ length: myIds }, (_, i) => `${prefix}-${i}`) : myIds;
  const devices = await t.devices.insertMany(names.map((myId) => ({ myId, deviceUID: `uid-${myId}` })));
  return devices.map((device) => device._id.toHexString());
}

/** Creates a device over HTTP for each myId, in order; returns them by myId. */
export async function createDevices<K extends string>(target: Target, myIds: readonly K[]): Promise<Record<K, DeviceBody>> {
  const devices = {} as Record<K, DeviceBody>;
  for (const myId of myIds) devices[myId] = await createDevice(target, myId);
  return devices;
}

/** The account's stored `deviceIds` as hex strings, in stored order, read through the model. */
export async function storedIds(t: TestApp, accountId: string): Promise<string[]> {
  return (await t.accounts.findById(accountId).orFail().lean()).deviceIds.map(String);
}

/** The myIds of the devices a list answered, in its order. */
export const myIds = (res: Response): string[] => (res.body as DeviceBody[]).map((device) => device.myId);

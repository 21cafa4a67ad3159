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

/** Creates `count` devices straight through the model (`<prefix>-<i>`); returns their ObjectIds as hex, in order. */
export async function seedDevices(t: TestApp, count: number, prefix = 'dev'): Promise<string[]> {
  const devices = await t.devices.insertMany(
    Array.from({ length: count }, (_, i) => ({ myId: `${prefix}-${i}`, deviceUID: `uid-${prefix}-${i}` })),
  );
  return devices.map((device) => device._id.toHexString());
}

/** The account's stored `deviceIds` as hex strings, in stored order, read through the model. */
export async function storedIds(t: TestApp, accountId: string): Promise<string[]> {
  return (await t.accounts.findById(accountId).orFail().lean()).deviceIds.map(String);
}

/** The myIds of the devices a list answered, in its order. */
export const myIds = (res: Response): string[] => (res.body as DeviceBody[]).map((device) => device.myId);

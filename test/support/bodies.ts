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

/** Creates an account over HTTP (201) referencing `deviceIds` (ObjectIds or myIds); returns it as answered. */
function postAccount(target: Target, name: string, deviceIds: string[]): Promise<AccountBody> {
  return request(target)
    .post('/api/accounts')
    .send({ name, deviceIds })
    .expect(201)
    .then((res) => res.body as AccountBody);
}

/** Creates an account over HTTP (201) referencing `deviceIds` (ObjectIds or myIds); returns its id. */
export function createAccount(target: Target, deviceIds: string[] = [], name = 'acc'): Promise<string> {
  return postAccount(target, name, deviceIds).then((account) => account._id);
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

/** The calls the tests of one feature set up and read their data with, on one server, each expecting success. */
export function apiOf(target: Target) {
  return {
    device: (myId: string): Promise<DeviceBody> => createDevice(target, myId),
    account: (name: string, deviceIds: string[] = []): Promise<AccountBody> => postAccount(target, name, deviceIds),
    /** The account's device myIds, in reference order. */
    myIds: (account: string): Promise<string[]> =>
      request(target)
        .get(`/api/accounts/${account}/devices`)
        .query({ filter: JSON.stringify({ fields: { myId: true }, limit: 1000 }) })
        .expect(200)
        .then(myIds),
    /** The current ETag of a resource (GET of it whole). */
    etag: (path: string): Promise<string> =>
      request(target)
        .get(path)
        .expect(200)
        .then((res) => res.headers.etag as string),
  };
}

import { expect } from '@jest/globals';
import { STATUS_CODES } from 'node:http';
import { type AddressInfo } from 'node:net';
import request, { type Response } from 'supertest';
import { type AccountBody, type DeviceBody } from './bodies.js';
import { type TestApp } from './test-app.js';

/**
 * The application listening on a loopback port of its own, so that requests in flight at once
 * (concurrency tests) share one server, each client on connections of its own.
 */
export async function listen(t: TestApp): Promise<string> {
  await t.app.listen(0, '127.0.0.1');
  return `http://127.0.0.1:${(t.http.address() as AddressInfo).port}`;
}

/** The few calls the tests of one feature set up their data with, each expecting success. */
export function apiOf(server: Parameters<typeof request>[0]) {
  return {
    device: (myId: string): Promise<DeviceBody> =>
      request(server)
        .post('/api/devices')
        .send({ myId, deviceUID: `uid-${myId}` })
        .expect(201)
        .then((res) => res.body as DeviceBody),
    account: (name: string, deviceIds: string[] = []): Promise<AccountBody> =>
      request(server)
        .post('/api/accounts')
        .send({ name, deviceIds })
        .expect(201)
        .then((res) => res.body as AccountBody),
    /** The account's device myIds, in reference order. */
    myIds: (account: string): Promise<string[]> =>
      request(server)
        .get(`/api/accounts/${account}/devices`)
        .query({ filter: JSON.stringify({ fields: { myId: true }, limit: 1000 }) })
        .expect(200)
        .then((res) => (res.body as DeviceBody[]).map((device) => device.myId)),
    /** The current ETag of a resource (GET of it whole). */
    etag: (path: string): Promise<string> =>
      request(server)
        .get(path)
        .expect(200)
        .then((res) => res.headers.etag as string),
  };
}

/** An answer in the error shape of DESIGN.md, exactly, whose details name `path` with `code`. */
export function expectErrorAt(res: Response, status: number, path: string, code: string): void {
  expect(res.status).toBe(status);
  expect(res.body).toEqual({
    statusCode: status,
    error: STATUS_CODES[status],
    message: expect.any(String),
    details: expect.arrayContaining([{ path, code, message: expect.any(String) }]),
  });
}

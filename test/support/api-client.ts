import { afterAll, beforeAll, beforeEach, expect } from '@jest/globals';
import { STATUS_CODES } from 'node:http';
import { type AddressInfo } from 'node:net';
import request, { type Response } from 'supertest';
import { type AccountBody, type DeviceBody } from './bodies.js';
import { createTestApp, type TestApp, type TestAppOptions } from './test-app.js';

/**
 * The application listening on a loopback port of its own, so that requests in flight at once
 * (concurrency tests) share one server, each client on connections of its own.
 */
export async function listen(t: TestApp): Promise<string> {
  await t.app.listen(0, '127.0.0.1');
  return `http://127.0.0.1:${(t.http.address() as AddressInfo).port}`;
}

export type Api = ReturnType<typeof apiOf>;

export interface AppUnderTest {
  readonly t: TestApp;
  /** What requests go to: the application's server, or its URL when it listens on a port. */
  readonly server: string | TestApp['http'];
  readonly api: Api;
}

/**
 * The application the tests of a describe run against: created before them, emptied before
 * each, closed after. `listening` serves it on a port of its own (see listen).
 */
export function appUnderTest(options: TestAppOptions = {}, { listening = false } = {}): AppUnderTest {
  const app = {} as { t: TestApp; server: AppUnderTest['server']; api: Api };
  beforeAll(async () => {
    app.t = await createTestApp(options);
    app.server = listening ? await listen(app.t) : app.t.http;
    app.api = apiOf(app.server);
  });
  afterAll(() => app.t?.close());
  beforeEach(() => app.t.clear());
  return app;
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

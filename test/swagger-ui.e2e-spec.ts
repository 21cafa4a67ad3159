import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { MongoClient } from 'mongodb';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type BrowserContext, type Locator } from 'playwright-core';
import { freePort, runService, type ServiceProcess } from './support/processes.js';
import { launchChromium, SwaggerUi } from './support/swagger-ui.js';

/**
 * The README's flow done in Swagger UI, in headless Chromium, against the service started as
 * a real process with API_KEYS: the account id and device keys are typed into plain text
 * fields, and every answer is read from the response block Swagger UI shows.
 */

const READ_KEY = 'swagger-ui-read-key-0001';
const WRITE_KEY = 'swagger-ui-write-key-0001';
const SCREENSHOTS = join(import.meta.dirname, '..', 'test-results', 'swagger-ui');

describe('Swagger UI at /docs, driven in Chromium', () => {
  let service: ServiceProcess;
  let uri: string;
  let profile: string;
  let browser: BrowserContext;
  let ui: SwaggerUi;

  const shoot = (name: string, operation?: Locator) => ui.screenshot(join(SCREENSHOTS, `${name}.png`), operation);

  beforeAll(async () => {
    // A database of its own, empty, so that the flow's myIds are free on every engine.
    const database = new URL(process.env.MONGODB_URI!);
    database.pathname = `${database.pathname}_swagger_ui`;
    uri = database.toString();
    const client = await MongoClient.connect(uri, { serverSelectionTimeoutMS: 10_000 });
    await client.db().dropDatabase();
    await client.close();

    await mkdir(SCREENSHOTS, { recursive: true });
    service = runService({ MONGODB_URI: uri, API_KEYS: `${READ_KEY}:read,${WRITE_KEY}:write` }, await freePort());
    await service.waitForLine(/Listening on/, 90_000);
    profile = await mkdtemp(join(tmpdir(), 'refmany-chromium-'));
    browser = await launchChromium(profile);
    const page = browser.pages()[0] ?? (await browser.newPage());
    // Generous for a loaded machine, and still bounded: every wait below ends by then.
    page.setDefaultTimeout(30_000);
    await page.goto(`${service.url}/docs`, { timeout: 30_000 });
    await page.locator('.opblock').first().waitFor();
    ui = new SwaggerUi(page);
  }, 150_000);

  afterAll(async () => {
    await browser?.close();
    if (service && service.child.exitCode === null) {
      service.child.kill('SIGTERM');
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), 20_000)));
      const stopped = await Promise.race([service.exited.then(() => true), late]);
      clearTimeout(timer);
      if (!stopped) service.child.kill('SIGKILL');
    }
    if (profile) await rm(profile, { recursive: true, force: true });
    if (uri) {
      const client = await MongoClient.connect(uri, { serverSelectionTimeoutMS: 10_000 });
      await client.db().dropDatabase();
      await client.close();
    }
  }, 120_000);

  it('lists every operation, the health checks without a lock', async () => {
    await shoot('01-overview');
    const { paths } = (await (await fetch(`${service.url}/docs-json`)).json()) as { paths: Record<string, object> };
    const operations = Object.values(paths).reduce((sum, methods) => sum + Object.keys(methods).length, 0);
    expect(await ui.page.locator('.opblock').count()).toBe(operations);
    const locked = (id: string) => ui.page.locator(`#operations-health-${id} .authorization__btn`).count();
    expect(await locked('checkLiveness')).toBe(0);
    expect(await locked('checkReadiness')).toBe(0);
    expect(await ui.page.locator('#operations-devices-createDevice .authorization__btn').count()).toBe(1);
  }, 120_000);

  it('shows the 401 of a call without a key as documented, with the documented body', async () => {
    const create = await ui.tryOut('devices', 'createDevice');
    await ui.typeBody(create, { myId: 'thermostat-kitchen', deviceUID: 'UID-0017-A3' });
    const answer = await ui.execute(create);
    await shoot('02-unauthorized', create);
    expect(answer).toEqual({ status: 401, documented: true, body: await ui.documentedExample(create, 401) });
  }, 120_000);

  it('authorizes a read key: reads answer, a write answers the documented 403', async () => {
    await ui.authorize('api-key', READ_KEY);
    const list = await ui.tryOut('devices', 'findDevices');
    expect(await ui.execute(list)).toMatchObject({ status: 200, documented: true, body: [] });

    const create = await ui.tryOut('devices', 'createDevice');
    await ui.typeBody(create, { myId: 'thermostat-kitchen', deviceUID: 'UID-0017-A3' });
    const answer = await ui.execute(create);
    await shoot('03-forbidden', create);
    expect(answer).toEqual({ status: 403, documented: true, body: await ui.documentedExample(create, 403) });
  }, 120_000);

  describe('with a write key', () => {
    const ids: Record<string, string> = {};

    beforeAll(async () => {
      await ui.logout('api-key');
      await ui.authorize('bearer', WRITE_KEY);
    }, 120_000);

    it('creates two devices', async () => {
      const create = await ui.tryOut('devices', 'createDevice');
      for (const [myId, deviceUID] of [
        ['thermostat-kitchen', 'UID-0017-A3'],
        ['lamp-hall', 'UID-0042-B1'],
      ]) {
        await ui.typeBody(create, { myId, deviceUID });
        const answer = await ui.execute(create);
        expect(answer).toMatchObject({
          status: 201,
          documented: true,
          body: { myId, deviceUID, _id: expect.stringMatching(/^[0-9a-f]{24}$/) },
        });
        ids[myId] = (answer.body as { _id: string })._id;
      }
      await shoot('04-second-device-created', create);
    }, 120_000);

    it('creates an account with the first device, named by myId', async () => {
      const create = await ui.tryOut('accounts', 'createAccount');
      await ui.typeBody(create, { name: 'Kitchen', deviceIds: ['thermostat-kitchen'] });
      const answer = await ui.execute(create);
      await shoot('05-account-created', create);
      expect(answer).toMatchObject({ status: 201, documented: true, body: { name: 'Kitchen', deviceIds: [ids['thermostat-kitchen']] } });
      ids.account = (answer.body as { _id: string })._id;
    }, 120_000);

    it('links the second device by myId, typing the account id into its field', async () => {
      const link = await ui.tryOut('account_devices', 'linkDevice');
      await ui.type(link, 'id', ids.account);
      await ui.type(link, 'fk', 'lamp-hall');
      const answer = await ui.execute(link);
      await shoot('06-linked-by-myId', link);
      expect(answer).toMatchObject({ status: 200, documented: true, body: { _id: ids['lamp-hall'], myId: 'lamp-hall' } });
    }, 120_000);

    it('reads the account with include=devices: both devices, in the order they were linked', async () => {
      const read = await ui.tryOut('accounts', 'findAccount');
      await ui.type(read, 'id', ids.account);
      await ui.choose(read, 'include', 'devices');
      const answer = await ui.execute(read);
      await shoot('07-account-with-devices', read);
      expect(answer.status).toBe(200);
      expect(answer.documented).toBe(true);
      const account = answer.body as { deviceIds: string[]; devices: Array<{ myId: string }> };
      expect(account.deviceIds).toEqual([ids['thermostat-kitchen'], ids['lamp-hall']]);
      expect(account.devices.map((device) => device.myId)).toEqual(['thermostat-kitchen', 'lamp-hall']);
    }, 120_000);

    it('deletes the first device, and the account no longer references it', async () => {
      const remove = await ui.tryOut('devices', 'deleteDevice');
      await ui.type(remove, 'id', 'thermostat-kitchen');
      const deleted = await ui.execute(remove);
      await shoot('08-first-device-deleted', remove);
      expect(deleted).toMatchObject({ status: 200, documented: true, body: { count: 1 } });

      const read = await ui.tryOut('accounts', 'findAccount');
      const answer = await ui.execute(read);
      await shoot('09-account-after-delete', read);
      expect(answer).toMatchObject({
        status: 200,
        documented: true,
        body: { deviceIds: [ids['lamp-hall']], devices: [{ myId: 'lamp-hall' }] },
      });
    }, 120_000);
  });
});

import { afterAll, beforeAll, beforeEach } from '@jest/globals';
import { type INestApplication } from '@nestjs/common';
import { getConnectionToken, getModelToken } from '@nestjs/mongoose';
import { type NestFastifyApplication } from '@nestjs/platform-fastify';
import { Test, type TestingModuleBuilder } from '@nestjs/testing';
import { type Connection, type Model } from 'mongoose';
import { type AddressInfo } from 'node:net';
import { Account } from '../../src/accounts/schemas/account.schema.js';
import { AppModule } from '../../src/app.module.js';
import { configureApp, createAdapter } from '../../src/app.setup.js';
import {
  databaseConfig,
  httpConfig,
  loggingConfig,
  metricsConfig,
  relationConfig,
  securityConfig,
} from '../../src/config/config.module.js';
import { type Configuration, loadConfiguration } from '../../src/config/configuration.js';
import { Device } from '../../src/devices/schemas/device.schema.js';
import { apiOf } from './bodies.js';

export interface TestApp {
  app: INestApplication;
  /** The server to hand to supertest. */
  http: ReturnType<INestApplication['getHttpServer']>;
  accounts: Model<Account>;
  devices: Model<Device>;
  connection: Connection;
  config: Configuration;
  /** Empties every collection, keeping the indexes. */
  clear(): Promise<void>;
  close(): Promise<void>;
}

type Overrides = { [K in keyof Configuration]?: Partial<Configuration[K]> };

export interface TestAppOptions {
  /** Configuration to use instead of what the environment gives, per namespace. */
  config?: Overrides;
  customise?: (builder: TestingModuleBuilder) => TestingModuleBuilder;
  /**
   * Called with the application before it starts: its start-up work (the sweeper finishing
   * deletions a killed process left) runs when it starts, and a test may watch what that sends.
   */
  beforeInit?: (app: INestApplication) => void;
}

/**
 * The whole application over real HTTP on the run's real database, as main.ts builds it.
 * Tests run quiet (request lines only for errors) and without rate limiting unless a test
 * configures them.
 */
export async function createTestApp(options: TestAppOptions | TestAppOptions['customise'] = {}): Promise<TestApp> {
  const { config: overrides = {}, customise, beforeInit } = typeof options === 'function' ? { customise: options } : options;
  const base = loadConfiguration();
  const config: Configuration = {
    http: { ...base.http, ...overrides.http },
    database: { ...base.database, ...overrides.database },
    relation: { ...base.relation, ...overrides.relation },
    security: { ...base.security, rateLimitMax: 0, ...overrides.security },
    metrics: { ...base.metrics, ...overrides.metrics },
    logging: { ...base.logging, level: 'silent', format: 'json', ...overrides.logging },
  };
  let builder = Test.createTestingModule({ imports: [AppModule] })
    .overrideProvider(httpConfig.KEY)
    .useValue(config.http)
    .overrideProvider(databaseConfig.KEY)
    .useValue(config.database)
    .overrideProvider(relationConfig.KEY)
    .useValue(config.relation)
    .overrideProvider(securityConfig.KEY)
    .useValue(config.security)
    .overrideProvider(metricsConfig.KEY)
    .useValue(config.metrics)
    .overrideProvider(loggingConfig.KEY)
    .useValue(config.logging);
  if (customise) builder = customise(builder);
  const moduleRef = await builder.compile();
  const app = moduleRef.createNestApplication<NestFastifyApplication>(createAdapter(config.http, config.logging), {
    logger: ['error', 'warn'],
  });
  await configureApp(app, config.http);
  beforeInit?.(app);
  await app.init();
  await app.getHttpAdapter().getInstance().ready();
  const connection = app.get<Connection>(getConnectionToken());
  return {
    app,
    http: app.getHttpServer(),
    accounts: app.get(getModelToken(Account.name)),
    devices: app.get(getModelToken(Device.name)),
    connection,
    config,
    clear: async () => {
      await Promise.all(Object.values(connection.collections).map((collection) => collection.deleteMany({})));
    },
    close: () => app.close(),
  };
}

/**
 * The application listening on a loopback port of its own, so that requests in flight at once
 * (concurrency tests) share one server, each client on connections of its own.
 */
export async function listen(t: TestApp): Promise<string> {
  await t.app.listen(0, '127.0.0.1');
  return `http://127.0.0.1:${(t.http.address() as AddressInfo).port}`;
}

export interface AppUnderTest {
  readonly t: TestApp;
  /** What requests go to: the application's server, or its URL when it listens on a port. */
  readonly server: string | TestApp['http'];
  /** The calls that set up and read the tests' data over HTTP (bodies.ts). */
  readonly api: ReturnType<typeof apiOf>;
}

/**
 * The application the tests of a describe run against: created before them, emptied before
 * each, closed after. `listening` serves it on a port of its own (see listen).
 */
export function appUnderTest(options: TestAppOptions = {}, { listening = false } = {}): AppUnderTest {
  const app = {} as { -readonly [K in keyof AppUnderTest]: AppUnderTest[K] };
  beforeAll(async () => {
    app.t = await createTestApp(options);
    app.server = listening ? await listen(app.t) : app.t.http;
    app.api = apiOf(app.server);
  });
  afterAll(() => app.t?.close());
  beforeEach(() => app.t.clear());
  return app;
}

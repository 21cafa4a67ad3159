import { type INestApplication } from '@nestjs/common';
import { getConnectionToken, getModelToken } from '@nestjs/mongoose';
import { type NestFastifyApplication } from '@nestjs/platform-fastify';
import { Test, type TestingModuleBuilder } from '@nestjs/testing';
import { type Connection, type Model } from 'mongoose';
import { Account } from '../../src/accounts/schemas/account.schema.js';
import { AppModule } from '../../src/app.module.js';
import { configureApp, createAdapter } from '../../src/app.setup.js';
import { Device } from '../../src/devices/schemas/device.schema.js';

export interface TestApp {
  app: INestApplication;
  /** The server to hand to supertest. */
  http: ReturnType<INestApplication['getHttpServer']>;
  accounts: Model<Account>;
  devices: Model<Device>;
  /** Empties every collection, keeping the indexes. */
  clear(): Promise<void>;
  close(): Promise<void>;
}

/** The whole application over real HTTP on the run's real database, as main.ts builds it. */
export async function createTestApp(customise?: (builder: TestingModuleBuilder) => TestingModuleBuilder): Promise<TestApp> {
  let builder = Test.createTestingModule({ imports: [AppModule] });
  if (customise) builder = customise(builder);
  const moduleRef = await builder.compile();
  const app = moduleRef.createNestApplication<NestFastifyApplication>(createAdapter(), { logger: ['error', 'warn'] });
  configureApp(app);
  await app.init();
  await app.getHttpAdapter().getInstance().ready();
  const connection = app.get<Connection>(getConnectionToken());
  return {
    app,
    http: app.getHttpServer(),
    accounts: app.get(getModelToken(Account.name)),
    devices: app.get(getModelToken(Device.name)),
    clear: async () => {
      await Promise.all(Object.values(connection.collections).map((collection) => collection.deleteMany({})));
    },
    close: () => app.close(),
  };
}

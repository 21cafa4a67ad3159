import type { Config } from 'jest';
import { availableParallelism } from 'node:os';

// @fastify/static (Swagger UI's assets) require()s the ESM-only content-disposition. Jest loads
// it natively from Node 24.9; older Node needs it compiled to CommonJS first.
const [major, minor] = process.versions.node.split('.').map(Number);
const nativeRequireEsm = major > 24 || (major === 24 && minor >= 9);
const compileContentDisposition: Record<string, [string, unknown]> = {
  '/node_modules/content-disposition/.+\\.js$': ['ts-jest', { tsconfig: { allowJs: true, module: 'commonjs' }, diagnostics: false }],
};

const config: Config = {
  testEnvironment: 'node',
  rootDir: '.',
  globalSetup: '<rootDir>/test/support/global-setup.mjs',
  globalTeardown: '<rootDir>/test/support/global-teardown.mjs',
  setupFiles: ['<rootDir>/test/support/env.ts'],
  // One worker per core this process may use (fewer than the machine's when CPU affinity limits
  // it), at least one and at most eight. Each worker has a database of its own
  // (test/support/env.ts), but all of them share the run's one database engine, and some tests
  // start services, Redis and a browser beside them: eight is a bound chosen, not measured (these
  // machines have two cores, so two workers).
  maxWorkers: Math.min(Math.max(availableParallelism(), 1), 8),
  // No test file leaves a handle open (at each file's last afterAll only Jest's own IPC pipes and
  // the running hook's timer are left), and a worker exits by itself once told to; but winding
  // down a worker that holds ts-jest's compiler takes longer than Jest's default 500 ms on a
  // loaded 2-core machine, which Jest then reports as "failed to exit gracefully" and kills.
  workerGracefulExitTimeout: 5_000,
  testTimeout: 30_000,
  testMatch: ['<rootDir>/src/**/*.spec.ts', '<rootDir>/test/**/*.e2e-spec.ts', '<rootDir>/test/integration/**/*.spec.ts'],
  extensionsToTreatAsEsm: ['.ts'],
  moduleNameMapper: {
    '^(\\.{1,2}/.*)\\.js$': '$1',
  },
  transformIgnorePatterns: nativeRequireEsm ? ['/node_modules/'] : ['/node_modules/(?!content-disposition/)'],
  transform: {
    ...(nativeRequireEsm ? {} : compileContentDisposition),
    '^.+\\.ts$': [
      'ts-jest',
      {
        useESM: true,
        // ts-jest only supports nodenext with isolatedModules, which would take the type
        // information the Swagger plugin needs; ES modules with bundler resolution compile the
        // same sources (explicit .js specifiers included) to the same ESM output.
        tsconfig: { module: 'esnext', moduleResolution: 'bundler' },
        astTransformers: { before: ['<rootDir>/test/swagger-plugin.transformer.cjs'] },
      },
    ],
  },
};

export default config;

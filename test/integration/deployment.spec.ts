import 'reflect-metadata';
import { beforeAll, describe, expect, it } from '@jest/globals';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { getMetadataStorage } from 'class-validator';
import { parse } from 'yaml';
import { loadConfiguration } from '../../src/config/configuration.js';
import { EnvironmentVariables } from '../../src/config/env.validation.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const read = (file: string) => readFileSync(`${ROOT}${file}`, 'utf8');

type Environment = Record<string, string | null>;

interface ComposeService {
  image?: string;
  build?: string | { context?: string; dockerfile?: string };
  environment?: Environment | string[];
  ports?: Array<string | number | { target?: number; published?: number | string }>;
  volumes?: Array<string | { type?: string; source?: string; target?: string }>;
  depends_on?: string[] | Record<string, { condition?: string }>;
  healthcheck?: { test?: string | string[]; disable?: boolean };
  profiles?: string[];
  stop_grace_period?: string;
}

interface ComposeFile {
  name?: string;
  services?: Record<string, ComposeService>;
  volumes?: Record<string, unknown>;
}

/** `environment` as a map, whichever of the two compose forms the file uses; a bare name (pass-through) maps to null. */
function environmentOf(service: ComposeService): Environment {
  const { environment } = service;
  if (!environment) return {};
  if (!Array.isArray(environment)) return environment;
  return Object.fromEntries(
    environment.map((entry) => {
      const index = entry.indexOf('=');
      return index < 0 ? [entry, null] : [entry.slice(0, index), entry.slice(index + 1)];
    }),
  );
}

/** Named volumes mounted by a service, with their mount points. */
function namedMounts(service: ComposeService): Array<{ source: string; target: string }> {
  return (service.volumes ?? []).flatMap((volume) => {
    if (typeof volume === 'string') {
      const [source, target] = volume.split(':');
      return target && !/^[./~]/.test(source) ? [{ source, target }] : [];
    }
    return volume.type === 'volume' && volume.source && volume.target ? [{ source: volume.source, target: volume.target }] : [];
  });
}

/** Container ports a service publishes. */
function containerPorts(service: ComposeService): number[] {
  return (service.ports ?? []).map((port) => {
    if (typeof port === 'number') return port;
    if (typeof port === 'object') return Number(port.target);
    const withoutProtocol = port.split('/')[0];
    return Number(withoutProtocol.slice(withoutProtocol.lastIndexOf(':') + 1));
  });
}

interface Instruction {
  name: string;
  args: string;
}

/** Dockerfile instructions by stage, with continuation lines joined and comments dropped. */
function dockerfileStages(text: string): Instruction[][] {
  const joined = text.replace(/\\\r?\n/g, ' ');
  const stages: Instruction[][] = [];
  for (const line of joined.split(/\r?\n/)) {
    const trimmed = line.trim();
    if (!trimmed || trimmed.startsWith('#')) continue;
    const match = /^(\S+)\s*(.*)$/.exec(trimmed)!;
    const instruction = { name: match[1].toUpperCase(), args: match[2].trim() };
    if (instruction.name === 'FROM') stages.push([]);
    if (stages.length === 0) continue;
    stages[stages.length - 1].push(instruction);
  }
  return stages;
}

/** Variables an ENV instruction sets, in both the `KEY=value ...` and the `KEY value` form. */
function envOf(instructions: Instruction[]): Record<string, string> {
  const env: Record<string, string> = {};
  for (const { args } of instructions.filter((instruction) => instruction.name === 'ENV')) {
    if (!args.includes('=') || /^\S+\s/.test(args.split('=')[0])) {
      const [key, ...rest] = args.split(/\s+/);
      env[key] = rest.join(' ');
      continue;
    }
    for (const pair of args.match(/\S+=("[^"]*"|'[^']*'|\S*)/g) ?? []) {
      const index = pair.indexOf('=');
      env[pair.slice(0, index)] = pair.slice(index + 1).replace(/^["']|["']$/g, '');
    }
  }
  return env;
}

/** Every variable the service's configuration declares (src/config/env.validation.ts). */
const SERVICE_VARIABLES = [
  ...new Set(
    getMetadataStorage()
      .getTargetValidationMetadatas(EnvironmentVariables, '', true, false)
      .map((metadata) => metadata.propertyName),
  ),
];

/** `${NAME}`, `${NAME:-default}` and friends: the caller's value of the same name, passed through. */
const passedThrough = (name: string, value: string | null | undefined) =>
  value === null || new RegExp(`^\\$\\{${name}(:?[-?][^}]*)?\\}$`).test(value ?? '');

/** Seconds in a compose duration such as `15s`, `1m30s` or `${STOP_GRACE_PERIOD:-15s}` (its default). */
function seconds(duration: string): number {
  const value = /^\$\{\w+:?-([^}]*)\}$/.exec(duration)?.[1] ?? duration;
  const units: Record<string, number> = { h: 3600, m: 60, s: 1, ms: 0.001 };
  let total = 0;
  for (const [, amount, unit] of value.matchAll(/([\d.]+)(ms|h|m|s)/g)) total += Number(amount) * units[unit];
  return total;
}

describe('docker-compose.yml', () => {
  let compose: ComposeFile;
  let mongo: ComposeService;
  let service: ComposeService;

  beforeAll(() => {
    // Merge keys (`<<: *refmany`) as compose reads them.
    compose = parse(read('docker-compose.yml'), { merge: true }) as ComposeFile;
    mongo = compose.services?.mongo ?? {};
    service = compose.services?.refmany ?? {};
  });

  it('parses as YAML with the services mongo and refmany, under the project name refmany', () => {
    expect(typeof compose).toBe('object');
    expect(Object.keys(compose.services ?? {})).toEqual(expect.arrayContaining(['mongo', 'refmany']));
    expect(compose.name).toBe('refmany');
  });

  it('runs mongo and refmany by default, and nothing else', () => {
    const unprofiled = Object.entries(compose.services ?? {}).filter(([, definition]) => !definition.profiles?.length);
    expect(unprofiled.map(([name]) => name).sort()).toEqual(['mongo', 'refmany']);
  });

  describe('every service built from the Dockerfile', () => {
    const built = () => Object.entries(compose.services ?? {}).filter(([, definition]) => definition.build);

    it('passes every setting the service reads through from the environment or .env', () => {
      expect(built().length).toBeGreaterThanOrEqual(2);
      // Set by compose itself: where to listen inside the container, and the database.
      const fixed = new Set(['HOST', 'PORT', 'MONGODB_URI', 'DATA_DIR']);
      for (const [name, definition] of built()) {
        const env = environmentOf(definition);
        const missing = SERVICE_VARIABLES.filter((variable) => !fixed.has(variable) && !passedThrough(variable, env[variable]));
        expect({ name, missing }).toEqual({ name, missing: [] });
      }
    });

    it('waits longer than SHUTDOWN_TIMEOUT_MS before killing the container, so a graceful shutdown can finish', () => {
      for (const [name, definition] of built()) {
        // The service's default unless compose gives SHUTDOWN_TIMEOUT_MS a default of its own.
        const composeDefault = /:-(\d+)\}$/.exec(String(environmentOf(definition).SHUTDOWN_TIMEOUT_MS))?.[1];
        const shutdownS = loadConfiguration({ SHUTDOWN_TIMEOUT_MS: composeDefault }).http.shutdownTimeoutMs / 1000;
        // Docker's own default grace period is 10 s.
        const graceS = seconds(definition.stop_grace_period ?? '10s');
        expect({ name, longerThanShutdown: graceS > shutdownS }).toEqual({ name, longerThanShutdown: true });
      }
    });
  });

  describe('the ferretdb profile', () => {
    const inProfile = () => Object.entries(compose.services ?? {}).filter(([, definition]) => definition.profiles?.includes('ferretdb'));

    it('adds FerretDB 2 and the postgres-documentdb image it is released with, as published', () => {
      const images = Object.fromEntries(inProfile().map(([name, definition]) => [name, definition.image]));
      expect(images.ferretdb).toMatch(/^ghcr\.io\/ferretdb\/ferretdb:2\.\d+\.\d+$/);
      const ferretVersion = images.ferretdb!.split(':')[1];
      expect(images['postgres-documentdb']).toMatch(
        new RegExp(`^ghcr\\.io/ferretdb/postgres-documentdb:\\d+-[\\d.]+-ferretdb-${ferretVersion}$`),
      );
    });

    it('runs the service on FerretDB beside the one on MongoDB, on another host port', () => {
      const onFerret = compose.services?.['refmany-ferretdb'] ?? {};
      expect(onFerret.profiles).toEqual(['ferretdb']);
      const uri = environmentOf(onFerret).MONGODB_URI!;
      expect(new URL(uri.replace(/\$\{[^}]*\}/g, 'x')).hostname).toBe('ferretdb');
      expect((onFerret.depends_on as Record<string, { condition?: string }>).ferretdb?.condition).toBe('service_healthy');
      expect(onFerret.ports).not.toEqual(service.ports);
      const ferretdb = compose.services?.ferretdb ?? {};
      expect(environmentOf(ferretdb).FERRETDB_POSTGRESQL_URL).toMatch(/^postgres:\/\/.*@postgres-documentdb:5432\//);
    });
  });

  describe('mongo', () => {
    it('runs MongoDB 7', () => {
      expect(mongo.image).toMatch(/^mongo:7(\.|-|$)/);
    });

    it('has a healthcheck', () => {
      expect(mongo.healthcheck?.disable).not.toBe(true);
      const test = mongo.healthcheck?.test;
      expect(Array.isArray(test) ? test.join(' ') : test).toMatch(/\S/);
      expect(Array.isArray(test) ? test.join(' ') : test).toMatch(/ping/);
    });

    it('keeps /data/db in a named volume declared at the top level', () => {
      const dataMount = namedMounts(mongo).find((mount) => mount.target === '/data/db');
      expect(dataMount).toBeDefined();
      expect(Object.keys(compose.volumes ?? {})).toContain(dataMount!.source);
    });
  });

  describe('refmany', () => {
    it('is built from the Dockerfile in this directory', () => {
      const context = typeof service.build === 'string' ? service.build : service.build?.context;
      expect(['.', './']).toContain(context);
    });

    it('points MONGODB_URI at the mongo service', () => {
      const uri = environmentOf(service).MONGODB_URI;
      expect(uri).toMatch(/^mongodb:\/\//);
      expect(new URL(uri!).hostname).toBe('mongo');
    });

    it('starts only once mongo is healthy', () => {
      const dependsOn = service.depends_on;
      expect(Array.isArray(dependsOn)).toBe(false);
      expect((dependsOn as Record<string, { condition?: string }>).mongo?.condition).toBe('service_healthy');
    });

    it('publishes the port the service listens on', () => {
      const env = environmentOf(service);
      const ports = containerPorts(service);
      expect(ports.length).toBeGreaterThan(0);
      expect(ports).toContain(Number(env.PORT ?? 3000));
    });

    it('listens on every interface inside the container', () => {
      const env = environmentOf(service);
      const dockerHost = envOf(dockerfileStages(read('Dockerfile')).at(-1) ?? []).HOST;
      expect(env.HOST ?? dockerHost).toBe('0.0.0.0');
    });

    it('passes API_KEYS through from the environment', () => {
      const env = environmentOf(service);
      expect(Object.keys(env)).toContain('API_KEYS');
      // A bare name passes the caller's value through; so does an interpolation of the same name.
      expect(passedThrough('API_KEYS', env.API_KEYS)).toBe(true);
    });
  });
});

describe('Dockerfile', () => {
  let stages: Instruction[][];
  let final: Instruction[];

  beforeAll(() => {
    stages = dockerfileStages(read('Dockerfile'));
    final = stages.at(-1) ?? [];
  });

  const args = (name: string) => final.filter((instruction) => instruction.name === name).map((instruction) => instruction.args);

  it('is multi-stage, the final stage taking only the build output from an earlier one', () => {
    expect(stages.length).toBeGreaterThanOrEqual(2);
    expect(args('COPY').some((copy) => /--from=\S+/.test(copy) && /dist/.test(copy))).toBe(true);
    expect(
      stages
        .slice(0, -1)
        .some((stage) => stage.some((instruction) => instruction.name === 'RUN' && /npm run build/.test(instruction.args))),
    ).toBe(true);
  });

  it('runs as a non-root user in the final stage', () => {
    const users = args('USER');
    expect(users.length).toBeGreaterThan(0);
    const user = users.at(-1)!.split(':')[0];
    expect(['root', '0', '']).not.toContain(user);
  });

  it('has a HEALTHCHECK that calls /health', () => {
    const healthchecks = args('HEALTHCHECK');
    expect(healthchecks.length).toBeGreaterThan(0);
    expect(healthchecks.at(-1)).toMatch(/\bCMD\b/);
    expect(healthchecks.at(-1)).toMatch(/\/health\b/);
  });

  it('exposes the port it listens on, and sets HOST=0.0.0.0 in the final stage', () => {
    const env = envOf(final);
    expect(env.HOST).toBe('0.0.0.0');
    const exposed = args('EXPOSE')
      .flatMap((expose) => expose.split(/\s+/))
      .map((port) => port.split('/')[0]);
    expect(exposed.length).toBeGreaterThan(0);
    expect(exposed).toContain(env.PORT ?? '3000');
  });

  it('starts the compiled service', () => {
    expect(args('CMD').at(-1) ?? args('ENTRYPOINT').at(-1)).toMatch(/dist\/main\.js/);
  });
});

describe('.env.example', () => {
  /** `#NAME=value` and `NAME=value` lines. */
  let example: Map<string, string>;

  beforeAll(() => {
    example = new Map(
      read('.env.example')
        .split(/\r?\n/)
        .map((line) => /^#?([A-Z][A-Z0-9_]*)=(.*)$/.exec(line))
        .filter((match) => match !== null)
        .map((match) => [match[1], match[2]]),
    );
  });

  it('lists every variable the service reads, each with its default', () => {
    expect(SERVICE_VARIABLES.length).toBeGreaterThan(10);
    expect(SERVICE_VARIABLES.filter((name) => !example.has(name))).toEqual([]);
    const defaults = loadConfiguration({});
    for (const name of SERVICE_VARIABLES) {
      // The value shown configures the service exactly as leaving the variable out does.
      expect({ name, configuration: loadConfiguration({ [name]: example.get(name) }) }).toEqual({ name, configuration: defaults });
    }
  });

  it('lists every variable docker-compose.yml reads, with the same default', () => {
    const interpolated = [...read('docker-compose.yml').matchAll(/\$\{(\w+)(?::?-([^}]*))?\}/g)];
    expect(interpolated.length).toBeGreaterThan(10);
    for (const [, name, fallback] of interpolated) {
      expect({ name, listed: example.has(name) }).toEqual({ name, listed: true });
      if (fallback) expect({ name, value: example.get(name) }).toEqual({ name, value: fallback });
    }
  });
});

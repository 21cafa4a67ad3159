/**
 * How fast `npm run migrate:lb3` converts: a LoopBack-shaped database of 10,000 accounts and
 * 20,000 devices (half with a custom string `_id`, half with an ObjectId and a `myId`), each
 * account referencing 0–50 of them under every spelling LoopBack left behind, converted with
 * `--apply`, then again (the idempotent re-run). Prints accounts per second; asserts nothing.
 *
 *   npm run bench:migrate                                   # the embedded engine, in memory
 *   MONGODB_URI=mongodb://127.0.0.1:27100/ npm run bench:migrate   # FerretDB, MongoDB, …
 *   npm run bench:migrate -- --accounts 1000 --devices 2000
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import mongoose from 'mongoose';
import { projectRoot } from '../src/database/project-root.js';
import { resolveDatabase } from '../src/database/resolve-database.js';
import { type MigrationReport } from '../src/migrate/lb3-migration.js';
import { seededRandom } from './support/dataset.js';

const { values } = parseArgs({
  options: { accounts: { type: 'string', default: '10000' }, devices: { type: 'string', default: '20000' } },
});
const ACCOUNTS = Number(values.accounts);
const DEVICES = Number(values.devices);
const MAX_REFS = 50;
const { ObjectId } = mongoose.Types;

async function seed(uri: string, sourceDb: string, targetDb: string): Promise<{ references: number }> {
  const client = await new mongoose.mongo.MongoClient(uri).connect();
  try {
    const source = client.db(sourceDb);
    await source.dropDatabase();
    await client.db(targetDb).dropDatabase();
    const next = seededRandom(42); // the same data on every run
    // Each device as LoopBack may have stored it, and the spellings an account may use for it.
    const spellings: Array<() => unknown> = [];
    const devices: Array<Record<string, unknown>> = [];
    for (let index = 0; index < DEVICES; index += 1) {
      const myId = `device-${index}`;
      if (index % 2 === 0) {
        devices.push({ _id: myId, deviceUID: `UID-${index}` });
        spellings.push(() => myId);
      } else {
        const _id = new ObjectId();
        devices.push({ _id, myId, deviceUID: `UID-${index}` });
        const options = [() => _id, () => _id.toHexString(), () => myId];
        spellings.push(() => options[Math.floor(next() * options.length)]());
      }
    }
    for (let start = 0; start < devices.length; start += 1000) {
      await source.collection('Device').insertMany(devices.slice(start, start + 1000) as never[], { ordered: false });
    }
    let references = 0;
    for (let start = 0; start < ACCOUNTS; start += 1000) {
      const batch = [];
      for (let index = start; index < Math.min(start + 1000, ACCOUNTS); index += 1) {
        const count = Math.floor(next() * (MAX_REFS + 1));
        const deviceIds = Array.from({ length: count }, () => spellings[Math.floor(next() * DEVICES)]());
        references += count;
        batch.push({ _id: new ObjectId(), name: `Account ${index}`, deviceIds });
      }
      await source.collection('Account').insertMany(batch, { ordered: false });
    }
    return { references };
  } finally {
    await client.close();
  }
}

function convert(from: string, to: string): Promise<{ report: MigrationReport; wallMs: number }> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      [join(projectRoot(), 'dist', 'migrate', 'main.js'), '--from', from, '--to', to, '--apply', '--json'],
      {
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    let stdout = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code !== 0) return reject(new Error(`the converter exited ${code}:\n${stdout}`));
      resolve({ report: JSON.parse(stdout) as MigrationReport, wallMs: performance.now() - started });
    });
  });
}

function withDatabase(uri: string, database: string): string {
  const url = new URL(uri);
  url.pathname = `/${database}`;
  return url.toString();
}

async function main(): Promise<void> {
  const engine = await resolveDatabase({ uri: process.env.MONGODB_URI, log: (message) => console.log(message) });
  try {
    const from = withDatabase(engine.uri, 'bench_lb3_source');
    const to = withDatabase(engine.uri, 'bench_lb3_target');
    console.log(`Seeding ${ACCOUNTS.toLocaleString('en')} accounts and ${DEVICES.toLocaleString('en')} devices…`);
    const { references } = await seed(engine.uri, 'bench_lb3_source', 'bench_lb3_target');
    const first = await convert(from, to);
    const second = await convert(from, to);
    if (!second.report.upToDate) throw new Error('the second --apply wrote something');
    const row = ({ report, wallMs }: { report: MigrationReport; wallMs: number }) => ({
      'accounts/s (conversion)': Math.round(report.timings.accountsPerSecond),
      'accounts/s (whole process)': Math.round(report.accounts.read / (wallMs / 1000)),
      'devices s': (report.timings.devicesMs / 1000).toFixed(1),
      'accounts s': (report.timings.accountsMs / 1000).toFixed(1),
      'integrity scan s': (report.timings.integrityMs / 1000).toFixed(1),
      'process s': (wallMs / 1000).toFixed(1),
      'process CPU s': (report.timings.cpuMs / 1000).toFixed(1),
      written: report.devices.writes.insert + report.devices.writes.update + report.accounts.writes.insert + report.accounts.writes.update,
    });
    console.log(
      `\nengine: ${engine.name}; ${ACCOUNTS.toLocaleString('en')} accounts, ${DEVICES.toLocaleString('en')} devices, ` +
        `${references.toLocaleString('en')} references (${first.report.accounts.references.rewritten.toLocaleString('en')} rewritten, ` +
        `${first.report.accounts.references.duplicates.toLocaleString('en')} repeated)\n`,
    );
    console.table({ '--apply': row(first), '--apply again': row(second) });
  } finally {
    await engine.stop();
  }
}

await main();

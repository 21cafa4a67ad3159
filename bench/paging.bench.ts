/**
 * How long a 20-device page at the end of a 10,000-device relation takes, against loading the
 * whole populated account, and how many bytes each answer carries. Run: `npm run bench:paging`.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import mongoose from 'mongoose';
import { projectRoot } from '../src/database/project-root.js';
import { resolveDatabase } from '../src/database/resolve-database.js';
import { startService } from './support/service.js';

const DEVICES = 10_000;
const WARM_UP = 3;
const ROUNDS = 20;

const { ObjectId } = mongoose.Types;

async function seed(uri: string): Promise<{ big: string; small: string }> {
  const client = await new mongoose.mongo.MongoClient(uri).connect();
  const db = client.db();
  const now = new Date();
  const ids = Array.from({ length: DEVICES }, () => new ObjectId());
  for (let start = 0; start < DEVICES; start += 1000) {
    await db.collection('devices').insertMany(
      ids.slice(start, start + 1000).map((_id, index) => ({
        _id,
        myId: `bench-${start + index}`,
        deviceUID: `UID-${start + index}`,
        createdAt: now,
        updatedAt: now,
      })),
    );
  }
  const big = new ObjectId();
  const small = new ObjectId();
  await db.collection('accounts').insertMany([
    { _id: big, name: 'ten thousand', deviceIds: ids, createdAt: now, updatedAt: now },
    { _id: small, name: 'fifty', deviceIds: ids.slice(0, 50), createdAt: now, updatedAt: now },
  ]);
  await client.close();
  return { big: big.toHexString(), small: small.toHexString() };
}

async function measure(url: string): Promise<{ medianMs: number; p90Ms: number; bytes: number }> {
  const times: number[] = [];
  let bytes = 0;
  for (let round = 0; round < WARM_UP + ROUNDS; round += 1) {
    const started = performance.now();
    const response = await fetch(url);
    const body = await response.arrayBuffer();
    if (!response.ok) throw new Error(`${url} answered ${response.status}`);
    if (round >= WARM_UP) times.push(performance.now() - started);
    bytes = body.byteLength;
  }
  times.sort((a, b) => a - b);
  return { medianMs: times[Math.floor(times.length / 2)], p90Ms: times[Math.floor(times.length * 0.9)], bytes };
}

async function main(): Promise<void> {
  const engine = await resolveDatabase({ log: (message) => console.log(message) });
  const service = await startService(engine.uri);
  try {
    const { big, small } = await seed(engine.uri);
    const page = encodeURIComponent(JSON.stringify({ limit: 20, skip: DEVICES - 20 }));
    const cases = {
      'page of 20 at skip 9980 (10,000-device account)': `${service.url}/api/accounts/${big}/devices?filter=${page}`,
      'page of 20 (50-device account)': `${service.url}/api/accounts/${small}/devices?filter=${encodeURIComponent(JSON.stringify({ limit: 20, skip: 30 }))}`,
      'whole account, include=devices (10,000 devices)': `${service.url}/api/accounts/${big}?include=devices`,
    };
    const results: Record<string, { medianMs: number; p90Ms: number; bytes: number }> = {};
    for (const [name, url] of Object.entries(cases)) results[name] = await measure(url);

    const [pageBig, pageSmall, whole] = Object.values(results);
    console.log(`\nengine: ${engine.name}; ${ROUNDS} rounds each after ${WARM_UP} warm-up, one client\n`);
    console.table(
      Object.fromEntries(
        Object.entries(results).map(([name, r]) => [
          name,
          { 'median ms': r.medianMs.toFixed(1), 'p90 ms': r.p90Ms.toFixed(1), 'response bytes': r.bytes },
        ]),
      ),
    );
    const ratios = {
      wholeOverPage: whole.medianMs / pageBig.medianMs,
      pageBigOverPageSmall: pageBig.medianMs / pageSmall.medianMs,
    };
    console.log(`whole populated account / last page: ${ratios.wholeOverPage.toFixed(1)}× the time`);
    console.log(`last page of 10,000 / page of 50:     ${ratios.pageBigOverPageSmall.toFixed(2)}× the time`);
    writeFileSync(
      join(projectRoot(), 'bench', 'results', 'paging.json'),
      JSON.stringify({ engine: engine.name, date: new Date().toISOString(), results, ratios }, null, 2),
    );
  } finally {
    await service.stop();
    await engine.stop();
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});

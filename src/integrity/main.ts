import 'reflect-metadata';
import { parseArgs } from 'node:util';
import { NestFactory } from '@nestjs/core';
import { IntegrityModule } from './integrity.module.js';
import { type IntegrityReport, IntegrityService } from './integrity.service.js';

const HELP = `Usage: npm run integrity -- [--fix] [--json]
       node dist/integrity/main.js [--fix] [--json]

Scans every account for device ids that break the relation's rules:
  dangling     the id names no device
  repeated     the id appears more than once in one account's deviceIds
  over limit   the account holds more than MAX_DEVICES_PER_ACCOUNT ids

Options:
  --fix        repair what it finds: drop dangling ids and later repeats (the
               first occurrence keeps its place), then keep the first ids up to
               the limit; each repair is a conditional update, so a link made
               meanwhile is never overwritten
  --json       print the report as JSON instead of text
  -h, --help   print this help and exit

The database is the one the service would use: MONGODB_URI when set, otherwise the
embedded engine on DATA_DIR (default .data; run it while the service is stopped,
the engine holds its data file). MAX_DEVICES_PER_ACCOUNT sets the limit (10000).

Exit status: 0 nothing left damaged, 1 damage found and not repaired (or the
database could not be reached), 2 unknown option.`;

/**
 * `npm run integrity -- [--fix] [--json]`: scans the database the service would use
 * (MONGODB_URI, or the embedded engine's DATA_DIR while the service is stopped) for dangling,
 * repeated and over-limit device ids. Exits 1 when damage is found and left unrepaired.
 */
async function main(): Promise<void> {
  let values: { fix?: boolean; json?: boolean; help?: boolean };
  try {
    ({ values } = parseArgs({
      options: { fix: { type: 'boolean' }, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
      strict: true,
      allowPositionals: false,
    }));
  } catch (error) {
    console.error(`${(error as Error).message}\nRun with --help for the options.`);
    process.exit(2);
  }
  if (values.help) {
    console.log(HELP);
    return;
  }
  const app = await NestFactory.createApplicationContext(IntegrityModule, { logger: ['error', 'warn'] });
  app.enableShutdownHooks();
  try {
    const report = await app.get(IntegrityService).check({ fix: values.fix === true });
    console.log(values.json ? JSON.stringify(report, null, 2) : describe(report));
    process.exitCode = report.damaged.some((damage) => !damage.repaired) ? 1 : 0;
  } finally {
    await app.close();
  }
}

function describe(report: IntegrityReport): string {
  const lines = [`Scanned ${report.accountsScanned} accounts and ${report.devicesScanned} devices (limit ${report.limit} per account).`];
  if (report.damaged.length === 0) return [...lines, 'No damage found.'].join('\n');
  for (const damage of report.damaged) {
    const parts = [
      damage.dangling.length ? `${damage.dangling.length} dangling (${damage.dangling.join(', ')})` : '',
      damage.duplicates.length ? `${damage.duplicates.length} repeated (${damage.duplicates.join(', ')})` : '',
      damage.overLimit.length ? `${damage.overLimit.length} over the limit` : '',
    ].filter(Boolean);
    lines.push(`Account ${damage.accountId}: ${parts.join('; ')}${damage.repaired ? ' — repaired' : ''}`);
  }
  const open = report.damaged.filter((damage) => !damage.repaired).length;
  lines.push(
    open ? `${open} damaged accounts left as they are; run with --fix to repair them.` : `Repaired ${report.damaged.length} accounts.`,
  );
  return lines.join('\n');
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : String(error));
  process.exit(1);
});

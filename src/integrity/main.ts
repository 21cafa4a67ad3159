import 'reflect-metadata';
import { NestFactory } from '@nestjs/core';
import { IntegrityModule } from './integrity.module.js';
import { type IntegrityReport, IntegrityService } from './integrity.service.js';

/**
 * `npm run integrity [-- --fix] [-- --json]`: scans the database the service would use
 * (MONGODB_URI, or the embedded engine's DATA_DIR while the service is stopped) for dangling,
 * repeated and over-limit device ids. Exits 1 when damage is found and left unrepaired.
 */
async function main(): Promise<void> {
  const args = new Set(process.argv.slice(2));
  const unknown = [...args].filter((arg) => arg !== '--fix' && arg !== '--json');
  if (unknown.length > 0) {
    console.error(`Unknown option ${unknown.join(' ')}; use --fix to repair, --json for a machine-readable report`);
    process.exit(2);
  }
  const app = await NestFactory.createApplicationContext(IntegrityModule, { logger: ['error', 'warn'] });
  app.enableShutdownHooks();
  try {
    const report = await app.get(IntegrityService).check({ fix: args.has('--fix') });
    console.log(args.has('--json') ? JSON.stringify(report, null, 2) : describe(report));
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

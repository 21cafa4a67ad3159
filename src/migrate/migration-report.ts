import { type MigrationReport, type WriteCounts } from './lb3-migration.js';

/** Transformations everyone expects (new ids, deviceUIDs taken from a field) show this many examples. */
const EXAMPLES = 10;

const number = (value: number) => value.toLocaleString('en');
const plural = (count: number, one: string, many = `${one}s`) => `${number(count)} ${count === 1 ? one : many}`;

/**
 * The report for a person. Every refused device, renamed myId, merged document, refused account
 * and dropped or repeated reference is listed; `--json` gives the same report for a program.
 */
export function describeReport(report: MigrationReport, target: string): string {
  const dry = report.mode === 'dry-run';
  const lines: string[] = [
    dry ? 'Dry run: nothing was written (run again with --apply to write).' : 'Applied.',
    `Source: database "${report.source.database}", collections "${report.source.devices}" and "${report.source.accounts}".`,
    `Target: ${target}; at most ${number(report.limit)} devices per account.`,
    '',
  ];

  const devices = report.devices;
  lines.push(
    `Devices: ${number(devices.read)} read, ${number(devices.converted)} converted (${number(devices.keptIds)} kept their ObjectId _id), ` +
      `${number(devices.merged.length)} merged into another, ${number(devices.refused.length)} refused.`,
    `  ${writes(devices.writes, dry)}`,
  );
  if (devices.newIds.length > 0) {
    lines.push(
      `  New _id for ${plural(devices.newIds.length, 'device')} whose _id was not an ObjectId (the old id stays usable as their myId unless renamed below):`,
      ...examples(devices.newIds.map((entry) => `${entry.device} → ${entry.id}`)),
    );
  }
  if (devices.uidFrom.length > 0) {
    lines.push(
      `  deviceUID taken from elsewhere (a merged document, or --uid-from) for ${plural(devices.uidFrom.length, 'device')}:`,
      ...examples(devices.uidFrom.map((entry) => `${entry.device}: ${entry.field} → ${JSON.stringify(entry.deviceUID)}`)),
    );
  }
  list(
    lines,
    'myId renamed',
    devices.renamedMyIds,
    (entry) =>
      `${entry.device}: ${entry.from === null ? '(none)' : JSON.stringify(entry.from)} → ${JSON.stringify(entry.to)} (${entry.reason})`,
  );
  list(
    lines,
    'Merged (references to them now name the device they were merged into)',
    devices.merged,
    (entry) => `${entry.device} into ${entry.into} (${entry.reason})`,
  );
  list(lines, 'Refused (not converted; references to them are dropped)', devices.refused, (entry) => `${entry.device}: ${entry.reason}`);
  fields(lines, devices.fieldsNotCarried);

  const accounts = report.accounts;
  const references = accounts.references;
  lines.push(
    '',
    `Accounts: ${number(accounts.read)} read, ${number(accounts.converted)} converted, ${number(accounts.refused.length)} refused.`,
    `  ${writes(accounts.writes, dry)}`,
    `  References: ${number(references.read)} read, ${number(references.kept)} kept (${number(references.rewritten)} rewritten to the device's ObjectId), ` +
      `${number(references.dropped)} dropped, ${number(references.duplicates)} repeated (kept once).`,
  );
  list(lines, 'Converted with changes', accounts.changed, (entry) => {
    const parts = [
      entry.newId ? `new _id ${entry.newId}` : '',
      entry.name
        ? `name ${entry.name.from === null ? '' : `${JSON.stringify(entry.name.from)} `}→ ${JSON.stringify(entry.name.to)} (${entry.name.reason})`
        : '',
      entry.dropped.length ? `dropped ${entry.dropped.map((drop) => `${drop.id} (${drop.reason})`).join(', ')}` : '',
      entry.duplicates.length ? `repeated, kept once: ${entry.duplicates.join(', ')}` : '',
    ];
    return `account ${entry.account}: ${parts.filter(Boolean).join('; ')}`;
  });
  list(
    lines,
    'Refused (not written)',
    accounts.refused,
    (entry) => `account ${entry.account}: ${entry.reason}${entry.leftInTarget ? ' — the target keeps the copy it already has' : ''}`,
  );
  fields(lines, accounts.fieldsNotCarried);

  lines.push('');
  if (report.targetOnly.devices || report.targetOnly.accounts) {
    lines.push(
      `The target also holds ${plural(report.targetOnly.devices, 'device')} and ${plural(report.targetOnly.accounts, 'account')} ` +
        'the source does not; they were left as they are.',
    );
  }
  list(lines, 'Write errors', report.writeErrors, (entry) => `${entry.collection} ${entry.id}: ${entry.message}`);
  if (report.integrity) {
    const { accountsScanned, devicesScanned, damaged } = report.integrity;
    lines.push(
      `Integrity scan: ${plural(accountsScanned, 'account')} and ${plural(devicesScanned, 'device')}, ` +
        (damaged.length === 0
          ? 'no damage found.'
          : `${plural(damaged.length, 'damaged account')} (run npm run integrity for the details):`),
      ...damaged.map(
        (damage) =>
          `  account ${damage.accountId}: ${damage.dangling.length} dangling, ${damage.duplicates.length} repeated, ${damage.overLimit.length} over the limit`,
      ),
    );
  }
  const total = report.devices.writes.insert + report.devices.writes.update + report.accounts.writes.insert + report.accounts.writes.update;
  lines.push(
    report.upToDate
      ? dry
        ? 'Nothing would change: the target already holds this conversion.'
        : 'Nothing changed: the target already held this conversion.'
      : dry
        ? `--apply would write ${plural(total, 'document')}.`
        : `Wrote ${plural(total, 'document')}.`,
  );
  const { devicesMs, accountsMs, integrityMs, accountsPerSecond } = report.timings;
  lines.push(
    `Time: devices ${seconds(devicesMs)}, accounts ${seconds(accountsMs)} (${number(Math.round(accountsPerSecond))} accounts/s)` +
      (report.integrity ? `, integrity scan ${seconds(integrityMs)}.` : '.'),
  );
  return lines.join('\n');
}

function writes(counts: WriteCounts, dry: boolean): string {
  const verb = dry ? 'Would insert' : 'Inserted';
  const failed = counts.failed ? `, ${number(counts.failed)} failed` : '';
  return `${verb} ${number(counts.insert)}, ${dry ? 'update' : 'updated'} ${number(counts.update)}, ${number(counts.unchanged)} already up to date${failed}.`;
}

function examples(items: string[]): string[] {
  const shown = items.slice(0, EXAMPLES).map((item) => `    ${item}`);
  if (items.length > EXAMPLES) shown.push(`    … and ${number(items.length - EXAMPLES)} more (--json lists them all)`);
  return shown;
}

function list<T>(lines: string[], title: string, items: T[], format: (item: T) => string): void {
  if (items.length === 0) return;
  lines.push(`  ${title} (${number(items.length)}):`, ...items.map((item) => `    ${format(item)}`));
}

function fields(lines: string[], counts: Record<string, number>): void {
  const entries = Object.entries(counts);
  if (entries.length === 0) return;
  lines.push(`  Fields not carried over: ${entries.map(([field, count]) => `${field} (${number(count)})`).join(', ')}.`);
}

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`;
}

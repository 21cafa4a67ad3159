import 'reflect-metadata';
import { parseArgs } from 'node:util';
import { loadConfiguration } from '../config/configuration.js';
import { type DatabaseEngine } from '../database/database-engine.js';
import { redact, resolveDatabase } from '../database/resolve-database.js';
import { migrateLb3 } from './lb3-migration.js';
import { describeReport } from './migration-report.js';
import { terminalProgress } from './progress.js';

const USAGE = `Converts a LoopBack 3 database (Accounts referencing Devices) into this service's.

Usage: npm run migrate:lb3 -- --from <uri> [options]

  --from <uri>            LoopBack's MongoDB, naming its database (mongodb://host:27017/loopback)
  --to <uri>              our database; default: the service's own (MONGODB_URI, else the
                          embedded engine with DATA_DIR, which must not be in use)
  --apply                 write; without it, a dry run reports what would be written
  --from-devices <name>   LoopBack's device collection (default: Device)
  --from-accounts <name>  LoopBack's account collection (default: Account)
  --uid-from <field>      where a device without deviceUID takes one from: myId, _id, or a
                          (dotted) field; without it such devices are refused and reported
  --name-from <field>     where an account without a name takes one from; without it the
                          account is named "Account <its _id>"
  --json                  print the report as JSON
  -h, --help              this text

MAX_DEVICES_PER_ACCOUNT is read as the service reads it: a longer relation is refused for
that account. Exit status: 0 done, 1 failed (or write errors, or damage found after --apply),
2 usage error.`;

const OPTIONS = {
  from: { type: 'string' },
  to: { type: 'string' },
  apply: { type: 'boolean', default: false },
  'from-devices': { type: 'string', default: 'Device' },
  'from-accounts': { type: 'string', default: 'Account' },
  'uid-from': { type: 'string' },
  'name-from': { type: 'string' },
  json: { type: 'boolean', default: false },
  help: { type: 'boolean', short: 'h', default: false },
} as const;

const MONGODB_URI = /^mongodb(?:\+srv)?:\/\/[^/?]+\/([^/?]+)(?:\?.*)?$/;

class UsageError extends Error {}

function parse() {
  try {
    const { values } = parseArgs({ options: OPTIONS, strict: true, allowPositionals: false });
    if (values.help) return values;
    if (!values.from) throw new UsageError('--from is required');
    if (!MONGODB_URI.test(values.from))
      throw new UsageError('--from must be a mongodb:// URI that names the database, such as mongodb://localhost:27017/loopback');
    if (values.to !== undefined && !/^mongodb(\+srv)?:\/\/\S+$/.test(values.to))
      throw new UsageError('--to must be a mongodb:// or mongodb+srv:// URI');
    for (const option of ['from-devices', 'from-accounts', 'uid-from', 'name-from'] as const) {
      if (values[option] === '') throw new UsageError(`--${option} must not be empty`);
    }
    return values;
  } catch (error) {
    if (error instanceof UsageError || (error as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      console.error(`${(error as Error).message}; see npm run migrate:lb3 -- --help`);
      process.exit(2);
    }
    throw error;
  }
}

/** `npm run migrate:lb3 -- --from <uri> [--to <uri>] [--apply]`; see USAGE. */
async function main(): Promise<void> {
  const options = parse();
  if (options.help) {
    console.log(USAGE);
    return;
  }
  const config = loadConfiguration();
  let engine: DatabaseEngine | undefined;
  let target: string;
  let to: string;
  if (options.to) {
    to = options.to;
    target = `--to ${redact(to)}`;
  } else {
    let chosen = '';
    engine = await resolveDatabase({
      uri: config.database.uri,
      dataDir: config.database.dataDir,
      log: (message) => {
        if (message.startsWith('Database: ')) chosen = message.slice('Database: '.length);
      },
    });
    to = engine.uri;
    target = chosen || engine.name;
  }
  try {
    const report = await migrateLb3({
      from: options.from!,
      fromDevices: options['from-devices'],
      fromAccounts: options['from-accounts'],
      to,
      apply: options.apply,
      rules: { maxDevicesPerAccount: config.relation.maxDevicesPerAccount, uidFrom: options['uid-from'], nameFrom: options['name-from'] },
      progress: terminalProgress(process.stderr),
    });
    console.log(options.json ? JSON.stringify({ ...report, target }, null, 2) : describeReport(report, target));
    const damaged = (report.integrity?.damaged.length ?? 0) > 0;
    process.exitCode = report.writeErrors.length > 0 || damaged ? 1 : 0;
  } finally {
    await engine?.stop();
  }
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : String(error));
  process.exit(1);
});

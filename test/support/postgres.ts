import { execFileSync } from 'node:child_process';

/**
 * The PostgreSQL behind a FerretDB test database, read with `psql` (PostgreSQL's client, which
 * the engine's installation brings), for what only PostgreSQL can tell: which backends are
 * still running, which indexes were scanned.
 */

/**
 * The PostgreSQL URL the FerretDB at `mongoUri` uses: TEST_POSTGRESQL_URL when set, otherwise
 * what FerretDB was started with, from its debug listener (the next port, as
 * ../shared/engines/documentdb/docdb.sh starts it).
 */
export async function postgresUrlOf(mongoUri: string): Promise<string> {
  if (process.env.TEST_POSTGRESQL_URL) return process.env.TEST_POSTGRESQL_URL;
  const { hostname, port } = new URL(mongoUri);
  const debug = `http://${hostname}:${Number(port || 27017) + 1}/debug/vars`;
  const vars = (await fetch(debug)
    .then((response) => response.json())
    .catch(() => ({}))) as { cmdline?: string[] };
  const flag = vars.cmdline?.find((argument) => argument.startsWith('--postgresql-url='));
  if (!flag) throw new Error(`FerretDB's PostgreSQL not found at ${debug}: set TEST_POSTGRESQL_URL`);
  return flag.slice('--postgresql-url='.length);
}

/** Runs one SQL statement; its rows, each a list of the columns as text. */
export function sql(url: string, statement: string): string[][] {
  const output = execFileSync('psql', [url, '--no-psqlrc', '-X', '-At', '-F', '\t', '-v', 'ON_ERROR_STOP=1', '-c', statement], {
    encoding: 'utf8',
    timeout: 30_000,
  });
  return output
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => line.split('\t'));
}

/** A SQL string literal. */
export function literal(text: string): string {
  return `'${text.replaceAll("'", "''")}'`;
}

/**
 * How often PostgreSQL has scanned the table behind a collection and the index behind one of
 * its MongoDB indexes (DocumentDB keeps the mapping in its catalog). PostgreSQL publishes a
 * backend's counts when the backend goes idle, up to about ten seconds later.
 */
export function scanCounts(url: string, database: string, collection: string, index: string): { indexScans: number; tableScans: number } {
  const [[collectionId, indexId] = []] = sql(
    url,
    `SELECT c.collection_id, i.index_id FROM documentdb_api_catalog.collections c
       JOIN documentdb_api_catalog.collection_indexes i ON i.collection_id = c.collection_id
      WHERE c.database_name = ${literal(database)} AND c.collection_name = ${literal(collection)}
        AND (i.index_spec).index_name = ${literal(index)}`,
  );
  if (!indexId) throw new Error(`no index ${index} on ${database}.${collection} in DocumentDB's catalog`);
  const [[indexScans]] = sql(url, `SELECT idx_scan FROM pg_stat_user_indexes WHERE indexrelname = 'documents_rum_index_${indexId}'`);
  const [[tableScans]] = sql(url, `SELECT seq_scan FROM pg_stat_user_tables WHERE relname = 'documents_${collectionId}'`);
  return { indexScans: Number(indexScans), tableScans: Number(tableScans) };
}

/**
 * Has PostgreSQL gather the statistics of the table behind a collection now, as autovacuum
 * would some time after a bulk load: its planner chooses between an index and a scan by them.
 */
export function analyze(url: string, database: string, collection: string): void {
  const [[table] = []] = sql(
    url,
    `SELECT format('%I.%I', n.nspname, t.relname) FROM documentdb_api_catalog.collections c
       JOIN pg_class t ON t.relname = 'documents_' || c.collection_id
       JOIN pg_namespace n ON n.oid = t.relnamespace
      WHERE c.database_name = ${literal(database)} AND c.collection_name = ${literal(collection)}`,
  );
  if (!table) throw new Error(`no table for ${database}.${collection} in DocumentDB's catalog`);
  sql(url, `ANALYZE ${table}`);
}

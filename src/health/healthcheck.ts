import 'reflect-metadata';
import { loadConfiguration } from '../config/configuration.js';

/**
 * `node dist/health/healthcheck.js [path]`: exits 0 when the service on this machine answers
 * `path` (default `/health`) with a 2xx within two seconds, 1 otherwise. The container's
 * HEALTHCHECK runs it in exec form, so no shell or wget is needed, and it reads PORT the way the
 * service does.
 */
const TIMEOUT_MS = 2_000;

const path = process.argv[2] ?? '/health';
let url: string;
try {
  const { host, port } = loadConfiguration().http;
  const local = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host;
  url = new URL(path, `http://${local.includes(':') ? `[${local}]` : local}:${port}`).toString();
} catch (error) {
  console.error(`healthcheck: ${(error as Error).message}`);
  process.exit(1);
}
try {
  const response = await fetch(url, { signal: AbortSignal.timeout(TIMEOUT_MS) });
  if (!response.ok) console.error(`healthcheck: ${url} answered ${response.status}`);
  process.exit(response.ok ? 0 : 1);
} catch (error) {
  console.error(`healthcheck: ${url} did not answer (${(error as Error).message})`);
  process.exit(1);
}

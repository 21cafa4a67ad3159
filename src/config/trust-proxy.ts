import { isIP } from 'node:net';

/** What Fastify's `trustProxy` takes: off, everything, a number of hops, or the proxies' addresses. */
export type TrustProxy = boolean | number | string[];

/** proxy-addr's names for the loopback, link-local and unique-local ranges (IPv4 and IPv6). */
const RANGE_NAMES = new Set(['loopback', 'linklocal', 'uniquelocal']);

/**
 * TRUST_PROXY as Fastify reads it: `true`/`false`; a number of proxy hops in front of the
 * service; or a comma-separated list of proxy addresses and CIDRs. Undefined when the value is
 * none of these, so a typo stops the service instead of silently trusting nothing (or every
 * client's own X-Forwarded-For).
 */
export function parseTrustProxy(value: string): TrustProxy | undefined {
  const text = value.trim();
  if (text === 'true') return true;
  if (text === 'false') return false;
  if (/^\d+$/.test(text)) {
    const hops = Number(text);
    return hops <= 100 ? hops : undefined;
  }
  const entries = text.split(',').map((entry) => entry.trim());
  return entries.length > 0 && entries.every(isProxyAddress) ? entries : undefined;
}

function isProxyAddress(entry: string): boolean {
  if (RANGE_NAMES.has(entry)) return true;
  const [address, prefix, ...rest] = entry.split('/');
  const family = isIP(address);
  if (family === 0 || rest.length > 0) return false;
  if (prefix === undefined) return true;
  return /^\d{1,3}$/.test(prefix) && Number(prefix) <= (family === 4 ? 32 : 128);
}

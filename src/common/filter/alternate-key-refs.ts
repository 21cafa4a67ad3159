import { Types } from 'mongoose';
import { AlternateKeyRef } from './filter.types.js';

/** Every alternate key named in a parsed filter (the parser's own objects, never raw input). */
export function collectAlternateKeys(value: unknown, found = new Set<string>()): Set<string> {
  if (value instanceof AlternateKeyRef) found.add(value.value);
  else if (Array.isArray(value)) value.forEach((item) => collectAlternateKeys(item, found));
  else if (isPlain(value)) Object.values(value).forEach((item) => collectAlternateKeys(item, found));
  return found;
}

/**
 * The same structure with each AlternateKeyRef replaced by the ObjectId it names. One that
 * names nothing becomes a fresh ObjectId, which matches nothing, as an unknown ObjectId would.
 */
export function replaceAlternateKeys<T>(value: T, ids: ReadonlyMap<string, Types.ObjectId>): T {
  if (value instanceof AlternateKeyRef) return (ids.get(value.value) ?? new Types.ObjectId()) as T;
  if (Array.isArray(value)) return value.map((item) => replaceAlternateKeys(item, ids)) as T;
  if (isPlain(value)) {
    return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, replaceAlternateKeys(item, ids)])) as T;
  }
  return value;
}

function isPlain(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && Object.getPrototypeOf(value) === Object.prototype;
}

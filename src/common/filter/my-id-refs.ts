import { Types } from 'mongoose';
import { MyIdRef } from './filter.types.js';

/** Every myId named in a parsed filter (the parser's own objects, never raw input). */
export function collectMyIds(value: unknown, found = new Set<string>()): Set<string> {
  if (value instanceof MyIdRef) found.add(value.myId);
  else if (Array.isArray(value)) value.forEach((item) => collectMyIds(item, found));
  else if (isPlain(value)) Object.values(value).forEach((item) => collectMyIds(item, found));
  return found;
}

/**
 * The same structure with each MyIdRef replaced by the device's ObjectId. A myId that names
 * no device becomes a fresh ObjectId, which matches nothing, as an unknown ObjectId would.
 */
export function replaceMyIds<T>(value: T, ids: ReadonlyMap<string, Types.ObjectId>): T {
  if (value instanceof MyIdRef) return (ids.get(value.myId) ?? new Types.ObjectId()) as T;
  if (Array.isArray(value)) return value.map((item) => replaceMyIds(item, ids)) as T;
  if (isPlain(value)) return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, replaceMyIds(item, ids)])) as T;
  return value;
}

function isPlain(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && Object.getPrototypeOf(value) === Object.prototype;
}

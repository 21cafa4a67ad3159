import { type ArgumentMetadata, Injectable, type PipeTransform } from '@nestjs/common';
import { type Types } from 'mongoose';
import { badRequest } from '../common/errors.js';
import { type ErrorCase, fieldError } from '../common/openapi/error-example.js';
import { type Key } from './keys.js';

type Id = Types.ObjectId;

/**
 * Where a link puts targets in the list (LoopBack 3's `prepend`, Strapi's `position`): first,
 * last, or next to a target already in it (the anchor). A link without one appends what is
 * not linked yet and leaves what is where it is.
 */
export type Position = { readonly at: 'start' | 'end' } | { readonly at: 'before' | 'after'; readonly anchor: Key };

const ANCHORED = /^(before|after):(.*)$/s;

/** The 400 for a malformed position at `path`, as the pipe throws it and the docs show it. */
export function malformedPosition(path: string, rule: string): ErrorCase {
  const message = `${path}: must be start, end, before:<id> or after:<id>, where <id> is ${rule}`;
  return fieldError(400, 'malformedPosition', path, 'invalid_position', message);
}

/** `?position=` parsed with the target's key reader; absent is undefined, anything else malformed a 400 naming it. */
@Injectable()
export class ParsePositionPipe implements PipeTransform<unknown, Position | undefined> {
  constructor(
    private readonly parseKey: (value: unknown) => Key | undefined,
    private readonly rule: string,
  ) {}

  transform(value: unknown, metadata: ArgumentMetadata): Position | undefined {
    if (value === undefined) return undefined;
    if (value === 'start' || value === 'end') return { at: value };
    const anchored = typeof value === 'string' ? ANCHORED.exec(value) : null;
    const anchor = anchored ? this.parseKey(anchored[2]) : undefined;
    if (anchored && anchor) return { at: anchored[1] as 'before' | 'after', anchor };
    const { message, details } = malformedPosition(metadata.data ?? 'position', this.rule);
    throw badRequest(message, details);
  }
}

export type Placement = { readonly list: Id[]; readonly index: number } | { readonly problem: 'anchor_not_linked' | 'anchor_placed' };

/**
 * `list` with `ids` as one block, in their order, at `at` (for before/after, next to `anchor`):
 * ids already in the list move there, the others are added. `index` is where the block starts
 * in the list without the moved ids, which is the list itself when none moves. The anchor must
 * be in the list and not among `ids`.
 */
export function placeIn(list: readonly Id[], ids: readonly Id[], at: Position['at'], anchor?: Id): Placement {
  const moving = new Set(ids.map((id) => id.toHexString()));
  if (anchor && moving.has(anchor.toHexString())) return { problem: 'anchor_placed' };
  const rest = list.filter((id) => !moving.has(id.toHexString()));
  let index = at === 'start' ? 0 : rest.length;
  if (anchor) {
    const found = rest.findIndex((id) => id.equals(anchor));
    if (found < 0) return { problem: 'anchor_not_linked' };
    index = at === 'before' ? found : found + 1;
  }
  return { list: [...rest.slice(0, index), ...ids, ...rest.slice(index)], index };
}

export function sameList(a: readonly Id[], b: readonly Id[]): boolean {
  return a.length === b.length && a.every((id, index) => id.equals(b[index]));
}

import { Types } from 'mongoose';
import { badRequest } from '../errors.js';
import { type MongoFilter } from '../filter/filter.types.js';
import { REVISION } from '../schema/revision.plugin.js';

/**
 * Entity tags (RFC 9110, 8.8.3) for documents: a document's version is its ObjectId and its
 * revision (revision.plugin.ts), which every write through the service moves on, so
 * `"<ObjectId>-<revision>"` is a strong validator that changes with every write. The ObjectId
 * keeps a tag from one document from matching another, also one created later under the same
 * alternate key after the first was deleted.
 */

/** An entity tag as a request gives it: the opaque tag, quotes included, and whether it is weak (`W/`). */
export interface EntityTag {
  readonly weak: boolean;
  readonly opaque: string;
}

/** `If-Match` or `If-None-Match`: `*` (any current representation) or a list of entity tags. */
export type EntityTagCondition = '*' | readonly EntityTag[];

/** A document whose answer carries its version. */
export interface Versioned {
  readonly _id: Types.ObjectId;
  readonly [REVISION]?: number;
}

/** More tags than anyone sends by hand; a longer list is refused rather than turned into a long filter. */
export const MAX_ENTITY_TAGS = 100;

const VERSION_TAG = /^"([0-9a-f]{24})-(\d{1,15})"$/;

/**
 * One element of a list (RFC 9110, 5.6.1): optional whitespace, an entity tag or nothing (empty
 * elements are allowed), optional whitespace, then a comma or the end. An opaque tag is any
 * visible character but `"` and whitespace, so a comma inside quotes belongs to the tag.
 */
const ELEMENT = /[ \t]*(?:(W\/)?("[\x21\x23-\x7E\x80-\xFF]*"))?[ \t]*(,|$)/y;

/** The version tag of a document that was never written since the service versioned it is that of revision 0. */
export function entityTagOf(document: Versioned): string {
  return `"${document._id.toHexString()}-${document[REVISION] ?? 0}"`;
}

export function isVersioned(body: unknown): body is Versioned {
  if (typeof body !== 'object' || body === null) return false;
  const { _id, [REVISION]: revision } = body as Record<string, unknown>;
  return _id instanceof Types.ObjectId && typeof revision === 'number';
}

/** The value of `header` (`If-Match`, `If-None-Match`), or undefined when it was not sent; a 400 naming it when malformed. */
export function parseEntityTags(value: string | string[] | undefined, header: string): EntityTagCondition | undefined {
  if (value === undefined) return undefined;
  const text = Array.isArray(value) ? value.join(', ') : value;
  if (text.trim() === '*') return '*';
  const tags: EntityTag[] = [];
  let index = 0;
  for (;;) {
    ELEMENT.lastIndex = index;
    const element = ELEMENT.exec(text);
    if (!element) throw malformed(header);
    if (element[2] !== undefined) tags.push({ weak: element[1] !== undefined, opaque: element[2] });
    index = ELEMENT.lastIndex;
    if (element[3] === '') break;
  }
  if (tags.length === 0) throw malformed(header);
  if (tags.length > MAX_ENTITY_TAGS) {
    const message = `${header}: at most ${MAX_ENTITY_TAGS} entity tags`;
    throw badRequest(message, [{ path: header, code: 'too_many_entity_tags', message }]);
  }
  return tags;
}

/** The 400 for a header that is neither `*` nor a list of entity tags. */
export function malformedEntityTags(header: string): { message: string; details: [{ path: string; code: string; message: string }] } {
  const message = `${header}: must be * or a list of entity tags such as "6650c0ffee0000000000a001-3"`;
  return { message, details: [{ path: header, code: 'invalid_entity_tag', message }] };
}

function malformed(header: string) {
  const { message, details } = malformedEntityTags(header);
  return badRequest(message, details);
}

/**
 * If-Match as part of a write's filter, so that the check and the write are one atomic
 * operation: the document must be at one of the versions the tags name. Comparison is strong
 * (a weak tag never matches); a tag this service did not make names no version. `*`, or no
 * header, adds nothing: the write's own filter already requires the document to exist.
 */
export function versionCondition(condition: EntityTagCondition | undefined): MongoFilter {
  if (condition === undefined || condition === '*') return {};
  const versions = condition.flatMap((tag) => {
    const match = tag.weak ? null : VERSION_TAG.exec(tag.opaque);
    if (!match) return [];
    const revision = Number(match[2]);
    // Revision 0 is also a document stored before it had a revision at all (see entityTagOf).
    return [{ _id: new Types.ObjectId(match[1]), [REVISION]: revision === 0 ? { $in: [0, null] } : revision }];
  });
  // No version named: a condition that matches no document.
  if (versions.length === 0) return { [REVISION]: { $in: [] } };
  return { $or: versions };
}

/** Whether If-None-Match names the current tag (a GET then answers 304), by weak comparison: the opaque tags alone. */
export function isNotModified(condition: EntityTagCondition | undefined, current: string): boolean {
  if (condition === undefined) return false;
  return condition === '*' || condition.some((tag) => tag.opaque === current);
}

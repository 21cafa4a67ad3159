import { type Model, type Schema, Types } from 'mongoose';
import { AlternateKeyRef, type ReferenceReader } from '../common/filter/filter.types.js';
import { collectAlternateKeys, replaceAlternateKeys } from '../common/filter/alternate-key-refs.js';
import { isObjectIdString } from '../common/pipes/parse-object-id.pipe.js';

/**
 * A document as a client names it: `{ _id }`, or its alternate key (`{ myId: 'lamp' }`). A
 * 24-hex value is always an ObjectId, which is why an alternate key may never look like one.
 * The key is also the filter that finds the document.
 */
export type Key = Readonly<Record<string, Types.ObjectId | string>>;

export function describeKey(key: Key): string {
  return String(Object.values(key)[0]);
}

export function isIdKey(key: Key): key is { readonly _id: Types.ObjectId } {
  return key._id instanceof Types.ObjectId;
}

/**
 * Reads keys for a model whose alternate key is `alternateKey`: an ObjectId, or a value the
 * schema's own validators accept for that path, so the rule is declared once, on the schema.
 */
export class KeyReader {
  constructor(
    private readonly schema: Schema,
    readonly alternateKey: string | undefined,
    /** How to say what is accepted, for error messages. */
    readonly rule: string,
  ) {}

  parse(value: unknown): Key | undefined {
    if (isObjectIdString(value)) return { _id: new Types.ObjectId(value) };
    if (!this.alternateKey || typeof value !== 'string') return undefined;
    const path = this.schema.path(this.alternateKey) as unknown as { doValidateSync(value: unknown, scope: object): Error | null };
    const invalid = path.doValidateSync(value, {});
    return invalid ? undefined : { [this.alternateKey]: value };
  }
}

/** The filter language's view of keys: an ObjectId as it is, an alternate key for the service to resolve. */
export function referenceReader(parse: (value: unknown) => Key | undefined, rule: string): ReferenceReader {
  return {
    rule,
    read: (value) => {
      const key = parse(value);
      if (!key) return undefined;
      return isIdKey(key) ? key._id : new AlternateKeyRef(describeKey(key));
    },
  };
}

/** Replaces the alternate keys a parsed filter names with the ObjectIds they name (one read, only if any). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function resolveAlternateKeys<F>(model: Model<any>, alternateKey: string | undefined, value: F): Promise<F> {
  if (!alternateKey) return value;
  const keys = [...collectAlternateKeys(value)];
  if (keys.length === 0) return value;
  const found = await model
    .find({ [alternateKey]: { $in: keys } }, { _id: 1, [alternateKey]: 1 })
    .lean<Array<Record<string, unknown> & { _id: Types.ObjectId }>>()
    .exec();
  return replaceAlternateKeys(value, new Map(found.map((document) => [String(document[alternateKey]), document._id])));
}

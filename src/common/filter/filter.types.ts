import { type Types } from 'mongoose';

/**
 * The type of a filterable field; it decides which operators apply and how values coerce.
 * `reference` is the ObjectId of a document that may also be named by its alternate key (a
 * client's own identifier): the parser marks those with AlternateKeyRef for the service to
 * resolve before the query runs.
 */
export type FieldType = 'string' | 'date' | 'objectId' | 'reference';

/** What a model exposes to the filter language: nothing outside it reaches MongoDB. */
export interface FilterSpec {
  readonly fields: Readonly<Record<string, FieldType>>;
  readonly relations?: Readonly<Record<string, FilterSpec>>;
  /** How `reference` values read: an ObjectId, an AlternateKeyRef, or undefined when neither; `rule` says which are accepted. */
  readonly reference?: ReferenceReader;
}

export interface ReferenceReader {
  read(value: unknown): Types.ObjectId | AlternateKeyRef | undefined;
  readonly rule: string;
}

/** A document named by its alternate key inside a parsed filter, replaced by its ObjectId before the query runs. */
export class AlternateKeyRef {
  constructor(readonly value: string) {}
}

export type MongoFilter = Record<string, unknown>;

export interface ParsedInclude {
  readonly relation: string;
  readonly scope: ParsedFilter;
}

export interface ParsedFilter {
  /** A MongoDB filter built by the parser from whitelisted fields and operators only. */
  readonly where: MongoFilter;
  /** A projection, or undefined for every field. */
  readonly fields?: Record<string, 0 | 1>;
  /** Sort keys in the order given, or undefined when no order was asked for. */
  readonly order?: Record<string, 1 | -1>;
  /** Undefined only in an include scope that gave none. */
  readonly limit?: number;
  readonly skip: number;
  readonly include: readonly ParsedInclude[];
}

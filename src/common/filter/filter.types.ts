import { type Types } from 'mongoose';

/**
 * The type of a filterable field; it decides which operators apply and how values coerce.
 * `deviceId` is an ObjectId that may also be given as a device's myId (DESIGN.md, Device
 * identifiers): the parser marks those with MyIdRef for the service to resolve.
 */
export type FieldType = 'string' | 'date' | 'objectId' | 'deviceId';

/** What a model exposes to the filter language: nothing outside it reaches MongoDB. */
export interface FilterSpec {
  readonly fields: Readonly<Record<string, FieldType>>;
  readonly relations?: Readonly<Record<string, FilterSpec>>;
  /** Reads a `deviceId` value: an ObjectId, a MyIdRef, or undefined when it is neither. */
  readonly deviceRef?: (value: unknown) => Types.ObjectId | MyIdRef | undefined;
}

/** A device named by its myId inside a parsed filter, replaced by its ObjectId before the query runs. */
export class MyIdRef {
  constructor(readonly myId: string) {}
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

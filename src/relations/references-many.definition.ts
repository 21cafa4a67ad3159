import { type ConfigType } from '@nestjs/config';
import { type relationConfig } from '../config/config.module.js';

/**
 * One referencesMany relation, declared once: a source model holds, in `foreignKey`, an ordered
 * list of ObjectIds of target documents (an Account's `deviceIds` naming Devices). Everything
 * else (link, unlink, paging, include, the cleanup when a target is deleted, the integrity scan)
 * follows from this (STYLE.md, Layout; DESIGN.md, Invariants).
 */
export interface ReferencesManyDefinition {
  /** The relation's name: what `include` names and what its routes say (`devices`). */
  readonly name: string;
  /** The model holding the list (`Account.name`). */
  readonly source: string;
  /** The model the list names (`Device.name`); its schema applies `referencesManyTarget`. */
  readonly target: string;
  /** The array path on the source (`deviceIds`). */
  readonly foreignKey: string;
  /** A unique path of the target clients may name a target by, besides its ObjectId (`myId`). */
  readonly alternateKey?: string;
  /** The most ids one source may hold. */
  readonly maxSize: (config: ConfigType<typeof relationConfig>) => number;
}

/** The injection token of a relation's `ReferencesMany`. */
export function relationToken(name: string): string {
  return `ReferencesMany:${name}`;
}

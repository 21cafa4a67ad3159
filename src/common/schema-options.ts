import { type SchemaOptions } from '@nestjs/mongoose';

/**
 * Options every collection shares. Read paths use `lean()`, whose ObjectIds and Dates
 * serialise to strings by themselves; the toJSON settings make documents serialise the same.
 */
export const SCHEMA_OPTIONS: SchemaOptions = {
  timestamps: true,
  versionKey: false,
  id: false,
  toJSON: { versionKey: false, virtuals: false },
  toObject: { versionKey: false, virtuals: false },
};

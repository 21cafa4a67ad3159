import { type ArgumentMetadata, Injectable, type PipeTransform } from '@nestjs/common';
import { Types } from 'mongoose';
import { badRequest } from '../errors.js';
import { type ErrorCase, malformedParam } from '../openapi/error-example.js';

const OBJECT_ID = /^[0-9a-fA-F]{24}$/;
export const OBJECT_ID_PATTERN = OBJECT_ID.source;

export function isObjectIdString(value: unknown): value is string {
  return typeof value === 'string' && OBJECT_ID.test(value);
}

/** The 400 for a malformed ObjectId at `path`, as the pipe throws it and the docs show it. */
export function malformedObjectId(path: string): ErrorCase {
  return malformedParam(path, 'invalid_object_id', 'a 24-character hexadecimal ObjectId');
}

/** A malformed `:id` is the client's mistake (400), never a CastError turned into a 500. */
@Injectable()
export class ParseObjectIdPipe implements PipeTransform<string, Types.ObjectId> {
  transform(value: string, metadata: ArgumentMetadata): Types.ObjectId {
    if (!isObjectIdString(value)) {
      const { message, details } = malformedObjectId(metadata.data ?? 'id');
      throw badRequest(message, details);
    }
    return new Types.ObjectId(value);
  }
}

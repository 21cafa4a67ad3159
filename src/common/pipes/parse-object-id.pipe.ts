import { type ArgumentMetadata, Injectable, type PipeTransform } from '@nestjs/common';
import { Types } from 'mongoose';
import { badRequest } from '../errors.js';

const OBJECT_ID = /^[0-9a-fA-F]{24}$/;

export function isObjectIdString(value: unknown): value is string {
  return typeof value === 'string' && OBJECT_ID.test(value);
}

/** A malformed `:id` is the client's mistake (400), never a CastError turned into a 500. */
@Injectable()
export class ParseObjectIdPipe implements PipeTransform<string, Types.ObjectId> {
  transform(value: string, metadata: ArgumentMetadata): Types.ObjectId {
    if (!isObjectIdString(value)) {
      const path = metadata.data ?? 'id';
      const message = `${path} must be a 24-character hexadecimal ObjectId`;
      throw badRequest(message, [{ path, code: 'invalid_object_id', message }]);
    }
    return new Types.ObjectId(value);
  }
}

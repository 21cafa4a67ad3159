import { type ArgumentMetadata, Injectable, ValidationPipe } from '@nestjs/common';

/**
 * The global ValidationPipe, for request bodies. Path parameters and query strings have pipes
 * of their own (ObjectIds, alternate keys, the filter language); running class-validator over them as
 * well cost measurable time on every request and checked nothing.
 */
@Injectable()
export class BodyValidationPipe extends ValidationPipe {
  override transform(value: unknown, metadata: ArgumentMetadata): Promise<unknown> {
    return metadata.type === 'body' ? super.transform(value, metadata) : Promise.resolve(value);
  }
}

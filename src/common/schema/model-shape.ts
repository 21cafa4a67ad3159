import { type Schema, type SchemaType } from 'mongoose';
import { type FieldType, type FilterSpec, type ReferenceReader } from '../filter/filter.types.js';
import { arrayOf, dateTimeJson, objectIdJson } from '../serialization/response-schema.js';

/**
 * What the API shows of a model, read from its Mongoose schema so that a model's fields are
 * declared once (STYLE.md): the default projection, the response JSON schema and the filter's
 * field list. Paths declared `select: false` are the service's own bookkeeping and never shown.
 */
export interface ModelShape {
  /** Every public field, `_id` first, in schema order. */
  readonly fields: readonly string[];
  /** The projection that reads exactly those fields. */
  readonly projection: Readonly<Record<string, 1>>;
  /** The response body of one document, for Fastify's compiled serializer. */
  readonly json: { readonly type: 'object'; readonly properties: Readonly<Record<string, object>> };
  /** The filter language's view of the model. */
  readonly filter: FilterSpec;
}

export interface ModelShapeOptions {
  /** How values of reference fields read (an ObjectId, or a key the service resolves). */
  reference?: ReferenceReader;
  /** Fields that take references although they are plain ObjectIds (a model's own `_id`, say). */
  referenceFields?: readonly string[];
  /** Relations a filter may include, and what their documents look like. */
  relations?: Readonly<Record<string, ModelShape>>;
}

export function modelShape(schema: Schema, options: ModelShapeOptions = {}): ModelShape {
  const paths: Array<[string, SchemaType]> = [];
  schema.eachPath((path, type) => {
    if (path !== '__v' && (type.options as { select?: boolean }).select !== false) paths.push([path, type]);
  });
  paths.sort(([a], [b]) => Number(b === '_id') - Number(a === '_id'));

  const types: Record<string, FieldType> = {};
  const properties: Record<string, object> = {};
  for (const [path, type] of paths) {
    const { field, json } = describe(type, options.reference !== undefined);
    types[path] = options.referenceFields?.includes(path) ? 'reference' : field;
    properties[path] = json;
  }
  for (const [name, related] of Object.entries(options.relations ?? {})) properties[name] = arrayOf(related.json);

  const fields = paths.map(([path]) => path);
  return {
    fields,
    projection: Object.fromEntries(fields.map((field) => [field, 1 as const])),
    json: { type: 'object', properties },
    filter: {
      fields: types,
      ...(options.relations && {
        relations: Object.fromEntries(Object.entries(options.relations).map(([name, related]) => [name, related.filter])),
      }),
      ...(options.reference && { reference: options.reference }),
    },
  };
}

function describe(type: SchemaType, readsReferences: boolean): { field: FieldType; json: object } {
  const element = (type as { embeddedSchemaType?: SchemaType }).embeddedSchemaType;
  if (type.instance === 'Array' && element) {
    const inner = describe(element, readsReferences);
    const isReference = element.instance === 'ObjectId' && (element.options as { ref?: unknown }).ref !== undefined;
    return { field: isReference && readsReferences ? 'reference' : inner.field, json: arrayOf(inner.json) };
  }
  switch (type.instance) {
    case 'ObjectId':
      return { field: 'objectId', json: objectIdJson };
    case 'Date':
      return { field: 'date', json: dateTimeJson };
    default:
      return { field: 'string', json: { type: 'string' } };
  }
}

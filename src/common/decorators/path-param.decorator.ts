import { Param, type PipeTransform, type Type } from '@nestjs/common';
import { ApiParam, type ApiParamOptions, type ExampleObject, type SchemaObject } from '@nestjs/swagger';
import { type ErrorCase } from '../openapi/error-example.js';
import { ApiErrors } from './api-errors.decorator.js';

export interface PathParamDocs {
  description: string;
  /** Always a string schema: what Swagger UI offers to type in and a generated client types. */
  schema: SchemaObject & { type: 'string' };
  /** Named examples (Swagger UI offers them in a list); a single one goes in `schema.example`. */
  examples?: Record<string, ExampleObject>;
  /** The 400 the pipe answers for a malformed value. */
  malformed: ErrorCase;
}

/**
 * A parameter decorator (`@Param`, `@Query`, one reading a header) with the method decorators
 * that document it (ApiParam, ApiQuery, ApiHeader, ApiErrors), declared once for every route that
 * takes the parameter.
 */
export function DocumentedParameter(bind: ParameterDecorator, ...docs: MethodDecorator[]): ParameterDecorator {
  return (target, key, index) => {
    bind(target, key, index);
    if (key === undefined) return;
    const method = Object.getOwnPropertyDescriptor(target, key)!;
    for (const doc of docs) doc(target, key, method);
  };
}

/**
 * `@Param(name, pipe)` with its documentation, declared once for every route that takes the
 * parameter: the parameter's schema and examples, and the 400 its pipe answers.
 */
export function PathParam(name: string, pipe: Type<PipeTransform>, docs: PathParamDocs): ParameterDecorator {
  // `type` overrides the handler's parameter type (an ObjectId, a parsed key), which Swagger
  // would otherwise document as a schema of that class: what travels is a string.
  const param = { name, type: String, description: docs.description, schema: docs.schema, examples: docs.examples };
  return DocumentedParameter(Param(name, pipe), ApiParam(param as ApiParamOptions), ApiErrors(docs.malformed));
}

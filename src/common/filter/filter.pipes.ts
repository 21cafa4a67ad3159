import { Injectable, type PipeTransform } from '@nestjs/common';
import { badRequest } from '../errors.js';
import { type ErrorCase, fieldError } from '../openapi/error-example.js';
import { parseFilter, parseWhere, readQueryObject, refuseSuperLinearPatterns } from './filter.parser.js';
import { type PatternUse } from './filter.patterns.js';
import { type FilterSpec, type MongoFilter, type ParsedFilter } from './filter.types.js';

/**
 * `?filter=` as JSON or in bracket form, plus the `?include=` shorthand of LoopBack, parsed
 * against a model's spec; its patterns, include scopes' too, are proven linear before the
 * handler runs. Other query keys are ignored, as LoopBack does.
 */
@Injectable()
export class ParseFilterPipe implements PipeTransform<Record<string, unknown>, Promise<ParsedFilter>> {
  constructor(private readonly spec: FilterSpec) {}

  async transform(query: Record<string, unknown> = {}): Promise<ParsedFilter> {
    const patterns: PatternUse[] = [];
    const parsed = parseFilter(this.withIncludeShorthand(query), this.spec, 'filter', patterns);
    await refuseSuperLinearPatterns(patterns);
    return parsed;
  }

  private withIncludeShorthand(query: Record<string, unknown>): unknown {
    const raw = readQueryObject(query.filter, 'filter');
    if (query.include === undefined || !this.spec.relations) return raw;
    const shorthand = readIncludeShorthand(query.include);
    const merged = typeof raw === 'object' && raw !== null && !Array.isArray(raw) ? { ...raw } : raw === undefined ? {} : raw;
    if (typeof merged === 'object' && merged !== null && !Array.isArray(merged)) {
      const existing = (merged as Record<string, unknown>).include;
      (merged as Record<string, unknown>).include = existing === undefined ? shorthand : [existing, shorthand].flat();
    }
    return merged;
  }
}

/** `?where=` of the count routes, as JSON or in bracket form; patterns as in ParseFilterPipe. */
@Injectable()
export class ParseWherePipe implements PipeTransform<Record<string, unknown>, Promise<MongoFilter>> {
  constructor(private readonly spec: FilterSpec) {}

  async transform(query: Record<string, unknown> = {}): Promise<MongoFilter> {
    const patterns: PatternUse[] = [];
    const where = parseWhere(readQueryObject(query.where, 'where'), this.spec, 'where', patterns);
    await refuseSuperLinearPatterns(patterns);
    return where;
  }
}

export const WHERE_REQUIRED = fieldError(
  400,
  'whereRequired',
  'where',
  'required',
  'where: required, so that no write of every document happens by mistake; send all=true to write every one',
);
export const ALL_NOT_BOOLEAN = fieldError(400, 'allNotBoolean', 'all', 'invalid_boolean', 'all: must be true or false');

/**
 * `?where=` of a write of many documents (LoopBack's updateAll), read as on the count routes.
 * An empty or missing one would write every document, which is refused unless `?all=true`
 * says that is meant.
 */
@Injectable()
export class ParseBulkWherePipe implements PipeTransform<Record<string, unknown>, Promise<MongoFilter>> {
  private readonly where: ParseWherePipe;

  constructor(spec: FilterSpec) {
    this.where = new ParseWherePipe(spec);
  }

  async transform(query: Record<string, unknown> = {}): Promise<MongoFilter> {
    if (query.all !== undefined && query.all !== 'true' && query.all !== 'false') throw refusal(ALL_NOT_BOOLEAN);
    const where = await this.where.transform(query);
    if (Object.keys(where).length === 0 && query.all !== 'true') throw refusal(WHERE_REQUIRED);
    return where;
  }
}

function refusal({ message, details }: ErrorCase) {
  return badRequest(message, details);
}

/** `?include=<relation>`, `?include=["<relation>"]` or `?include[0]=<relation>`. */
function readIncludeShorthand(value: unknown): unknown {
  if (typeof value === 'string' && (value.startsWith('[') || value.startsWith('{'))) return readQueryObject(value, 'include');
  return value;
}

import { Injectable, type PipeTransform } from '@nestjs/common';
import { parseFilter, parseWhere, readQueryObject } from './filter.parser.js';
import { type FilterSpec, type MongoFilter, type ParsedFilter } from './filter.types.js';

/**
 * `?filter=` as JSON or in bracket form, plus the `?include=` shorthand of LoopBack, parsed
 * against a model's spec. Other query keys are ignored, as LoopBack does.
 */
@Injectable()
export class ParseFilterPipe implements PipeTransform<Record<string, unknown>, ParsedFilter> {
  constructor(private readonly spec: FilterSpec) {}

  transform(query: Record<string, unknown> = {}): ParsedFilter {
    const raw = readQueryObject(query.filter, 'filter');
    if (query.include === undefined || !this.spec.relations) return parseFilter(raw, this.spec);
    const shorthand = readIncludeShorthand(query.include);
    const merged = typeof raw === 'object' && raw !== null && !Array.isArray(raw) ? { ...raw } : raw === undefined ? {} : raw;
    if (typeof merged === 'object' && merged !== null && !Array.isArray(merged)) {
      const existing = (merged as Record<string, unknown>).include;
      (merged as Record<string, unknown>).include = existing === undefined ? shorthand : [existing, shorthand].flat();
    }
    return parseFilter(merged, this.spec);
  }
}

/** `?where=` of the count routes, as JSON or in bracket form. */
@Injectable()
export class ParseWherePipe implements PipeTransform<Record<string, unknown>, MongoFilter> {
  constructor(private readonly spec: FilterSpec) {}

  transform(query: Record<string, unknown> = {}): MongoFilter {
    return parseWhere(readQueryObject(query.where, 'where'), this.spec);
  }
}

/** `?include=<relation>`, `?include=["<relation>"]` or `?include[0]=<relation>`. */
function readIncludeShorthand(value: unknown): unknown {
  if (typeof value === 'string' && (value.startsWith('[') || value.startsWith('{'))) return readQueryObject(value, 'include');
  return value;
}

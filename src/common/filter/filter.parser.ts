import { Types } from 'mongoose';
import { type ErrorDetail } from '../dto/error-response.dto.js';
import { badRequest } from '../errors.js';
import { FILTER_LIMITS } from './filter.limits.js';
import { findSuperLinearPatterns, type PatternUse, readPattern } from './filter.patterns.js';
import { type FieldType, type FilterSpec, type MongoFilter, type ParsedFilter, type ParsedInclude } from './filter.types.js';

/**
 * The LoopBack 3 filter language, translated to MongoDB by building new objects from
 * whitelisted fields and operators: no key or object from the request is passed through, so
 * `$where`, `$function` and friends cannot reach the database. Every problem is collected
 * and reported at once as a 400 whose details name the path (`filter.where.name.like`).
 *
 * Parsing is synchronous; patterns are then proven linear by `refuseSuperLinearPatterns`,
 * which is asynchronous (filter.pipes.ts runs both).
 */

const OBJECT_ID = /^[0-9a-fA-F]{24}$/;
const REGEXP_LITERAL = /^\/(.*)\/([a-z]*)$/s;
const REGEX_FLAGS = /^[ims]*$/;
const FORBIDDEN_KEYS = new Set(['__proto__', 'constructor', 'prototype']);
const DOLLAR_REFUSED = 'keys and values starting with $ are refused: they are not part of the filter language';

/**
 * The query-string parser drops `__proto__` keys without a word; app.setup.ts has it write
 * them as this stand-in instead, so they are refused here like any other forbidden key.
 */
export const PROTO_KEY_STANDIN = '__proto__\u0000';

const COMPARISON = ['neq', 'gt', 'gte', 'lt', 'lte', 'between', 'inq', 'nin', 'exists'] as const;
const PATTERN = ['like', 'nlike', 'ilike', 'nilike', 'regexp'] as const;
const OPERATORS: Record<FieldType, ReadonlySet<string>> = {
  string: new Set([...COMPARISON, ...PATTERN]),
  date: new Set(COMPARISON),
  objectId: new Set(COMPARISON),
  reference: new Set(COMPARISON),
};
const FILTER_KEYS = new Set(['where', 'fields', 'order', 'limit', 'skip', 'offset', 'include']);
const SCOPE_KEYS = new Set(['where', 'fields', 'order', 'limit', 'skip', 'offset']);

type Plain = Record<string, unknown>;

/** An object literal, from JSON.parse or from the query-string parser (which makes them without a prototype). */
function isPlain(value: unknown): value is Plain {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const prototype = Object.getPrototypeOf(value);
  return prototype === Object.prototype || prototype === null;
}

class Problems {
  readonly details: ErrorDetail[] = [];

  /** Patterns that passed the synchronous checks, for the ReDoS check that follows. */
  constructor(readonly patterns: PatternUse[] = []) {}

  add(path: string, code: string, message: string): undefined {
    this.details.push({ path, code, message: `${path}: ${message}` });
    return undefined;
  }

  throwIfAny(): void {
    if (this.details.length > 0) throw badRequest(this.details.map((detail) => detail.message).join('; '), this.details);
  }
}

/**
 * Reads a query-string value that is JSON (`?filter={"limit":2}`) or already an object from
 * LoopBack's bracket form (`?filter[limit]=2`, parsed by the query-string parser).
 */
export function readQueryObject(value: unknown, path: string): unknown {
  if (value === undefined || value === '') return undefined;
  if (typeof value !== 'string') return value;
  try {
    return JSON.parse(value);
  } catch {
    const message = `${path}: must be JSON or LoopBack bracket notation (${path}[key]=value)`;
    throw badRequest(message, [{ path, code: 'invalid_json', message }]);
  }
}

/**
 * Parses a whole filter (`?filter=`). `include` is accepted only where the spec has relations.
 * The patterns it holds are added to `patterns` for `refuseSuperLinearPatterns`.
 */
export function parseFilter(raw: unknown, spec: FilterSpec, path = 'filter', patterns?: PatternUse[]): ParsedFilter {
  const problems = new Problems(patterns);
  checkShape(raw, path, 0, problems);
  problems.throwIfAny();
  const parsed = parseFilterObject(raw ?? {}, spec, path, problems, FILTER_KEYS, FILTER_LIMITS.defaultLimit);
  problems.throwIfAny();
  return parsed!;
}

/** Parses a bare where clause (`?where=` of the count routes); patterns as in parseFilter. */
export function parseWhere(raw: unknown, spec: FilterSpec, path = 'where', patterns?: PatternUse[]): MongoFilter {
  const problems = new Problems(patterns);
  checkShape(raw, path, 0, problems);
  problems.throwIfAny();
  const where = raw === undefined ? {} : translateWhere(raw, spec, path, problems);
  problems.throwIfAny();
  return where ?? {};
}

/**
 * 400 `unsafe_pattern` for every pattern whose matching time can grow super-linearly with the
 * text (filter.patterns.ts), before any of them reaches the database.
 */
export async function refuseSuperLinearPatterns(patterns: PatternUse[]): Promise<void> {
  if (patterns.length === 0) return;
  const problems = new Problems();
  for (const found of await findSuperLinearPatterns(patterns)) problems.add(found.path, found.code, found.message);
  problems.throwIfAny();
}

/**
 * `$` keys, prototype keys and excessive nesting are refused wherever they appear. The level of
 * a value is the number of keys and indexes on its path from the root (`filter` or `where`),
 * as LoopBack 3's maxDepthOfQuery counts it: a value at a level past the limit is refused.
 */
function checkShape(value: unknown, path: string, level: number, problems: Problems): void {
  if (level > FILTER_LIMITS.maxDepth) {
    problems.add(path, 'too_deep', `nesting deeper than ${FILTER_LIMITS.maxDepth} levels of objects and arrays is not allowed`);
    return;
  }
  if (typeof value !== 'object' || value === null) return;
  if (Array.isArray(value)) {
    value.forEach((item, index) => checkShape(item, `${path}[${index}]`, level + 1, problems));
    return;
  }
  for (const [rawKey, item] of Object.entries(value)) {
    const key = rawKey === PROTO_KEY_STANDIN ? '__proto__' : rawKey;
    const itemPath = `${path}.${key}`;
    if (key.startsWith('$')) problems.add(itemPath, 'forbidden_key', DOLLAR_REFUSED);
    else if (FORBIDDEN_KEYS.has(key)) problems.add(itemPath, 'forbidden_key', `"${key}" is not allowed`);
    else checkShape(item, itemPath, level + 1, problems);
  }
}

/** Field and relation names are identifiers: `$natural`, `$lookup` and the like are refused by name. */
function isDollarName(value: unknown): boolean {
  return typeof value === 'string' && value.trimStart().startsWith('$');
}

function parseFilterObject(
  raw: unknown,
  spec: FilterSpec,
  path: string,
  problems: Problems,
  allowedKeys: ReadonlySet<string>,
  defaultLimit: number | undefined,
): ParsedFilter | undefined {
  if (!isPlain(raw)) return problems.add(path, 'invalid_filter', 'must be an object');
  for (const key of Object.keys(raw)) {
    if (!allowedKeys.has(key)) problems.add(`${path}.${key}`, 'unknown_key', `unknown key; use ${[...allowedKeys].join(', ')}`);
  }
  if (raw.skip !== undefined && raw.offset !== undefined) problems.add(`${path}.offset`, 'conflict', 'give skip or offset, not both');
  const skipKey = raw.skip !== undefined ? 'skip' : 'offset';
  const include =
    raw.include === undefined || !allowedKeys.has('include') ? [] : parseInclude(raw.include, spec, `${path}.include`, problems);
  return {
    where: raw.where === undefined ? {} : (translateWhere(raw.where, spec, `${path}.where`, problems) ?? {}),
    fields: raw.fields === undefined ? undefined : parseFields(raw.fields, spec, `${path}.fields`, problems),
    order: raw.order === undefined ? undefined : parseOrder(raw.order, spec, `${path}.order`, problems),
    limit: raw.limit === undefined ? defaultLimit : parseInteger(raw.limit, `${path}.limit`, 1, FILTER_LIMITS.maxLimit, problems),
    skip: raw[skipKey] === undefined ? 0 : (parseInteger(raw[skipKey], `${path}.${skipKey}`, 0, FILTER_LIMITS.maxSkip, problems) ?? 0),
    include: include ?? [],
  };
}

function parseInteger(value: unknown, path: string, min: number, max: number, problems: Problems): number | undefined {
  const number = typeof value === 'string' && /^\d+$/.test(value) ? Number(value) : value;
  if (typeof number !== 'number' || !Number.isInteger(number) || number < min || number > max) {
    return problems.add(path, 'out_of_range', `must be an integer from ${min} to ${max}`);
  }
  return number;
}

function parseFields(value: unknown, spec: FilterSpec, path: string, problems: Problems): Record<string, 0 | 1> | undefined {
  const known = (field: string, fieldPath: string) => {
    if (Object.hasOwn(spec.fields, field)) return true;
    problems.add(fieldPath, 'unknown_field', `unknown field; use ${Object.keys(spec.fields).join(', ')}`);
    return false;
  };
  const list = typeof value === 'string' ? value.split(',').map((field) => field.trim()) : value;
  if (Array.isArray(list)) {
    const projection: Record<string, 0 | 1> = {};
    list.forEach((field, index) => {
      const fieldPath = Array.isArray(value) ? `${path}[${index}]` : path;
      if (typeof field !== 'string') problems.add(fieldPath, 'invalid_field', 'must be a field name');
      else if (isDollarName(field)) problems.add(fieldPath, 'forbidden_value', DOLLAR_REFUSED);
      else if (known(field, fieldPath)) projection[field] = 1;
    });
    return projection;
  }
  if (!isPlain(list)) return problems.add(path, 'invalid_fields', 'must be a list of field names or an object of field: true|false');
  const projection: Record<string, 0 | 1> = {};
  for (const [field, flag] of Object.entries(list)) {
    const fieldPath = `${path}.${field}`;
    const include = flag === true || flag === 'true' || flag === 1 || flag === '1';
    const exclude = flag === false || flag === 'false' || flag === 0 || flag === '0';
    if (!include && !exclude) problems.add(fieldPath, 'invalid_value', 'must be true or false');
    else if (known(field, fieldPath)) projection[field] = include ? 1 : 0;
  }
  // MongoDB cannot mix inclusion and exclusion, except for _id.
  const kinds = new Set(
    Object.entries(projection)
      .filter(([field]) => field !== '_id')
      .map(([, flag]) => flag),
  );
  if (kinds.size > 1) problems.add(path, 'invalid_fields', 'list fields to include or fields to exclude, not both');
  return projection;
}

function parseOrder(value: unknown, spec: FilterSpec, path: string, problems: Problems): Record<string, 1 | -1> | undefined {
  const items = typeof value === 'string' ? value.split(',') : value;
  if (!Array.isArray(items)) return problems.add(path, 'invalid_order', 'must be "field ASC|DESC" or a list of them');
  const order: Record<string, 1 | -1> = {};
  items.forEach((item, index) => {
    const itemPath = Array.isArray(value) ? `${path}[${index}]` : path;
    const match = typeof item === 'string' ? /^\s*([A-Za-z_][\w]*)(?:\s+(ASC|DESC))?\s*$/i.exec(item) : null;
    if (isDollarName(item)) {
      problems.add(itemPath, 'forbidden_value', DOLLAR_REFUSED);
    } else if (!match) {
      problems.add(itemPath, 'invalid_order', 'must be "field ASC" or "field DESC"');
    } else if (!Object.hasOwn(spec.fields, match[1])) {
      problems.add(itemPath, 'unknown_field', `unknown field; use ${Object.keys(spec.fields).join(', ')}`);
    } else {
      order[match[1]] = match[2]?.toUpperCase() === 'DESC' ? -1 : 1;
    }
  });
  return order;
}

function parseInclude(value: unknown, spec: FilterSpec, path: string, problems: Problems): ParsedInclude[] | undefined {
  if (!spec.relations) return problems.add(path, 'unknown_relation', 'this resource has no relations to include');
  const items = Array.isArray(value) ? value : [value];
  const includes: ParsedInclude[] = [];
  items.forEach((item, index) => {
    const itemPath = Array.isArray(value) ? `${path}[${index}]` : path;
    const relation = typeof item === 'string' ? item : isPlain(item) ? item.relation : undefined;
    if (isDollarName(relation)) {
      problems.add(typeof item === 'string' ? itemPath : `${itemPath}.relation`, 'forbidden_value', DOLLAR_REFUSED);
      return;
    }
    if (typeof relation !== 'string' || !Object.hasOwn(spec.relations!, relation)) {
      problems.add(itemPath, 'unknown_relation', `must name a relation: ${Object.keys(spec.relations!).join(', ')}`);
      return;
    }
    if (isPlain(item)) {
      for (const key of Object.keys(item)) {
        if (key !== 'relation' && key !== 'scope') problems.add(`${itemPath}.${key}`, 'unknown_key', 'use relation and scope');
      }
    }
    const rawScope = isPlain(item) ? (item.scope ?? {}) : {};
    const scope = parseFilterObject(rawScope, spec.relations![relation], `${itemPath}.scope`, problems, SCOPE_KEYS, undefined);
    if (scope) includes.push({ relation, scope });
  });
  return includes;
}

function translateWhere(where: unknown, spec: FilterSpec, path: string, problems: Problems): MongoFilter | undefined {
  if (!isPlain(where)) return problems.add(path, 'invalid_where', 'must be an object of conditions');
  const filter: MongoFilter = {};
  for (const [key, condition] of Object.entries(where)) {
    const keyPath = `${path}.${key}`;
    if (key === 'and' || key === 'or') {
      if (!Array.isArray(condition) || condition.length === 0) {
        problems.add(keyPath, 'invalid_where', 'must be a non-empty list of conditions');
        continue;
      }
      const clauses = condition.map((clause, index) => translateWhere(clause, spec, `${keyPath}[${index}]`, problems) ?? {});
      filter[`$${key}`] = clauses;
      continue;
    }
    // Own properties only: `toString` and friends are not fields.
    const type = Object.hasOwn(spec.fields, key) ? spec.fields[key] : undefined;
    if (!type) {
      problems.add(keyPath, 'unknown_field', `unknown field; use ${Object.keys(spec.fields).join(', ')}, and, or`);
      continue;
    }
    const translated = isPlain(condition)
      ? translateOperators(condition, type, spec, keyPath, problems)
      : condition === null
        ? null
        : coerce(condition, type, spec, keyPath, problems);
    if (translated !== undefined) filter[key] = translated;
  }
  return filter;
}

function translateOperators(
  condition: Plain,
  type: FieldType,
  spec: FilterSpec,
  path: string,
  problems: Problems,
): MongoFilter | undefined {
  const result: MongoFilter = {};
  const allowed = OPERATORS[type];
  const flags = condition.options;
  if (flags !== undefined && (typeof flags !== 'string' || !REGEX_FLAGS.test(flags))) {
    problems.add(`${path}.options`, 'invalid_value', 'must be regular-expression flags (i, m, s)');
  }
  for (const [operator, value] of Object.entries(condition)) {
    const opPath = `${path}.${operator}`;
    if (operator === 'options' && Object.keys(condition).some((key) => (PATTERN as readonly string[]).includes(key))) continue;
    if (!allowed.has(operator)) {
      problems.add(opPath, 'unknown_operator', `not an operator for a ${type} field; use ${[...allowed].join(', ')}`);
      continue;
    }
    switch (operator) {
      case 'neq':
        result.$ne = value === null ? null : coerce(value, type, spec, opPath, problems);
        break;
      case 'gt':
      case 'gte':
      case 'lt':
      case 'lte':
        result[`$${operator}`] = coerce(value, type, spec, opPath, problems);
        break;
      case 'between': {
        if (!Array.isArray(value) || value.length !== 2) {
          problems.add(opPath, 'invalid_value', 'must be a list of two values [from, to]');
          break;
        }
        result.$gte = coerce(value[0], type, spec, `${opPath}[0]`, problems);
        result.$lte = coerce(value[1], type, spec, `${opPath}[1]`, problems);
        break;
      }
      case 'inq':
      case 'nin': {
        if (!Array.isArray(value)) {
          problems.add(opPath, 'invalid_value', 'must be a list of values');
        } else if (value.length > FILTER_LIMITS.maxValues) {
          problems.add(opPath, 'too_many_values', `at most ${FILTER_LIMITS.maxValues} values`);
        } else {
          result[operator === 'inq' ? '$in' : '$nin'] = value.map((item, index) =>
            coerce(item, type, spec, `${opPath}[${index}]`, problems),
          );
        }
        break;
      }
      case 'exists': {
        const flag = value === true || value === 'true' ? true : value === false || value === 'false' ? false : undefined;
        if (flag === undefined) problems.add(opPath, 'invalid_value', 'must be true or false');
        else result.$exists = flag;
        break;
      }
      default: {
        const pattern = toRegExp(operator, value, typeof flags === 'string' ? flags : '', opPath, problems);
        if (!pattern) break;
        // $not takes a regular expression; $regex takes its source and $options as strings,
        // the form every engine here reads the same way.
        if (operator === 'nlike' || operator === 'nilike') {
          result.$not = pattern;
        } else {
          result.$regex = pattern.source;
          result.$options = pattern.flags;
        }
      }
    }
  }
  return result;
}

/**
 * Patterns are regular expressions, as in LoopBack's MongoDB connector; `ilike`/`nilike` are
 * the case-insensitive forms and `regexp` also takes a `/pattern/flags` literal. Length is
 * bounded so a pattern cannot be made expensive by size; what an engine would refuse or read
 * differently, and what can backtrack without bound, is refused (filter.patterns.ts).
 */
const distinctPatterns = new WeakMap<PatternUse[], Set<string>>();

function toRegExp(operator: string, value: unknown, flags: string, path: string, problems: Problems): RegExp | undefined {
  if (typeof value !== 'string') return problems.add(path, 'invalid_value', 'must be a pattern string');
  if (value.length > FILTER_LIMITS.maxPatternLength) {
    return problems.add(path, 'pattern_too_long', `at most ${FILTER_LIMITS.maxPatternLength} characters`);
  }
  const literal = operator === 'regexp' ? REGEXP_LITERAL.exec(value) : null;
  const source = literal ? literal[1] : value;
  let patternFlags = flags + (literal ? literal[2].replace(/g/g, '') : '');
  if (operator === 'ilike' || operator === 'nilike') patternFlags += 'i';
  patternFlags = [...new Set(patternFlags)].join('');
  if (!REGEX_FLAGS.test(patternFlags)) return problems.add(path, 'invalid_value', 'flags must be among i, m, s');
  const reading = readPattern(source);
  if (reading.problem) return problems.add(path, reading.problem.code, reading.problem.message);
  // Distinct patterns, as the check sees them: one repeated on several fields is checked once.
  const distinct = distinctPatterns.get(problems.patterns) ?? new Set<string>();
  distinctPatterns.set(problems.patterns, distinct);
  const key = `${patternFlags}/${reading.checkSource!}`;
  if (!distinct.has(key) && distinct.size >= FILTER_LIMITS.maxPatterns) {
    return problems.add(path, 'too_many_patterns', `at most ${FILTER_LIMITS.maxPatterns} distinct patterns in one filter`);
  }
  distinct.add(key);
  problems.patterns.push({ path, checkSource: reading.checkSource!, flags: patternFlags });
  return new RegExp(source, patternFlags);
}

function coerce(value: unknown, type: FieldType, spec: FilterSpec, path: string, problems: Problems): unknown {
  switch (type) {
    case 'string':
      if (typeof value === 'string') return value;
      return problems.add(path, 'invalid_value', 'must be a string');
    case 'date': {
      // Milliseconds come as numbers in JSON and as digit strings in the bracket form.
      const time = typeof value === 'string' && /^-?\d+$/.test(value) ? Number(value) : value;
      const date = typeof time === 'string' || typeof time === 'number' ? new Date(time) : undefined;
      if (date && !Number.isNaN(date.getTime())) return date;
      return problems.add(path, 'invalid_value', 'must be a date (ISO 8601 or milliseconds since 1970)');
    }
    case 'objectId':
      if (typeof value === 'string' && OBJECT_ID.test(value)) return new Types.ObjectId(value);
      return problems.add(path, 'invalid_value', 'must be an ObjectId (24 hexadecimal characters)');
    case 'reference':
      return spec.reference?.read(value) ?? problems.add(path, 'invalid_value', `must be ${spec.reference?.rule ?? 'an ObjectId'}`);
  }
}

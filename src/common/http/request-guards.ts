import { BadRequestException, UnsupportedMediaTypeException } from '@nestjs/common';
import { type FastifyError } from 'fastify';
import { STATUS_CODES } from 'node:http';
import { type ErrorDetail, type ErrorResponse } from '../dto/error-response.dto.js';

/** A JSON body nested deeper than this (objects and arrays) is refused before it is parsed. */
export const MAX_BODY_DEPTH = 32;

/** The longest id a path may carry: an alternate key is at most 128 characters, an ObjectId 24. */
export const MAX_PATH_ID_LENGTH = 128;

/** The longest path parameter the router hands to a route; a longer one is refused before routing. */
export const MAX_ROUTED_PARAM_LENGTH = 1024;

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN = new Set([0x5b, 0x7b]);
const CLOSE = new Set([0x5d, 0x7d]);

/**
 * Whether the JSON text nests objects and arrays deeper than `maxDepth`: one pass over the bytes
 * that stops at the first level too deep, so a body of half a million `[` costs microseconds
 * instead of a recursive descent in JSON.parse, class-transformer and the validators. Bytes of a
 * multi-byte UTF-8 character are all >= 0x80 and never look like a quote or a bracket.
 */
export function jsonNestsDeeperThan(body: Buffer, maxDepth: number): boolean {
  let depth = 0;
  let inString = false;
  for (let index = 0; index < body.length; index += 1) {
    const byte = body[index];
    if (inString) {
      if (byte === BACKSLASH) index += 1;
      else if (byte === QUOTE) inString = false;
    } else if (byte === QUOTE) {
      inString = true;
    } else if (OPEN.has(byte)) {
      depth += 1;
      if (depth > maxDepth) return true;
    } else if (CLOSE.has(byte)) {
      depth -= 1;
    }
  }
  return false;
}

export function bodyTooDeep(): BadRequestException {
  const message = `body: JSON nested deeper than ${MAX_BODY_DEPTH} levels of objects and arrays is not accepted`;
  return new BadRequestException({ message, details: [{ path: 'body', code: 'too_deep', message }] });
}

export function unsupportedMediaType(contentType: string | undefined): UnsupportedMediaTypeException {
  const message = `Only application/json bodies are accepted${contentType ? ` (got ${contentType.split(';')[0].trim().slice(0, 100)})` : ''}`;
  return new UnsupportedMediaTypeException({ message });
}

/**
 * The error-shape body for the errors Fastify's router answers by itself, before any route,
 * hook or Nest filter runs: a path parameter longer than the router takes, or a path that is
 * not valid percent-encoding. Neither echoes the URL back.
 */
export function frameworkErrorBody(error: FastifyError, url: string, routeUrls: readonly string[]): ErrorResponse {
  if (error.code === 'FST_ERR_MAX_PARAM_LENGTH') {
    const name = longParamName(url, routeUrls);
    const message = `${name ?? 'a path id'} must be at most ${MAX_PATH_ID_LENGTH} characters`;
    const details: ErrorDetail[] | undefined = name ? [{ path: name, code: 'too_long', message }] : undefined;
    return { statusCode: 400, error: STATUS_CODES[400]!, message, ...(details && { details }) };
  }
  if (error.code === 'FST_ERR_BAD_URL') {
    return { statusCode: 400, error: STATUS_CODES[400]!, message: 'The path is not valid percent-encoding' };
  }
  return { statusCode: 500, error: STATUS_CODES[500]!, message: 'Internal server error' };
}

/** The name of the route parameter that holds the over-long segment (`id`, `fk`), if a route says. */
function longParamName(url: string, routeUrls: readonly string[]): string | undefined {
  const segments = url.split('?')[0].split('/');
  const index = segments.findIndex((segment) => decodedLength(segment) > MAX_ROUTED_PARAM_LENGTH);
  if (index < 0) return undefined;
  for (const route of routeUrls) {
    const parts = route.split('/');
    if (parts.length !== segments.length || !parts[index]?.startsWith(':')) continue;
    if (parts.every((part, i) => i === index || part.startsWith(':') || part === segments[i])) return parts[index].slice(1);
  }
  return undefined;
}

function decodedLength(segment: string): number {
  try {
    return decodeURIComponent(segment).length;
  } catch {
    return segment.length;
  }
}

import { expect } from '@jest/globals';
import { type ArgumentsHost } from '@nestjs/common';
import { type HttpAdapterHost } from '@nestjs/core';
import { STATUS_CODES } from 'node:http';
import { type Response } from 'supertest';
import { AllExceptionsFilter } from '../../src/common/filters/all-exceptions.filter.js';

/** A value as URL-encoded JSON, for `?filter=` and `?where=`. */
export const json = (value: unknown) => encodeURIComponent(JSON.stringify(value));

/** `?where=` as supertest's `.query()` takes it, the value as JSON. */
export const where = (value: unknown) => ({ where: JSON.stringify(value) });

/** One entry of an error's `details` as a test expects it; `message` is any string unless given. */
export interface ExpectedDetail {
  path: unknown;
  code?: unknown;
  message?: unknown;
}

/**
 * The error shape of DESIGN.md, answered with `status`: `statusCode` and its status text, a
 * string `message`, `details` (when there are any) of exactly `{ path, code, message }`, no other
 * key, and no stack trace anywhere in the text. `details` is the list the body must hold, in
 * order (none at all when it is empty or left out), or `{ including }`: entries it must hold,
 * with or without others (`{ including: [] }` when a test does not mind which).
 */
export function expectError(res: Response, status: number, details: ExpectedDetail[] | { including: ExpectedDetail[] } = []): void {
  expect(res.status).toBe(status);
  const body = res.body as Record<string, unknown>;
  expect(body).toEqual({
    statusCode: status,
    error: STATUS_CODES[status],
    message: expect.any(String),
    ...('details' in body && { details: expect.any(Array) }),
  });
  for (const detail of (body.details ?? []) as unknown[]) {
    expect(detail).toEqual({ path: expect.any(String), code: expect.any(String), message: expect.any(String) });
  }
  if (!Array.isArray(details)) {
    expect(body.details ?? []).toEqual(expect.arrayContaining(details.including.map((detail) => expect.objectContaining(detail))));
  } else if (details.length === 0) {
    expect(body).not.toHaveProperty('details');
  } else {
    expect(body.details).toEqual(details.map((detail) => ({ message: expect.any(String), ...detail })));
  }
  expect(res.text).not.toContain('    at ');
}

/** What the global exception filter answers to `exception` thrown by a request with `query`, called as Nest calls it. */
export function filterAnswer(exception: unknown, query: Record<string, unknown> = {}): { status: number; body: unknown } {
  let reply: { status: number; body: unknown } | undefined;
  const adapterHost = {
    httpAdapter: { reply: (_response: unknown, body: unknown, status: number) => (reply = { status, body }) },
  } as unknown as HttpAdapterHost;
  const host = { switchToHttp: () => ({ getResponse: () => ({}), getRequest: () => ({ query }) }) } as unknown as ArgumentsHost;
  new AllExceptionsFilter(adapterHost).catch(exception, host);
  if (!reply) throw new Error('the filter sent no reply');
  return reply;
}

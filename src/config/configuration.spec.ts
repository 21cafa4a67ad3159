import 'reflect-metadata';
import { describe, expect, it } from '@jest/globals';
import { loadConfiguration } from './configuration.js';
import { parseTrustProxy } from './trust-proxy.js';

describe('parseTrustProxy', () => {
  it.each([
    ['true', true],
    ['false', false],
    ['0', 0],
    ['2', 2],
    ['10.0.0.1', ['10.0.0.1']],
    ['10.0.0.0/8, 192.168.1.10', ['10.0.0.0/8', '192.168.1.10']],
    ['::1,fd00::/8', ['::1', 'fd00::/8']],
    ['loopback,uniquelocal', ['loopback', 'uniquelocal']],
  ])('reads %j', (value, expected) => {
    expect(parseTrustProxy(value)).toEqual(expected);
  });

  it.each(['yes', '101', '-1', '10.0.0.256', '10.0.0.0/33', '::1/129', '10.0.0.1/8/8', 'proxy.example', '10.0.0.1,', ''])(
    'refuses %j',
    (value) => {
      expect(parseTrustProxy(value)).toBeUndefined();
    },
  );
});

describe('loadConfiguration: scale-out settings', () => {
  it('defaults to no trusted proxy, counting in memory, and public metrics without API keys', () => {
    const config = loadConfiguration({});
    expect(config.http.trustProxy).toBe(false);
    expect(config.security.rateLimitRedisUrl).toBeUndefined();
    expect(config.metrics.mode).toBe('public');
  });

  it('puts metrics behind a key by default when the API has keys', () => {
    expect(loadConfiguration({ API_KEYS: 'some-long-key-0001:read' }).metrics.mode).toBe('key');
    expect(loadConfiguration({ API_KEYS: 'some-long-key-0001:read', METRICS: 'public' }).metrics.mode).toBe('public');
    expect(loadConfiguration({ METRICS: 'off' }).metrics.mode).toBe('off');
  });

  it('reads REDIS_URL and TRUST_PROXY', () => {
    const config = loadConfiguration({ REDIS_URL: 'redis://cache:6379/2', TRUST_PROXY: '1' });
    expect(config.security.rateLimitRedisUrl).toBe('redis://cache:6379/2');
    expect(config.http.trustProxy).toBe(1);
    expect(loadConfiguration({ REDIS_URL: '', TRUST_PROXY: '' }).http.trustProxy).toBe(false);
  });

  it.each([
    [{ TRUST_PROXY: 'everyone' }, /TRUST_PROXY must be true, false, a number of proxy hops/],
    [{ REDIS_URL: 'http://cache:6379' }, /REDIS_URL must be a redis:\/\/ or rediss:\/\/ URL/],
    [{ METRICS: 'on' }, /METRICS must be one of off, public, key/],
    [{ METRICS: 'key' }, /METRICS=key needs API_KEYS/],
  ])('stops on %j with one line naming the variable', (env, message) => {
    expect(() => loadConfiguration(env)).toThrow(message);
  });
});

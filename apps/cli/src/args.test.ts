import { describe, expect, it } from 'vitest';
import { Code, QuireError } from '@quire/core';
import {
  parseAttributes,
  parseCount,
  parseDuration,
  parseEndpoint,
  parseEndpoints,
  parseIdentity,
  parseKeyValue,
  parseList,
  parseMetadata,
  parseS3Regions,
  parseScopes,
  parseSize,
  parseVersion,
} from './args.ts';

/** The QuireError `fn` throws (fails the test when it does not). */
function thrown(fn: () => unknown): QuireError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(QuireError);
    return e as QuireError;
  }
  throw new Error('expected a QuireError');
}

describe('key=value parsing', () => {
  it('splits at the first =, keeps the rest of the value', () => {
    expect(parseKeyValue('source=nightly', 'meta')).toEqual(['source', 'nightly']);
    expect(parseKeyValue('q=a=b', 'meta')).toEqual(['q', 'a=b']);
    expect(parseKeyValue('empty=', 'meta')).toEqual(['empty', '']);
  });

  it('refuses a missing = or an empty key, naming the option', () => {
    for (const bad of ['novalue', '=x', ' =x']) {
      const e = thrown(() => parseKeyValue(bad, 'meta'));
      expect(e.code).toBe(Code.INVALID_ARGUMENT);
      expect(e.field).toBe('meta');
    }
  });

  it('builds metadata from repeated --meta and refuses a key given twice', () => {
    expect(parseMetadata(['a=1', 'b=x,y'])).toEqual({ a: '1', b: 'x,y' });
    expect(parseMetadata([])).toEqual({});
    expect(thrown(() => parseMetadata(['a=1', 'a=2'])).message).toMatch(/twice/);
  });

  it('parses attribute lists (scopes, identities)', () => {
    expect(parseAttributes('application=checkout,region=eu-west-1', 'as')).toEqual({ application: 'checkout', region: 'eu-west-1' });
    expect(parseAttributes('cluster=canary,', 'scope')).toEqual({ cluster: 'canary' });
    expect(parseAttributes('', 'scope')).toEqual({});
    expect(thrown(() => parseAttributes('region=', 'scope')).field).toBe('scope');
    expect(thrown(() => parseAttributes('a=1,a=2', 'scope')).message).toMatch(/twice/);
  });

  it('reads "global" as the empty scope', () => {
    expect(parseScopes(['global', 'cluster=canary,region=eu'])).toEqual([{}, { cluster: 'canary', region: 'eu' }]);
  });

  it('requires the application in an identity', () => {
    expect(parseIdentity('application=checkout,cluster=c1')).toEqual({ application: 'checkout', cluster: 'c1' });
    const e = thrown(() => parseIdentity('region=eu-west-1'));
    expect(e.field).toBe('as');
    expect(e.message).toMatch(/application/);
  });
});

describe('other values', () => {
  it('endpoints', () => {
    expect(parseEndpoint('127.0.0.1:7444', 'publish')).toBe('127.0.0.1:7444');
    expect(parseEndpoint('[::1]:7444', 'publish')).toBe('[::1]:7444');
    expect(parseEndpoints('a:1, b:2', 'consume')).toEqual(['a:1', 'b:2']);
    for (const bad of ['localhost', 'a:0', 'a:70000', 'a:b', '']) expect(thrown(() => parseEndpoints(bad, 'consume')).field).toBe('consume');
  });

  it('sizes', () => {
    expect(parseSize('65536', 'x')).toBe(65536);
    expect(parseSize('512KiB', 'x')).toBe(512 * 1024);
    expect(parseSize('1MiB', 'x')).toBe(1024 * 1024);
    expect(parseSize('1.5MB', 'x')).toBe(1_500_000);
    expect(thrown(() => parseSize('1 parsec', 'inline-threshold')).field).toBe('inline-threshold');
  });

  it('durations', () => {
    expect(parseDuration('90s', 'x')).toBe(90_000);
    expect(parseDuration('7d', 'x')).toBe(7 * 86_400_000);
    expect(parseDuration('1d12h', 'x')).toBe(36 * 3_600_000);
    expect(parseDuration('2500', 'x')).toBe(2500);
    for (const bad of ['', '7 days', '3y', 'h']) expect(thrown(() => parseDuration(bad, 'max-age')).field).toBe('max-age');
  });

  it('counts, versions and lists', () => {
    expect(parseCount('20', 'limit')).toBe(20);
    expect(thrown(() => parseCount('0', 'limit')).field).toBe('limit');
    expect(thrown(() => parseCount('-3', 'limit')).field).toBe('limit');
    expect(thrown(() => parseCount('2.5', 'limit')).field).toBe('limit');
    expect(parseVersion('42')).toBe(42);
    expect(parseVersion('v42')).toBe(42);
    expect(thrown(() => parseVersion('latest')).field).toBe('version');
    expect(parseList(['eu-west-1', 'us-east-1,ap-south-1', ' '])).toEqual(['eu-west-1', 'us-east-1', 'ap-south-1']);
  });
});

describe('S3 access (QUIRE_S3_REGIONS format)', () => {
  it('maps regions by name and ignores the bucket', () => {
    expect(
      parseS3Regions('[{"name":"eu-west-1","endpoint":"http://s3:9000","bucket":"quire","accessKeyId":"k","secretAccessKey":"s"},{"name":"us-east-1"}]'),
    ).toEqual({ 'eu-west-1': { endpoint: 'http://s3:9000', accessKeyId: 'k', secretAccessKey: 's' }, 'us-east-1': {} });
  });

  it('names the bad entry', () => {
    expect(thrown(() => parseS3Regions('nope')).field).toBe('s3-regions');
    expect(thrown(() => parseS3Regions('{}')).field).toBe('s3-regions');
    expect(thrown(() => parseS3Regions('[{"endpoint":"http://x"}]')).field).toBe('s3-regions[0].name');
    expect(thrown(() => parseS3Regions('[{"name":"a","region":"b"}]')).field).toBe('s3-regions[0].region');
    expect(thrown(() => parseS3Regions('[{"name":"a"},{"name":"a"}]')).message).toMatch(/twice/);
  });
});

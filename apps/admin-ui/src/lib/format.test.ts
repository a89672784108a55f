import { describe, expect, it } from 'vitest';
import { formatBytes, isTextual, parseScope } from './format.ts';

describe('format helpers', () => {
  it('parses scopes written as attribute=value lists', () => {
    expect(parseScope('')).toEqual({});
    expect(parseScope('global')).toEqual({});
    expect(parseScope('cluster=canary, region = eu-west-1')).toEqual({ cluster: 'canary', region: 'eu-west-1' });
    expect(() => parseScope('cluster')).toThrow(/attribute=value/);
    expect(() => parseScope('cluster=')).toThrow(/attribute=value/);
  });
  it('formats sizes and tells text from binary content types', () => {
    expect(formatBytes(512)).toBe('512 B');
    expect(formatBytes(1536)).toBe('1.5 KiB');
    expect(formatBytes(50 * 1024 * 1024)).toBe('50 MiB');
    expect(isTextual('application/json; charset=utf-8')).toBe(true);
    expect(isTextual('text/csv')).toBe(true);
    expect(isTextual('application/octet-stream')).toBe(false);
  });
});

import { describe, expect, it } from 'vitest';
import { uniqueBucket, uniqueKeyspace, uniqueName } from './index.ts';

const KEYSPACE = /^[a-z][a-z0-9_]{0,47}$/;
const BUCKET = /^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$/;
const prefixes = ['', 'x', 'Topic Versions', '123abc', '__weird--Prefix__', 'ünïcödé', 'a'.repeat(200), '-', 'xn--abc', 'sthree-x'];

describe('unique names', () => {
  it('makes valid keyspace names', () => {
    for (const p of prefixes) expect(uniqueKeyspace(p)).toMatch(KEYSPACE);
    expect(uniqueKeyspace('metadata')).toMatch(/^metadata_[a-z0-9]{13}$/);
  });

  it('makes valid bucket names', () => {
    for (const p of prefixes) {
      const b = uniqueBucket(p);
      expect(b).toMatch(BUCKET);
      expect(b).not.toMatch(/--|^xn-|^sthree-|^\d+\.\d+\.\d+\.\d+$/);
    }
    expect(uniqueBucket('blobs')).toMatch(/^blobs-[a-z0-9]{13}$/);
  });

  it('makes names valid as both', () => {
    for (const p of prefixes) {
      const n = uniqueName(p);
      expect(n).toMatch(KEYSPACE);
      expect(n).toMatch(BUCKET);
    }
  });

  it('does not repeat', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 5000; i++) seen.add(uniqueKeyspace('k'));
    for (let i = 0; i < 5000; i++) seen.add(uniqueBucket('b'));
    expect(seen.size).toBe(10000);
  });
});

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { describeScope, parseScopeKey, scopeKey, scopeMatches, scopeSpecificity } from './scope.ts';

const attr = fc.stringMatching(/^[a-z][a-z0-9_]{0,6}$/);
const value = fc.string({ minLength: 1, maxLength: 8 });
const scopeArb = fc.dictionary(attr, value, { maxKeys: 4 });

describe('scopeKey', () => {
  it('is empty for the global scope and sorted otherwise', () => {
    expect(scopeKey({})).toBe('');
    expect(scopeKey({ region: 'eu', cluster: 'c1' })).toBe('cluster=c1,region=eu');
  });

  it('does not depend on attribute order and round-trips through parseScopeKey', () => {
    fc.assert(
      fc.property(scopeArb, (scope) => {
        const reversed = Object.fromEntries(Object.entries(scope).reverse());
        expect(scopeKey(reversed)).toBe(scopeKey(scope));
        expect(parseScopeKey(scopeKey(scope))).toEqual(scope);
      }),
    );
  });

  it('is injective (different scopes, different keys), even with separators in values', () => {
    expect(scopeKey({ a: 'x,b=y' })).not.toBe(scopeKey({ a: 'x', b: 'y' }));
    fc.assert(
      fc.property(scopeArb, scopeArb, (a, b) => {
        const same = JSON.stringify(Object.entries(a).sort()) === JSON.stringify(Object.entries(b).sort());
        expect(scopeKey(a) === scopeKey(b)).toBe(same);
      }),
    );
  });
});

describe('scopeMatches', () => {
  it('global matches everyone; a constraint must equal the attribute', () => {
    expect(scopeMatches({}, {})).toBe(true);
    expect(scopeMatches({ region: 'eu' }, { region: 'eu', application: 'a' })).toBe(true);
    expect(scopeMatches({ region: 'eu' }, { region: 'us' })).toBe(false);
    expect(scopeMatches({ region: 'eu' }, { application: 'a' })).toBe(false);
  });

  it('a scope matches an identity iff it is a subset of it', () => {
    fc.assert(
      fc.property(scopeArb, scopeArb, (scope, extra) => {
        const identity = { ...extra, ...scope };
        expect(scopeMatches(scope, identity)).toBe(true);
        const k = Object.keys(scope)[0];
        if (k !== undefined) expect(scopeMatches(scope, { ...identity, [k]: `${identity[k]}!` })).toBe(false);
      }),
    );
  });

  it('counts specificity and describes scopes', () => {
    expect(scopeSpecificity({})).toBe(0);
    expect(scopeSpecificity({ a: '1', b: '2' })).toBe(2);
    expect(describeScope({})).toBe('global');
    expect(describeScope({ region: 'eu', cluster: 'c' })).toBe('cluster=c, region=eu');
  });
});

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  ACTIONS,
  ROLES,
  applicationMayConsume,
  authorize,
  bearerToken,
  formatTokenString,
  parseTokenString,
  prefixesCover,
  roleAllows,
  tokenExpired,
  validateTokenInput,
  type Action,
  type Principal,
  type Role,
} from './access.ts';
import { isQuireError } from './errors.ts';

const p = (role: Role, prefixes: string[] = [], application?: string): Principal => ({
  name: `t-${role}`,
  role,
  prefixes,
  ...(application === undefined ? {} : { application }),
});

const topicArb = fc.stringMatching(/^[a-z]{1,4}(\.[a-z]{1,4}){0,2}$/);
const roleArb = fc.constantFrom(...ROLES);
const actionArb = fc.constantFrom(...ACTIONS);
const prefixesArb = fc.array(fc.stringMatching(/^[a-z]{0,3}\.?$/), { maxLength: 3 });

describe('authorize: the role table', () => {
  // What each role may do on a topic its prefixes cover: exactly this, nothing more.
  const expected: Record<Role, Action[]> = {
    admin: ['read', 'publish', 'operate', 'consume', 'manage'],
    operator: ['read', 'operate'],
    publisher: ['read', 'publish'],
    consumer: ['read', 'consume'],
    viewer: ['read'],
  };
  for (const role of ROLES) {
    it(`${role} may ${expected[role].join(', ')} and nothing else`, () => {
      const allowed = ACTIONS.filter((action) => authorize(p(role, role === 'admin' ? [] : ['pay.']), { action, topic: 'pay.config' }).allowed);
      expect(allowed).toEqual(expected[role]);
    });
  }

  it('refuses a request without a principal as UNAUTHENTICATED, whatever the action', () => {
    fc.assert(
      fc.property(actionArb, fc.option(topicArb, { nil: undefined }), (action, topic) => {
        const d = authorize(undefined, { action, ...(topic === undefined ? {} : { topic }) });
        expect(d).toMatchObject({ allowed: false, code: 'UNAUTHENTICATED' });
      }),
    );
  });
});

describe('authorize: prefixes', () => {
  it('a token limited to prefixes acts only on topics under them', () => {
    fc.assert(
      fc.property(roleArb, actionArb, prefixesArb, topicArb, (role, action, prefixes, topic) => {
        const principal = p(role, role === 'admin' ? [] : prefixes);
        const d = authorize(principal, { action, topic });
        const covered = role === 'admin' || prefixes.length === 0 || prefixes.some((x) => topic.startsWith(x));
        expect(d.allowed).toBe(roleAllows(role, action) && covered);
        if (!d.allowed) expect(d.code).toBe('PERMISSION_DENIED');
      }),
    );
  });

  it('never allows more than the role grants (monotone in the role table)', () => {
    fc.assert(
      fc.property(roleArb, actionArb, prefixesArb, fc.option(topicArb, { nil: undefined }), (role, action, prefixes, topic) => {
        const d = authorize(p(role, prefixes), { action, ...(topic === undefined ? {} : { topic }) });
        if (d.allowed) expect(roleAllows(role, action)).toBe(true);
      }),
    );
  });

  it('a topic-less request is for admins, or a read by a token covering every topic', () => {
    expect(authorize(p('viewer'), { action: 'read' }).allowed).toBe(true);
    expect(authorize(p('viewer', ['pay.']), { action: 'read' }).allowed).toBe(false);
    expect(authorize(p('operator'), { action: 'manage' }).allowed).toBe(false);
    expect(authorize(p('admin'), { action: 'manage' }).allowed).toBe(true);
    expect(authorize(p('publisher', ['']), { action: 'publish' }).allowed).toBe(false);
  });

  it('prefix "" covers every topic; no prefixes too', () => {
    fc.assert(fc.property(topicArb, (t) => prefixesCover([''], t) && prefixesCover([], t)));
    expect(prefixesCover(['pay.'], 'payments')).toBe(false);
    expect(prefixesCover(['pay'], 'payments')).toBe(true);
  });
});

describe('authorize: applications', () => {
  it('a topic restricted to applications refuses the others, for every role that may consume', () => {
    const req = { action: 'consume' as const, topic: 'pay.config', allowedApplications: ['checkout'] };
    expect(authorize(p('consumer', ['']), { ...req, application: 'checkout' }).allowed).toBe(true);
    expect(authorize(p('consumer', ['']), { ...req, application: 'search' })).toMatchObject({ allowed: false, code: 'PERMISSION_DENIED' });
    expect(authorize(p('admin'), { ...req, application: 'search' }).allowed).toBe(false);
    expect(authorize(p('consumer', ['']), { action: 'consume', topic: 'pay.config', application: 'search' }).allowed).toBe(true);
  });

  it('a token bound to an application consumes only as that application', () => {
    const bound = p('consumer', [''], 'checkout');
    expect(authorize(bound, { action: 'consume', topic: 'a', application: 'checkout' }).allowed).toBe(true);
    expect(authorize(bound, { action: 'consume', topic: 'a', application: 'search' }).allowed).toBe(false);
    // Without a claimed application, the bound one is checked against the topic's list.
    expect(authorize(bound, { action: 'consume', topic: 'a', allowedApplications: ['checkout'] }).allowed).toBe(true);
    expect(authorize(bound, { action: 'consume', topic: 'a', allowedApplications: ['search'] }).allowed).toBe(false);
  });

  it('applicationMayConsume: no list (or an empty one) lets everyone in', () => {
    fc.assert(
      fc.property(fc.string(), fc.array(fc.string(), { maxLength: 4 }), (app, list) => {
        expect(applicationMayConsume(undefined, app)).toBe(true);
        expect(applicationMayConsume([], app)).toBe(true);
        expect(applicationMayConsume(list, app)).toBe(list.length === 0 || list.includes(app));
      }),
    );
  });
});

describe('tokens', () => {
  it('token strings round-trip and anything else is not a token', () => {
    const id = '0123456789abcdef';
    const secret = 'A'.repeat(42) + '_';
    expect(parseTokenString(formatTokenString(id, secret))).toEqual({ id, secret });
    expect(parseTokenString('quire_0123_abc')).toBeUndefined();
    expect(parseTokenString('')).toBeUndefined();
  });

  it('bearerToken reads the Authorization header', () => {
    expect(bearerToken('Bearer abc')).toBe('abc');
    expect(bearerToken('bearer  abc ')).toBe('abc');
    expect(bearerToken('Basic abc')).toBeUndefined();
    expect(bearerToken(undefined)).toBeUndefined();
  });

  it('validateTokenInput names the bad field', () => {
    const field = (input: Parameters<typeof validateTokenInput>[0]): string | undefined => {
      try {
        validateTokenInput(input);
        return undefined;
      } catch (err) {
        return isQuireError(err, 'INVALID_ARGUMENT') ? err.field : 'not INVALID_ARGUMENT';
      }
    };
    expect(field({ name: '', role: 'admin' })).toBe('name');
    expect(field({ name: 'x', role: 'root' })).toBe('role');
    expect(field({ name: 'x', role: 'publisher' })).toBe('prefixes');
    expect(field({ name: 'x', role: 'admin', prefixes: ['a'] })).toBe('prefixes');
    expect(field({ name: 'x', role: 'consumer', prefixes: [3] })).toBe('prefixes[0]');
    expect(field({ name: 'x', role: 'viewer', application: 'a' })).toBe('application');
    expect(validateTokenInput({ name: ' ci ', role: 'consumer', prefixes: ['pay.'], application: 'checkout' })).toEqual({
      name: 'ci',
      role: 'consumer',
      prefixes: ['pay.'],
      application: 'checkout',
    });
  });

  it('a token expiry: a time in ms, in the future when created; 0 or absent is never; expired from that instant on', () => {
    const now = 1_800_000_000_000;
    const field = (expiresAt: unknown, at?: number): string | undefined => {
      try {
        validateTokenInput({ name: 'x', role: 'viewer', expiresAt }, at);
        return undefined;
      } catch (err) {
        return isQuireError(err, 'INVALID_ARGUMENT') ? err.field : 'not INVALID_ARGUMENT';
      }
    };
    for (const bad of ['tomorrow', -1, 1.5, Number.MAX_VALUE]) expect(field(bad), String(bad)).toBe('expiresAt');
    expect(field(now, now)).toBe('expiresAt');
    expect(field(now - 1, now)).toBe('expiresAt');
    // A stored record read back (no `now`) keeps a past expiry.
    expect(validateTokenInput({ name: 'x', role: 'viewer', expiresAt: now - 1 }).expiresAt).toBe(now - 1);
    expect(validateTokenInput({ name: 'x', role: 'viewer', expiresAt: now + 1 }, now).expiresAt).toBe(now + 1);
    expect(validateTokenInput({ name: 'x', role: 'viewer', expiresAt: 0 }, now)).not.toHaveProperty('expiresAt');
    expect(validateTokenInput({ name: 'x', role: 'viewer' }, now)).not.toHaveProperty('expiresAt');
    expect(tokenExpired({}, now)).toBe(false);
    expect(tokenExpired({ expiresAt: now + 1 }, now)).toBe(false);
    expect(tokenExpired({ expiresAt: now }, now)).toBe(true);
  });
});

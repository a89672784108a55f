import { describe, expect, it } from 'vitest';
import { Code, QuireError } from '@quire/core';
import { WaiterRegistry, type Waiter } from './waiters.ts';
import { parseIdentity, viewOf } from './service.ts';

function recorder(): Waiter & { calls: string[] } {
  const calls: string[] = [];
  return { calls, notify: (r) => calls.push(r) };
}

describe('WaiterRegistry', () => {
  it('wakes only the waiters of the changed topic, once each, in one pass', () => {
    const reg = new WaiterRegistry();
    const a = recorder();
    const b = recorder();
    const c = recorder();
    reg.add(['t1', 't2'], a);
    reg.add(['t2'], b);
    reg.add(['t3'], c);
    expect(reg.wake('t2')).toBe(2);
    expect(a.calls).toEqual(['change']);
    expect(b.calls).toEqual(['change']);
    expect(c.calls).toEqual([]);
    expect(reg.wake('nobody')).toBe(0);
  });

  it('removes a waiter from every topic it watches; removing twice is harmless', () => {
    const reg = new WaiterRegistry();
    const a = recorder();
    const remove = reg.add(['t1', 't2', 't1'], a);
    expect(reg.size).toBe(1);
    expect(reg.watching('t1')).toBe(1);
    remove();
    remove();
    expect(reg.size).toBe(0);
    expect(reg.watching('t1')).toBe(0);
    expect(reg.wake('t1')).toBe(0);
  });

  it('a waiter that removes itself while being notified does not disturb the pass', () => {
    const reg = new WaiterRegistry();
    const seen: number[] = [];
    const removers: Array<() => void> = [];
    for (let i = 0; i < 1000; i++) {
      removers.push(reg.add(['hot'], { notify: () => (seen.push(i), removers[i]?.()) }));
    }
    expect(reg.wake('hot')).toBe(1000);
    expect(seen).toHaveLength(1000);
    expect(reg.size).toBe(0);
  });

  it('drainAll notifies every waiter once, even one watching several topics', () => {
    const reg = new WaiterRegistry();
    const a = recorder();
    const b = recorder();
    reg.add(['t1', 't2'], a);
    reg.add(['t3'], b);
    expect(reg.drainAll()).toBe(2);
    expect(a.calls).toEqual(['drain']);
    expect(b.calls).toEqual(['drain']);
  });
});

describe('parseIdentity', () => {
  it('merges the named fields and free attributes', () => {
    expect(parseIdentity({ region: 'eu', instance: 'i-1', cluster: '', attributes: { shard: '7' } }, true)).toEqual({
      region: 'eu',
      instance: 'i-1',
      shard: '7',
    });
  });
  it('requires identity.instance for polls and names the field', () => {
    const err = (() => {
      try {
        parseIdentity({ region: 'eu' }, true);
      } catch (e) {
        return e as QuireError;
      }
    })();
    expect(err).toBeInstanceOf(QuireError);
    expect({ code: err?.code, field: err?.field }).toEqual({ code: Code.INVALID_ARGUMENT, field: 'identity.instance' });
  });
  it('refuses an attribute that contradicts a named field', () => {
    expect(() => parseIdentity({ instance: 'i', region: 'eu', attributes: { region: 'us' } }, true)).toThrow(/identity\.attributes\.region/);
  });
});

describe('viewOf', () => {
  it("orders S3 locations with the consumer's region first and lists active scopes", () => {
    const v = viewOf(
      {
        topic: 't',
        version: 2,
        publishId: 'p',
        createdAt: 1,
        publisher: 'me',
        metadata: {},
        contentType: 'application/json',
        size: 1,
        sha256: '0'.repeat(64),
        pointer: {
          kind: 's3',
          locations: [
            { region: 'a', bucket: 'ba', key: 'k' },
            { region: 'b', bucket: 'bb', key: 'k' },
            { region: 'c', bucket: 'bc', key: 'k' },
          ],
        },
      },
      [
        { topic: 't', version: 2, scope: {}, scopeKey: '', releasedAt: 1, releasedBy: 'me' },
        { topic: 't', version: 2, scope: { cluster: 'x' }, scopeKey: 'cluster=x', releasedAt: 1, releasedBy: 'me', withdrawnAt: 2 },
        { topic: 't', version: 1, scope: { cluster: 'y' }, scopeKey: 'cluster=y', releasedAt: 1, releasedBy: 'me' },
      ],
      'b',
    );
    expect(v.pointer.kind === 's3' && v.pointer.locations.map((l) => l.region)).toEqual(['b', 'a', 'c']);
    expect(v.scopes).toEqual([{}]);
  });
});

import { describe, expect, it } from 'vitest';
import { Code, QuireError } from '@quire/core';
import { Deadlines, WaiterRegistry, type Waiter } from './waiters.ts';
import { parseIdentity, viewOf } from './service.ts';

function recorder(...topics: string[]): Waiter & { calls: string[] } {
  const calls: string[] = [];
  return { topics, calls, notify: (r) => calls.push(r) };
}

describe('WaiterRegistry', () => {
  it('wakes only the waiters of the changed topic, once each, in one pass', () => {
    const reg = new WaiterRegistry();
    const a = recorder('t1', 't2');
    const b = recorder('t2');
    const c = recorder('t3');
    for (const w of [a, b, c]) reg.add(w);
    expect(reg.wake('t2')).toBe(2);
    expect(a.calls).toEqual(['change']);
    expect(b.calls).toEqual(['change']);
    expect(c.calls).toEqual([]);
    expect(reg.wake('nobody')).toBe(0);
  });

  it('removes a waiter from every topic it watches; adding or removing twice is harmless', () => {
    const reg = new WaiterRegistry();
    const a = recorder('t1', 't2', 't1');
    reg.add(a);
    reg.add(a);
    expect(reg.size).toBe(1);
    expect(reg.watching('t1')).toBe(1);
    reg.remove(a);
    reg.remove(a);
    expect(reg.size).toBe(0);
    expect(reg.watching('t1')).toBe(0);
    expect(reg.wake('t1')).toBe(0);
  });

  it('a waiter that removes itself while being notified does not disturb the pass', () => {
    const reg = new WaiterRegistry();
    const seen: number[] = [];
    for (let i = 0; i < 1000; i++) {
      const w: Waiter = { topics: ['hot'], notify: () => (seen.push(i), reg.remove(w)) };
      reg.add(w);
    }
    expect(reg.wake('hot')).toBe(1000);
    expect(seen).toHaveLength(1000);
    expect(reg.size).toBe(0);
  });

  it('drainAll notifies every waiter once, even one watching several topics', () => {
    const reg = new WaiterRegistry();
    const a = recorder('t1', 't2');
    const b = recorder('t3');
    reg.add(a);
    reg.add(b);
    expect(reg.drainAll()).toBe(2);
    expect(a.calls).toEqual(['drain']);
    expect(b.calls).toEqual(['drain']);
  });
});

describe('Deadlines', () => {
  function item(log: string[], name: string) {
    return { name, expire: () => log.push(name) };
  }

  it('expires each item once, never before its deadline, in deadline order; removed ones never', () => {
    let now = 1000;
    const d = new Deadlines<{ name: string; expire(): void }>(10, () => now);
    const log: string[] = [];
    const [a, b, c, e] = [item(log, 'a'), item(log, 'b'), item(log, 'c'), item(log, 'e')];
    d.add(b, 1055);
    d.add(a, 1021);
    d.add(c, 1100);
    d.add(e, 1030);
    d.remove(e);
    expect(d.size).toBe(3);
    now = 1025;
    d.tick();
    expect(log).toEqual([]);
    now = 1030;
    d.tick();
    expect(log).toEqual(['a']);
    now = 1099;
    d.tick();
    expect(log).toEqual(['a', 'b']);
    now = 1100;
    d.tick();
    d.tick();
    expect(log).toEqual(['a', 'b', 'c']);
    expect(d.size).toBe(0);
  });

  it('a new deadline replaces the earlier one; an item added after the timer stopped is still expired', () => {
    let now = 0;
    const d = new Deadlines<{ name: string; expire(): void }>(10, () => now);
    const log: string[] = [];
    const a = item(log, 'a');
    d.add(a, 20);
    d.add(a, 200);
    now = 100;
    d.tick();
    expect(log).toEqual([]);
    now = 200;
    d.tick();
    expect(log).toEqual(['a']);
    now = 500;
    d.add(a, 510);
    now = 510;
    d.tick();
    expect(log).toEqual(['a', 'a']);
    expect(d.size).toBe(0);
  });

  it('runs on a real timer', async () => {
    const d = new Deadlines<{ expire(): void }>(5);
    const at = Date.now() + 30;
    const fired = await new Promise<number>((resolve) => d.add({ expire: () => resolve(Date.now()) }, at));
    expect(fired).toBeGreaterThanOrEqual(at);
    expect(d.size).toBe(0);
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

import { describe, expect, it } from 'vitest';
import { Code, QuireError } from '@quire/core';
import { AppLimits } from './limiter.ts';

/** A promise with its resolve function. */
function gate(): { promise: Promise<void>; open: () => void } {
  let open = () => {};
  const promise = new Promise<void>((r) => (open = r));
  return { promise, open };
}
const tick = () => new Promise((r) => setImmediate(r));

async function code(p: Promise<unknown>): Promise<Code | 'ok'> {
  try {
    await p;
    return 'ok';
  } catch (err) {
    return err instanceof QuireError ? err.code : Code.INTERNAL;
  }
}

describe('AppLimits', () => {
  it('bounds one application\'s evaluations and queue; another application is not affected', async () => {
    const limits = new AppLimits({ concurrency: 2, queue: 1 });
    const g = gate();
    const running: Promise<unknown>[] = [];
    let started = 0;
    const work = () => {
      started++;
      return g.promise;
    };
    for (let i = 0; i < 3; i++) running.push(limits.run('noisy', work));
    await tick();
    expect(started).toBe(2);
    expect(limits.load('noisy')).toEqual({ active: 2, pending: 1, held: 0 });
    // The queue is full: refused at once, naming the field and the application.
    const refused = limits.run('noisy', work);
    expect(await code(refused)).toBe(Code.RESOURCE_EXHAUSTED);
    await refused.catch((err: QuireError) => {
      expect(err.field).toBe('identity.application');
      expect(err.message).toContain('"noisy"');
    });
    expect(limits.refused.get('noisy')).toBe(1);
    // Another application runs at once.
    expect(await limits.run('quiet', async () => 'done')).toBe('done');
    g.open();
    await Promise.all(running);
    expect(started).toBe(3);
    expect(limits.load('noisy')).toEqual({ active: 0, pending: 0, held: 0 });
  });

  it('never refuses an admitted (held) evaluation: it waits its turn behind a full queue', async () => {
    const limits = new AppLimits({ concurrency: 1, queue: 1 });
    const g = gate();
    const order: string[] = [];
    const first = limits.run('fleet', async () => {
      await g.promise;
      order.push('first');
    });
    const queued = limits.run('fleet', async () => {
      order.push('queued');
    });
    await tick();
    // The queue is full: a fresh poll is refused, a woken held poll is queued.
    expect(await code(limits.run('fleet', async () => {}))).toBe(Code.RESOURCE_EXHAUSTED);
    const woken = Array.from({ length: 5 }, (_, i) =>
      limits.run('fleet', async () => {
        order.push(`held-${i}`);
      }, true),
    );
    expect(limits.load('fleet')).toEqual({ active: 1, pending: 6, held: 0 });
    g.open();
    await Promise.all([first, queued, ...woken]);
    expect(order).toEqual(['first', 'queued', 'held-0', 'held-1', 'held-2', 'held-3', 'held-4']);
  });

  it('bounds the long-polls one application holds', () => {
    const limits = new AppLimits({ maxHeld: 2 });
    const a = limits.hold('a');
    limits.hold('a');
    expect(() => limits.hold('a')).toThrow(QuireError);
    expect(() => limits.hold(undefined)).not.toThrow();
    a();
    a(); // idempotent
    expect(limits.load('a').held).toBe(1);
    expect(() => limits.hold('a')).not.toThrow();
  });
});

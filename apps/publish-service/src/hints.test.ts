import { describe, expect, it } from 'vitest';
import type { MetadataStore } from '@quire/core';
import { CHANGE_WRITES, ChangeHints, changedTopic, hintingStore } from './hints.ts';

describe('change hints (publish side)', () => {
  it('finds the topic of every change-recording store write, and of nothing else', () => {
    expect(changedTopic('createTopic', [{ name: 'a.b' }])).toBe('a.b');
    expect(changedTopic('updateTopic', [{ name: 'a.b' }, 3])).toBe('a.b');
    expect(changedTopic('commitVersion', [{ topic: 'a.b' }])).toBe('a.b');
    expect(changedTopic('markVersionDeleted', ['a.b', 4, 0])).toBe('a.b');
    expect(changedTopic('putRelease', [{ topic: 'a.b', version: 1 }])).toBe('a.b');
    expect(changedTopic('withdrawRelease', ['a.b', 1, '*', 0])).toBe('a.b');
    expect(changedTopic('putPin', [{ topic: 'a.b' }])).toBe('a.b');
    expect(changedTopic('removePin', ['a.b', '*', 0, 'me'])).toBe('a.b');
    expect(changedTopic('getTopic', ['a.b'])).toBeUndefined();
    expect(changedTopic('appendAudit', [{ topic: 'a.b' }])).toBeUndefined();
    expect(changedTopic('putRelease', [{}])).toBeUndefined();
    expect(Object.keys(CHANGE_WRITES).sort()).toEqual(['commitVersion', 'createTopic', 'markVersionDeleted', 'putPin', 'putRelease', 'removePin', 'updateTopic', 'withdrawRelease']);
  });

  it('sends each hint to every watcher, stops on unwatch, and ends every stream on close', () => {
    const hints = new ChangeHints('r1', { now: () => 42 });
    const a: string[] = [];
    const b: string[] = [];
    let ended = 0;
    const offA = hints.watch((h) => a.push(`${h.topic}@${h.at}`), () => ended++);
    hints.watch((h) => b.push(h.topic), () => ended++);
    hints.notify('t1');
    offA();
    hints.notify('t2');
    expect(a).toEqual(['t1@42']);
    expect(b).toEqual(['t1', 't2']);
    expect(hints.sent).toBe(3);
    expect(hints.watchers).toBe(1);
    hints.close();
    expect(ended).toBe(1);
    hints.notify('t3');
    expect(b).toEqual(['t1', 't2']);
    expect(hints.watchers).toBe(0);
  });

  it('hints a write once it succeeded, never a failed write or a read', async () => {
    const hints = new ChangeHints('r1');
    const seen: string[] = [];
    hints.watch((h) => seen.push(h.topic), () => {});
    // Just the three methods this test calls (the wrapper looks methods up by name).
    const base = {
      async putRelease(r: { topic: string }) {
        if (r.topic === 'bad') throw new Error('refused');
      },
      async getTopic() {
        return undefined;
      },
    } as unknown as MetadataStore;
    const store = hintingStore(base, hints);
    await store.putRelease({ topic: 'ok' } as never);
    await expect(store.putRelease({ topic: 'bad' } as never)).rejects.toThrow('refused');
    await store.getTopic('ok');
    expect(seen).toEqual(['ok']);
  });
});

// Held long-polls woken by one change: the service re-evaluates them in slices (one per
// event-loop turn: UNPARK_FIRST_SLICE first, then growing up to UNPARK_SLICE) so the first
// answers go out before the whole pass.
// Every held poll is still answered, with the new version; one cancelled meanwhile is not
// disturbed; through `pollInto` each poll gets its callback once, whatever another callback
// does. In-memory stand-ins for the cache and the consistency checker.
import { describe, expect, it } from 'vitest';
import { PollCancel, UNPARK_FIRST_SLICE, UNPARK_SLICE, nextUnparkSlice, type PollResult } from './service.ts';
import { memoryConsumeService, oneVersionState } from './testing.ts';

describe('held polls woken by a change', () => {
  it('answers every held poll in slices: the first answers are out while later ones are still held', async () => {
    const states = new Map([['t.hot', oneVersionState('t.hot', 1)]]);
    const { service, change } = memoryConsumeService(states);
    try {
      const n = 2 * UNPARK_SLICE + 7;
      const heldWhenAnswered: number[] = [];
      const cancel = new PollCancel();
      const polls = Array.from({ length: n }, (_, i) =>
        service
          .poll({ identity: { instance: `i-${i}` }, subscriptions: [{ topic: 't.hot', knownVersion: 1 }], waitMs: 60_000 }, i === 3 ? cancel : undefined)
          .then((r: PollResult) => {
            heldWhenAnswered.push(service.heldPolls);
            return r;
          }),
      );
      expect(service.heldPolls).toBe(n);
      cancel.abort();
      states.set('t.hot', oneVersionState('t.hot', 2));
      change('t.hot');
      const answers = await Promise.all(polls);
      expect(service.heldPolls).toBe(0);
      // The cancelled one: nothing new; every other: version 2 with its bytes.
      expect(answers[3]?.updates).toEqual([]);
      const woken = answers.filter((_, i) => i !== 3);
      expect(woken.every((r) => r.updates.length === 1 && r.updates[0]?.version.version === 2 && new TextDecoder().decode(r.updates[0].inlineData) === 'hello')).toBe(true);
      // Answers of the first slice went out while the next slices were still held.
      expect(heldWhenAnswered.filter((h) => h >= n - 1 - UNPARK_FIRST_SLICE).length).toBeGreaterThanOrEqual(UNPARK_FIRST_SLICE - 1);
      expect(Math.min(...heldWhenAnswered)).toBe(0);
      // Slice by slice: the answers of each were read while the polls of the later ones were
      // still held (the cancelled poll was answered before the change, one held poll fewer).
      const expected: number[] = [n - 1];
      for (let left = n - 1, size = UNPARK_FIRST_SLICE; left > 0; size = nextUnparkSlice(size)) {
        const take = Math.min(left, size);
        left -= take;
        for (let k = 0; k < take; k++) expected.push(left);
      }
      expect(heldWhenAnswered).toEqual(expected);
    } finally {
      await service.close();
    }
  });
  it('pollInto: every held poll answered once through its callback; a callback that throws does not stop the others', async () => {
    const states = new Map([['t.hot', oneVersionState('t.hot', 1)]]);
    const errors: string[] = [];
    const { service, change } = memoryConsumeService(states, 'hello', (err, what) => errors.push(`${what}: ${(err as Error).message}`));
    try {
      const got: Array<[number, number | undefined]> = [];
      const done = (i: number, r: PollResult | undefined): void => {
        got.push([i, r?.updates[0]?.version.version]);
        if (i === 0) throw new Error('boom');
      };
      for (let i = 0; i < 3; i++) service.pollInto({ identity: { instance: `i-${i}` }, subscriptions: [{ topic: 't.hot', knownVersion: 1 }], waitMs: 60_000 }, undefined, done, i);
      expect(service.heldPolls).toBe(3);
      // Bad input: the error, through the callback.
      let refused: unknown;
      service.pollInto({ identity: { instance: 'x' }, subscriptions: [] }, undefined, (_: undefined, r, err) => (refused = r ?? err), undefined);
      expect(refused).toMatchObject({ message: expect.stringContaining('subscriptions') as unknown });
      states.set('t.hot', oneVersionState('t.hot', 2));
      change('t.hot');
      while (got.length < 3) await new Promise((r) => setTimeout(r, 5));
      expect(got.sort((a, b) => a[0] - b[0])).toEqual([
        [0, 2],
        [1, 2],
        [2, 2],
      ]);
      expect(errors).toEqual(['answering a held poll: boom']);
      expect(service.heldPolls).toBe(0);
    } finally {
      await service.close();
    }
  });

  it('grows the slices from UNPARK_FIRST_SLICE by doubling, up to UNPARK_SLICE', () => {
    const sizes = [UNPARK_FIRST_SLICE];
    while (sizes.length < 8) sizes.push(nextUnparkSlice(sizes.at(-1) as number));
    expect(sizes[0]).toBeLessThan(UNPARK_SLICE);
    expect(sizes.at(-1)).toBe(UNPARK_SLICE);
    for (let i = 1; i < sizes.length; i++) expect(sizes[i]).toBe(Math.min(UNPARK_SLICE, 2 * (sizes[i - 1] as number)));
  });
});

import { describe, expect, it } from 'vitest';
import { SharedAnswers } from './answers.ts';

const tick = () => new Promise((r) => setImmediate(r));

describe('SharedAnswers', () => {
  it('computes once per (state, key) and hands the same object to everyone asking; another state or key is another answer', async () => {
    const answers = new SharedAnswers<object, { n: number }>({ missMs: 1000, now: () => 0 });
    const state = {};
    let runs = 0;
    const compute = async () => ({ n: ++runs });
    const first = answers.get(state, 'v2', compute);
    const second = answers.get(state, 'v2', compute);
    expect(first).toBeInstanceOf(Promise);
    expect(second).toBe(first);
    const value = await first;
    expect(answers.peek(state, 'v2')).toEqual({ value });
    expect(answers.get(state, 'v2', compute)).toEqual({ value });
    expect(runs).toBe(1);
    // The state changed (a new object): a new answer.
    const next = {};
    expect(answers.peek(next, 'v2')).toBeUndefined();
    const other = await answers.get(next, 'v2', compute);
    expect(other).not.toBe(value);
    expect(await answers.get(state, 'v3', compute)).toEqual({ n: 3 });
  });

  it('remembers a miss for missMs only, and forgets misses on demand', async () => {
    let now = 0;
    const answers = new SharedAnswers<object, string>({ missMs: 100, now: () => now });
    const state = {};
    let result: string | undefined;
    let runs = 0;
    const compute = async () => {
      runs++;
      return result;
    };
    expect(await answers.get(state, 'k', compute)).toBeUndefined();
    expect(answers.peek(state, 'k')).toEqual({ miss: true, at: 0 });
    now = 99;
    expect(answers.get(state, 'k', compute)).toEqual({ miss: true, at: 0 });
    now = 100;
    expect(answers.peek(state, 'k')).toBeUndefined();
    result = 'whole';
    expect(await answers.get(state, 'k', compute)).toBe('whole');
    expect(runs).toBe(2);

    result = undefined;
    expect(await answers.get(state, 'other', compute)).toBeUndefined();
    answers.forgetMisses(state);
    expect(answers.peek(state, 'other')).toBeUndefined();
    expect(answers.peek(state, 'k')).toEqual({ value: 'whole' });
  });

  it('a failed computation is a miss; a value not retained is shared only while in flight', async () => {
    const answers = new SharedAnswers<object, string>({ missMs: 1000, now: () => 0, retain: (v) => v.length < 4 });
    const state = {};
    expect(await answers.get(state, 'fails', () => Promise.reject(new Error('store down')))).toBeUndefined();
    expect(answers.peek(state, 'fails')).toEqual({ miss: true, at: 0 });
    const big = answers.get(state, 'big', async () => 'large');
    expect(answers.peek(state, 'big')).toBe(big);
    expect(await big).toBe('large');
    await tick();
    expect(answers.peek(state, 'big')).toBeUndefined();
  });
});

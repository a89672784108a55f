import { describe, expect, it } from 'vitest';
import { canonicalJson, diffTexts } from './diff.ts';

describe('diffTexts', () => {
  it('marks added and removed lines with both sides line numbers', () => {
    const r = diffTexts('a\nb\nc\n', 'a\nB\nc\nd\n', { asJson: false });
    expect(r.added).toBe(2);
    expect(r.removed).toBe(1);
    expect(r.rows).toEqual([
      { kind: 'same', text: 'a', oldLine: 1, newLine: 1 },
      { kind: 'del', text: 'b', oldLine: 2 },
      { kind: 'add', text: 'B', newLine: 2 },
      { kind: 'same', text: 'c', oldLine: 3, newLine: 3 },
      { kind: 'add', text: 'd', newLine: 4 },
    ]);
  });

  it('compares JSON in canonical form: key order and formatting are not changes', () => {
    const r = diffTexts('{"b":1,"a":[1,2]}', '{\n  "a": [1, 2],\n  "b": 1\n}');
    expect(r.json).toBe(true);
    expect(r.added + r.removed).toBe(0);
    const changed = diffTexts('{"a":1,"b":2}', '{"b":3,"a":1}');
    expect(changed.rows.filter((x) => x.kind === 'del')).toEqual([{ kind: 'del', text: '  "b": 2', oldLine: 3 }]);
    expect(changed.rows.filter((x) => x.kind === 'add')).toEqual([{ kind: 'add', text: '  "b": 3', newLine: 3 }]);
  });

  it('folds long unchanged runs, keeping context around each change', () => {
    const before = Array.from({ length: 40 }, (_, i) => `line ${i + 1}`).join('\n');
    const after = before.replace('line 20', 'line twenty');
    const r = diffTexts(before, after, { context: 2 });
    expect(r.rows[0]).toEqual({ kind: 'skip', count: 17 });
    expect(r.rows.at(-1)).toEqual({ kind: 'skip', count: 18 });
    expect(r.rows.filter((x) => x.kind === 'same')).toHaveLength(4);
  });

  it('leaves text that is not JSON as it is', () => {
    expect(canonicalJson('hello')).toBeUndefined();
    expect(canonicalJson('{"a":')).toBeUndefined();
    expect(canonicalJson('[2,1]')).toBe('[\n  2,\n  1\n]\n');
    expect(diffTexts('x', 'x').rows).toEqual([{ kind: 'same', text: 'x', oldLine: 1, newLine: 1 }]);
  });
});

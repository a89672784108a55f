import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { readVerified, streamVerified, type PayloadSink } from './download.ts';

async function* chunks(...parts: string[]): AsyncIterable<Uint8Array> {
  for (const p of parts) yield Buffer.from(p);
}
const v = (data: string, sha = createHash('sha256').update(data).digest('hex')) => ({ topic: 't', version: 3, size: Buffer.byteLength(data), sha256: sha.toUpperCase() });

describe('readVerified (S3 body → one verified buffer)', () => {
  it('assembles the chunks into exactly the recorded bytes', async () => {
    const bytes = await readVerified(chunks('hel', 'lo ', 'world'), v('hello world'));
    expect(Buffer.from(bytes).toString()).toBe('hello world');
    expect(bytes.byteLength).toBe(11);
  });

  it('refuses a body shorter or longer than recorded, naming the field', async () => {
    await expect(readVerified(chunks('hello'), v('hello world'))).rejects.toMatchObject({ field: 'size', message: 't version 3: got 5 bytes, expected 11' });
    await expect(readVerified(chunks('hello world!!'), v('hello world'))).rejects.toMatchObject({ field: 'size', message: 't version 3: got 13 bytes, expected 11' });
  });

  it('refuses bytes whose SHA-256 differs', async () => {
    await expect(readVerified(chunks('hello worle'), v('hello world'))).rejects.toMatchObject({ field: 'sha256' });
  });
});

describe('streamVerified (S3 body → a sink, verified before finish)', () => {
  const sink = () => {
    const log: string[] = [];
    const s: PayloadSink<string> = {
      write: (c) => void log.push(Buffer.from(c).toString()),
      finish: async () => log.join(''),
      abort: async () => void log.push('aborted'),
    };
    return { s, log };
  };

  it('hands the chunks over in order and finishes only after the check', async () => {
    const { s } = sink();
    const seen: number[] = [];
    expect(await streamVerified(chunks('hel', 'lo ', 'world'), v('hello world'), s, (n) => seen.push(n))).toBe('hello world');
    expect(seen).toEqual([3, 6, 11]);
  });

  it('aborts the sink on a wrong size or SHA-256 and never finishes', async () => {
    const a = sink();
    await expect(streamVerified(chunks('hello worle'), v('hello world'), a.s)).rejects.toMatchObject({ code: 'DATA_LOSS', field: 'sha256' });
    expect(a.log).toEqual(['hello worle', 'aborted']);
    const b = sink();
    await expect(streamVerified(chunks('hello', ' world', '!'), v('hello world'), b.s)).rejects.toMatchObject({ code: 'DATA_LOSS', field: 'size' });
    expect(b.log).toEqual(['hello', ' world', 'aborted']); // the byte too many is never written
  });
});


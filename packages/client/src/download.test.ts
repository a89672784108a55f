import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { readVerified } from './download.ts';

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

import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import { isQuireError } from '@quire/core';
import { addKeyringKey, createLocalKeyring, decryptPayload, decryptingTransform, encryptPayload, encryptStream } from './encryption.ts';

const dir = mkdtempSync(join(tmpdir(), 'quire-keyring-'));
const path = join(dir, 'keyring.json');
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const enc = { algorithm: 'aes-256-gcm' as const, keyId: 'k1' };

describe('local keyring and payload encryption', () => {
  it('adds keys to a 0600 file and refuses a taken id', async () => {
    await addKeyringKey(path, 'k1');
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(Object.keys((JSON.parse(readFileSync(path, 'utf8')) as { keys: object }).keys)).toEqual(['k1']);
    await expect(addKeyringKey(path, 'k1')).rejects.toThrow(/already/);
  });

  it('round-trips bytes and streams; each version gets its own data key and IV', async () => {
    const ring = createLocalKeyring(path);
    const plain = Buffer.from('hello, secret world');
    const a = await encryptPayload(ring, 'pay.t', enc, plain);
    const b = await encryptPayload(ring, 'pay.t', enc, plain);
    expect(a.ciphertext.equals(b.ciphertext)).toBe(false);
    expect(a.metadata['quire.enc.wrapped-key']).not.toBe(b.metadata['quire.enc.wrapped-key']);
    expect(a.ciphertext.includes(plain)).toBe(false);
    const v = { topic: 'pay.t', version: 1, metadata: a.metadata };
    expect(Buffer.from(await decryptPayload(ring, v, a.ciphertext)).equals(plain)).toBe(true);

    const big = Buffer.alloc(3 * 1024 * 1024 + 7, 'x');
    const s = await encryptStream(ring, 'pay.t', enc, Readable.from([big.subarray(0, 1000), big.subarray(1000)]));
    const chunks: Buffer[] = [];
    for await (const c of s.stream) chunks.push(c as Buffer);
    const ct = Buffer.concat(chunks);
    expect(ct.length).toBe(big.length + 16);
    expect(Buffer.from(await decryptPayload(ring, { topic: 'pay.t', version: 2, metadata: s.metadata }, ct)).equals(big)).toBe(true);
  });

  it('a flipped bit, another topic or a missing key is a clear error', async () => {
    const ring = createLocalKeyring(path);
    const { ciphertext, metadata } = await encryptPayload(ring, 'pay.t', enc, Buffer.from('data'));
    const flipped = Buffer.from(ciphertext);
    flipped[0] = (flipped[0] ?? 0) ^ 1;
    const code = async (p: Promise<unknown>) => p.then(() => 'ok', (e: unknown) => (isQuireError(e) ? `${e.code}: ${e.message}` : String(e)));
    expect(await code(decryptPayload(ring, { topic: 'pay.t', version: 1, metadata }, flipped))).toMatch(/^DATA_LOSS/);
    expect(await code(decryptPayload(ring, { topic: 'other.t', version: 1, metadata }, ciphertext))).toMatch(/^DATA_LOSS/);
    expect(await code(decryptPayload(undefined, { topic: 'pay.t', version: 1, metadata }, ciphertext))).toMatch(/^FAILED_PRECONDITION: .*key "k1"/);
    const empty = createLocalKeyring(join(dir, 'none.json'));
    expect(await code(decryptPayload(empty, { topic: 'pay.t', version: 1, metadata }, ciphertext))).toMatch(/^FAILED_PRECONDITION: .*key "k1"/);
    // A plain version passes through untouched.
    const plain = new Uint8Array([1, 2, 3]);
    expect(await decryptPayload(undefined, { topic: 'pay.t', version: 1, metadata: {} }, plain)).toBe(plain);
  });

  it('decrypts as a stream whatever the chunking (the tag split across chunks), and checks the tag at the end', async () => {
    const ring = createLocalKeyring(path);
    const plain = Buffer.from('streamed secret payload, some bytes long enough to cut anywhere');
    const { ciphertext, metadata } = await encryptPayload(ring, 'pay.t', enc, plain);
    const v = { topic: 'pay.t', version: 3, metadata, size: ciphertext.length };
    for (const cuts of [[], [1], [ciphertext.length - 8], [10, ciphertext.length - 20, ciphertext.length - 3], [ciphertext.length - 16]]) {
      const d = await decryptingTransform(ring, v);
      const parts: Buffer[] = [];
      let at = 0;
      for (const cut of [...cuts, ciphertext.length]) {
        parts.push(Buffer.from(d?.update(ciphertext.subarray(at, cut)) ?? []));
        at = cut;
      }
      parts.push(Buffer.from(d?.final() ?? []));
      expect(Buffer.concat(parts).equals(plain)).toBe(true);
    }
    const tampered = Buffer.from(ciphertext);
    tampered[tampered.length - 1] = (tampered[tampered.length - 1] ?? 0) ^ 1;
    const d = await decryptingTransform(ring, v);
    d?.update(tampered);
    expect(() => d?.final()).toThrow(/does not decrypt/);
    const short = await decryptingTransform(ring, v);
    short?.update(ciphertext.subarray(0, 20));
    expect(() => short?.final()).toThrow(/got 20 bytes of ciphertext/);
    expect(await decryptingTransform(undefined, { ...v, metadata: {} })).toBeUndefined();
  });
});

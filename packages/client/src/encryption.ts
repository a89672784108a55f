/**
 * Payload encryption in the SDK (envelope encryption, AES-256-GCM from node:crypto).
 *
 * Publishing to a topic whose setting is `encryption: {algorithm: 'aes-256-gcm', keyId}`:
 * a fresh 256-bit data key and 96-bit IV per version; the payload is encrypted (streamed
 * for files and streams), the 16-byte tag appended; the data key is wrapped by a
 * `KeyProvider` under the topic's key id. The wrapped key, IV and key id go in the
 * version's metadata (`quire.enc.*`), the ciphertext to the service: the version's size and
 * SHA-256 are the ciphertext's, so the services store and verify what they never read.
 *
 * Consuming: after the usual size + SHA-256 check of the ciphertext, the data key is
 * unwrapped and the payload decrypted (GCM checks it is exactly what was encrypted, for
 * this topic and key). A consumer without the key gets FAILED_PRECONDITION naming it.
 *
 * `KeyProvider` is the seam for a cloud KMS (wrap = KMS Encrypt, unwrap = KMS Decrypt with
 * the key id); `createLocalKeyring(path)` is the embedded default: a JSON file of named
 * 256-bit keys (`{"version":1,"keys":{"<keyId>":"<base64>"}}`, mode 0600), its keys
 * wrapping data keys with AES-256-GCM as well.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { chmod, mkdir, readFile, rename, stat, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { Readable, Transform } from 'node:stream';
import { createReadStream } from 'node:fs';
import { Code, ENCRYPTION_METADATA, QuireError, encryptionAad, encryptionOf } from '@quire/core';
import type { Metadata, TopicEncryption } from '@quire/core';
import type { VersionInfo } from './mapping.ts';
import type { PayloadTransform } from './download.ts';

/** Wraps and unwraps data keys under named key-encryption keys (a keyring file, a KMS). */
export interface KeyProvider {
  /** Wrap `dataKey` under key `keyId`; NOT_FOUND / FAILED_PRECONDITION naming the key when it is not there. */
  wrapKey(keyId: string, dataKey: Uint8Array): Promise<Uint8Array>;
  /** The data key back; FAILED_PRECONDITION naming the key when it is not there, DATA_LOSS when `wrapped` is not its. */
  unwrapKey(keyId: string, wrapped: Uint8Array): Promise<Uint8Array>;
  /** Whether the provider holds `keyId` (for clear errors before any work). */
  hasKey(keyId: string): Promise<boolean>;
}

const IV_BYTES = 12;
const TAG_BYTES = 16;
const KEY_BYTES = 32;

interface KeyringFile {
  version: 1;
  keys: Record<string, string>;
}

async function readKeyring(path: string): Promise<KeyringFile> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { version: 1, keys: {} };
    throw new QuireError(Code.FAILED_PRECONDITION, `keyring ${path}: cannot read it: ${(err as Error).message}`, { field: 'keyring' });
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new QuireError(Code.FAILED_PRECONDITION, `keyring ${path}: not JSON`, { field: 'keyring' });
  }
  const k = parsed as Partial<KeyringFile>;
  if (k.version !== 1 || typeof k.keys !== 'object' || k.keys === null) {
    throw new QuireError(Code.FAILED_PRECONDITION, `keyring ${path}: expected {"version":1,"keys":{...}}`, { field: 'keyring' });
  }
  return k as KeyringFile;
}

function keyBytes(path: string, keyId: string, b64: string): Buffer {
  const key = Buffer.from(b64, 'base64');
  if (key.length !== KEY_BYTES) throw new QuireError(Code.FAILED_PRECONDITION, `keyring ${path}: key "${keyId}" is not 32 bytes of base64`, { field: 'keyring' });
  return key;
}

const wrapAad = (keyId: string): Buffer => Buffer.from(`quire-keyring|${keyId}`, 'utf8');

/** The local keyring file as a KeyProvider (read at each call: keys added later are seen). */
export function createLocalKeyring(path: string): KeyProvider {
  const key = async (keyId: string): Promise<Buffer> => {
    const ring = await readKeyring(path);
    const b64 = ring.keys[keyId];
    if (b64 === undefined) {
      throw new QuireError(Code.FAILED_PRECONDITION, `key "${keyId}" is not in the keyring ${path}`, { field: 'keyring' });
    }
    return keyBytes(path, keyId, b64);
  };
  return {
    async hasKey(keyId) {
      return (await readKeyring(path)).keys[keyId] !== undefined;
    },
    async wrapKey(keyId, dataKey) {
      const iv = randomBytes(IV_BYTES);
      const c = createCipheriv('aes-256-gcm', await key(keyId), iv);
      c.setAAD(wrapAad(keyId));
      const body = Buffer.concat([c.update(dataKey), c.final()]);
      return Buffer.concat([iv, body, c.getAuthTag()]);
    },
    async unwrapKey(keyId, wrapped) {
      const kek = await key(keyId);
      const buf = Buffer.from(wrapped);
      if (buf.length !== IV_BYTES + KEY_BYTES + TAG_BYTES) throw new QuireError(Code.DATA_LOSS, `wrapped data key for "${keyId}" has the wrong length`);
      const d = createDecipheriv('aes-256-gcm', kek, buf.subarray(0, IV_BYTES));
      d.setAAD(wrapAad(keyId));
      d.setAuthTag(buf.subarray(IV_BYTES + KEY_BYTES));
      try {
        return Buffer.concat([d.update(buf.subarray(IV_BYTES, IV_BYTES + KEY_BYTES)), d.final()]);
      } catch {
        throw new QuireError(Code.DATA_LOSS, `the data key does not unwrap with key "${keyId}" of ${path} (another key under the same id?)`, { field: 'keyring' });
      }
    },
  };
}

/** Add a fresh random 256-bit key to a keyring file (created with mode 0600); ALREADY_EXISTS when the id is taken. */
export async function addKeyringKey(path: string, keyId: string): Promise<void> {
  if (!/^[A-Za-z0-9][A-Za-z0-9._:/-]{0,199}$/.test(keyId)) throw QuireError.invalid('keyId', 'must be 1-200 characters of A-Z, a-z, 0-9, ".", "_", ":", "/" and "-"');
  const ring = await readKeyring(path);
  if (ring.keys[keyId] !== undefined) throw new QuireError(Code.ALREADY_EXISTS, `key "${keyId}" is already in ${path}`, { field: 'keyId' });
  ring.keys[keyId] = randomBytes(KEY_BYTES).toString('base64');
  await mkdir(dirname(path), { recursive: true });
  const tmp = `${path}.${process.pid}.tmp`;
  await writeFile(tmp, `${JSON.stringify(ring, null, 2)}\n`, { mode: 0o600 });
  await chmod(tmp, 0o600);
  await rename(tmp, path);
}

interface Sealed {
  metadata: Metadata;
  key: Buffer;
  iv: Buffer;
}

async function seal(provider: KeyProvider, enc: TopicEncryption): Promise<Sealed> {
  const key = randomBytes(KEY_BYTES);
  const iv = randomBytes(IV_BYTES);
  const wrapped = await provider.wrapKey(enc.keyId, key);
  return {
    key,
    iv,
    metadata: {
      [ENCRYPTION_METADATA.algorithm]: enc.algorithm,
      [ENCRYPTION_METADATA.keyId]: enc.keyId,
      [ENCRYPTION_METADATA.wrappedKey]: Buffer.from(wrapped).toString('base64'),
      [ENCRYPTION_METADATA.iv]: iv.toString('base64'),
    },
  };
}

/** Encrypt bytes for `topic`: ciphertext (tag appended) and the metadata to publish with it. */
export async function encryptPayload(provider: KeyProvider, topic: string, enc: TopicEncryption, plaintext: Uint8Array): Promise<{ ciphertext: Buffer; metadata: Metadata }> {
  const s = await seal(provider, enc);
  const c = createCipheriv('aes-256-gcm', s.key, s.iv);
  c.setAAD(encryptionAad(topic, enc.keyId));
  const ciphertext = Buffer.concat([c.update(plaintext), c.final(), c.getAuthTag()]);
  return { ciphertext, metadata: s.metadata };
}

/** Encrypt a stream for `topic` as it is read (bounded memory); the tag follows the last byte. */
export async function encryptStream(provider: KeyProvider, topic: string, enc: TopicEncryption, source: Readable): Promise<{ stream: Readable; metadata: Metadata }> {
  const s = await seal(provider, enc);
  const c = createCipheriv('aes-256-gcm', s.key, s.iv);
  c.setAAD(encryptionAad(topic, enc.keyId));
  const t = new Transform({
    transform(chunk: Buffer, _enc, done) {
      done(null, c.update(chunk));
    },
    flush(done) {
      done(null, Buffer.concat([c.final(), c.getAuthTag()]));
    },
  });
  source.on('error', (err) => t.destroy(err));
  return { stream: source.pipe(t), metadata: s.metadata };
}

/**
 * The plaintext of a verified payload: unchanged for a plain version; decrypted for an
 * encrypted one. FAILED_PRECONDITION naming the key id without a provider or the key;
 * DATA_LOSS when the ciphertext does not authenticate.
 */
export async function decryptPayload(provider: KeyProvider | undefined, v: Pick<VersionInfo, 'topic' | 'version' | 'metadata'>, bytes: Uint8Array): Promise<Uint8Array> {
  // A plain version (every poll answer of an unencrypted topic): nothing to set up.
  if (encryptionOf(v.metadata) === undefined) return bytes;
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const d = await decryptingTransform(provider, { ...v, size: buf.length });
  if (d === undefined) return bytes;
  return Buffer.concat([d.update(buf), d.final()]);
}

/**
 * Decryption as a stream, for `downloadTo`: undefined for a plain version. The ciphertext's
 * size is known (`v.size`), so its last 16 bytes (the GCM tag) are held back as they
 * arrive and checked by `final()`, which throws DATA_LOSS when the payload does not
 * authenticate; the plaintext handed out before that is unverified and must only go to a
 * place that is deleted on failure (the file sink's temp file). Memory: one chunk.
 * FAILED_PRECONDITION naming the key id without a provider or the key.
 */
export async function decryptingTransform(provider: KeyProvider | undefined, v: Pick<VersionInfo, 'topic' | 'version' | 'metadata' | 'size'>): Promise<PayloadTransform | undefined> {
  const h = encryptionOf(v.metadata);
  if (h === undefined) return undefined;
  const what = `${v.topic} version ${v.version}`;
  if (h.algorithm !== 'aes-256-gcm') throw new QuireError(Code.FAILED_PRECONDITION, `${what} is encrypted with ${h.algorithm}, which this SDK does not know`);
  if (provider === undefined) {
    throw new QuireError(Code.FAILED_PRECONDITION, `${what} is encrypted with key "${h.keyId}"; give the consumer a keyring holding it (keyring option / QUIRE_KEYRING)`, { field: 'keyring' });
  }
  if (!(await provider.hasKey(h.keyId))) {
    throw new QuireError(Code.FAILED_PRECONDITION, `${what} is encrypted with key "${h.keyId}", which this consumer's keyring does not hold`, { field: 'keyring' });
  }
  if (v.size < TAG_BYTES) throw new QuireError(Code.DATA_LOSS, `${what}: ciphertext shorter than its tag`);
  const key = await provider.unwrapKey(h.keyId, Buffer.from(h.wrappedKey, 'base64'));
  const d = createDecipheriv('aes-256-gcm', key, Buffer.from(h.iv, 'base64'));
  d.setAAD(encryptionAad(v.topic, h.keyId));
  const bodyBytes = v.size - TAG_BYTES;
  const tag: Buffer[] = [];
  let at = 0;
  return {
    update(chunk) {
      const buf = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
      const bodyPart = Math.max(0, Math.min(buf.length, bodyBytes - at));
      at += buf.length;
      if (bodyPart < buf.length) tag.push(buf.subarray(bodyPart));
      return bodyPart > 0 ? d.update(buf.subarray(0, bodyPart)) : Buffer.alloc(0);
    },
    final() {
      const t = Buffer.concat(tag);
      if (at !== v.size || t.length !== TAG_BYTES) throw new QuireError(Code.DATA_LOSS, `${what}: got ${at} bytes of ciphertext, expected ${v.size}`);
      try {
        d.setAuthTag(t);
        return d.final();
      } catch {
        throw new QuireError(Code.DATA_LOSS, `${what}: the payload does not decrypt with key "${h.keyId}" (tampered, or another key under that id)`);
      }
    },
  };
}

interface PublishSource {
  data?: string | Uint8Array;
  file?: string;
  stream?: Readable;
  metadata?: Metadata;
}

/**
 * The publisher's hook: for an encrypted topic, the same input with its payload encrypted
 * (data → bytes; file and stream → an encrypting stream) and the `quire.enc.*` metadata;
 * for a plain topic (or without a provider) the input unchanged. Topic settings are
 * cached for a minute.
 */
export function publishEncryption(
  provider: KeyProvider | undefined,
  topicEncryption: (topic: string) => Promise<TopicEncryption | undefined>,
): <I extends PublishSource>(topic: string, input: I) => Promise<I> {
  const cache = new Map<string, { enc: TopicEncryption | undefined; until: number }>();
  return async <I extends PublishSource>(topic: string, input: I): Promise<I> => {
    if (provider === undefined) return input;
    let hit = cache.get(topic);
    if (hit === undefined || hit.until < Date.now()) {
      hit = { enc: await topicEncryption(topic), until: Date.now() + 60_000 };
      cache.set(topic, hit);
    }
    const enc = hit.enc;
    if (enc === undefined) return input;
    if (!(await provider.hasKey(enc.keyId))) {
      throw new QuireError(Code.FAILED_PRECONDITION, `topic ${topic} is encrypted with key "${enc.keyId}", which the publisher's keyring does not hold`, { field: 'keyring' });
    }
    const { data, file, stream, ...rest } = input;
    if (data !== undefined) {
      const { ciphertext, metadata } = await encryptPayload(provider, topic, enc, typeof data === 'string' ? Buffer.from(data, 'utf8') : data);
      return { ...rest, data: ciphertext, metadata: { ...input.metadata, ...metadata } } as unknown as I;
    }
    if (file !== undefined) {
      await stat(file).catch((err: unknown) => {
        throw QuireError.invalid('file', `cannot read ${file}: ${err instanceof Error ? err.message : String(err)}`);
      });
    }
    const source = file !== undefined ? createReadStream(file) : (stream as Readable);
    const sealed = await encryptStream(provider, topic, enc, source);
    return { ...rest, stream: sealed.stream, metadata: { ...input.metadata, ...sealed.metadata } } as unknown as I;
  };
}

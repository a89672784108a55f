/**
 * Payload encryption, the pure rules (the crypto itself is node:crypto in the SDK).
 *
 * Envelope encryption with AES-256-GCM: the publisher makes a fresh 256-bit data key per
 * version, encrypts the payload with it (random 96-bit IV; the 128-bit tag appended to the
 * ciphertext; additional data binds the ciphertext to its topic and key id), and stores
 * the data key wrapped by a key provider under the topic's key id. The wrapped key, IV and
 * key id travel in the version's metadata (`ENCRYPTION_METADATA`), so they are in every
 * version descriptor; the version's size and SHA-256 are those of the ciphertext, so the
 * services verify what they store without ever seeing the plaintext.
 */
import { QuireError } from './errors.ts';
import type { Metadata, Topic, TopicEncryption } from './model.ts';

export const ENCRYPTION_ALGORITHMS = ['aes-256-gcm'] as const;

/** Version metadata keys of an encrypted payload. */
export const ENCRYPTION_METADATA = {
  algorithm: 'quire.enc.alg',
  keyId: 'quire.enc.key-id',
  /** base64 of the data key as the key provider wrapped it. */
  wrappedKey: 'quire.enc.wrapped-key',
  /** base64 of the 12-byte IV. */
  iv: 'quire.enc.iv',
} as const;

const KEY_ID_RE = /^[A-Za-z0-9][A-Za-z0-9._:/-]{0,199}$/;

/** A topic's `encryption` setting: absent / null / "off" = none. INVALID_ARGUMENT naming the field. */
export function validateTopicEncryption(value: unknown, field = 'encryption'): TopicEncryption | undefined {
  if (value === undefined || value === null || value === 'off') return undefined;
  if (typeof value !== 'object' || Array.isArray(value)) throw QuireError.invalid(field, 'must be {"algorithm": "aes-256-gcm", "keyId": "<key id>"} or "off"');
  const v = value as Record<string, unknown>;
  for (const k of Object.keys(v)) if (k !== 'algorithm' && k !== 'keyId') throw QuireError.invalid(`${field}.${k}`, 'is not a setting (algorithm, keyId)');
  const algorithm = v.algorithm ?? 'aes-256-gcm';
  if (typeof algorithm !== 'string' || !(ENCRYPTION_ALGORITHMS as readonly string[]).includes(algorithm)) {
    throw QuireError.invalid(`${field}.algorithm`, `must be one of ${ENCRYPTION_ALGORITHMS.join(', ')}`);
  }
  if (typeof v.keyId !== 'string' || !KEY_ID_RE.test(v.keyId)) {
    throw QuireError.invalid(`${field}.keyId`, 'is required: 1-200 characters of A-Z, a-z, 0-9, ".", "_", ":", "/" and "-", starting with a letter or digit');
  }
  return { algorithm: 'aes-256-gcm', keyId: v.keyId };
}

/** The encryption header of a version's metadata, when it has one. */
export function encryptionOf(metadata: Metadata): { algorithm: string; keyId: string; wrappedKey: string; iv: string } | undefined {
  const algorithm = metadata[ENCRYPTION_METADATA.algorithm];
  if (algorithm === undefined) return undefined;
  return {
    algorithm,
    keyId: metadata[ENCRYPTION_METADATA.keyId] ?? '',
    wrappedKey: metadata[ENCRYPTION_METADATA.wrappedKey] ?? '',
    iv: metadata[ENCRYPTION_METADATA.iv] ?? '',
  };
}

/**
 * A publish to `topic` with this metadata: an encrypted topic takes only payloads encrypted
 * under its key (FAILED_PRECONDITION otherwise, naming the key id); a plain topic takes
 * only plain ones.
 */
export function checkPublishEncryption(topic: Pick<Topic, 'name' | 'encryption'>, metadata: Metadata): void {
  const header = encryptionOf(metadata);
  const enc = topic.encryption;
  if (enc === undefined) {
    if (header !== undefined) throw QuireError.invalid(`metadata.${ENCRYPTION_METADATA.algorithm}`, `topic ${topic.name} is not encrypted; quire.enc.* metadata is reserved`);
    return;
  }
  if (header === undefined) {
    throw new QuireError('FAILED_PRECONDITION', `topic ${topic.name} is encrypted (aes-256-gcm, key "${enc.keyId}"): publish with the SDK or CLI and a keyring holding that key`, {
      field: 'metadata',
    });
  }
  if (header.algorithm !== enc.algorithm) throw QuireError.invalid(`metadata.${ENCRYPTION_METADATA.algorithm}`, `must be ${enc.algorithm} for topic ${topic.name}`);
  if (header.keyId !== enc.keyId) {
    throw QuireError.invalid(`metadata.${ENCRYPTION_METADATA.keyId}`, `topic ${topic.name} is encrypted under key "${enc.keyId}", not "${header.keyId}"`);
  }
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(header.wrappedKey)) throw QuireError.invalid(`metadata.${ENCRYPTION_METADATA.wrappedKey}`, 'must be base64');
  if (!/^[A-Za-z0-9+/]{16}$/.test(header.iv)) throw QuireError.invalid(`metadata.${ENCRYPTION_METADATA.iv}`, 'must be the base64 of a 12-byte IV');
}

/** Additional authenticated data of a payload: binds the ciphertext to its topic and key. */
export function encryptionAad(topic: string, keyId: string): Uint8Array {
  return new TextEncoder().encode(`quire/v1|aes-256-gcm|${topic}|${keyId}`);
}

/** Settings that cannot go together: the service validates JSON payloads it could not read. */
export function checkTopicEncryptionSettings(topic: Pick<Topic, 'jsonSchema' | 'encryption'>): void {
  if (topic.encryption !== undefined && topic.jsonSchema !== undefined) {
    throw QuireError.invalid('encryption', 'a topic with a jsonSchema cannot be encrypted (the service could not validate payloads it cannot read)');
  }
}

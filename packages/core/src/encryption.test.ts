import { describe, expect, it } from 'vitest';
import { ENCRYPTION_METADATA as M, checkPublishEncryption, encryptionOf, validateTopicEncryption } from './encryption.ts';
import { isQuireError } from './errors.ts';

const fieldOf = (fn: () => unknown): string | undefined => {
  try {
    fn();
    return undefined;
  } catch (err) {
    return isQuireError(err) ? `${err.code} ${err.field ?? ''}` : 'not a QuireError';
  }
};

const header = (keyId = 'k1') => ({ [M.algorithm]: 'aes-256-gcm', [M.keyId]: keyId, [M.wrappedKey]: 'AAAA', [M.iv]: 'AAAAAAAAAAAAAAAA' });

describe('validateTopicEncryption', () => {
  it('reads off and aes-256-gcm with a key id; names the bad field', () => {
    expect(validateTopicEncryption(undefined)).toBeUndefined();
    expect(validateTopicEncryption(null)).toBeUndefined();
    expect(validateTopicEncryption('off')).toBeUndefined();
    expect(validateTopicEncryption({ keyId: 'payments/2026' })).toEqual({ algorithm: 'aes-256-gcm', keyId: 'payments/2026' });
    expect(fieldOf(() => validateTopicEncryption({ algorithm: 'rot13', keyId: 'k' }))).toBe('INVALID_ARGUMENT encryption.algorithm');
    expect(fieldOf(() => validateTopicEncryption({ algorithm: 'aes-256-gcm' }))).toBe('INVALID_ARGUMENT encryption.keyId');
    expect(fieldOf(() => validateTopicEncryption({ keyId: 'k', extra: 1 }))).toBe('INVALID_ARGUMENT encryption.extra');
    expect(fieldOf(() => validateTopicEncryption('on'))).toBe('INVALID_ARGUMENT encryption');
  });
});

describe('checkPublishEncryption', () => {
  const enc = { name: 't', encryption: { algorithm: 'aes-256-gcm' as const, keyId: 'k1' } };
  it('an encrypted topic takes only payloads encrypted under its key', () => {
    expect(fieldOf(() => checkPublishEncryption(enc, header()))).toBeUndefined();
    expect(fieldOf(() => checkPublishEncryption(enc, {}))).toBe('FAILED_PRECONDITION metadata');
    expect(fieldOf(() => checkPublishEncryption(enc, header('k2')))).toBe(`INVALID_ARGUMENT metadata.${M.keyId}`);
    expect(fieldOf(() => checkPublishEncryption(enc, { ...header(), [M.iv]: 'short' }))).toBe(`INVALID_ARGUMENT metadata.${M.iv}`);
  });
  it('a plain topic refuses the reserved keys', () => {
    expect(fieldOf(() => checkPublishEncryption({ name: 't' }, {}))).toBeUndefined();
    expect(fieldOf(() => checkPublishEncryption({ name: 't' }, header()))).toBe(`INVALID_ARGUMENT metadata.${M.algorithm}`);
  });
  it('encryptionOf reads the header back', () => {
    expect(encryptionOf(header())).toEqual({ algorithm: 'aes-256-gcm', keyId: 'k1', wrappedKey: 'AAAA', iv: 'AAAAAAAAAAAAAAAA' });
    expect(encryptionOf({ a: 'b' })).toBeUndefined();
  });
});

/**
 * API tokens at the MetadataStore boundary, shared by both adapters: the input guard (bad
 * input is INVALID_ARGUMENT naming the field, nothing written) and the JSON codec of the
 * stored record (both adapters keep a token as one JSON text keyed by its id).
 */
import { QuireError, validateTokenInput } from '@quire/core';
import type { ApiToken } from '@quire/core';
import { guardId, guardOptionalTime, guardText, guardTime } from './guard.ts';

const ID_RE = /^[0-9a-f]{16}$/;
const HASH_RE = /^[0-9a-f]{64}$/;

export function guardTokenId(id: unknown, field = 'id'): string {
  if (typeof id !== 'string' || !ID_RE.test(id)) throw QuireError.invalid(field, 'must be a token id (16 lowercase hex digits)');
  return id;
}

export function guardToken(token: ApiToken): ApiToken {
  if (typeof token !== 'object' || token === null) throw QuireError.invalid('token', 'is required');
  const id = guardTokenId(token.id);
  const settings = validateTokenInput(token);
  if (typeof token.secretHash !== 'string' || !HASH_RE.test(token.secretHash)) {
    throw QuireError.invalid('secretHash', 'must be a lowercase hex SHA-256 (64 digits)');
  }
  const out: ApiToken = {
    id,
    ...settings,
    secretHash: token.secretHash,
    createdAt: guardTime(token.createdAt, 'createdAt'),
    createdBy: guardId(token.createdBy, 'createdBy'),
  };
  const revokedAt = guardOptionalTime(token.revokedAt, 'revokedAt');
  if (revokedAt !== undefined) {
    out.revokedAt = revokedAt;
    out.revokedBy = guardText(token.revokedBy, 'revokedBy', { max: 200 });
  }
  return out;
}

export function tokenToJson(t: ApiToken): string {
  return JSON.stringify(t);
}

export function tokenFromJson(json: string): ApiToken {
  const raw = JSON.parse(json) as ApiToken;
  const t: ApiToken = {
    id: raw.id,
    name: raw.name,
    role: raw.role,
    prefixes: raw.prefixes,
    secretHash: raw.secretHash,
    createdAt: raw.createdAt,
    createdBy: raw.createdBy,
  };
  if (raw.application !== undefined) t.application = raw.application;
  if (raw.expiresAt !== undefined) t.expiresAt = raw.expiresAt;
  if (raw.revokedAt !== undefined) {
    t.revokedAt = raw.revokedAt;
    t.revokedBy = raw.revokedBy ?? '';
  }
  return t;
}

/** The token revoked at `at` by `by`, unless it already was (the first revocation stands). */
export function revoked(t: ApiToken, at: number, by: string): ApiToken {
  return t.revokedAt !== undefined ? t : { ...t, revokedAt: at, revokedBy: by };
}

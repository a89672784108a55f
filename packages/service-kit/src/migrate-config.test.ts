import { describe, expect, it } from 'vitest';
import { parseTokenString } from '@quire/core';
import { mintTokenString } from './auth.ts';
import { ConfigError } from './config.ts';
import { loadMigrateConfig } from './migrate.ts';

describe('QUIRE_BOOTSTRAP_ADMIN_TOKEN (quire migrate)', () => {
  it('mintTokenString makes well-formed, distinct tokens', () => {
    const a = mintTokenString();
    expect(parseTokenString(a)).toEqual({ id: expect.stringMatching(/^[0-9a-f]{16}$/), secret: expect.stringMatching(/^[A-Za-z0-9_-]{43}$/) });
    expect(mintTokenString()).not.toBe(a);
  });

  it('a minted token is taken as is; unset or empty means no bootstrap token', () => {
    const token = mintTokenString();
    expect(loadMigrateConfig({ QUIRE_BOOTSTRAP_ADMIN_TOKEN: token }).bootstrapAdminToken).toBe(token);
    expect(loadMigrateConfig({ QUIRE_BOOTSTRAP_ADMIN_TOKEN: ` ${token}\n` }).bootstrapAdminToken).toBe(token);
    expect(loadMigrateConfig({}).bootstrapAdminToken).toBeUndefined();
    expect(loadMigrateConfig({ QUIRE_BOOTSTRAP_ADMIN_TOKEN: '' }).bootstrapAdminToken).toBeUndefined();
  });

  it('a malformed value is refused naming the variable, without echoing it', () => {
    for (const bad of ['REPLACE_ME', `${mintTokenString()}x`, 'quire_0123_short-secret-value']) {
      let err: unknown;
      try {
        loadMigrateConfig({ QUIRE_BOOTSTRAP_ADMIN_TOKEN: bad });
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as ConfigError).variable).toBe('QUIRE_BOOTSTRAP_ADMIN_TOKEN');
      expect((err as ConfigError).message).not.toContain(bad);
    }
  });
});

describe('QUIRE_BOOTSTRAP_HINT_TOKEN (quire migrate registers the consume services\' change-hint token)', () => {
  it('is taken as is, or refused naming the variable without echoing it', () => {
    const token = mintTokenString();
    expect(loadMigrateConfig({ QUIRE_BOOTSTRAP_HINT_TOKEN: token }).hintToken).toBe(token);
    expect(loadMigrateConfig({}).hintToken).toBeUndefined();
    let err: unknown;
    try {
      loadMigrateConfig({ QUIRE_BOOTSTRAP_HINT_TOKEN: 'REPLACE_ME_secret' });
    } catch (e) {
      err = e;
    }
    expect((err as ConfigError).variable).toBe('QUIRE_BOOTSTRAP_HINT_TOKEN');
    expect((err as ConfigError).message).not.toContain('REPLACE_ME_secret');
  });
});

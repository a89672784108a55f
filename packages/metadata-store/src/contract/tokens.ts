import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { ApiToken } from '@quire/core';
import type { ContractContext } from './harness.ts';
import { expectQuireError, sha256, T0 } from './fixtures.ts';

function tokenFixture(patch: Partial<ApiToken> = {}): ApiToken {
  return {
    id: randomBytes(8).toString('hex'),
    name: 'contract token',
    role: 'publisher',
    prefixes: ['contract.', 'other.'],
    secretHash: sha256(randomBytes(32)),
    createdAt: T0,
    createdBy: 'alice',
    ...patch,
  };
}

export function tokensContract(ctx: ContractContext): void {
  describe('API tokens', () => {
    it('stores a token and reads it back by id; optional fields stay absent', async () => {
      const t = tokenFixture();
      await ctx.store.createToken(t);
      expect(await ctx.store.getToken(t.id)).toEqual(t);
      const bound = tokenFixture({ role: 'consumer', application: 'checkout' });
      await ctx.store.createToken(bound);
      expect(await ctx.store.getToken(bound.id)).toEqual(bound);
      // An expiry is kept, also one already past (the services refuse the token, the record stays).
      const expiring = tokenFixture({ expiresAt: T0 + 3_600_000 });
      const expired = tokenFixture({ expiresAt: T0 - 1 });
      for (const e of [expiring, expired]) {
        await ctx.store.createToken(e);
        expect(await ctx.store.getToken(e.id)).toEqual(e);
      }
      expect((await ctx.store.listTokens()).find((l) => l.id === expiring.id)?.expiresAt).toBe(T0 + 3_600_000);
      expect(await ctx.store.getToken(randomBytes(8).toString('hex'))).toBeUndefined();
    });

    it('refuses a taken id with ALREADY_EXISTS and keeps the first', async () => {
      const t = tokenFixture();
      await ctx.store.createToken(t);
      await expectQuireError(ctx.store.createToken({ ...t, name: 'impostor' }), 'ALREADY_EXISTS', 'id');
      expect((await ctx.store.getToken(t.id))?.name).toBe('contract token');
    });

    it('lists tokens ordered by id, revoked ones included', async () => {
      const mine = [tokenFixture(), tokenFixture(), tokenFixture()];
      for (const t of mine) await ctx.store.createToken(t);
      await ctx.store.revokeToken(mine[1]!.id, T0 + 5, 'bob');
      const all = await ctx.store.listTokens();
      const ids = all.map((t) => t.id);
      expect(ids).toEqual([...ids].sort());
      for (const t of mine) expect(ids).toContain(t.id);
      expect(all.find((t) => t.id === mine[1]!.id)).toMatchObject({ revokedAt: T0 + 5, revokedBy: 'bob' });
    });

    it('revokes once: repeating keeps the first time and revoker; unknown ids are NOT_FOUND', async () => {
      const t = tokenFixture();
      await ctx.store.createToken(t);
      expect(await ctx.store.revokeToken(t.id, T0 + 10, 'bob')).toEqual({ ...t, revokedAt: T0 + 10, revokedBy: 'bob' });
      expect(await ctx.store.revokeToken(t.id, T0 + 20, 'carol')).toMatchObject({ revokedAt: T0 + 10, revokedBy: 'bob' });
      expect(await ctx.store.getToken(t.id)).toMatchObject({ revokedAt: T0 + 10, revokedBy: 'bob' });
      await expectQuireError(ctx.store.revokeToken(randomBytes(8).toString('hex'), T0, 'bob'), 'NOT_FOUND', 'id');
    });

    it('concurrent revocations from two instances: one time stands', async () => {
      const t = tokenFixture();
      await ctx.store.createToken(t);
      const other = await ctx.harness.reopen();
      try {
        const [a, b] = await Promise.all([ctx.store.revokeToken(t.id, T0 + 1, 'a'), other.revokeToken(t.id, T0 + 2, 'b')]);
        expect(a.revokedAt).toBe(b.revokedAt);
        expect(await ctx.store.getToken(t.id)).toMatchObject({ revokedAt: a.revokedAt, revokedBy: a.revokedBy });
      } finally {
        await other.close();
      }
    });

    it('refuses bad input naming the field, writing nothing', async () => {
      const t = tokenFixture();
      await expectQuireError(ctx.store.createToken({ ...t, id: 'NOT-HEX' }), 'INVALID_ARGUMENT', 'id');
      await expectQuireError(ctx.store.createToken({ ...t, secretHash: 'plaintext-secret' }), 'INVALID_ARGUMENT', 'secretHash');
      await expectQuireError(ctx.store.createToken({ ...t, role: 'root' as ApiToken['role'] }), 'INVALID_ARGUMENT', 'role');
      await expectQuireError(ctx.store.createToken({ ...t, prefixes: [] }), 'INVALID_ARGUMENT', 'prefixes');
      await expectQuireError(ctx.store.createToken({ ...t, expiresAt: -1 }), 'INVALID_ARGUMENT', 'expiresAt');
      expect(await ctx.store.getToken(t.id)).toBeUndefined();
      await expectQuireError(ctx.store.getToken('x'), 'INVALID_ARGUMENT', 'id');
    });
  });
}

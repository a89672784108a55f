import { describe, expect, it } from 'vitest';
import type { Lease } from '@quire/core';
import type { ContractContext } from './harness.ts';
import { sleep, uniqueId } from './fixtures.ts';

const LONG_TTL = 30_000;

export function leasesContract(ctx: ContractContext): void {
  describe('leases', () => {
    it('is acquired when free and refused to a second owner while held', async () => {
      const name = uniqueId('lease');
      expect(await ctx.store.getLease(name)).toBeUndefined();
      const before = Date.now();
      const a = await ctx.store.tryAcquireLease(name, 'owner-a', LONG_TTL);
      expect(a).toMatchObject({ name, owner: 'owner-a' });
      expect(a!.epoch).toBeGreaterThanOrEqual(1);
      expect(a!.expiresAt).toBeGreaterThanOrEqual(before + LONG_TTL - 1000);
      expect(a!.expiresAt).toBeLessThanOrEqual(Date.now() + LONG_TTL + 1000);
      expect(await ctx.store.tryAcquireLease(name, 'owner-b', LONG_TTL)).toBeUndefined();
      expect(await ctx.store.getLease(name)).toEqual(a);
      // The holder asking again keeps it, at the same epoch.
      const again = await ctx.store.tryAcquireLease(name, 'owner-a', LONG_TTL);
      expect(again).toMatchObject({ name, owner: 'owner-a', epoch: a!.epoch });
    });

    it('renew by the holder extends it; renew by anyone else is undefined', async () => {
      const name = uniqueId('lease-renew');
      const a = (await ctx.store.tryAcquireLease(name, 'owner-a', 10_000)) as Lease;
      const renewed = await ctx.store.renewLease(a, 60_000);
      expect(renewed).toMatchObject({ name, owner: 'owner-a', epoch: a.epoch });
      expect(renewed!.expiresAt).toBeGreaterThan(a.expiresAt);
      expect(await ctx.store.getLease(name)).toEqual(renewed);
      expect(await ctx.store.renewLease({ ...a, owner: 'owner-b' }, 60_000)).toBeUndefined();
      expect(await ctx.store.renewLease({ ...a, epoch: a.epoch + 1 }, 60_000)).toBeUndefined();
      expect(await ctx.store.renewLease({ ...a, name: uniqueId('lease-none') }, 60_000)).toBeUndefined();
      expect(await ctx.store.getLease(name)).toEqual(renewed);
    });

    it('releaseLease lets another owner take it at once, at a higher epoch; the old holder cannot renew', async () => {
      const name = uniqueId('lease-release');
      const a = (await ctx.store.tryAcquireLease(name, 'owner-a', LONG_TTL)) as Lease;
      await ctx.store.releaseLease(a);
      expect(await ctx.store.getLease(name)).toBeUndefined();
      const b = await ctx.store.tryAcquireLease(name, 'owner-b', LONG_TTL);
      expect(b).toMatchObject({ name, owner: 'owner-b' });
      expect(b!.epoch).toBeGreaterThan(a.epoch);
      expect(await ctx.store.renewLease(a, LONG_TTL)).toBeUndefined();
      // A stale release does not free the new holder's lease.
      await ctx.store.releaseLease(a);
      expect(await ctx.store.getLease(name)).toEqual(b);
      // Even the first owner coming back gets a higher epoch.
      await ctx.store.releaseLease(b!);
      const a2 = await ctx.store.tryAcquireLease(name, 'owner-a', LONG_TTL);
      expect(a2!.epoch).toBeGreaterThan(b!.epoch);
    });

    it('after expiry another owner acquires it with a strictly higher epoch', async () => {
      const name = uniqueId('lease-expiry');
      const a = (await ctx.store.tryAcquireLease(name, 'owner-a', 300)) as Lease;
      expect(a).toBeDefined();
      expect(await ctx.store.tryAcquireLease(name, 'owner-b', LONG_TTL)).toBeUndefined();
      await sleep(450);
      expect(await ctx.store.getLease(name)).toBeUndefined();
      const b = await ctx.store.tryAcquireLease(name, 'owner-b', LONG_TTL);
      expect(b).toMatchObject({ name, owner: 'owner-b' });
      expect(b!.epoch).toBeGreaterThan(a.epoch);
      expect(await ctx.store.renewLease(a, LONG_TTL)).toBeUndefined();
      expect(await ctx.store.getLease(name)).toEqual(b);
    });

    it('two contenders racing for 20 rounds never both hold it', async () => {
      const name = uniqueId('lease-race');
      await ctx.withInstances(1, async ([other]) => {
        let lastEpoch = 0;
        let wins = 0;
        for (let round = 0; round < 20; round++) {
          const [a, b] = await Promise.all([
            ctx.store.tryAcquireLease(name, 'contender-a', LONG_TTL),
            other!.tryAcquireLease(name, 'contender-b', LONG_TTL),
          ]);
          const winners = [a, b].filter((l): l is Lease => l !== undefined);
          expect(winners.length, `round ${round}`).toBeLessThanOrEqual(1);
          const winner = winners[0];
          if (winner === undefined) continue;
          wins += 1;
          expect(winner.epoch).toBeGreaterThan(lastEpoch);
          lastEpoch = winner.epoch;
          expect(await ctx.store.getLease(name)).toEqual(winner);
          expect(await other!.getLease(name)).toEqual(winner);
          // The loser cannot take it either, a moment later.
          const loser = winner.owner === 'contender-a' ? other! : ctx.store;
          const loserName = winner.owner === 'contender-a' ? 'contender-b' : 'contender-a';
          expect(await loser.tryAcquireLease(name, loserName, LONG_TTL)).toBeUndefined();
          await (winner.owner === 'contender-a' ? ctx.store : other!).releaseLease(winner);
        }
        expect(wins).toBeGreaterThan(0);
      });
    });
  });
}

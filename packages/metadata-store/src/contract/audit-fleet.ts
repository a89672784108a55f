import { randomInt } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import type { AuditEntry, FleetReport } from '@quire/core';
import type { ContractContext } from './harness.ts';
import { allPages, T0, uniqueId, uniqueTopic } from './fixtures.ts';

export function auditAndFleetContract(ctx: ContractContext): void {
  describe('audit', () => {
    // A time range of our own, far from any other entry in the store.
    const base = T0 + 1_000_000_000 + randomInt(1_000_000) * 1000;
    const a = uniqueTopic('audit-a');
    const b = uniqueTopic('audit-b');
    // 30 entries, 10 ms apart, with ties: entries 2k and 2k+1 share a time.
    const entries: AuditEntry[] = Array.from({ length: 30 }, (_, i) => {
      const e: AuditEntry = {
        id: `${uniqueId('audit')}-${String(i).padStart(2, '0')}`,
        at: base + Math.floor(i / 2) * 10,
        actor: i % 3 === 0 ? 'alice' : 'svc:scheduler',
        action: i % 2 === 0 ? 'publish' : 'pin',
        details: { i, nested: { scope: { region: 'eu-west-1' } }, list: [1, 'two', null] },
      };
      if (i % 5 !== 4) e.topic = i % 2 === 0 ? a : b;
      if (i % 4 === 0) e.reason = `reason ${i}`;
      return e;
    });
    /** Newest first: by time, then by id, both descending. */
    const newestFirst = (xs: AuditEntry[]): AuditEntry[] =>
      [...xs].sort((x, y) => y.at - x.at || (x.id < y.id ? 1 : x.id > y.id ? -1 : 0));
    const inRange = (since: number, until: number): ((e: AuditEntry) => boolean) => (e) => e.at >= since && e.at < until;

    beforeAll(async () => {
      // Appended out of order; appending the same entry twice (a retry) keeps one.
      for (const e of [...entries].reverse()) await ctx.store.appendAudit(e);
      await ctx.store.appendAudit(entries[0]!);
    });

    it('lists appended entries newest first', async () => {
      const page = await ctx.store.listAudit({ since: base, until: base + 1000, limit: 1000 });
      expect(page.items).toEqual(newestFirst(entries));
      expect(page.next).toBeUndefined();
    });

    it('filters by topic', async () => {
      const got = await ctx.store.listAudit({ topic: a, limit: 1000 });
      expect(got.items).toEqual(newestFirst(entries.filter((e) => e.topic === a)));
    });

    it('filters by time: since is inclusive, until exclusive', async () => {
      const since = base + 30;
      const until = base + 90;
      const got = await ctx.store.listAudit({ since, until, limit: 1000 });
      expect(got.items).toEqual(newestFirst(entries.filter(inRange(since, until))));
      expect(got.items.some((e) => e.at === since)).toBe(true);
      expect(got.items.some((e) => e.at === until)).toBe(false);
      const topicAndTime = await ctx.store.listAudit({ topic: b, since, until });
      expect(topicAndTime.items).toEqual(newestFirst(entries.filter((e) => e.topic === b).filter(inRange(since, until))));
    });

    it('pages with a cursor, ties included, without duplicates or gaps', async () => {
      const pages = await allPages((cursor) => ctx.store.listAudit({ since: base, until: base + 1000, limit: 4, cursor }), 4);
      expect(pages.flat()).toEqual(newestFirst(entries));
      expect(pages.length).toBeGreaterThanOrEqual(8);
      const byTopic = await allPages((cursor) => ctx.store.listAudit({ topic: a, limit: 3, cursor }), 3);
      expect(byTopic.flat()).toEqual(newestFirst(entries.filter((e) => e.topic === a)));
    });
  });

  describe('fleet reports', () => {
    const report = (topic: string, instance: string, patch: Partial<FleetReport> = {}): FleetReport => ({
      topic,
      instance,
      identity: { application: 'checkout', cluster: 'checkout-main', region: 'eu-west-1', instance },
      version: 3,
      reportedAt: T0,
      ...patch,
    });
    const byInstance = (x: FleetReport, y: FleetReport): number => x.instance.localeCompare(y.instance);

    it('upserts on (topic, instance) and lists by topic', async () => {
      const topic = uniqueTopic('fleet');
      const other = uniqueTopic('fleet-other');
      const first = [
        report(topic, 'i-1'),
        report(topic, 'i-2', { failedVersion: 4, error: 'decode failed: unexpected token' }),
        report(topic, 'i-3', { version: 0 }),
        report(other, 'i-1'),
      ];
      await ctx.store.putFleetReports(first);
      expect([...(await ctx.store.listFleetReports(topic))].sort(byInstance)).toEqual(first.slice(0, 3));
      // i-2 recovered: its failure fields are gone after the upsert.
      const i2 = report(topic, 'i-2', { version: 4, reportedAt: T0 + 1000 });
      await ctx.store.putFleetReports([i2]);
      const after = [...(await ctx.store.listFleetReports(topic))].sort(byInstance);
      expect(after).toEqual([first[0], i2, first[2]]);
      expect(after[1]?.failedVersion ?? null).toBeNull();
      expect(await ctx.store.listFleetReports(other)).toEqual([first[3]]);
      expect(await ctx.store.listFleetReports(uniqueTopic('fleet-none'))).toEqual([]);
      await ctx.store.putFleetReports([]);
    });

    it('filters by since (inclusive)', async () => {
      const topic = uniqueTopic('fleet-since');
      const reports = [0, 1000, 2000, 3000].map((d, i) => report(topic, `i-${i}`, { reportedAt: T0 + d }));
      await ctx.store.putFleetReports(reports);
      expect([...(await ctx.store.listFleetReports(topic, T0 + 1000))].sort(byInstance)).toEqual(reports.slice(1));
      expect(await ctx.store.listFleetReports(topic, T0 + 3001)).toEqual([]);
      expect(await ctx.store.listFleetReports(topic)).toHaveLength(4);
    });
  });
}

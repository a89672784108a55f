/**
 * The MetadataStore contract suite: the same assertions for every adapter (embedded,
 * Cassandra, any fake), so adapters cannot drift. An adapter's `*.int.test.ts` calls
 *
 *   describeMetadataStoreContract('embedded', async (opts) => {
 *     // a fresh, isolated database (file / keyspace), migrated
 *     return { store, reopen: (o) => …another instance on the same database…, cleanup };
 *   });
 *
 * `make` runs once per test file (in beforeAll); tests use unique topic names, so they
 * share the database without seeing each other. `reopen` stands for another replica or
 * process (concurrency, leases, faults): for the embedded store it opens another SQLite
 * connection on the same file, for Cassandra another driver session on the same keyspace.
 *
 * Semantics the suite pins down where the port's comments leave a choice:
 * - Reads of unknown things return undefined / [] / 0; writes that reference an unknown
 *   topic or version (commitVersion, putRelease, putPin, markVersionDeleted, createRun,
 *   withdrawRelease, updateRun, updateTopic) are NOT_FOUND.
 * - Optional fields absent on write are absent on read (never `null`), and an update
 *   (updateTopic, updateRun) replaces the whole record, clearing fields left out.
 * - markVersionDeleted and withdrawRelease keep the first time when repeated.
 * - The holder re-acquiring its own live lease keeps its epoch; any change of hands (after
 *   release or expiry, even back to an earlier owner) gets a higher epoch.
 * - listAudit's `since` is inclusive, `until` exclusive; appendAudit is idempotent on id.
 * - The change feed is at-least-once (see `changeFeedRepeatWindowMs`).
 * - listReleases, listPins, listActiveRuns, listFleetReports and getVersions have no
 *   promised order.
 */
import { afterAll, beforeAll, describe } from 'vitest';
import { auditAndFleetContract } from './contract/audit-fleet.ts';
import { changesContract } from './contract/changes.ts';
import { concurrencyContract } from './contract/concurrency.ts';
import { ContractContext } from './contract/harness.ts';
import type { MakeMetadataStore } from './contract/harness.ts';
import { leasesContract } from './contract/leases.ts';
import { releasesAndPinsContract } from './contract/releases-pins.ts';
import { runsContract } from './contract/runs.ts';
import { stampsContract } from './contract/stamps.ts';
import { tokensContract } from './contract/tokens.ts';
import { topicsContract } from './contract/topics.ts';
import { validationContract } from './contract/validation.ts';
import { versionsContract } from './contract/versions.ts';

export type { MakeMetadataStore, MakeStoreOptions, MetadataStoreHarness } from './contract/harness.ts';
export type { MetadataStoreFaults } from './faults.ts';

export function describeMetadataStoreContract(adapterName: string, make: MakeMetadataStore): void {
  describe(`MetadataStore contract [${adapterName}]`, () => {
    const ctx = new ContractContext();

    beforeAll(async () => {
      ctx.harness = await make();
    });
    afterAll(async () => {
      let harness;
      try {
        harness = ctx.harness;
      } catch {
        return; // make() failed; beforeAll already reported it
      }
      ctx.harness = undefined;
      await harness.cleanup();
    });

    topicsContract(ctx);
    versionsContract(ctx);
    concurrencyContract(ctx);
    releasesAndPinsContract(ctx);
    changesContract(ctx);
    stampsContract(ctx);
    runsContract(ctx);
    leasesContract(ctx);
    auditAndFleetContract(ctx);
    tokensContract(ctx);
    validationContract(ctx);
  });
}

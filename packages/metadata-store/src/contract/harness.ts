import type { MetadataStore } from '@quire/core';
import type { MetadataStoreFaults } from '../faults.ts';

export interface MakeStoreOptions {
  faults?: MetadataStoreFaults;
}

/** What an adapter's test file hands the contract suite. */
export interface MetadataStoreHarness {
  /** A migrated store on a fresh, isolated database (file / keyspace) of its own. */
  store: MetadataStore;
  /**
   * Another independent, migrated instance (its own connection / driver session) on the
   * SAME database as `store`, standing for another replica or process. The suite closes
   * the instances it reopens; `cleanup` may close any it left open.
   */
  reopen(opts?: MakeStoreOptions): Promise<MetadataStore>;
  /** Close `store` and drop the database (delete the file / keyspace). */
  cleanup(): Promise<void>;
  /**
   * How long after a change its cursor may deliver it again (the adapter's documented
   * overlap, e.g. for clock skew between writers). 0 (default) = never repeated; the
   * suite then checks strictly that a cursor does not repeat what it already returned.
   */
  changeFeedRepeatWindowMs?: number;
}

export type MakeMetadataStore = (opts?: MakeStoreOptions) => Promise<MetadataStoreHarness>;

/** Lets the section files reach the harness made in `beforeAll`. */
export class ContractContext {
  #harness: MetadataStoreHarness | undefined;

  set harness(h: MetadataStoreHarness | undefined) {
    this.#harness = h;
  }
  get harness(): MetadataStoreHarness {
    if (this.#harness === undefined) throw new Error('the contract harness is not ready (make() failed in beforeAll?)');
    return this.#harness;
  }
  get store(): MetadataStore {
    return this.harness.store;
  }

  /** Run `fn` with `n` extra instances on the same database, closing them afterwards. */
  async withInstances<T>(n: number, fn: (stores: MetadataStore[]) => Promise<T>, opts?: MakeStoreOptions): Promise<T> {
    const stores: MetadataStore[] = [];
    try {
      for (let i = 0; i < n; i++) stores.push(await this.harness.reopen(opts));
      return await fn(stores);
    } finally {
      await Promise.all(stores.map((s) => s.close()));
    }
  }
}

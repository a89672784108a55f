/**
 * The orphan sweep. A publish uploads its bytes to `topics/<topic>/<publishId>[.<suffix>]`
 * in every chosen region before it commits the version; a crash (or a lost store) between
 * the two leaves objects no version points at. The scheduler's leader runs this sweep now
 * and then: in every region it lists the objects under `topics/`, and deletes each one
 * that is older than the grace period and that no version of its topic references
 * (a version marked deleted does not count: retention removes its objects, and the sweep
 * finishes that job when retention's own delete failed).
 *
 * Order matters: objects are listed first, the versions after, so a version committed
 * while the sweep runs is seen. The grace period must be longer than the longest
 * upload → commit (an SDK upload straight to S3 before `registerExisting` included):
 * an object younger than it is never touched. Fallback snapshots live under
 * `snapshots/`, never swept.
 */
import type { BlobStore, Clock, MetadataStore } from '@quire/core';
import { DATA_KEY_PREFIX, systemClock, topicOfDataKey } from '@quire/core';

export interface OrphanSweepOptions {
  store: MetadataStore;
  blobs: BlobStore;
  clock?: Clock;
  /** Objects younger than this are left alone (default 1 h). */
  graceMs?: number;
  onError?: (err: unknown, what: string) => void;
}

export interface SweepResult {
  /** Objects looked at, over every region. */
  scanned: number;
  /** Deleted orphans, as `region:key`. */
  deleted: string[];
  /** Unreferenced objects still inside the grace period. */
  young: number;
  /** Regions or topics that could not be swept this time (tried again next time). */
  failures: { what: string; error: unknown }[];
}

export class OrphanSweeper {
  readonly #store: MetadataStore;
  readonly #blobs: BlobStore;
  readonly #clock: Clock;
  readonly #graceMs: number;
  readonly #onError: (err: unknown, what: string) => void;

  constructor(options: OrphanSweepOptions) {
    this.#store = options.store;
    this.#blobs = options.blobs;
    this.#clock = options.clock ?? systemClock;
    this.#graceMs = options.graceMs ?? 3_600_000;
    this.#onError = options.onError ?? (() => {});
  }

  get graceMs(): number {
    return this.#graceMs;
  }

  /** One pass over every region. */
  async sweep(): Promise<SweepResult> {
    const result: SweepResult = { scanned: 0, deleted: [], young: 0, failures: [] };
    const cutoff = this.#clock.now() - this.#graceMs;
    // 1. Candidates: objects under topics/ older than the grace period, per topic.
    const old = new Map<string, { region: string; key: string }[]>();
    const young = new Map<string, string[]>();
    for (const region of this.#blobs.regions) {
      try {
        for await (const o of this.#blobs.list(DATA_KEY_PREFIX, region)) {
          result.scanned++;
          const topic = topicOfDataKey(o.key);
          if (topic === undefined) continue;
          if (o.lastModified > cutoff) {
            young.set(topic, [...(young.get(topic) ?? []), o.key]);
            continue;
          }
          let list = old.get(topic);
          if (list === undefined) old.set(topic, (list = []));
          list.push({ region, key: o.key });
        }
      } catch (error) {
        result.failures.push({ what: `listing ${region}`, error });
        this.#onError(error, `orphan sweep: listing region ${region}`);
      }
    }
    // 2. What the versions reference, read after the listing (a commit meanwhile is seen).
    for (const [topic, objects] of old) {
      let referenced: Set<string>;
      try {
        referenced = await this.#referencedKeys(topic);
      } catch (error) {
        result.failures.push({ what: `versions of ${topic}`, error });
        this.#onError(error, `orphan sweep: versions of ${topic}`);
        continue;
      }
      for (const o of objects) {
        if (referenced.has(o.key)) continue;
        try {
          await this.#blobs.delete(o.key, [o.region]);
          result.deleted.push(`${o.region}:${o.key}`);
        } catch (error) {
          result.failures.push({ what: `deleting ${o.region}:${o.key}`, error });
          this.#onError(error, `orphan sweep: deleting ${o.region}:${o.key}`);
        }
      }
    }
    // Young objects that no version references (reported only, for the operator).
    for (const [topic, keys] of young) {
      const referenced = await this.#referencedKeys(topic).catch(() => new Set(keys));
      result.young += keys.filter((k) => !referenced.has(k)).length;
    }
    return result;
  }

  /** Keys of every live (not deleted) version of `topic` stored in S3, in any region. */
  async #referencedKeys(topic: string): Promise<Set<string>> {
    const keys = new Set<string>();
    let cursor: string | undefined;
    do {
      const page = await this.#store.listVersions(topic, { limit: 500, order: 'asc', ...(cursor === undefined ? {} : { cursor }) });
      for (const v of page.items) {
        if (v.deletedAt !== undefined || v.pointer.kind !== 's3') continue;
        for (const l of v.pointer.locations) keys.add(l.key);
      }
      cursor = page.next;
    } while (cursor !== undefined);
    return keys;
  }
}

/**
 * Fallback snapshots: one object per topic, `snapshots/<topic>.json`, in every blob
 * region, holding everything a client needs to pick its version and find the data when
 * the consume service cannot be reached (format `quire.snapshot/1`, see
 * `docs/snapshot-format.md`; read with `resolutionStateFromSnapshot` from `@quire/core`).
 * The scheduler's leader writes them for the topics the change feed names and, now and
 * then, for every topic.
 */
import { SNAPSHOT_FORMAT, SNAPSHOT_INLINE_MAX_BYTES, snapshotKey, systemClock } from '@quire/core';
import type { BlobStore, Clock, MetadataStore, SnapshotTopicSettings, Topic, TopicSnapshot } from '@quire/core';

export interface SnapshotWriterOptions {
  store: MetadataStore;
  blobs: BlobStore;
  clock?: Clock;
}

export class SnapshotWriter {
  readonly #store: MetadataStore;
  readonly #blobs: BlobStore;
  readonly #clock: Clock;
  #cursor: string | undefined;

  constructor(options: SnapshotWriterOptions) {
    this.#store = options.store;
    this.#blobs = options.blobs;
    this.#clock = options.clock ?? systemClock;
  }

  /** The snapshot of a topic as it is now; undefined when the topic does not exist. */
  async build(topicName: string): Promise<TopicSnapshot | undefined> {
    const topic = await this.#store.getTopic(topicName);
    if (topic === undefined) return undefined;
    const [releases, pins] = await Promise.all([this.#store.listReleases(topicName), this.#store.listPins(topicName)]);
    const activeReleases = releases.filter((r) => r.withdrawnAt === undefined);
    const activePins = pins.filter((p) => p.unpinnedAt === undefined);
    const referenced = [...new Set([...activeReleases.map((r) => r.version), ...activePins.map((p) => p.version)])].sort((a, b) => a - b);
    const versions = referenced.length === 0 ? [] : await this.#store.getVersions(topicName, referenced);
    const inline: Record<string, string> = {};
    for (const v of versions) {
      if (v.pointer.kind !== 'inline' || v.deletedAt !== undefined || v.size > SNAPSHOT_INLINE_MAX_BYTES) continue;
      const bytes = await this.#store.getInlineData(topicName, v.pointer.blobId);
      if (bytes !== undefined) inline[String(v.version)] = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');
    }
    return {
      format: SNAPSHOT_FORMAT,
      topic: topicName,
      writtenAt: this.#clock.now(),
      topicSettings: settingsOf(topic),
      releases: activeReleases,
      pins: activePins,
      versions: versions.sort((a, b) => a.version - b.version),
      inline,
    };
  }

  /** Write (or, for a deleted topic, remove) a topic's snapshot in every region. */
  async write(topicName: string): Promise<TopicSnapshot | undefined> {
    const snapshot = await this.build(topicName);
    const key = snapshotKey(topicName);
    if (snapshot === undefined) {
      await this.#blobs.delete(key);
      return undefined;
    }
    await this.#blobs.put(key, Buffer.from(JSON.stringify(snapshot)), { contentType: 'application/json' });
    return snapshot;
  }

  /** Every topic's snapshot. Returns how many were written. */
  async writeAll(): Promise<number> {
    let cursor: string | undefined;
    let n = 0;
    do {
      const page = await this.#store.listTopics(cursor === undefined ? { limit: 200 } : { limit: 200, cursor });
      for (const t of page.items) {
        await this.write(t.name);
        n++;
      }
      cursor = page.next;
    } while (cursor !== undefined);
    return n;
  }

  /**
   * The topics changed since the last call (change feed), each snapshotted once. The first
   * call only takes a starting point (callers write everything once when they start).
   */
  async writeChanged(): Promise<string[]> {
    const { changes, cursor } = await this.#store.changesSince(this.#cursor);
    const first = this.#cursor === undefined;
    this.#cursor = cursor;
    if (first) return [];
    const topics = [...new Set(changes.map((c) => c.topic))];
    for (const t of topics) await this.write(t);
    return topics;
  }

  /** Forget the change-feed position (a new leader term starts from a full write). */
  resetCursor(): void {
    this.#cursor = undefined;
  }
}

function settingsOf(t: Topic): SnapshotTopicSettings {
  const s: SnapshotTopicSettings = {
    owner: t.owner,
    description: t.description,
    retention: t.retention,
    inlineThresholdBytes: t.inlineThresholdBytes,
    revision: t.revision,
  };
  if (t.rolloutPlan !== undefined) s.rolloutPlan = t.rolloutPlan;
  if (t.allowedApplications !== undefined) s.allowedApplications = t.allowedApplications;
  return s;
}

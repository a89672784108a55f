import { Code, QuireError } from './errors.ts';
import type { Pin, Release, RetentionPolicy, RolloutPlan, VersionRecord } from './model.ts';
import type { ResolutionState } from './resolve.ts';

/**
 * The fallback snapshot of one topic (`snapshots/<topic>.json` in every blob region),
 * written by the publish service's scheduler: everything a client needs to pick its
 * version and find the data when the consume service cannot be reached. The format is
 * versioned (`format`); see `docs/snapshot-format.md`. A reader refuses a format it does
 * not know rather than guessing.
 */
export const SNAPSHOT_FORMAT = 'quire.snapshot/1';

/** Blob key of a topic's snapshot. */
export function snapshotKey(topic: string): string {
  return `snapshots/${topic}.json`;
}

/** Folder of every payload object in the blob store (the orphan sweep lists it; snapshots are elsewhere). */
export const DATA_KEY_PREFIX = 'topics/';

/**
 * Blob key of a payload: `topics/<topic>/<publishId>`, or `…/<publishId>.<suffix>` when one
 * publishId may upload more than once (a retried publish, a prepared direct upload). A
 * publishId has no "." (`validatePublishId`), so the suffix is unambiguous.
 */
export function dataKey(topic: string, publishId: string, suffix?: string): string {
  return `${DATA_KEY_PREFIX}${topic}/${publishId}${suffix === undefined ? '' : `.${suffix}`}`;
}

/** The topic of a payload key made by `dataKey`; undefined for any other shape. */
export function topicOfDataKey(key: string): string | undefined {
  if (!key.startsWith(DATA_KEY_PREFIX)) return undefined;
  const rest = key.slice(DATA_KEY_PREFIX.length);
  const slash = rest.indexOf('/');
  if (slash <= 0 || slash === rest.length - 1) return undefined;
  return rest.slice(0, slash);
}

/** Largest version whose bytes a snapshot carries inline (base64). */
export const SNAPSHOT_INLINE_MAX_BYTES = 64 * 1024;

export interface SnapshotTopicSettings {
  owner: string;
  description: string;
  retention: RetentionPolicy;
  inlineThresholdBytes: number;
  rolloutPlan?: RolloutPlan;
  allowedApplications?: string[];
  revision: number;
}

export interface TopicSnapshot {
  format: typeof SNAPSHOT_FORMAT;
  topic: string;
  /** When the publish service wrote it (ms since the epoch). */
  writtenAt: number;
  topicSettings: SnapshotTopicSettings;
  /** Active (not withdrawn) releases. */
  releases: Release[];
  /** Active (not unpinned) pins. */
  pins: Pin[];
  /** Descriptor of every version an active release or pin points at (S3 locations included). */
  versions: VersionRecord[];
  /** Bytes of inline versions up to `SNAPSHOT_INLINE_MAX_BYTES`, base64, by version number. */
  inline: Record<string, string>;
}

/**
 * The `ResolutionState` a snapshot describes, for `resolveVersion` / `candidateVersions`:
 * the same rules as the consume service's cache (a referenced version whose descriptor is
 * deleted or missing is never handed out). INVALID_ARGUMENT for an unknown format or a
 * malformed snapshot.
 */
export function resolutionStateFromSnapshot(snapshot: unknown): ResolutionState {
  if (typeof snapshot !== 'object' || snapshot === null || Array.isArray(snapshot)) {
    throw QuireError.invalid('snapshot', 'must be an object');
  }
  const s = snapshot as Partial<TopicSnapshot>;
  if (s.format !== SNAPSHOT_FORMAT) {
    throw new QuireError(Code.INVALID_ARGUMENT, `snapshot.format: ${JSON.stringify(s.format)} is not supported (expected ${SNAPSHOT_FORMAT})`, {
      field: 'snapshot.format',
    });
  }
  for (const field of ['releases', 'pins', 'versions'] as const) {
    if (!Array.isArray(s[field])) throw QuireError.invalid(`snapshot.${field}`, 'must be a list');
  }
  const releases = (s.releases as Release[]).filter((r) => r.withdrawnAt === undefined);
  const pins = (s.pins as Pin[]).filter((p) => p.unpinnedAt === undefined);
  const versions = new Map((s.versions as VersionRecord[]).map((v) => [v.version, v]));
  const deleted = new Map<number, number>();
  for (const v of versions.values()) if (v.deletedAt !== undefined) deleted.set(v.version, v.deletedAt);
  for (const n of [...releases.map((r) => r.version), ...pins.map((p) => p.version)]) {
    if (!versions.has(n)) deleted.set(n, 0);
  }
  return { releases, pins, deleted };
}

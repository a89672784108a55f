/**
 * The fallback path when no consume service answers: the topic's snapshot
 * (`snapshots/<topic>.json`, format `quire.snapshot/1`, docs/snapshot-format.md) is read
 * from S3 (own region first, then the others) and the version is chosen by the very
 * functions the consume service uses: `resolutionStateFromSnapshot` + `candidateVersions`
 * from `@quire/core`.
 */
import { Code, QuireError, candidateVersions, resolutionStateFromSnapshot, resolveVersion, scopeKey, snapshotKey } from '@quire/core';
import type { ConsumerIdentity, Release, ResolutionState, Scope, TopicSnapshot, VersionRecord } from '@quire/core';
import type { S3Downloader } from './download.ts';
import type { VersionInfo } from './mapping.ts';

export interface SnapshotCandidate {
  descriptor: VersionInfo;
  /** The bytes when the snapshot carries them (inline versions up to 64 KiB). */
  inline?: Uint8Array;
  via: 'pin' | 'release';
}

/** Parse a snapshot object's bytes; INVALID_ARGUMENT when it is not a snapshot of `topic` we can read. */
export function parseSnapshot(bytes: Uint8Array, topic: string): { snapshot: TopicSnapshot; state: ResolutionState } {
  let raw: unknown;
  try {
    raw = JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8'));
  } catch {
    throw new QuireError(Code.DATA_LOSS, `snapshot of ${topic} is not JSON`, { field: 'snapshot' });
  }
  const state = resolutionStateFromSnapshot(raw);
  const snapshot = raw as TopicSnapshot;
  if (snapshot.topic !== topic) throw QuireError.invalid('snapshot.topic', `is ${JSON.stringify(snapshot.topic)}, expected ${topic}`);
  return { snapshot, state };
}

/** The scopes of a version's active releases (what `VersionInfo.scopes` holds from the service). */
function scopesOf(releases: readonly Release[], version: number): Scope[] {
  return releases.filter((r) => r.version === version).map((r) => ({ ...r.scope }));
}

function infoOf(v: VersionRecord, releases: readonly Release[]): VersionInfo {
  return { ...v, metadata: { ...v.metadata }, scopes: scopesOf(releases, v.version) };
}

/**
 * The versions this consumer may run according to a snapshot, best first (the pinned one
 * alone, or every released one newest first), each with its descriptor and, when the
 * snapshot carries them, its bytes. Deleted or undescribed versions never appear.
 */
export function snapshotCandidates(snapshot: TopicSnapshot, state: ResolutionState, identity: ConsumerIdentity): SnapshotCandidate[] {
  const byNumber = new Map(snapshot.versions.map((v) => [v.version, v]));
  const via = resolveVersion(state, identity)?.via ?? 'release';
  const out: SnapshotCandidate[] = [];
  for (const n of candidateVersions(state, identity)) {
    const v = byNumber.get(n);
    if (v === undefined || v.deletedAt !== undefined) continue;
    const c: SnapshotCandidate = { descriptor: infoOf(v, snapshot.releases), via };
    const b64 = snapshot.inline?.[String(n)];
    if (typeof b64 === 'string') c.inline = new Uint8Array(Buffer.from(b64, 'base64'));
    out.push(c);
  }
  return out;
}

/** Read `topic`'s snapshot from the first region (own first) that has a readable one. */
export async function readSnapshot(s3: S3Downloader, topic: string): Promise<{ snapshot: TopicSnapshot; state: ResolutionState; region: string }> {
  const { value, region } = await s3.readFromBuckets(snapshotKey(topic), `snapshot of ${topic}`, (bytes) => parseSnapshot(bytes, topic));
  return { ...value, region };
}

/**
 * The walk-back when a subscription holds nothing and its newest version failed: the
 * versions the history lists (each with the scopes of its active releases) as a
 * `ResolutionState`, so `candidateVersions` — the consume service's own function — picks
 * the older versions meant for this consumer, newest first, below `failed`.
 */
export function historyCandidates(versions: readonly VersionInfo[], identity: ConsumerIdentity, failed: number): number[] {
  const releases: Release[] = versions.flatMap((v) =>
    v.scopes.map((scope) => ({ topic: v.topic, version: v.version, scope, scopeKey: scopeKey(scope), releasedAt: 0, releasedBy: '' })),
  );
  const deleted = new Map<number, number>();
  for (const v of versions) if (v.deletedAt !== undefined) deleted.set(v.version, v.deletedAt);
  return candidateVersions({ releases, pins: [], deleted }, identity).filter((n) => n < failed);
}

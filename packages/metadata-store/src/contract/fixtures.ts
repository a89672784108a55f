import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { expect } from 'vitest';
import { QuireError, scopeKey } from '@quire/core';
import type { Code, NewVersion, Page, Pin, Release, RolloutRun, Scope, Topic } from '@quire/core';

/** A tag per test-file run, so topic names never collide with an earlier run's. */
const RUN_TAG = `c${randomBytes(4).toString('hex')}`;
let counter = 0;

/** A fresh topic name: `c1a2b3c4d.<label>-<n>`. `label` is lowercase a-z, 0-9 and "-". */
export function uniqueTopic(label: string): string {
  counter += 1;
  return `${RUN_TAG}.${label}-${counter}`;
}

/** A fresh id (publishId, pinId, runId, lease name, …). */
export function uniqueId(label: string): string {
  return `${label}-${randomUUID()}`;
}

/** A time base for records the tests write (ms since the epoch). */
export const T0 = Date.now();

export function sha256(bytes: Uint8Array | string): string {
  return createHash('sha256').update(bytes).digest('hex');
}

export function topicFixture(name: string, patch: Partial<Topic> = {}): Topic {
  return {
    name,
    owner: 'team-contract',
    description: `contract test topic ${name}`,
    retention: { keepLast: 10 },
    inlineThresholdBytes: 1024 * 1024,
    createdAt: T0,
    updatedAt: T0,
    revision: 0,
    ...patch,
  };
}

/** A version whose bytes live in S3 (two regions). */
export function s3Version(topic: string, patch: Partial<NewVersion> = {}): NewVersion {
  const publishId = patch.publishId ?? uniqueId('pub');
  return {
    topic,
    publishId,
    createdAt: T0,
    publisher: 'contract-publisher',
    metadata: { source: 'contract' },
    contentType: 'application/json',
    size: 42,
    sha256: sha256(publishId),
    pointer: {
      kind: 's3',
      locations: [
        { region: 'us-east-1', bucket: 'quire-us-east-1', key: `${topic}/${publishId}` },
        { region: 'eu-west-1', bucket: 'quire-eu-west-1', key: `${topic}/${publishId}` },
      ],
    },
    ...patch,
  };
}

/** A version whose bytes are stored inline, and those bytes. */
export function inlineVersion(topic: string, bytes: Uint8Array, patch: Partial<NewVersion> = {}): [NewVersion, Uint8Array] {
  return [
    {
      topic,
      publishId: uniqueId('pub'),
      createdAt: T0,
      publisher: 'contract-publisher',
      metadata: {},
      contentType: 'application/octet-stream',
      size: bytes.byteLength,
      sha256: sha256(bytes),
      pointer: { kind: 'inline', blobId: uniqueId('blob') },
      ...patch,
    },
    bytes,
  ];
}

export function releaseFixture(topic: string, version: number, scope: Scope, patch: Partial<Release> = {}): Release {
  return { topic, version, scope, scopeKey: scopeKey(scope), releasedAt: T0, releasedBy: 'alice', ...patch };
}

export function pinFixture(topic: string, version: number, scope: Scope, patch: Partial<Pin> = {}): Pin {
  return {
    topic,
    pinId: uniqueId('pin'),
    scope,
    scopeKey: scopeKey(scope),
    version,
    reason: 'known good',
    pinnedBy: 'alice',
    pinnedAt: T0,
    ...patch,
  };
}

export function runFixture(topic: string, version: number, patch: Partial<RolloutRun> = {}): RolloutRun {
  return {
    topic,
    runId: uniqueId('run'),
    version,
    plan: {
      stages: [
        { name: 'canary', scope: { cluster: 'api-canary' }, bakeMs: 0 },
        { name: 'one region', scope: { region: 'eu-west-1' }, bakeMs: 600_000 },
        { name: 'global', scope: {}, bakeMs: 1_800_000 },
      ],
      health: { maxFailureRatio: 0.05, minInstances: 3, action: 'rollback' },
    },
    status: 'running',
    stageIndex: -1,
    stageReleasedAt: T0,
    createdAt: T0,
    updatedAt: T0,
    startedBy: 'alice',
    revision: 0,
    ...patch,
  };
}

/** Await `promise` and check it fails with a QuireError of `code` (and `field`, when given). */
export async function expectQuireError(promise: Promise<unknown>, code: Code, field?: string): Promise<QuireError> {
  let caught: unknown;
  try {
    await promise;
  } catch (err) {
    caught = err;
  }
  expect(caught, `expected a QuireError ${code}, but the call succeeded`).toBeDefined();
  expect(caught).toBeInstanceOf(QuireError);
  const err = caught as QuireError;
  expect({ code: err.code, message: err.message }).toMatchObject({ code });
  if (field !== undefined) expect(err.field, `field of: ${err.message}`).toBe(field);
  return err;
}

/** Follow cursors to the end; checks every page respects `limit`. */
export async function allPages<T>(fetch: (cursor: string | undefined) => Promise<Page<T>>, limit: number, maxPages = 10_000): Promise<T[][]> {
  const pages: T[][] = [];
  let cursor: string | undefined;
  for (let i = 0; i < maxPages; i++) {
    const page = await fetch(cursor);
    expect(page.items.length).toBeLessThanOrEqual(limit);
    pages.push(page.items);
    if (page.next === undefined) return pages;
    expect(page.next).not.toBe(cursor);
    cursor = page.next;
  }
  throw new Error(`more than ${maxPages} pages: the cursor does not advance`);
}

export function range(from: number, to: number): number[] {
  const out: number[] = [];
  for (let i = from; i <= to; i++) out.push(i);
  return out;
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

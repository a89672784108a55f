// The gRPC API end to end: the app from its composition root (embedded metadata store,
// blobs in the two s3proxy regions, port 0) and a grpc-js client built from the same contract, good input and bad.
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { uniqueBucket } from '@quire/test-servers';
import { loadQuireProto } from '@quire/proto';
import type { PbPublishChunk, PbPublishResponseOutput, PublishServiceClient } from '@quire/proto';
import { createPublishApp, type PublishApp } from './app.ts';
import { loadConfig } from './config.ts';
import { FIELD_TRAILER } from '@quire/service-kit';

let dir: string;

/** The two s3proxy regions, each with a bucket of this file's own. */
function s3Regions(): string {
  return JSON.stringify(inject('quireServers').s3.regions.map((r) => ({ ...r, bucket: uniqueBucket('grpc-' + r.name) })));
}
let app: PublishApp;
let client: PublishServiceClient;
const MiB = 1024 * 1024;
const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'quire-grpc-'));
  app = await createPublishApp(
    loadConfig({ QUIRE_DATA_DIR: dir,
      QUIRE_S3_REGIONS: s3Regions(), QUIRE_PUBLISH_HTTP_PORT: '0', QUIRE_PUBLISH_GRPC_PORT: '0', QUIRE_LOG_LEVEL: 'silent' }),
  );
  const Ctor = loadQuireProto().quire.v1.PublishService;
  client = new Ctor(app.grpcAddress, grpc.credentials.createInsecure());
});

afterAll(async () => {
  client?.close();
  await app?.close();
  rmSync(dir, { recursive: true, force: true });
});

function meta(actor = 'alice'): grpc.Metadata {
  const m = new grpc.Metadata();
  m.set('x-quire-actor', actor);
  return m;
}

type Method = (req: never, md: grpc.Metadata, cb: (err: grpc.ServiceError | null, res?: unknown) => void) => unknown;

/** Call a unary method; resolves with the response or rejects with the ServiceError. */
function unary<T>(name: string, req: unknown, actor = 'alice'): Promise<T> {
  return new Promise((resolve, reject) => {
    const fn = (client as unknown as Record<string, Method>)[name] as Method;
    fn.call(client, req as never, meta(actor), (err, res) => (err ? reject(err) : resolve(res as T)));
  });
}

async function expectStatus(p: Promise<unknown>, code: grpc.status, field?: string): Promise<void> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e as grpc.ServiceError,
  );
  expect(err, 'expected the call to fail').toBeDefined();
  expect({ code: err?.code, field: err?.metadata.get(FIELD_TRAILER)[0] }).toEqual({ code, field });
}

function publishStream(chunks: PbPublishChunk[]): Promise<PbPublishResponseOutput> {
  return new Promise((resolve, reject) => {
    const call = client.PublishStream(meta(), (err, res) => (err ? reject(err) : resolve(res as PbPublishResponseOutput)));
    call.on('error', () => {}); // the callback reports it
    for (const c of chunks) call.write(c);
    call.end();
  });
}

describe('PublishService over gRPC', () => {
  it('creates, gets, lists and updates topics', async () => {
    const t = await unary<Record<string, unknown>>('CreateTopic', { topic: { name: 'grpc.topics', description: 'd', inlineThresholdBytes: 2048, retention: { keepLast: 4 } } });
    expect(t).toMatchObject({ name: 'grpc.topics', owner: 'alice', inlineThresholdBytes: '2048', revision: '1', headVersion: '0', retention: { keepLast: 4 } });
    const got = await unary<Record<string, unknown>>('GetTopic', { name: 'grpc.topics' });
    expect(got).toMatchObject({ name: 'grpc.topics', description: 'd' });
    const list = await unary<{ topics: Array<{ name: string }> }>('ListTopics', { prefix: 'grpc.' });
    expect(list.topics.map((x) => x.name)).toContain('grpc.topics');
    const upd = await unary<Record<string, unknown>>('UpdateTopic', { topic: { name: 'grpc.topics', description: 'new' }, updateMask: ['description'], expectedRevision: 1 });
    expect(upd).toMatchObject({ description: 'new', revision: '2', inlineThresholdBytes: '2048' });

    await expectStatus(unary('CreateTopic', { topic: { name: 'grpc.topics' } }), grpc.status.ALREADY_EXISTS, 'name');
    await expectStatus(unary('CreateTopic', {}), grpc.status.INVALID_ARGUMENT, 'topic');
    await expectStatus(unary('CreateTopic', { topic: { name: 'Bad Name' } }), grpc.status.INVALID_ARGUMENT, 'name');
    await expectStatus(unary('CreateTopic', { topic: { name: 'grpc.x', inlineThresholdBytes: 999_999_999 } }), grpc.status.INVALID_ARGUMENT, 'inlineThresholdBytes');
    await expectStatus(unary('GetTopic', { name: 'grpc.nope' }), grpc.status.NOT_FOUND, 'name');
    await expectStatus(unary('GetTopic', {}), grpc.status.INVALID_ARGUMENT, 'name');
    await expectStatus(unary('ListTopics', { limit: 5000 }), grpc.status.INVALID_ARGUMENT, 'limit');
    await expectStatus(unary('UpdateTopic', { topic: { name: 'grpc.topics', description: 'x' }, expectedRevision: 1 }), grpc.status.FAILED_PRECONDITION, 'expectedRevision');
    await expectStatus(unary('UpdateTopic', { topic: { name: 'grpc.topics' }, updateMask: ['bogus'] }), grpc.status.INVALID_ARGUMENT, 'updateMask');
    await expectStatus(unary('UpdateTopic', { topic: { name: 'grpc.nope', description: 'x' } }), grpc.status.NOT_FOUND, 'name');
  });

  it('publishes inline and streams a few MiB to the blob store', async () => {
    await unary('CreateTopic', { topic: { name: 'grpc.pub', inlineThresholdBytes: 1024 } });
    const small = await unary<PbPublishResponseOutput>('Publish', {
      options: { topic: 'grpc.pub', metadata: { k: 'v' }, contentType: 'text/plain', scopes: [{ attributes: { cluster: 'canary' } }] },
      data: Buffer.from('hello'),
    });
    expect(small.version).toMatchObject({ topic: 'grpc.pub', version: '1', size: '5', sha256: sha(Buffer.from('hello')), pointer: 'inline', metadata: { k: 'v' } });
    expect(small.version?.scopes).toEqual([{ attributes: { cluster: 'canary' } }]);

    const payload = randomBytes(3 * MiB + 3);
    const chunks: PbPublishChunk[] = [{ header: { topic: 'grpc.pub', contentType: 'application/x-bin', sha256: sha(payload), size: payload.length } }];
    for (let at = 0; at < payload.length; at += 256 * 1024) chunks.push({ data: payload.subarray(at, at + 256 * 1024) });
    const big = await publishStream(chunks);
    expect(big.version).toMatchObject({ version: '2', size: String(payload.length), sha256: sha(payload), pointer: 's3' });
    expect(big.version?.s3?.locations).toHaveLength(2);
    const data = await fetch(`${app.httpUrl}/v1/topics/grpc.pub/versions/2/data`);
    expect(sha(new Uint8Array(await data.arrayBuffer()))).toBe(sha(payload));

    // A stream that stays small goes inline.
    const tiny = await publishStream([{ header: { topic: 'grpc.pub' } }, { data: Buffer.from('ab') }, { data: Buffer.from('c') }]);
    expect(tiny.version).toMatchObject({ version: '3', size: '3', pointer: 'inline' });

    // Register the streamed object as a new version.
    const key = big.version?.s3?.locations[0]?.key as string;
    const reg = await unary<PbPublishResponseOutput>('CommitUploaded', {
      options: { topic: 'grpc.pub', contentType: 'application/x-bin' },
      locations: [{ region: 'region-a', key }],
    });
    expect(reg.version).toMatchObject({ version: '4', size: String(payload.length), sha256: sha(payload) });

    const rel = await unary<{ releases: Array<Record<string, unknown>> }>('Release', { topic: 'grpc.pub', version: 1, scopes: [{ attributes: { region: 'eu' } }], reason: 'widen' });
    expect(rel.releases).toMatchObject([{ version: '1', scope: { attributes: { region: 'eu' } }, releasedBy: 'alice' }]);
    const listed = await unary<{ releases: unknown[] }>('ListReleases', { topic: 'grpc.pub', version: 1 });
    expect(listed.releases).toHaveLength(2);

    const audit = await unary<{ entries: Array<{ action: string; detailsJson: string }> }>('ListAudit', { topic: 'grpc.pub' });
    expect(audit.entries.map((e) => e.action)).toEqual(['release', 'version.register', 'publish', 'publish', 'publish', 'topic.create']);
    expect(JSON.parse(audit.entries[0]?.detailsJson ?? '{}')).toMatchObject({ version: 1 });
  });

  it('answers INVALID_ARGUMENT / NOT_FOUND with the field, and writes nothing', async () => {
    await unary('CreateTopic', { topic: { name: 'grpc.bad', inlineThresholdBytes: 16 } });
    const ok = Buffer.from('x');
    await expectStatus(unary('Publish', { data: ok }), grpc.status.INVALID_ARGUMENT, 'options');
    await expectStatus(unary('Publish', { options: { topic: 'grpc.nope' }, data: ok }), grpc.status.NOT_FOUND, 'topic');
    await expectStatus(unary('Publish', { options: { topic: 'grpc.bad', metadata: { 'bad key': 'v' } }, data: ok }), grpc.status.INVALID_ARGUMENT, 'metadata.bad key');
    await expectStatus(unary('Publish', { options: { topic: 'grpc.bad', scopes: [{ attributes: { cluster: '' } }] }, data: ok }), grpc.status.INVALID_ARGUMENT, 'scopes[0].cluster');
    await expectStatus(unary('Publish', { options: { topic: 'grpc.bad', regions: ['mars'] }, data: ok }), grpc.status.INVALID_ARGUMENT, 'regions[0]');
    await expectStatus(unary('Publish', { options: { topic: 'grpc.bad', sha256: sha(Buffer.from('y')) }, data: randomBytes(1000) }), grpc.status.INVALID_ARGUMENT, 'sha256');
    await expectStatus(unary('Publish', { options: { topic: 'grpc.bad', size: 7 }, data: ok }), grpc.status.INVALID_ARGUMENT, 'size');
    await expectStatus(publishStream([{ data: ok }]), grpc.status.INVALID_ARGUMENT, 'header');
    await expectStatus(publishStream([]), grpc.status.INVALID_ARGUMENT, 'header');
    await expectStatus(publishStream([{ header: { topic: 'grpc.bad' } }, { header: { topic: 'grpc.bad' } }]), grpc.status.INVALID_ARGUMENT, 'header');
    await expectStatus(publishStream([{ header: { topic: 'grpc.nope' } }, { data: ok }]), grpc.status.NOT_FOUND, 'topic');
    await expectStatus(
      publishStream([{ header: { topic: 'grpc.bad', sha256: sha(Buffer.from('other')) } }, { data: randomBytes(MiB) }]),
      grpc.status.INVALID_ARGUMENT,
      'sha256',
    );
    await expectStatus(unary('CommitUploaded', { options: { topic: 'grpc.bad' }, locations: [{ region: 'region-a', key: 'missing/obj' }] }), grpc.status.NOT_FOUND, 'locations[0]');
    await expectStatus(unary('CommitUploaded', { options: { topic: 'grpc.bad' }, locations: [] }), grpc.status.INVALID_ARGUMENT, 'locations');
    // A publishId the commit refuses is refused already when the upload is prepared.
    await expectStatus(unary('CommitUploaded', { options: { topic: 'grpc.bad', publishId: 'with.dot' }, locations: [{ region: 'region-a', key: 'missing/obj' }] }), grpc.status.INVALID_ARGUMENT, 'publishId');
    await expectStatus(unary('PrepareUpload', { topic: 'grpc.bad', publishId: 'with.dot' }), grpc.status.INVALID_ARGUMENT, 'publishId');
    await expectStatus(unary('Release', { topic: 'grpc.bad', version: 5 }), grpc.status.NOT_FOUND, 'version');
    await expectStatus(unary('Release', { topic: 'grpc.bad', version: 0 }), grpc.status.INVALID_ARGUMENT, 'version');
    await expectStatus(unary('Release', { topic: 'grpc.nope', version: 1 }), grpc.status.NOT_FOUND, 'topic');
    await expectStatus(unary('ListAudit', { topic: 'Bad!' }), grpc.status.INVALID_ARGUMENT, 'topic');
    await expectStatus(unary('Pin', { topic: 'grpc.bad', version: 1, reason: 'why' }), grpc.status.NOT_FOUND, 'version');

    const got = await unary<{ headVersion: string }>('GetTopic', { name: 'grpc.bad' });
    expect(got.headVersion).toBe('0');
    const audit = await unary<{ entries: Array<{ action: string }> }>('ListAudit', { topic: 'grpc.bad' });
    expect(audit.entries.map((e) => e.action)).toEqual(['topic.create']);
  });
});

describe('operator controls over gRPC', () => {
  it('Pin, ListPins, Unpin, Rollback, ListReleases, DeleteVersion, ListAudit filters', async () => {
    await unary('CreateTopic', { topic: { name: 'grpc.ops' } });
    for (const d of ['one', 'two', 'three']) await unary('Publish', { options: { topic: 'grpc.ops' }, data: Buffer.from(d) });

    const pinned = await unary<{ pin: Record<string, unknown> }>('Pin', { topic: 'grpc.ops', version: 1, scope: { attributes: { cluster: 'canary' } }, reason: 'bad 3' });
    expect(pinned.pin).toMatchObject({ version: '1', scope: { attributes: { cluster: 'canary' } }, reason: 'bad 3', pinnedBy: 'alice', unpinnedAt: '0' });
    const listed = await unary<{ pins: unknown[] }>('ListPins', { topic: 'grpc.ops' });
    expect(listed.pins).toHaveLength(1);
    const unpinned = await unary<{ pin: Record<string, unknown> }>('Unpin', { topic: 'grpc.ops', scope: { attributes: { cluster: 'canary' } }, reason: 'ok' }, 'bob');
    expect(unpinned.pin).toMatchObject({ version: '1', unpinnedBy: 'bob' });
    expect((await unary<{ pins: unknown[] }>('ListPins', { topic: 'grpc.ops' })).pins).toEqual([]);
    expect((await unary<{ pins: unknown[] }>('ListPins', { topic: 'grpc.ops', includeHistory: true })).pins).toHaveLength(1);

    const rolled = await unary<{ pin: Record<string, unknown> }>('Rollback', { topic: 'grpc.ops', reason: 'bad 3' });
    expect(rolled.pin).toMatchObject({ version: '2', scope: { attributes: {} } });
    await unary('Unpin', { topic: 'grpc.ops', reason: 'done' });

    await unary('Release', { topic: 'grpc.ops', version: 1, scopes: [{ attributes: { region: 'eu' } }] });
    const scopes = await unary<{ releases: Array<{ scope: unknown }> }>('ListReleases', { topic: 'grpc.ops', version: 1, includeWithdrawn: true });
    expect(scopes.releases.map((r) => r.scope)).toEqual([{ attributes: {} }, { attributes: { region: 'eu' } }]);
    // 1 is latest for region=eu: protected; once 2 is released there too, it may go.
    await expectStatus(unary('DeleteVersion', { topic: 'grpc.ops', version: 1, reason: 'x' }), grpc.status.FAILED_PRECONDITION, 'version');
    await unary('Release', { topic: 'grpc.ops', version: 2, scopes: [{ attributes: { region: 'eu' } }] });
    await unary('DeleteVersion', { topic: 'grpc.ops', version: 1, reason: 'leak' });
    const got = await fetch(`${app.httpUrl}/v1/topics/grpc.ops/versions/1`);
    expect(((await got.json()) as { version: { deletedAt?: number } }).version.deletedAt).toBeGreaterThan(0);

    const audit = await unary<{ entries: Array<{ action: string; actor: string }> }>('ListAudit', { topic: 'grpc.ops', actor: 'bob' });
    expect(audit.entries.map((e) => `${e.action}:${e.actor}`)).toEqual(['unpin:bob']);
    const deletes = await unary<{ entries: Array<{ reason: string }> }>('ListAudit', { topic: 'grpc.ops', action: 'version.delete' });
    expect(deletes.entries.map((e) => e.reason)).toEqual(['leak']);

    await expectStatus(unary('Pin', { topic: 'grpc.ops', version: 1, reason: 'x' }), grpc.status.FAILED_PRECONDITION, 'version');
    await expectStatus(unary('Pin', { topic: 'grpc.ops', version: 2 }), grpc.status.INVALID_ARGUMENT, 'reason');
    await expectStatus(unary('Unpin', { topic: 'grpc.ops', reason: 'x' }), grpc.status.NOT_FOUND, 'scope');
    await unary('CreateTopic', { topic: { name: 'grpc.once' } });
    await unary('Publish', { options: { topic: 'grpc.once' }, data: Buffer.from('only') });
    await expectStatus(unary('Rollback', { topic: 'grpc.once', reason: 'x' }), grpc.status.FAILED_PRECONDITION, 'scope');
    await expectStatus(unary('ListPins', { topic: 'grpc.nope' }), grpc.status.NOT_FOUND, 'topic');
    await expectStatus(unary('ListReleases', { topic: 'grpc.ops', version: 9 }), grpc.status.NOT_FOUND, 'version');
    await expectStatus(unary('DeleteVersion', { topic: 'grpc.ops', version: 2 }), grpc.status.INVALID_ARGUMENT, 'reason');
    await expectStatus(unary('ListAudit', { action: 'pin', cursor: 'garbage' }), grpc.status.INVALID_ARGUMENT, 'cursor');
  });

  it('RunRetention applies the topic policy now and keeps protected versions', async () => {
    await unary('CreateTopic', { topic: { name: 'grpc.retained', retention: { keepLast: 1 } } });
    for (const d of ['a', 'b', 'c', 'd']) await unary('Publish', { options: { topic: 'grpc.retained' }, data: Buffer.from(d) });
    await unary('Pin', { topic: 'grpc.retained', version: 2, reason: 'keep 2' });
    const res = await unary<{ deleted: string[]; orphaned: string[] }>('RunRetention', { topic: 'grpc.retained' });
    expect(res.deleted).toEqual(['1', '3']);
    expect(res.orphaned).toEqual([]);
    const again = await unary<{ deleted: string[] }>('RunRetention', { topic: 'grpc.retained' });
    expect(again.deleted).toEqual([]);
    await expectStatus(unary('RunRetention', { topic: 'grpc.nope' }), grpc.status.NOT_FOUND, 'topic');
    await expectStatus(unary('RunRetention', { topic: 'Bad Name' }), grpc.status.INVALID_ARGUMENT, 'topic');
  });
});

// The REST API end to end: the app from its composition root (embedded metadata store,
// blobs in the two s3proxy regions, port 0), every route with `fetch`, good input and bad.
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { uniqueBucket } from '@quire/test-servers';
import { createPublishApp, type PublishApp } from './app.ts';
import { loadConfig } from './config.ts';

let dir: string;

/** The two s3proxy regions, each with a bucket of this file's own. */
function s3Regions(): string {
  return JSON.stringify(inject('quireServers').s3.regions.map((r) => ({ ...r, bucket: uniqueBucket('rest-' + r.name) })));
}
let app: PublishApp;
const BODY_LIMIT = 256 * 1024;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'quire-rest-'));
  app = await createPublishApp(
    loadConfig({
      QUIRE_DATA_DIR: dir,
      QUIRE_S3_REGIONS: s3Regions(),
      QUIRE_PUBLISH_HTTP_PORT: '0',
      QUIRE_PUBLISH_GRPC_PORT: '0',
      QUIRE_LOG_LEVEL: 'silent',
      QUIRE_HTTP_BODY_LIMIT_BYTES: String(BODY_LIMIT),
    }),
  );
});

afterAll(async () => {
  await app?.close();
  rmSync(dir, { recursive: true, force: true });
});

interface Res {
  status: number;
  body: any; // eslint-disable-line @typescript-eslint/no-explicit-any
  headers: Headers;
}

async function call(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<Res> {
  const init: RequestInit = { method, headers: { 'x-quire-actor': 'alice', ...headers } };
  if (body !== undefined) {
    init.body = typeof body === 'string' || body instanceof Uint8Array ? (body as NonNullable<RequestInit['body']>) : JSON.stringify(body);
    if (typeof body !== 'string' && !(body instanceof Uint8Array)) (init.headers as Record<string, string>)['content-type'] = 'application/json';
  }
  const res = await fetch(`${app.httpUrl}${path}`, init);
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // not JSON
  }
  return { status: res.status, body: parsed, headers: res.headers };
}

function expectError(res: Res, status: number, code: string, field?: string): void {
  expect({ status: res.status, code: res.body?.error?.code, field: res.body?.error?.field }).toEqual({ status, code, field });
  expect(typeof res.body.error.message).toBe('string');
}

async function versionCount(topic: string): Promise<number> {
  const res = await call('GET', `/v1/topics/${topic}/versions?limit=1000`);
  return res.body.versions.length;
}

const sha = (b: Uint8Array | string) => createHash('sha256').update(b).digest('hex');

describe('topics', () => {
  it('creates, gets, lists and updates a topic', async () => {
    const created = await call('POST', '/v1/topics', { name: 'rest.topics', description: 'first', retention: { keepLast: 5 } });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ name: 'rest.topics', owner: 'alice', description: 'first', revision: 1, headVersion: 0 });
    expect(created.body.inlineThresholdBytes).toBe(1024 * 1024);

    const got = await call('GET', '/v1/topics/rest.topics');
    expect(got.status).toBe(200);
    expect(got.body).toMatchObject({ name: 'rest.topics', retention: { keepLast: 5 } });

    await call('POST', '/v1/topics', { name: 'rest.topics2' });
    const listed = await call('GET', '/v1/topics?prefix=rest.topics&limit=10');
    expect(listed.status).toBe(200);
    expect(listed.body.topics.map((t: { name: string }) => t.name)).toEqual(expect.arrayContaining(['rest.topics', 'rest.topics2']));

    const patched = await call('PATCH', '/v1/topics/rest.topics', { description: 'second', expectedRevision: 1 });
    expect(patched.status).toBe(200);
    expect(patched.body).toMatchObject({ description: 'second', revision: 2, retention: { keepLast: 5 } });
    const stale = await call('PATCH', '/v1/topics/rest.topics', { description: 'third', expectedRevision: 1 });
    expectError(stale, 412, 'FAILED_PRECONDITION', 'expectedRevision');
    expect((await call('GET', '/v1/topics/rest.topics')).body.description).toBe('second');
  });

  it('rejects bad topic input with the field named', async () => {
    expectError(await call('POST', '/v1/topics', {}), 400, 'INVALID_ARGUMENT', 'name');
    expectError(await call('POST', '/v1/topics', { name: 42 }), 400, 'INVALID_ARGUMENT', 'name');
    expectError(await call('POST', '/v1/topics', { name: 'Bad Name' }), 400, 'INVALID_ARGUMENT', 'name');
    expectError(await call('POST', '/v1/topics', { name: 'rest.bad', inlineThresholdBytes: '12' }), 400, 'INVALID_ARGUMENT', 'inlineThresholdBytes');
    expectError(await call('POST', '/v1/topics', { name: 'rest.bad', inlineThresholdBytes: 1e12 }), 400, 'INVALID_ARGUMENT', 'inlineThresholdBytes');
    expectError(await call('POST', '/v1/topics', { name: 'rest.bad', retention: { keepLast: 'x' } }), 400, 'INVALID_ARGUMENT', 'retention.keepLast');
    expectError(await call('POST', '/v1/topics', { name: 'rest.bad', bogus: 1 }), 400, 'INVALID_ARGUMENT', 'bogus');
    expectError(await call('POST', '/v1/topics', { name: 'rest.bad', jsonSchema: { type: 'nonsense' } }), 400, 'INVALID_ARGUMENT', 'jsonSchema');
    expectError(await call('POST', '/v1/topics', '{"name": "rest.bad",', { 'content-type': 'application/json' }), 400, 'INVALID_ARGUMENT', 'body');
    expectError(await call('POST', '/v1/topics', 'name=rest.bad', { 'content-type': 'text/plain' }), 415, 'INVALID_ARGUMENT', 'content-type');
    expect((await call('GET', '/v1/topics/rest.bad')).status).toBe(404);

    await call('POST', '/v1/topics', { name: 'rest.dup' });
    expectError(await call('POST', '/v1/topics', { name: 'rest.dup' }), 409, 'ALREADY_EXISTS', 'name');
    expectError(await call('GET', '/v1/topics/rest.nope'), 404, 'NOT_FOUND', 'name');
    expectError(await call('GET', '/v1/topics?limit=abc'), 400, 'INVALID_ARGUMENT', 'limit');
    expectError(await call('GET', '/v1/topics?limit=5000'), 400, 'INVALID_ARGUMENT', 'limit');
    expectError(await call('PATCH', '/v1/topics/rest.nope', { description: 'x' }), 404, 'NOT_FOUND', 'name');
    expectError(await call('PATCH', '/v1/topics/rest.dup', { description: 7 }), 400, 'INVALID_ARGUMENT', 'description');
    expectError(await call('PATCH', '/v1/topics/rest.dup', { name: 'rest.other' }), 400, 'INVALID_ARGUMENT', 'name');
    expectError(await call('PATCH', '/v1/topics/rest.dup', '{', { 'content-type': 'application/json' }), 400, 'INVALID_ARGUMENT', 'body');
    expect((await call('GET', '/v1/topics/rest.dup')).body.revision).toBe(1);
  });
});

describe('versions', () => {
  beforeAll(async () => {
    await call('POST', '/v1/topics', { name: 'rest.pub', inlineThresholdBytes: 1024 });
    await call('POST', '/v1/topics', {
      name: 'rest.schema',
      jsonSchema: { type: 'object', required: ['rows'], properties: { rows: { type: 'array', items: { type: 'integer' } } } },
    });
  });

  it('publishes inline JSON-carried data and reads it back', async () => {
    const res = await call('POST', '/v1/topics/rest.pub/versions', { data: 'hello', metadata: { source: 'test' }, contentType: 'text/plain' });
    expect(res.status).toBe(201);
    expect(res.body.version).toMatchObject({ topic: 'rest.pub', version: 1, size: 5, sha256: sha('hello'), publisher: 'alice', pointer: { kind: 'inline' } });
    expect(res.body.releases).toMatchObject([{ scope: {}, version: 1 }]);

    const b64 = await call('POST', '/v1/topics/rest.pub/versions', { dataBase64: Buffer.from([0, 1, 2, 255]).toString('base64'), scopes: [{ cluster: 'canary' }] });
    expect(b64.status).toBe(201);
    expect(b64.body.version).toMatchObject({ version: 2, size: 4, contentType: 'application/octet-stream' });
    expect(b64.body.releases).toMatchObject([{ scope: { cluster: 'canary' } }]);

    const data = await fetch(`${app.httpUrl}/v1/topics/rest.pub/versions/1/data`);
    expect(data.status).toBe(200);
    expect(data.headers.get('content-type')).toContain('text/plain');
    expect(data.headers.get('x-quire-sha256')).toBe(sha('hello'));
    expect(await data.text()).toBe('hello');

    const got = await call('GET', '/v1/topics/rest.pub/versions/2');
    expect(got.status).toBe(200);
    expect(got.body.version.version).toBe(2);
    expect(got.body.releases).toMatchObject([{ scope: { cluster: 'canary' } }]);
    expect((await call('GET', '/v1/topics/rest.pub')).body.headVersion).toBe(2);
  });

  it('streams a large raw body to the blob store and back, and pages the history', async () => {
    const payload = randomBytes(3 * 1024 * 1024 + 17);
    const res = await call('PUT', '/v1/topics/rest.pub/versions?regions=region-a', payload, {
      'content-type': 'application/x-custom',
      'x-quire-meta-build': '42',
      'x-quire-scope': JSON.stringify({ region: 'eu-west-1' }),
      'x-quire-sha256': sha(payload),
    });
    expect(res.status).toBe(201);
    expect(res.body.version).toMatchObject({ size: payload.length, sha256: sha(payload), contentType: 'application/x-custom', metadata: { build: '42' } });
    expect(res.body.version.pointer.kind).toBe('s3');
    expect(res.body.version.pointer.locations).toMatchObject([{ region: 'region-a' }]);
    const v = res.body.version.version as number;

    const data = await fetch(`${app.httpUrl}/v1/topics/rest.pub/versions/${v}/data`);
    expect(data.status).toBe(200);
    expect(Number(data.headers.get('content-length'))).toBe(payload.length);
    expect(sha(new Uint8Array(await data.arrayBuffer()))).toBe(sha(payload));

    // A small raw body goes inline.
    const small = await call('PUT', '/v1/topics/rest.pub/versions', 'tiny', { 'content-type': 'text/plain' });
    expect(small.status).toBe(201);
    expect(small.body.version.pointer.kind).toBe('inline');

    // Register the object already in the blob store as a new version.
    const key = res.body.version.pointer.locations[0].key as string;
    const reg = await call('POST', '/v1/topics/rest.pub/versions:register', { key, regions: ['region-a'], contentType: 'application/x-custom', metadata: { registered: 'yes' } });
    expect(reg.status).toBe(201);
    expect(reg.body.version).toMatchObject({ size: payload.length, sha256: sha(payload), metadata: { registered: 'yes' } });

    const page1 = await call('GET', '/v1/topics/rest.pub/versions?limit=2');
    expect(page1.status).toBe(200);
    expect(page1.body.versions).toHaveLength(2);
    expect(page1.body.versions[0].version).toBeGreaterThan(page1.body.versions[1].version);
    expect(typeof page1.body.next).toBe('string');
    const page2 = await call('GET', `/v1/topics/rest.pub/versions?limit=2&cursor=${encodeURIComponent(page1.body.next)}`);
    expect(page2.body.versions[0].version).toBe(page1.body.versions[1].version - 1);
    const asc = await call('GET', '/v1/topics/rest.pub/versions?order=asc&limit=1');
    expect(asc.body.versions[0].version).toBe(1);
  });

  it('validates JSON payloads against the topic schema', async () => {
    const ok = await call('POST', '/v1/topics/rest.schema/versions', { data: JSON.stringify({ rows: [1, 2] }), contentType: 'application/json' });
    expect(ok.status).toBe(201);
    const bad = await call('POST', '/v1/topics/rest.schema/versions', { data: JSON.stringify({ rows: [1, 'x'] }), contentType: 'application/json' });
    expectError(bad, 400, 'INVALID_ARGUMENT', 'data.rows.1');
    const notJson = await call('POST', '/v1/topics/rest.schema/versions', { data: '{', contentType: 'application/json' });
    expectError(notJson, 400, 'INVALID_ARGUMENT', 'data');
    // Other content types are not validated.
    expect((await call('POST', '/v1/topics/rest.schema/versions', { data: 'plain', contentType: 'text/plain' })).status).toBe(201);
    expect(await versionCount('rest.schema')).toBe(2);
  });

  it('rejects bad publish input and writes nothing', async () => {
    await call('POST', '/v1/topics', { name: 'rest.badpub', inlineThresholdBytes: 16 });
    const t = 'rest.badpub';
    expectError(await call('POST', `/v1/topics/${t}/versions`, {}), 400, 'INVALID_ARGUMENT', 'data');
    expectError(await call('POST', `/v1/topics/${t}/versions`, { data: 5 }), 400, 'INVALID_ARGUMENT', 'data');
    expectError(await call('POST', `/v1/topics/${t}/versions`, { data: 'x', dataBase64: 'eA==' }), 400, 'INVALID_ARGUMENT', 'data');
    expectError(await call('POST', `/v1/topics/${t}/versions`, { dataBase64: '***' }), 400, 'INVALID_ARGUMENT', 'dataBase64');
    expectError(await call('POST', `/v1/topics/${t}/versions`, { data: 'x', metadata: { k: 1 } }), 400, 'INVALID_ARGUMENT', 'metadata.k');
    expectError(await call('POST', `/v1/topics/${t}/versions`, { data: 'x', metadata: { 'bad key': 'v' } }), 400, 'INVALID_ARGUMENT', 'metadata.bad key');
    expectError(await call('POST', `/v1/topics/${t}/versions`, { data: 'x', scopes: [{ cluster: 3 }] }), 400, 'INVALID_ARGUMENT', 'scopes[0].cluster');
    expectError(await call('POST', `/v1/topics/${t}/versions`, { data: 'x', scopes: [{ cluster: '' }] }), 400, 'INVALID_ARGUMENT', 'scopes[0].cluster');
    expectError(await call('POST', `/v1/topics/${t}/versions`, { data: 'x'.repeat(100), regions: ['mars'] }), 400, 'INVALID_ARGUMENT', 'regions[0]');
    expectError(await call('POST', `/v1/topics/${t}/versions`, { data: 'x', contentType: 'not a type' }), 400, 'INVALID_ARGUMENT', 'contentType');
    expectError(await call('POST', `/v1/topics/${t}/versions`, { data: 'x', sha256: 'abc' }), 400, 'INVALID_ARGUMENT', 'sha256');
    expectError(await call('POST', `/v1/topics/${t}/versions`, { data: 'x', sha256: sha('y') }), 400, 'INVALID_ARGUMENT', 'sha256');
    expectError(await call('POST', `/v1/topics/${t}/versions`, { data: 'x'.repeat(100), sha256: sha('y') }), 400, 'INVALID_ARGUMENT', 'sha256');
    expectError(await call('POST', `/v1/topics/${t}/versions`, { data: 'x', size: 2 }), 400, 'INVALID_ARGUMENT', 'size');
    expectError(await call('POST', `/v1/topics/${t}/versions`, { data: 'x', publishId: 'no spaces' }), 400, 'INVALID_ARGUMENT', 'publishId');
    // A publishId the commit refuses is refused already when the upload is prepared.
    expectError(await call('POST', `/v1/topics/${t}/versions`, { data: 'x', publishId: 'with.dot' }), 400, 'INVALID_ARGUMENT', 'publishId');
    expectError(await call('POST', `/v1/topics/${t}/uploads`, { publishId: 'with.dot' }), 400, 'INVALID_ARGUMENT', 'publishId');
    expectError(await call('POST', `/v1/topics/${t}/versions`, { data: 'x'.repeat(BODY_LIMIT) }), 413, 'RESOURCE_EXHAUSTED', 'body');
    expectError(await call('POST', `/v1/topics/${t}/versions`, '{"data":', { 'content-type': 'application/json' }), 400, 'INVALID_ARGUMENT', 'body');
    expectError(await call('POST', `/v1/topics/${t}/versions`, 'x', { 'content-type': 'text/plain' }), 415, 'INVALID_ARGUMENT', 'content-type');
    expectError(await call('POST', '/v1/topics/rest.nope/versions', { data: 'x' }), 404, 'NOT_FOUND', 'topic');
    expectError(await call('POST', '/v1/topics/Bad!/versions', { data: 'x' }), 400, 'INVALID_ARGUMENT', 'topic');

    expectError(await call('PUT', '/v1/topics/rest.nope/versions', 'x', { 'content-type': 'text/plain' }), 404, 'NOT_FOUND', 'topic');
    expectError(await call('PUT', `/v1/topics/${t}/versions`, 'x', { 'x-quire-scope': '{nope' }), 400, 'INVALID_ARGUMENT', 'x-quire-scope');
    expectError(await call('PUT', `/v1/topics/${t}/versions?metadata=%5B1%5D`, 'x'), 400, 'INVALID_ARGUMENT', 'metadata');
    expectError(await call('PUT', `/v1/topics/${t}/versions?bogus=1`, 'x'), 400, 'INVALID_ARGUMENT', 'bogus');
    expectError(await call('PUT', `/v1/topics/${t}/versions`, randomBytes(4096), { 'x-quire-sha256': sha('other') }), 400, 'INVALID_ARGUMENT', 'sha256');

    expectError(await call('POST', `/v1/topics/${t}/versions:register`, { key: 'topics/none/here' }), 404, 'NOT_FOUND', 'key');
    expectError(await call('POST', `/v1/topics/${t}/versions:register`, { key: '../etc/passwd' }), 400, 'INVALID_ARGUMENT', 'key');
    expectError(await call('POST', `/v1/topics/${t}/versions:register`, { locations: [{ region: 'mars', key: 'a' }] }), 400, 'INVALID_ARGUMENT', 'locations[0].region');
    expectError(await call('POST', `/v1/topics/${t}/versions:register`, { locations: [{ key: 'a' }] }), 400, 'INVALID_ARGUMENT', 'locations[0].region');
    expectError(await call('POST', '/v1/topics/rest.nope/versions:register', { key: 'a' }), 404, 'NOT_FOUND', 'topic');

    expect(await versionCount(t)).toBe(0);
    const audit = await call('GET', `/v1/audit?topic=${t}`);
    expect(audit.body.entries.map((e: { action: string }) => e.action)).toEqual(['topic.create']);
  });

  it('answers 404 / 400 for unknown or malformed versions', async () => {
    expectError(await call('GET', '/v1/topics/rest.pub/versions/999'), 404, 'NOT_FOUND', 'version');
    expectError(await call('GET', '/v1/topics/rest.pub/versions/abc'), 400, 'INVALID_ARGUMENT', 'version');
    expectError(await call('GET', '/v1/topics/rest.pub/versions/0'), 400, 'INVALID_ARGUMENT', 'version');
    expectError(await call('GET', '/v1/topics/rest.pub/versions/999/data'), 404, 'NOT_FOUND', 'version');
    expectError(await call('GET', '/v1/topics/rest.nope/versions/1'), 404, 'NOT_FOUND', 'topic');
    expectError(await call('GET', '/v1/topics/rest.nope/versions'), 404, 'NOT_FOUND', 'topic');
    expectError(await call('GET', '/v1/topics/rest.pub/versions?order=sideways'), 400, 'INVALID_ARGUMENT', 'order');
    expectError(await call('GET', '/v1/topics/rest.pub/versions?limit=-1'), 400, 'INVALID_ARGUMENT', 'limit');
  });
});

describe('releases and audit', () => {
  it('releases an older version to more scopes and records who did what', async () => {
    await call('POST', '/v1/topics', { name: 'rest.rel' });
    await call('POST', '/v1/topics/rest.rel/versions', { data: 'one' });
    const res = await call('POST', '/v1/topics/rest.rel/versions/1/releases', { scopes: [{ cluster: 'a' }, { region: 'r1' }], reason: 'widen' }, { 'x-quire-actor': 'bob' });
    expect(res.status).toBe(201);
    expect(res.body.releases).toMatchObject([{ scope: { cluster: 'a' }, releasedBy: 'bob' }, { scope: { region: 'r1' } }]);
    const listed = await call('GET', '/v1/topics/rest.rel/versions/1/releases');
    expect(listed.body.releases).toHaveLength(3);

    expectError(await call('POST', '/v1/topics/rest.rel/versions/9/releases', { scopes: [] }), 404, 'NOT_FOUND', 'version');
    expectError(await call('POST', '/v1/topics/rest.nope/versions/1/releases', { scopes: [] }), 404, 'NOT_FOUND', 'topic');
    expectError(await call('POST', '/v1/topics/rest.rel/versions/1/releases', { scopes: {} }), 400, 'INVALID_ARGUMENT', 'scopes');
    expectError(await call('POST', '/v1/topics/rest.rel/versions/1/releases', { scopes: [{ a: 1 }] }), 400, 'INVALID_ARGUMENT', 'scopes[0].a');
    expectError(await call('POST', '/v1/topics/rest.rel/versions/x/releases', { scopes: [] }), 400, 'INVALID_ARGUMENT', 'version');
    expectError(await call('POST', '/v1/topics/rest.rel/versions/1/releases', '{', { 'content-type': 'application/json' }), 400, 'INVALID_ARGUMENT', 'body');
    expect((await call('GET', '/v1/topics/rest.rel/versions/1/releases')).body.releases).toHaveLength(3);

    const audit = await call('GET', '/v1/audit?topic=rest.rel');
    expect(audit.status).toBe(200);
    expect(audit.body.entries.map((e: { action: string }) => e.action)).toEqual(['release', 'publish', 'topic.create']);
    expect(audit.body.entries[0]).toMatchObject({ actor: 'bob', reason: 'widen', topic: 'rest.rel', details: { version: 1 } });
    const all = await call('GET', '/v1/audit?limit=2');
    expect(all.body.entries).toHaveLength(2);
    expect(typeof all.body.next).toBe('string');
    expectError(await call('GET', '/v1/audit?limit=x'), 400, 'INVALID_ARGUMENT', 'limit');
    expectError(await call('GET', '/v1/audit?topic=Bad!'), 400, 'INVALID_ARGUMENT', 'topic');
    expectError(await call('GET', '/v1/audit?since=yesterday'), 400, 'INVALID_ARGUMENT', 'since');
    expectError(await call('GET', '/v1/nothing-here'), 404, 'NOT_FOUND', undefined);
  });
});

describe('operator controls', () => {
  it('pins, lists pins, unpins (DELETE and :unpin), rolls back', async () => {
    await call('POST', '/v1/topics', { name: 'rest.pins' });
    for (const d of ['one', 'two', 'three']) await call('POST', '/v1/topics/rest.pins/versions', { data: d });

    const pinned = await call('POST', '/v1/topics/rest.pins/pins', { version: 1, scope: { cluster: 'canary' }, reason: 'bad rows in 3' });
    expect(pinned.status).toBe(201);
    expect(pinned.body.pin).toMatchObject({ version: 1, scope: { cluster: 'canary' }, reason: 'bad rows in 3', pinnedBy: 'alice' });
    expect((await call('GET', '/v1/topics/rest.pins/pins')).body.pins).toMatchObject([{ version: 1, scope: { cluster: 'canary' } }]);
    const unpinned = await call('DELETE', '/v1/topics/rest.pins/pins', { scope: { cluster: 'canary' }, reason: 'fixed' });
    expect(unpinned.status).toBe(200);
    expect(unpinned.body.pin).toMatchObject({ version: 1, unpinnedBy: 'alice' });
    expect((await call('GET', '/v1/topics/rest.pins/pins')).body.pins).toEqual([]);
    expect((await call('GET', '/v1/topics/rest.pins/pins?history=true')).body.pins).toHaveLength(1);

    const rolled = await call('POST', '/v1/topics/rest.pins/rollback', { reason: 'bad rows in 3' });
    expect(rolled.status).toBe(201);
    expect(rolled.body).toMatchObject({ from: 3, pin: { version: 2, scope: {} } });
    const again = await call('POST', '/v1/topics/rest.pins/pins:unpin', { reason: 'done' });
    expect(again.body.pin).toMatchObject({ version: 2 });

    expectError(await call('POST', '/v1/topics/rest.pins/pins', { version: 9, reason: 'x' }), 404, 'NOT_FOUND', 'version');
    expectError(await call('POST', '/v1/topics/rest.pins/pins', { version: 1 }), 400, 'INVALID_ARGUMENT', 'reason');
    expectError(await call('DELETE', '/v1/topics/rest.pins/pins', { reason: 'nothing pinned' }), 404, 'NOT_FOUND', 'scope');
    expectError(await call('DELETE', '/v1/topics/rest.pins/pins'), 404, 'NOT_FOUND', 'scope');
    expectError(await call('POST', '/v1/topics/rest.pins/rollback'), 400, 'INVALID_ARGUMENT', 'reason');
    expectError(await call('POST', '/v1/topics/rest.pins/pins', { version: 1, reason: 'x', bogus: true }), 400, 'INVALID_ARGUMENT', 'bogus');
    expectError(await call('POST', '/v1/topics/rest.pins/rollback', { scope: { cluster: 7 }, reason: 'x' }), 400, 'INVALID_ARGUMENT', 'scope.cluster');
    expectError(await call('GET', '/v1/topics/rest.pins/pins?history=maybe'), 400, 'INVALID_ARGUMENT', 'history');
    const audit = await call('GET', '/v1/audit?topic=rest.pins&action=pin');
    expect(audit.body.entries).toMatchObject([{ action: 'pin', reason: 'bad rows in 3', details: { version: 1 } }]);
  });

  it('lists a version\'s scopes, deletes a version, runs retention', async () => {
    await call('POST', '/v1/topics', { name: 'rest.ret', inlineThresholdBytes: 16 });
    for (const d of ['a', 'b', 'c', 'd']) await call('POST', '/v1/topics/rest.ret/versions', { data: d.repeat(100), scopes: [{ cluster: d }] });
    expect((await call('GET', '/v1/topics/rest.ret/versions/1/releases?includeWithdrawn=true')).body.releases).toMatchObject([{ scope: { cluster: 'a' } }]);
    expectError(await call('GET', '/v1/topics/rest.ret/versions/7/releases'), 404, 'NOT_FOUND', 'version');

    // Each version is the latest for its scope: protected. Release 2 to cluster a: 1 is no longer latest anywhere.
    expectError(await call('DELETE', '/v1/topics/rest.ret/versions/1', { reason: 'x' }), 412, 'FAILED_PRECONDITION', 'version');
    await call('POST', '/v1/topics/rest.ret/versions/2/releases', { scopes: [{ cluster: 'a' }] });
    expectError(await call('DELETE', '/v1/topics/rest.ret/versions/1', {}), 400, 'INVALID_ARGUMENT', 'reason');
    const del = await call('DELETE', '/v1/topics/rest.ret/versions/1', { reason: 'leaked a secret' });
    expect(del.status).toBe(200);
    expect(del.body.version).toMatchObject({ version: 1 });
    expect(typeof del.body.version.deletedAt).toBe('number');
    expect((await call('GET', '/v1/topics/rest.ret/versions/1/data')).status).toBe(404);

    // keepLast 1: 2 (latest for cluster a and b) is protected, 3 and 4 are latest for c, d.
    await call('POST', '/v1/topics/rest.ret/versions/4/releases', { scopes: [{ cluster: 'c' }] });
    await call('PATCH', '/v1/topics/rest.ret', { retention: { keepLast: 1 } });
    const ran = await call('POST', '/v1/topics/rest.ret/retention:run');
    expect(ran.status).toBe(200);
    expect(ran.body).toEqual({ deleted: [3], orphaned: [] });
    expectError(await call('POST', '/v1/topics/rest.nope/retention:run'), 404, 'NOT_FOUND', 'topic');
    expectError(await call('PATCH', '/v1/topics/rest.ret', { retention: { keepLast: -1 } }), 400, 'INVALID_ARGUMENT', 'retention.keepLast');
    const audit = await call('GET', '/v1/audit?topic=rest.ret&action=version.delete');
    expect(audit.body.entries.map((e: { actor: string; details: { version: number } }) => [e.actor, e.details.version])).toEqual([
      ['alice', 3],
      ['alice', 1],
    ]);
    expect((await call('GET', '/v1/audit?actor=nobody')).body.entries).toEqual([]);
  });
});

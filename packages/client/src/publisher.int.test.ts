// The publisher against a real publish service from its composition root (embedded
// SQLite store and local blob directory in a temp dir, ports 0): every payload shape,
// progress, errors with code + field, and idempotent retries.
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { failure } from './testing.ts';
import { Code } from '@quire/core';
import { createPublishApp, loadConfig, type PublishApp } from '@quire/publish-service';
import { createPublisher, type Publisher } from './index.ts';

const MiB = 1024 * 1024;
const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

let dir: string;
let app: PublishApp;
let pub: Publisher;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'quire-client-pub-'));
  app = await createPublishApp(
    loadConfig({ QUIRE_DATA_DIR: dir, QUIRE_PUBLISH_HTTP_PORT: '0', QUIRE_PUBLISH_GRPC_PORT: '0', QUIRE_LOG_LEVEL: 'silent' }),
  );
  pub = createPublisher({ endpoint: app.grpcAddress, actor: 'client-tests' });
  await pub.createTopic({ name: 'client.pub', description: 'publisher tests' });
});

afterAll(async () => {
  pub?.close();
  await app?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('publisher', () => {
  it('creates and reads a topic', async () => {
    const t = await pub.getTopic('client.pub');
    expect(t).toMatchObject({ name: 'client.pub', owner: 'client-tests', description: 'publisher tests', inlineThresholdBytes: MiB });
  });

  it('publishes a string inline, with metadata, content type and the publisher', async () => {
    const v = await pub.publish('client.pub', { data: 'hello quire', metadata: { source: 'test' }, contentType: 'text/plain' });
    expect(v).toMatchObject({
      topic: 'client.pub',
      metadata: { source: 'test' },
      contentType: 'text/plain',
      size: 11,
      sha256: sha(Buffer.from('hello quire')),
      publisher: 'client-tests',
      pointer: { kind: 'inline' },
      scopes: [{}],
    });
    expect(v.version).toBeGreaterThan(0);
  });

  it('publishes bytes, scoped', async () => {
    const bytes = randomBytes(4096);
    const v = await pub.publish('client.pub', { data: bytes, scopes: [{ cluster: 'canary' }] });
    expect(v).toMatchObject({ size: 4096, sha256: sha(bytes), scopes: [{ cluster: 'canary' }] });
  });

  it('streams an 8 MiB file in 1 MiB chunks, progress rising to the total', async () => {
    const bytes = randomBytes(8 * MiB);
    const file = join(dir, 'big.bin');
    writeFileSync(file, bytes);
    const progress: number[] = [];
    const v = await pub.publish('client.pub', {
      file,
      onProgress: (p) => {
        expect(p.totalBytes).toBe(8 * MiB);
        progress.push(p.sentBytes);
      },
    });
    expect(v).toMatchObject({ size: 8 * MiB, sha256: sha(bytes), pointer: { kind: 's3' } });
    expect(progress).toHaveLength(8);
    expect(progress.every((n, i) => i === 0 || n > (progress[i - 1] as number))).toBe(true);
    expect(progress.at(-1)).toBe(8 * MiB);
  });

  it('streams a Readable of odd-sized pieces', async () => {
    const parts = [randomBytes(700_000), randomBytes(900_000), randomBytes(10)];
    const all = Buffer.concat(parts);
    let last = 0;
    const v = await pub.publish('client.pub', { stream: Readable.from(parts), contentType: 'application/octet-stream', onProgress: (p) => (last = p.sentBytes) });
    expect(v).toMatchObject({ size: all.byteLength, sha256: sha(all) });
    expect(last).toBe(all.byteLength);
  });

  it('turns gRPC errors into QuireError with the code and the field', async () => {
    const missing = await failure(pub.publish('client.nope', { data: 'x' }));
    expect(missing.code).toBe(Code.NOT_FOUND);
    const bad = await failure(pub.publish('client.pub', { data: 'x', metadata: { '': 'empty key' } }));
    expect(bad.code).toBe(Code.INVALID_ARGUMENT);
    expect(bad.field).toMatch(/^metadata/);
    // A streamed publish the service refuses fails promptly, without hanging on backpressure.
    const file = join(dir, 'refused.bin');
    writeFileSync(file, randomBytes(3 * MiB));
    const refused = await failure(pub.publish('client.nope', { file }));
    expect(refused.code).toBe(Code.NOT_FOUND);
    const broken = new Readable({ read() { this.destroy(new Error('disk on fire')); } });
    const unreadable = await failure(pub.publish('client.pub', { stream: broken }));
    expect({ code: unreadable.code, field: unreadable.field }).toEqual({ code: Code.INVALID_ARGUMENT, field: 'stream' });
    const dup = await failure(pub.createTopic({ name: 'client.pub' }));
    expect(dup.code).toBe(Code.ALREADY_EXISTS);
    const noVersions = await failure(pub.listVersions('client.pub'));
    expect({ code: noVersions.code, field: noVersions.field }).toEqual({ code: Code.FAILED_PRECONDITION, field: 'consumeEndpoint' });
  });

  it('releases, pins, unpins and rolls back (operator calls)', async () => {
    await pub.createTopic({ name: 'client.ops' });
    for (const d of ['one', 'two', 'three']) await pub.publish('client.ops', { data: d, scopes: [{ cluster: 'canary' }] });
    await pub.release('client.ops', 2, [{}], 'two is good everywhere');
    const pinned = await pub.pin('client.ops', 1, { scope: { cluster: 'canary' }, reason: 'bad 3' });
    expect(pinned).toMatchObject({ version: 1, scope: { cluster: 'canary' }, reason: 'bad 3', pinnedBy: 'client-tests' });
    expect(pinned.unpinnedAt).toBeUndefined();
    expect(await pub.listPins('client.ops')).toEqual([pinned]);
    const ended = await pub.unpin('client.ops', { scope: { cluster: 'canary' } });
    expect(ended).toMatchObject({ pinId: pinned.pinId, unpinnedBy: 'client-tests' });
    expect(ended.unpinnedAt).toBeGreaterThan(0);
    // 3 reached canary only; 2 is released globally: the last one fully rolled out.
    const rolled = await pub.rollback('client.ops', { reason: 'bad 3' });
    expect(rolled).toMatchObject({ version: 2, scope: {} });
    expect(await pub.listPins('client.ops', { history: true })).toHaveLength(2);
    const none = await failure(pub.rollback('client.ops', { scope: { cluster: 'main' }, reason: 'x' }));
    expect({ code: none.code, field: none.field }).toEqual({ code: Code.FAILED_PRECONDITION, field: 'scope' });
    const missing = await failure(pub.pin('client.ops', 9, { reason: 'x' }));
    expect({ code: missing.code, field: missing.field }).toEqual({ code: Code.NOT_FOUND, field: 'version' });
  });

  it('a retried publish with the same publishId commits one version', async () => {
    const publishId = `retry-${Date.now()}`;
    const a = await pub.publish('client.pub', { data: 'once', publishId });
    const b = await pub.publish('client.pub', { data: 'once', publishId });
    expect(b.version).toBe(a.version);
    const file = join(dir, 'once.bin');
    const bytes = randomBytes(2 * MiB);
    writeFileSync(file, bytes);
    const c = await pub.publish('client.pub', { file, publishId: `${publishId}-f` });
    const d = await pub.publish('client.pub', { file, publishId: `${publishId}-f` });
    expect(d.version).toBe(c.version);
    expect((await pub.getTopic('client.pub')).headVersion).toBe(c.version);
    const other = await failure(pub.publish('client.pub', { data: 'different', publishId }));
    expect({ code: other.code, field: other.field }).toEqual({ code: Code.ALREADY_EXISTS, field: 'publishId' });
  });

  it('fails fast on a bad call before sending anything', async () => {
    const e = await failure(pub.publish('client.pub', { data: 'a', file: '/nonexistent' }));
    expect(e.code).toBe(Code.INVALID_ARGUMENT);
  });
});

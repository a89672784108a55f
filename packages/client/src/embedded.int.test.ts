// The embedded default (SQLite + a local blob directory, as `npm start` runs it): a
// consumer with no S3 access still gets versions stored in the blob directory, streamed
// through the consume service (ReadData) and verified.
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createConsumeApp, loadConfig as loadConsumeConfig, type ConsumeApp } from '@quire/consume-service';
import { createPublishApp, loadConfig as loadPublishConfig, type PublishApp } from '@quire/publish-service';
import { createConsumer, createPublisher, type Consumer, type Publisher } from './index.ts';

let dir: string;
let pubApp: PublishApp;
let consumeApp: ConsumeApp;
let pub: Publisher;
let consumer: Consumer | undefined;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'quire-client-embedded-'));
  const env = { QUIRE_DATA_DIR: dir, QUIRE_LOG_LEVEL: 'silent' };
  pubApp = await createPublishApp(loadPublishConfig({ ...env, QUIRE_PUBLISH_HTTP_PORT: '0', QUIRE_PUBLISH_GRPC_PORT: '0' }));
  consumeApp = await createConsumeApp(loadConsumeConfig({ ...env, QUIRE_CONSUME_HTTP_PORT: '0', QUIRE_CONSUME_GRPC_PORT: '0' }));
  pub = createPublisher({ endpoint: pubApp.grpcAddress, actor: 'embedded' });
});

afterAll(async () => {
  await consumer?.close();
  pub?.close();
  await consumeApp?.close();
  await pubApp?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('embedded default: blob-directory versions reach consumers through the consume service', () => {
  it('a 3 MiB version over the inline threshold is streamed, verified and applied', async () => {
    await pub.createTopic({ name: 'embedded.big', inlineThresholdBytes: 1024 });
    const data = randomBytes(3 * 1024 * 1024);
    const v = await pub.publish('embedded.big', { data });
    expect(v.pointer.kind).toBe('s3'); // a blob pointer, into the local directory "region"

    consumer = createConsumer({ endpoints: [consumeApp.grpcAddress], identity: { application: 'demo' }, longPoll: { waitMs: 5000 } });
    const sub = consumer.subscribe<Uint8Array>('embedded.big');
    await consumer.start();
    const end = Date.now() + 10_000;
    while (sub.version() !== v.version && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
    expect(sub.version()).toBe(v.version);
    expect(createHash('sha256').update(sub.current()).digest('hex')).toBe(v.sha256);

    // The same bytes over REST, streamed, with the checksum header.
    const res = await fetch(`${consumeApp.httpUrl}/v1/topics/embedded.big/versions/${v.version}/data`);
    expect(res.status).toBe(200);
    expect(res.headers.get('x-quire-sha256')).toBe(v.sha256);
    expect(Buffer.from(await res.arrayBuffer()).equals(data)).toBe(true);
  });

  it('a batch whose inline bytes pass the answer budget still reaches the consumer whole', async () => {
    const topics = ['embedded.in1', 'embedded.in2', 'embedded.in3'];
    const datas = topics.map(() => randomBytes(3.5 * 1024 * 1024));
    for (const [i, t] of topics.entries()) {
      await pub.createTopic({ name: t, inlineThresholdBytes: 4 * 1024 * 1024 });
      expect((await pub.publish(t, { data: datas[i] as Buffer })).pointer.kind).toBe('inline');
    }
    // One poll for all three: 10.5 MiB of inline bytes, over the 8 MiB budget.
    let answer: Awaited<ReturnType<typeof consumeApp.service.poll>> | undefined;
    const end = Date.now() + 10_000;
    while (Date.now() < end) {
      answer = await consumeApp.service.poll({ identity: { application: 'demo', instance: 'probe' }, subscriptions: topics.map((topic) => ({ topic })), waitMs: 0 });
      if (answer.updates.length === 3) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(answer?.updates).toHaveLength(3);
    expect(answer?.updates.filter((u) => u.inlineData !== undefined)).toHaveLength(2);

    const c = createConsumer({ endpoints: [consumeApp.grpcAddress], identity: { application: 'demo' }, longPoll: { waitMs: 5000 } });
    try {
      const subs = topics.map((t) => c.subscribe<Uint8Array>(t));
      await c.start();
      await c.ready();
      const until = Date.now() + 10_000;
      while (subs.some((x) => x.version() !== 1) && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
      subs.forEach((x, i) => expect(Buffer.from(x.current()).equals(datas[i] as Buffer)).toBe(true));
    } finally {
      await c.close();
    }
  });

  it('ReadData of an unknown version is NOT_FOUND naming the field', async () => {
    const res = await fetch(`${consumeApp.httpUrl}/v1/topics/embedded.big/versions/99/data`);
    expect(res.status).toBe(404);
    expect(((await res.json()) as { error: { field: string } }).error.field).toBe('version');
  });
});

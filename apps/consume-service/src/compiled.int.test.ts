// The production artefact, tested: `pnpm build` (scripts/build.ts) bundles the apps into
// apps/<app>/dist/main.js, which the server image runs with plain `node` (no tsx). Here the
// compiled CLI migrates a fresh keyspace and buckets on the real Cassandra and S3, then the
// compiled publish and consume services run as processes: a version published over gRPC
// (stored in S3: the topic inlines at most 1 byte) reaches a held long-poll on the consume service,
// and its bytes are in both S3 regions. Also: the bundles contain the workspace's @quire/*
// code but no TypeScript import, and every npm import points at an installed file.
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { loadQuireProto } from '@quire/proto';
import type { ConsumeServiceClient, PbPollResponseOutput, PublishServiceClient } from '@quire/proto';
import { createStores } from '@quire/service-kit';
import { buildQuireApps, quireTestStores, startQuireProcess, type QuireProcess } from '@quire/test-servers';

const ROOT = fileURLToPath(new URL('../../..', import.meta.url));
const APPS = ['publish-service', 'consume-service', 'cli'];
const { cassandra, s3 } = inject('quireServers');
const testStores = quireTestStores({ cassandra, s3 }, 'compiled');
const keyspace = testStores.keyspace;
const env = { ...testStores.env, QUIRE_LOG_LEVEL: 'warn' };
const proto = loadQuireProto().quire.v1;
const procs: QuireProcess[] = [];

function call<T>(fn: (cb: (err: grpc.ServiceError | null, res?: T) => void) => void): Promise<T> {
  return new Promise((res, rej) => fn((err, r) => (err ? rej(err) : res(r as T))));
}

/** The compiled CLI as a process with only `env`'s QUIRE_* variables. */
function quire(args: string[]): Promise<{ code: number; out: string }> {
  const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('QUIRE_')));
  return new Promise((res) => {
    execFile(process.execPath, [join(ROOT, 'apps/cli/dist/main.js'), ...args], { env: { ...base, ...env }, timeout: 180_000 }, (err, stdout, stderr) => {
      res({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : 1, out: `${stdout}${stderr}` });
    });
  });
}

beforeAll(async () => {
  await buildQuireApps(APPS);
}, 120_000);

afterAll(async () => {
  await Promise.all(procs.map((p) => p.stop()));
});

describe('the compiled build (apps/<app>/dist/main.js)', () => {
  it('bundles the workspace packages and keeps npm packages external, each pointing at an installed file', () => {
    for (const app of APPS) {
      const file = join(ROOT, 'apps', app, 'dist/main.js');
      const text = readFileSync(file, 'utf8');
      // esbuild writes static imports one per line at the top level, dynamic ones as import("…").
      const specifiers = [...text.matchAll(/^import\s[^;]*?from\s*"([^"]+)";$|^import\s*"([^"]+)";$|\bimport\("([^"]+)"\)/gm)].map((m) => (m[1] ?? m[2] ?? m[3]) as string);
      expect(specifiers.filter((s) => s.startsWith('@quire/') || s.endsWith('.ts')), `${app}: no workspace or TS import left`).toEqual([]);
      const npm = specifiers.filter((s) => !s.startsWith('node:'));
      expect(npm.length, `${app} imports npm packages`).toBeGreaterThan(3);
      for (const s of npm) {
        const m = /^(\.\.?\/.*?)\/?node_modules\/(@[^/]+\/[^/]+|[^@/][^/]*)\//.exec(s);
        expect(m, `${app}: ${s} is a relative path into a workspace package's node_modules`).not.toBeNull();
        expect(existsSync(resolve(dirname(file), s)), `${app}: ${s} exists`).toBe(true);
        // A production dependency of the package that imports it: the image's --prod install links it.
        const owner = JSON.parse(readFileSync(join(resolve(dirname(file), m?.[1] ?? ''), 'package.json'), 'utf8')) as { name: string; dependencies?: Record<string, string> };
        expect(Object.keys(owner.dependencies ?? {}), `${app}: ${owner.name} lists ${m?.[2]} in its dependencies`).toContain(m?.[2]);
      }
    }
  });

  it('migrates with the compiled CLI, then a publish on the compiled publish service reaches a long-poll on the compiled consume service', async () => {
    const migrated = await quire(['migrate']);
    expect(migrated.code, migrated.out).toBe(0);

    const publish = await startQuireProcess('publish-service', { ...env, QUIRE_PUBLISH_HTTP_PORT: '0', QUIRE_PUBLISH_GRPC_PORT: '0' }, 120_000, { compiled: true });
    procs.push(publish);
    const consume = await startQuireProcess('consume-service', { ...env, QUIRE_CONSUME_HTTP_PORT: '0', QUIRE_CONSUME_GRPC_PORT: '0', QUIRE_CHANGE_POLL_MS: '200' }, 120_000, { compiled: true });
    procs.push(consume);
    // Ready (stores reachable, cache filled), as a load balancer would see it.
    expect((await fetch(`${consume.httpUrl}/readyz`)).status).toBe(200);
    expect((await fetch(`${publish.httpUrl}/readyz`)).status).toBe(200);

    const pub: PublishServiceClient = new proto.PublishService(publish.grpcAddress, grpc.credentials.createInsecure());
    const con: ConsumeServiceClient = new proto.ConsumeService(consume.grpcAddress, grpc.credentials.createInsecure());
    try {
      const topic = 'compiled.devices';
      await call((cb) => pub.CreateTopic({ topic: { name: topic, owner: 'compiled', inlineThresholdBytes: 1 } }, cb));
      // Held until the version exists: the consume service learns of the topic, then of v1.
      const polled = (async (): Promise<PbPollResponseOutput> => {
        for (const until = Date.now() + 60_000; Date.now() < until; ) {
          const res = await call<PbPollResponseOutput>((cb) =>
            con.Poll({ identity: { application: 'compiled', instance: 'c-1' }, subscriptions: [{ topic, knownVersion: '0' }], waitMs: 20_000 }, { deadline: Date.now() + 40_000 }, cb),
          );
          if (res.updates.length > 0) return res;
        }
        throw new Error('no update within 60 s');
      })();
      const data = Buffer.from('built, not transpiled at run time');
      const published = await call<{ version?: { version?: string } | null }>((cb) => pub.Publish({ options: { topic, contentType: 'text/plain' }, data }, cb));
      expect(published.version?.version).toBe('1');

      const res = await polled;
      expect(res.errors).toEqual([]);
      const update = res.updates[0];
      expect(update?.topic).toBe(topic);
      expect(update?.version?.version).toBe('1');
      expect(update?.version?.pointer).toBe('s3');
      const locations = update?.version?.s3?.locations ?? [];
      expect(locations.map((l) => l.bucket).sort()).toEqual(testStores.regions.map((r) => r.bucket).sort());

      // The bytes the compiled publish service streamed are in S3, in every region.
      const stores = await createStores({ metadataStore: { kind: 'cassandra', contactPoints: cassandra.contactPoints, port: cassandra.port, localDataCenter: cassandra.localDataCenter, keyspace, replicationFactor: 1 }, blobStore: { kind: 's3', regions: testStores.regions } });
      try {
        for (const l of locations) {
          const got = await stores.blobs.get(l.key, { regions: [l.region] });
          const chunks: Buffer[] = [];
          for await (const c of got.body as Readable) chunks.push(c as Buffer);
          expect(Buffer.concat(chunks).toString('utf8')).toBe(data.toString('utf8'));
        }
      } finally {
        await stores.close();
      }
    } finally {
      pub.close();
      con.close();
    }
    // A clean drain on SIGTERM, as the orchestrator stops a pod.
    expect(await consume.stop()).toBe(0);
    expect(await publish.stop()).toBe(0);
  });
});

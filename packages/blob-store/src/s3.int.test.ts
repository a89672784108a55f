// The BlobStore contract against two real s3proxy "regions" (started by the integration
// global setup), plus what only S3 has: multipart uploads, dead endpoints, credentials.
// Each contract store talks to s3proxy through a small TCP relay of ours (a child process),
// so that a test can cut a region off for real: breakRegion kills the relay, connections
// are reset and refused from then on.
// The AWS SDK is used directly here only to inspect and clean the buckets from outside.
import {
  DeleteBucketCommand,
  DeleteObjectCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  S3Client,
} from '@aws-sdk/client-s3';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { Readable } from 'node:stream';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { Code, isQuireError } from '@quire/core';
import type { QuireError } from '@quire/core';
import { uniqueBucket } from '@quire/test-servers';
import { describeBlobStoreContract } from './contract.ts';
import { createS3BlobStore } from './s3.ts';
import type { S3BlobStore } from './s3.ts';

const { s3 } = inject('quireServers');
const names = s3.regions.map((r) => r.name);
const MiB = 1024 * 1024;

/** A client straight to a region's s3proxy (not through a relay), to look from outside. */
function adminClient(region: (typeof s3.regions)[number]): S3Client {
  return new S3Client({
    endpoint: region.endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: region.accessKeyId, secretAccessKey: region.secretAccessKey },
  });
}
const admins = new Map(s3.regions.map((r) => [r.name, adminClient(r)]));
const admin = (region: string): S3Client => admins.get(region)!;
afterAll(() => {
  for (const c of admins.values()) c.destroy();
});

/** Multipart uploads left unfinished in a bucket (must be none after any put, failed or not). */
async function pendingUploads(region: string, bucket: string): Promise<string[]> {
  const out = await admin(region).send(new ListMultipartUploadsCommand({ Bucket: bucket }));
  return (out.Uploads ?? []).map((u) => u.Key ?? '?');
}

/** Empty and drop a bucket in every region; fail if a multipart upload was left behind. */
async function dropBucket(bucket: string): Promise<void> {
  const leftovers: string[] = [];
  for (const region of names) {
    const client = admin(region);
    let exists = true;
    let token: string | undefined;
    do {
      let page;
      try {
        page = await client.send(new ListObjectsV2Command({ Bucket: bucket, ContinuationToken: token }));
      } catch (err) {
        if ((err as { name?: string }).name !== 'NoSuchBucket') throw err;
        exists = false;
        break;
      }
      for (const o of page.Contents ?? []) await client.send(new DeleteObjectCommand({ Bucket: bucket, Key: o.Key }));
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token !== undefined);
    if (!exists) continue;
    leftovers.push(...(await pendingUploads(region, bucket)).map((k) => `${region}:${k}`));
    await client.send(new DeleteBucketCommand({ Bucket: bucket }));
  }
  expect(leftovers, 'unfinished multipart uploads left behind').toEqual([]);
}

interface Relay {
  endpoint: string;
  /** Kill the relay: connections through it are cut and new ones refused. */
  close(): Promise<void>;
}

// The relay runs in a child process: its socket buffers must not count in the memory the
// contract measures in this process, and killing it is what a region's death looks like.
const RELAY_SOURCE = `
const net = require('node:net');
const [host, port] = [process.argv[1], Number(process.argv[2])];
const server = net.createServer((down) => {
  const up = net.connect(port, host);
  const cut = () => { down.destroy(); up.destroy(); };
  down.on('error', cut);
  up.on('error', cut);
  down.pipe(up).pipe(down);
});
server.listen(0, '127.0.0.1', () => process.stdout.write(server.address().port + '\\n'));
process.stdin.on('end', () => process.exit(0)); // the test process went away
process.stdin.resume();
`;

/** A TCP relay on an ephemeral loopback port to `target` (http://host:port). */
async function startRelay(target: string): Promise<Relay> {
  const { hostname, port } = new URL(target);
  const child = spawn(process.execPath, ['-e', RELAY_SOURCE, hostname, port], { stdio: ['pipe', 'pipe', 'inherit'] });
  const exited = once(child, 'exit');
  const [line] = (await Promise.race([
    once(child.stdout, 'data'),
    exited.then(() => {
      throw new Error(`the relay to ${target} exited before listening`);
    }),
  ])) as [Buffer];
  const local = Number(line.toString().trim());
  let closed: Promise<void> | undefined;
  return {
    endpoint: `http://127.0.0.1:${local}`,
    close: () =>
      (closed ??= (async () => {
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
        await exited;
      })()),
  };
}

async function makeS3Fixture() {
  const bucket = uniqueBucket('blob-contract');
  const relays = await Promise.all(s3.regions.map((r) => startRelay(r.endpoint)));
  const store = createS3BlobStore({
    regions: s3.regions.map((r, i) => ({
      name: r.name,
      endpoint: relays[i]!.endpoint,
      bucket,
      accessKeyId: r.accessKeyId,
      secretAccessKey: r.secretAccessKey,
    })),
    // 2 parts in flight per region (the default is 4), so the contract's 160 MiB memory
    // check tells "streams" (a few parts per region) from "buffers the object" with room to spare.
    queueSize: 2,
  });
  return {
    store,
    regions: names,
    breakRegion: async (region: string) => {
      await relays[names.indexOf(region)]!.close();
    },
    cleanup: async () => {
      store.destroy();
      await Promise.all(relays.map((r) => r.close()));
      await dropBucket(bucket);
    },
  };
}

describeBlobStoreContract('s3proxy', makeS3Fixture);

async function caught(run: () => Promise<unknown>): Promise<QuireError> {
  let err: unknown;
  try {
    await run();
  } catch (e) {
    err = e;
  }
  expect(isQuireError(err), `expected a QuireError, got ${String(err)}`).toBe(true);
  return err as QuireError;
}

function directStore(bucket: string, overrides: Partial<{ secretAccessKey: string; deadSecond: boolean }> = {}): S3BlobStore {
  const [a] = s3.regions;
  return createS3BlobStore({
    regions: [
      { name: a!.name, endpoint: a!.endpoint, bucket, accessKeyId: a!.accessKeyId, secretAccessKey: overrides.secretAccessKey ?? a!.secretAccessKey },
      ...(overrides.deadSecond
        ? [{ name: 'dead', endpoint: 'http://127.0.0.1:1', bucket, accessKeyId: a!.accessKeyId, secretAccessKey: a!.secretAccessKey }]
        : []),
    ],
  });
}

describe('s3 blob store specifics', () => {
  it('uploads big objects as multipart and small ones in one PUT', async () => {
    const bucket = uniqueBucket('blob-mpu');
    const store = directStore(bucket);
    try {
      await store.init();
      const [a] = names as [string];
      await store.put('big', Readable.from([Buffer.alloc(6 * MiB, 1), Buffer.alloc(6 * MiB, 2)]));
      await store.put('small', Buffer.from('tiny'));
      const big = await admin(a).send(new HeadObjectCommand({ Bucket: bucket, Key: 'big' }));
      const small = await admin(a).send(new HeadObjectCommand({ Bucket: bucket, Key: 'small' }));
      expect(big.ContentLength).toBe(12 * MiB);
      expect(big.ETag).toMatch(/-3"?$/); // 5 + 5 + 2 MiB parts
      expect(small.ETag).not.toMatch(/-\d+"?$/);
    } finally {
      store.destroy();
      await dropBucket(bucket);
    }
  });

  it('fails fast with UNAVAILABLE on a dead endpoint, falls back on get, and leaves nothing in the live region', async () => {
    const bucket = uniqueBucket('blob-dead');
    const [a] = names as [string];
    const healthy = directStore(bucket);
    const store = directStore(bucket, { deadSecond: true });
    try {
      await healthy.init();
      const t0 = Date.now();
      expect((await caught(() => store.init())).code).toBe(Code.UNAVAILABLE);
      expect(Date.now() - t0).toBeLessThan(15_000);

      await store.put('here', Buffer.from('in a'), { regions: [a] });
      const got = await store.get('here', { regions: ['dead', a] });
      expect(got.region).toBe(a);
      got.body.resume();

      const missing = await caught(() => store.get('nowhere'));
      expect(missing.code).toBe(Code.UNAVAILABLE); // the dead region might have had it
      expect(missing.message).toContain('dead');
      expect((await caught(() => store.get('nowhere', { regions: [a] }))).code).toBe(Code.NOT_FOUND);

      for (const [key, body] of [
        ['small', () => Buffer.from('small')],
        ['big', () => Readable.from([Buffer.alloc(6 * MiB, 1), Buffer.alloc(6 * MiB, 2)])],
      ] as const) {
        const t1 = Date.now();
        const err = await caught(() => store.put(key, body()));
        expect(err.code).toBe(Code.UNAVAILABLE);
        expect(err.cause).toBeDefined();
        expect(Date.now() - t1).toBeLessThan(15_000);
        expect(await healthy.head(key, a)).toBeUndefined();
      }
      expect(await pendingUploads(a, bucket)).toEqual([]);
      expect((await caught(() => store.head('here', 'dead'))).code).toBe(Code.UNAVAILABLE);
    } finally {
      store.destroy();
      healthy.destroy();
      await dropBucket(bucket);
    }
  });

  it('maps refused credentials to PERMISSION_DENIED and a missing bucket to FAILED_PRECONDITION', async () => {
    const bucket = uniqueBucket('blob-auth');
    const good = directStore(bucket);
    const bad = directStore(bucket, { secretAccessKey: 'not-the-secret' });
    const [a] = names as [string];
    try {
      expect((await caught(() => good.put('k', Buffer.from('x')))).code).toBe(Code.FAILED_PRECONDITION);
      await good.init();
      await good.put('k', Buffer.from('x'));
      expect((await caught(() => bad.put('k2', Buffer.from('x')))).code).toBe(Code.PERMISSION_DENIED);
      expect((await caught(() => bad.head('k', a))).code).toBe(Code.PERMISSION_DENIED);
      expect((await caught(() => bad.get('k'))).code).toBe(Code.PERMISSION_DENIED);
      expect(await good.head('k2', a)).toBeUndefined();
    } finally {
      good.destroy();
      bad.destroy();
      await dropBucket(bucket);
    }
  });

  it('checks its options', () => {
    const region = { name: 'r', endpoint: 'http://127.0.0.1:1', bucket: 'quire-test' };
    expect(() => createS3BlobStore({ regions: [] })).toThrow(/regions/);
    expect(() => createS3BlobStore({ regions: [region, region] })).toThrow(/repeats/);
    expect(() => createS3BlobStore({ regions: [{ ...region, bucket: 'Bad_Bucket' }] })).toThrow(/bucket/);
    expect(() => createS3BlobStore({ regions: [region], partSizeBytes: MiB })).toThrow(/partSizeBytes/);
    expect(() => createS3BlobStore({ regions: [region], queueSize: 0 })).toThrow(/queueSize/);
    expect(() => createS3BlobStore({ regions: [{ ...region, accessKeyId: 'x' }] })).toThrow(/secretAccessKey/);
  });
});

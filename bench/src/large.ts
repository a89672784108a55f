// 3. Large payloads: publish (through the publish service, streamed) and download (SDK
// consumer, verified) against raw @aws-sdk/lib-storage Upload and raw GetObject of the same
// bytes to the same s3proxy, alternating; each client in a fresh process for its peak RSS.
import { randomBytes } from 'node:crypto';
import { createWriteStream, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { once } from 'node:events';
import { createPublisher } from '@quire/client';
import type { Context } from './context.ts';
import { dropQuireEnv, quireEnv, rssMiB, startConsume, startPublish, startWorker } from './env.ts';
import { ratioSpread, spread, type Spread } from './stats.ts';

export interface LargeRow {
  bytes: number;
  /** MiB/s per repetition. */
  sdkPublish: Spread;
  rawUpload: Spread;
  sdkDownload: Spread;
  rawGet: Spread;
  publishRatio: Spread;
  downloadRatio: Spread;
  /** Peak RSS (MiB) of the client process. */
  rss: { sdkPublish: Spread; rawUpload: Spread; sdkDownload: Spread; rawGet: Spread };
  /** Peak RSS (MiB) of the publish service process over the whole benchmark. */
  publishServicePeakRss: number;
}

export interface LargeResult {
  rows: LargeRow[];
}

async function writeRandomFile(path: string, bytes: number): Promise<void> {
  const out = createWriteStream(path);
  const chunk = randomBytes(4 * 1024 * 1024);
  for (let left = bytes; left > 0; left -= chunk.length) {
    if (!out.write(left >= chunk.length ? chunk : chunk.subarray(0, left))) await once(out, 'drain');
  }
  out.end();
  await once(out, 'finish');
}

export async function largePayloads(ctx: Context): Promise<LargeResult> {
  const { sizes } = ctx;
  const q = quireEnv(ctx.servers, 'large');
  const region = ctx.servers.s3.regions[0];
  if (!region) throw new Error('no S3 region');
  const s3 = { endpoint: region.endpoint, accessKeyId: region.accessKeyId, secretAccessKey: region.secretAccessKey };
  const dir = mkdtempSync(join(tmpdir(), 'quire-bench-large-'));
  const publishProc = await startPublish(q);
  const consumeProc = await startConsume(q);
  const pub = createPublisher({ endpoint: publishProc.grpcAddress, actor: 'bench', regions: [region.name] });
  const bucket = q.buckets[region.name] as string;
  const rows: LargeRow[] = [];
  try {
    for (const bytes of sizes.payloads) {
      const mib = bytes / 1024 / 1024;
      const file = join(dir, `payload-${mib}.bin`);
      ctx.progress(`large payloads: writing a ${mib} MiB random file`);
      await writeRandomFile(file, bytes);
      const topic = `bench.large.m${mib}`;
      await pub.createTopic({ name: topic, owner: 'bench' });
      const reps = bytes >= 512 * 1024 * 1024 ? Math.min(2, sizes.reps) : sizes.reps;
      const m = { sdkPublish: [] as number[], rawUpload: [] as number[], sdkDownload: [] as number[], rawGet: [] as number[] };
      const r = { sdkPublish: [] as number[], rawUpload: [] as number[], sdkDownload: [] as number[], rawGet: [] as number[] };
      const run = async <T extends { ms: number }>(what: keyof typeof m, req: Parameters<Awaited<ReturnType<typeof startWorker>>['call']>[0]): Promise<T> => {
        const w = await startWorker(what);
        try {
          const out = await w.call<T>(req);
          m[what].push(mib / (out.ms / 1000));
          r[what].push(w.rss().peak);
          return out;
        } finally {
          await w.stop();
        }
      };
      for (let rep = 1; rep <= reps; rep++) {
        const rawKey = `raw/${mib}-${rep}.bin`;
        const sdkFirst = rep % 2 === 1;
        const up = async (): Promise<number> => (await run<{ ms: number; version: number }>('sdkPublish', { op: 'sdkPublish', endpoint: publishProc.grpcAddress, topic, file, region: region.name })).version;
        const raw = async (): Promise<void> => void (await run('rawUpload', { op: 'rawUpload', s3, bucket, key: rawKey, file }));
        let version: number;
        if (sdkFirst) {
          version = await up();
          await raw();
        } else {
          await raw();
          version = await up();
        }
        const down = async (): Promise<void> =>
          void (await run('sdkDownload', { op: 'sdkDownload', endpoint: consumeProc.grpcAddress, topic, version, region: region.name, s3: { [region.name]: { ...s3, forcePathStyle: true } } }));
        const get = async (): Promise<void> => void (await run('rawGet', { op: 'rawGet', s3, bucket, key: rawKey }));
        if (sdkFirst) {
          await down();
          await get();
        } else {
          await get();
          await down();
        }
        ctx.progress(
          `large ${mib} MiB rep ${rep}/${reps}: publish ${m.sdkPublish.at(-1)?.toFixed(0)} MiB/s (raw ${m.rawUpload.at(-1)?.toFixed(0)}), download ${m.sdkDownload.at(-1)?.toFixed(0)} MiB/s (raw ${m.rawGet.at(-1)?.toFixed(0)}); RSS publish ${r.sdkPublish.at(-1)?.toFixed(0)} MiB, download ${r.sdkDownload.at(-1)?.toFixed(0)} MiB`,
        );
      }
      rows.push({
        bytes,
        sdkPublish: spread(m.sdkPublish),
        rawUpload: spread(m.rawUpload),
        sdkDownload: spread(m.sdkDownload),
        rawGet: spread(m.rawGet),
        publishRatio: ratioSpread(m.sdkPublish, m.rawUpload),
        downloadRatio: ratioSpread(m.sdkDownload, m.rawGet),
        rss: { sdkPublish: spread(r.sdkPublish), rawUpload: spread(r.rawUpload), sdkDownload: spread(r.sdkDownload), rawGet: spread(r.rawGet) },
        publishServicePeakRss: rssMiB(publishProc.child.pid as number).peak,
      });
      rmSync(file, { force: true });
    }
  } finally {
    pub.close();
    await Promise.all([publishProc.stop(), consumeProc.stop()]);
    rmSync(dir, { recursive: true, force: true });
    // The payloads are big: leave nothing behind in the shared S3.
    await dropQuireEnv(ctx.servers, q);
  }
  return { rows };
}

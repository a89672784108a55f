// 3. Large payloads: publish (through the publish service, streamed; and the direct
// uploader, straight to S3 then committed) and download (the consumer's `download` into one
// verified buffer, and `downloadTo` into a verified file) against raw @aws-sdk/lib-storage
// Upload and raw GetObject of the same bytes to the same s3proxy, each repetition starting
// with another client; each client in a fresh process for its peak RSS.
import { randomBytes } from 'node:crypto';
import { createWriteStream, mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { once } from 'node:events';
import { createPublisher } from '@quire/client';
import type { Context } from './context.ts';
import { cpuMs, dropQuireEnv, quireEnv, rssMiB, startConsume, startPublish, startWorker } from './env.ts';
import { ratioSpread, spread, type Spread } from './stats.ts';

export interface LargeRow {
  bytes: number;
  /** MiB/s per repetition. */
  sdkPublish: Spread;
  /** `createDirectUploader` (absent in results from before it was measured). */
  sdkDirect?: Spread;
  rawUpload: Spread;
  sdkDownload: Spread;
  /** `consumer.downloadTo` (absent in results from before it was measured). */
  sdkDownloadTo?: Spread;
  rawGet: Spread;
  /** Raw GetObject hashed into a file and fsynced: the limit for `downloadTo` (absent in results from before it was measured). */
  rawGetToFile?: Spread;
  publishRatio: Spread;
  directRatio?: Spread;
  downloadRatio: Spread;
  downloadToRatio?: Spread;
  /** `downloadTo` against raw GetObject into a file (the same disk work). */
  downloadToFileRatio?: Spread;
  /**
   * CPU seconds per GiB moved (median over repetitions): the client process, plus the
   * Quire service it talks to during the call (publish service for publish and direct
   * upload, consume service for the downloads); s3proxy's own CPU is not counted.
   */
  cpuPerGiB?: Record<string, { client: number; service: number }>;
  /** Peak RSS (MiB) of the client process. */
  rss: { sdkPublish: Spread; sdkDirect?: Spread; rawUpload: Spread; sdkDownload: Spread; sdkDownloadTo?: Spread; rawGet: Spread; rawGetToFile?: Spread };
  /** Peak RSS (MiB) of the publish service process over the whole benchmark. */
  publishServicePeakRss: number;
}

export interface LargeResult {
  rows: LargeRow[];
}

/** `items` rotated left by `n` (each repetition starts with another client). */
const rotate = <T>(items: readonly T[], n: number): T[] => items.map((_, i) => items[(i + n) % items.length] as T);

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
      const kinds = ['sdkPublish', 'sdkDirect', 'rawUpload', 'sdkDownload', 'sdkDownloadTo', 'rawGet', 'rawGetToFile'] as const;
      type Kind = (typeof kinds)[number];
      const m = Object.fromEntries(kinds.map((k) => [k, [] as number[]])) as Record<Kind, number[]>;
      const r = Object.fromEntries(kinds.map((k) => [k, [] as number[]])) as Record<Kind, number[]>;
      const cpu = Object.fromEntries(kinds.map((k) => [k, { client: [] as number[], service: [] as number[] }])) as Record<Kind, { client: number[]; service: number[] }>;
      const servicePid = (what: Kind): number | undefined =>
        what === 'sdkPublish' || what === 'sdkDirect' ? publishProc.child.pid : what === 'sdkDownload' || what === 'sdkDownloadTo' ? consumeProc.child.pid : undefined;
      const run = async <T extends { ms: number; cpuMs?: number }>(what: Kind, req: Parameters<Awaited<ReturnType<typeof startWorker>>['call']>[0]): Promise<T> => {
        const w = await startWorker(what);
        try {
          const svc = servicePid(what);
          const s0 = svc === undefined ? 0 : cpuMs(svc);
          const out = await w.call<T>(req);
          const gib = bytes / 1024 ** 3;
          cpu[what].client.push((out.cpuMs ?? Number.NaN) / 1000 / gib);
          cpu[what].service.push(svc === undefined ? 0 : (cpuMs(svc) - s0) / 1000 / gib);
          m[what].push(mib / (out.ms / 1000));
          r[what].push(w.rss().peak);
          return out;
        } finally {
          await w.stop();
        }
      };
      const s3s = { [region.name]: { ...s3, forcePathStyle: true } };
      for (let rep = 1; rep <= reps; rep++) {
        const rawKey = `raw/${mib}-${rep}.bin`;
        let version = 0;
        const uploads: Record<string, () => Promise<void>> = {
          sdkPublish: async () => {
            version = (await run<{ ms: number; version: number }>('sdkPublish', { op: 'sdkPublish', endpoint: publishProc.grpcAddress, topic, file, region: region.name })).version;
          },
          sdkDirect: async () => void (await run('sdkDirect', { op: 'sdkDirect', endpoint: publishProc.grpcAddress, topic, file, region: region.name, s3: s3s })),
          rawUpload: async () => void (await run('rawUpload', { op: 'rawUpload', s3, bucket, key: rawKey, file })),
        };
        for (const k of rotate(Object.keys(uploads), rep - 1)) await (uploads[k] as () => Promise<void>)();
        const downloads: Record<string, () => Promise<void>> = {
          sdkDownload: async () =>
            void (await run('sdkDownload', { op: 'sdkDownload', endpoint: consumeProc.grpcAddress, topic, version, region: region.name, s3: s3s })),
          sdkDownloadTo: async () =>
            void (await run('sdkDownloadTo', { op: 'sdkDownloadTo', endpoint: consumeProc.grpcAddress, topic, version, region: region.name, s3: s3s, path: join(dir, `down-${mib}.bin`) })),
          rawGet: async () => void (await run('rawGet', { op: 'rawGet', s3, bucket, key: rawKey })),
          rawGetToFile: async () => void (await run('rawGetToFile', { op: 'rawGetToFile', s3, bucket, key: rawKey, path: join(dir, `raw-down-${mib}.bin`) })),
        };
        for (const k of rotate(Object.keys(downloads), rep - 1)) await (downloads[k] as () => Promise<void>)();
        const f = (k: Kind, a: Record<Kind, number[]>) => a[k].at(-1)?.toFixed(0);
        ctx.progress(
          `large ${mib} MiB rep ${rep}/${reps} (MiB/s, peak RSS MiB): publish ${f('sdkPublish', m)} (${f('sdkPublish', r)}), direct ${f('sdkDirect', m)} (${f('sdkDirect', r)}), raw upload ${f('rawUpload', m)} (${f('rawUpload', r)}); download ${f('sdkDownload', m)} (${f('sdkDownload', r)}), downloadTo ${f('sdkDownloadTo', m)} (${f('sdkDownloadTo', r)}), raw get ${f('rawGet', m)} (${f('rawGet', r)}), raw get to file ${f('rawGetToFile', m)} (${f('rawGetToFile', r)}); load ${loadavg()[0]?.toFixed(1)}`,
        );
      }
      rows.push({
        bytes,
        sdkPublish: spread(m.sdkPublish),
        sdkDirect: spread(m.sdkDirect),
        rawUpload: spread(m.rawUpload),
        sdkDownload: spread(m.sdkDownload),
        sdkDownloadTo: spread(m.sdkDownloadTo),
        rawGet: spread(m.rawGet),
        rawGetToFile: spread(m.rawGetToFile),
        publishRatio: ratioSpread(m.sdkPublish, m.rawUpload),
        directRatio: ratioSpread(m.sdkDirect, m.rawUpload),
        downloadRatio: ratioSpread(m.sdkDownload, m.rawGet),
        downloadToRatio: ratioSpread(m.sdkDownloadTo, m.rawGet),
        downloadToFileRatio: ratioSpread(m.sdkDownloadTo, m.rawGetToFile),
        rss: {
          sdkPublish: spread(r.sdkPublish),
          sdkDirect: spread(r.sdkDirect),
          rawUpload: spread(r.rawUpload),
          sdkDownload: spread(r.sdkDownload),
          sdkDownloadTo: spread(r.sdkDownloadTo),
          rawGet: spread(r.rawGet),
          rawGetToFile: spread(r.rawGetToFile),
        },
        cpuPerGiB: Object.fromEntries(kinds.map((k) => [k, { client: spread(cpu[k].client).median, service: spread(cpu[k].service).median }])),
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

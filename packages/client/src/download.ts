/**
 * Fetching a version's bytes: inline bytes come with the poll answer (or ReadInline); S3
 * objects are read from the version's locations in order — the consumer's own region
 * first — falling back to the next region when one fails. Every payload is checked
 * against the recorded size and SHA-256 before anyone sees it. Only this file imports
 * the AWS SDK.
 */
import { createHash, hash as hashOnce, randomBytes } from 'node:crypto';
import { open, rename, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { GetObjectCommand, S3Client, type S3ClientConfig } from '@aws-sdk/client-s3';
import { Code, QuireError } from '@quire/core';
import type { BlobLocation } from '@quire/core';
import type { VersionInfo } from './mapping.ts';

/** How to reach S3 in one region. */
export interface S3RegionClientOptions {
  endpoint?: string;
  accessKeyId?: string;
  secretAccessKey?: string;
  /** Default: true when an endpoint is given (S3-compatible servers). */
  forcePathStyle?: boolean;
  /** AWS signing region (default: the region name, or us-east-1 with a custom endpoint). */
  awsRegion?: string;
  /**
   * The Quire bucket in this region (the services' `QUIRE_S3_REGIONS` bucket): where the
   * consumer reads the topics' fallback snapshots. Without it, this region's snapshots are
   * not read (versions' own objects carry their bucket and are read anyway).
   */
  bucket?: string;
}

/** One region's S3 read that failed (the next region is tried). */
export interface RegionFailure {
  region: string;
  /** `corrupt`: the object was read but refused (checksum mismatch, an unreadable snapshot); `unavailable`: it could not be read (unreachable, missing). */
  reason: 'corrupt' | 'unavailable';
  error: Error;
  /** `topic version N` or `snapshot of topic`. */
  what: string;
}

/** Throws DATA_LOSS unless `bytes` has the recorded size and SHA-256. */
export function verifyPayload(bytes: Uint8Array, v: Pick<VersionInfo, 'topic' | 'version' | 'size' | 'sha256'>): void {
  if (bytes.byteLength !== v.size) throw sizeMismatch(v, bytes.byteLength);
  // One-shot hash (no Hash object): this runs for every inline payload of every poll answer.
  const got = hashOnce('sha256', bytes, 'hex');
  if (got !== v.sha256.toLowerCase()) throw shaMismatch(v, got);
}

/**
 * A body of `v.size` bytes read into one buffer of exactly that size, hashed as it arrives:
 * one copy of the payload in memory (collecting the chunks and concatenating them held two,
 * 2.2 GB of RSS for a 1 GiB version, see bench/REPORT.md) and no second pass for SHA-256.
 * Throws DATA_LOSS as `verifyPayload` does.
 */
export async function readVerified(body: AsyncIterable<Uint8Array>, v: Pick<VersionInfo, 'topic' | 'version' | 'size' | 'sha256'>): Promise<Uint8Array> {
  let out: Buffer | undefined = Buffer.allocUnsafe(v.size);
  let at = 0;
  return streamVerified(body, v, {
    write(chunk) {
      out?.set(chunk, at);
      at += chunk.byteLength;
    },
    finish: async () => out as Buffer,
    async abort() {
      out = undefined;
    },
  });
}

/** Bytes of a download so far (of the stored payload: the ciphertext for an encrypted topic). */
export interface DownloadProgress {
  loaded: number;
  total: number;
  /** Where they come from: an S3 region, `inline`, or `service` (streamed by the consume service). A retry from the next source starts again from 0. */
  source: string;
}

/**
 * Where a download's bytes go as they arrive (a file): `write` is called with the stored
 * bytes in order, `finish` once they are all there and verified (size and SHA-256), `abort`
 * when the download failed or the bytes were refused — the sink must then leave nothing
 * behind. One sink per attempt: a retry from the next region gets a fresh one.
 */
export interface PayloadSink<T> {
  write(chunk: Uint8Array): Promise<void> | void;
  finish(): Promise<T>;
  abort(): Promise<void>;
}

/**
 * A stored payload's plaintext as it streams (decryption): `update` may hold bytes back,
 * `final` returns the rest and throws when the payload does not authenticate. Nothing it
 * returns is usable before `final` succeeded: the file sink writes it to a temp file only.
 */
export interface PayloadTransform {
  update(chunk: Uint8Array): Uint8Array;
  final(): Uint8Array;
}

function sizeMismatch(v: Pick<VersionInfo, 'topic' | 'version' | 'size'>, got: number): QuireError {
  return new QuireError(Code.DATA_LOSS, `${v.topic} version ${v.version}: got ${got} bytes, expected ${v.size}`, { field: 'size' });
}

function shaMismatch(v: Pick<VersionInfo, 'topic' | 'version' | 'sha256'>, got: string): QuireError {
  return new QuireError(Code.DATA_LOSS, `${v.topic} version ${v.version}: SHA-256 ${got} does not match the recorded ${v.sha256}`, { field: 'sha256' });
}

/**
 * `body` written into `sink` as it arrives, hashed on the way, then checked against the
 * recorded size and SHA-256 before `sink.finish()`; on any failure (a read error, too many
 * or too few bytes, another SHA-256) the sink is aborted and DATA_LOSS (or the read error)
 * is thrown. Memory: one chunk at a time, whatever the payload's size.
 */
export async function streamVerified<T>(
  body: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
  v: Pick<VersionInfo, 'topic' | 'version' | 'size' | 'sha256'>,
  sink: PayloadSink<T>,
  onProgress?: (loaded: number) => void,
): Promise<T> {
  const hash = createHash('sha256');
  let got = 0;
  try {
    for await (const chunk of body) {
      got += chunk.byteLength;
      if (got > v.size) throw sizeMismatch(v, got);
      hash.update(chunk);
      await sink.write(chunk);
      onProgress?.(got);
    }
    if (got !== v.size) throw sizeMismatch(v, got);
    const sha = hash.digest('hex');
    if (sha !== v.sha256.toLowerCase()) throw shaMismatch(v, sha);
    return await sink.finish();
  } catch (err) {
    await sink.abort().catch(() => undefined);
    throw err;
  }
}

/**
 * A sink writing into a temp file beside `path` (same directory, so the final rename is
 * atomic), through `transform` when given (decryption); `finish` fsyncs it and renames it
 * to `path`, `abort` deletes it. `path` is never seen half-written or unverified.
 */
export async function fileSink(path: string, transform?: PayloadTransform): Promise<PayloadSink<string>> {
  const tmp = join(dirname(path), `.${basename(path)}.${randomBytes(6).toString('hex')}.quire-tmp`);
  let fh;
  try {
    fh = await open(tmp, 'wx');
  } catch (err) {
    throw QuireError.invalid('path', `cannot write beside ${path}: ${err instanceof Error ? err.message : String(err)}`);
  }
  const file = fh;
  // One write in flight while the next chunk is read (the chunks are fresh buffers, never reused).
  let pending: Promise<void> = Promise.resolve();
  const writeAll = async (bytes: Uint8Array): Promise<void> => {
    for (let at = 0; at < bytes.byteLength; ) at += (await file.write(bytes, at)).bytesWritten;
  };
  const put = async (bytes: Uint8Array): Promise<void> => {
    await pending;
    if (bytes.byteLength === 0) return;
    pending = writeAll(bytes);
    pending.catch(() => undefined); // awaited (and thrown) at the next write or at finish
  };
  const diskError = (err: unknown): QuireError =>
    err instanceof QuireError ? err : new QuireError(Code.INTERNAL, `writing ${tmp}: ${err instanceof Error ? err.message : String(err)}`, { field: 'path', cause: err });
  let closed = false;
  return {
    async write(chunk) {
      try {
        await put(transform ? transform.update(chunk) : chunk);
      } catch (err) {
        throw diskError(err);
      }
    },
    async finish() {
      try {
        if (transform) await put(transform.final());
        await pending;
        await file.sync();
        closed = true;
        await file.close();
        await rename(tmp, path);
      } catch (err) {
        throw diskError(err);
      }
      return path;
    },
    async abort() {
      await pending.catch(() => undefined);
      if (!closed) {
        closed = true;
        await file.close().catch(() => undefined);
      }
      await unlink(tmp).catch(() => undefined);
    },
  };
}

/** The locations with `region`'s first, the others in their given order. */
export function regionFirst(locations: readonly BlobLocation[], region: string | undefined): BlobLocation[] {
  if (region === undefined) return [...locations];
  return [...locations.filter((l) => l.region === region), ...locations.filter((l) => l.region !== region)];
}

/** A small object of unknown size (a fallback snapshot); versions go through `readVerified`. */
async function getBytes(client: S3Client, bucket: string, key: string): Promise<Uint8Array> {
  const res = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  if (res.Body === undefined) throw new QuireError(Code.DATA_LOSS, 'empty response body');
  return res.Body.transformToByteArray();
}

/**
 * The S3 client of one region as the SDK configures it (the downloader, the direct
 * uploader): endpoint and path style, credentials when given, and no flexible checksums
 * (we verify SHA-256 ourselves; S3-compatible servers vary in their support). `extra`: the
 * caller's attempts and timeouts.
 */
export function s3RegionClient(name: string, r: S3RegionClientOptions, extra: Pick<S3ClientConfig, 'maxAttempts' | 'requestHandler'>): S3Client {
  return new S3Client({
    region: r.awsRegion ?? (r.endpoint === undefined ? name : 'us-east-1'),
    ...(r.endpoint === undefined ? {} : { endpoint: r.endpoint }),
    forcePathStyle: r.forcePathStyle ?? r.endpoint !== undefined,
    ...(r.accessKeyId === undefined || r.secretAccessKey === undefined ? {} : { credentials: { accessKeyId: r.accessKeyId, secretAccessKey: r.secretAccessKey } }),
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    ...extra,
  });
}

export class S3Downloader {
  readonly #clients = new Map<string, S3Client>();
  readonly #buckets = new Map<string, string>();
  readonly #region: string | undefined;
  /** Told about every region that failed, even when a later one succeeds. */
  onRegionFailure: ((f: RegionFailure) => void) | undefined;

  constructor(regions: Readonly<Record<string, S3RegionClientOptions>> = {}, consumerRegion?: string) {
    this.#region = consumerRegion;
    for (const [name, r] of Object.entries(regions)) {
      if ((r.accessKeyId === undefined) !== (r.secretAccessKey === undefined)) {
        throw QuireError.invalid(`s3.${name}.secretAccessKey`, 'accessKeyId and secretAccessKey go together');
      }
      if (r.bucket !== undefined) this.#buckets.set(name, r.bucket);
      this.#clients.set(
        name,
        s3RegionClient(name, r, {
          maxAttempts: 2,
          // An unreachable region (a partition drops packets) must fail in seconds, not minutes:
          // the next region, the snapshot fallback or the disk cache are waiting. The request
          // timeout is per socket inactivity, so large downloads are not cut short.
          requestHandler: { connectionTimeout: 3000, requestTimeout: 30_000 },
        }),
      );
    }
  }

  /**
   * The verified bytes of an S3 version: each location in turn (own region first); a
   * missing client, a failed read or a checksum mismatch moves on to the next. When all
   * fail, the error names every region tried.
   */
  async fetch(v: VersionInfo, throughService?: (v: VersionInfo) => Promise<Uint8Array>): Promise<Uint8Array> {
    return this.fetchInto(v, undefined, (body) => readVerified(body, v), throughService);
  }

  /**
   * An S3 version's bytes through `consume` (`readVerified`, or `streamVerified` into a
   * fresh sink per attempt): each location in turn, own region first; a missing client, a
   * failed read or a refused payload moves on to the next, then to `throughService`. When
   * all fail, the error names every source tried (DATA_LOSS when the last was refused).
   */
  async fetchInto<T>(
    v: VersionInfo,
    onSource: ((source: string) => void) | undefined,
    consume: (body: AsyncIterable<Uint8Array>) => Promise<T>,
    throughService?: (v: VersionInfo) => Promise<T>,
  ): Promise<T> {
    if (v.pointer.kind !== 's3') throw new QuireError(Code.INTERNAL, `${v.topic} version ${v.version} is not stored in S3`);
    const tried: string[] = [];
    let last: unknown;
    for (const loc of regionFirst(v.pointer.locations, this.#region)) {
      const client = this.#clients.get(loc.region);
      if (client === undefined) {
        tried.push(`${loc.region}: no S3 client configured`);
        continue;
      }
      try {
        onSource?.(loc.region);
        const res = await client.send(new GetObjectCommand({ Bucket: loc.bucket, Key: loc.key }));
        if (res.Body === undefined) throw new QuireError(Code.DATA_LOSS, 'empty response body');
        return await consume(res.Body as AsyncIterable<Uint8Array>);
      } catch (err) {
        last = err;
        tried.push(`${loc.region}: ${err instanceof Error ? err.message : String(err)}`);
        this.#reportFailure(loc.region, `${v.topic} version ${v.version}`, err);
      }
    }
    // Last resort: the consume service reads it from its blob store and streams it.
    if (throughService !== undefined) {
      try {
        onSource?.('service');
        return await throughService(v);
      } catch (err) {
        tried.push(`through the consume service: ${err instanceof Error ? err.message : String(err)}`);
        if (last === undefined) last = err;
      }
    }
    // No region we could even try: a configuration problem, not a transient one.
    const code =
      last === undefined ? Code.FAILED_PRECONDITION : last instanceof QuireError && last.code === Code.DATA_LOSS ? Code.DATA_LOSS : Code.UNAVAILABLE;
    throw new QuireError(code, `${v.topic} version ${v.version}: could not read the payload from S3 (${tried.join('; ') || 'no locations'})`, {
      cause: last,
    });
  }

  #reportFailure(region: string, what: string, err: unknown): void {
    const error = err instanceof Error ? err : new Error(String(err));
    const reason = err instanceof QuireError && (err.code === Code.DATA_LOSS || err.code === Code.INVALID_ARGUMENT) ? 'corrupt' : 'unavailable';
    try {
      this.onRegionFailure?.({ region, reason, error, what });
    } catch {
      // a listener's failure is not the download's
    }
  }

  /** Regions whose Quire bucket is known (for snapshots), the consumer's own first. */
  #snapshotRegions(): string[] {
    const names = [...this.#buckets.keys()];
    return this.#region === undefined ? names : [...names.filter((n) => n === this.#region), ...names.filter((n) => n !== this.#region)];
  }

  /**
   * The first region (own first) whose object `key` in its Quire bucket passes `check`; a
   * region that fails (unreachable, missing, refused by `check`) is reported and skipped.
   * UNAVAILABLE naming every region when none does; FAILED_PRECONDITION when no region has a bucket.
   */
  async readFromBuckets<T>(key: string, what: string, check: (bytes: Uint8Array, region: string) => T): Promise<{ value: T; region: string }> {
    const regions = this.#snapshotRegions();
    if (regions.length === 0) throw new QuireError(Code.FAILED_PRECONDITION, `${what}: no S3 region has a bucket configured (s3.<region>.bucket)`, { field: 's3' });
    const tried: string[] = [];
    for (const region of regions) {
      try {
        const bytes = await getBytes(this.#clients.get(region) as S3Client, this.#buckets.get(region) as string, key);
        return { value: check(bytes, region), region };
      } catch (err) {
        tried.push(`${region}: ${err instanceof Error ? err.message : String(err)}`);
        this.#reportFailure(region, what, err);
      }
    }
    throw new QuireError(Code.UNAVAILABLE, `${what}: could not be read from S3 (${tried.join('; ')})`);
  }

  close(): void {
    for (const c of this.#clients.values()) c.destroy();
  }
}

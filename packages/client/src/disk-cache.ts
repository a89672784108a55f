/**
 * The local disk cache: the last applied version of each topic (descriptor + bytes), so a
 * consumer restarted while the consume service and S3 are both down still starts.
 *
 * One file per topic, `<dir>/<topic>.quire` (topic names are `[a-z0-9._-]`, safe as file
 * names). Format `quire.cache/1`, three parts:
 *
 *     quire.cache/1 <sha256 hex of the descriptor line> <payload byte length>\n
 *     <descriptor as one line of JSON>\n
 *     <payload bytes>
 *
 * A file is used only when all three check: the header, the descriptor line's SHA-256, and
 * the payload's size and SHA-256 against the descriptor. Anything else (truncated, edited,
 * bit-flipped, another format) is refused with a DATA_LOSS error and never applied.
 * Writes are atomic: a temporary file in the same directory, fsync, rename over the old
 * one, fsync of the directory; a crash leaves the old file or the new one, never half.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, open, readFile, readdir, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { Code, QuireError } from '@quire/core';
import { verifyPayload } from './download.ts';
import type { VersionInfo } from './mapping.ts';

export const CACHE_FORMAT = 'quire.cache/1';

const sha256 = (b: Uint8Array | string): string => createHash('sha256').update(b).digest('hex');

export interface CachedVersion {
  descriptor: VersionInfo;
  bytes: Uint8Array;
  /** When the file was written (its mtime, ms since the epoch; 0 when parsed from bytes). */
  savedAt: number;
}

/** The bytes of a cache file for `descriptor` + `bytes` (which must match the descriptor). */
export function encodeCacheFile(descriptor: VersionInfo, bytes: Uint8Array): Buffer {
  verifyPayload(bytes, descriptor);
  const line = JSON.stringify(descriptor);
  const header = `${CACHE_FORMAT} ${sha256(line)} ${bytes.byteLength}\n`;
  return Buffer.concat([Buffer.from(header + line + '\n', 'utf8'), bytes]);
}

function corrupt(what: string): QuireError {
  return new QuireError(Code.DATA_LOSS, `cache file ${what}`, { field: 'cacheDir' });
}

/** Parse and verify a cache file; DATA_LOSS naming what is wrong when it cannot be trusted. */
export function parseCacheFile(file: Uint8Array, expectedTopic?: string): CachedVersion {
  const buf = Buffer.from(file.buffer, file.byteOffset, file.byteLength);
  const nl1 = buf.indexOf(0x0a);
  if (nl1 < 0 || nl1 > 200) throw corrupt('has no header line');
  const m = /^quire\.cache\/(\d+) ([0-9a-f]{64}) (\d+)$/.exec(buf.subarray(0, nl1).toString('utf8'));
  if (m === null) throw corrupt('has a malformed header');
  if (`quire.cache/${m[1]}` !== CACHE_FORMAT) throw corrupt(`has format quire.cache/${m[1]}, expected ${CACHE_FORMAT}`);
  const nl2 = buf.indexOf(0x0a, nl1 + 1);
  if (nl2 < 0) throw corrupt('is truncated in its descriptor');
  const line = buf.subarray(nl1 + 1, nl2).toString('utf8');
  if (sha256(line) !== m[2]) throw corrupt('descriptor does not match its checksum');
  let descriptor: VersionInfo;
  try {
    descriptor = JSON.parse(line) as VersionInfo;
  } catch {
    throw corrupt('descriptor is not JSON');
  }
  if (typeof descriptor !== 'object' || descriptor === null || typeof descriptor.topic !== 'string' || !Number.isInteger(descriptor.version) || descriptor.version < 1) {
    throw corrupt('descriptor lacks topic / version');
  }
  if (expectedTopic !== undefined && descriptor.topic !== expectedTopic) throw corrupt(`holds topic ${descriptor.topic}, not ${expectedTopic}`);
  const bytes = new Uint8Array(buf.subarray(nl2 + 1));
  if (bytes.byteLength !== Number(m[3])) throw corrupt(`payload has ${bytes.byteLength} bytes, header says ${m[3]}`);
  try {
    verifyPayload(bytes, descriptor);
  } catch (err) {
    throw corrupt(`payload: ${(err as Error).message}`);
  }
  return { descriptor, bytes, savedAt: 0 };
}

export class DiskCache {
  readonly dir: string;

  constructor(dir: string) {
    if (typeof dir !== 'string' || dir === '') throw QuireError.invalid('cacheDir', 'must be a directory path');
    this.dir = dir;
  }

  pathOf(topic: string): string {
    return join(this.dir, `${topic}.quire`);
  }

  /** The cached version of `topic`; undefined when there is none; DATA_LOSS when the file is corrupt. */
  async load(topic: string): Promise<CachedVersion | undefined> {
    let file: Buffer;
    let savedAt: number;
    try {
      [file, savedAt] = await Promise.all([readFile(this.pathOf(topic)), stat(this.pathOf(topic)).then((st) => st.mtimeMs)]);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw new QuireError(Code.UNAVAILABLE, `cache file ${this.pathOf(topic)}: ${(err as Error).message}`, { field: 'cacheDir', cause: err });
    }
    try {
      return { ...parseCacheFile(file, topic), savedAt };
    } catch (err) {
      const q = err as QuireError;
      throw new QuireError(q.code, `${this.pathOf(topic)}: ${q.message}`, { field: 'cacheDir', cause: err });
    }
  }

  /**
   * Remove temporary files a crash left behind (older than `olderThanMs`, default 10 min, so
   * a write in progress in another process sharing the directory is left alone). Returns
   * how many were removed; a missing directory is not an error.
   */
  async sweep(olderThanMs = 10 * 60_000): Promise<number> {
    let names: string[];
    try {
      names = await readdir(this.dir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 0;
      throw err;
    }
    let removed = 0;
    for (const name of names) {
      if (!name.endsWith('.tmp')) continue;
      const path = join(this.dir, name);
      try {
        if (Date.now() - (await stat(path)).mtimeMs < olderThanMs) continue;
        await rm(path, { force: true });
        removed++;
      } catch {
        // gone meanwhile
      }
    }
    return removed;
  }

  /** Replace `topic`'s cached version atomically (temp file + fsync + rename + directory fsync). */
  async save(descriptor: VersionInfo, bytes: Uint8Array): Promise<void> {
    const data = encodeCacheFile(descriptor, bytes);
    await mkdir(this.dir, { recursive: true });
    const target = this.pathOf(descriptor.topic);
    const tmp = `${target}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
    try {
      const fh = await open(tmp, 'w', 0o644);
      try {
        await fh.writeFile(data);
        await fh.sync();
      } finally {
        await fh.close();
      }
      await rename(tmp, target);
    } catch (err) {
      await rm(tmp, { force: true });
      throw err;
    }
    const dh = await open(this.dir, 'r');
    try {
      await dh.sync();
    } finally {
      await dh.close();
    }
  }
}

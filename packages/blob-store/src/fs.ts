/**
 * BlobStore on local directories, one per region (the embedded default has one, `local`).
 *
 * Each object is one file at `<dir>/<key>`: a small header (magic, length, JSON with the
 * content type and metadata) followed by the bytes. One file per object means an object
 * and its metadata appear, change and disappear together. A put writes a temporary file
 * beside the target (`~<uuid>.tmp`; "~" never occurs in a key, so temporary files can
 * never clash with objects and `list` skips them), fsyncs it and renames it into place:
 * readers see the old object or the new one, never a part.
 *
 * Limitation: a directory tree cannot hold both `a` and `a/b`; the second put fails with
 * FAILED_PRECONDITION (S3 allows it; Quire's keys never need it).
 */
import { randomUUID } from 'node:crypto';
import { createWriteStream, open as openCallback } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { mkdir, open, readdir, rename, stat, unlink } from 'node:fs/promises';
import { basename, dirname, join, resolve, sep } from 'node:path';
import { Readable } from 'node:stream';
import type { Writable } from 'node:stream';
import { finished } from 'node:stream/promises';
import { promisify } from 'node:util';
import type {
  BlobGetOptions,
  BlobGetResult,
  BlobHead,
  BlobListEntry,
  BlobPutOptions,
  BlobPutResult,
  BlobStore,
} from '@quire/core';
import { Code, QuireError } from '@quire/core';
import {
  checkKey,
  checkPrefix,
  checkPut,
  checkRegion,
  missingEverywhere,
  resolveRegions,
  toReadable,
  translatingBody,
} from './common.ts';
import { tee } from './tee.ts';

export interface FsRegionOptions {
  /** Region name, as used in BlobLocation and in `regions` options. */
  name: string;
  /** Directory holding the region's objects (created by `init()`). */
  dir: string;
}

export interface FsBlobStoreOptions {
  regions: readonly FsRegionOptions[];
}

interface Region {
  name: string;
  root: string;
}

const MAGIC = Buffer.from('QBLOB001', 'ascii');
const PREFIX_BYTES = MAGIC.length + 4;
const HEADER_MAX = 64 * 1024;

interface Header {
  contentType: string;
  metadata: Record<string, string>;
}

export function createFsBlobStore(options: FsBlobStoreOptions): BlobStore {
  const regions = checkOptions(options);
  const names = regions.map((r) => r.name);
  const byName = new Map(regions.map((r) => [r.name, r]));
  const regionOf = (name: string): Region => byName.get(name) as Region;

  /** The object's path, refusing (defence in depth after key validation) anything outside the root. */
  function pathOf(region: Region, key: string): string {
    const p = resolve(region.root, ...key.split('/'));
    if (!p.startsWith(region.root + sep)) throw QuireError.invalid('key', `"${key}" resolves outside the region's directory`);
    return p;
  }

  /** The root must exist (init creates it): a vanished root is an unavailable region, not an empty one. */
  async function requireRoot(region: Region): Promise<void> {
    let ok = false;
    try {
      ok = (await stat(region.root)).isDirectory();
    } catch {
      ok = false;
    }
    if (!ok) {
      throw new QuireError(Code.UNAVAILABLE, `region ${region.name}: directory ${region.root} is not available (was init() called?)`);
    }
  }

  /** Open an object; undefined when missing (after checking the region itself is there). */
  async function openObject(region: Region, key: string): Promise<{ fh: FileHandle; header: Header; offset: number; size: number } | undefined> {
    const path = pathOf(region, key);
    let fh: FileHandle | undefined;
    try {
      fh = await open(path, 'r');
      const st = await fh.stat();
      if (!st.isFile()) throw Object.assign(new Error(`${path} is not a file`), { code: 'EISDIR' });
      const { header, offset } = await readHeader(fh, path);
      return { fh, header, offset, size: st.size - offset };
    } catch (err) {
      await fh?.close().catch(() => undefined);
      if (isMissing(err)) {
        await requireRoot(region);
        return undefined;
      }
      throw fsError(err, `region ${region.name}: reading ${key}`);
    }
  }

  async function put(key: string, body: Readable | Uint8Array, options: BlobPutOptions = {}): Promise<BlobPutResult> {
    let args;
    let source: Readable;
    try {
      args = checkPut(key, options, names);
      source = toReadable(body);
    } catch (err) {
      if (body instanceof Readable) body.destroy();
      throw err;
    }
    const header = encodeHeader({ contentType: args.contentType, metadata: args.metadata });
    const controller = new AbortController();
    const fail = (err: unknown): void => {
      if (!controller.signal.aborted) controller.abort(err);
    };
    const files: TempFile[] = [];
    const committed: string[] = [];
    try {
      for (const name of args.regions) {
        const region = regionOf(name);
        await requireRoot(region);
        const final = pathOf(region, args.key);
        await mkdir(dirname(final), { recursive: true });
        const tmp = join(dirname(final), `~${randomUUID()}.tmp`);
        const fd = await openFd(tmp, 'wx', 0o644);
        // flush: the stream fsyncs the file before closing it, so the bytes are on disk
        // before the rename makes the name point at them.
        const stream = createWriteStream(tmp, { fd, flush: true, highWaterMark: 256 * 1024 });
        files.push({ region, tmp, final, stream });
        // Registered before the tee waits on the stream, so the tee sees the translated error.
        stream.on('error', (err) => fail(fsError(err, `region ${region.name}: writing ${args.key}`)));
        stream.write(header);
      }
      const result = await tee(source, files.map((f) => f.stream), {
        size: args.size,
        onProgress: args.onProgress,
        signal: controller.signal,
      });
      await Promise.all(files.map((f) => finished(f.stream))); // written, fsynced and closed
      for (const f of files) {
        await rename(f.tmp, f.final);
        committed.push(f.final);
      }
      await Promise.all(files.map((f) => syncDir(dirname(f.final))));
      return {
        size: result.size,
        sha256: result.sha256,
        locations: files.map((f) => ({ region: f.region.name, bucket: basename(f.region.root), key: args.key })),
      };
    } catch (err) {
      fail(err);
      source.destroy();
      await Promise.all(
        files.map(async (f) => {
          f.stream.destroy();
          await finished(f.stream).catch(() => undefined); // closed: nothing can recreate the file
          await unlink(f.tmp).catch(() => undefined);
        }),
      );
      // A rename failed after others succeeded: take the committed ones back.
      await Promise.all(committed.map((p) => unlink(p).catch(() => undefined)));
      throw fsError(controller.signal.reason, `writing ${args.key}`);
    }
  }

  async function get(key: string, options: BlobGetOptions = {}): Promise<BlobGetResult> {
    const k = checkKey(key);
    const order = resolveRegions(options.regions, names);
    const failures: QuireError[] = [];
    for (const name of order) {
      let found;
      try {
        found = await openObject(regionOf(name), k);
      } catch (err) {
        failures.push(fsError(err, `region ${name}`));
        continue;
      }
      if (found === undefined) continue;
      const body = translatingBody(found.fh.createReadStream({ start: found.offset }), (err) =>
        fsError(err, `region ${name}: reading ${k}`),
      );
      return { region: name, size: found.size, body };
    }
    throw missingEverywhere(k, order, failures);
  }

  async function head(key: string, region: string): Promise<BlobHead | undefined> {
    const k = checkKey(key);
    const r = regionOf(checkRegion(region, names));
    const found = await openObject(r, k);
    if (found === undefined) return undefined;
    await found.fh.close();
    return { region: r.name, size: found.size, contentType: found.header.contentType, metadata: found.header.metadata };
  }

  async function del(key: string, regionList?: readonly string[]): Promise<void> {
    const k = checkKey(key);
    const targets = resolveRegions(regionList, names);
    const results = await Promise.allSettled(
      targets.map(async (name) => {
        const region = regionOf(name);
        try {
          await unlink(pathOf(region, k));
        } catch (err) {
          if (!isMissing(err)) throw fsError(err, `region ${name}: deleting ${k}`);
          await requireRoot(region);
        }
      }),
    );
    for (const r of results) if (r.status === 'rejected') throw r.reason;
  }

  function list(prefix: string, region: string): AsyncIterable<BlobListEntry> {
    const p = checkPrefix(prefix);
    const r = regionOf(checkRegion(region, names));
    const baseRel = p.slice(0, p.lastIndexOf('/') + 1); // "" or "a/b/"
    return {
      async *[Symbol.asyncIterator]() {
        await requireRoot(r);
        yield* walk(r, baseRel, p);
      },
    };
  }

  /** Files under `<root>/<rel>` whose key starts with `prefix`, depth first, names sorted. */
  async function* walk(region: Region, rel: string, prefix: string): AsyncGenerator<BlobListEntry> {
    let entries;
    try {
      entries = await readdir(rel === '' ? region.root : pathOf(region, rel.slice(0, -1)), { withFileTypes: true });
    } catch (err) {
      if (isMissing(err)) return;
      throw fsError(err, `region ${region.name}: listing ${prefix}`);
    }
    entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const entry of entries) {
      if (entry.name.includes('~')) continue; // temporary files of puts in progress
      const key = rel + entry.name;
      if (entry.isDirectory()) {
        const dir = `${key}/`;
        if (dir.startsWith(prefix) || prefix.startsWith(dir)) yield* walk(region, dir, prefix);
      } else if (entry.isFile() && key.startsWith(prefix)) {
        let found;
        try {
          found = await openObject(region, key);
        } catch (err) {
          if (err instanceof QuireError && err.code === Code.DATA_LOSS) continue; // not a blob file: not an object
          throw err;
        }
        if (found === undefined) continue; // deleted while listing
        const st = await found.fh.stat();
        await found.fh.close();
        yield { key, size: found.size, lastModified: Math.floor(st.mtimeMs) };
      }
    }
  }

  return {
    regions: names,
    bucketOf(region: string): string {
      return basename(regionOf(checkRegion(region, names)).root);
    },
    async init(): Promise<void> {
      for (const r of regions) {
        try {
          await mkdir(r.root, { recursive: true });
        } catch (err) {
          throw fsError(err, `region ${r.name}: creating ${r.root}`);
        }
      }
    },
    put,
    get,
    head,
    delete: del,
    list,
  };
}

interface TempFile {
  region: Region;
  tmp: string;
  final: string;
  stream: Writable;
}

const openFd = promisify(openCallback);

function checkOptions(options: FsBlobStoreOptions): Region[] {
  if (!Array.isArray(options?.regions) || options.regions.length === 0) {
    throw QuireError.invalid('regions', 'must list at least one region');
  }
  const seenNames = new Set<string>();
  const seenDirs = new Set<string>();
  return options.regions.map((r, i) => {
    if (typeof r.name !== 'string' || r.name === '') throw QuireError.invalid(`regions[${i}].name`, 'is required');
    if (seenNames.has(r.name)) throw QuireError.invalid(`regions[${i}].name`, `repeats region "${r.name}"`);
    if (typeof r.dir !== 'string' || r.dir === '') throw QuireError.invalid(`regions[${i}].dir`, 'is required');
    const root = resolve(r.dir);
    if (seenDirs.has(root)) throw QuireError.invalid(`regions[${i}].dir`, `${root} is already used by another region`);
    seenNames.add(r.name);
    seenDirs.add(root);
    return { name: r.name, root };
  });
}

function encodeHeader(header: Header): Buffer {
  const json = Buffer.from(JSON.stringify(header), 'utf8');
  const prefix = Buffer.alloc(PREFIX_BYTES);
  MAGIC.copy(prefix, 0);
  prefix.writeUInt32BE(json.length, MAGIC.length);
  return Buffer.concat([prefix, json]);
}

async function readHeader(fh: FileHandle, path: string): Promise<{ header: Header; offset: number }> {
  const prefix = Buffer.alloc(PREFIX_BYTES);
  const { bytesRead } = await fh.read(prefix, 0, PREFIX_BYTES, 0);
  const length = bytesRead === PREFIX_BYTES ? prefix.readUInt32BE(MAGIC.length) : -1;
  if (length < 0 || length > HEADER_MAX || !prefix.subarray(0, MAGIC.length).equals(MAGIC)) {
    throw new QuireError(Code.DATA_LOSS, `${path} is not a blob file (bad header)`);
  }
  const json = Buffer.alloc(length);
  const read = await fh.read(json, 0, length, PREFIX_BYTES);
  let header: Header;
  try {
    if (read.bytesRead !== length) throw new Error('truncated header');
    header = JSON.parse(json.toString('utf8')) as Header;
  } catch (err) {
    throw new QuireError(Code.DATA_LOSS, `${path} has a corrupt header`, { cause: err });
  }
  return { header, offset: PREFIX_BYTES + length };
}

/** Make a rename durable (best effort: some filesystems refuse fsync on a directory). */
async function syncDir(dir: string): Promise<void> {
  let fh: FileHandle | undefined;
  try {
    fh = await open(dir, 'r');
    await fh.sync();
  } catch {
    // durability nicety only; the rename itself already succeeded
  } finally {
    await fh?.close().catch(() => undefined);
  }
}

/** A read that failed because there is no object at that path. */
function isMissing(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  // ENOENT: no such file; ENOTDIR: a path segment is a file (key "a/b" while "a" is an
  // object); EISDIR: the path is a directory of longer keys, not an object.
  return code === 'ENOENT' || code === 'ENOTDIR' || code === 'EISDIR';
}

/** Node errno codes → QuireError codes, in one place. */
export function fsError(err: unknown, what: string): QuireError {
  if (err instanceof QuireError) return err;
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  const message = `${what}: ${err instanceof Error ? err.message : String(err)}`;
  const as = (c: Code, field?: string): QuireError => new QuireError(c, message, { cause: err, ...(field ? { field } : {}) });
  switch (code) {
    case 'ENOENT': // the file, or a directory on its path, does not exist
      return as(Code.NOT_FOUND);
    case 'EACCES': // file permissions refuse this process
    case 'EPERM': // the operation is not permitted (ownership, immutable file)
      return as(Code.PERMISSION_DENIED);
    case 'EROFS': // the filesystem is mounted read-only: an operator has to fix the mount
      return as(Code.FAILED_PRECONDITION);
    case 'ENOSPC': // the disk is full
    case 'EDQUOT': // the user's disk quota is used up
    case 'EMFILE': // this process has too many open files
    case 'ENFILE': // the system has too many open files
      return as(Code.RESOURCE_EXHAUSTED);
    case 'EIO': // the device failed to read or write: a retry or another region may work
    case 'ESTALE': // a network filesystem lost the file handle (server restarted)
    case 'ETIMEDOUT': // a network filesystem did not answer in time
    case 'EAGAIN': // the resource is temporarily unavailable
      return as(Code.UNAVAILABLE);
    case 'ENOTDIR': // writing "a/b" while "a" is an object
    case 'EISDIR': // writing "a" while "a/..." objects exist (a directory is in the way)
    case 'EEXIST': // same clash, seen by mkdir
    case 'ENOTEMPTY': // same clash, seen by rename onto a non-empty directory
      return as(Code.FAILED_PRECONDITION);
    case 'ENAMETOOLONG': // a key segment is longer than the filesystem allows (often 255 bytes)
      return as(Code.INVALID_ARGUMENT, 'key');
    default: // anything else is a bug or a condition we did not plan for
      return as(Code.INTERNAL);
  }
}

/**
 * What every adapter shares: argument checks (so all of them refuse the same input with
 * the same code and field; the contract suite holds them to it) and the outcome of a get
 * that found the object in no region.
 */
import { PassThrough, Readable } from 'node:stream';
import type { BlobPutOptions } from '@quire/core';
import { Code, QuireError, validateBlobKey, validateMetadata } from '@quire/core';

/** Content type stored when the caller gives none (S3 would otherwise pick its own default). */
export const DEFAULT_CONTENT_TYPE = 'application/octet-stream';

/**
 * S3 caps user metadata (keys + values, as sent) at 2 KiB per object; every adapter applies
 * the same cap so a publish that works on a laptop also works against S3.
 */
export const BLOB_METADATA_MAX_BYTES = 2048;

const PRINTABLE_ASCII = /^[\x20-\x7e]*$/;
const PREFIX_CHARS = /^[A-Za-z0-9._/-]*$/;

/** Throw INVALID_ARGUMENT (field `key`) unless `key` is a safe blob key. */
export function checkKey(key: unknown): string {
  return validateBlobKey(key, 'key');
}

/**
 * A list prefix is a plain string prefix (as in S3): `a/b` matches `a/b/c` and `a/bc`.
 * It uses the key alphabet, and the part up to its last "/" must be a safe key, so that
 * a directory adapter can never be walked outside its root.
 */
export function checkPrefix(prefix: unknown): string {
  if (typeof prefix !== 'string') throw QuireError.invalid('prefix', 'must be a string');
  if (prefix === '') return prefix;
  if (prefix.length > 1024 || !PREFIX_CHARS.test(prefix)) {
    throw QuireError.invalid('prefix', `"${prefix}" is not a valid prefix (characters of a blob key, at most 1024)`);
  }
  const slash = prefix.lastIndexOf('/');
  const last = prefix.slice(slash + 1);
  if (slash >= 0) validateBlobKey(prefix.slice(0, slash), 'prefix');
  if (last === '.' || last === '..') throw QuireError.invalid('prefix', `"${prefix}" must not end with a "." or ".." segment`);
  return prefix;
}

/** One configured region, checked; INVALID_ARGUMENT naming `field` otherwise. */
export function checkRegion(region: unknown, configured: readonly string[], field = 'region'): string {
  if (typeof region !== 'string' || !configured.includes(region)) {
    throw QuireError.invalid(field, `unknown region ${JSON.stringify(region)} (configured: ${configured.join(', ')})`);
  }
  return region;
}

/**
 * The regions an operation applies to: all configured ones (in configuration order) when
 * `requested` is undefined, else the requested ones in the caller's order, duplicates
 * dropped. INVALID_ARGUMENT (field `regions`) for an unknown region or an empty list.
 */
export function resolveRegions(requested: readonly string[] | undefined, configured: readonly string[]): string[] {
  if (requested === undefined) return [...configured];
  if (!Array.isArray(requested) || requested.length === 0) {
    throw QuireError.invalid('regions', 'must list at least one region (leave it out for every region)');
  }
  const out: string[] = [];
  for (const r of requested) {
    checkRegion(r, configured, 'regions');
    if (!out.includes(r)) out.push(r);
  }
  return out;
}

export interface CheckedPut {
  key: string;
  regions: string[];
  contentType: string;
  /** Lowercased keys (S3 lowercases them; the other adapters follow). */
  metadata: Record<string, string>;
  size: number | undefined;
  onProgress: BlobPutOptions['onProgress'];
}

/** Check everything about a put before a single byte is read or written. */
export function checkPut(key: unknown, options: BlobPutOptions, configured: readonly string[]): CheckedPut {
  const k = checkKey(key);
  const regions = resolveRegions(options.regions, configured);
  const size = options.size;
  if (size !== undefined && (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0)) {
    throw QuireError.invalid('size', 'must be a non-negative integer number of bytes');
  }
  const contentType = options.contentType ?? DEFAULT_CONTENT_TYPE;
  if (typeof contentType !== 'string' || contentType === '' || contentType.length > 256 || !PRINTABLE_ASCII.test(contentType)) {
    throw QuireError.invalid('contentType', 'must be 1-256 printable ASCII characters');
  }
  const metadata: Record<string, string> = {};
  let bytes = 0;
  for (const [name, value] of Object.entries(validateMetadata(options.metadata, 'metadata'))) {
    const lower = name.toLowerCase();
    if (lower in metadata) throw QuireError.invalid(`metadata.${name}`, 'repeats a key (metadata keys are case-insensitive)');
    // Metadata travels as HTTP headers (x-amz-meta-*): only printable ASCII survives the trip.
    if (!PRINTABLE_ASCII.test(value)) throw QuireError.invalid(`metadata.${name}`, 'value must be printable ASCII');
    metadata[lower] = value;
    bytes += lower.length + value.length;
  }
  if (bytes > BLOB_METADATA_MAX_BYTES) {
    throw QuireError.invalid('metadata', `is ${bytes} bytes, at most ${BLOB_METADATA_MAX_BYTES} allowed on a blob`);
  }
  if (options.onProgress !== undefined && typeof options.onProgress !== 'function') {
    throw QuireError.invalid('onProgress', 'must be a function');
  }
  return { key: k, regions, contentType, metadata, size, onProgress: options.onProgress };
}

/** A body given as bytes, as a stream of slices (no copy) so that it goes through one path. */
export function toReadable(body: Readable | Uint8Array): Readable {
  if (body instanceof Readable) return body;
  if (body instanceof Uint8Array) {
    const slice = 1024 * 1024;
    return Readable.from(
      (function* slices() {
        for (let at = 0; at < body.byteLength; at += slice) yield body.subarray(at, Math.min(at + slice, body.byteLength));
      })(),
      { objectMode: false },
    );
  }
  throw QuireError.invalid('body', 'must be a Readable stream or a Uint8Array');
}

/**
 * The error of a get that no region could serve: NOT_FOUND when every region answered
 * that it has no such object; otherwise the first region failure (UNAVAILABLE preferred:
 * the object may well exist in the region that could not be reached).
 */
export function missingEverywhere(key: string, regions: readonly string[], failures: readonly QuireError[]): QuireError {
  const first = failures[0];
  if (first === undefined) return QuireError.notFound(`blob ${key} (regions ${regions.join(', ')})`, 'key');
  const chosen = failures.find((f) => f.code === Code.UNAVAILABLE) ?? first;
  const detail = failures.map((f) => f.message).join('; ');
  return new QuireError(chosen.code, `blob ${key}: no region could serve it (${detail})`, { cause: chosen });
}

/**
 * A get's body whose errors (a connection cut mid-read, a disk failing) arrive as
 * QuireErrors like everything else the port throws. Destroying the returned stream
 * releases the underlying one (its socket or file descriptor).
 */
export function translatingBody(body: Readable, translate: (err: unknown) => QuireError): Readable {
  const out = new PassThrough({ highWaterMark: 64 * 1024 });
  body.on('error', (err) => out.destroy(translate(err)));
  out.on('close', () => {
    if (!body.destroyed) body.destroy();
  });
  body.pipe(out);
  return out;
}

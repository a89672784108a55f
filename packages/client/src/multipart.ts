/**
 * One S3 object written from a source's byte ranges: each part is read straight from its
 * range (a file range stream, or a slice of the bytes) and sent as it is read, `queueSize`
 * parts at a time. Nothing is assembled in memory: a part in flight holds a read buffer or
 * two (64 KiB), where a stream-fed upload (lib-storage's `Upload`) first copies each part
 * into a buffer of its own (queueSize + 2 parts of 8 MiB held). A part read from a stream is
 * sent with UNSIGNED-PAYLOAD (the SigV4 signer hashes only buffers), so it is not hashed
 * twice: the payload's integrity is checked end to end instead, by the publish service
 * reading the object back against its SHA-256 before it commits the version.
 *
 * Each request is retried here (the source range read again), not by the S3 client: a
 * client retry would resend a half-read stream. A failed multipart upload is aborted.
 */
import { createReadStream } from 'node:fs';
import { Transform, type Readable } from 'node:stream';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  PutObjectCommand,
  UploadPartCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { backoffDelay } from '@quire/core';
import { sleep } from './errors.ts';

/** Where the bytes come from: a file (read by range) or bytes in memory. */
export type RangeSource = { file: string; size: number } | { data: Uint8Array; size: number };

export interface RangeUploadOptions {
  partSize: number;
  queueSize: number;
  contentType: string;
  /** Attempts per request (default 4). */
  attempts?: number;
  /** Bytes sent so far changed by `delta` (negative when a failed attempt's bytes are sent again). */
  onBytes?: (delta: number) => void;
}

/** S3 allows at most 10,000 parts: the part size grows for larger sources. */
const MAX_PARTS = 10_000;

function rangeBody(source: RangeSource, start: number, end: number): Readable | Uint8Array {
  if ('data' in source) return source.data.subarray(start, end);
  // `end` is inclusive for createReadStream; an empty range would read the whole file.
  return createReadStream(source.file, { start, end: end - 1 });
}

/** Throttling, a server error or no answer at all: worth another attempt. */
function retryable(err: unknown): boolean {
  const status = (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
  if (status === undefined) return true;
  return status === 429 || status >= 500;
}

async function withRetry<T>(attempts: number, fn: () => Promise<T>): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await fn();
    } catch (err) {
      if (attempt + 1 >= attempts || !retryable(err)) throw err;
      await sleep(backoffDelay(attempt, { baseMs: 200, maxMs: 5_000 }));
    }
  }
}

/** Send one range, counting its bytes as they go (and taking them back if the attempt fails). */
async function sendRange<T>(source: RangeSource, start: number, end: number, onBytes: ((delta: number) => void) | undefined, send: (body: Readable | Uint8Array) => Promise<T>): Promise<T> {
  const raw = rangeBody(source, start, end);
  let sent = 0;
  let body = raw;
  if (onBytes !== undefined) {
    if (raw instanceof Uint8Array) {
      sent = raw.byteLength;
      onBytes(sent);
    } else {
      // Counted on the way through (a 'data' listener on the file stream would start it
      // flowing before the HTTP request reads it, and its first bytes would be lost).
      const counter = new Transform({
        transform(chunk: Buffer, _encoding, done) {
          sent += chunk.length;
          onBytes(chunk.length);
          done(null, chunk);
        },
      });
      raw.on('error', (err) => counter.destroy(err));
      body = raw.pipe(counter);
    }
  }
  try {
    return await send(body);
  } catch (err) {
    if (!(raw instanceof Uint8Array)) raw.destroy();
    if (!(body instanceof Uint8Array)) body.destroy();
    if (sent > 0) onBytes?.(-sent);
    throw err;
  }
}

/** Write `source` to `bucket`/`key`: one PUT up to one part, else a multipart upload of its ranges. */
export async function uploadRanges(client: S3Client, bucket: string, key: string, source: RangeSource, options: RangeUploadOptions): Promise<void> {
  const attempts = options.attempts ?? 4;
  const { size } = source;
  const partSize = Math.max(options.partSize, Math.ceil(size / MAX_PARTS));
  if (size <= partSize) {
    await withRetry(attempts, () =>
      sendRange(source, 0, size, options.onBytes, (Body) => client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body, ContentLength: size, ContentType: options.contentType }))),
    );
    return;
  }
  const created = await withRetry(attempts, () => client.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: key, ContentType: options.contentType })));
  const uploadId = created.UploadId;
  if (uploadId === undefined) throw new Error(`S3 answered CreateMultipartUpload for ${key} without an UploadId`);
  const count = Math.ceil(size / partSize);
  const etags: string[] = new Array<string>(count);
  try {
    let next = 0;
    let failed = false;
    const worker = async (): Promise<void> => {
      while (!failed && next < count) {
        const index = next++;
        const start = index * partSize;
        const end = Math.min(size, start + partSize);
        try {
          const res = await withRetry(attempts, () =>
            sendRange(source, start, end, options.onBytes, (Body) =>
              client.send(new UploadPartCommand({ Bucket: bucket, Key: key, UploadId: uploadId, PartNumber: index + 1, Body, ContentLength: end - start })),
            ),
          );
          if (res.ETag === undefined) throw new Error(`S3 answered part ${index + 1} of ${key} without an ETag`);
          etags[index] = res.ETag;
        } catch (err) {
          failed = true;
          throw err;
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(options.queueSize, count) }, worker));
    await withRetry(attempts, () =>
      client.send(
        new CompleteMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId: uploadId, MultipartUpload: { Parts: etags.map((ETag, i) => ({ ETag, PartNumber: i + 1 })) } }),
      ),
    );
  } catch (err) {
    await client.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId: uploadId })).catch(() => undefined);
    throw err;
  }
}

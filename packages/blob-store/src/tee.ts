/**
 * Read a source stream once and write every chunk into several sinks (one per region),
 * hashing and counting as it goes. Backpressure: the next chunk is read only when every
 * sink has accepted the previous one, so the slowest region sets the pace and memory
 * stays bounded whatever the object's size.
 */
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import type { Readable, Writable } from 'node:stream';
import type { BlobPutOptions } from '@quire/core';
import { Code, QuireError } from '@quire/core';

export interface TeeOptions {
  /** Declared size: more or fewer bytes fail with INVALID_ARGUMENT (field `size`). */
  size: number | undefined;
  onProgress: BlobPutOptions['onProgress'];
  /** Aborted when a sink failed: stop waiting and give up. */
  signal: AbortSignal;
}

export interface TeeResult {
  size: number;
  sha256: string;
}

/**
 * Pump `source` into `sinks`. On success every sink has been `end()`ed; on failure (the
 * source failed, the size was wrong, the signal was aborted) no sink is ended, so no
 * region can complete a partial object: the caller then cancels the sinks. The source is
 * destroyed on failure.
 */
export async function tee(source: Readable, sinks: readonly Writable[], options: TeeOptions): Promise<TeeResult> {
  const hash = createHash('sha256');
  let loaded = 0;
  const { size, onProgress, signal } = options;
  // A sink that fails aborts the signal: stop reading at once, even if the source is slow.
  const stop = (): void => {
    source.destroy();
  };
  signal.addEventListener('abort', stop, { once: true });
  try {
    for await (const raw of source) {
      signal.throwIfAborted();
      const chunk: Buffer = typeof raw === 'string' ? Buffer.from(raw) : (raw as Buffer);
      if (size !== undefined && loaded + chunk.byteLength > size) {
        throw QuireError.invalid('size', `the body is longer than the declared size of ${size} bytes`);
      }
      hash.update(chunk);
      loaded += chunk.byteLength;
      const waits: Promise<unknown>[] = [];
      for (const sink of sinks) {
        if (!sink.write(chunk)) waits.push(once(sink, 'drain', { signal }));
      }
      if (waits.length > 0) await Promise.all(waits);
      try {
        onProgress?.(size === undefined ? { loaded } : { loaded, total: size });
      } catch (err) {
        throw new QuireError(Code.INTERNAL, `onProgress threw: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
      }
    }
    signal.throwIfAborted();
    if (size !== undefined && loaded !== size) {
      throw QuireError.invalid('size', `the body has ${loaded} bytes, not the declared ${size}`);
    }
  } catch (err) {
    source.destroy();
    throw sourceError(err, signal);
  } finally {
    signal.removeEventListener('abort', stop);
  }
  for (const sink of sinks) sink.end();
  return { size: loaded, sha256: hash.digest('hex') };
}

/** What the tee threw, as a QuireError (the signal's reason wins: a sink failed first). */
function sourceError(err: unknown, signal: AbortSignal): unknown {
  if (signal.aborted) return signal.reason;
  if (err instanceof QuireError) return err;
  // The caller's stream broke (a publisher's upload that was cut, a file that vanished):
  // the request was cancelled by its own side, nothing is wrong with the storage.
  const message = err instanceof Error ? err.message : String(err);
  return new QuireError(Code.CANCELLED, `body: reading the source stream failed: ${message}`, { field: 'body', cause: err });
}

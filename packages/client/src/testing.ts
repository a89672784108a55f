/**
 * Helpers shared by the SDK's tests (not exported from the package).
 */
import { expect } from 'vitest';
import { QuireError } from '@quire/core';

/** Resolves once `fn()` is true (checked every 20 ms); throws naming `what` after `timeoutMs`. */
export async function until(fn: () => boolean, what: string, timeoutMs = 20_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!fn()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** The QuireError `p` rejects with (fails the test when it resolves or rejects with something else). */
export async function failure(p: Promise<unknown>): Promise<QuireError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(QuireError);
  return err as QuireError;
}

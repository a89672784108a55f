/**
 * Helpers shared by the SDK's tests (not exported from the package).
 */

/** Resolves once `fn()` is true (checked every 20 ms); throws naming `what` after `timeoutMs`. */
export async function until(fn: () => boolean, what: string, timeoutMs = 20_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!fn()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

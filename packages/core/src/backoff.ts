/**
 * Reconnect and retry delays, the one function every Quire client of a Quire service uses
 * (the SDK's retries and re-arms, the consume service's change-hint streams).
 */

export interface BackoffOptions {
  /** First delay (default 100 ms). */
  baseMs?: number;
  /** Largest delay (default 10 s). */
  maxMs?: number;
}

/**
 * Exponential backoff with "equal jitter": a random delay in [ceiling/2, ceiling], ceiling =
 * min(max, base·2^attempt). Random enough that clients failing together come back spread
 * out, bounded below so a dead endpoint is never hammered in a tight loop.
 */
export function backoffDelay(attempt: number, options: BackoffOptions = {}, random: () => number = Math.random): number {
  const base = options.baseMs ?? 100;
  const max = options.maxMs ?? 10_000;
  const ceiling = Math.min(max, base * 2 ** Math.min(attempt, 30));
  return Math.round(ceiling / 2 + (random() * ceiling) / 2);
}

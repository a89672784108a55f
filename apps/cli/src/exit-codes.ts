/**
 * The one table from an error to the process exit status, so scripts can branch on the
 * kind of failure without reading messages. Codes not named here (INTERNAL, DATA_LOSS,
 * UNIMPLEMENTED, CANCELLED, …) and anything that is not a QuireError exit 1.
 */
import { Code, QuireError } from '@quire/core';

export const EXIT = {
  OK: 0,
  UNEXPECTED: 1,
  USAGE: 2,
  NOT_FOUND: 3,
  CONFLICT: 4,
  UNAVAILABLE: 5,
  DENIED: 6,
} as const;
export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

const BY_CODE: Partial<Record<Code, ExitCode>> = {
  [Code.INVALID_ARGUMENT]: EXIT.USAGE,
  // A payload or metadata over a limit: bad input, as the design treats it.
  [Code.RESOURCE_EXHAUSTED]: EXIT.USAGE,
  [Code.NOT_FOUND]: EXIT.NOT_FOUND,
  [Code.FAILED_PRECONDITION]: EXIT.CONFLICT,
  [Code.ALREADY_EXISTS]: EXIT.CONFLICT,
  // A compare-and-set lost to a concurrent change: a conflict, like FAILED_PRECONDITION.
  [Code.ABORTED]: EXIT.CONFLICT,
  [Code.UNAVAILABLE]: EXIT.UNAVAILABLE,
  [Code.DEADLINE_EXCEEDED]: EXIT.UNAVAILABLE,
  [Code.PERMISSION_DENIED]: EXIT.DENIED,
  [Code.UNAUTHENTICATED]: EXIT.DENIED,
};

export function exitCodeOf(err: unknown): ExitCode {
  if (err instanceof QuireError) return BY_CODE[err.code] ?? EXIT.UNEXPECTED;
  return EXIT.UNEXPECTED;
}

/** The table as `--help` and the README show it. */
export const EXIT_CODES_HELP = `Exit codes:
  0  ok
  1  unexpected error
  2  usage error, INVALID_ARGUMENT (or RESOURCE_EXHAUSTED: over a limit)
  3  NOT_FOUND (topic, version, or no version applies to --as)
  4  FAILED_PRECONDITION, ALREADY_EXISTS (or ABORTED: a concurrent change)
  5  UNAVAILABLE, DEADLINE_EXCEEDED (service unreachable or too slow)
  6  PERMISSION_DENIED, UNAUTHENTICATED`;

/** `quire: <message> (field: x)` — the one line a failure prints on stderr. */
export function formatError(err: unknown): string {
  if (err instanceof QuireError) {
    return `quire: ${err.message}${err.field === undefined ? '' : ` (field: ${err.field})`}`;
  }
  return `quire: ${err instanceof Error ? err.message : String(err)}`;
}

/** The same failure as one JSON line (with `--json`). */
export function errorJson(err: unknown): string {
  const q = QuireError.from(err);
  return JSON.stringify({ error: { code: q.code, message: q.message, ...(q.field === undefined ? {} : { field: q.field }), exitCode: exitCodeOf(err) } });
}

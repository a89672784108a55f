import { Code, QuireError } from '@quire/core';

/**
 * SQLite result codes → Quire codes, in one place. better-sqlite3 throws `SqliteError`
 * with `code` set to the extended result code name (`SQLITE_BUSY_SNAPSHOT`, …); we match on
 * the primary code (the part before the second underscore).
 */
const BY_PRIMARY_CODE: Record<string, Code> = {
  // Another connection (maybe another process) held the write lock for longer than
  // busy_timeout, or a snapshot could not be upgraded. Nothing was written; retry later.
  SQLITE_BUSY: Code.UNAVAILABLE,
  // A table is locked by another statement of a shared-cache connection; same as BUSY.
  SQLITE_LOCKED: Code.UNAVAILABLE,
  // The file cannot be opened, read or written (permissions, missing directory, disk
  // gone, read-only mount). The database is unreachable from here.
  SQLITE_CANTOPEN: Code.UNAVAILABLE,
  SQLITE_IOERR: Code.UNAVAILABLE,
  SQLITE_READONLY: Code.UNAVAILABLE,
  SQLITE_PROTOCOL: Code.UNAVAILABLE,
  // Disk full: retrying will not help until space is freed.
  SQLITE_FULL: Code.RESOURCE_EXHAUSTED,
  // The file is damaged or is not a database: data may be lost.
  SQLITE_CORRUPT: Code.DATA_LOSS,
  SQLITE_NOTADB: Code.DATA_LOSS,
  // Constraint violations we expect are checked explicitly before writing; one reaching
  // here is a bug, as are schema and misuse errors (everything not listed → INTERNAL).
};

export function sqliteCodeOf(err: unknown): string | undefined {
  if (typeof err !== 'object' || err === null) return undefined;
  const code = (err as { code?: unknown }).code;
  return typeof code === 'string' && code.startsWith('SQLITE_') ? code : undefined;
}

function primary(code: string): string {
  const second = code.indexOf('_', 'SQLITE_'.length);
  return second === -1 ? code : code.slice(0, second);
}

/** Translate anything thrown by better-sqlite3 into a QuireError (QuireErrors pass through). */
export function fromSqliteError(err: unknown): QuireError {
  if (err instanceof QuireError) return err;
  const code = sqliteCodeOf(err);
  if (code === undefined) return QuireError.from(err, Code.INTERNAL);
  const mapped = BY_PRIMARY_CODE[primary(code)] ?? Code.INTERNAL;
  const message = err instanceof Error ? err.message : String(err);
  return new QuireError(mapped, `embedded metadata store: ${message} (${code})`, { cause: err });
}

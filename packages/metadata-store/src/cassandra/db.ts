/**
 * A thin layer over `cassandra.Client` that makes every statement prepared and gives it an
 * explicit consistency: `read` / `write` at the configured level (LOCAL_QUORUM by default),
 * `serialRead` at the serial level (sees every committed or in-progress LWT), `cas` for
 * lightweight transactions (serial level for the Paxos phase, configured level for the
 * commit), and `batch` for logged batches.
 */
import cassandra from 'cassandra-driver';
import { Code, QuireError } from '@quire/core';
import { isUnknownWriteOutcome } from './errors.ts';

export type Row = cassandra.types.Row;
export type Params = unknown[];

export const CONSISTENCIES = {
  LOCAL_QUORUM: cassandra.types.consistencies.localQuorum,
  QUORUM: cassandra.types.consistencies.quorum,
  ONE: cassandra.types.consistencies.one,
  LOCAL_ONE: cassandra.types.consistencies.localOne,
} as const;
export const SERIAL_CONSISTENCIES = {
  LOCAL_SERIAL: cassandra.types.consistencies.localSerial,
  SERIAL: cassandra.types.consistencies.serial,
} as const;

/** Attempts of a SERIAL read that resolves an unknown LWT outcome before giving up. */
const RESOLVE_ATTEMPTS = 8;
/** Times a conditional statement is sent when each attempt's outcome was unknown and turned out not applied. */
const CAS_RESEND_ATTEMPTS = 8;

export class Db {
  constructor(
    readonly client: cassandra.Client,
    readonly consistency: number,
    readonly serialConsistency: number,
  ) {}

  read(cql: string, params: Params = []): Promise<cassandra.types.ResultSet> {
    return this.client.execute(cql, params, { prepare: true, consistency: this.consistency, isIdempotent: true });
  }

  async readOne(cql: string, params: Params = []): Promise<Row | undefined> {
    return (await this.read(cql, params)).first() ?? undefined;
  }

  /** Every row of a query, following the driver's page state. */
  async readAll(cql: string, params: Params = [], fetchSize = 1000): Promise<Row[]> {
    const rows: Row[] = [];
    let pageState: string | undefined;
    do {
      const rs = await this.client.execute(cql, params, {
        prepare: true,
        consistency: this.consistency,
        isIdempotent: true,
        fetchSize,
        ...(pageState === undefined ? {} : { pageState }),
      });
      rows.push(...rs.rows);
      pageState = rs.pageState ?? undefined;
    } while (pageState !== undefined);
    return rows;
  }

  /** A linearizable read (Paxos): sees every applied LWT and completes any in progress. */
  serialRead(cql: string, params: Params = []): Promise<cassandra.types.ResultSet> {
    return this.client.execute(cql, params, {
      prepare: true,
      consistency: this.serialConsistency,
      serialConsistency: this.serialConsistency,
      isIdempotent: true,
    });
  }

  /**
   * `serialRead` for resolving an unknown LWT outcome: retried with backoff while the
   * cluster is busy (contention makes SERIAL reads time out too), then UNAVAILABLE.
   */
  async resolveRead(cql: string, params: Params, what: string): Promise<Row | undefined> {
    let last: unknown;
    for (let i = 0; i < RESOLVE_ATTEMPTS; i++) {
      try {
        return (await this.serialRead(cql, params)).first() ?? undefined;
      } catch (err) {
        last = err;
        await sleep(Math.random() * Math.min(1000, 20 * 2 ** i));
      }
    }
    throw new QuireError(Code.UNAVAILABLE, `cassandra: ${what}: the outcome of a conditional write is unknown and could not be read back; retry`, {
      cause: last,
    });
  }

  /** A plain (non-LWT) idempotent upsert / delete. */
  async write(cql: string, params: Params = []): Promise<void> {
    await this.client.execute(cql, params, { prepare: true, consistency: this.consistency, isIdempotent: true });
  }

  /** A logged batch (atomic; isolated when every statement is on one partition). */
  async batch(queries: { query: string; params: Params }[]): Promise<void> {
    if (queries.length === 0) return;
    await this.client.batch(queries, { prepare: true, logged: true, consistency: this.consistency });
  }

  /** Send a conditional statement; resolves to its raw result (use `wasApplied()`). */
  cas(cql: string, params: Params): Promise<cassandra.types.ResultSet> {
    return this.client.execute(cql, params, {
      prepare: true,
      consistency: this.consistency,
      serialConsistency: this.serialConsistency,
      isIdempotent: false,
    });
  }

  /**
   * A conditional statement whose outcome matters. When the driver cannot tell whether it
   * was applied (`isUnknownWriteOutcome`), `wasOurs` decides from a SERIAL read (e.g. "the
   * row carries our write id"). If it was not applied, the statement is sent again: the
   * SERIAL read committed a newer Paxos ballot, so our earlier proposal can never be
   * applied later (Cassandra ≥ 4.0, CASSANDRA-12126), and the condition is evaluated
   * afresh against whatever is there now. Resolves to `{ applied, row }`, where `row` is
   * the current row a non-applied result carries.
   */
  async casResolved(
    cql: string,
    params: Params,
    wasOurs: () => Promise<boolean>,
  ): Promise<{ applied: boolean; row: Row | undefined }> {
    for (let attempt = 1; ; attempt++) {
      let rs: cassandra.types.ResultSet;
      try {
        rs = await this.cas(cql, params);
      } catch (err) {
        if (!isUnknownWriteOutcome(err)) throw err;
        if (await wasOurs()) return { applied: true, row: undefined };
        if (attempt >= CAS_RESEND_ATTEMPTS) {
          throw new QuireError(Code.UNAVAILABLE, `cassandra: a conditional write timed out ${attempt} times in a row; retry`, { cause: err });
        }
        await sleep(Math.random() * 20 * attempt);
        continue;
      }
      const applied = rs.wasApplied();
      return { applied, row: applied ? undefined : (rs.first() ?? undefined) };
    }
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

// ---- value conversions ----------------------------------------------------------

/** A bigint / int column as a number (undefined for null). */
export function num(v: unknown): number | undefined {
  if (v === null || v === undefined) return undefined;
  if (typeof v === 'number') return v;
  if (v instanceof cassandra.types.Long) return v.toNumber();
  if (typeof v === 'bigint') return Number(v);
  return Number(v);
}

export function reqNum(v: unknown): number {
  return num(v) ?? 0;
}

export function str(v: unknown): string | undefined {
  return v === null || v === undefined ? undefined : String(v);
}

export function uuid(): cassandra.types.Uuid {
  return cassandra.types.Uuid.random();
}

export function sameUuid(a: unknown, b: cassandra.types.Uuid): boolean {
  return a instanceof cassandra.types.Uuid && a.equals(b);
}

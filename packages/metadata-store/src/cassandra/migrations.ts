/**
 * Versioned CQL migrations of the Cassandra metadata store, applied in order, once each,
 * and recorded in `schema_migrations` (see `migrate.ts`). Never edit a migration that has
 * shipped: add a new one. Every statement is `IF NOT EXISTS` so that a migration cut
 * short (crash, lost lease) can simply run again.
 *
 * `{ks}` stands for the keyspace name; the runner substitutes it.
 *
 * Row ownership rules the adapter keeps (see `store.ts`): rows written with lightweight
 * transactions (topics, versions, runs, leases, lease_epochs, schema_migrations) are only
 * ever written with LWTs; every other table only with plain writes.
 */
import { randomBytes } from 'node:crypto';
import type cassandra from 'cassandra-driver';

export interface Migration {
  /** Strictly increasing, never reused. */
  readonly id: number;
  readonly name: string;
  readonly statements: readonly string[];
  /**
   * Data step run after the statements, under the same migration lease, before the
   * migration is recorded. Must be idempotent (a migrator cut short runs it again).
   */
  readonly backfill?: (client: cassandra.Client, ks: string, consistency: number) => Promise<void>;
}

/** Rows a backfill reads per page and writes at once. */
const BACKFILL_PAGE = 500;

export const MIGRATIONS: readonly Migration[] = [
  {
    id: 1,
    name: 'topics, versions, inline data, releases, pins',
    statements: [
      // One row per topic; `data` is the Topic as JSON, `revision` the compare-and-set
      // counter, `write_id` the id of the LWT that wrote it (resolves unknown outcomes).
      `CREATE TABLE IF NOT EXISTS {ks}.topics (
         name text PRIMARY KEY,
         revision bigint,
         data text,
         write_id uuid)`,
      // Topic names in one clustering partition: listTopics pages in name order cheaply.
      `CREATE TABLE IF NOT EXISTS {ks}.topic_names (
         bucket int,
         name text,
         PRIMARY KEY ((bucket), name))`,
      // A topic's versions, newest first. Written only with LWTs (INSERT IF NOT EXISTS to
      // allocate head + 1, UPDATE IF ... to mark deleted).
      `CREATE TABLE IF NOT EXISTS {ks}.versions (
         topic text,
         version bigint,
         publish_id text,
         created_at bigint,
         publisher text,
         metadata text,
         content_type text,
         size bigint,
         sha256 text,
         pointer text,
         deleted_at bigint,
         PRIMARY KEY ((topic), version))
       WITH CLUSTERING ORDER BY (version DESC)`,
      // publishId → version, written after the version's LWT won (idempotent publishes).
      `CREATE TABLE IF NOT EXISTS {ks}.publish_ids (
         topic text,
         publish_id text,
         version bigint,
         PRIMARY KEY ((topic), publish_id))`,
      // Inline payload bytes, written before the version row that points at them;
      // `publish_id` says which publish wrote them (a blobId is never shared).
      `CREATE TABLE IF NOT EXISTS {ks}.inline_data (
         topic text,
         blob_id text,
         publish_id text,
         data blob,
         PRIMARY KEY ((topic), blob_id))`,
      `CREATE TABLE IF NOT EXISTS {ks}.releases (
         topic text,
         version bigint,
         scope_key text,
         scope text,
         released_at bigint,
         released_by text,
         run_id text,
         withdrawn_at bigint,
         PRIMARY KEY ((topic), version, scope_key))`,
      // A topic's pin history; a new pin and the end of the pin it replaces are written
      // in one logged single-partition batch (atomic and isolated).
      `CREATE TABLE IF NOT EXISTS {ks}.pins (
         topic text,
         pin_id text,
         scope_key text,
         scope text,
         version bigint,
         reason text,
         pinned_by text,
         pinned_at bigint,
         unpinned_at bigint,
         unpinned_by text,
         PRIMARY KEY ((topic), pin_id))`,
    ],
  },
  {
    id: 2,
    name: 'rollout runs',
    statements: [
      `CREATE TABLE IF NOT EXISTS {ks}.runs (
         topic text,
         run_id text,
         revision bigint,
         status text,
         created_at bigint,
         data text,
         write_id uuid,
         PRIMARY KEY ((topic), run_id))`,
      // Index of running / paused runs across topics for the scheduler: one small
      // partition. Entries are hints; the runs row is the truth (stale ones are cleaned
      // when read).
      `CREATE TABLE IF NOT EXISTS {ks}.active_runs (
         bucket int,
         topic text,
         run_id text,
         PRIMARY KEY ((bucket), topic, run_id))`,
    ],
  },
  {
    id: 3,
    name: 'leases',
    statements: [
      // The lease itself; every write is an LWT with a generous TTL so abandoned leases
      // disappear. The fencing epoch survives the TTL in lease_epochs.
      `CREATE TABLE IF NOT EXISTS {ks}.leases (
         name text PRIMARY KEY,
         owner text,
         epoch bigint,
         expires_at bigint)`,
      // Highest epoch ever handed out per lease name; never expires; bumped with an LWT
      // before each acquisition.
      `CREATE TABLE IF NOT EXISTS {ks}.lease_epochs (
         name text PRIMARY KEY,
         epoch bigint,
         write_id uuid)`,
    ],
  },
  {
    id: 4,
    name: 'change feed, audit, fleet reports',
    statements: [
      // Change feed: one partition per minute of change time, TTL one day.
      `CREATE TABLE IF NOT EXISTS {ks}.changes (
         bucket bigint,
         at bigint,
         id text,
         topic text,
         PRIMARY KEY ((bucket), at, id))
       WITH default_time_to_live = 86400
        AND gc_grace_seconds = 3600
        AND compaction = {'class': 'TimeWindowCompactionStrategy', 'compaction_window_unit': 'HOURS', 'compaction_window_size': 1}`,
      `CREATE TABLE IF NOT EXISTS {ks}.audit_by_topic (
         topic text,
         at bigint,
         id text,
         actor text,
         action text,
         reason text,
         details text,
         PRIMARY KEY ((topic), at, id))
       WITH CLUSTERING ORDER BY (at DESC, id DESC)`,
      `CREATE TABLE IF NOT EXISTS {ks}.audit_by_day (
         day bigint,
         at bigint,
         id text,
         topic text,
         actor text,
         action text,
         reason text,
         details text,
         PRIMARY KEY ((day), at, id))
       WITH CLUSTERING ORDER BY (at DESC, id DESC)`,
      // Days that hold audit entries, newest first: listAudit without a topic walks them.
      `CREATE TABLE IF NOT EXISTS {ks}.audit_days (
         bucket int,
         day bigint,
         PRIMARY KEY ((bucket), day))
       WITH CLUSTERING ORDER BY (day DESC)`,
      // Latest report per (topic, instance); rows live one hour unless rewritten.
      `CREATE TABLE IF NOT EXISTS {ks}.fleet_reports (
         topic text,
         instance text,
         identity text,
         version bigint,
         failed_version bigint,
         error text,
         reported_at bigint,
         PRIMARY KEY ((topic), instance))
       WITH default_time_to_live = 3600`,
    ],
  },
  {
    id: 5,
    name: 'api tokens',
    statements: [
      // Every API token in one partition (a few hundred at most), ordered by id; `data` is
      // the ApiToken as JSON (the secret's SHA-256, never the secret). Written only with
      // LWTs: IF NOT EXISTS to create, IF data = <read> to revoke.
      `CREATE TABLE IF NOT EXISTS {ks}.api_tokens (
         bucket int,
         id text,
         data text,
         PRIMARY KEY ((bucket), id))`,
    ],
  },
  {
    id: 6,
    name: 'topic state stamps',
    statements: [
      // A topic's state stamp (docs/adr/0008-topic-state-stamps.md), next to its name so a
      // cache lists every topic's stamp from this one partition. Plain writes, like the
      // rest of topic_names: a random id replaced after every write that records a change.
      `ALTER TABLE {ks}.topic_names ADD IF NOT EXISTS stamp text`,
    ],
    // Stamp the topics written before stamps existed (a topic without one is reloaded by
    // every full refresh). Any stamp written after a topic's state is a valid stamp.
    backfill: async (client, ks, consistency) => {
      const read = { prepare: true, consistency, isIdempotent: true, fetchSize: BACKFILL_PAGE };
      const write = { prepare: true, consistency, isIdempotent: true };
      let pageState: string | undefined;
      do {
        const rs = await client.execute(`SELECT name, stamp FROM ${ks}.topic_names WHERE bucket = 0`, [], {
          ...read,
          ...(pageState === undefined ? {} : { pageState }),
        });
        const missing = rs.rows.filter((r) => r['stamp'] === null || r['stamp'] === undefined).map((r) => String(r['name']));
        await Promise.all(
          missing.map((name) =>
            client.execute(`UPDATE ${ks}.topic_names SET stamp = ? WHERE bucket = 0 AND name = ?`, [randomBytes(8).toString('hex'), name], write),
          ),
        );
        pageState = rs.pageState ?? undefined;
      } while (pageState !== undefined);
    },
  },
];

import type Database from 'better-sqlite3';

/**
 * The embedded store's schema, as numbered steps. A step is applied once, in order, inside
 * a `BEGIN IMMEDIATE` transaction that also records it in `schema_migrations`, so several
 * processes migrating the same file at once apply each step exactly once. Never edit a
 * released step: add a new one.
 *
 * Maps, plans, scopes and pointers are JSON text columns; times are integer milliseconds.
 */
export interface Migration {
  version: number;
  name: string;
  sql: string;
}

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'initial schema',
    sql: `
      CREATE TABLE topics (
        name                  TEXT PRIMARY KEY,
        owner                 TEXT NOT NULL,
        description           TEXT NOT NULL,
        retention             TEXT NOT NULL,            -- JSON RetentionPolicy
        inline_threshold      INTEGER NOT NULL,
        rollout_plan          TEXT,                     -- JSON RolloutPlan
        json_schema           TEXT,
        allowed_applications  TEXT,                     -- JSON string[]
        created_at            INTEGER NOT NULL,
        updated_at            INTEGER NOT NULL,
        revision              INTEGER NOT NULL
      ) WITHOUT ROWID;

      CREATE TABLE versions (
        topic         TEXT NOT NULL,
        version       INTEGER NOT NULL,
        publish_id    TEXT NOT NULL,
        created_at    INTEGER NOT NULL,
        publisher     TEXT NOT NULL,
        metadata      TEXT NOT NULL,                    -- JSON Metadata
        content_type  TEXT NOT NULL,
        size          INTEGER NOT NULL,
        sha256        TEXT NOT NULL,
        pointer       TEXT NOT NULL,                    -- JSON DataPointer
        deleted_at    INTEGER,
        PRIMARY KEY (topic, version)
      ) WITHOUT ROWID;
      -- idempotent commits: one version per (topic, publishId)
      CREATE UNIQUE INDEX versions_by_publish_id ON versions (topic, publish_id);

      -- rowid table: rows hold up to a few MiB, too big for WITHOUT ROWID
      CREATE TABLE inline_data (
        topic    TEXT NOT NULL,
        blob_id  TEXT NOT NULL,
        bytes    BLOB NOT NULL,
        UNIQUE (topic, blob_id)
      );

      CREATE TABLE releases (
        topic         TEXT NOT NULL,
        version       INTEGER NOT NULL,
        scope_key     TEXT NOT NULL,
        scope         TEXT NOT NULL,                    -- JSON Scope
        released_at   INTEGER NOT NULL,
        released_by   TEXT NOT NULL,
        run_id        TEXT,
        withdrawn_at  INTEGER,
        PRIMARY KEY (topic, version, scope_key)
      ) WITHOUT ROWID;

      CREATE TABLE pins (
        topic        TEXT NOT NULL,
        pin_id       TEXT NOT NULL,
        scope_key    TEXT NOT NULL,
        scope        TEXT NOT NULL,                     -- JSON Scope
        version      INTEGER NOT NULL,
        reason       TEXT NOT NULL,
        pinned_by    TEXT NOT NULL,
        pinned_at    INTEGER NOT NULL,
        unpinned_at  INTEGER,
        unpinned_by  TEXT,
        PRIMARY KEY (topic, pin_id)
      ) WITHOUT ROWID;
      -- at most one active pin per (topic, scope)
      CREATE UNIQUE INDEX pins_active ON pins (topic, scope_key) WHERE unpinned_at IS NULL;

      -- the change feed: the cursor is the last id seen; AUTOINCREMENT never reuses an id
      CREATE TABLE changes (
        id     INTEGER PRIMARY KEY AUTOINCREMENT,
        topic  TEXT NOT NULL,
        at     INTEGER NOT NULL
      );
      CREATE INDEX changes_by_at ON changes (at);

      CREATE TABLE runs (
        topic              TEXT NOT NULL,
        run_id             TEXT NOT NULL,
        version            INTEGER NOT NULL,
        plan               TEXT NOT NULL,               -- JSON RolloutPlan
        status             TEXT NOT NULL,
        stage_index        INTEGER NOT NULL,
        stage_released_at  INTEGER NOT NULL,
        paused_at          INTEGER,
        reason             TEXT,
        created_at         INTEGER NOT NULL,
        updated_at         INTEGER NOT NULL,
        started_by         TEXT NOT NULL,
        revision           INTEGER NOT NULL,
        PRIMARY KEY (topic, run_id)
      ) WITHOUT ROWID;
      CREATE INDEX runs_newest ON runs (topic, created_at, run_id);
      CREATE INDEX runs_active ON runs (status) WHERE status IN ('running', 'paused');

      -- a released or expired lease keeps its row, so the next epoch is always higher
      CREATE TABLE leases (
        name        TEXT PRIMARY KEY,
        owner       TEXT NOT NULL,
        epoch       INTEGER NOT NULL,
        expires_at  INTEGER NOT NULL
      ) WITHOUT ROWID;

      CREATE TABLE audit (
        seq      INTEGER PRIMARY KEY,
        id       TEXT NOT NULL UNIQUE,
        at       INTEGER NOT NULL,
        actor    TEXT NOT NULL,
        action   TEXT NOT NULL,
        topic    TEXT,
        reason   TEXT,
        details  TEXT NOT NULL                          -- JSON object
      );
      CREATE INDEX audit_by_time ON audit (at, id);
      CREATE INDEX audit_by_topic ON audit (topic, at, id);

      CREATE TABLE fleet_reports (
        topic           TEXT NOT NULL,
        instance        TEXT NOT NULL,
        identity        TEXT NOT NULL,                  -- JSON ConsumerIdentity
        version         INTEGER NOT NULL,
        failed_version  INTEGER,
        error           TEXT,
        reported_at     INTEGER NOT NULL,
        PRIMARY KEY (topic, instance)
      ) WITHOUT ROWID;
    `,
  },
  {
    version: 2,
    name: 'api tokens',
    sql: `
      -- One row per API token; data is the ApiToken as JSON (the secret's SHA-256, never the secret).
      CREATE TABLE api_tokens (
        id    TEXT PRIMARY KEY,
        data  TEXT NOT NULL
      ) WITHOUT ROWID;
    `,
  },
  {
    version: 3,
    name: 'topic encryption setting',
    sql: `
      ALTER TABLE topics ADD COLUMN encryption TEXT;             -- JSON TopicEncryption
    `,
  },
  {
    version: 4,
    name: 'rollout runs carry the fencing epoch of the scheduler lease that last wrote them',
    sql: `ALTER TABLE runs ADD COLUMN epoch INTEGER`,
  },
  {
    version: 5,
    name: 'topic state stamps (docs/adr/0008-topic-state-stamps.md)',
    sql: `
      ALTER TABLE topics ADD COLUMN stamp TEXT;
      -- topics written before stamps existed get one (any stamp written after the state is valid)
      UPDATE topics SET stamp = lower(hex(randomblob(8))) WHERE stamp IS NULL;
    `,
  },
];

/**
 * Apply the steps not yet recorded. Runs each step in its own `BEGIN IMMEDIATE`
 * transaction and re-reads the applied set inside it, so a concurrent migrator in another
 * process never applies a step twice.
 */
export function applyMigrations(db: Database.Database, now: number): void {
  db.exec(`CREATE TABLE IF NOT EXISTS schema_migrations (
    version     INTEGER PRIMARY KEY,
    name        TEXT NOT NULL,
    applied_at  INTEGER NOT NULL
  )`);
  const applied = db.prepare('SELECT 1 FROM schema_migrations WHERE version = ?').pluck();
  const record = db.prepare('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)');
  for (const step of MIGRATIONS) {
    if (applied.get(step.version) !== undefined) continue;
    db.exec('BEGIN IMMEDIATE');
    try {
      if (applied.get(step.version) === undefined) {
        db.exec(step.sql);
        record.run(step.version, step.name, now);
      }
      db.exec('COMMIT');
    } catch (err) {
      if (db.inTransaction) db.exec('ROLLBACK');
      throw err;
    }
  }
}

/** Highest schema version this build knows. */
export const SCHEMA_VERSION = MIGRATIONS.reduce((max, m) => Math.max(max, m.version), 0);

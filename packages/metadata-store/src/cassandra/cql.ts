/**
 * Every CQL statement the store runs, in one place (all prepared). `ks` is the keyspace,
 * validated as a plain identifier before it gets here.
 *
 * Conditional (LWT) statements only touch tables written exclusively with LWTs:
 * topics, versions, runs, leases, lease_epochs.
 */
export type Statements = ReturnType<typeof statements>;

const VERSION_COLS =
  'topic, version, publish_id, created_at, publisher, metadata, content_type, size, sha256, pointer, deleted_at';
const RELEASE_COLS = 'topic, version, scope_key, scope, released_at, released_by, run_id, withdrawn_at';
const PIN_COLS = 'topic, pin_id, scope_key, scope, version, reason, pinned_by, pinned_at, unpinned_at, unpinned_by';
const AUDIT_COLS = 'at, id, actor, action, reason, details';
const FLEET_COLS = 'topic, instance, identity, version, failed_version, error, reported_at';

export function statements(ks: string) {
  return {
    // ---- topics
    getTopic: `SELECT name, revision, data, write_id FROM ${ks}.topics WHERE name = ?`,
    getTopicRevision: `SELECT revision FROM ${ks}.topics WHERE name = ?`,
    insertTopic: `INSERT INTO ${ks}.topics (name, revision, data, write_id) VALUES (?, ?, ?, ?) IF NOT EXISTS`,
    updateTopic: `UPDATE ${ks}.topics SET revision = ?, data = ?, write_id = ? WHERE name = ? IF revision = ?`,
    insertTopicName: `INSERT INTO ${ks}.topic_names (bucket, name) VALUES (0, ?)`,
    listTopicNames: `SELECT name FROM ${ks}.topic_names WHERE bucket = 0 LIMIT ?`,
    /** A topic's state stamp (plain write, after the state it stamps). */
    stampTopic: `UPDATE ${ks}.topic_names SET stamp = ? WHERE bucket = 0 AND name = ?`,
    listTopicStamps: `SELECT name, stamp FROM ${ks}.topic_names WHERE bucket = 0 LIMIT ?`,
    listTopicStampsAfter: `SELECT name, stamp FROM ${ks}.topic_names WHERE bucket = 0 AND name > ? LIMIT ?`,
    listTopicNamesAfter: `SELECT name FROM ${ks}.topic_names WHERE bucket = 0 AND name > ? LIMIT ?`,

    // ---- versions
    insertVersion: `INSERT INTO ${ks}.versions (${VERSION_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, null) IF NOT EXISTS`,
    markDeleted: `UPDATE ${ks}.versions SET deleted_at = ? WHERE topic = ? AND version = ? IF deleted_at = null`,
    getVersion: `SELECT ${VERSION_COLS} FROM ${ks}.versions WHERE topic = ? AND version = ?`,
    getVersionsIn: `SELECT ${VERSION_COLS} FROM ${ks}.versions WHERE topic = ? AND version IN ?`,
    versionOwner: `SELECT publish_id FROM ${ks}.versions WHERE topic = ? AND version = ?`,
    /** The newest few versions with their publishIds (head + idempotency window). */
    recentVersions: `SELECT version, publish_id FROM ${ks}.versions WHERE topic = ? LIMIT ?`,
    headVersion: `SELECT version FROM ${ks}.versions WHERE topic = ? LIMIT 1`,
    listVersionsDesc: `SELECT ${VERSION_COLS} FROM ${ks}.versions WHERE topic = ? LIMIT ?`,
    listVersionsDescBefore: `SELECT ${VERSION_COLS} FROM ${ks}.versions WHERE topic = ? AND version < ? LIMIT ?`,
    listVersionsAsc: `SELECT ${VERSION_COLS} FROM ${ks}.versions WHERE topic = ? ORDER BY version ASC LIMIT ?`,
    listVersionsAscAfter: `SELECT ${VERSION_COLS} FROM ${ks}.versions WHERE topic = ? AND version > ? ORDER BY version ASC LIMIT ?`,
    getPublishId: `SELECT version FROM ${ks}.publish_ids WHERE topic = ? AND publish_id = ?`,
    insertPublishId: `INSERT INTO ${ks}.publish_ids (topic, publish_id, version) VALUES (?, ?, ?)`,
    insertInline: `INSERT INTO ${ks}.inline_data (topic, blob_id, publish_id, data) VALUES (?, ?, ?, ?)`,
    getInlineOwner: `SELECT publish_id FROM ${ks}.inline_data WHERE topic = ? AND blob_id = ?`,
    getInline: `SELECT data FROM ${ks}.inline_data WHERE topic = ? AND blob_id = ?`,
    deleteInline: `DELETE FROM ${ks}.inline_data WHERE topic = ? AND blob_id = ?`,

    // ---- releases and pins
    upsertRelease: `INSERT INTO ${ks}.releases (${RELEASE_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, null)`,
    getRelease: `SELECT withdrawn_at FROM ${ks}.releases WHERE topic = ? AND version = ? AND scope_key = ?`,
    withdrawRelease: `UPDATE ${ks}.releases SET withdrawn_at = ? WHERE topic = ? AND version = ? AND scope_key = ?`,
    listReleases: `SELECT ${RELEASE_COLS} FROM ${ks}.releases WHERE topic = ?`,
    insertPin: `INSERT INTO ${ks}.pins (${PIN_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, null, null)`,
    endPin: `UPDATE ${ks}.pins SET unpinned_at = ?, unpinned_by = ? WHERE topic = ? AND pin_id = ?`,
    listPins: `SELECT ${PIN_COLS} FROM ${ks}.pins WHERE topic = ?`,

    // ---- change feed
    insertChange: `INSERT INTO ${ks}.changes (bucket, at, id, topic) VALUES (?, ?, ?, ?)`,
    changesAfter: `SELECT at, id, topic FROM ${ks}.changes WHERE bucket = ? AND at > ?`,

    // ---- rollout runs
    insertRun: `INSERT INTO ${ks}.runs (topic, run_id, revision, status, created_at, data, write_id) VALUES (?, ?, ?, ?, ?, ?, ?) IF NOT EXISTS`,
    updateRun: `UPDATE ${ks}.runs SET revision = ?, status = ?, data = ?, write_id = ? WHERE topic = ? AND run_id = ? IF revision = ?`,
    getRun: `SELECT revision, data, write_id FROM ${ks}.runs WHERE topic = ? AND run_id = ?`,
    listRuns: `SELECT revision, data FROM ${ks}.runs WHERE topic = ?`,
    addActiveRun: `INSERT INTO ${ks}.active_runs (bucket, topic, run_id) VALUES (0, ?, ?)`,
    removeActiveRun: `DELETE FROM ${ks}.active_runs WHERE bucket = 0 AND topic = ? AND run_id = ?`,
    listActiveRuns: `SELECT topic, run_id FROM ${ks}.active_runs WHERE bucket = 0`,

    // ---- leases
    getLease: `SELECT owner, epoch, expires_at FROM ${ks}.leases WHERE name = ?`,
    insertLease: `INSERT INTO ${ks}.leases (name, owner, epoch, expires_at) VALUES (?, ?, ?, ?) IF NOT EXISTS USING TTL ?`,
    takeLease: `UPDATE ${ks}.leases USING TTL ? SET owner = ?, epoch = ?, expires_at = ? WHERE name = ? IF epoch = ? AND expires_at <= ?`,
    renewLease: `UPDATE ${ks}.leases USING TTL ? SET owner = ?, epoch = ?, expires_at = ? WHERE name = ? IF owner = ? AND epoch = ? AND expires_at > ?`,
    releaseLease: `UPDATE ${ks}.leases USING TTL ? SET owner = ?, epoch = ?, expires_at = 0 WHERE name = ? IF owner = ? AND epoch = ?`,
    getLeaseEpoch: `SELECT epoch, write_id FROM ${ks}.lease_epochs WHERE name = ?`,
    insertLeaseEpoch: `INSERT INTO ${ks}.lease_epochs (name, epoch, write_id) VALUES (?, ?, ?) IF NOT EXISTS`,
    bumpLeaseEpoch: `UPDATE ${ks}.lease_epochs SET epoch = ?, write_id = ? WHERE name = ? IF epoch = ?`,

    // ---- audit
    insertAuditByTopic: `INSERT INTO ${ks}.audit_by_topic (topic, ${AUDIT_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?)`,
    insertAuditByDay: `INSERT INTO ${ks}.audit_by_day (day, topic, ${AUDIT_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
    insertAuditDay: `INSERT INTO ${ks}.audit_days (bucket, day) VALUES (0, ?)`,
    auditDays: `SELECT day FROM ${ks}.audit_days WHERE bucket = 0 AND day <= ? AND day >= ?`,
    /** Audit of one partition between bounds: (at, id) < (?, ?) AND (at) >= (?), newest first. */
    auditByTopic: `SELECT topic, ${AUDIT_COLS} FROM ${ks}.audit_by_topic WHERE topic = ? AND (at, id) < (?, ?) AND (at) >= (?) LIMIT ?`,
    auditByDay: `SELECT topic, ${AUDIT_COLS} FROM ${ks}.audit_by_day WHERE day = ? AND (at, id) < (?, ?) AND (at) >= (?) LIMIT ?`,

    // ---- API tokens (LWT only)
    insertToken: `INSERT INTO ${ks}.api_tokens (bucket, id, data) VALUES (0, ?, ?) IF NOT EXISTS`,
    getToken: `SELECT data FROM ${ks}.api_tokens WHERE bucket = 0 AND id = ?`,
    listTokens: `SELECT data FROM ${ks}.api_tokens WHERE bucket = 0`,
    updateToken: `UPDATE ${ks}.api_tokens SET data = ? WHERE bucket = 0 AND id = ? IF data = ?`,

    // ---- fleet reports
    upsertFleetReport: `INSERT INTO ${ks}.fleet_reports (${FLEET_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?) USING TTL ?`,
    listFleetReports: `SELECT ${FLEET_COLS} FROM ${ks}.fleet_reports WHERE topic = ?`,
  };
}

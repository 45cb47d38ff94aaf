//! The tables of both stores, written once: the SQLite file and PostgreSQL
//! get the same migrations, with the two spellings that differ filled in.

/// Which database the migrations are for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    /// The embedded SQLite file.
    Sqlite,
    /// PostgreSQL, shared by several nodes.
    Postgres,
}

/// The migrations, in order. `{serial}` is an auto-numbered primary key,
/// `{bytes}` a binary column; timestamps are Unix seconds in `BIGINT`
/// (64-bit in both), except the schedules' (Unix milliseconds).
const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE users (
    handle TEXT PRIMARY KEY,
    email TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE TABLE api_keys (
    key_hash TEXT PRIMARY KEY,
    handle TEXT NOT NULL REFERENCES users(handle)
);
CREATE TABLE vals (
    owner TEXT NOT NULL,
    name TEXT NOT NULL,
    privacy TEXT NOT NULL,
    latest INTEGER NOT NULL,
    PRIMARY KEY (owner, name)
);
CREATE TABLE val_versions (
    owner TEXT NOT NULL,
    name TEXT NOT NULL,
    version INTEGER NOT NULL,
    code TEXT NOT NULL,
    bytecode {bytes} NOT NULL,
    guest_hash TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (owner, name, version)
);
CREATE TABLE secrets (
    owner TEXT NOT NULL,
    key TEXT NOT NULL,
    sealed {bytes} NOT NULL,
    PRIMARY KEY (owner, key)
);
CREATE TABLE evaluations (
    id {serial},
    viewer TEXT NOT NULL,
    record TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX evaluations_by_viewer ON evaluations (viewer, id);
CREATE TABLE emails (
    id {serial},
    to_user TEXT NOT NULL,
    from_author TEXT,
    subject TEXT NOT NULL,
    body TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX emails_by_user ON emails (to_user, id);
"#,
    r#"
CREATE TABLE jobs (
    seq {serial},
    id TEXT NOT NULL UNIQUE,
    owner TEXT NOT NULL,
    request TEXT NOT NULL,
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    result TEXT,
    error TEXT,
    created_at BIGINT NOT NULL,
    finished_at BIGINT
);
CREATE INDEX jobs_unfinished ON jobs (status, seq);
"#,
    r#"
ALTER TABLE evaluations ADD COLUMN request_id TEXT;
CREATE INDEX evaluations_by_request ON evaluations (viewer, request_id, id);
"#,
    r#"
ALTER TABLE api_keys ADD COLUMN id TEXT;
ALTER TABLE api_keys ADD COLUMN name TEXT NOT NULL DEFAULT 'first';
ALTER TABLE api_keys ADD COLUMN scopes TEXT NOT NULL DEFAULT 'vals:read vals:write secrets:read secrets:write run evaluations:read emails:read keys';
ALTER TABLE api_keys ADD COLUMN created_at BIGINT NOT NULL DEFAULT 0;
ALTER TABLE api_keys ADD COLUMN expires_at BIGINT;
ALTER TABLE api_keys ADD COLUMN last_used_at BIGINT;
UPDATE api_keys SET id = 'key_' || substr(key_hash, 1, 16);
CREATE UNIQUE INDEX api_keys_by_id ON api_keys (id);
CREATE INDEX api_keys_by_handle ON api_keys (handle);
CREATE TABLE retired_handles (handle TEXT PRIMARY KEY, deleted_at BIGINT NOT NULL);
CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
"#,
    r#"
CREATE TABLE schedules (
    owner TEXT NOT NULL,
    name TEXT NOT NULL,
    spec TEXT NOT NULL,
    paused INTEGER NOT NULL DEFAULT 0,
    next_run_at BIGINT NOT NULL,
    last_run_at BIGINT,
    last_status TEXT,
    last_error TEXT,
    failures INTEGER NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (owner, name)
);
CREATE INDEX schedules_due ON schedules (paused, next_run_at);
ALTER TABLE jobs ADD COLUMN tick_key TEXT;
CREATE UNIQUE INDEX jobs_by_tick ON jobs (tick_key);
"#,
    r#"
ALTER TABLE emails ADD COLUMN message_id TEXT;
ALTER TABLE emails ADD COLUMN delivery TEXT NOT NULL DEFAULT 'stored';
ALTER TABLE emails ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0;
ALTER TABLE emails ADD COLUMN next_attempt_at BIGINT;
ALTER TABLE emails ADD COLUMN delivery_error TEXT;
CREATE INDEX emails_pending ON emails (delivery, next_attempt_at);
"#,
    r#"
CREATE TABLE val_references (
    owner TEXT NOT NULL,
    name TEXT NOT NULL,
    version INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    kind TEXT NOT NULL,
    target_owner TEXT NOT NULL,
    target_name TEXT NOT NULL,
    target_version INTEGER,
    line INTEGER NOT NULL,
    col INTEGER NOT NULL,
    PRIMARY KEY (owner, name, version, seq)
);
CREATE INDEX val_references_by_target ON val_references (target_owner, target_name);
"#,
    r#"
CREATE TABLE val_forks (
    owner TEXT NOT NULL,
    name TEXT NOT NULL,
    from_owner TEXT NOT NULL,
    from_name TEXT NOT NULL,
    from_version INTEGER NOT NULL,
    PRIMARY KEY (owner, name)
);
"#,
];

/// The migrations for `dialect`, in order; a store applies those it has not yet.
pub(crate) fn migrations(dialect: Dialect) -> Vec<String> {
    let (serial, bytes) = match dialect {
        Dialect::Sqlite => ("INTEGER PRIMARY KEY AUTOINCREMENT", "BLOB"),
        Dialect::Postgres => ("BIGSERIAL PRIMARY KEY", "BYTEA"),
    };
    MIGRATIONS
        .iter()
        .map(|m| m.replace("{serial}", serial).replace("{bytes}", bytes))
        .collect()
}

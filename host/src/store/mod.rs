//! Durable state: users, API keys (as hashes), vals and their immutable
//! versions (with bytecode), encrypted secrets, evaluation records, emails
//! and jobs. [`Store`] is the trait callers use; [`SqliteStore`]
//! (`sqlite.rs`) is the embedded default, [`PgStore`] (`postgres.rs`) the
//! one several nodes share; both apply the migrations of `schema.rs`.

mod cache;
mod invalidation;
mod pg_traces;
mod postgres;
mod redis_invalidation;
mod retention;
mod schema;
mod sqlite;

pub use postgres::PgStore;
pub use retention::{Pruned, Retention};
pub use sqlite::SqliteStore;

use serde::{Deserialize, Serialize};
use std::sync::{Arc, Mutex, MutexGuard};

/// Who may see a val.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Privacy {
    /// Anyone may read and call it.
    Public,
    /// Only its owner (and API calls running as the owner).
    Private,
}

impl Privacy {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Privacy::Public => "public",
            Privacy::Private => "private",
        }
    }

    pub(crate) fn parse(text: &str) -> Privacy {
        if text == "public" {
            Privacy::Public
        } else {
            Privacy::Private
        }
    }
}

/// A user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct User {
    /// Lower-case handle.
    pub handle: String,
    /// Where `console.email` goes.
    pub email: String,
}

/// How [`Store::reseal_secrets`] re-seals one secret: (owner, name,
/// sealed) → sealed, or why it cannot.
pub type Reseal<'a> = &'a mut dyn FnMut(&str, &str, &[u8]) -> Result<Vec<u8>, String>;

/// An API key as listed: its id, never the key itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ApiKey {
    /// Public id (`key_…`), used to revoke it.
    pub id: String,
    /// What its owner called it.
    pub name: String,
    /// What it may ask of the API (see `service::SCOPES`).
    pub scopes: Vec<String>,
    /// When it was made (Unix seconds).
    pub created_at: i64,
    /// When it stops working (Unix seconds), if ever.
    pub expires_at: Option<i64>,
    /// When it was last used (Unix seconds, to the minute).
    pub last_used_at: Option<i64>,
}

impl ApiKey {
    pub(crate) fn scopes_text(&self) -> String {
        self.scopes.join(" ")
    }

    pub(crate) fn parse_scopes(text: &str) -> Vec<String> {
        text.split_whitespace().map(str::to_string).collect()
    }
}

/// A val as listed: its latest version and privacy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ValMeta {
    /// Owner's handle.
    pub user: String,
    /// The val's name.
    pub name: String,
    /// Latest version.
    pub version: u32,
    /// Who may see it.
    pub privacy: Privacy,
}

/// One immutable version of a val.
#[derive(Debug, Clone)]
pub struct ValVersion {
    /// The val's metadata (privacy is the val's current privacy).
    pub meta: ValMeta,
    /// This version's number.
    pub version: u32,
    /// The source code.
    pub code: Arc<str>,
    /// QuickJS bytecode of `code`.
    pub bytecode: Arc<[u8]>,
    /// Hash of the guest that compiled `bytecode`.
    pub guest_hash: String,
    /// When it was saved (Unix seconds).
    pub created_at: i64,
}

/// An email `console.email` sent, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct StoredEmail {
    /// Row id.
    pub id: i64,
    /// Recipient handle.
    pub to: String,
    /// Whose code sent it.
    pub from_author: Option<String>,
    /// Subject.
    pub subject: String,
    /// Body.
    pub body: String,
    /// When (Unix seconds).
    pub created_at: i64,
    /// The `Message-ID` it is sent with (the same on every attempt).
    pub message_id: Option<String>,
    /// `stored` (no SMTP server configured), `pending`, `sent` or `failed`.
    pub delivery: String,
    /// Why the last attempt to send it failed.
    pub delivery_error: Option<String>,
}

/// An email on its way out through SMTP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingEmail {
    /// Row id.
    pub id: i64,
    /// The recipient's address (their account's email).
    pub to_address: String,
    /// Subject.
    pub subject: String,
    /// Body.
    pub body: String,
    /// Its `Message-ID`.
    pub message_id: String,
    /// Attempts so far.
    pub attempts: u32,
}

/// How an attempt to send an email ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// The SMTP server took it.
    Sent,
    /// It failed and is tried again at this time (Unix milliseconds).
    Retry(i64, String),
    /// It failed for good.
    Failed(String),
}

/// Where a job is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum JobStatus {
    /// Waiting for a worker.
    Queued,
    /// A worker has it.
    Running,
    /// Finished with a result.
    Done,
    /// Finished with an error.
    Failed,
}

impl JobStatus {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            JobStatus::Queued => "queued",
            JobStatus::Running => "running",
            JobStatus::Done => "done",
            JobStatus::Failed => "failed",
        }
    }

    pub(crate) fn parse(text: &str) -> JobStatus {
        match text {
            "running" => JobStatus::Running,
            "done" => JobStatus::Done,
            "failed" => JobStatus::Failed,
            _ => JobStatus::Queued,
        }
    }
}

/// A job as stored: what was asked, by whom, and how it ended.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct StoredJob {
    /// Random id (hex).
    pub id: String,
    /// Who submitted it; it runs as them.
    pub owner: String,
    /// The request as submitted (`kind`, `target` or `code`, `args`).
    pub request: serde_json::Value,
    /// Where it is.
    pub status: JobStatus,
    /// How many times a worker started it.
    pub attempts: u32,
    /// The result, once done.
    pub result: Option<serde_json::Value>,
    /// The error, once failed (`{type, message, ...}` as the HTTP API has it).
    pub error: Option<serde_json::Value>,
    /// When it was submitted (Unix seconds).
    pub created_at: i64,
    /// When it finished (Unix seconds).
    pub finished_at: Option<i64>,
}

/// A val's schedule as stored; times in Unix milliseconds.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredSchedule {
    /// The val's owner, as whom it runs.
    pub owner: String,
    /// The val.
    pub name: String,
    /// The schedule as set (`every` or `cron` and `timezone`, maybe `version`).
    pub spec: serde_json::Value,
    /// Paused by its owner or after too many failures in a row.
    pub paused: bool,
    /// The next tick.
    pub next_run_at: i64,
    /// When the last run started.
    pub last_run_at: Option<i64>,
    /// How the last run ended (`done` or `failed`).
    pub last_status: Option<String>,
    /// The last failed run's error message.
    pub last_error: Option<String>,
    /// Failed runs in a row.
    pub failures: u32,
}

/// One `@` reference in a version's source, with `me` resolved to the author.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct StoredReference {
    /// `read`, `library_call`, `api_call`, `write` or `secret_read`.
    pub kind: String,
    /// The referenced val's (or secret's) owner.
    pub owner: String,
    /// The val's name, or the secret's key.
    pub name: String,
    /// The pinned version; absent: the latest.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<u32>,
    /// 1-based line in the referring source.
    pub line: u32,
    /// 1-based column.
    pub column: u32,
}

/// A reference to a val from the latest version of another val.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Referrer {
    /// The referring val's owner.
    pub owner: String,
    /// The referring val.
    pub name: String,
    /// Its latest version, the one that holds the reference.
    pub version: u32,
    /// Whether the referring val is public.
    pub public: bool,
    /// The reference.
    pub reference: StoredReference,
}

/// What operators watch about a store: its cache and its connections.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StoreStats {
    /// Whether the cache serves (the PostgreSQL store's is off while its
    /// invalidation listener is not connected).
    pub cache_live: bool,
    /// Lookups answered from the cache.
    pub cache_hits: u64,
    /// Lookups the cache could not answer.
    pub cache_misses: u64,
    /// Pooled database connections open, and of them idle (PostgreSQL).
    pub pool: Option<(u32, u32)>,
}

/// A stored evaluation record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct StoredEvaluation {
    /// Row id.
    pub id: i64,
    /// The record (JSON of `valbox_runtime::Evaluation`).
    pub record: serde_json::Value,
    /// The HTTP request (`x-request-id`) or job id it ran for.
    pub request_id: Option<String>,
    /// When (Unix seconds).
    pub created_at: i64,
}

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A unique thing already exists.
    #[error("{0}")]
    Conflict(String),
    /// The database failed.
    #[error("database error: {0}")]
    Database(String),
    /// The disk (or the database's quota of it) is full: nothing was written.
    #[error("the store is out of disk space: {0}")]
    Full(String),
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        match e.sqlite_error_code() {
            Some(rusqlite::ErrorCode::DiskFull) => StoreError::Full(e.to_string()),
            _ => StoreError::Database(e.to_string()),
        }
    }
}

/// Shorthand for store results.
pub type StoreResult<T> = Result<T, StoreError>;

/// Everything valbox keeps. Implementations do no permission checks.
pub trait Store: Send + Sync {
    /// Creates a user with the hash of their first API key; a taken or
    /// retired (deleted) handle is a conflict.
    fn create_user(
        &self,
        handle: &str,
        email: &str,
        key_hash: &str,
        key: &ApiKey,
    ) -> StoreResult<()>;
    /// The API key with this hash and its user.
    fn key_by_hash(&self, key_hash: &str) -> StoreResult<Option<(User, ApiKey)>>;
    /// Adds an API key for `owner`.
    fn add_key(&self, owner: &str, key_hash: &str, key: &ApiKey) -> StoreResult<()>;
    /// `owner`'s keys, by creation time.
    fn keys(&self, owner: &str) -> StoreResult<Vec<ApiKey>>;
    /// Revokes (deletes) `owner`'s key `id`; false when there was none.
    fn revoke_key(&self, owner: &str, id: &str) -> StoreResult<bool>;
    /// Records that key `id` was used at `at`.
    fn touch_key(&self, id: &str, at: i64) -> StoreResult<()>;
    /// A user by handle.
    fn user(&self, handle: &str) -> StoreResult<Option<User>>;
    /// Every user, by handle.
    fn users(&self) -> StoreResult<Vec<User>>;
    /// Deletes a user and everything theirs (keys, vals and versions,
    /// secrets, evaluation records, emails, jobs) in one transaction, and
    /// retires the handle; false when there was no such user.
    fn delete_user(&self, handle: &str) -> StoreResult<bool>;
    /// Re-seals every secret with `reseal` (owner, name, sealed → sealed)
    /// and records `fingerprint` as the master key's, all in one
    /// transaction: an error or a crash leaves every secret as it was.
    /// Returns how many secrets were re-sealed.
    fn reseal_secrets(&self, reseal: Reseal<'_>, fingerprint: &str) -> StoreResult<usize>;
    /// The fingerprint of the master key the secrets are sealed under,
    /// recorded on first start and by every rotation.
    fn master_key_fingerprint(&self) -> StoreResult<Option<String>>;
    /// Records `fingerprint` unless one is recorded; returns the recorded one.
    fn init_master_key_fingerprint(&self, fingerprint: &str) -> StoreResult<String>;
    /// Bytes the database takes (for the `valbox_store_bytes` gauge).
    fn size_bytes(&self) -> StoreResult<u64>;
    /// Bytes `owner` stores: the code and bytecode of every version of
    /// their vals, and their sealed secrets.
    fn storage_used(&self, owner: &str) -> StoreResult<u64>;
    /// Deletes up to `batch` rows of each kind that `retention` no longer
    /// keeps at time `now` (Unix seconds): evaluation records past their
    /// age or beyond the per-user count (of users whose records this
    /// process wrote since the last call), finished jobs and emails past
    /// their age. Called again while it reports full batches.
    fn prune(&self, retention: &Retention, now: i64, batch: u32) -> StoreResult<Pruned>;
    /// Saves a new version; `privacy` `None` keeps the val's privacy (private when new).
    fn save_version(
        &self,
        owner: &str,
        name: &str,
        privacy: Option<Privacy>,
        code: &str,
        bytecode: &[u8],
        guest_hash: &str,
    ) -> StoreResult<ValMeta>;
    /// A version (the latest when `version` is `None`).
    fn version(
        &self,
        owner: &str,
        name: &str,
        version: Option<u32>,
    ) -> StoreResult<Option<ValVersion>>;
    /// Replaces a version's bytecode after the guest changed.
    fn replace_bytecode(
        &self,
        owner: &str,
        name: &str,
        version: u32,
        bytecode: &[u8],
        guest_hash: &str,
    ) -> StoreResult<()>;
    /// Every version number with its save time, oldest first.
    fn versions(&self, owner: &str, name: &str) -> StoreResult<Vec<(u32, i64)>>;
    /// Changes a val's privacy; `None` when there is no such val.
    fn set_privacy(
        &self,
        owner: &str,
        name: &str,
        privacy: Privacy,
    ) -> StoreResult<Option<ValMeta>>;
    /// Deletes a val and all its versions; false when there was none.
    fn delete_val(&self, owner: &str, name: &str) -> StoreResult<bool>;
    /// A user's vals, private ones only when asked.
    fn list_vals(&self, owner: &str, include_private: bool) -> StoreResult<Vec<ValMeta>>;
    /// Sets a secret (already encrypted).
    fn put_secret(&self, owner: &str, key: &str, sealed: &[u8]) -> StoreResult<()>;
    /// A secret, still encrypted.
    fn secret(&self, owner: &str, key: &str) -> StoreResult<Option<Vec<u8>>>;
    /// Names of a user's secrets.
    fn secret_names(&self, owner: &str) -> StoreResult<Vec<String>>;
    /// Deletes a secret; false when there was none.
    fn delete_secret(&self, owner: &str, key: &str) -> StoreResult<bool>;
    /// Stores an evaluation record (JSON text) visible to `viewer`, made
    /// for `request_id`. It may be committed a moment later (in a batch),
    /// but every read after this call sees it.
    fn add_evaluation(
        &self,
        viewer: &str,
        request_id: Option<&str>,
        record: String,
    ) -> StoreResult<()>;
    /// `viewer`'s records, newest first, with ids below `before` (and only
    /// those of `request_id` when given).
    fn evaluations(
        &self,
        viewer: &str,
        limit: u32,
        before: Option<i64>,
        request_id: Option<&str>,
    ) -> StoreResult<Vec<StoredEvaluation>>;
    /// Commits whatever is queued (evaluation records), before the process exits.
    fn flush(&self) -> StoreResult<()>;
    /// One of `viewer`'s records.
    fn evaluation(&self, viewer: &str, id: i64) -> StoreResult<Option<StoredEvaluation>>;
    /// Stores a sent email.
    fn add_email(
        &self,
        to: &str,
        from_author: Option<&str>,
        subject: &str,
        body: &str,
        message_id: &str,
        deliver: bool,
    ) -> StoreResult<()>;
    /// Emails waiting to be sent whose next attempt is due at `now_ms`.
    fn due_emails(&self, now_ms: i64, limit: u32) -> StoreResult<Vec<OutgoingEmail>>;
    /// Claims an attempt at `email` for this node until `lease_until`
    /// (Unix milliseconds): false when another node claimed it first.
    fn claim_email(&self, email: &OutgoingEmail, lease_until: i64) -> StoreResult<bool>;
    /// Records how an attempt to send email `id` ended.
    fn email_delivered(&self, id: i64, delivery: &Delivery) -> StoreResult<()>;
    /// Emails sent to `to`, newest first.
    fn emails(&self, to: &str) -> StoreResult<Vec<StoredEmail>>;
    /// Stores a queued job (durably, before it is acknowledged).
    fn add_job(&self, id: &str, owner: &str, request: &serde_json::Value) -> StoreResult<()>;
    /// Marks a job running and counts the attempt; `None` when it is
    /// missing or already finished (a duplicate delivery).
    fn start_job(&self, id: &str) -> StoreResult<Option<StoredJob>>;
    /// Records how a job ended, once: false when it had already finished.
    /// Commits the queued evaluation records first, so a job another
    /// process sees finished has its records readable too.
    fn finish_job(
        &self,
        id: &str,
        status: JobStatus,
        outcome: &serde_json::Value,
    ) -> StoreResult<bool>;
    /// One of `owner`'s jobs.
    fn job(&self, owner: &str, id: &str) -> StoreResult<Option<StoredJob>>;
    /// `owner`'s jobs, newest first, `limit` of them submitted before job
    /// `before` (by id) when given.
    fn jobs(&self, owner: &str, limit: u32, before: Option<&str>) -> StoreResult<Vec<StoredJob>>;
    /// Ids of jobs not finished (queued, or running when a process stopped), oldest first.
    fn unfinished_jobs(&self) -> StoreResult<Vec<String>>;
    /// Sets the schedule of `owner.name` (replacing one it had, whose run
    /// history goes with it).
    fn put_schedule(&self, schedule: &StoredSchedule) -> StoreResult<()>;
    /// Removes the schedule of `owner.name`; false when it had none.
    fn delete_schedule(&self, owner: &str, name: &str) -> StoreResult<bool>;
    /// The schedule of `owner.name`.
    fn schedule(&self, owner: &str, name: &str) -> StoreResult<Option<StoredSchedule>>;
    /// `owner`'s schedules, by val name.
    fn schedules(&self, owner: &str) -> StoreResult<Vec<StoredSchedule>>;
    /// Pauses or resumes a schedule; resuming clears its failures and sets
    /// its next tick to `next_run_at`. False when there is none.
    fn set_schedule_paused(
        &self,
        owner: &str,
        name: &str,
        paused: bool,
        next_run_at: i64,
    ) -> StoreResult<bool>;
    /// Unpaused schedules whose next tick is at or before `now_ms`, most overdue first.
    fn due_schedules(&self, now_ms: i64, limit: u32) -> StoreResult<Vec<StoredSchedule>>;
    /// Claims tick `tick` of `owner.name` for this node: in one transaction,
    /// moves its next tick from `tick` to `next` and stores the tick's job
    /// (`id`, `request`) under the idempotency key `owner/name@tick`. False
    /// (and nothing written) when another node claimed the tick first.
    fn claim_tick(
        &self,
        owner: &str,
        name: &str,
        tick: i64,
        next: i64,
        id: &str,
        request: &serde_json::Value,
    ) -> StoreResult<bool>;
    /// Records how a scheduled run that started at `started_at` ended, and
    /// returns the failures in a row after it.
    fn record_schedule_run(
        &self,
        owner: &str,
        name: &str,
        started_at: i64,
        error: Option<&str>,
    ) -> StoreResult<u32>;
    /// The cache's and the pool's figures.
    fn stats(&self) -> StoreStats;
    /// Deletes the versions of `owner.name` older than its newest `keep`,
    /// except those a recorded reference pins; how many it deleted.
    fn prune_versions(&self, owner: &str, name: &str, keep: u32) -> StoreResult<u64>;
    /// Records the references of version `version` of `owner.name`
    /// (replacing what was recorded for it).
    fn put_references(
        &self,
        owner: &str,
        name: &str,
        version: u32,
        references: &[StoredReference],
    ) -> StoreResult<()>;
    /// The references recorded for a version, in source order.
    fn references(
        &self,
        owner: &str,
        name: &str,
        version: u32,
    ) -> StoreResult<Vec<StoredReference>>;
    /// References to `owner.name` (or to secrets, when `name` is a key)
    /// from the latest version of every val.
    fn referenced_by(&self, owner: &str, name: &str) -> StoreResult<Vec<Referrer>>;
    /// Versions' sources in (owner, name, version) order after `after`, for
    /// indexing references once: `limit` of them.
    fn version_sources(
        &self,
        after: Option<(&str, &str, u32)>,
        limit: u32,
    ) -> StoreResult<Vec<(String, String, u32, String)>>;
    /// Records that `owner.name` was forked from `from` (owner, name, version).
    fn set_fork(&self, owner: &str, name: &str, from: (&str, &str, u32)) -> StoreResult<()>;
    /// What `owner.name` was forked from, if it is a fork.
    fn fork_of(&self, owner: &str, name: &str) -> StoreResult<Option<(String, String, u32)>>;
    /// A value of the `meta` table.
    fn meta_value(&self, name: &str) -> StoreResult<Option<String>>;
    /// Sets a value of the `meta` table.
    fn set_meta_value(&self, name: &str, value: &str) -> StoreResult<()>;
    /// Jobs queued or running since before `before` (Unix seconds), oldest
    /// first: for re-queueing what a lost queue forgot.
    fn stale_jobs(&self, before: i64, limit: u32) -> StoreResult<Vec<StoredJob>>;
}

pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// Now, in Unix seconds (the store's timestamps).
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

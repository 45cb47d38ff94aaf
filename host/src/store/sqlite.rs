//! The embedded store: one SQLite file, WAL, migrations at start, a hot
//! cache of recent rows and batched evaluation records.

use super::cache::HotCache;
use super::invalidation::Invalidation;
use super::redis_invalidation::RedisPeers;
use super::retention::Writers;
use super::schema::{self, Dialect};
use super::*;
use rusqlite::{params, Connection, OptionalExtension};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Condvar;

/// The embedded store: one SQLite file in WAL mode.
///
/// Two things keep a hot `/v1/run` off the database: the latest version of
/// recently run vals and the owners of recently used keys are cached in
/// memory ([`HotCache`]; only this process writes the file, so it knows when
/// an entry goes stale), and evaluation records are committed by a writer
/// thread in batches ([`TraceQueue`]) instead of one transaction per run.
pub struct SqliteStore {
    shared: Arc<Shared>,
    trace_writer: Option<std::thread::JoinHandle<()>>,
}

/// What the store's callers and its trace writer share.
struct Shared {
    connection: Mutex<Connection>,
    hot: Arc<HotCache>,
    /// The other processes sharing the file, when there are any.
    peers: Option<RedisPeers>,
    /// Stops the cache subscriber when the store is dropped.
    stop: Arc<AtomicBool>,
    writers: Writers,
    traces: Mutex<TraceQueue>,
    traces_waiting: Condvar,
}

impl Shared {
    /// Forgets `what` here and tells the other processes sharing the file.
    fn forget(&self, what: Invalidation) {
        what.apply(&self.hot);
        if let Some(peers) = &self.peers {
            peers.publish(&what);
        }
    }
}

/// How long a queued evaluation record may wait for the trace writer: the
/// records of this long are committed together. A read of evaluations
/// commits what is queued first, so readers never miss one.
const TRACE_BATCH_WINDOW: std::time::Duration = std::time::Duration::from_millis(10);

/// Queued records that wake the trace writer before the window ends.
const TRACE_BATCH_SIZE: usize = 512;

/// Evaluation records waiting for the trace writer.
#[derive(Default)]
struct TraceQueue {
    pending: Vec<NewEvaluation>,
    closed: bool,
}

/// An evaluation record not yet in the database.
struct NewEvaluation {
    viewer: String,
    request_id: Option<String>,
    record: String,
    created_at: i64,
}

impl SqliteStore {
    /// Opens (creating when needed) the database at `path` and migrates it.
    pub fn open(path: &Path) -> StoreResult<Self> {
        Self::open_with_cache(path, None)
    }

    /// Like [`Self::open`] for a file other processes write too (`valbox
    /// worker` beside `valbox serve`, given the same `redis_url`): the
    /// processes tell each other what their writes made wrong over Redis
    /// (`redis_invalidation.rs`), and each serves from its cache only while
    /// it hears them.
    pub fn open_shared(path: &Path, redis_url: &str) -> StoreResult<Self> {
        Self::open_with_cache(path, Some(redis_url))
    }

    fn open_with_cache(path: &Path, redis_url: Option<&str>) -> StoreResult<Self> {
        let connection = Connection::open(path)?;
        connection.pragma_update(None, "journal_mode", "WAL")?;
        // Every acknowledged write must survive a crash of the process or the machine.
        connection.pragma_update(None, "synchronous", "FULL")?;
        connection.pragma_update(None, "foreign_keys", "ON")?;
        connection.busy_timeout(std::time::Duration::from_secs(5))?;
        // Shared: off until the subscriber hears the other processes.
        let hot = Arc::new(HotCache::new(redis_url.is_none()));
        let stop = Arc::new(AtomicBool::new(false));
        let peers = match redis_url {
            Some(url) => Some(
                RedisPeers::start(url, hot.clone(), stop.clone()).map_err(StoreError::Database)?,
            ),
            None => None,
        };
        let shared = Arc::new(Shared {
            connection: Mutex::new(connection),
            hot,
            peers,
            stop,
            writers: Writers::default(),
            traces: Mutex::new(TraceQueue::default()),
            traces_waiting: Condvar::new(),
        });
        let mut store = SqliteStore {
            shared: shared.clone(),
            trace_writer: None,
        };
        store.migrate()?;
        store.trace_writer = Some(
            std::thread::Builder::new()
                .name("valbox-traces".into())
                .spawn(move || write_traces(&shared))
                .map_err(|e| StoreError::Database(format!("starting the trace writer: {e}")))?,
        );
        Ok(store)
    }

    fn migrate(&self) -> StoreResult<()> {
        let mut connection = lock(&self.shared.connection);
        let applied: i64 = connection.pragma_query_value(None, "user_version", |row| row.get(0))?;
        let migrations = schema::migrations(Dialect::Sqlite);
        for (index, migration) in migrations.iter().enumerate().skip(applied as usize) {
            let transaction = write_transaction(&mut connection)?;
            transaction.execute_batch(migration)?;
            transaction.pragma_update(None, "user_version", index as i64 + 1)?;
            transaction.commit()?;
        }
        Ok(())
    }

    fn with<T>(&self, f: impl FnOnce(&mut Connection) -> rusqlite::Result<T>) -> StoreResult<T> {
        Ok(f(&mut lock(&self.shared.connection))?)
    }

    /// Like [`Self::with`], after committing every queued evaluation record.
    fn with_traces<T>(
        &self,
        f: impl FnOnce(&mut Connection) -> rusqlite::Result<T>,
    ) -> StoreResult<T> {
        let mut connection = lock(&self.shared.connection);
        commit_pending_traces(&self.shared, &mut connection)?;
        Ok(f(&mut connection)?)
    }
}

impl Drop for SqliteStore {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        lock(&self.shared.traces).closed = true;
        self.shared.traces_waiting.notify_all();
        if let Some(writer) = self.trace_writer.take() {
            let _ = writer.join();
        }
    }
}

/// A transaction that takes the write lock when it begins. Other processes
/// may write the same file (several nodes and workers): a deferred
/// transaction that read first and then writes after another committed
/// fails at once with "database is locked" (its snapshot is stale, and
/// SQLite does not wait then); one that begins with the lock waits for it
/// (`busy_timeout`).
fn write_transaction(connection: &mut Connection) -> rusqlite::Result<rusqlite::Transaction<'_>> {
    connection.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
}

/// The trace writer: once records are queued, waits up to
/// [`TRACE_BATCH_WINDOW`] for more, then commits all of them in one
/// transaction; until the store is dropped (and the queue is empty).
fn write_traces(shared: &Shared) {
    loop {
        {
            let mut queue = lock(&shared.traces);
            while queue.pending.is_empty() && !queue.closed {
                queue = shared
                    .traces_waiting
                    .wait(queue)
                    .unwrap_or_else(|e| e.into_inner());
            }
            if queue.pending.is_empty() {
                return;
            }
            if !queue.closed && queue.pending.len() < TRACE_BATCH_SIZE {
                drop(
                    shared
                        .traces_waiting
                        .wait_timeout(queue, TRACE_BATCH_WINDOW)
                        .unwrap_or_else(|e| e.into_inner()),
                );
            }
        }
        let mut connection = lock(&shared.connection);
        if let Err(error) = commit_pending_traces(shared, &mut connection) {
            eprintln!("valbox: evaluation records could not be saved: {error}");
        }
    }
}

/// Takes the queued evaluation records and commits them in one transaction.
/// Called with the connection locked, so records keep their order.
fn commit_pending_traces(shared: &Shared, connection: &mut Connection) -> rusqlite::Result<()> {
    let batch = std::mem::take(&mut lock(&shared.traces).pending);
    if batch.is_empty() {
        return Ok(());
    }
    // Traces get no fsync of their own. In WAL mode they survive a crash of
    // the process once committed, and the next fully synchronous commit
    // (any val, secret or user write) makes them durable against power loss.
    connection.pragma_update(None, "synchronous", "NORMAL")?;
    let committed = (|| {
        let t = write_transaction(connection)?;
        {
            let mut insert = t.prepare_cached(
                "INSERT INTO evaluations (viewer, record, created_at, request_id) VALUES (?1, ?2, ?3, ?4)",
            )?;
            for record in &batch {
                insert.execute(params![
                    record.viewer,
                    record.record,
                    record.created_at,
                    record.request_id
                ])?;
            }
        }
        t.commit()
    })();
    connection.pragma_update(None, "synchronous", "FULL")?;
    committed
}

fn meta_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<ValMeta> {
    Ok(ValMeta {
        user: row.get(0)?,
        name: row.get(1)?,
        version: row.get(2)?,
        privacy: Privacy::parse(&row.get::<_, String>(3)?),
    })
}

impl Store for SqliteStore {
    fn create_user(
        &self,
        handle: &str,
        email: &str,
        key_hash: &str,
        key: &ApiKey,
    ) -> StoreResult<()> {
        let result = self.with(|c| {
            let t = write_transaction(c)?;
            let retired: bool = t
                .prepare_cached("SELECT EXISTS (SELECT 1 FROM retired_handles WHERE handle = ?1)")?
                .query_row(params![handle], |row| row.get(0))?;
            if retired {
                return Ok(false);
            }
            t.prepare_cached("INSERT INTO users (handle, email, created_at) VALUES (?1, ?2, ?3)")?
                .execute(params![handle, email, now()])?;
            insert_key(&t, handle, key_hash, key)?;
            t.commit()?;
            Ok(true)
        });
        match result {
            Ok(true) => Ok(()),
            Ok(false) => Err(StoreError::Conflict(format!(
                "the handle `{handle}` belonged to a deleted user and is retired"
            ))),
            Err(StoreError::Database(message)) if message.contains("UNIQUE") => Err(
                StoreError::Conflict(format!("the handle `{handle}` is taken")),
            ),
            Err(other) => Err(other),
        }
    }

    fn key_by_hash(&self, key_hash: &str) -> StoreResult<Option<(User, ApiKey)>> {
        if let Some(found) = self.shared.hot.key(key_hash) {
            return Ok(Some(found));
        }
        // Revoking a key or deleting a user empties the cache (under the
        // connection lock), so a cached key is one that still exists.
        let epoch = self.shared.hot.epoch();
        self.with(|c| {
            let found = c
                .prepare_cached(
                    "SELECT u.handle, u.email, k.id, k.name, k.scopes, k.created_at, k.expires_at, k.last_used_at
                     FROM api_keys k JOIN users u ON u.handle = k.handle WHERE k.key_hash = ?1",
                )?
                .query_row(params![key_hash], |row| {
                    Ok((
                        User {
                            handle: row.get(0)?,
                            email: row.get(1)?,
                        },
                        key_row(row, 2)?,
                    ))
                })
                .optional()?;
            if let Some(found) = &found {
                self.shared.hot.keep_key(key_hash, found, epoch);
            }
            Ok(found)
        })
    }

    fn add_key(&self, owner: &str, key_hash: &str, key: &ApiKey) -> StoreResult<()> {
        self.with(|c| insert_key(c, owner, key_hash, key))
    }

    fn keys(&self, owner: &str) -> StoreResult<Vec<ApiKey>> {
        self.with(|c| {
            c.prepare_cached(
                "SELECT id, name, scopes, created_at, expires_at, last_used_at FROM api_keys
                 WHERE handle = ?1 ORDER BY created_at, id",
            )?
            .query_map(params![owner], |row| key_row(row, 0))?
            .collect()
        })
    }

    fn revoke_key(&self, owner: &str, id: &str) -> StoreResult<bool> {
        self.with(|c| {
            let deleted = c
                .prepare_cached("DELETE FROM api_keys WHERE handle = ?1 AND id = ?2")?
                .execute(params![owner, id])?;
            self.shared.forget(Invalidation::Everything);
            Ok(deleted > 0)
        })
    }

    fn touch_key(&self, id: &str, at: i64) -> StoreResult<()> {
        self.with(|c| {
            c.prepare_cached("UPDATE api_keys SET last_used_at = ?2 WHERE id = ?1")?
                .execute(params![id, at])
                .map(drop)
        })
    }

    fn users(&self) -> StoreResult<Vec<User>> {
        self.with(|c| {
            c.prepare_cached("SELECT handle, email FROM users ORDER BY handle")?
                .query_map([], |row| {
                    Ok(User {
                        handle: row.get(0)?,
                        email: row.get(1)?,
                    })
                })?
                .collect()
        })
    }

    fn delete_user(&self, handle: &str) -> StoreResult<bool> {
        self.with_traces(|c| {
            let t = write_transaction(c)?;
            let existed: bool = t.query_row(
                "SELECT EXISTS (SELECT 1 FROM users WHERE handle = ?1)",
                params![handle],
                |row| row.get(0),
            )?;
            for statement in [
                "DELETE FROM api_keys WHERE handle = ?1",
                "DELETE FROM secrets WHERE owner = ?1",
                "DELETE FROM val_versions WHERE owner = ?1",
                "DELETE FROM vals WHERE owner = ?1",
                "DELETE FROM evaluations WHERE viewer = ?1",
                "DELETE FROM emails WHERE to_user = ?1",
                "DELETE FROM jobs WHERE owner = ?1",
                "DELETE FROM schedules WHERE owner = ?1",
                "DELETE FROM val_forks WHERE owner = ?1",
                "DELETE FROM users WHERE handle = ?1",
            ] {
                t.execute(statement, params![handle])?;
            }
            if existed {
                t.execute(
                    "INSERT INTO retired_handles (handle, deleted_at) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
                    params![handle, now()],
                )?;
            }
            t.commit()?;
            self.shared.forget(Invalidation::Everything);
            Ok(existed)
        })
    }

    fn reseal_secrets(&self, reseal: Reseal<'_>, fingerprint: &str) -> StoreResult<usize> {
        self.with(|c| {
            let t = write_transaction(c)?;
            let rows: Vec<(String, String, Vec<u8>)> = t
                .prepare("SELECT owner, key, sealed FROM secrets ORDER BY owner, key")?
                .query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))?
                .collect::<rusqlite::Result<_>>()?;
            {
                let mut update =
                    t.prepare("UPDATE secrets SET sealed = ?3 WHERE owner = ?1 AND key = ?2")?;
                for (owner, key, sealed) in &rows {
                    let resealed = reseal(owner, key, sealed).map_err(|message| {
                        rusqlite::Error::ToSqlConversionFailure(message.into())
                    })?;
                    update.execute(params![owner, key, resealed])?;
                }
            }
            t.execute(
                "INSERT INTO meta (name, value) VALUES ('master_key', ?1)
                 ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                params![fingerprint],
            )?;
            t.commit()?;
            Ok(rows.len())
        })
    }

    fn master_key_fingerprint(&self) -> StoreResult<Option<String>> {
        self.with(|c| {
            c.query_row(
                "SELECT value FROM meta WHERE name = 'master_key'",
                [],
                |row| row.get(0),
            )
            .optional()
        })
    }

    fn size_bytes(&self) -> StoreResult<u64> {
        self.with(|c| {
            let pages: i64 = c.pragma_query_value(None, "page_count", |row| row.get(0))?;
            let size: i64 = c.pragma_query_value(None, "page_size", |row| row.get(0))?;
            Ok((pages * size).max(0) as u64)
        })
    }

    fn storage_used(&self, owner: &str) -> StoreResult<u64> {
        // length() of a blob reads its size, not its bytes.
        self.with(|c| {
            c.prepare_cached(
                "SELECT (SELECT COALESCE(SUM(octet_length(code) + length(bytecode)), 0) FROM val_versions WHERE owner = ?1)
                      + (SELECT COALESCE(SUM(length(sealed)), 0) FROM secrets WHERE owner = ?1)",
            )?
            .query_row(params![owner], |row| row.get::<_, i64>(0))
            .map(|used| used.max(0) as u64)
        })
    }

    fn prune(&self, retention: &Retention, now: i64, batch: u32) -> StoreResult<Pruned> {
        let writers = self.shared.writers.take();
        self.with_traces(|c| {
            let mut pruned = Pruned::default();
            // Oldest first by id (ids grow with time): only the first
            // `batch` rows are looked at.
            let by_age = |table: &str, key: &str, cutoff: i64, extra: &str| {
                c.prepare_cached(&format!(
                    "DELETE FROM {table} WHERE {key} IN (SELECT {key} FROM {table} {extra} ORDER BY {key} LIMIT ?2)
                     AND created_at < ?1"
                ))?
                .execute(params![cutoff, batch])
                .map(|n| n as u64)
            };
            if retention.evaluation_age > 0 {
                pruned.evaluations +=
                    by_age("evaluations", "id", now - retention.evaluation_age, "")?;
            }
            if retention.email_age > 0 {
                pruned.emails += by_age("emails", "id", now - retention.email_age, "")?;
            }
            if retention.job_age > 0 {
                pruned.jobs += c
                    .prepare_cached(
                        "DELETE FROM jobs WHERE seq IN (SELECT seq FROM jobs WHERE status IN ('done', 'failed')
                         AND finished_at < ?1 ORDER BY seq LIMIT ?2)",
                    )?
                    .execute(params![now - retention.job_age, batch])?
                    as u64;
            }
            if retention.evaluations_per_user > 0 {
                for viewer in writers {
                    let oldest_kept: Option<i64> = c
                        .prepare_cached(
                            "SELECT id FROM evaluations WHERE viewer = ?1 ORDER BY id DESC LIMIT 1 OFFSET ?2",
                        )?
                        .query_row(params![viewer, retention.evaluations_per_user - 1], |row| {
                            row.get(0)
                        })
                        .optional()?;
                    let Some(oldest_kept) = oldest_kept else {
                        continue;
                    };
                    let deleted = c
                        .prepare_cached(
                            "DELETE FROM evaluations WHERE id IN (SELECT id FROM evaluations
                             WHERE viewer = ?1 AND id < ?2 ORDER BY id LIMIT ?3)",
                        )?
                        .execute(params![viewer, oldest_kept, batch])?
                        as u64;
                    if deleted >= u64::from(batch) {
                        self.shared.writers.wrote(&viewer);
                    }
                    pruned.evaluations += deleted;
                }
            }
            Ok(pruned)
        })
    }

    fn init_master_key_fingerprint(&self, fingerprint: &str) -> StoreResult<String> {
        self.with(|c| {
            c.execute(
                "INSERT INTO meta (name, value) VALUES ('master_key', ?1) ON CONFLICT (name) DO NOTHING",
                params![fingerprint],
            )?;
            c.query_row("SELECT value FROM meta WHERE name = 'master_key'", [], |row| {
                row.get(0)
            })
        })
    }

    fn user(&self, handle: &str) -> StoreResult<Option<User>> {
        self.with(|c| {
            c.prepare_cached("SELECT handle, email FROM users WHERE handle = ?1")?
                .query_row(params![handle], |row| {
                    Ok(User {
                        handle: row.get(0)?,
                        email: row.get(1)?,
                    })
                })
                .optional()
        })
    }

    fn save_version(
        &self,
        owner: &str,
        name: &str,
        privacy: Option<Privacy>,
        code: &str,
        bytecode: &[u8],
        guest_hash: &str,
    ) -> StoreResult<ValMeta> {
        self.with(|c| {
            let t = write_transaction(c)?;
            let existing: Option<(u32, String)> = t
                .query_row(
                    "SELECT latest, privacy FROM vals WHERE owner = ?1 AND name = ?2",
                    params![owner, name],
                    |row| Ok((row.get(0)?, row.get(1)?)),
                )
                .optional()?;
            // Versions keep counting across a delete, so a version number never means two things.
            let highest: u32 = t.prepare_cached("SELECT COALESCE(MAX(version), 0) FROM val_versions WHERE owner = ?1 AND name = ?2")?.query_row(
                params![owner, name],
                |row| row.get(0),
            )?;
            let version = highest.max(existing.as_ref().map_or(0, |e| e.0)) + 1;
            let privacy = privacy
                .or(existing.as_ref().map(|e| Privacy::parse(&e.1)))
                .unwrap_or(Privacy::Private);
            t.prepare_cached("INSERT INTO val_versions (owner, name, version, code, bytecode, guest_hash, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)")?.execute(
                params![owner, name, version, code, bytecode, guest_hash, now()],
            )?;
            t.prepare_cached("INSERT INTO vals (owner, name, privacy, latest) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (owner, name) DO UPDATE SET privacy = excluded.privacy, latest = excluded.latest")?.execute(
                params![owner, name, privacy.as_str(), version],
            )?;
            t.commit()?;
            self.shared.forget(Invalidation::Val(owner.into(), name.into()));
            Ok(ValMeta { user: owner.into(), name: name.into(), version, privacy })
        })
    }

    fn version(
        &self,
        owner: &str,
        name: &str,
        version: Option<u32>,
    ) -> StoreResult<Option<ValVersion>> {
        if version.is_none() {
            if let Some(latest) = self.shared.hot.latest(owner, name) {
                return Ok(Some(latest));
            }
        }
        let epoch = self.shared.hot.epoch();
        self.with(|c| {
            let found = c.prepare_cached("SELECT v.owner, v.name, v.latest, v.privacy, x.version, x.code, x.bytecode, x.guest_hash, x.created_at
                 FROM vals v JOIN val_versions x ON x.owner = v.owner AND x.name = v.name
                 WHERE v.owner = ?1 AND v.name = ?2 AND x.version = COALESCE(?3, v.latest)")?.query_row(
                params![owner, name, version],
                |row| {
                    Ok(ValVersion {
                        meta: meta_row(row)?,
                        version: row.get(4)?,
                        code: row.get::<_, String>(5)?.into(),
                        bytecode: row.get::<_, Vec<u8>>(6)?.into(),
                        guest_hash: row.get(7)?,
                        created_at: row.get(8)?,
                    })
                },
            )
            .optional()?;
            if let (None, Some(latest)) = (version, &found) {
                self.shared.hot.keep_latest(latest, epoch);
            }
            Ok(found)
        })
    }

    fn replace_bytecode(
        &self,
        owner: &str,
        name: &str,
        version: u32,
        bytecode: &[u8],
        guest_hash: &str,
    ) -> StoreResult<()> {
        self.with(|c| {
            c.prepare_cached("UPDATE val_versions SET bytecode = ?4, guest_hash = ?5 WHERE owner = ?1 AND name = ?2 AND version = ?3")?.execute(
                params![owner, name, version, bytecode, guest_hash],
            )?;
            self.shared.forget(Invalidation::Val(owner.into(), name.into()));
            Ok(())
        })
    }

    fn versions(&self, owner: &str, name: &str) -> StoreResult<Vec<(u32, i64)>> {
        self.with(|c| {
            let mut statement = c.prepare_cached(
                "SELECT x.version, x.created_at FROM val_versions x JOIN vals v ON v.owner = x.owner AND v.name = x.name
                 WHERE x.owner = ?1 AND x.name = ?2 ORDER BY x.version",
            )?;
            let rows = statement.query_map(params![owner, name], |row| Ok((row.get(0)?, row.get(1)?)))?;
            rows.collect()
        })
    }

    fn set_privacy(
        &self,
        owner: &str,
        name: &str,
        privacy: Privacy,
    ) -> StoreResult<Option<ValMeta>> {
        self.with(|c| {
            c.prepare_cached("UPDATE vals SET privacy = ?3 WHERE owner = ?1 AND name = ?2")?
                .execute(params![owner, name, privacy.as_str()])?;
            self.shared
                .forget(Invalidation::Val(owner.into(), name.into()));
            c.prepare_cached(
                "SELECT owner, name, latest, privacy FROM vals WHERE owner = ?1 AND name = ?2",
            )?
            .query_row(params![owner, name], meta_row)
            .optional()
        })
    }

    fn delete_val(&self, owner: &str, name: &str) -> StoreResult<bool> {
        self.with(|c| {
            let deleted = c
                .prepare_cached("DELETE FROM vals WHERE owner = ?1 AND name = ?2")?
                .execute(params![owner, name])?;
            c.prepare_cached("DELETE FROM schedules WHERE owner = ?1 AND name = ?2")?
                .execute(params![owner, name])?;
            c.prepare_cached("DELETE FROM val_forks WHERE owner = ?1 AND name = ?2")?
                .execute(params![owner, name])?;
            self.shared
                .forget(Invalidation::Val(owner.into(), name.into()));
            Ok(deleted > 0)
        })
    }

    fn list_vals(&self, owner: &str, include_private: bool) -> StoreResult<Vec<ValMeta>> {
        self.with(|c| {
            let mut statement = c.prepare_cached(
                "SELECT owner, name, latest, privacy FROM vals WHERE owner = ?1 AND (?2 OR privacy = 'public') ORDER BY name",
            )?;
            let rows = statement.query_map(params![owner, include_private], meta_row)?;
            rows.collect()
        })
    }

    fn put_secret(&self, owner: &str, key: &str, sealed: &[u8]) -> StoreResult<()> {
        self.with(|c| {
            c.prepare_cached(
                "INSERT INTO secrets (owner, key, sealed) VALUES (?1, ?2, ?3)
                 ON CONFLICT (owner, key) DO UPDATE SET sealed = excluded.sealed",
            )?
            .execute(params![owner, key, sealed])
            .map(drop)
        })
    }

    fn secret(&self, owner: &str, key: &str) -> StoreResult<Option<Vec<u8>>> {
        self.with(|c| {
            c.prepare_cached("SELECT sealed FROM secrets WHERE owner = ?1 AND key = ?2")?
                .query_row(params![owner, key], |row| row.get(0))
                .optional()
        })
    }

    fn secret_names(&self, owner: &str) -> StoreResult<Vec<String>> {
        self.with(|c| {
            let mut statement =
                c.prepare_cached("SELECT key FROM secrets WHERE owner = ?1 ORDER BY key")?;
            let rows = statement.query_map(params![owner], |row| row.get(0))?;
            rows.collect()
        })
    }

    fn delete_secret(&self, owner: &str, key: &str) -> StoreResult<bool> {
        self.with(|c| {
            let deleted = c
                .prepare_cached("DELETE FROM secrets WHERE owner = ?1 AND key = ?2")?
                .execute(params![owner, key])?;
            Ok(deleted > 0)
        })
    }

    fn add_evaluation(
        &self,
        viewer: &str,
        request_id: Option<&str>,
        record: String,
    ) -> StoreResult<()> {
        self.shared.writers.wrote(viewer);
        let queued = {
            let mut queue = lock(&self.shared.traces);
            queue.pending.push(NewEvaluation {
                viewer: viewer.to_string(),
                request_id: request_id.map(str::to_string),
                record,
                created_at: now(),
            });
            queue.pending.len()
        };
        if queued == 1 || queued >= TRACE_BATCH_SIZE {
            self.shared.traces_waiting.notify_one();
        }
        Ok(())
    }

    fn evaluations(
        &self,
        viewer: &str,
        limit: u32,
        before: Option<i64>,
        request_id: Option<&str>,
    ) -> StoreResult<Vec<StoredEvaluation>> {
        self.with_traces(|c| {
            let rows = match request_id {
                None => c
                    .prepare_cached(
                        "SELECT id, record, created_at, request_id FROM evaluations WHERE viewer = ?1 AND id < COALESCE(?2, 9223372036854775807)
                         ORDER BY id DESC LIMIT ?3",
                    )?
                    .query_map(params![viewer, before, limit], evaluation_row)?
                    .collect(),
                Some(request_id) => c
                    .prepare_cached(
                        "SELECT id, record, created_at, request_id FROM evaluations WHERE viewer = ?1 AND request_id = ?4
                         AND id < COALESCE(?2, 9223372036854775807) ORDER BY id DESC LIMIT ?3",
                    )?
                    .query_map(params![viewer, before, limit, request_id], evaluation_row)?
                    .collect(),
            };
            rows
        })
    }

    fn flush(&self) -> StoreResult<()> {
        self.with_traces(|_| Ok(()))
    }

    fn evaluation(&self, viewer: &str, id: i64) -> StoreResult<Option<StoredEvaluation>> {
        self.with_traces(|c| {
            c.prepare_cached(
                "SELECT id, record, created_at, request_id FROM evaluations WHERE viewer = ?1 AND id = ?2",
            )?
            .query_row(params![viewer, id], evaluation_row)
            .optional()
        })
    }

    fn add_email(
        &self,
        to: &str,
        from_author: Option<&str>,
        subject: &str,
        body: &str,
        message_id: &str,
        deliver: bool,
    ) -> StoreResult<()> {
        let delivery = if deliver { "pending" } else { "stored" };
        self.with(|c| {
            c.prepare_cached(
                "INSERT INTO emails (to_user, from_author, subject, body, created_at, message_id, delivery, next_attempt_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 0)",
            )?
            .execute(params![to, from_author, subject, body, now(), message_id, delivery])
            .map(drop)
        })
    }

    fn due_emails(&self, now_ms: i64, limit: u32) -> StoreResult<Vec<OutgoingEmail>> {
        self.with(|c| {
            let mut statement = c.prepare_cached(
                "SELECT e.id, u.email, e.subject, e.body, e.message_id, e.attempts FROM emails e JOIN users u ON u.handle = e.to_user
                 WHERE e.delivery = 'pending' AND e.next_attempt_at <= ?1 ORDER BY e.next_attempt_at LIMIT ?2",
            )?;
            let rows = statement.query_map(params![now_ms, limit], |row| {
                Ok(OutgoingEmail {
                    id: row.get(0)?,
                    to_address: row.get(1)?,
                    subject: row.get(2)?,
                    body: row.get(3)?,
                    message_id: row.get::<_, Option<String>>(4)?.unwrap_or_default(),
                    attempts: row.get(5)?,
                })
            })?;
            rows.collect()
        })
    }

    fn claim_email(&self, email: &OutgoingEmail, lease_until: i64) -> StoreResult<bool> {
        self.with(|c| {
            c.prepare_cached(
                "UPDATE emails SET attempts = attempts + 1, next_attempt_at = ?3
                 WHERE id = ?1 AND attempts = ?2 AND delivery = 'pending'",
            )?
            .execute(params![email.id, email.attempts, lease_until])
            .map(|n| n == 1)
        })
    }

    fn email_delivered(&self, id: i64, delivery: &Delivery) -> StoreResult<()> {
        let (state, retry_at, error) = match delivery {
            Delivery::Sent => ("sent", None, None),
            Delivery::Retry(at, error) => ("pending", Some(*at), Some(error.as_str())),
            Delivery::Failed(error) => ("failed", None, Some(error.as_str())),
        };
        self.with(|c| {
            c.prepare_cached(
                "UPDATE emails SET delivery = ?2, next_attempt_at = coalesce(?3, next_attempt_at), delivery_error = ?4 WHERE id = ?1",
            )?
            .execute(params![id, state, retry_at, error])
            .map(drop)
        })
    }

    fn emails(&self, to: &str) -> StoreResult<Vec<StoredEmail>> {
        self.with(|c| {
            let mut statement = c.prepare_cached(
                "SELECT id, to_user, from_author, subject, body, created_at, message_id, delivery, delivery_error FROM emails WHERE to_user = ?1 ORDER BY id DESC",
            )?;
            let rows = statement.query_map(params![to], |row| {
                Ok(StoredEmail {
                    id: row.get(0)?,
                    to: row.get(1)?,
                    from_author: row.get(2)?,
                    subject: row.get(3)?,
                    body: row.get(4)?,
                    created_at: row.get(5)?,
                    message_id: row.get(6)?,
                    delivery: row.get(7)?,
                    delivery_error: row.get(8)?,
                })
            })?;
            rows.collect()
        })
    }

    fn add_job(&self, id: &str, owner: &str, request: &serde_json::Value) -> StoreResult<()> {
        self.with(|c| {
            c.prepare_cached(
                "INSERT INTO jobs (id, owner, request, status, created_at) VALUES (?1, ?2, ?3, 'queued', ?4)",
            )?
            .execute(params![id, owner, request.to_string(), now()])
            .map(drop)
        })
    }

    fn start_job(&self, id: &str) -> StoreResult<Option<StoredJob>> {
        self.with(|c| {
            let started = c
                .prepare_cached(
                    "UPDATE jobs SET status = 'running', attempts = attempts + 1 WHERE id = ?1 AND status IN ('queued', 'running')",
                )?
                .execute(params![id])?;
            if started == 0 {
                return Ok(None);
            }
            c.prepare_cached(&format!("{JOB_COLUMNS} WHERE id = ?1"))?
                .query_row(params![id], job_row)
                .optional()
        })
    }

    fn finish_job(
        &self,
        id: &str,
        status: JobStatus,
        outcome: &serde_json::Value,
    ) -> StoreResult<bool> {
        let (result, error) = match status {
            JobStatus::Done => (Some(outcome.to_string()), None),
            _ => (None, Some(outcome.to_string())),
        };
        self.with_traces(|c| {
            c.prepare_cached(
                "UPDATE jobs SET status = ?2, result = ?3, error = ?4, finished_at = ?5 WHERE id = ?1 AND status IN ('queued', 'running')",
            )?
            .execute(params![id, status.as_str(), result, error, now()])
            .map(|changed| changed == 1)
        })
    }

    fn job(&self, owner: &str, id: &str) -> StoreResult<Option<StoredJob>> {
        self.with(|c| {
            c.prepare_cached(&format!("{JOB_COLUMNS} WHERE id = ?1 AND owner = ?2"))?
                .query_row(params![id, owner], job_row)
                .optional()
        })
    }

    fn jobs(&self, owner: &str, limit: u32, before: Option<&str>) -> StoreResult<Vec<StoredJob>> {
        self.with(|c| {
            let mut statement = c.prepare_cached(&format!(
                "{JOB_COLUMNS} WHERE owner = ?1 AND (?2 IS NULL OR seq < (SELECT seq FROM jobs WHERE id = ?2))
                 ORDER BY seq DESC LIMIT ?3"
            ))?;
            let rows = statement.query_map(params![owner, before, limit], job_row)?;
            rows.collect()
        })
    }

    fn unfinished_jobs(&self) -> StoreResult<Vec<String>> {
        self.with(|c| {
            let mut statement = c.prepare_cached(
                "SELECT id FROM jobs WHERE status IN ('queued', 'running') ORDER BY seq",
            )?;
            let rows = statement.query_map([], |row| row.get(0))?;
            rows.collect()
        })
    }
    fn put_schedule(&self, schedule: &StoredSchedule) -> StoreResult<()> {
        self.with(|c| {
            c.prepare_cached(
                "INSERT INTO schedules (owner, name, spec, paused, next_run_at, failures, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, 0, ?6)
                 ON CONFLICT (owner, name) DO UPDATE SET spec = excluded.spec, paused = excluded.paused,
                   next_run_at = excluded.next_run_at, failures = 0, last_error = NULL",
            )?
            .execute(params![
                schedule.owner,
                schedule.name,
                schedule.spec.to_string(),
                schedule.paused,
                schedule.next_run_at,
                now()
            ])
            .map(drop)
        })
    }

    fn delete_schedule(&self, owner: &str, name: &str) -> StoreResult<bool> {
        self.with(|c| {
            c.prepare_cached("DELETE FROM schedules WHERE owner = ?1 AND name = ?2")?
                .execute(params![owner, name])
                .map(|n| n > 0)
        })
    }

    fn schedule(&self, owner: &str, name: &str) -> StoreResult<Option<StoredSchedule>> {
        self.with(|c| {
            c.prepare_cached(&format!(
                "{SCHEDULE_COLUMNS} WHERE owner = ?1 AND name = ?2"
            ))?
            .query_row(params![owner, name], schedule_row)
            .optional()
        })
    }

    fn schedules(&self, owner: &str) -> StoreResult<Vec<StoredSchedule>> {
        self.with(|c| {
            let mut statement = c.prepare_cached(&format!(
                "{SCHEDULE_COLUMNS} WHERE owner = ?1 ORDER BY name"
            ))?;
            let rows = statement.query_map(params![owner], schedule_row)?;
            rows.collect()
        })
    }

    fn set_schedule_paused(
        &self,
        owner: &str,
        name: &str,
        paused: bool,
        next_run_at: i64,
    ) -> StoreResult<bool> {
        self.with(|c| {
            let changed = if paused {
                c.prepare_cached("UPDATE schedules SET paused = 1 WHERE owner = ?1 AND name = ?2")?
                    .execute(params![owner, name])?
            } else {
                c.prepare_cached(
                    "UPDATE schedules SET paused = 0, failures = 0, next_run_at = ?3 WHERE owner = ?1 AND name = ?2",
                )?
                .execute(params![owner, name, next_run_at])?
            };
            Ok(changed > 0)
        })
    }

    fn due_schedules(&self, now_ms: i64, limit: u32) -> StoreResult<Vec<StoredSchedule>> {
        self.with(|c| {
            let mut statement = c.prepare_cached(&format!(
                "{SCHEDULE_COLUMNS} WHERE paused = 0 AND next_run_at <= ?1 ORDER BY next_run_at LIMIT ?2"
            ))?;
            let rows = statement.query_map(params![now_ms, limit], schedule_row)?;
            rows.collect()
        })
    }

    fn claim_tick(
        &self,
        owner: &str,
        name: &str,
        tick: i64,
        next: i64,
        id: &str,
        request: &serde_json::Value,
    ) -> StoreResult<bool> {
        self.with(|c| {
            let t = write_transaction(c)?;
            let moved = t.execute(
                "UPDATE schedules SET next_run_at = ?4 WHERE owner = ?1 AND name = ?2 AND next_run_at = ?3 AND paused = 0",
                params![owner, name, tick, next],
            )?;
            if moved == 0 {
                return Ok(false);
            }
            let stored = t.execute(
                "INSERT INTO jobs (id, owner, request, status, created_at, tick_key) VALUES (?1, ?2, ?3, 'queued', ?4, ?5)
                 ON CONFLICT (tick_key) DO NOTHING",
                params![id, owner, request.to_string(), now(), format!("{owner}/{name}@{tick}")],
            )?;
            t.commit()?;
            Ok(stored == 1)
        })
    }

    fn record_schedule_run(
        &self,
        owner: &str,
        name: &str,
        started_at: i64,
        error: Option<&str>,
    ) -> StoreResult<u32> {
        self.with(|c| {
            c.prepare_cached(
                "UPDATE schedules SET last_run_at = max(coalesce(last_run_at, 0), ?3),
                   last_status = CASE WHEN ?4 IS NULL THEN 'done' ELSE 'failed' END,
                   last_error = ?4,
                   failures = CASE WHEN ?4 IS NULL THEN 0 ELSE failures + 1 END
                 WHERE owner = ?1 AND name = ?2 RETURNING failures",
            )?
            .query_row(params![owner, name, started_at, error], |row| row.get(0))
            .optional()
            .map(|failures| failures.unwrap_or(0))
        })
    }

    fn stats(&self) -> StoreStats {
        let (cache_hits, cache_misses) = self.shared.hot.counts();
        StoreStats {
            cache_live: self.shared.hot.is_live(),
            cache_hits,
            cache_misses,
            pool: None,
        }
    }

    fn prune_versions(&self, owner: &str, name: &str, keep: u32) -> StoreResult<u64> {
        self.with(|c| {
            c.prepare_cached(
                "DELETE FROM val_versions WHERE owner = ?1 AND name = ?2
                   AND version <= (SELECT max(version) FROM val_versions WHERE owner = ?1 AND name = ?2) - ?3
                   AND NOT EXISTS (SELECT 1 FROM val_references r WHERE r.target_owner = ?1 AND r.target_name = ?2
                                   AND r.target_version = val_versions.version AND r.kind <> 'secret_read')",
            )?
            .execute(params![owner, name, keep])
            .map(|n| n as u64)
        })
    }

    fn put_references(
        &self,
        owner: &str,
        name: &str,
        version: u32,
        references: &[StoredReference],
    ) -> StoreResult<()> {
        self.with(|c| {
            let t = write_transaction(c)?;
            t.execute(
                "DELETE FROM val_references WHERE owner = ?1 AND name = ?2 AND version = ?3",
                params![owner, name, version],
            )?;
            {
                let mut insert = t.prepare_cached(
                    "INSERT INTO val_references (owner, name, version, seq, kind, target_owner, target_name, target_version, line, col)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                )?;
                for (seq, r) in references.iter().enumerate() {
                    insert.execute(params![
                        owner, name, version, seq as i64, r.kind, r.owner, r.name, r.version, r.line, r.column
                    ])?;
                }
            }
            t.commit()
        })
    }

    fn references(
        &self,
        owner: &str,
        name: &str,
        version: u32,
    ) -> StoreResult<Vec<StoredReference>> {
        self.with(|c| {
            let mut statement = c.prepare_cached(
                "SELECT kind, target_owner, target_name, target_version, line, col FROM val_references
                 WHERE owner = ?1 AND name = ?2 AND version = ?3 ORDER BY seq",
            )?;
            let rows = statement.query_map(params![owner, name, version], |row| reference_row(row, 0))?;
            rows.collect()
        })
    }

    fn referenced_by(&self, owner: &str, name: &str) -> StoreResult<Vec<Referrer>> {
        self.with(|c| {
            let mut statement = c.prepare_cached(
                "SELECT r.owner, r.name, r.version, v.privacy, r.kind, r.target_owner, r.target_name, r.target_version, r.line, r.col
                 FROM val_references r JOIN vals v ON v.owner = r.owner AND v.name = r.name AND v.latest = r.version
                 WHERE r.target_owner = ?1 AND r.target_name = ?2 ORDER BY r.owner, r.name, r.seq",
            )?;
            let rows = statement.query_map(params![owner, name], |row| {
                Ok(Referrer {
                    owner: row.get(0)?,
                    name: row.get(1)?,
                    version: row.get(2)?,
                    public: row.get::<_, String>(3)? == "public",
                    reference: reference_row(row, 4)?,
                })
            })?;
            rows.collect()
        })
    }

    fn version_sources(
        &self,
        after: Option<(&str, &str, u32)>,
        limit: u32,
    ) -> StoreResult<Vec<(String, String, u32, String)>> {
        let (owner, name, version) = after.unwrap_or(("", "", 0));
        self.with(|c| {
            let mut statement = c.prepare_cached(
                "SELECT owner, name, version, code FROM val_versions
                 WHERE (owner, name, version) > (?1, ?2, ?3) ORDER BY owner, name, version LIMIT ?4",
            )?;
            let rows = statement.query_map(params![owner, name, version, limit], |row| {
                Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
            })?;
            rows.collect()
        })
    }

    fn set_fork(&self, owner: &str, name: &str, from: (&str, &str, u32)) -> StoreResult<()> {
        self.with(|c| {
            c.execute(
                "INSERT INTO val_forks (owner, name, from_owner, from_name, from_version) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (owner, name) DO UPDATE SET from_owner = excluded.from_owner,
                   from_name = excluded.from_name, from_version = excluded.from_version",
                params![owner, name, from.0, from.1, from.2],
            )
            .map(drop)
        })
    }

    fn fork_of(&self, owner: &str, name: &str) -> StoreResult<Option<(String, String, u32)>> {
        self.with(|c| {
            c.query_row(
                "SELECT from_owner, from_name, from_version FROM val_forks WHERE owner = ?1 AND name = ?2",
                params![owner, name],
                |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
            )
            .optional()
        })
    }

    fn meta_value(&self, name: &str) -> StoreResult<Option<String>> {
        self.with(|c| {
            c.query_row(
                "SELECT value FROM meta WHERE name = ?1",
                params![name],
                |row| row.get(0),
            )
            .optional()
        })
    }

    fn set_meta_value(&self, name: &str, value: &str) -> StoreResult<()> {
        self.with(|c| {
            c.execute(
                "INSERT INTO meta (name, value) VALUES (?1, ?2) ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                params![name, value],
            )
            .map(drop)
        })
    }

    fn stale_jobs(&self, before: i64, limit: u32) -> StoreResult<Vec<StoredJob>> {
        self.with(|c| {
            let mut statement = c.prepare_cached(&format!(
                "{JOB_COLUMNS} WHERE status IN ('queued', 'running') AND created_at < ?1 ORDER BY seq LIMIT ?2"
            ))?;
            let rows = statement.query_map(params![before, limit], job_row)?;
            rows.collect()
        })
    }
}

const JOB_COLUMNS: &str =
    "SELECT id, owner, request, status, attempts, result, error, created_at, finished_at FROM jobs";

fn reference_row(row: &rusqlite::Row<'_>, first: usize) -> rusqlite::Result<StoredReference> {
    Ok(StoredReference {
        kind: row.get(first)?,
        owner: row.get(first + 1)?,
        name: row.get(first + 2)?,
        version: row.get(first + 3)?,
        line: row.get(first + 4)?,
        column: row.get(first + 5)?,
    })
}

const SCHEDULE_COLUMNS: &str = "SELECT owner, name, spec, paused, next_run_at, last_run_at, last_status, last_error, failures FROM schedules";

fn schedule_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<StoredSchedule> {
    let spec: String = row.get(2)?;
    Ok(StoredSchedule {
        owner: row.get(0)?,
        name: row.get(1)?,
        spec: serde_json::from_str(&spec).unwrap_or_default(),
        paused: row.get(3)?,
        next_run_at: row.get(4)?,
        last_run_at: row.get(5)?,
        last_status: row.get(6)?,
        last_error: row.get(7)?,
        failures: row.get(8)?,
    })
}

fn job_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<StoredJob> {
    let json = |text: Option<String>| {
        text.map(|t| serde_json::from_str(&t).unwrap_or(serde_json::Value::Null))
    };
    let status: String = row.get(3)?;
    Ok(StoredJob {
        id: row.get(0)?,
        owner: row.get(1)?,
        request: json(row.get(2)?).unwrap_or_default(),
        status: JobStatus::parse(&status),
        attempts: row.get(4)?,
        result: json(row.get(5)?),
        error: json(row.get(6)?),
        created_at: row.get(7)?,
        finished_at: row.get(8)?,
    })
}

fn insert_key(c: &Connection, owner: &str, key_hash: &str, key: &ApiKey) -> rusqlite::Result<()> {
    c.prepare_cached(
        "INSERT INTO api_keys (key_hash, handle, id, name, scopes, created_at, expires_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![
        key_hash,
        owner,
        key.id,
        key.name,
        key.scopes_text(),
        key.created_at,
        key.expires_at
    ])
    .map(drop)
}

/// An [`ApiKey`] from the row's columns `first..`: id, name, scopes,
/// created_at, expires_at, last_used_at.
fn key_row(row: &rusqlite::Row<'_>, first: usize) -> rusqlite::Result<ApiKey> {
    Ok(ApiKey {
        id: row.get(first)?,
        name: row.get(first + 1)?,
        scopes: ApiKey::parse_scopes(&row.get::<_, String>(first + 2)?),
        created_at: row.get(first + 3)?,
        expires_at: row.get(first + 4)?,
        last_used_at: row.get(first + 5)?,
    })
}

fn evaluation_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<StoredEvaluation> {
    let record: String = row.get(1)?;
    Ok(StoredEvaluation {
        id: row.get(0)?,
        record: serde_json::from_str(&record).unwrap_or(serde_json::Value::Null),
        created_at: row.get(2)?,
        request_id: row.get(3)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fresh(name: &str) -> (std::path::PathBuf, SqliteStore) {
        let dir = std::env::temp_dir().join(format!("valbox-store-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("valbox.db");
        let store = SqliteStore::open(&path).unwrap();
        store
            .create_user("alice", "a@example.com", "hash-a", &test_key("key_a"))
            .unwrap();
        (path, store)
    }

    #[test]
    fn a_job_is_started_per_delivery_and_finished_once() {
        let (_, store) = fresh("jobs");
        let request = serde_json::json!({"kind": "eval", "code": "1", "args": []});
        store.add_job("j1", "alice", &request).unwrap();
        store.add_job("j2", "alice", &request).unwrap();
        assert_eq!(store.unfinished_jobs().unwrap(), ["j1", "j2"]);
        let started = store.start_job("j1").unwrap().unwrap();
        assert_eq!((started.status, started.attempts), (JobStatus::Running, 1));
        // A second delivery of a running job (its worker was lost) counts again.
        assert_eq!(store.start_job("j1").unwrap().unwrap().attempts, 2);
        let result = serde_json::json!({"answer": 42});
        assert!(store.finish_job("j1", JobStatus::Done, &result).unwrap());
        assert!(!store
            .finish_job("j1", JobStatus::Failed, &serde_json::json!({}))
            .unwrap());
        assert!(
            store.start_job("j1").unwrap().is_none(),
            "finished jobs are not started again"
        );
        let job = store.job("alice", "j1").unwrap().unwrap();
        assert_eq!(
            (job.status, job.result, job.error),
            (JobStatus::Done, Some(result), None)
        );
        assert!(job.finished_at.is_some());
        assert!(
            store.job("bob", "j1").unwrap().is_none(),
            "only the owner's"
        );
        assert_eq!(store.unfinished_jobs().unwrap(), ["j2"]);
    }

    fn latest(store: &SqliteStore) -> Option<(u32, Privacy, String, Vec<u8>)> {
        store.version("alice", "f", None).unwrap().map(|v| {
            (
                v.version,
                v.meta.privacy,
                v.code.to_string(),
                v.bytecode.to_vec(),
            )
        })
    }

    #[test]
    fn every_write_replaces_what_the_cache_holds() {
        let (_, store) = fresh("cache");
        store
            .save_version("alice", "f", Some(Privacy::Public), "one", b"1", "g")
            .unwrap();
        assert_eq!(
            latest(&store),
            Some((1, Privacy::Public, "one".into(), b"1".to_vec()))
        );
        store
            .save_version("alice", "f", None, "two", b"2", "g")
            .unwrap();
        assert_eq!(
            latest(&store),
            Some((2, Privacy::Public, "two".into(), b"2".to_vec()))
        );
        store.set_privacy("alice", "f", Privacy::Private).unwrap();
        assert_eq!(latest(&store).unwrap().1, Privacy::Private);
        store.replace_bytecode("alice", "f", 2, b"2b", "h").unwrap();
        assert_eq!(latest(&store).unwrap().3, b"2b".to_vec());
        assert!(store.delete_val("alice", "f").unwrap());
        assert_eq!(latest(&store), None);
    }

    /// Two processes writing one file (here: two stores, two connections)
    /// wait for each other: a write that reads first must not fail with
    /// "database is locked" because the other committed in between.
    #[test]
    fn writers_sharing_the_file_wait_for_each_other() {
        let (path, first) = fresh("two-writers");
        let second = SqliteStore::open(&path).unwrap();
        std::thread::scope(|scope| {
            for (store, name) in [(&first, "f"), (&second, "g")] {
                scope.spawn(move || {
                    for i in 0..200 {
                        store
                            .save_version(
                                "alice",
                                name,
                                Some(Privacy::Public),
                                &i.to_string(),
                                b"b",
                                "h",
                            )
                            .unwrap_or_else(|e| panic!("save {i} of {name}: {e}"));
                    }
                });
            }
        });
        for (store, name) in [(&first, "g"), (&second, "f")] {
            let version = store.version("alice", name, None).unwrap().unwrap();
            assert_eq!(version.version, 200);
        }
    }

    fn test_key(id: &str) -> ApiKey {
        ApiKey {
            id: id.into(),
            name: "test".into(),
            scopes: vec!["run".into(), "vals:read".into()],
            created_at: 1,
            expires_at: None,
            last_used_at: None,
        }
    }

    #[test]
    fn keys_are_found_again_until_revoked_and_deleted_handles_are_retired() {
        let (_, store) = fresh("keys");
        for _ in 0..2 {
            let (user, key) = store.key_by_hash("hash-a").unwrap().unwrap();
            assert_eq!((user.handle.as_str(), key.id.as_str()), ("alice", "key_a"));
            assert_eq!(key.scopes, ["run", "vals:read"]);
            assert_eq!(store.key_by_hash("hash-b").unwrap(), None);
        }
        store
            .add_key("alice", "hash-a2", &test_key("key_a2"))
            .unwrap();
        store.touch_key("key_a2", 99).unwrap();
        let keys = store.keys("alice").unwrap();
        assert_eq!(keys.len(), 2);
        assert_eq!(keys[1].last_used_at, Some(99));
        // Revoked: gone at once, cached or not.
        assert!(store.revoke_key("alice", "key_a").unwrap());
        assert!(!store.revoke_key("alice", "key_a").unwrap());
        assert_eq!(store.key_by_hash("hash-a").unwrap(), None);
        assert!(store.key_by_hash("hash-a2").unwrap().is_some());
        // Deleted: everything goes, and the handle is never given out again.
        store.put_secret("alice", "s", b"x").unwrap();
        store
            .save_version("alice", "f", None, "export const f = 1", b"b", "h")
            .unwrap();
        assert!(latest(&store).is_some(), "cached");
        assert!(store.delete_user("alice").unwrap());
        assert!(!store.delete_user("alice").unwrap());
        assert_eq!(store.key_by_hash("hash-a2").unwrap(), None);
        assert_eq!(store.secret("alice", "s").unwrap(), None);
        assert_eq!(latest(&store), None);
        assert!(matches!(
            store.create_user("alice", "a@example.com", "hash-c", &test_key("key_c")),
            Err(StoreError::Conflict(_))
        ));
        store
            .create_user("bob", "b@example.com", "hash-b", &test_key("key_b"))
            .unwrap();
        assert_eq!(store.users().unwrap().len(), 1);
    }

    #[test]
    fn retention_prunes_by_age_and_by_count_in_batches() {
        let (_, store) = fresh("retention");
        for n in 0..30 {
            store
                .add_evaluation("alice", None, serde_json::json!({ "n": n }).to_string())
                .unwrap();
        }
        store
            .add_email("alice", None, "s", "b", "<1@x>", false)
            .unwrap();
        let job = serde_json::json!({"kind": "eval", "code": "1", "args": []});
        store.add_job("j1", "alice", &job).unwrap();
        store.start_job("j1").unwrap();
        store
            .finish_job("j1", JobStatus::Done, &serde_json::json!(1))
            .unwrap();
        store.add_job("j2", "alice", &job).unwrap();
        let retention = Retention {
            evaluations_per_user: 10,
            ..Retention::default()
        };
        let now = super::now();
        // By count, newest kept, in batches of 8.
        let first = store.prune(&retention, now, 8).unwrap();
        assert_eq!(first.evaluations, 8);
        assert!(first.full(8));
        let second = store.prune(&retention, now, 8).unwrap();
        assert_eq!((second.evaluations, second.jobs, second.emails), (8, 0, 0));
        let third = store.prune(&retention, now, 8).unwrap();
        assert_eq!(third.evaluations, 4);
        let kept = store.evaluations("alice", 100, None, None).unwrap();
        let kept: Vec<_> = kept
            .iter()
            .map(|e| e.record["n"].as_i64().unwrap())
            .collect();
        assert_eq!(kept, (20..30).rev().collect::<Vec<_>>());
        assert_eq!(store.prune(&retention, now, 8).unwrap(), Pruned::default());
        // By age, with the clock eight days on: records, the finished job
        // and the email go; the unfinished job stays.
        let later = now + 8 * 24 * 60 * 60;
        let aged = Retention {
            email_age: 7 * 24 * 60 * 60,
            ..retention
        };
        let pruned = store.prune(&aged, later, 100).unwrap();
        assert_eq!((pruned.evaluations, pruned.jobs, pruned.emails), (10, 1, 1));
        assert!(store.job("alice", "j2").unwrap().is_some());
        assert!(store.job("alice", "j1").unwrap().is_none());
        // Zero keeps forever.
        store
            .add_evaluation("alice", None, "{}".to_string())
            .unwrap();
        let forever = Retention {
            evaluation_age: 0,
            evaluations_per_user: 0,
            job_age: 0,
            email_age: 0,
        };
        assert_eq!(
            store.prune(&forever, later * 2, 100).unwrap(),
            Pruned::default()
        );
    }

    #[test]
    fn resealing_is_all_or_nothing() {
        let (_, store) = fresh("reseal");
        store.put_secret("alice", "a", b"1").unwrap();
        store.put_secret("alice", "b", b"2").unwrap();
        assert_eq!(store.init_master_key_fingerprint("old").unwrap(), "old");
        assert_eq!(store.init_master_key_fingerprint("other").unwrap(), "old");
        let mut failing = |_: &str, name: &str, sealed: &[u8]| {
            if name == "b" {
                Err("cannot".to_string())
            } else {
                Ok([sealed, b"!"].concat())
            }
        };
        assert!(store.reseal_secrets(&mut failing, "new").is_err());
        assert_eq!(store.secret("alice", "a").unwrap().unwrap(), b"1");
        assert_eq!(
            store.master_key_fingerprint().unwrap().as_deref(),
            Some("old")
        );
        let mut ok = |_: &str, _: &str, sealed: &[u8]| Ok([sealed, b"!"].concat());
        assert_eq!(store.reseal_secrets(&mut ok, "new").unwrap(), 2);
        assert_eq!(store.secret("alice", "b").unwrap().unwrap(), b"2!");
        assert_eq!(
            store.master_key_fingerprint().unwrap().as_deref(),
            Some("new")
        );
    }

    #[test]
    fn queued_traces_are_read_back_in_order_and_survive_closing() {
        let (path, store) = fresh("traces");
        for n in 0..50 {
            let request = format!("req-{}", n % 2);
            store
                .add_evaluation(
                    "alice",
                    Some(&request),
                    serde_json::json!({ "n": n }).to_string(),
                )
                .unwrap();
        }
        let read = store.evaluations("alice", 100, None, None).unwrap();
        let order: Vec<_> = read
            .iter()
            .map(|e| e.record["n"].as_i64().unwrap())
            .collect();
        assert_eq!(
            order,
            (0..50).rev().collect::<Vec<_>>(),
            "newest first, none missing"
        );
        let odd = store
            .evaluations("alice", 100, None, Some("req-1"))
            .unwrap();
        assert_eq!(odd.len(), 25);
        assert!(odd.iter().all(|e| e.request_id.as_deref() == Some("req-1")
            && e.record["n"].as_i64().unwrap() % 2 == 1));
        store
            .add_evaluation("alice", None, serde_json::json!({ "n": 50 }).to_string())
            .unwrap();
        drop(store);
        let reopened = SqliteStore::open(&path).unwrap();
        assert_eq!(
            reopened
                .evaluations("alice", 100, None, None)
                .unwrap()
                .len(),
            51
        );
    }
}

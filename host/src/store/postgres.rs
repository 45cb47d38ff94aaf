//! The store on PostgreSQL (`--database-url`), for several nodes sharing one
//! database: the same migrations as the SQLite store (`schema.rs`; applied
//! ones counted in `schema_version`), a pool of connections (`r2d2`, each
//! checked when taken, so a connection the server dropped is replaced),
//! the same hot cache as the embedded store kept right across nodes by
//! `LISTEN`/`NOTIFY` (`invalidation.rs`), and evaluation records written in
//! batches (`pg_traces.rs`).

use super::cache::HotCache;
use super::invalidation::{self, Invalidation, CHANNEL};
use super::pg_traces::TraceBatch;
use super::retention::Writers;
use super::schema::{self, Dialect};
use super::{
    ApiKey, Delivery, JobStatus, OutgoingEmail, Privacy, Pruned, Referrer, Reseal, Retention,
    Store, StoreError, StoreResult, StoreStats, StoredEmail, StoredEvaluation, StoredJob,
    StoredReference, StoredSchedule, User, ValMeta, ValVersion,
};
use postgres::{NoTls, Row};
use r2d2::{Pool, PooledConnection};
use r2d2_postgres::PostgresConnectionManager;
use serde_json::Value;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

type Manager = PostgresConnectionManager<NoTls>;

/// The PostgreSQL store: a pool of connections shared by every request (a
/// connection is held for one store call, never while a sandbox runs).
pub struct PgStore {
    pool: Pool<Manager>,
    hot: Arc<HotCache>,
    traces: Arc<TraceBatch>,
    /// Stops the cache listener when the store is dropped.
    stop: Arc<AtomicBool>,
    writers: Writers,
}

impl From<r2d2::Error> for StoreError {
    fn from(e: r2d2::Error) -> Self {
        StoreError::Database(format!("no database connection: {e}"))
    }
}

impl From<postgres::Error> for StoreError {
    fn from(e: postgres::Error) -> Self {
        match e.as_db_error() {
            Some(db) if db.code() == &postgres::error::SqlState::UNIQUE_VIOLATION => {
                StoreError::Conflict(db.message().to_string())
            }
            Some(db) if db.code() == &postgres::error::SqlState::DISK_FULL => {
                StoreError::Full(db.message().to_string())
            }
            Some(db) => StoreError::Database(db.message().to_string()),
            None => StoreError::Database(e.to_string()),
        }
    }
}

fn now() -> i64 {
    super::now()
}

fn meta(row: &Row) -> ValMeta {
    ValMeta {
        user: row.get(0),
        name: row.get(1),
        version: row.get::<_, i32>(2) as u32,
        privacy: Privacy::parse(row.get(3)),
    }
}

fn user(row: &Row) -> User {
    User {
        handle: row.get(0),
        email: row.get(1),
    }
}

fn json(text: Option<String>) -> Option<Value> {
    text.map(|t| serde_json::from_str(&t).unwrap_or(Value::Null))
}

const JOB_COLUMNS: &str =
    "SELECT id, owner, request, status, attempts, result, error, created_at, finished_at FROM jobs";

fn job(row: &Row) -> StoredJob {
    StoredJob {
        id: row.get(0),
        owner: row.get(1),
        request: json(row.get(2)).unwrap_or_default(),
        status: JobStatus::parse(row.get(3)),
        attempts: row.get::<_, i32>(4) as u32,
        result: json(row.get(5)),
        error: json(row.get(6)),
        created_at: row.get(7),
        finished_at: row.get(8),
    }
}

fn insert_key(
    t: &mut postgres::Transaction<'_>,
    owner: &str,
    key_hash: &str,
    key: &ApiKey,
) -> Result<u64, postgres::Error> {
    t.execute(
        "INSERT INTO api_keys (key_hash, handle, id, name, scopes, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        &[&key_hash, &owner, &key.id, &key.name, &key.scopes_text(), &key.created_at, &key.expires_at],
    )
}

/// An [`ApiKey`] from the row's columns `first..`: id, name, scopes,
/// created_at, expires_at, last_used_at.
fn key_row(row: &Row, first: usize) -> ApiKey {
    ApiKey {
        id: row.get(first),
        name: row.get(first + 1),
        scopes: ApiKey::parse_scopes(row.get(first + 2)),
        created_at: row.get(first + 3),
        expires_at: row.get(first + 4),
        last_used_at: row.get(first + 5),
    }
}

fn evaluation(row: &Row) -> StoredEvaluation {
    StoredEvaluation {
        id: row.get(0),
        record: json(row.get(1)).unwrap_or_default(),
        created_at: row.get(2),
        request_id: row.get(3),
    }
}

impl PgStore {
    /// Connects to `url` (`postgres://user@host/db`) with a pool of at most
    /// `pool_size` connections, migrates the schema (concurrent starts take
    /// turns on an advisory lock), and starts the cache listener and the
    /// evaluation record writer.
    pub fn open(url: &str, pool_size: u32) -> StoreResult<Self> {
        let mut config: postgres::Config = url
            .parse()
            .map_err(|e: postgres::Error| StoreError::Database(format!("the database URL: {e}")))?;
        // Operators (and the tests) tell this node's connections apart by name.
        let mut listener_config = config.clone();
        listener_config.application_name(&format!("valbox-listener-{}", std::process::id()));
        config.application_name(&format!("valbox-{}", std::process::id()));
        let pool = Pool::builder()
            .max_size(pool_size.max(1))
            .min_idle(Some(1))
            .connection_timeout(std::time::Duration::from_secs(5))
            .test_on_check_out(true)
            .build(PostgresConnectionManager::new(config, NoTls))?;
        let mut client = pool.get()?;
        let mut t = client.transaction()?;
        t.execute("SELECT pg_advisory_xact_lock(7150867)", &[])?;
        t.batch_execute("CREATE TABLE IF NOT EXISTS schema_version (applied INTEGER NOT NULL)")?;
        let applied: i64 = t
            .query_one("SELECT COUNT(*) FROM schema_version", &[])?
            .get(0);
        for migration in schema::migrations(Dialect::Postgres)
            .iter()
            .skip(applied as usize)
        {
            t.batch_execute(migration)?;
            t.execute("INSERT INTO schema_version (applied) VALUES (1)", &[])?;
        }
        t.commit()?;
        drop(client);
        // Off until the listener listens: nothing is served from it before.
        let hot = Arc::new(HotCache::new(false));
        let stop = Arc::new(AtomicBool::new(false));
        invalidation::listen(listener_config, hot.clone(), stop.clone());
        Ok(PgStore {
            traces: TraceBatch::start(pool.clone()),
            pool,
            hot,
            stop,
            writers: Writers::default(),
        })
    }

    /// A pooled connection, for one store call.
    fn client(&self) -> StoreResult<PooledConnection<Manager>> {
        Ok(self.pool.get()?)
    }

    /// Forgets `what` here and announces it to every node, inside `t` (the
    /// announcement is delivered when, and only if, `t` commits).
    fn announce(
        &self,
        t: &mut impl postgres::GenericClient,
        what: Invalidation,
    ) -> Result<(), postgres::Error> {
        what.apply(&self.hot);
        t.execute("SELECT pg_notify($1, $2)", &[&CHANNEL, &what.payload()])?;
        Ok(())
    }
}

impl Drop for PgStore {
    fn drop(&mut self) {
        self.traces.close();
        self.stop.store(true, Ordering::SeqCst);
    }
}

impl Store for PgStore {
    fn create_user(
        &self,
        handle: &str,
        email: &str,
        key_hash: &str,
        key: &ApiKey,
    ) -> StoreResult<()> {
        let mut client = self.client()?;
        let mut t = client.transaction()?;
        let retired = t
            .query_opt(
                "SELECT 1 FROM retired_handles WHERE handle = $1",
                &[&handle],
            )?
            .is_some();
        if retired {
            return Err(StoreError::Conflict(format!(
                "the handle `{handle}` belonged to a deleted user and is retired"
            )));
        }
        let inserted = t.execute(
            "INSERT INTO users (handle, email, created_at) VALUES ($1, $2, $3)",
            &[&handle, &email, &now()],
        );
        match inserted.map_err(StoreError::from) {
            Ok(_) => {}
            Err(StoreError::Conflict(_)) => {
                return Err(StoreError::Conflict(format!(
                    "the handle `{handle}` is taken"
                )))
            }
            Err(other) => return Err(other),
        }
        insert_key(&mut t, handle, key_hash, key)?;
        Ok(t.commit()?)
    }

    fn key_by_hash(&self, key_hash: &str) -> StoreResult<Option<(User, ApiKey)>> {
        if let Some(found) = self.hot.key(key_hash) {
            return Ok(Some(found));
        }
        let epoch = self.hot.epoch();
        let row = self.client()?.query_opt(
            "SELECT u.handle, u.email, k.id, k.name, k.scopes, k.created_at, k.expires_at, k.last_used_at
             FROM api_keys k JOIN users u ON u.handle = k.handle WHERE k.key_hash = $1",
            &[&key_hash],
        )?;
        let found = row.as_ref().map(|row| (user(row), key_row(row, 2)));
        if let Some(found) = &found {
            self.hot.keep_key(key_hash, found, epoch);
        }
        Ok(found)
    }

    fn add_key(&self, owner: &str, key_hash: &str, key: &ApiKey) -> StoreResult<()> {
        let mut client = self.client()?;
        let mut t = client.transaction()?;
        insert_key(&mut t, owner, key_hash, key)?;
        Ok(t.commit()?)
    }

    fn keys(&self, owner: &str) -> StoreResult<Vec<ApiKey>> {
        let rows = self.client()?.query(
            "SELECT id, name, scopes, created_at, expires_at, last_used_at FROM api_keys
             WHERE handle = $1 ORDER BY created_at, id",
            &[&owner],
        )?;
        Ok(rows.iter().map(|row| key_row(row, 0)).collect())
    }

    fn revoke_key(&self, owner: &str, id: &str) -> StoreResult<bool> {
        let mut client = self.client()?;
        let mut t = client.transaction()?;
        let deleted = t.execute(
            "DELETE FROM api_keys WHERE handle = $1 AND id = $2",
            &[&owner, &id],
        )?;
        self.announce(&mut t, Invalidation::Everything)?;
        t.commit()?;
        Ok(deleted > 0)
    }

    fn touch_key(&self, id: &str, at: i64) -> StoreResult<()> {
        self.client()?.execute(
            "UPDATE api_keys SET last_used_at = $2 WHERE id = $1",
            &[&id, &at],
        )?;
        Ok(())
    }

    fn users(&self) -> StoreResult<Vec<User>> {
        let rows = self
            .client()?
            .query("SELECT handle, email FROM users ORDER BY handle", &[])?;
        Ok(rows.iter().map(user).collect())
    }

    fn delete_user(&self, handle: &str) -> StoreResult<bool> {
        self.traces.flush();
        let mut client = self.client()?;
        let mut t = client.transaction()?;
        let existed = t
            .query_opt("SELECT 1 FROM users WHERE handle = $1", &[&handle])?
            .is_some();
        for statement in [
            "DELETE FROM api_keys WHERE handle = $1",
            "DELETE FROM secrets WHERE owner = $1",
            "DELETE FROM val_versions WHERE owner = $1",
            "DELETE FROM vals WHERE owner = $1",
            "DELETE FROM evaluations WHERE viewer = $1",
            "DELETE FROM emails WHERE to_user = $1",
            "DELETE FROM jobs WHERE owner = $1",
            "DELETE FROM schedules WHERE owner = $1",
            "DELETE FROM val_forks WHERE owner = $1",
            "DELETE FROM users WHERE handle = $1",
        ] {
            t.execute(statement, &[&handle])?;
        }
        if existed {
            t.execute(
                "INSERT INTO retired_handles (handle, deleted_at) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                &[&handle, &now()],
            )?;
        }
        self.announce(&mut t, Invalidation::Everything)?;
        t.commit()?;
        Ok(existed)
    }

    fn reseal_secrets(&self, reseal: Reseal<'_>, fingerprint: &str) -> StoreResult<usize> {
        let mut client = self.client()?;
        let mut t = client.transaction()?;
        // Writers of secrets wait for this rotation, and it sees all of them.
        t.batch_execute("LOCK TABLE secrets IN EXCLUSIVE MODE")?;
        let rows = t.query(
            "SELECT owner, key, sealed FROM secrets ORDER BY owner, key",
            &[],
        )?;
        for row in &rows {
            let (owner, key, sealed): (String, String, Vec<u8>) =
                (row.get(0), row.get(1), row.get(2));
            let resealed = reseal(&owner, &key, &sealed).map_err(StoreError::Database)?;
            t.execute(
                "UPDATE secrets SET sealed = $3 WHERE owner = $1 AND key = $2",
                &[&owner, &key, &resealed],
            )?;
        }
        t.execute(
            "INSERT INTO meta (name, value) VALUES ('master_key', $1)
             ON CONFLICT (name) DO UPDATE SET value = excluded.value",
            &[&fingerprint],
        )?;
        t.commit()?;
        Ok(rows.len())
    }

    fn master_key_fingerprint(&self) -> StoreResult<Option<String>> {
        let row = self
            .client()?
            .query_opt("SELECT value FROM meta WHERE name = 'master_key'", &[])?;
        Ok(row.map(|row| row.get(0)))
    }

    fn size_bytes(&self) -> StoreResult<u64> {
        let row = self
            .client()?
            .query_one("SELECT pg_database_size(current_database())", &[])?;
        Ok(row.get::<_, i64>(0).max(0) as u64)
    }

    fn storage_used(&self, owner: &str) -> StoreResult<u64> {
        let row = self.client()?.query_one(
            "SELECT (SELECT COALESCE(SUM(octet_length(code) + octet_length(bytecode)), 0) FROM val_versions WHERE owner = $1)::BIGINT
                  + (SELECT COALESCE(SUM(octet_length(sealed)), 0) FROM secrets WHERE owner = $1)::BIGINT",
            &[&owner],
        )?;
        Ok(row.get::<_, i64>(0).max(0) as u64)
    }

    fn prune(&self, retention: &Retention, now: i64, batch: u32) -> StoreResult<Pruned> {
        let writers = self.writers.take();
        let mut client = self.client()?;
        let batch_rows = i64::from(batch);
        let mut pruned = Pruned::default();
        // Oldest first by id (ids grow with time): only the first `batch`
        // rows are looked at.
        for (table, age, count) in [
            (
                "evaluations",
                retention.evaluation_age,
                &mut pruned.evaluations,
            ),
            ("emails", retention.email_age, &mut pruned.emails),
        ] {
            if age > 0 {
                *count += client.execute(
                    &format!(
                        "DELETE FROM {table} WHERE id IN (SELECT id FROM {table} ORDER BY id LIMIT $2)
                         AND created_at < $1"
                    ),
                    &[&(now - age), &batch_rows],
                )?;
            }
        }
        if retention.job_age > 0 {
            pruned.jobs += client.execute(
                "DELETE FROM jobs WHERE seq IN (SELECT seq FROM jobs WHERE status IN ('done', 'failed')
                 AND finished_at < $1 ORDER BY seq LIMIT $2)",
                &[&(now - retention.job_age), &batch_rows],
            )?;
        }
        if retention.evaluations_per_user > 0 {
            let keep = i64::from(retention.evaluations_per_user) - 1;
            for viewer in writers {
                let Some(row) = client.query_opt(
                    "SELECT id FROM evaluations WHERE viewer = $1 ORDER BY id DESC LIMIT 1 OFFSET $2",
                    &[&viewer, &keep],
                )?
                else {
                    continue;
                };
                let oldest_kept: i64 = row.get(0);
                let deleted = client.execute(
                    "DELETE FROM evaluations WHERE id IN (SELECT id FROM evaluations
                     WHERE viewer = $1 AND id < $2 ORDER BY id LIMIT $3)",
                    &[&viewer, &oldest_kept, &batch_rows],
                )?;
                if deleted >= u64::from(batch) {
                    self.writers.wrote(&viewer);
                }
                pruned.evaluations += deleted;
            }
        }
        Ok(pruned)
    }

    fn init_master_key_fingerprint(&self, fingerprint: &str) -> StoreResult<String> {
        let mut client = self.client()?;
        client.execute(
            "INSERT INTO meta (name, value) VALUES ('master_key', $1) ON CONFLICT (name) DO NOTHING",
            &[&fingerprint],
        )?;
        let row = client.query_one("SELECT value FROM meta WHERE name = 'master_key'", &[])?;
        Ok(row.get(0))
    }

    fn user(&self, handle: &str) -> StoreResult<Option<User>> {
        let row = self.client()?.query_opt(
            "SELECT handle, email FROM users WHERE handle = $1",
            &[&handle],
        )?;
        Ok(row.as_ref().map(user))
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
        let mut client = self.client()?;
        let mut t = client.transaction()?;
        // One writer per val at a time, across nodes.
        t.execute(
            "SELECT pg_advisory_xact_lock(hashtext($1))",
            &[&format!("{owner}.{name}")],
        )?;
        let existing = t.query_opt(
            "SELECT latest, privacy FROM vals WHERE owner = $1 AND name = $2",
            &[&owner, &name],
        )?;
        let highest: i32 = t
            .query_one(
                "SELECT COALESCE(MAX(version), 0) FROM val_versions WHERE owner = $1 AND name = $2",
                &[&owner, &name],
            )?
            .get(0);
        let existing: Option<(i32, String)> = existing.map(|row| (row.get(0), row.get(1)));
        // Versions keep counting across a delete, so a version number never means two things.
        let version = highest.max(existing.as_ref().map_or(0, |e| e.0)) + 1;
        let privacy = privacy
            .or(existing.as_ref().map(|e| Privacy::parse(&e.1)))
            .unwrap_or(Privacy::Private);
        t.execute(
            "INSERT INTO val_versions (owner, name, version, code, bytecode, guest_hash, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
            &[&owner, &name, &version, &code, &bytecode, &guest_hash, &now()],
        )?;
        t.execute(
            "INSERT INTO vals (owner, name, privacy, latest) VALUES ($1, $2, $3, $4)
             ON CONFLICT (owner, name) DO UPDATE SET privacy = excluded.privacy, latest = excluded.latest",
            &[&owner, &name, &privacy.as_str(), &version],
        )?;
        self.announce(&mut t, Invalidation::Val(owner.into(), name.into()))?;
        t.commit()?;
        Ok(ValMeta {
            user: owner.into(),
            name: name.into(),
            version: version as u32,
            privacy,
        })
    }

    fn version(
        &self,
        owner: &str,
        name: &str,
        version: Option<u32>,
    ) -> StoreResult<Option<ValVersion>> {
        if version.is_none() {
            if let Some(latest) = self.hot.latest(owner, name) {
                return Ok(Some(latest));
            }
        }
        let pinned = version.is_some();
        let epoch = self.hot.epoch();
        let version = version.map(|v| v as i32);
        let row = self.client()?.query_opt(
            "SELECT v.owner, v.name, v.latest, v.privacy, x.version, x.code, x.bytecode, x.guest_hash, x.created_at
             FROM vals v JOIN val_versions x ON x.owner = v.owner AND x.name = v.name
             WHERE v.owner = $1 AND v.name = $2 AND x.version = COALESCE($3, v.latest)",
            &[&owner, &name, &version],
        )?;
        let found = row.map(|row| ValVersion {
            meta: meta(&row),
            version: row.get::<_, i32>(4) as u32,
            code: row.get::<_, String>(5).into(),
            bytecode: row.get::<_, Vec<u8>>(6).into(),
            guest_hash: row.get(7),
            created_at: row.get(8),
        });
        if let (false, Some(latest)) = (pinned, &found) {
            self.hot.keep_latest(latest, epoch);
        }
        Ok(found)
    }

    fn replace_bytecode(
        &self,
        owner: &str,
        name: &str,
        version: u32,
        bytecode: &[u8],
        guest_hash: &str,
    ) -> StoreResult<()> {
        let mut client = self.client()?;
        let mut t = client.transaction()?;
        t.execute(
            "UPDATE val_versions SET bytecode = $4, guest_hash = $5 WHERE owner = $1 AND name = $2 AND version = $3",
            &[&owner, &name, &(version as i32), &bytecode, &guest_hash],
        )?;
        self.announce(&mut t, Invalidation::Val(owner.into(), name.into()))?;
        t.commit()?;
        Ok(())
    }

    fn versions(&self, owner: &str, name: &str) -> StoreResult<Vec<(u32, i64)>> {
        let rows = self.client()?.query(
            "SELECT x.version, x.created_at FROM val_versions x JOIN vals v ON v.owner = x.owner AND v.name = x.name
             WHERE x.owner = $1 AND x.name = $2 ORDER BY x.version",
            &[&owner, &name],
        )?;
        Ok(rows
            .iter()
            .map(|row| (row.get::<_, i32>(0) as u32, row.get(1)))
            .collect())
    }

    fn set_privacy(
        &self,
        owner: &str,
        name: &str,
        privacy: Privacy,
    ) -> StoreResult<Option<ValMeta>> {
        let mut client = self.client()?;
        let mut t = client.transaction()?;
        let row = t.query_opt(
            "UPDATE vals SET privacy = $3 WHERE owner = $1 AND name = $2 RETURNING owner, name, latest, privacy",
            &[&owner, &name, &privacy.as_str()],
        )?;
        self.announce(&mut t, Invalidation::Val(owner.into(), name.into()))?;
        t.commit()?;
        Ok(row.as_ref().map(meta))
    }

    fn delete_val(&self, owner: &str, name: &str) -> StoreResult<bool> {
        let mut client = self.client()?;
        let mut t = client.transaction()?;
        let deleted = t.execute(
            "DELETE FROM vals WHERE owner = $1 AND name = $2",
            &[&owner, &name],
        )?;
        t.execute(
            "DELETE FROM schedules WHERE owner = $1 AND name = $2",
            &[&owner, &name],
        )?;
        t.execute(
            "DELETE FROM val_forks WHERE owner = $1 AND name = $2",
            &[&owner, &name],
        )?;
        self.announce(&mut t, Invalidation::Val(owner.into(), name.into()))?;
        t.commit()?;
        Ok(deleted > 0)
    }

    fn list_vals(&self, owner: &str, include_private: bool) -> StoreResult<Vec<ValMeta>> {
        let rows = self.client()?.query(
            "SELECT owner, name, latest, privacy FROM vals WHERE owner = $1 AND ($2 OR privacy = 'public') ORDER BY name",
            &[&owner, &include_private],
        )?;
        Ok(rows.iter().map(meta).collect())
    }

    fn put_secret(&self, owner: &str, key: &str, sealed: &[u8]) -> StoreResult<()> {
        self.client()?.execute(
            "INSERT INTO secrets (owner, key, sealed) VALUES ($1, $2, $3)
             ON CONFLICT (owner, key) DO UPDATE SET sealed = excluded.sealed",
            &[&owner, &key, &sealed],
        )?;
        Ok(())
    }

    fn secret(&self, owner: &str, key: &str) -> StoreResult<Option<Vec<u8>>> {
        let row = self.client()?.query_opt(
            "SELECT sealed FROM secrets WHERE owner = $1 AND key = $2",
            &[&owner, &key],
        )?;
        Ok(row.map(|row| row.get(0)))
    }

    fn secret_names(&self, owner: &str) -> StoreResult<Vec<String>> {
        let rows = self.client()?.query(
            "SELECT key FROM secrets WHERE owner = $1 ORDER BY key",
            &[&owner],
        )?;
        Ok(rows.iter().map(|row| row.get(0)).collect())
    }

    fn delete_secret(&self, owner: &str, key: &str) -> StoreResult<bool> {
        let deleted = self.client()?.execute(
            "DELETE FROM secrets WHERE owner = $1 AND key = $2",
            &[&owner, &key],
        )?;
        Ok(deleted > 0)
    }

    fn add_evaluation(
        &self,
        viewer: &str,
        request_id: Option<&str>,
        record: String,
    ) -> StoreResult<()> {
        self.writers.wrote(viewer);
        self.traces.add(viewer, request_id, record);
        Ok(())
    }

    fn evaluations(
        &self,
        viewer: &str,
        limit: u32,
        before: Option<i64>,
        request_id: Option<&str>,
    ) -> StoreResult<Vec<StoredEvaluation>> {
        self.traces.flush();
        let rows = self.client()?.query(
            "SELECT id, record, created_at, request_id FROM evaluations WHERE viewer = $1
             AND ($4::TEXT IS NULL OR request_id = $4) AND id < COALESCE($2, 9223372036854775807)
             ORDER BY id DESC LIMIT $3",
            &[&viewer, &before, &(limit as i64), &request_id],
        )?;
        Ok(rows.iter().map(evaluation).collect())
    }

    fn flush(&self) -> StoreResult<()> {
        self.traces.flush();
        Ok(())
    }

    fn evaluation(&self, viewer: &str, id: i64) -> StoreResult<Option<StoredEvaluation>> {
        self.traces.flush();
        let row = self.client()?.query_opt(
            "SELECT id, record, created_at, request_id FROM evaluations WHERE viewer = $1 AND id = $2",
            &[&viewer, &id],
        )?;
        Ok(row.as_ref().map(evaluation))
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
        self.client()?.execute(
            "INSERT INTO emails (to_user, from_author, subject, body, created_at, message_id, delivery, next_attempt_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, 0)",
            &[&to, &from_author, &subject, &body, &now(), &message_id, &delivery],
        )?;
        Ok(())
    }

    fn due_emails(&self, now_ms: i64, limit: u32) -> StoreResult<Vec<OutgoingEmail>> {
        let rows = self.client()?.query(
            "SELECT e.id, u.email, e.subject, e.body, e.message_id, e.attempts FROM emails e JOIN users u ON u.handle = e.to_user
             WHERE e.delivery = 'pending' AND e.next_attempt_at <= $1 ORDER BY e.next_attempt_at LIMIT $2",
            &[&now_ms, &i64::from(limit)],
        )?;
        Ok(rows
            .iter()
            .map(|row| OutgoingEmail {
                id: row.get(0),
                to_address: row.get(1),
                subject: row.get(2),
                body: row.get(3),
                message_id: row.get::<_, Option<String>>(4).unwrap_or_default(),
                attempts: row.get::<_, i32>(5) as u32,
            })
            .collect())
    }

    fn claim_email(&self, email: &OutgoingEmail, lease_until: i64) -> StoreResult<bool> {
        let claimed = self.client()?.execute(
            "UPDATE emails SET attempts = attempts + 1, next_attempt_at = $3
             WHERE id = $1 AND attempts = $2 AND delivery = 'pending'",
            &[&email.id, &(email.attempts as i32), &lease_until],
        )?;
        Ok(claimed == 1)
    }

    fn email_delivered(&self, id: i64, delivery: &Delivery) -> StoreResult<()> {
        let (state, retry_at, error) = match delivery {
            Delivery::Sent => ("sent", None, None),
            Delivery::Retry(at, error) => ("pending", Some(*at), Some(error.as_str())),
            Delivery::Failed(error) => ("failed", None, Some(error.as_str())),
        };
        self.client()?.execute(
            "UPDATE emails SET delivery = $2, next_attempt_at = coalesce($3, next_attempt_at), delivery_error = $4 WHERE id = $1",
            &[&id, &state, &retry_at, &error],
        )?;
        Ok(())
    }

    fn emails(&self, to: &str) -> StoreResult<Vec<StoredEmail>> {
        let rows = self.client()?.query(
            "SELECT id, to_user, from_author, subject, body, created_at, message_id, delivery, delivery_error FROM emails WHERE to_user = $1 ORDER BY id DESC",
            &[&to],
        )?;
        Ok(rows
            .iter()
            .map(|row| StoredEmail {
                id: row.get(0),
                to: row.get(1),
                from_author: row.get(2),
                subject: row.get(3),
                body: row.get(4),
                created_at: row.get(5),
                message_id: row.get(6),
                delivery: row.get(7),
                delivery_error: row.get(8),
            })
            .collect())
    }

    fn add_job(&self, id: &str, owner: &str, request: &Value) -> StoreResult<()> {
        self.client()?.execute(
            "INSERT INTO jobs (id, owner, request, status, created_at) VALUES ($1, $2, $3, 'queued', $4)",
            &[&id, &owner, &request.to_string(), &now()],
        )?;
        Ok(())
    }

    fn start_job(&self, id: &str) -> StoreResult<Option<StoredJob>> {
        let row = self.client()?.query_opt(
            "UPDATE jobs SET status = 'running', attempts = attempts + 1
             WHERE id = $1 AND status IN ('queued', 'running')
             RETURNING id, owner, request, status, attempts, result, error, created_at, finished_at",
            &[&id],
        )?;
        Ok(row.as_ref().map(job))
    }

    fn finish_job(&self, id: &str, status: JobStatus, outcome: &Value) -> StoreResult<bool> {
        let (result, error) = match status {
            JobStatus::Done => (Some(outcome.to_string()), None),
            _ => (None, Some(outcome.to_string())),
        };
        self.traces.flush();
        let changed = self.client()?.execute(
            "UPDATE jobs SET status = $2, result = $3, error = $4, finished_at = $5 WHERE id = $1 AND status IN ('queued', 'running')",
            &[&id, &status.as_str(), &result, &error, &now()],
        )?;
        Ok(changed == 1)
    }

    fn job(&self, owner: &str, id: &str) -> StoreResult<Option<StoredJob>> {
        let row = self.client()?.query_opt(
            &format!("{JOB_COLUMNS} WHERE id = $1 AND owner = $2"),
            &[&id, &owner],
        )?;
        Ok(row.as_ref().map(job))
    }

    fn jobs(&self, owner: &str, limit: u32, before: Option<&str>) -> StoreResult<Vec<StoredJob>> {
        let rows = self.client()?.query(
            &format!(
                "{JOB_COLUMNS} WHERE owner = $1 AND ($2::TEXT IS NULL OR seq < (SELECT seq FROM jobs WHERE id = $2))
                 ORDER BY seq DESC LIMIT $3"
            ),
            &[&owner, &before, &i64::from(limit)],
        )?;
        Ok(rows.iter().map(job).collect())
    }

    fn unfinished_jobs(&self) -> StoreResult<Vec<String>> {
        let rows = self.client()?.query(
            "SELECT id FROM jobs WHERE status IN ('queued', 'running') ORDER BY seq",
            &[],
        )?;
        Ok(rows.iter().map(|row| row.get(0)).collect())
    }

    fn put_schedule(&self, schedule: &StoredSchedule) -> StoreResult<()> {
        self.client()?.execute(
            "INSERT INTO schedules (owner, name, spec, paused, next_run_at, failures, created_at)
             VALUES ($1, $2, $3, $4, $5, 0, $6)
             ON CONFLICT (owner, name) DO UPDATE SET spec = excluded.spec, paused = excluded.paused,
               next_run_at = excluded.next_run_at, failures = 0, last_error = NULL",
            &[
                &schedule.owner,
                &schedule.name,
                &schedule.spec.to_string(),
                &i32::from(schedule.paused),
                &schedule.next_run_at,
                &now(),
            ],
        )?;
        Ok(())
    }

    fn delete_schedule(&self, owner: &str, name: &str) -> StoreResult<bool> {
        let deleted = self.client()?.execute(
            "DELETE FROM schedules WHERE owner = $1 AND name = $2",
            &[&owner, &name],
        )?;
        Ok(deleted > 0)
    }

    fn schedule(&self, owner: &str, name: &str) -> StoreResult<Option<StoredSchedule>> {
        let row = self.client()?.query_opt(
            &format!("{SCHEDULE_COLUMNS} WHERE owner = $1 AND name = $2"),
            &[&owner, &name],
        )?;
        Ok(row.as_ref().map(schedule))
    }

    fn schedules(&self, owner: &str) -> StoreResult<Vec<StoredSchedule>> {
        let rows = self.client()?.query(
            &format!("{SCHEDULE_COLUMNS} WHERE owner = $1 ORDER BY name"),
            &[&owner],
        )?;
        Ok(rows.iter().map(schedule).collect())
    }

    fn set_schedule_paused(
        &self,
        owner: &str,
        name: &str,
        paused: bool,
        next_run_at: i64,
    ) -> StoreResult<bool> {
        let changed = if paused {
            self.client()?.execute(
                "UPDATE schedules SET paused = 1 WHERE owner = $1 AND name = $2",
                &[&owner, &name],
            )?
        } else {
            self.client()?.execute(
                "UPDATE schedules SET paused = 0, failures = 0, next_run_at = $3 WHERE owner = $1 AND name = $2",
                &[&owner, &name, &next_run_at],
            )?
        };
        Ok(changed > 0)
    }

    fn due_schedules(&self, now_ms: i64, limit: u32) -> StoreResult<Vec<StoredSchedule>> {
        let rows = self.client()?.query(
            &format!(
                "{SCHEDULE_COLUMNS} WHERE paused = 0 AND next_run_at <= $1 ORDER BY next_run_at LIMIT $2"
            ),
            &[&now_ms, &i64::from(limit)],
        )?;
        Ok(rows.iter().map(schedule).collect())
    }

    fn claim_tick(
        &self,
        owner: &str,
        name: &str,
        tick: i64,
        next: i64,
        id: &str,
        request: &Value,
    ) -> StoreResult<bool> {
        let mut client = self.client()?;
        let mut t = client.transaction()?;
        let moved = t.execute(
            "UPDATE schedules SET next_run_at = $4 WHERE owner = $1 AND name = $2 AND next_run_at = $3 AND paused = 0",
            &[&owner, &name, &tick, &next],
        )?;
        if moved == 0 {
            return Ok(false);
        }
        let stored = t.execute(
            "INSERT INTO jobs (id, owner, request, status, created_at, tick_key) VALUES ($1, $2, $3, 'queued', $4, $5)
             ON CONFLICT (tick_key) DO NOTHING",
            &[&id, &owner, &request.to_string(), &now(), &format!("{owner}/{name}@{tick}")],
        )?;
        t.commit()?;
        Ok(stored == 1)
    }

    fn record_schedule_run(
        &self,
        owner: &str,
        name: &str,
        started_at: i64,
        error: Option<&str>,
    ) -> StoreResult<u32> {
        let row = self.client()?.query_opt(
            "UPDATE schedules SET last_run_at = greatest(coalesce(last_run_at, 0), $3),
               last_status = CASE WHEN $4::TEXT IS NULL THEN 'done' ELSE 'failed' END,
               last_error = $4,
               failures = CASE WHEN $4::TEXT IS NULL THEN 0 ELSE failures + 1 END
             WHERE owner = $1 AND name = $2 RETURNING failures",
            &[&owner, &name, &started_at, &error],
        )?;
        Ok(row.map_or(0, |row| row.get::<_, i32>(0) as u32))
    }

    fn stats(&self) -> StoreStats {
        let (cache_hits, cache_misses) = self.hot.counts();
        let state = self.pool.state();
        StoreStats {
            cache_live: self.hot.is_live(),
            cache_hits,
            cache_misses,
            pool: Some((state.connections, state.idle_connections)),
        }
    }

    fn prune_versions(&self, owner: &str, name: &str, keep: u32) -> StoreResult<u64> {
        Ok(self.client()?.execute(
            "DELETE FROM val_versions v WHERE v.owner = $1 AND v.name = $2
               AND v.version <= (SELECT max(version) FROM val_versions WHERE owner = $1 AND name = $2) - $3
               AND NOT EXISTS (SELECT 1 FROM val_references r WHERE r.target_owner = $1 AND r.target_name = $2
                               AND r.target_version = v.version AND r.kind <> 'secret_read')",
            &[&owner, &name, &(keep as i32)],
        )?)
    }

    fn put_references(
        &self,
        owner: &str,
        name: &str,
        version: u32,
        references: &[StoredReference],
    ) -> StoreResult<()> {
        let mut client = self.client()?;
        let mut t = client.transaction()?;
        let version = version as i32;
        t.execute(
            "DELETE FROM val_references WHERE owner = $1 AND name = $2 AND version = $3",
            &[&owner, &name, &version],
        )?;
        for (seq, r) in references.iter().enumerate() {
            t.execute(
                "INSERT INTO val_references (owner, name, version, seq, kind, target_owner, target_name, target_version, line, col)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                &[
                    &owner,
                    &name,
                    &version,
                    &(seq as i32),
                    &r.kind,
                    &r.owner,
                    &r.name,
                    &r.version.map(|v| v as i32),
                    &(r.line as i32),
                    &(r.column as i32),
                ],
            )?;
        }
        Ok(t.commit()?)
    }

    fn references(
        &self,
        owner: &str,
        name: &str,
        version: u32,
    ) -> StoreResult<Vec<StoredReference>> {
        let rows = self.client()?.query(
            "SELECT kind, target_owner, target_name, target_version, line, col FROM val_references
             WHERE owner = $1 AND name = $2 AND version = $3 ORDER BY seq",
            &[&owner, &name, &(version as i32)],
        )?;
        Ok(rows.iter().map(|row| reference(row, 0)).collect())
    }

    fn referenced_by(&self, owner: &str, name: &str) -> StoreResult<Vec<Referrer>> {
        let rows = self.client()?.query(
            "SELECT r.owner, r.name, r.version, v.privacy, r.kind, r.target_owner, r.target_name, r.target_version, r.line, r.col
             FROM val_references r JOIN vals v ON v.owner = r.owner AND v.name = r.name AND v.latest = r.version
             WHERE r.target_owner = $1 AND r.target_name = $2 ORDER BY r.owner, r.name, r.seq",
            &[&owner, &name],
        )?;
        Ok(rows
            .iter()
            .map(|row| Referrer {
                owner: row.get(0),
                name: row.get(1),
                version: row.get::<_, i32>(2) as u32,
                public: row.get::<_, String>(3) == "public",
                reference: reference(row, 4),
            })
            .collect())
    }

    fn version_sources(
        &self,
        after: Option<(&str, &str, u32)>,
        limit: u32,
    ) -> StoreResult<Vec<(String, String, u32, String)>> {
        let (owner, name, version) = after.unwrap_or(("", "", 0));
        let rows = self.client()?.query(
            "SELECT owner, name, version, code FROM val_versions
             WHERE (owner, name, version) > ($1, $2, $3) ORDER BY owner, name, version LIMIT $4",
            &[&owner, &name, &(version as i32), &i64::from(limit)],
        )?;
        Ok(rows
            .iter()
            .map(|row| {
                (
                    row.get(0),
                    row.get(1),
                    row.get::<_, i32>(2) as u32,
                    row.get(3),
                )
            })
            .collect())
    }

    fn set_fork(&self, owner: &str, name: &str, from: (&str, &str, u32)) -> StoreResult<()> {
        self.client()?.execute(
            "INSERT INTO val_forks (owner, name, from_owner, from_name, from_version) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (owner, name) DO UPDATE SET from_owner = excluded.from_owner,
               from_name = excluded.from_name, from_version = excluded.from_version",
            &[&owner, &name, &from.0, &from.1, &(from.2 as i32)],
        )?;
        Ok(())
    }

    fn fork_of(&self, owner: &str, name: &str) -> StoreResult<Option<(String, String, u32)>> {
        let row = self.client()?.query_opt(
            "SELECT from_owner, from_name, from_version FROM val_forks WHERE owner = $1 AND name = $2",
            &[&owner, &name],
        )?;
        Ok(row.map(|row| (row.get(0), row.get(1), row.get::<_, i32>(2) as u32)))
    }

    fn meta_value(&self, name: &str) -> StoreResult<Option<String>> {
        let row = self
            .client()?
            .query_opt("SELECT value FROM meta WHERE name = $1", &[&name])?;
        Ok(row.map(|row| row.get(0)))
    }

    fn set_meta_value(&self, name: &str, value: &str) -> StoreResult<()> {
        self.client()?.execute(
            "INSERT INTO meta (name, value) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET value = excluded.value",
            &[&name, &value],
        )?;
        Ok(())
    }

    fn stale_jobs(&self, before: i64, limit: u32) -> StoreResult<Vec<StoredJob>> {
        let rows = self.client()?.query(
            &format!(
                "{JOB_COLUMNS} WHERE status IN ('queued', 'running') AND created_at < $1 ORDER BY seq LIMIT $2"
            ),
            &[&before, &i64::from(limit)],
        )?;
        Ok(rows.iter().map(job).collect())
    }
}

fn reference(row: &Row, first: usize) -> StoredReference {
    StoredReference {
        kind: row.get(first),
        owner: row.get(first + 1),
        name: row.get(first + 2),
        version: row.get::<_, Option<i32>>(first + 3).map(|v| v as u32),
        line: row.get::<_, i32>(first + 4) as u32,
        column: row.get::<_, i32>(first + 5) as u32,
    }
}

const SCHEDULE_COLUMNS: &str = "SELECT owner, name, spec, paused, next_run_at, last_run_at, last_status, last_error, failures FROM schedules";

fn schedule(row: &Row) -> StoredSchedule {
    StoredSchedule {
        owner: row.get(0),
        name: row.get(1),
        spec: serde_json::from_str(row.get(2)).unwrap_or_default(),
        paused: row.get::<_, i32>(3) != 0,
        next_run_at: row.get(4),
        last_run_at: row.get(5),
        last_status: row.get(6),
        last_error: row.get(7),
        failures: row.get::<_, i32>(8) as u32,
    }
}

//! Durable state: users, API-key hashes, vals and their immutable versions
//! (with bytecode), encrypted secrets, evaluation records and emails.
//! [`Store`] is the trait callers use; [`SqliteStore`] is the embedded
//! default (one file, WAL, migrations at start). PostgreSQL can implement the
//! same trait without touching callers.

use rusqlite::{params, Connection, OptionalExtension};
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::sync::Mutex;

/// Who may see a val.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Privacy {
    /// Anyone may read and call it.
    Public,
    /// Only its owner (and API calls running as the owner).
    Private,
}

impl Privacy {
    fn as_str(self) -> &'static str {
        match self {
            Privacy::Public => "public",
            Privacy::Private => "private",
        }
    }

    fn parse(text: &str) -> Privacy {
        if text == "public" {
            Privacy::Public
        } else {
            Privacy::Private
        }
    }
}

/// A user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct User {
    /// Lower-case handle.
    pub handle: String,
    /// Where `console.email` goes.
    pub email: String,
}

/// A val as listed: its latest version and privacy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
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
    pub code: String,
    /// QuickJS bytecode of `code`.
    pub bytecode: Vec<u8>,
    /// Hash of the guest that compiled `bytecode`.
    pub guest_hash: String,
    /// When it was saved (Unix seconds).
    pub created_at: i64,
}

/// An email `console.email` sent, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
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
}

/// A stored evaluation record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StoredEvaluation {
    /// Row id.
    pub id: i64,
    /// The record (JSON of `valbox_runtime::Evaluation`).
    pub record: serde_json::Value,
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
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        StoreError::Database(e.to_string())
    }
}

/// Shorthand for store results.
pub type StoreResult<T> = Result<T, StoreError>;

/// Everything valbox keeps. Implementations do no permission checks.
pub trait Store: Send + Sync {
    /// Creates a user with the hash of their first API key.
    fn create_user(&self, handle: &str, email: &str, key_hash: &str) -> StoreResult<()>;
    /// The user owning the API key with this hash.
    fn user_by_key_hash(&self, key_hash: &str) -> StoreResult<Option<User>>;
    /// A user by handle.
    fn user(&self, handle: &str) -> StoreResult<Option<User>>;
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
    /// Stores an evaluation record visible to `viewer`; returns its id.
    fn add_evaluation(&self, viewer: &str, record: &serde_json::Value) -> StoreResult<i64>;
    /// `viewer`'s records, newest first, with ids below `before`.
    fn evaluations(
        &self,
        viewer: &str,
        limit: u32,
        before: Option<i64>,
    ) -> StoreResult<Vec<StoredEvaluation>>;
    /// One of `viewer`'s records.
    fn evaluation(&self, viewer: &str, id: i64) -> StoreResult<Option<StoredEvaluation>>;
    /// Stores a sent email.
    fn add_email(
        &self,
        to: &str,
        from_author: Option<&str>,
        subject: &str,
        body: &str,
    ) -> StoreResult<()>;
    /// Emails sent to `to`, newest first.
    fn emails(&self, to: &str) -> StoreResult<Vec<StoredEmail>>;
}

const MIGRATIONS: &[&str] = &[r#"
CREATE TABLE users (
    handle TEXT PRIMARY KEY,
    email TEXT NOT NULL,
    created_at INTEGER NOT NULL
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
    bytecode BLOB NOT NULL,
    guest_hash TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (owner, name, version)
);
CREATE TABLE secrets (
    owner TEXT NOT NULL,
    key TEXT NOT NULL,
    sealed BLOB NOT NULL,
    PRIMARY KEY (owner, key)
);
CREATE TABLE evaluations (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    viewer TEXT NOT NULL,
    record TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX evaluations_by_viewer ON evaluations (viewer, id);
CREATE TABLE emails (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    to_user TEXT NOT NULL,
    from_author TEXT,
    subject TEXT NOT NULL,
    body TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX emails_by_user ON emails (to_user, id);
"#];

/// The embedded store: one SQLite file in WAL mode.
pub struct SqliteStore {
    connection: Mutex<Connection>,
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

impl SqliteStore {
    /// Opens (creating when needed) the database at `path` and migrates it.
    pub fn open(path: &Path) -> StoreResult<Self> {
        let connection = Connection::open(path)?;
        connection.pragma_update(None, "journal_mode", "WAL")?;
        // Every acknowledged write must survive a crash of the process or the machine.
        connection.pragma_update(None, "synchronous", "FULL")?;
        connection.pragma_update(None, "foreign_keys", "ON")?;
        connection.busy_timeout(std::time::Duration::from_secs(5))?;
        let store = SqliteStore {
            connection: Mutex::new(connection),
        };
        store.migrate()?;
        Ok(store)
    }

    fn migrate(&self) -> StoreResult<()> {
        let mut connection = self.connection.lock().unwrap();
        let applied: i64 = connection.pragma_query_value(None, "user_version", |row| row.get(0))?;
        for (index, migration) in MIGRATIONS.iter().enumerate().skip(applied as usize) {
            let transaction = connection.transaction()?;
            transaction.execute_batch(migration)?;
            transaction.pragma_update(None, "user_version", index as i64 + 1)?;
            transaction.commit()?;
        }
        Ok(())
    }

    fn with<T>(&self, f: impl FnOnce(&mut Connection) -> rusqlite::Result<T>) -> StoreResult<T> {
        let mut connection = self.connection.lock().unwrap_or_else(|e| e.into_inner());
        Ok(f(&mut connection)?)
    }
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
    fn create_user(&self, handle: &str, email: &str, key_hash: &str) -> StoreResult<()> {
        let result = self.with(|c| {
            let t = c.transaction()?;
            t.prepare_cached("INSERT INTO users (handle, email, created_at) VALUES (?1, ?2, ?3)")?
                .execute(params![handle, email, now()])?;
            t.prepare_cached("INSERT INTO api_keys (key_hash, handle) VALUES (?1, ?2)")?
                .execute(params![key_hash, handle])?;
            t.commit()
        });
        match result {
            Err(StoreError::Database(message)) if message.contains("UNIQUE") => Err(
                StoreError::Conflict(format!("the handle `{handle}` is taken")),
            ),
            other => other,
        }
    }

    fn user_by_key_hash(&self, key_hash: &str) -> StoreResult<Option<User>> {
        self.with(|c| {
            c.prepare_cached("SELECT u.handle, u.email FROM api_keys k JOIN users u ON u.handle = k.handle WHERE k.key_hash = ?1")?.query_row(
                params![key_hash],
                |row| Ok(User { handle: row.get(0)?, email: row.get(1)? }),
            )
            .optional()
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
            let t = c.transaction()?;
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
            Ok(ValMeta { user: owner.into(), name: name.into(), version, privacy })
        })
    }

    fn version(
        &self,
        owner: &str,
        name: &str,
        version: Option<u32>,
    ) -> StoreResult<Option<ValVersion>> {
        self.with(|c| {
            c.prepare_cached("SELECT v.owner, v.name, v.latest, v.privacy, x.version, x.code, x.bytecode, x.guest_hash, x.created_at
                 FROM vals v JOIN val_versions x ON x.owner = v.owner AND x.name = v.name
                 WHERE v.owner = ?1 AND v.name = ?2 AND x.version = COALESCE(?3, v.latest)")?.query_row(
                params![owner, name, version],
                |row| {
                    Ok(ValVersion {
                        meta: meta_row(row)?,
                        version: row.get(4)?,
                        code: row.get(5)?,
                        bytecode: row.get(6)?,
                        guest_hash: row.get(7)?,
                        created_at: row.get(8)?,
                    })
                },
            )
            .optional()
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
            )
            .map(drop)
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

    fn add_evaluation(&self, viewer: &str, record: &serde_json::Value) -> StoreResult<i64> {
        self.with(|c| {
            // Traces are written on every run: no fsync of their own. In WAL
            // mode they survive a crash of the process, and the next
            // fully synchronous commit (any val, secret or user write) makes
            // them durable against power loss too.
            c.pragma_update(None, "synchronous", "NORMAL")?;
            let inserted = c
                .prepare_cached(
                    "INSERT INTO evaluations (viewer, record, created_at) VALUES (?1, ?2, ?3)",
                )?
                .execute(params![viewer, record.to_string(), now()]);
            c.pragma_update(None, "synchronous", "FULL")?;
            inserted?;
            Ok(c.last_insert_rowid())
        })
    }

    fn evaluations(
        &self,
        viewer: &str,
        limit: u32,
        before: Option<i64>,
    ) -> StoreResult<Vec<StoredEvaluation>> {
        self.with(|c| {
            let mut statement = c.prepare_cached(
                "SELECT id, record, created_at FROM evaluations WHERE viewer = ?1 AND id < COALESCE(?2, 9223372036854775807)
                 ORDER BY id DESC LIMIT ?3",
            )?;
            let rows = statement.query_map(params![viewer, before, limit], evaluation_row)?;
            rows.collect()
        })
    }

    fn evaluation(&self, viewer: &str, id: i64) -> StoreResult<Option<StoredEvaluation>> {
        self.with(|c| {
            c.prepare_cached(
                "SELECT id, record, created_at FROM evaluations WHERE viewer = ?1 AND id = ?2",
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
    ) -> StoreResult<()> {
        self.with(|c| {
            c.prepare_cached("INSERT INTO emails (to_user, from_author, subject, body, created_at) VALUES (?1, ?2, ?3, ?4, ?5)")?.execute(
                params![to, from_author, subject, body, now()],
            )
            .map(drop)
        })
    }

    fn emails(&self, to: &str) -> StoreResult<Vec<StoredEmail>> {
        self.with(|c| {
            let mut statement = c.prepare_cached(
                "SELECT id, to_user, from_author, subject, body, created_at FROM emails WHERE to_user = ?1 ORDER BY id DESC",
            )?;
            let rows = statement.query_map(params![to], |row| {
                Ok(StoredEmail {
                    id: row.get(0)?,
                    to: row.get(1)?,
                    from_author: row.get(2)?,
                    subject: row.get(3)?,
                    body: row.get(4)?,
                    created_at: row.get(5)?,
                })
            })?;
            rows.collect()
        })
    }
}

fn evaluation_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<StoredEvaluation> {
    let record: String = row.get(1)?;
    Ok(StoredEvaluation {
        id: row.get(0)?,
        record: serde_json::from_str(&record).unwrap_or(serde_json::Value::Null),
        created_at: row.get(2)?,
    })
}

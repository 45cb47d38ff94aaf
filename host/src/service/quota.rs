//! The storage quota: bytes a user may keep in code, bytecode, values and
//! secrets. Checked before every write that adds to it — a val saved over
//! the API, a value written by running code (theirs, or a library writing
//! their vals), a secret — so a refused write stores nothing. And the
//! versions kept per val: after each save the oldest versions past
//! `--max-versions-per-val` are deleted, except the latest and every
//! version a recorded reference pins (`@bob.f@3`).

use super::{Service, ServiceError, ServiceResult};
use crate::store::{Store, User};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;

/// The default quota: 100 MiB per user.
pub const DEFAULT_QUOTA: u64 = 100 << 20;

/// The default number of versions kept per val.
pub const DEFAULT_MAX_VERSIONS: u32 = 1000;

/// The operator's quota, shared by the service and the sandbox's world,
/// with the count of writes it refused.
#[derive(Debug, Clone)]
pub(super) struct Quota(Arc<Limits>);

#[derive(Debug)]
struct Limits {
    bytes: AtomicU64,
    refusals: AtomicU64,
    max_versions: AtomicU32,
    pruned_versions: AtomicU64,
}

impl Default for Quota {
    fn default() -> Self {
        Quota(Arc::new(Limits {
            bytes: AtomicU64::new(DEFAULT_QUOTA),
            refusals: AtomicU64::new(0),
            max_versions: AtomicU32::new(DEFAULT_MAX_VERSIONS),
            pruned_versions: AtomicU64::new(0),
        }))
    }
}

impl Quota {
    pub(super) fn bytes(&self) -> u64 {
        self.0.bytes.load(Ordering::Relaxed)
    }

    /// Writes refused so far.
    pub(super) fn refusals(&self) -> u64 {
        self.0.refusals.load(Ordering::Relaxed)
    }

    /// Versions deleted so far for being past the limit.
    pub(super) fn pruned_versions(&self) -> u64 {
        self.0.pruned_versions.load(Ordering::Relaxed)
    }

    /// After a save of `owner.name`: deletes its versions past the limit
    /// (never the latest, never a pinned one).
    pub(super) fn trim_versions(
        &self,
        store: &dyn Store,
        owner: &str,
        name: &str,
    ) -> ServiceResult<()> {
        let keep = self.0.max_versions.load(Ordering::Relaxed);
        let pruned = store.prune_versions(owner, name, keep)?;
        self.0.pruned_versions.fetch_add(pruned, Ordering::Relaxed);
        Ok(())
    }

    /// Ok when `owner` may add `adding` bytes; the error says how much they
    /// use of what. (A replaced secret counts in full: a bound, not a tally.)
    pub(super) fn check(&self, store: &dyn Store, owner: &str, adding: u64) -> ServiceResult<()> {
        let quota = self.bytes();
        let used = store.storage_used(owner)?;
        if used.saturating_add(adding) > quota {
            self.0.refusals.fetch_add(1, Ordering::Relaxed);
            return Err(ServiceError::QuotaExceeded(format!(
                "@{owner} uses {used} of a {quota}-byte storage quota; this write needs {adding} more bytes \
                 (delete vals, versions or secrets to make room)"
            )));
        }
        Ok(())
    }
}

/// What `GET /v1/me` shows of a user's storage.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct StorageUse {
    /// Bytes stored: code and bytecode of every version, sealed secrets.
    pub used_bytes: u64,
    /// The quota.
    pub quota_bytes: u64,
}

impl Service {
    /// Sets the per-user storage quota, in bytes.
    pub fn with_storage_quota(self, bytes: u64) -> Self {
        self.quota.0.bytes.store(bytes, Ordering::Relaxed);
        self
    }

    /// Sets how many versions each val keeps (at least 1).
    pub fn with_max_versions_per_val(self, versions: u32) -> Self {
        self.quota
            .0
            .max_versions
            .store(versions.max(1), Ordering::Relaxed);
        self
    }

    /// How much of their quota `user` uses.
    pub fn storage(&self, user: &User) -> ServiceResult<StorageUse> {
        Ok(StorageUse {
            used_bytes: self.store.storage_used(&user.handle)?,
            quota_bytes: self.quota.bytes(),
        })
    }
}

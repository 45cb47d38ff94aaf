//! The storage quota: bytes a user may keep in code, bytecode, values and
//! secrets. Checked before every write that adds to it — a val saved over
//! the API, a value written by running code (theirs, or a library writing
//! their vals), a secret — so a refused write stores nothing.

use super::{Service, ServiceError, ServiceResult};
use crate::store::{Store, User};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// The default quota: 100 MiB per user.
pub const DEFAULT_QUOTA: u64 = 100 << 20;

/// The operator's quota, shared by the service and the sandbox's world,
/// with the count of writes it refused.
#[derive(Debug, Clone)]
pub(super) struct Quota(Arc<(AtomicU64, AtomicU64)>);

impl Default for Quota {
    fn default() -> Self {
        Quota(Arc::new((AtomicU64::new(DEFAULT_QUOTA), AtomicU64::new(0))))
    }
}

impl Quota {
    pub(super) fn bytes(&self) -> u64 {
        self.0 .0.load(Ordering::Relaxed)
    }

    /// Writes refused so far.
    pub(super) fn refusals(&self) -> u64 {
        self.0 .1.load(Ordering::Relaxed)
    }

    /// Ok when `owner` may add `adding` bytes; the error says how much they
    /// use of what. (A replaced secret counts in full: a bound, not a tally.)
    pub(super) fn check(&self, store: &dyn Store, owner: &str, adding: u64) -> ServiceResult<()> {
        let quota = self.bytes();
        let used = store.storage_used(owner)?;
        if used.saturating_add(adding) > quota {
            self.0 .1.fetch_add(1, Ordering::Relaxed);
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
        self.quota.0 .0.store(bytes, Ordering::Relaxed);
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

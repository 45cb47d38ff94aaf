//! The stores' memory of recently read rows: the latest version of recently
//! run vals and the owners of recently used keys.
//!
//! A row is kept only if nothing was forgotten between the moment its read
//! began and the moment it is kept: every forget advances an epoch, and a
//! reader passes the epoch it saw before reading ([`HotCache::epoch`]). So
//! a reader that raced a write (the write's invalidation arriving while the
//! old row was on its way) never caches the old row. The embedded store
//! forgets on its own writes; the PostgreSQL store also forgets what other
//! nodes' writes announce, and serves from the cache only while it is
//! listening for those announcements ([`HotCache::set_live`]).

use super::{lock, ApiKey, User, ValVersion};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;

/// How many entries each of [`HotCache`]'s maps holds before it is emptied.
const HOT_CACHE_ENTRIES: usize = 4096;

/// Recently read rows, kept in memory while the cache is live.
pub(super) struct HotCache {
    live: AtomicBool,
    epoch: AtomicU64,
    hits: AtomicU64,
    misses: AtomicU64,
    latest_versions: Mutex<HashMap<(String, String), ValVersion>>,
    key_owners: Mutex<HashMap<String, (User, ApiKey)>>,
}

impl HotCache {
    /// A cache that keeps rows (`live`), or one that keeps nothing until
    /// [`HotCache::set_live`].
    pub(super) fn new(live: bool) -> Self {
        HotCache {
            live: AtomicBool::new(live),
            epoch: AtomicU64::new(0),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            latest_versions: Mutex::default(),
            key_owners: Mutex::default(),
        }
    }

    /// Starts or stops serving from the cache; either way it is emptied.
    pub(super) fn set_live(&self, live: bool) {
        self.forget_all();
        self.live.store(live, Ordering::SeqCst);
    }

    /// Whether the cache serves now.
    pub(super) fn is_live(&self) -> bool {
        self.live.load(Ordering::SeqCst)
    }

    /// Lookups answered from the cache and not, so far.
    pub(super) fn counts(&self) -> (u64, u64) {
        (
            self.hits.load(Ordering::Relaxed),
            self.misses.load(Ordering::Relaxed),
        )
    }

    fn counted<T>(&self, found: Option<T>) -> Option<T> {
        let counter = if found.is_some() {
            &self.hits
        } else {
            &self.misses
        };
        counter.fetch_add(1, Ordering::Relaxed);
        found
    }

    /// The epoch to pass to `keep_*` for a read that starts now.
    pub(super) fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::SeqCst)
    }

    pub(super) fn latest(&self, owner: &str, name: &str) -> Option<ValVersion> {
        if !self.is_live() {
            return None;
        }
        let found = lock(&self.latest_versions)
            .get(&(owner.to_string(), name.to_string()))
            .cloned();
        self.counted(found)
    }

    /// Keeps `version` as its val's latest, unless something was forgotten since `epoch`.
    pub(super) fn keep_latest(&self, version: &ValVersion, epoch: u64) {
        let mut map = lock(&self.latest_versions);
        if !self.is_live() || self.epoch() != epoch {
            return;
        }
        if map.len() >= HOT_CACHE_ENTRIES {
            map.clear();
        }
        map.insert(
            (version.meta.user.clone(), version.meta.name.clone()),
            version.clone(),
        );
    }

    pub(super) fn forget_val(&self, owner: &str, name: &str) {
        let mut map = lock(&self.latest_versions);
        map.remove(&(owner.to_string(), name.to_string()));
        self.epoch.fetch_add(1, Ordering::SeqCst);
    }

    pub(super) fn key(&self, key_hash: &str) -> Option<(User, ApiKey)> {
        if !self.is_live() {
            return None;
        }
        let found = lock(&self.key_owners).get(key_hash).cloned();
        self.counted(found)
    }

    /// Keeps a key's owner, unless something was forgotten since `epoch`.
    pub(super) fn keep_key(&self, key_hash: &str, found: &(User, ApiKey), epoch: u64) {
        let mut map = lock(&self.key_owners);
        if !self.is_live() || self.epoch() != epoch {
            return;
        }
        if map.len() >= HOT_CACHE_ENTRIES {
            map.clear();
        }
        map.insert(key_hash.to_string(), found.clone());
    }

    /// Drops every entry: after a key is revoked or a user deleted (rare
    /// writes, which need not say which cached rows they touch).
    pub(super) fn forget_all(&self) {
        let mut keys = lock(&self.key_owners);
        let mut versions = lock(&self.latest_versions);
        keys.clear();
        versions.clear();
        self.epoch.fetch_add(1, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Privacy, ValMeta};

    fn version(n: u32) -> ValVersion {
        ValVersion {
            meta: ValMeta {
                user: "al".into(),
                name: "f".into(),
                version: n,
                privacy: Privacy::Public,
            },
            version: n,
            code: "".into(),
            bytecode: Vec::new().into(),
            guest_hash: String::new(),
            created_at: 0,
        }
    }

    #[test]
    fn a_read_that_raced_a_forget_is_not_kept() {
        let cache = HotCache::new(true);
        let before_read = cache.epoch();
        // A write lands (here or on another node) while the old row is read.
        cache.forget_val("al", "f");
        cache.keep_latest(&version(1), before_read);
        assert!(cache.latest("al", "f").is_none(), "the old row is not kept");
        let now = cache.epoch();
        cache.keep_latest(&version(2), now);
        assert_eq!(cache.latest("al", "f").map(|v| v.version), Some(2));
    }

    #[test]
    fn a_cache_that_is_not_live_serves_nothing() {
        let cache = HotCache::new(true);
        cache.keep_latest(&version(1), cache.epoch());
        cache.set_live(false);
        assert!(cache.latest("al", "f").is_none());
        cache.keep_latest(&version(1), cache.epoch());
        cache.set_live(true);
        assert!(
            cache.latest("al", "f").is_none(),
            "emptied when it went live again"
        );
    }
}

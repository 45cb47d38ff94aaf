//! The embedded store's memory of recently read rows.

use super::{lock, ApiKey, User, ValVersion};
use std::collections::HashMap;
use std::sync::Mutex;

/// How many entries each of [`HotCache`]'s maps holds before it is emptied.
const HOT_CACHE_ENTRIES: usize = 4096;

/// Recently read rows, kept in memory. Entries are added and removed only
/// while the connection lock is held, right after the read or write that
/// makes them right or wrong, so a reader never caches a row that a
/// concurrent writer has already replaced.
/// Off when other processes write the same file (then nothing is kept).
#[derive(Default)]
pub(super) struct HotCache {
    disabled: bool,
    latest_versions: Mutex<HashMap<(String, String), ValVersion>>,
    key_owners: Mutex<HashMap<String, (User, ApiKey)>>,
}

impl HotCache {
    /// A cache that keeps rows, or (`keep: false`) one that keeps nothing.
    pub(super) fn new(keep: bool) -> Self {
        HotCache {
            disabled: !keep,
            ..HotCache::default()
        }
    }

    pub(super) fn latest(&self, owner: &str, name: &str) -> Option<ValVersion> {
        if self.disabled {
            return None;
        }
        lock(&self.latest_versions)
            .get(&(owner.to_string(), name.to_string()))
            .cloned()
    }

    pub(super) fn keep_latest(&self, version: &ValVersion) {
        if self.disabled {
            return;
        }
        let mut map = lock(&self.latest_versions);
        if map.len() >= HOT_CACHE_ENTRIES {
            map.clear();
        }
        map.insert(
            (version.meta.user.clone(), version.meta.name.clone()),
            version.clone(),
        );
    }

    pub(super) fn forget_val(&self, owner: &str, name: &str) {
        lock(&self.latest_versions).remove(&(owner.to_string(), name.to_string()));
    }

    pub(super) fn key(&self, key_hash: &str) -> Option<(User, ApiKey)> {
        if self.disabled {
            return None;
        }
        lock(&self.key_owners).get(key_hash).cloned()
    }

    pub(super) fn keep_key(&self, key_hash: &str, found: &(User, ApiKey)) {
        if self.disabled {
            return;
        }
        let mut map = lock(&self.key_owners);
        if map.len() >= HOT_CACHE_ENTRIES {
            map.clear();
        }
        map.insert(key_hash.to_string(), found.clone());
    }

    /// Drops every entry: after a key is revoked or a user deleted (rare
    /// writes, which need not say which cached rows they touch).
    pub(super) fn forget_all(&self) {
        lock(&self.key_owners).clear();
        lock(&self.latest_versions).clear();
    }
}

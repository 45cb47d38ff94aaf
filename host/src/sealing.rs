//! Secrets at rest: ChaCha20-Poly1305 with a master key from
//! `VALBOX_MASTER_KEY` (64 hex digits) or, when unset, generated on first
//! start into `<data-dir>/master.key` (mode 0600). The owner and the secret's
//! name are authenticated with it, so a sealed value cannot be moved to
//! another user or name.
//!
//! The store records the fingerprint of the key its secrets are sealed
//! under ([`SecretSealer::fingerprint`]); a process started with another
//! key refuses to run, and [`rotate`] re-seals every secret under a new key
//! in one transaction.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use std::path::Path;

const NONCE_LEN: usize = 12;

/// Seals and opens secrets with the master key.
pub struct SecretSealer {
    cipher: ChaCha20Poly1305,
    fingerprint: String,
}

/// Why the master key could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum SealingError {
    /// The key is not 32 bytes of hex.
    #[error("the master key must be 64 hex digits (32 bytes): {0}")]
    BadKey(String),
    /// The key file could not be read or written.
    #[error("master key file {path}: {source}")]
    File {
        /// The key file.
        path: String,
        /// What failed.
        source: std::io::Error,
    },
}

impl SecretSealer {
    /// Uses `configured` (hex) when given, else the key file in `data_dir`,
    /// creating it on first start.
    pub fn load(configured: Option<&str>, data_dir: &Path) -> Result<Self, SealingError> {
        match configured {
            Some(key) => Self::from_hex(key),
            None => Self::from_hex(&load_or_create_key_file(&data_dir.join("master.key"))?),
        }
    }

    /// A sealer for a key given as 64 hex digits.
    pub fn from_hex(hex_key: &str) -> Result<Self, SealingError> {
        let bytes = hex::decode(hex_key.trim()).map_err(|e| SealingError::BadKey(e.to_string()))?;
        if bytes.len() != 32 {
            return Err(SealingError::BadKey(format!("got {} bytes", bytes.len())));
        }
        use sha2::Digest;
        let digest = sha2::Sha256::digest([b"valbox master key\0".as_slice(), &bytes].concat());
        Ok(SecretSealer {
            cipher: ChaCha20Poly1305::new(Key::from_slice(&bytes)),
            fingerprint: hex::encode(&digest[..8]),
        })
    }

    /// A short public name of the key (a hash of it, not the key): what the
    /// store records to tell which key its secrets are sealed under.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// Encrypts `value` for `owner`'s secret `name`: nonce followed by ciphertext.
    pub fn seal(&self, owner: &str, name: &str, value: &str) -> Vec<u8> {
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::fill(&mut nonce).expect("the OS random source works");
        let aad = format!("{owner}\0{name}");
        let ciphertext = self
            .cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: value.as_bytes(),
                    aad: aad.as_bytes(),
                },
            )
            .expect("encryption with a valid key cannot fail");
        [nonce.as_slice(), &ciphertext].concat()
    }

    /// Decrypts a sealed secret; `None` when it was not sealed for this
    /// owner and name with this key.
    pub fn open(&self, owner: &str, name: &str, sealed: &[u8]) -> Option<String> {
        if sealed.len() < NONCE_LEN {
            return None;
        }
        let (nonce, ciphertext) = sealed.split_at(NONCE_LEN);
        let aad = format!("{owner}\0{name}");
        let plain = self
            .cipher
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad: aad.as_bytes(),
                },
            )
            .ok()?;
        String::from_utf8(plain).ok()
    }
}

/// Re-seals every secret in `store` from `old` to `new` in one transaction
/// and records `new`'s fingerprint. A secret that already opens with `new`
/// (a rerun after an interrupted rotation) is kept as it is; one that opens
/// with neither fails the rotation, which then changes nothing. Returns how
/// many secrets the store holds.
pub fn rotate(
    store: &dyn crate::store::Store,
    old: &SecretSealer,
    new: &SecretSealer,
) -> Result<usize, crate::store::StoreError> {
    let mut reseal = |owner: &str, name: &str, sealed: &[u8]| {
        if new.open(owner, name, sealed).is_some() {
            return Ok(sealed.to_vec());
        }
        match old.open(owner, name, sealed) {
            Some(value) => Ok(new.seal(owner, name, &value)),
            None => Err(format!(
                "@{owner}'s secret `{name}` opens with neither the current nor the new master key"
            )),
        }
    };
    store.reseal_secrets(&mut reseal, new.fingerprint())
}

/// Writes `hex_key` as the key file at `path` (mode 0600), replacing it
/// atomically (a temporary file, synced, renamed over it).
pub fn replace_key_file(path: &Path, hex_key: &str) -> Result<(), SealingError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let file_error = |source| SealingError::File {
        path: path.display().to_string(),
        source,
    };
    let temporary = path.with_extension("key.new");
    let _ = std::fs::remove_file(&temporary);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&temporary)
        .map_err(file_error)?;
    file.write_all(hex_key.trim().as_bytes())
        .and_then(|_| file.sync_all())
        .map_err(file_error)?;
    std::fs::rename(&temporary, path).map_err(file_error)?;
    if let Some(dir) = path.parent() {
        if let Ok(dir) = std::fs::File::open(dir) {
            let _ = dir.sync_all();
        }
    }
    Ok(())
}

fn load_or_create_key_file(path: &Path) -> Result<String, SealingError> {
    let file_error = |source| SealingError::File {
        path: path.display().to_string(),
        source,
    };
    match std::fs::read_to_string(path) {
        Ok(key) => return Ok(key.trim().to_string()),
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(file_error(e)),
        Err(_) => {}
    }
    let mut key = [0u8; 32];
    getrandom::fill(&mut key).expect("the OS random source works");
    let hex_key = hex::encode(key);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(file_error)?;
    }
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(file_error)?;
    file.write_all(hex_key.as_bytes())
        .and_then(|_| file.sync_all())
        .map_err(file_error)?;
    Ok(hex_key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_secret_opens_only_for_its_owner_and_name() {
        let sealer = SecretSealer::load(Some(&"ab".repeat(32)), Path::new("/nonexistent")).unwrap();
        let sealed = sealer.seal("alice", "token", "s3cret");
        assert!(
            !sealed.windows(6).any(|w| w == b"s3cret"),
            "stored encrypted"
        );
        assert_eq!(
            sealer.open("alice", "token", &sealed).as_deref(),
            Some("s3cret")
        );
        assert_eq!(sealer.open("bob", "token", &sealed), None);
        assert_eq!(sealer.open("alice", "other", &sealed), None);
    }

    #[test]
    fn the_key_file_is_created_once_with_mode_0600() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("valbox-sealing-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let first = SecretSealer::load(None, &dir).unwrap();
        let mode = std::fs::metadata(dir.join("master.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let sealed = first.seal("alice", "k", "v");
        let second = SecretSealer::load(None, &dir).unwrap();
        assert_eq!(second.open("alice", "k", &sealed).as_deref(), Some("v"));
    }

    #[test]
    fn fingerprints_tell_keys_apart_without_showing_them() {
        let a = SecretSealer::from_hex(&"ab".repeat(32)).unwrap();
        let b = SecretSealer::from_hex(&"cd".repeat(32)).unwrap();
        assert_ne!(a.fingerprint(), b.fingerprint());
        assert_eq!(
            a.fingerprint(),
            SecretSealer::from_hex(&"ab".repeat(32))
                .unwrap()
                .fingerprint()
        );
        assert!(!a.fingerprint().contains("abab"));
    }

    #[test]
    fn a_malformed_key_is_refused() {
        assert!(SecretSealer::load(Some("xyz"), Path::new("/")).is_err());
        assert!(SecretSealer::load(Some("abcd"), Path::new("/")).is_err());
    }
}

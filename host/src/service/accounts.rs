//! Users and their API keys: authentication, scopes, keys made and revoked
//! by their owner, and the operator's admin actions (list, delete, revoke).
//!
//! Scopes limit what a key may ask of the API, not what code run with it
//! may do: a `run` key runs code in its user's own frame, which reads that
//! user's secrets and vals exactly as SPEC §2's table says.

use super::{key_hash, normalize_handle, Service, ServiceError, ServiceResult};
use crate::store::{now, ApiKey, User};

/// Every scope a key can hold. `keys` lets a key manage its user's keys
/// (never giving a new key a scope it lacks itself).
pub const SCOPES: &[&str] = &[
    "vals:read",
    "vals:write",
    "secrets:read",
    "secrets:write",
    "run",
    "evaluations:read",
    "emails:read",
    "keys",
];

/// How often a key's `last_used_at` is written, in seconds.
const TOUCH_EVERY: i64 = 60;

/// The longest key name.
const MAX_KEY_NAME: usize = 64;

/// Who a request is: the key's user and the key.
#[derive(Debug, Clone)]
pub struct Principal {
    /// The key's user.
    pub user: User,
    /// The key (never its secret part).
    pub key: ApiKey,
}

impl Principal {
    /// Ok when the key holds `scope`; 403 naming it otherwise.
    pub fn require(&self, scope: &str) -> ServiceResult<()> {
        if self.key.scopes.iter().any(|s| s == scope) {
            Ok(())
        } else {
            Err(ServiceError::Forbidden(format!(
                "this key (`{}`) lacks the `{scope}` scope",
                self.key.id
            )))
        }
    }
}

/// A new secret key and its public id.
fn new_key() -> ServiceResult<(String, String)> {
    let mut raw = [0u8; 32];
    getrandom::fill(&mut raw).map_err(|e| ServiceError::Internal(e.to_string()))?;
    let key = format!("vbk_{}", hex::encode(raw));
    let mut id = [0u8; 8];
    getrandom::fill(&mut id).map_err(|e| ServiceError::Internal(e.to_string()))?;
    Ok((key, format!("key_{}", hex::encode(id))))
}

pub(super) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl Service {
    /// The principal a bearer key belongs to; `None` without a key, 401 for
    /// a key nobody has (revoked, never made) or one past its expiry.
    pub fn authenticate(&self, key: Option<&str>) -> ServiceResult<Option<Principal>> {
        let Some(key) = key else { return Ok(None) };
        let Some((user, key)) = self.store.key_by_hash(&key_hash(key))? else {
            return Err(ServiceError::Unauthorized(
                "the API key is not valid (unknown or revoked)".into(),
            ));
        };
        let at = now();
        if key.expires_at.is_some_and(|expiry| expiry <= at) {
            return Err(ServiceError::Unauthorized(format!(
                "the API key `{}` expired",
                key.id
            )));
        }
        self.touch(&key.id, at);
        Ok(Some(Principal { user, key }))
    }

    /// Writes a key's `last_used_at`, at most once a minute per key.
    fn touch(&self, id: &str, at: i64) {
        {
            let mut touches = self.key_touches.lock().unwrap_or_else(|e| e.into_inner());
            if touches.get(id).is_some_and(|last| at - last < TOUCH_EVERY) {
                return;
            }
            if touches.len() > 100_000 {
                touches.clear();
            }
            touches.insert(id.to_string(), at);
        }
        if let Err(error) = self.store.touch_key(id, at) {
            tracing::warn!(key = id, %error, "a key's last use could not be recorded");
        }
    }

    /// Whether `admin_key` is the operator's admin key (401 when not).
    pub fn check_admin(&self, admin_key: Option<&str>) -> ServiceResult<()> {
        match (&self.admin_key, admin_key) {
            (None, _) => Err(ServiceError::Unauthorized(
                "admin routes are off: set VALBOX_ADMIN_KEY (or use `valbox user ...`)".into(),
            )),
            (Some(expected), Some(given))
                if constant_time_eq(expected.as_bytes(), given.as_bytes()) =>
            {
                Ok(())
            }
            _ => Err(ServiceError::Unauthorized(
                "this route needs the admin key".into(),
            )),
        }
    }

    /// Creates a user without the admin check (the CLI's `valbox user add`);
    /// their first key holds every scope.
    pub fn add_user(&self, handle: &str, email: &str) -> ServiceResult<(String, String)> {
        let handle = normalize_handle(handle)?;
        if handle == "me" || handle == "secrets" {
            // Taken by the system, as if by another user.
            return Err(ServiceError::Conflict(format!("`{handle}` is reserved")));
        }
        // Whitespace is ASCII's (as the API's schema pattern has it).
        let ascii_space = |c: char| " \t\n\r\x0c\x0b".contains(c);
        let too_long = email.chars().count() > 254;
        let email = email.trim_matches(ascii_space);
        if too_long || !email.contains('@') || email.contains(ascii_space) {
            return Err(ServiceError::BadRequest(format!(
                "`{email}` is not an email address"
            )));
        }
        let (key, id) = new_key()?;
        let record = ApiKey {
            id,
            name: "first".into(),
            scopes: SCOPES.iter().map(|s| s.to_string()).collect(),
            created_at: now(),
            expires_at: None,
            last_used_at: None,
        };
        self.store
            .create_user(&handle, email, &key_hash(&key), &record)?;
        tracing::info!(user = %handle, key = %record.id, "user created");
        Ok((handle, key))
    }

    /// `POST /v1/me/keys`: a new key for the principal's user, with `scopes`
    /// (each one the principal's key holds) and an optional expiry (Unix
    /// seconds, in the future). Returns the key (shown once) and its record.
    pub fn create_key(
        &self,
        principal: &Principal,
        name: &str,
        scopes: &[String],
        expires_at: Option<i64>,
    ) -> ServiceResult<(String, ApiKey)> {
        principal.require("keys")?;
        let name = name.trim();
        if name.is_empty() || name.chars().count() > MAX_KEY_NAME {
            return Err(ServiceError::BadRequest(format!(
                "a key's name is 1 to {MAX_KEY_NAME} characters"
            )));
        }
        if scopes.is_empty() {
            return Err(ServiceError::BadRequest(
                "a key needs at least one scope".into(),
            ));
        }
        let mut granted = Vec::new();
        for scope in scopes {
            if !SCOPES.contains(&scope.as_str()) {
                return Err(ServiceError::BadRequest(format!(
                    "`{scope}` is not a scope; scopes: {}",
                    SCOPES.join(", ")
                )));
            }
            principal.require(scope).map_err(|_| {
                ServiceError::Forbidden(format!(
                    "a new key cannot hold `{scope}`, which this key lacks"
                ))
            })?;
            if !granted.contains(scope) {
                granted.push(scope.clone());
            }
        }
        let at = now();
        if expires_at.is_some_and(|expiry| expiry <= at) {
            return Err(ServiceError::BadRequest(
                "`expires_at` must be in the future (Unix seconds)".into(),
            ));
        }
        let (key, id) = new_key()?;
        let record = ApiKey {
            id,
            name: name.to_string(),
            scopes: granted,
            created_at: at,
            expires_at,
            last_used_at: None,
        };
        self.store
            .add_key(&principal.user.handle, &key_hash(&key), &record)?;
        tracing::info!(user = %principal.user.handle, by = %principal.key.id, key = %record.id,
            scopes = %record.scopes.join(" "), "key created");
        Ok((key, record))
    }

    /// A user's keys (never the keys themselves).
    pub fn keys(&self, handle: &str) -> ServiceResult<Vec<ApiKey>> {
        let handle = normalize_handle(handle)?;
        self.existing_user(&handle)?;
        Ok(self.store.keys(&handle)?)
    }

    /// Revokes a user's key: the next request with it is a 401.
    pub fn revoke_key(&self, handle: &str, id: &str) -> ServiceResult<()> {
        let handle = normalize_handle(handle)?;
        if !self.store.revoke_key(&handle, id)? {
            return Err(ServiceError::NotFound(format!("@{handle} has no key {id}")));
        }
        tracing::info!(user = %handle, key = %id, "key revoked");
        Ok(())
    }

    /// Every user (the operator's list).
    pub fn users(&self) -> ServiceResult<Vec<User>> {
        Ok(self.store.users()?)
    }

    /// Deletes a user and everything theirs; the handle is retired, so a
    /// reference to their vals (pinned or not) resolves as missing and
    /// never as someone else's code.
    pub fn delete_user(&self, handle: &str) -> ServiceResult<()> {
        let handle = normalize_handle(handle)?;
        if !self.store.delete_user(&handle)? {
            return Err(ServiceError::NotFound(format!("no user @{handle}")));
        }
        tracing::info!(user = %handle, "user deleted");
        Ok(())
    }

    fn existing_user(&self, handle: &str) -> ServiceResult<User> {
        self.store
            .user(handle)?
            .ok_or_else(|| ServiceError::NotFound(format!("no user @{handle}")))
    }
}

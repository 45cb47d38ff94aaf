//! [`World`]: the state capabilities act on (vals, secrets, email). The
//! sandbox only reaches storage through it; the service implements it on its
//! store, tests on [`MemoryWorld`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// One version of a val, as a capability needs it.
#[derive(Debug, Clone)]
pub struct StoredVal {
    /// The owner's handle.
    pub owner: String,
    /// The val's name.
    pub name: String,
    /// Which version this is (1, 2, 3 ...).
    pub version: u32,
    /// Whether anyone may read it.
    pub public: bool,
    /// QuickJS bytecode from [`crate::Sandbox::compile`].
    pub bytecode: Arc<[u8]>,
}

/// An email `console.email` sent.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Email {
    /// The recipient user, as the policy decided.
    pub to: String,
    /// Whose code sent it.
    pub from_author: Option<String>,
    /// Subject line.
    pub subject: String,
    /// Body text.
    pub body: String,
}

/// Storage as the sandbox sees it. Implementations do no permission checks:
/// the policy has decided before any of these is called.
pub trait World: Send + Sync {
    /// The val `owner.name` at `version`, or its latest version.
    fn val(&self, owner: &str, name: &str, version: Option<u32>) -> Option<StoredVal>;
    /// Saves a new version of a value val (private when it is new) and
    /// returns its version number.
    fn save_value(
        &self,
        owner: &str,
        name: &str,
        source: String,
        bytecode: Vec<u8>,
    ) -> Result<u32, String>;
    /// A secret's value.
    fn secret(&self, owner: &str, key: &str) -> Option<String>;
    /// Delivers an email.
    fn send_email(&self, email: Email) -> Result<(), String>;
}

/// A [`World`] in memory, for tests.
#[derive(Default)]
pub struct MemoryWorld {
    vals: Mutex<HashMap<(String, String), Vec<StoredVal>>>,
    secrets: Mutex<HashMap<(String, String), String>>,
    emails: Mutex<Vec<Email>>,
}

impl MemoryWorld {
    /// An empty world.
    pub fn new() -> Self {
        Self::default()
    }

    /// Saves a new version of `owner.name` and returns its number.
    pub fn put_val(&self, owner: &str, name: &str, public: bool, bytecode: Vec<u8>) -> u32 {
        let mut vals = self.vals.lock().unwrap();
        let versions = vals.entry((owner.into(), name.into())).or_default();
        let version = versions.len() as u32 + 1;
        versions.push(StoredVal {
            owner: owner.into(),
            name: name.into(),
            version,
            public,
            bytecode: bytecode.into(),
        });
        version
    }

    /// Sets a secret.
    pub fn put_secret(&self, owner: &str, key: &str, value: &str) {
        self.secrets
            .lock()
            .unwrap()
            .insert((owner.into(), key.into()), value.into());
    }

    /// Every email sent so far.
    pub fn emails(&self) -> Vec<Email> {
        self.emails.lock().unwrap().clone()
    }
}

impl World for MemoryWorld {
    fn val(&self, owner: &str, name: &str, version: Option<u32>) -> Option<StoredVal> {
        let vals = self.vals.lock().unwrap();
        let versions = vals.get(&(owner.into(), name.into()))?;
        let found = match version {
            Some(v) => versions.get((v as usize).checked_sub(1)?),
            None => versions.last(),
        };
        found.cloned()
    }

    fn save_value(
        &self,
        owner: &str,
        name: &str,
        _source: String,
        bytecode: Vec<u8>,
    ) -> Result<u32, String> {
        let public = self.val(owner, name, None).is_some_and(|v| v.public);
        Ok(self.put_val(owner, name, public, bytecode))
    }

    fn secret(&self, owner: &str, key: &str) -> Option<String> {
        self.secrets
            .lock()
            .unwrap()
            .get(&(owner.into(), key.into()))
            .cloned()
    }

    fn send_email(&self, email: Email) -> Result<(), String> {
        self.emails.lock().unwrap().push(email);
        Ok(())
    }
}

/// No vals, no secrets, email refused: for code run on its own.
pub(crate) struct NoWorld;

impl World for NoWorld {
    fn val(&self, _: &str, _: &str, _: Option<u32>) -> Option<StoredVal> {
        None
    }

    fn save_value(&self, _: &str, _: &str, _: String, _: Vec<u8>) -> Result<u32, String> {
        Err("there is no val storage here".into())
    }

    fn secret(&self, _: &str, _: &str) -> Option<String> {
        None
    }

    fn send_email(&self, _: Email) -> Result<(), String> {
        Err("there is no email here".into())
    }
}

//! Budgets of one call tree, shared by every call in it like the deadline:
//! val writes and the bytes they write, emails, `fetch` requests. A host
//! import spends from the budget *before* it acts, so nothing beyond a
//! budget is ever stored or sent; the first overdraft ends the whole tree
//! with a limit error naming the budget.

use crate::error::LimitExceeded;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

/// What one call tree may spend (operator settings).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallBudgets {
    /// Val writes (`@me.x = v`, a library's `@caller.x = v`), default 100.
    pub val_writes: u64,
    /// Bytes those writes store, default 16 MiB.
    pub written_bytes: u64,
    /// `console.email` messages, default 10.
    pub emails: u64,
    /// `fetch` requests, default 50.
    pub fetches: u64,
}

impl Default for CallBudgets {
    fn default() -> Self {
        CallBudgets {
            val_writes: 100,
            written_bytes: 16 << 20,
            emails: 10,
            fetches: 50,
        }
    }
}

/// The budgets, as metric labels, in the order of [`Kind`].
pub(crate) const KIND_LABELS: [&str; 4] = ["val_writes", "written_bytes", "emails", "fetches"];

/// Which budget an overdraft spent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    ValWrites = 0,
    WrittenBytes = 1,
    Emails = 2,
    Fetches = 3,
}

/// A refused spend: the message ending the tree, and the budget it spent
/// when this was the tree's first overdraft (to be counted once).
#[derive(Debug)]
pub(crate) struct Overdraft {
    pub(crate) error: LimitExceeded,
    pub(crate) first: Option<Kind>,
}

/// What a call tree has spent so far.
#[derive(Debug, Default)]
pub(crate) struct TreeBudget {
    val_writes: AtomicU64,
    written_bytes: AtomicU64,
    emails: AtomicU64,
    fetches: AtomicU64,
    /// The first overdraft's message; once set, every call in the tree ends.
    exhausted: OnceLock<String>,
}

impl TreeBudget {
    /// Spends one val write of `bytes`.
    pub(crate) fn write(&self, limits: &CallBudgets, bytes: u64) -> Result<(), Overdraft> {
        self.spend(&self.val_writes, 1, limits.val_writes, Kind::ValWrites)?;
        self.spend(
            &self.written_bytes,
            bytes,
            limits.written_bytes,
            Kind::WrittenBytes,
        )
    }

    /// Spends one email.
    pub(crate) fn email(&self, limits: &CallBudgets) -> Result<(), Overdraft> {
        self.spend(&self.emails, 1, limits.emails, Kind::Emails)
    }

    /// Spends one `fetch`.
    pub(crate) fn fetch(&self, limits: &CallBudgets) -> Result<(), Overdraft> {
        self.spend(&self.fetches, 1, limits.fetches, Kind::Fetches)
    }

    /// The overdraft that ended the tree, if one did.
    pub(crate) fn exhausted(&self) -> Option<&str> {
        self.exhausted.get().map(String::as_str)
    }

    fn spend(
        &self,
        counter: &AtomicU64,
        amount: u64,
        limit: u64,
        kind: Kind,
    ) -> Result<(), Overdraft> {
        if let Some(message) = self.exhausted() {
            return Err(Overdraft {
                error: LimitExceeded(message.to_string()),
                first: None,
            });
        }
        let before = counter.fetch_add(amount, Ordering::SeqCst);
        if before.saturating_add(amount) > limit {
            let what = match kind {
                Kind::ValWrites => "val writes",
                Kind::WrittenBytes => "bytes written to vals",
                Kind::Emails => "emails",
                Kind::Fetches => "fetch requests",
            };
            let mut first = None;
            let message = self.exhausted.get_or_init(|| {
                first = Some(kind);
                format!("the call tree's budget of {limit} {what} is spent")
            });
            return Err(Overdraft {
                error: LimitExceeded(message.clone()),
                first,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_overdraft_ends_every_later_spend_and_names_the_budget() {
        let limits = CallBudgets {
            val_writes: 2,
            written_bytes: 100,
            emails: 1,
            fetches: 1,
        };
        let budget = TreeBudget::default();
        budget.write(&limits, 10).unwrap();
        budget.write(&limits, 10).unwrap();
        let overdraft = budget.write(&limits, 10).unwrap_err();
        assert_eq!(overdraft.first, Some(Kind::ValWrites), "counted once");
        let error = overdraft.error;
        assert!(error.0.contains("2 val writes"), "{}", error.0);
        // Spent: even what is left of other budgets is refused now.
        let later = budget.email(&limits).unwrap_err();
        assert_eq!(later.first, None);
        assert_eq!(budget.exhausted(), Some(error.0.as_str()));

        let bytes = TreeBudget::default();
        let overdraft = bytes.write(&limits, 101).unwrap_err();
        assert_eq!(overdraft.first, Some(Kind::WrittenBytes));
        assert!(
            overdraft.error.0.contains("100 bytes written"),
            "{}",
            overdraft.error.0
        );

        let mail = TreeBudget::default();
        mail.email(&limits).unwrap();
        assert!(mail
            .email(&limits)
            .unwrap_err()
            .error
            .0
            .contains("1 emails"));
        let fetches = TreeBudget::default();
        fetches.fetch(&limits).unwrap();
        assert!(fetches.fetch(&limits).is_err());
    }
}

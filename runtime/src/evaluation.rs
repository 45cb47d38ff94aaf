//! Evaluation records (traces): one per call, nested like the call tree, each
//! saying who may see it.

use crate::frame::{Frame, Mode};
use crate::policy::Rule;
use crate::state::LogLine;
use serde::Serialize;

/// One call in a call tree: what ran, as whom, how it ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Evaluation {
    /// What ran: `@user.val@version`, or `eval` for posted code.
    pub target: String,
    /// Whose resources the call acted for (`None`: anonymous).
    pub principal: Option<String>,
    /// Whose code ran.
    pub author: Option<String>,
    /// How it was reached.
    pub mode: Mode,
    /// Nesting depth.
    pub depth: u32,
    /// ✓ or ❌.
    pub ok: bool,
    /// The error, when it failed.
    pub error: Option<String>,
    /// Wall time in microseconds.
    pub duration_us: u64,
    /// Console output.
    pub logs: Vec<LogLine>,
    /// Calls it made, in order.
    pub calls: Vec<Evaluation>,
    /// What the policy refused this call's code, and why (see [`Denial`]).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub denials: Vec<Denial>,
    /// Who may see this record: the principal for library calls and own
    /// code, the author for API calls (`None`: nobody, anonymous code).
    pub visible_to: Option<String>,
    /// True when this is a stub of a call the viewer may not see.
    pub redacted: bool,
}

impl Evaluation {
    /// An empty record for a call about to run in `frame`.
    pub(crate) fn start(target: String, frame: &Frame) -> Evaluation {
        let visible_to = match frame.mode {
            Mode::Api => frame.author.clone(),
            _ => frame.principal.clone(),
        };
        Evaluation {
            target,
            principal: frame.principal.clone(),
            author: frame.author.clone(),
            mode: frame.mode,
            depth: frame.depth,
            ok: false,
            error: None,
            duration_us: 0,
            logs: Vec::new(),
            calls: Vec::new(),
            denials: Vec::new(),
            visible_to,
            redacted: false,
        }
    }

    /// Splits the tree into one record per viewer: each viewer's record has
    /// the calls they may not see replaced by stubs (target, ✓/❌, duration),
    /// and every such call becomes a record of its own for its viewer.
    pub fn split_by_viewer(&self) -> Vec<Evaluation> {
        let mut records = Vec::new();
        let root = self.redact_foreign(&self.visible_to, &mut records);
        records.insert(0, root);
        records
    }

    fn redact_foreign(
        &self,
        viewer: &Option<String>,
        detached: &mut Vec<Evaluation>,
    ) -> Evaluation {
        let mut copy = self.clone();
        copy.calls = self
            .calls
            .iter()
            .map(|call| {
                if &call.visible_to == viewer {
                    call.redact_foreign(viewer, detached)
                } else {
                    detached.extend(call.split_by_viewer());
                    call.stub()
                }
            })
            .collect();
        copy
    }

    fn stub(&self) -> Evaluation {
        Evaluation {
            error: None,
            logs: Vec::new(),
            calls: Vec::new(),
            denials: Vec::new(),
            redacted: true,
            ..self.clone()
        }
    }
}

/// What code used, in the words of the reference index
/// (`host`'s `val_references`): how a denial is matched to its position.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Use {
    /// `@user.val` read as a value.
    Read,
    /// `@user.val(...)`.
    LibraryCall,
    /// `api(@user.val, ...)`.
    ApiCall,
    /// `@user.val = value`.
    Write,
    /// `@user.secrets.key`.
    SecretRead,
    /// `console.email(...)`.
    Email,
}

/// One refusal of the policy (an `undefined`, a no-op, a permission error)
/// or a surprising allow (`console.email` reaching the caller), recorded
/// in the evaluation record of the call whose code asked. It says what the
/// code wrote and which rule applied — never a value, and the same words
/// whether or not the val or secret exists, so a record tells its viewer
/// nothing the code's text and the seed table do not.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Denial {
    /// The reference as written: `@me.openAiFreeUsageConfig`,
    /// `@me.secrets.key`, `@me.count = …`, `console.email(…)`.
    pub reference: String,
    /// What the code did with it.
    #[serde(rename = "capability")]
    pub used: Use,
    /// `undefined`, `no_op`, `permission_error` or `sent_to_caller`.
    pub decision: &'static str,
    /// The mode of the frame that asked.
    pub mode: Mode,
    /// The seed-table row (`restricted_private_val`, …).
    pub rule: Rule,
    /// The row in words.
    pub rule_text: &'static str,
    /// What to do about it (filled when the call tree ends, where the
    /// path into the refusing frame is known).
    pub hint: String,
    /// How many times the code asked this in this call.
    pub count: u32,
    /// 1-based line of the reference in the val's source, when the host
    /// knows it (from the val's reference index).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<u32>,
    /// 1-based column, with `line`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub column: Option<u32>,
    /// The owner as written (`me` or a handle), for matching positions.
    #[serde(skip)]
    pub owner: String,
    /// The val's name or the secret's key, for matching positions.
    #[serde(skip)]
    pub name: String,
}

impl Evaluation {
    /// Fills the hint of every denial in the tree, now that each one's path
    /// is known: which library call entered Restricted Library Mode, and
    /// whether rewriting that call as `api()` would change the outcome.
    pub(crate) fn explain_denials(&mut self) {
        self.explain_below(None);
    }

    /// `entry`: the call that entered restricted mode above this record
    /// (its target without the version, and its author).
    fn explain_below(&mut self, entry: Option<(&str, &str)>) {
        let own_target = unversioned(&self.target);
        let entry = match (self.mode, entry) {
            (Mode::Restricted | Mode::Library, Some(entry)) => Some(entry),
            (Mode::Restricted | Mode::Library, None) => {
                Some((own_target, self.author.as_deref().unwrap_or_default()))
            }
            _ => None,
        };
        let author = self.author.as_deref().unwrap_or_default();
        for denial in &mut self.denials {
            denial.hint = hint(denial, entry, author);
        }
        for call in &mut self.calls {
            call.explain_below(entry);
        }
    }
}

/// `@bob.f` of `@bob.f@3`.
fn unversioned(target: &str) -> &str {
    match target.rfind('@') {
        Some(at) if at > 0 => &target[..at],
        _ => target,
    }
}

fn hint(denial: &Denial, entry: Option<(&str, &str)>, author: &str) -> String {
    use Rule::*;
    let owner = if denial.owner == "me" {
        author
    } else {
        denial.owner.as_str()
    };
    match (denial.rule, entry) {
        (RestrictedSecret | RestrictedPrivateVal | RestrictedWrite, _) if owner != author => {
            format!("@{owner}'s state is not reachable from @{author}'s code in any mode: pass the value as an argument")
        }
        (RestrictedSecret | RestrictedPrivateVal | RestrictedWrite | RestrictedEmail, Some((target, entry_author)))
            if entry_author == author =>
        {
            let what = match denial.rule {
                RestrictedEmail => format!("for the email to reach @{author}"),
                RestrictedWrite => format!("for the write to change @{author}'s val"),
                _ => format!("to run with @{author}'s permissions, or pass the value as an argument"),
            };
            format!("call it through api({target}, …) {what}")
        }
        (RestrictedSecret | RestrictedPrivateVal | RestrictedWrite | RestrictedEmail, Some((target, _))) => format!(
            "this is @{author}'s code reached through {target}: api({target}, …) would not change it; @{author}'s caller can call it through api(), or pass the value as an argument"
        ),
        (RestrictedCallerWriteDenied, _) => {
            "this server does not let library code write the caller's vals: return the value and write it in your own code".into()
        }
        (ForeignSecret | ForeignPrivateVal | ForeignWrite, _) => {
            "only its owner's code reaches it: ask the owner to expose it through a public val or an api() call, or pass the value as an argument".into()
        }
        (Anonymous, _) => "sign in (send an API key) to use it".into(),
        _ => "Library Mode is not offered to users".into(),
    }
}

//! The one policy function: every capability decision in valbox is
//! [`decide`]. Host imports describe what the guest asks for as a
//! [`Request`], act on the [`Decision`], and decide nothing themselves.
//!
//! What is not a capability: the web platform inside the guest (SPEC §7).
//! Timers and the host's `wait` import, clocks (`Date`, `performance`),
//! randomness (`Math.random`, `crypto.getRandomValues`, `randomUUID`, from
//! the host's entropy in every instance) and `crypto.subtle` carry nobody's
//! private state, so they are open in every mode and never asked about
//! here; the table of the seed post is unchanged by them. They are bounded
//! by the call tree's deadline, memory and CPU turns like any other code.

use crate::frame::{Frame, Mode};

/// How a reference names the owner: `@me.x` or `@user.x`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner<'a> {
    /// `@me`: the author of the running code.
    Me,
    /// `@user`, lower-cased.
    Named(&'a str),
}

impl Owner<'_> {
    /// The owner as the code wrote it: `me` or the handle.
    pub fn as_written(&self) -> &str {
        match self {
            Owner::Me => "me",
            Owner::Named(user) => user,
        }
    }
}

/// What a val looked like when it was asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValState {
    /// It exists and is public.
    Public,
    /// It exists and is private.
    Private,
    /// There is no such val.
    Missing,
}

/// The capability code asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Capability {
    /// Read a secret (`@me.secrets.key`).
    ReadSecret,
    /// Read or call a val (`@user.name`, `@user.name()`).
    ReadVal(ValState),
    /// Write a val (`@user.name = value`).
    WriteVal,
    /// `console.email(...)`: the decision names the recipient.
    SendEmail,
    /// `fetch(...)`: outbound HTTP, carrying nobody's private state, so
    /// open in every mode (the operator's address guard still applies).
    Fetch,
}

/// One question for the policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Request<'a> {
    /// The owner as the code wrote it.
    pub owner: Owner<'a>,
    /// What is asked for.
    pub capability: Capability,
}

/// Operator settings of the policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PolicySettings {
    /// `library_writes = "deny"`: restricted code writing the caller's val
    /// (`@A.foo = x` from B's library) is a no-op instead of the seed
    /// table's write.
    pub deny_library_writes: bool,
}

/// What the code gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Go ahead, acting on this user's resource (for email: the recipient).
    Allow(String),
    /// The code sees `undefined` (restricted reads).
    Undefined,
    /// The write silently does nothing.
    NoOp,
    /// The code gets a permission error with this message.
    Deny(String),
}

/// Decides one capability for code running in `frame`. The seed post's
/// table (SPEC §2) is exactly this function; `policy_table` tests every cell.
pub fn decide(frame: &Frame, settings: &PolicySettings, request: &Request<'_>) -> Decision {
    let principal = frame.principal.as_deref();
    let author = frame.author.as_deref();
    match frame.mode {
        Mode::Own | Mode::Api => {
            let owner = match request.owner {
                Owner::Me => author,
                Owner::Named(user) => Some(user),
            };
            let own = owner.is_some() && owner == principal;
            match request.capability {
                Capability::Fetch => fetch_for(principal),
                Capability::ReadVal(ValState::Public) => allow(owner, request),
                Capability::ReadVal(ValState::Missing) if own => Decision::Undefined,
                Capability::ReadSecret | Capability::ReadVal(_) | Capability::WriteVal => {
                    if own {
                        allow(owner, request)
                    } else {
                        deny(principal, owner, request)
                    }
                }
                Capability::SendEmail => match principal {
                    Some(user) => Decision::Allow(user.to_string()),
                    None => Decision::Deny(
                        "console.email needs a signed-in user: anonymous code cannot send email"
                            .into(),
                    ),
                },
            }
        }
        Mode::Restricted => {
            let owner = match request.owner {
                Owner::Me => author,
                Owner::Named(user) => Some(user),
            };
            match request.capability {
                Capability::Fetch => fetch_for(principal),
                Capability::ReadSecret => Decision::Undefined,
                Capability::ReadVal(ValState::Public) => allow(owner, request),
                Capability::ReadVal(_) => Decision::Undefined,
                Capability::WriteVal => match request.owner {
                    Owner::Named(user)
                        if Some(user) == principal && !settings.deny_library_writes =>
                    {
                        Decision::Allow(user.to_string())
                    }
                    _ => Decision::NoOp,
                },
                Capability::SendEmail => match principal {
                    Some(user) => Decision::Allow(user.to_string()),
                    None => Decision::Deny(
                        "console.email needs a signed-in user: anonymous code cannot send email"
                            .into(),
                    ),
                },
            }
        }
        Mode::Library => {
            // The old semantics: `@me` is the caller for private state and
            // writes, the author for public vals; the author's own private
            // state is out of reach.
            let owner = match (request.owner, request.capability) {
                (Owner::Me, Capability::ReadVal(ValState::Public)) => author,
                (Owner::Me, _) => principal,
                (Owner::Named(user), _) => Some(user),
            };
            let callers = owner.is_some() && owner == principal;
            match request.capability {
                Capability::Fetch => fetch_for(principal),
                Capability::ReadVal(ValState::Public) => allow(owner, request),
                Capability::ReadSecret | Capability::ReadVal(_) if callers => allow(owner, request),
                Capability::ReadSecret | Capability::ReadVal(_) => Decision::Undefined,
                Capability::WriteVal if callers => allow(owner, request),
                Capability::WriteVal => Decision::NoOp,
                Capability::SendEmail => match principal {
                    Some(user) => Decision::Allow(user.to_string()),
                    None => Decision::Deny("anonymous code cannot send email".into()),
                },
            }
        }
    }
}

impl Decision {
    /// What the code gets, as records and the call-site finder name it:
    /// `undefined`, `no_op`, `permission_error`, or `sent_to_caller` for an
    /// allow that is worth explaining (see [`explain`]).
    pub fn effect(&self) -> &'static str {
        match self {
            Decision::Allow(_) => "sent_to_caller",
            Decision::Undefined => "undefined",
            Decision::NoOp => "no_op",
            Decision::Deny(_) => "permission_error",
        }
    }
}

/// `fetch` is open in every mode: it carries nobody's private state.
fn fetch_for(principal: Option<&str>) -> Decision {
    Decision::Allow(principal.unwrap_or_default().to_string())
}

fn allow(owner: Option<&str>, request: &Request<'_>) -> Decision {
    match owner {
        Some(user) => Decision::Allow(user.to_string()),
        None => Decision::Deny(format!(
            "{}: anonymous code has no `@me`",
            describe(request, None)
        )),
    }
}

fn deny(principal: Option<&str>, owner: Option<&str>, request: &Request<'_>) -> Decision {
    let who = principal
        .map(|p| format!("@{p}"))
        .unwrap_or_else(|| "anonymous code".into());
    Decision::Deny(format!("{who} may not {}", describe(request, owner)))
}

fn describe(request: &Request<'_>, owner: Option<&str>) -> String {
    let owner = owner
        .map(|o| format!("@{o}"))
        .unwrap_or_else(|| "@me".into());
    match request.capability {
        Capability::ReadSecret => format!("read {owner}'s secrets"),
        Capability::ReadVal(_) => format!("read {owner}'s private vals"),
        Capability::WriteVal => format!("write {owner}'s vals"),
        Capability::SendEmail => "send email".into(),
        Capability::Fetch => "fetch".into(),
    }
}

/// The row of the seed post's table (SPEC §2) a decision comes from, for
/// the evaluation record of a refused request ([`explain`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Rule {
    /// Library code reads a secret: `undefined`.
    RestrictedSecret,
    /// Library code reads a val that is not public: `undefined`.
    RestrictedPrivateVal,
    /// Library code writes its author's (or a third user's) val: no-op.
    RestrictedWrite,
    /// Library code writes the caller's val under `library_writes = "deny"`.
    RestrictedCallerWriteDenied,
    /// `console.email` in library code emails the caller, not the author.
    RestrictedEmail,
    /// Own or API code reads another user's secret: a permission error.
    ForeignSecret,
    /// Own or API code reads another user's val that is not public.
    ForeignPrivateVal,
    /// Own or API code writes another user's val.
    ForeignWrite,
    /// Anonymous code asks for what needs a user.
    Anonymous,
    /// The old Library Mode (never offered to users): the author's private
    /// state is out of reach.
    LibraryModeAuthorState,
}

/// Every rule, in the order of [`Rule::index`] (metric labels).
pub const RULES: [Rule; 10] = [
    Rule::RestrictedSecret,
    Rule::RestrictedPrivateVal,
    Rule::RestrictedWrite,
    Rule::RestrictedCallerWriteDenied,
    Rule::RestrictedEmail,
    Rule::ForeignSecret,
    Rule::ForeignPrivateVal,
    Rule::ForeignWrite,
    Rule::Anonymous,
    Rule::LibraryModeAuthorState,
];

impl Rule {
    /// Position in [`RULES`].
    pub fn index(self) -> usize {
        self as usize
    }

    /// The rule's name as a metric label and in records (`restricted_secret`).
    pub fn label(self) -> &'static str {
        match self {
            Rule::RestrictedSecret => "restricted_secret",
            Rule::RestrictedPrivateVal => "restricted_private_val",
            Rule::RestrictedWrite => "restricted_write",
            Rule::RestrictedCallerWriteDenied => "restricted_caller_write_denied",
            Rule::RestrictedEmail => "restricted_email",
            Rule::ForeignSecret => "foreign_secret",
            Rule::ForeignPrivateVal => "foreign_private_val",
            Rule::ForeignWrite => "foreign_write",
            Rule::Anonymous => "anonymous",
            Rule::LibraryModeAuthorState => "library_mode_author_state",
        }
    }

    /// The row of the seed table, in words. It never depends on whether
    /// the val or secret exists: the same words for both.
    pub fn text(self) -> &'static str {
        match self {
            Rule::RestrictedSecret => {
                "Restricted Library Mode: code called as a library cannot read secrets, its author's or anyone's (it sees undefined)"
            }
            Rule::RestrictedPrivateVal => {
                "Restricted Library Mode: code called as a library cannot read vals that are not public, its author's or anyone's (it sees undefined)"
            }
            Rule::RestrictedWrite => {
                "Restricted Library Mode: code called as a library cannot write its author's vals (the write is a no-op)"
            }
            Rule::RestrictedCallerWriteDenied => {
                "library_writes = \"deny\" (this server): code called as a library cannot write the caller's vals either (the write is a no-op)"
            }
            Rule::RestrictedEmail => {
                "Restricted Library Mode: console.email in code called as a library emails the caller, not the author"
            }
            Rule::ForeignSecret => {
                "Own code and API mode: code reads only its own user's secrets (a permission error)"
            }
            Rule::ForeignPrivateVal => {
                "Own code and API mode: another user's vals are readable only when public (a permission error)"
            }
            Rule::ForeignWrite => {
                "Own code and API mode: code writes only its own user's vals (a permission error)"
            }
            Rule::Anonymous => {
                "Anonymous code: public vals only; no secrets, writes or email (a permission error)"
            }
            Rule::LibraryModeAuthorState => {
                "Library Mode: a library's author's private state is out of reach (undefined or a no-op)"
            }
        }
    }
}

/// Why `decision` was what `frame`'s code got for `request`: the rule of
/// a refusal, and of the one allow that surprises (`console.email` in
/// library code reaching the caller). `None` for a plain allow, and for
/// code reading its own user's val that does not exist (nothing refused).
pub fn explain(frame: &Frame, request: &Request<'_>, decision: &Decision) -> Option<Rule> {
    let anonymous = frame.principal.is_none();
    match (decision, frame.mode, request.capability) {
        (Decision::Allow(to), Mode::Restricted | Mode::Library, Capability::SendEmail) => {
            (frame.author.as_deref() != Some(to.as_str())).then_some(Rule::RestrictedEmail)
        }
        (Decision::Allow(_), ..) => None,
        (_, _, Capability::ReadVal(ValState::Missing)) if frame.mode != Mode::Restricted => {
            // Own, API, Library: missing for its own user, or refused the
            // same way a private val of someone else is.
            match decision {
                Decision::Deny(_) if anonymous => Some(Rule::Anonymous),
                Decision::Deny(_) => Some(Rule::ForeignPrivateVal),
                _ if frame.mode == Mode::Library => Some(Rule::LibraryModeAuthorState),
                _ => None,
            }
        }
        (_, Mode::Restricted, Capability::ReadSecret) => Some(Rule::RestrictedSecret),
        (_, Mode::Restricted, Capability::ReadVal(_)) => Some(Rule::RestrictedPrivateVal),
        (_, Mode::Restricted, Capability::WriteVal) => match request.owner {
            Owner::Named(user) if Some(user) == frame.principal.as_deref() => {
                Some(Rule::RestrictedCallerWriteDenied)
            }
            _ => Some(Rule::RestrictedWrite),
        },
        (_, Mode::Library, _) => Some(Rule::LibraryModeAuthorState),
        (Decision::Deny(_), ..) if anonymous => Some(Rule::Anonymous),
        (_, _, Capability::ReadSecret) => Some(Rule::ForeignSecret),
        (_, _, Capability::ReadVal(_)) => Some(Rule::ForeignPrivateVal),
        (_, _, Capability::WriteVal) => Some(Rule::ForeignWrite),
        (_, _, Capability::SendEmail | Capability::Fetch) => Some(Rule::Anonymous),
    }
}

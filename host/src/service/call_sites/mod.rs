//! The broken-call-site finder (SPEC §7, upgrade tooling): for each library
//! call `@B.f(...)` in the caller's vals, walk what `B.f` reaches as it
//! runs in Restricted Library Mode — through public vals, pinned versions
//! respected, recursively, cycles cut — and report every path on which the
//! mode changes the outcome (the policy's answer for the author's code in
//! restricted mode against its answer in API mode, which the `api()`
//! rewrite would give): a read of the author's secret or of a val of
//! theirs that is not public (→ `undefined`), a write to the author's val
//! (→ no-op), `console.email` (→ emails the caller). Each finding names the
//! call site, the path, the seed-table row and the rewrite; recent
//! evaluation records of the call site with denials or ❌ are the dynamic
//! evidence. [`fix`] previews the rewrite.
//!
//! What it reveals: only what the caller can read anyway. Findings are
//! decided from the text of code the caller may read (public vals and
//! their own) and from which vals are public, which anyone can list; a
//! val that is not public is "not public" — never told apart from one that
//! does not exist, never opened, its value never read.

mod fix;

pub use fix::{FixChange, FixPreview, FixRequest, FixTarget, FixedVal};

use super::references::parse_target;
use super::{Service, ServiceResult};
use crate::store::{Privacy, StoredEvaluation, User};
use std::time::Instant;
use valbox_runtime::policy::{
    decide, explain, Capability, Decision, Owner, Request, Rule, ValState,
};
use valbox_runtime::transform::{scan, Found, ReferenceKind, SourceReference};
use valbox_runtime::{Frame, Mode};

/// Most vals one call site's walk opens (a bound on the work of a query).
const MAX_STEPS: usize = 2_000;
/// Most evaluation records searched for evidence, and kept per call site.
const EVIDENCE_SCANNED: u32 = 100;
const EVIDENCE_KEPT: usize = 5;

/// `GET /v1/me/call-sites`.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct CallSiteReport {
    /// The caller's library call sites (filtered by `status` when asked).
    pub call_sites: Vec<CallSite>,
}

/// One library call `@B.f(...)` in one of the caller's vals.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct CallSite {
    /// The caller's val holding the call, `user.name`.
    pub val: String,
    /// Its latest version, which holds the call.
    pub version: u32,
    /// 1-based line of the `@` reference.
    pub line: u32,
    /// 1-based column.
    pub column: u32,
    /// What it calls, as written: `@bob.f` or `@bob.f@3`.
    pub callee: String,
    /// `broken` (findings), `unknown` (only computed calls that cannot be
    /// told statically) or `ok`.
    pub status: String,
    /// Every path on which Restricted Library Mode changes the outcome.
    pub findings: Vec<Finding>,
    /// Places on the way that cannot be told statically (`api(x)`).
    pub cannot_tell: Vec<String>,
    /// Recent runs of this call site with denials or ❌.
    pub evidence: Vec<Evidence>,
}

/// One path on which the mode changes the outcome.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct Finding {
    /// `@alice.useGpt → @bob.gpt3 → reads @me.openAiFreeUsageConfig (not public)`.
    pub path: String,
    /// The vals on the path, `@user.name@version`, from the caller's.
    pub vals: Vec<String>,
    /// The seed-table row (`restricted_private_val`, …).
    pub rule: String,
    /// The row in words.
    pub rule_text: String,
    /// What the code gets: `undefined`, `no_op` or `sent_to_caller`.
    pub effect: String,
    /// Where the refused reference is, `@user.name@version:line:column`.
    pub at: String,
    /// Whether rewriting the call site as `api()` changes the outcome
    /// (false when the path leaves the callee's author's vals).
    pub fixable: bool,
    /// What to do: the rewrite, or who can fix it.
    pub suggestion: String,
}

/// A recent evaluation record of the caller's val in which this call had
/// denials or failed.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct Evidence {
    /// The record's id (`GET /v1/me/evaluations/{id}`).
    pub evaluation: i64,
    /// When it ran (Unix seconds).
    pub created_at: i64,
    /// Whether the call succeeded.
    pub ok: bool,
    /// Its error, when it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The seed-table rows of the denials recorded under the call.
    pub denials: Vec<String>,
}

/// One val opened by a walk.
struct Node {
    /// `@owner.name@version`.
    label: String,
    owner: String,
}

/// What a walk from one call site found.
#[derive(Default)]
struct Walk {
    findings: Vec<Finding>,
    cannot_tell: Vec<String>,
    steps: usize,
}

impl Service {
    /// `user`'s library call sites and what Restricted Library Mode does
    /// to them; `status` (`broken`, `unknown`, `ok`) filters.
    pub fn call_sites(&self, user: &User, status: Option<&str>) -> ServiceResult<CallSiteReport> {
        let mut call_sites = Vec::new();
        let recent = self
            .store
            .evaluations(&user.handle, EVIDENCE_SCANNED, None, None)?;
        for meta in self.store.list_vals(&user.handle, true)? {
            let Some(val) = self.store.version(&meta.user, &meta.name, None)? else {
                continue;
            };
            let Ok(found) = scan(&val.code) else { continue };
            for reference in found.into_iter().filter_map(|f| match f {
                Found::Reference(r) if r.kind == ReferenceKind::LibraryCall => Some(r),
                _ => None,
            }) {
                let owner = resolve(&reference.owner, &user.handle);
                if owner == user.handle {
                    continue; // own code calling own code: not restricted
                }
                let site_label = format!("@{}.{}", meta.user, meta.name);
                let mut walk = Walk::default();
                let mut path = vec![Node {
                    label: format!("{site_label}@{}", val.version),
                    owner: user.handle.clone(),
                }];
                self.walk_into(user, &owner, &reference, &mut path, &mut walk)?;
                let status_now = if !walk.findings.is_empty() {
                    "broken"
                } else if !walk.cannot_tell.is_empty() {
                    "unknown"
                } else {
                    "ok"
                };
                if status.is_some_and(|wanted| wanted != status_now) {
                    continue;
                }
                let callee = written(&reference);
                let evidence = evidence(&recent, &meta.user, &meta.name, &owner, &reference.name);
                call_sites.push(CallSite {
                    val: format!("{}.{}", meta.user, meta.name),
                    version: val.version,
                    line: reference.line,
                    column: reference.column,
                    callee,
                    status: status_now.into(),
                    findings: walk.findings,
                    cannot_tell: walk.cannot_tell,
                    evidence,
                });
            }
        }
        Ok(CallSiteReport { call_sites })
    }

    /// Walks into `owner.name` (as `reference` names it), run as a library
    /// by `path`'s last val; adds what it finds to `walk`.
    fn walk_into(
        &self,
        user: &User,
        owner: &str,
        reference: &SourceReference,
        path: &mut Vec<Node>,
        walk: &mut Walk,
    ) -> ServiceResult<()> {
        walk.steps += 1;
        if walk.steps > MAX_STEPS {
            if walk.steps == MAX_STEPS + 1 {
                walk.cannot_tell
                    .push(format!("the walk stopped after {MAX_STEPS} vals"));
            }
            return Ok(());
        }
        let Some(val) = self
            .store
            .version(owner, &reference.name, reference.version)?
        else {
            return Ok(()); // undefined in every mode
        };
        if val.meta.privacy != Privacy::Public {
            return Ok(()); // undefined to restricted code, whoever's it is
        }
        let label = format!("@{owner}.{}@{}", val.meta.name, val.version);
        if path.iter().any(|node| node.label == label) {
            return Ok(()); // a cycle: what it reaches is being walked already
        }
        path.push(Node {
            label,
            owner: owner.to_string(),
        });
        let found = scan(&val.code).unwrap_or_default();
        for item in found {
            match item {
                Found::Reference(r) => self.step(user, &r, path, walk)?,
                Found::Email { line, column } => {
                    let node = path.last().expect("pushed");
                    let request = Request {
                        owner: Owner::Me,
                        capability: Capability::SendEmail,
                    };
                    if let Some((rule, effect)) =
                        self.changed_by_restriction(&user.handle, &node.owner, &request)
                    {
                        let at = format!("{}:{line}:{column}", node.label);
                        walk.findings
                            .push(finding(path, "sends console.email", rule, effect, at));
                    }
                }
                Found::ComputedApi { line, column } => walk.cannot_tell.push(format!(
                    "{}:{line}:{column}: api() with a computed target — cannot tell statically what it calls",
                    path.last().expect("pushed").label
                )),
            }
        }
        path.pop();
        Ok(())
    }

    /// One reference in the code of `path`'s last val, run restricted.
    fn step(
        &self,
        user: &User,
        r: &SourceReference,
        path: &mut Vec<Node>,
        walk: &mut Walk,
    ) -> ServiceResult<()> {
        let node = path.last().expect("a walk has a val");
        let author = node.owner.clone();
        let owner = resolve(&r.owner, &author);
        let at = format!("{}:{}:{}", node.label, r.line, r.column);
        let capability = match r.kind {
            ReferenceKind::SecretRead => Capability::ReadSecret,
            ReferenceKind::Write => Capability::WriteVal,
            ReferenceKind::Read | ReferenceKind::LibraryCall => {
                let public = self
                    .store
                    .version(&owner, &r.name, r.version)?
                    .is_some_and(|v| v.meta.privacy == Privacy::Public);
                if public {
                    // It runs, restricted still (sticky): walk on.
                    return self.walk_into(user, &owner, r, path, walk);
                }
                // Not public: never told apart from missing.
                Capability::ReadVal(ValState::Private)
            }
            // `api()` runs its target as its author: the mode ends there.
            ReferenceKind::ApiCall => return Ok(()),
        };
        let request = Request {
            owner: if r.owner == "me" {
                Owner::Me
            } else {
                Owner::Named(&r.owner)
            },
            capability,
        };
        if let Some((rule, effect)) = self.changed_by_restriction(&user.handle, &author, &request) {
            let what = match r.kind {
                ReferenceKind::SecretRead => format!("reads @{}.secrets.{}", r.owner, r.name),
                ReferenceKind::Write => format!("writes @{}.{}", r.owner, r.name),
                ReferenceKind::Read => format!("reads {} (not public)", written(r)),
                _ => format!("calls {} (not public)", written(r)),
            };
            walk.findings.push(finding(path, &what, rule, effect, at));
        }
        Ok(())
    }

    /// What Restricted Library Mode changes for `request` in `author`'s
    /// code called as a library by `user`, as the policy decides: the rule
    /// and what the code gets, when API mode (the `api()` rewrite) allows
    /// it and restricted mode does not give the same.
    fn changed_by_restriction(
        &self,
        user: &str,
        author: &str,
        request: &Request<'_>,
    ) -> Option<(Rule, &'static str)> {
        let deadline = Instant::now();
        let restricted = Frame {
            principal: Some(user.to_string()),
            author: Some(author.to_string()),
            mode: Mode::Restricted,
            depth: 1,
            deadline,
        };
        let api = Frame::api(author, 1, deadline);
        let settings = &self.sandbox.config().policy;
        let in_api = decide(&api, settings, request);
        let in_library = decide(&restricted, settings, request);
        if !matches!(in_api, Decision::Allow(_)) || in_api == in_library {
            return None;
        }
        let rule = explain(&restricted, request, &in_library)?;
        Some((rule, in_library.effect()))
    }
}

/// The records among `recent` of `val_owner.val_name` in which the call of
/// `owner.name` had denials or failed.
fn evidence(
    recent: &[StoredEvaluation],
    val_owner: &str,
    val_name: &str,
    owner: &str,
    name: &str,
) -> Vec<Evidence> {
    let prefix = format!("@{val_owner}.{val_name}@");
    let callee = format!("@{owner}.{name}@");
    let mut evidence = Vec::new();
    for stored in recent {
        let record = &stored.record;
        if !record["target"]
            .as_str()
            .is_some_and(|t| t.starts_with(&prefix))
        {
            continue;
        }
        for call in calls_to(record, &callee) {
            let mut denials = Vec::new();
            collect_denials(call, &mut denials);
            let ok = call["ok"].as_bool().unwrap_or(false);
            if ok && denials.is_empty() {
                continue;
            }
            evidence.push(Evidence {
                evaluation: stored.id,
                created_at: stored.created_at,
                ok,
                error: call["error"].as_str().map(str::to_string),
                denials,
            });
            if evidence.len() == EVIDENCE_KEPT {
                return evidence;
            }
        }
    }
    evidence
}

/// `me` resolved to `author`.
fn resolve(owner: &str, author: &str) -> String {
    if owner == "me" {
        author.to_string()
    } else {
        owner.to_string()
    }
}

/// The reference as written: `@bob.f`, `@bob.f@3`.
fn written(r: &SourceReference) -> String {
    match r.version {
        Some(v) => format!("@{}.{}@{v}", r.owner, r.name),
        None => format!("@{}.{}", r.owner, r.name),
    }
}

/// A finding at the end of `path` (the call site's val first).
fn finding(path: &[Node], what: &str, rule: Rule, effect: &str, at: String) -> Finding {
    let unversioned = |label: &str| {
        parse_target(label).map_or(label.to_string(), |(o, n, _)| format!("@{o}.{n}"))
    };
    let mut steps: Vec<String> = path.iter().map(|node| unversioned(&node.label)).collect();
    steps.push(what.to_string());
    let callee = &path[1];
    let callee_name = unversioned(&callee.label);
    let leaves = path[1..].iter().find(|node| node.owner != callee.owner);
    let (fixable, suggestion) = match leaves {
        None => (
            true,
            format!("call it as `await api({callee_name}, …)`: it then runs as @{}, with its own permissions (arguments and result as JSON); or pass the value as an argument", callee.owner),
        ),
        Some(other) => (
            false,
            format!(
                "the path leaves @{}'s vals at {}: api({callee_name}, …) would not change it; @{} can call it through api(), or fork {callee_name} and change the call yourself",
                callee.owner,
                unversioned(&other.label),
                callee.owner
            ),
        ),
    };
    Finding {
        path: steps.join(" → "),
        vals: path.iter().map(|node| node.label.clone()).collect(),
        rule: rule.label().into(),
        rule_text: rule.text().into(),
        effect: effect.into(),
        at,
        fixable,
        suggestion,
    }
}

/// The calls under `record` (at any depth) whose target starts with `callee`.
fn calls_to<'a>(record: &'a serde_json::Value, callee: &str) -> Vec<&'a serde_json::Value> {
    let mut found = Vec::new();
    for call in record["calls"].as_array().into_iter().flatten() {
        if call["target"]
            .as_str()
            .is_some_and(|t| t.starts_with(callee))
        {
            found.push(call);
        } else {
            found.extend(calls_to(call, callee));
        }
    }
    found
}

/// The rules of every denial in `record`'s tree, each once.
fn collect_denials(record: &serde_json::Value, into: &mut Vec<String>) {
    for denial in record["denials"].as_array().into_iter().flatten() {
        if let Some(rule) = denial["rule"].as_str() {
            if !into.iter().any(|r| r == rule) {
                into.push(rule.to_string());
            }
        }
    }
    for call in record["calls"].as_array().into_iter().flatten() {
        collect_denials(call, into);
    }
}

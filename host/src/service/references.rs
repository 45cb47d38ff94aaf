//! References between vals (SPEC §7, upgrade tooling): every `@` reference
//! of a saved version is recorded — what it does (read, library call,
//! `api()` call, write, secret read), what it names (with `@me` resolved to
//! the author) and where — so a val's outgoing references and the vals that
//! reference it can be listed. Versions saved before references were
//! recorded are indexed once, at start.
//!
//! What a viewer learns: a val's references only if the viewer may read
//! its code (they are in the code); who references a val only if the viewer
//! may see that val, and then public referrers (and the viewer's own) by
//! name, private ones of other users only as a count — never a private
//! val's name to someone who cannot see it.

use super::{visible, Service, ServiceResult};
use crate::store::{StoredReference, User};
use valbox_runtime::transform::references;
use valbox_runtime::{Evaluation, Use};

/// The `meta` entry saying every earlier version has been indexed.
const INDEXED: &str = "references_indexed";

/// `GET /v1/vals/{user}.{name}/references`.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct ReferenceList {
    /// `user.name`.
    pub val: String,
    /// The version whose references these are.
    pub version: u32,
    /// In source order.
    pub references: Vec<StoredReference>,
}

/// A val that references another, as a viewer may see it.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct ReferrerView {
    /// The referring val, `user.name`.
    pub val: String,
    /// Its latest version, which holds the reference.
    pub version: u32,
    /// `read`, `library_call`, `api_call` or `write`.
    pub kind: String,
    /// The pinned version it names; absent: the latest.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pinned: Option<u32>,
    /// 1-based line of the reference.
    pub line: u32,
    /// 1-based column.
    pub column: u32,
}

/// `GET /v1/vals/{user}.{name}/referenced-by`.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct ReferrerList {
    /// `user.name`.
    pub val: String,
    /// References from public vals and the viewer's own, by name.
    pub referrers: Vec<ReferrerView>,
    /// How many other users' private vals reference it (not named).
    pub private_referrers: usize,
}

/// The references of `code`, saved by `author` (`@me` becomes the author).
fn resolved(author: &str, code: &str) -> Vec<StoredReference> {
    // Saved code compiled, so its references read; nothing to record otherwise.
    references(code)
        .unwrap_or_default()
        .into_iter()
        .map(|r| StoredReference {
            kind: r.kind.as_str().to_string(),
            owner: if r.owner == "me" {
                author.to_string()
            } else {
                r.owner
            },
            name: r.name,
            version: r.version,
            line: r.line,
            column: r.column,
        })
        .collect()
}

impl Service {
    /// Records the references of version `version` of `owner.name`.
    pub(super) fn index_references(
        &self,
        owner: &str,
        name: &str,
        version: u32,
        code: &str,
    ) -> ServiceResult<()> {
        Ok(self
            .store
            .put_references(owner, name, version, &resolved(owner, code))?)
    }

    /// Indexes the references of every version saved before they were
    /// recorded (once: a `meta` entry marks it done); how many versions.
    pub fn index_existing_references(&self) -> ServiceResult<usize> {
        if self.store.meta_value(INDEXED)?.is_some() {
            return Ok(0);
        }
        let mut after: Option<(String, String, u32)> = None;
        let mut indexed = 0;
        loop {
            let page = self.store.version_sources(
                after.as_ref().map(|(o, n, v)| (o.as_str(), n.as_str(), *v)),
                500,
            )?;
            let Some(last) = page.last() else { break };
            after = Some((last.0.clone(), last.1.clone(), last.2));
            for (owner, name, version, code) in &page {
                self.index_references(owner, name, *version, code)?;
                indexed += 1;
            }
        }
        self.store.set_meta_value(INDEXED, "1")?;
        if indexed > 0 {
            tracing::info!(
                versions = indexed,
                "indexed the references of earlier versions"
            );
        }
        Ok(indexed)
    }

    /// Gives each denial in `evaluation`'s tree the position of the
    /// reference it refused, from the reference index of the version that
    /// ran (posted code, which has no index, keeps none).
    pub(super) fn place_denials(&self, evaluation: &mut Evaluation) {
        if !evaluation.denials.is_empty() {
            if let Some((owner, name, version)) = parse_target(&evaluation.target) {
                let index = self
                    .store
                    .references(owner, name, version)
                    .unwrap_or_default();
                let author = evaluation.author.clone().unwrap_or_default();
                for denial in &mut evaluation.denials {
                    let kind = match denial.used {
                        Use::Read => "read",
                        Use::LibraryCall => "library_call",
                        Use::ApiCall => "api_call",
                        Use::Write => "write",
                        Use::SecretRead => "secret_read",
                        Use::Email => continue,
                    };
                    let owner = if denial.owner == "me" {
                        author.as_str()
                    } else {
                        denial.owner.as_str()
                    };
                    let named = |r: &&StoredReference| r.owner == owner && r.name == denial.name;
                    let found = index
                        .iter()
                        .filter(named)
                        .find(|r| r.kind == kind)
                        .or_else(|| index.iter().find(named));
                    if let Some(found) = found {
                        denial.line = Some(found.line);
                        denial.column = Some(found.column);
                    }
                }
            }
        }
        for call in &mut evaluation.calls {
            self.place_denials(call);
        }
    }

    /// The references of a version of `owner.name` the viewer may read.
    pub fn references(
        &self,
        viewer: Option<&User>,
        owner: &str,
        name: &str,
        version: Option<u32>,
    ) -> ServiceResult<ReferenceList> {
        let found = self.val(viewer, owner, name, version)?;
        Ok(ReferenceList {
            references: self
                .store
                .references(&found.user, &found.name, found.version)?,
            val: format!("{}.{}", found.user, found.name),
            version: found.version,
        })
    }

    /// The vals whose latest version references `owner.name` (which the
    /// viewer must be able to see).
    pub fn referenced_by(
        &self,
        viewer: Option<&User>,
        owner: &str,
        name: &str,
    ) -> ServiceResult<ReferrerList> {
        let found = self.val(viewer, owner, name, None)?;
        let mut referrers = Vec::new();
        let mut private = std::collections::BTreeSet::new();
        for referrer in self.store.referenced_by(&found.user, &found.name)? {
            if referrer.reference.kind == "secret_read" {
                continue; // a secret of the same name, not this val
            }
            if visible(viewer, &referrer.owner, referrer.public) {
                referrers.push(ReferrerView {
                    val: format!("{}.{}", referrer.owner, referrer.name),
                    version: referrer.version,
                    kind: referrer.reference.kind,
                    pinned: referrer.reference.version,
                    line: referrer.reference.line,
                    column: referrer.reference.column,
                });
            } else {
                private.insert((referrer.owner, referrer.name));
            }
        }
        Ok(ReferrerList {
            val: format!("{}.{}", found.user, found.name),
            referrers,
            private_referrers: private.len(),
        })
    }
}

/// `(owner, name, version)` of a record's target `@owner.name@version`.
pub(super) fn parse_target(target: &str) -> Option<(&str, &str, u32)> {
    let (val, version) = target.strip_prefix('@')?.rsplit_once('@')?;
    let (owner, name) = val.split_once('.')?;
    Some((owner, name, version.parse().ok()?))
}

#[cfg(test)]
mod tests {
    #[test]
    fn me_is_the_author_in_recorded_references() {
        let found = super::resolved("alice", "@me.secrets.k; @bob.f(@me.x)");
        let named: Vec<_> = found
            .iter()
            .map(|r| (r.kind.as_str(), r.owner.as_str(), r.name.as_str()))
            .collect();
        assert_eq!(
            named,
            [
                ("secret_read", "alice", "k"),
                ("library_call", "bob", "f"),
                ("read", "alice", "x"),
            ]
        );
    }
}

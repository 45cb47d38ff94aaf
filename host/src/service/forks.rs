//! Forks and pinning, the seed's two ways to stop depending on someone
//! else's latest code: a fork copies a visible val at a version into the
//! caller's account (private unless said, with where it came from), and
//! `upstream` says whether the original moved on, with a line diff;
//! pinning rewrites the caller's unpinned references to other users' vals
//! to the versions they have now (`@bob.f` → `@bob.f@7`), previewed first.

use super::{Service, ServiceError, ServiceResult};
use crate::store::{Privacy, User, ValMeta};
use valbox_runtime::transform::{references, ReferenceKind};

/// `GET /v1/vals/{user}.{name}/upstream`.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct Upstream {
    /// The fork, `user.name`.
    pub val: String,
    /// What it was forked from, `user.name@version`.
    pub forked_from: String,
    /// Whether the caller may still see the original (if not, nothing
    /// more is said about it).
    pub visible: bool,
    /// The original's latest version.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latest_version: Option<u32>,
    /// Whether it has versions newer than the one forked.
    pub newer_versions: bool,
    /// A unified line diff from the forked version to the original's latest.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub diff: Option<String>,
}

/// One reference that pinning changes.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct PinChange {
    /// 1-based line of the reference.
    pub line: u32,
    /// 1-based column.
    pub column: u32,
    /// The reference as written, `@bob.f`.
    pub reference: String,
    /// The version it is pinned to.
    pub pinned_to: u32,
}

/// A val that pinning rewrites.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct PinnedVal {
    /// `user.name`.
    pub val: String,
    /// The changes, in source order.
    pub changes: Vec<PinChange>,
    /// The rewritten code.
    pub code: String,
    /// The version saved, when applied.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub saved_version: Option<u32>,
}

/// `POST /v1/me/pin`.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct PinReport {
    /// Whether the rewrites were saved (else a preview).
    pub applied: bool,
    /// The vals with references to pin.
    pub vals: Vec<PinnedVal>,
}

/// The byte offset of 1-based `line` and `column` (in characters).
pub(super) fn offset(code: &str, line: u32, column: u32) -> usize {
    let start: usize = code
        .split_inclusive('\n')
        .take(line as usize - 1)
        .map(str::len)
        .sum();
    start
        + code[start..]
            .chars()
            .take(column as usize - 1)
            .map(char::len_utf8)
            .sum::<usize>()
}

impl Service {
    /// Copies `owner.name` (at `version`, else its latest), which `user`
    /// must be able to see, into `user`'s account as `new_name` (default:
    /// the same name), private unless `privacy` says otherwise.
    pub fn fork(
        &self,
        user: &User,
        owner: &str,
        name: &str,
        version: Option<u32>,
        new_name: Option<&str>,
        privacy: Option<Privacy>,
    ) -> ServiceResult<ValMeta> {
        let original = self.val(Some(user), owner, name, version)?;
        let new_name = new_name.unwrap_or(&original.name);
        if self.store.version(&user.handle, new_name, None)?.is_some() {
            return Err(ServiceError::Conflict(format!(
                "you already have a val named `{new_name}`: fork under another name with \"name\""
            )));
        }
        let privacy = Some(privacy.unwrap_or(Privacy::Private));
        // Under a new name, the export the original was called by is also
        // exported under the new one, so `@me.newName(...)` finds it (when
        // the code does not compile that way — it has no such export, or
        // already one of the new name — it is copied as it is).
        let renamed = (new_name != original.name).then(|| {
            format!(
                "{}\nexport {{ {} as {new_name} }};\n",
                original.code.trim_end(),
                original.name
            )
        });
        let meta = match renamed.map(|code| self.save_val(user, new_name, &code, privacy)) {
            Some(Ok(meta)) => meta,
            Some(Err(ServiceError::Compile(_))) | None => {
                self.save_val(user, new_name, &original.code, privacy)?
            }
            Some(Err(other)) => return Err(other),
        };
        self.store.set_fork(
            &user.handle,
            new_name,
            (&original.user, &original.name, original.version),
        )?;
        tracing::info!(owner = %user.handle, val = %new_name,
            from = %format!("{}.{}@{}", original.user, original.name, original.version), "val forked");
        Ok(meta)
    }

    /// What a fork `owner.name` (visible to `viewer`) was forked from, and
    /// how the original moved on since.
    pub fn upstream(
        &self,
        viewer: Option<&User>,
        owner: &str,
        name: &str,
    ) -> ServiceResult<Upstream> {
        let fork = self.val(viewer, owner, name, None)?;
        let val = format!("{}.{}", fork.user, fork.name);
        let (from_owner, from_name, from_version) = self
            .store
            .fork_of(&fork.user, &fork.name)?
            .ok_or_else(|| ServiceError::NotFound(format!("@{val} is not a fork")))?;
        let forked_from = format!("{from_owner}.{from_name}@{from_version}");
        let (Ok(latest), Ok(forked)) = (
            self.val(viewer, &from_owner, &from_name, None),
            self.val(viewer, &from_owner, &from_name, Some(from_version)),
        ) else {
            return Ok(Upstream {
                val,
                forked_from,
                visible: false,
                latest_version: None,
                newer_versions: false,
                diff: None,
            });
        };
        let newer = latest.version > from_version;
        let diff = similar::TextDiff::from_lines(&forked.code, &latest.code)
            .unified_diff()
            .header(
                &forked_from,
                &format!("{from_owner}.{from_name}@{}", latest.version),
            )
            .to_string();
        Ok(Upstream {
            val,
            forked_from,
            visible: true,
            latest_version: Some(latest.version),
            newer_versions: newer,
            diff: Some(diff),
        })
    }

    /// Pins `user`'s unpinned references to other users' vals (reads and
    /// calls; not writes) to the versions `user` sees now; saves the
    /// rewritten vals when `apply`.
    pub fn pin(&self, user: &User, apply: bool) -> ServiceResult<PinReport> {
        let mut vals = Vec::new();
        for meta in self.store.list_vals(&user.handle, true)? {
            let Some(current) = self.store.version(&user.handle, &meta.name, None)? else {
                continue;
            };
            let code = current.code.to_string();
            let mut changes = Vec::new();
            let mut insertions = Vec::new();
            for reference in references(&code).unwrap_or_default() {
                let foreign = reference.owner != "me" && reference.owner != user.handle;
                let pinnable = matches!(
                    reference.kind,
                    ReferenceKind::Read | ReferenceKind::LibraryCall | ReferenceKind::ApiCall
                );
                if !foreign || !pinnable || reference.version.is_some() {
                    continue;
                }
                let Ok(target) = self.val(Some(user), &reference.owner, &reference.name, None)
                else {
                    continue; // not there, or not visible: nothing to pin to
                };
                let at = offset(&code, reference.line, reference.column);
                let end = at + 2 + reference.owner.len() + reference.name.len();
                insertions.push((end, target.version));
                changes.push(PinChange {
                    line: reference.line,
                    column: reference.column,
                    reference: code[at..end].to_string(),
                    pinned_to: target.version,
                });
            }
            if changes.is_empty() {
                continue;
            }
            let mut pinned = code.clone();
            for (end, version) in insertions.into_iter().rev() {
                pinned.insert_str(end, &format!("@{version}"));
            }
            let saved_version = if apply {
                Some(self.save_val(user, &meta.name, &pinned, None)?.version)
            } else {
                None
            };
            vals.push(PinnedVal {
                val: format!("{}.{}", user.handle, meta.name),
                changes,
                code: pinned,
                saved_version,
            });
        }
        Ok(PinReport {
            applied: apply,
            vals,
        })
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn offsets_count_characters_within_a_line() {
        let code = "const é = 1;\n  @bob.f(é)";
        assert_eq!(&code[super::offset(code, 2, 3)..], "@bob.f(é)");
        assert_eq!(
            &code[super::offset(code, 1, 7)..super::offset(code, 1, 8)],
            "é"
        );
    }
}

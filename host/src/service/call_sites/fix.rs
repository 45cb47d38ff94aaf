//! The fix preview: rewrites library call sites `@B.f(x)` as
//! `await api(@B.f, x)` in the caller's vals without saving (saving is a
//! normal `PUT`). A call inside a function that is not `async` makes that
//! function `async`, and the preview says its callers must now `await` it.

use super::super::forks::offset;
use super::super::{Service, ServiceError, ServiceResult};
use crate::store::User;
use std::collections::BTreeMap;
use valbox_runtime::transform::{references, ReferenceKind};

/// The call sites to rewrite, as the finder lists them.
#[derive(Debug, Clone)]
pub struct FixRequest {
    /// The call sites.
    pub call_sites: Vec<FixTarget>,
}

/// One call site to rewrite.
#[derive(Debug, Clone)]
pub struct FixTarget {
    /// The caller's val, `name` or `user.name`.
    pub val: String,
    /// The version the position is in; when given it must be the latest.
    pub version: Option<u32>,
    /// 1-based line of the `@` reference.
    pub line: u32,
    /// 1-based column.
    pub column: u32,
}

/// The answer of a fix preview.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct FixPreview {
    /// One entry per val, with its rewritten code.
    pub vals: Vec<FixedVal>,
}

/// A val's code with its call sites rewritten (not saved).
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct FixedVal {
    /// `user.name`.
    pub val: String,
    /// The version rewritten (the latest).
    pub version: u32,
    /// The whole rewritten code, ready for `PUT /v1/vals/{name}`.
    pub code: String,
    /// Each rewrite, in source order.
    pub changes: Vec<FixChange>,
    /// What else changes: functions made `async`, whose callers must
    /// now `await` them; that `api()` passes JSON only.
    pub notes: Vec<String>,
}

/// One rewritten call.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct FixChange {
    /// 1-based line of the call in the original code.
    pub line: u32,
    /// 1-based column.
    pub column: u32,
    /// The call as it was.
    pub before: String,
    /// The call as it becomes.
    pub after: String,
}

/// One edit of the code: replace `len` bytes at `at` with `text`.
struct Edit {
    at: usize,
    len: usize,
    text: String,
}

impl Service {
    /// Rewrites the listed call sites of `user`'s vals (a preview: nothing
    /// is saved).
    pub fn fix_call_sites(&self, user: &User, request: &FixRequest) -> ServiceResult<FixPreview> {
        if request.call_sites.is_empty() {
            return Err(ServiceError::BadRequest("no call sites to fix".into()));
        }
        let mut by_val: BTreeMap<String, Vec<&FixTarget>> = BTreeMap::new();
        for target in &request.call_sites {
            let name = match target.val.split_once('.') {
                Some((owner, name)) if owner.eq_ignore_ascii_case(&user.handle) => name,
                Some(_) => {
                    return Err(ServiceError::NotFound(format!(
                        "you have no val `{}`: only your own vals can be fixed (fork it first)",
                        target.val
                    )))
                }
                None => target.val.as_str(),
            };
            by_val.entry(name.to_string()).or_default().push(target);
        }
        let mut vals = Vec::new();
        for (name, targets) in by_val {
            let not_found = || ServiceError::NotFound(format!("no val @{}.{name}", user.handle));
            let val = self
                .store
                .version(&user.handle, &name, None)?
                .ok_or_else(not_found)?;
            for target in &targets {
                if target.version.is_some_and(|v| v != val.version) {
                    return Err(ServiceError::Conflict(format!(
                        "@{}.{name} is at version {} now, not {}: list the call sites again",
                        user.handle,
                        val.version,
                        target.version.unwrap_or_default()
                    )));
                }
            }
            vals.push(rewrite_val(
                &user.handle,
                &name,
                val.version,
                &val.code,
                &targets,
            )?);
        }
        Ok(FixPreview { vals })
    }
}

/// Rewrites the call sites `targets` of one val's `code`.
fn rewrite_val(
    owner: &str,
    name: &str,
    version: u32,
    code: &str,
    targets: &[&FixTarget],
) -> ServiceResult<FixedVal> {
    let calls: Vec<_> = references(code)
        .map_err(|e| {
            ServiceError::BadRequest(format!("@{owner}.{name} does not compile: {}", e.message))
        })?
        .into_iter()
        .filter(|r| r.kind == ReferenceKind::LibraryCall)
        .collect();
    let mut edits = Vec::new();
    let mut changes = Vec::new();
    let mut notes = vec![
        "api() passes JSON only: arguments and the result lose what JSON cannot carry (undefined, Map, Set, Date, …)".to_string(),
    ];
    let mut made_async = Vec::new();
    let mut targets: Vec<_> = targets.to_vec();
    targets.sort_by_key(|t| (t.line, t.column));
    targets.dedup_by_key(|t| (t.line, t.column));
    for target in targets {
        // The val changed since the call sites were listed, or the
        // position never pointed at a call: list them again.
        let no_call = || {
            ServiceError::Conflict(format!(
                "there is no library call `@user.val(…)` at {}:{} of @{owner}.{name} (version {version}): list the call sites again",
                target.line, target.column
            ))
        };
        if target.line == 0 || target.column == 0 {
            return Err(no_call());
        }
        calls
            .iter()
            .find(|r| r.line == target.line && r.column == target.column)
            .ok_or_else(no_call)?;
        let start = offset(code, target.line, target.column);
        let reference_end = reference_end(code, start).ok_or_else(no_call)?;
        let open = reference_end + code[reference_end..].find('(').ok_or_else(no_call)?;
        let close = js::matching_paren(code, open).ok_or_else(no_call)?;
        let reference = &code[start..reference_end];
        let args = code[open + 1..close].trim();
        let awaited = js::word_before(code, start).is_some_and(|(_, w)| w == "await");
        let mut call = if args.is_empty() {
            format!("api({reference})")
        } else {
            format!("api({reference}, {args})")
        };
        if !awaited {
            call = format!("await {call}");
            let after = code[close + 1..].trim_start();
            if after.starts_with(['.', '[', '(']) || after.starts_with("?.") {
                call = format!("({call})");
            }
        }
        changes.push(FixChange {
            line: target.line,
            column: target.column,
            before: code[start..=close].to_string(),
            after: call.clone(),
        });
        edits.push(Edit {
            at: start,
            len: close + 1 - start,
            text: call,
        });
        match js::enclosing_function(code, start) {
            Some(function) if !function.is_async => {
                if !made_async.contains(&function.insert_at) {
                    made_async.push(function.insert_at);
                    edits.push(Edit {
                        at: function.insert_at,
                        len: 0,
                        text: "async ".into(),
                    });
                    notes.push(format!(
                        "{} (line {}) is now `async`: it returns a Promise, so its callers must `await` it",
                        function.name,
                        line_of(code, function.insert_at)
                    ));
                }
            }
            Some(_) => {}
            None => notes.push(format!(
                "line {}: `await` at the top level of the module",
                target.line
            )),
        }
    }
    edits.sort_by_key(|edit| std::cmp::Reverse(edit.at));
    let mut code = code.to_string();
    for edit in edits {
        code.replace_range(edit.at..edit.at + edit.len, &edit.text);
    }
    Ok(FixedVal {
        val: format!("{owner}.{name}"),
        version,
        code,
        changes,
        notes,
    })
}

/// 1-based line of byte offset `at`.
fn line_of(code: &str, at: usize) -> usize {
    code[..at].matches('\n').count() + 1
}

/// The end of `@user.name[@N]` starting at `start`.
fn reference_end(code: &str, start: usize) -> Option<usize> {
    let bytes = code.as_bytes();
    if bytes.get(start) != Some(&b'@') {
        return None;
    }
    let word = |from: usize| {
        from + code[from..]
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '$'))
            .unwrap_or(code.len() - from)
    };
    let user_end = word(start + 1);
    if bytes.get(user_end) != Some(&b'.') {
        return None;
    }
    let mut end = word(user_end + 1);
    if bytes.get(end) == Some(&b'@') {
        end = word(end + 1);
    }
    Some(end)
}

/// Just enough JavaScript reading for the rewrite: matching brackets
/// (strings, templates, comments and regex literals skipped) and the
/// function a position is in.
mod js {
    /// The function around a position.
    pub(super) struct Function {
        /// Where `async ` goes to make it async.
        pub(super) insert_at: usize,
        /// Whether it is `async` already.
        pub(super) is_async: bool,
        /// How to name it in a note.
        pub(super) name: String,
    }

    /// The identifier ending just before `end` (whitespace skipped), with
    /// its start.
    pub(super) fn word_before(code: &str, end: usize) -> Option<(usize, &str)> {
        let trimmed = code[..end].trim_end();
        let start = trimmed
            .rfind(|c: char| !(c.is_alphanumeric() || c == '_' || c == '$'))
            .map_or(0, |i| {
                i + trimmed[i..].chars().next().map_or(1, char::len_utf8)
            });
        (start < trimmed.len()).then(|| (start, &trimmed[start..]))
    }

    /// Where the string, template, comment or regex literal starting at
    /// `i` ends, if one starts there; `regex_ok` says whether a `/` here
    /// starts a regex.
    fn skip_literal(bytes: &[u8], i: usize, regex_ok: bool) -> Option<usize> {
        match bytes[i] {
            q @ (b'\'' | b'"') => {
                let mut j = i + 1;
                while j < bytes.len() && bytes[j] != q && bytes[j] != b'\n' {
                    j += if bytes[j] == b'\\' { 2 } else { 1 };
                }
                Some((j + 1).min(bytes.len()))
            }
            b'`' => {
                let mut j = i + 1;
                while j < bytes.len() && bytes[j] != b'`' {
                    if bytes[j] == b'\\' {
                        j += 2;
                    } else if bytes[j] == b'$' && bytes.get(j + 1) == Some(&b'{') {
                        j = matching(bytes, j + 1)? + 1;
                    } else {
                        j += 1;
                    }
                }
                Some((j + 1).min(bytes.len()))
            }
            b'/' if bytes.get(i + 1) == Some(&b'/') => Some(
                bytes[i..]
                    .iter()
                    .position(|&b| b == b'\n')
                    .map_or(bytes.len(), |n| i + n),
            ),
            b'/' if bytes.get(i + 1) == Some(&b'*') => Some(
                bytes[i + 2..]
                    .windows(2)
                    .position(|w| w == b"*/")
                    .map_or(bytes.len(), |n| i + 2 + n + 2),
            ),
            b'/' if regex_ok => {
                let mut j = i + 1;
                let mut class = false;
                while j < bytes.len() && bytes[j] != b'\n' {
                    match bytes[j] {
                        b'\\' => j += 1,
                        b'[' => class = true,
                        b']' => class = false,
                        b'/' if !class => break,
                        _ => {}
                    }
                    j += 1;
                }
                Some((j + 1).min(bytes.len()))
            }
            _ => None,
        }
    }

    /// Whether a `/` after `previous` (the last significant byte) starts a regex.
    fn regex_after(previous: Option<u8>) -> bool {
        match previous {
            None => true,
            Some(b) => {
                !(b.is_ascii_alphanumeric() || b == b'_' || b == b'$' || b == b')' || b == b']')
            }
        }
    }

    /// The bracket closing the one at `open` (`(`, `[` or `{`).
    fn matching(bytes: &[u8], open: usize) -> Option<usize> {
        let mut depth = 0usize;
        let mut i = open;
        let mut previous = None;
        while i < bytes.len() {
            if let Some(end) = skip_literal(bytes, i, regex_after(previous)) {
                if bytes[i] != b'/' || bytes.get(i + 1).is_some_and(|b| *b != b'/' && *b != b'*') {
                    previous = Some(b'"');
                }
                i = end;
                continue;
            }
            let b = bytes[i];
            match b {
                b'(' | b'[' | b'{' => depth += 1,
                b')' | b']' | b'}' => {
                    depth -= 1;
                    if depth == 0 {
                        return Some(i);
                    }
                }
                _ => {}
            }
            if !b.is_ascii_whitespace() {
                previous = Some(b);
            }
            i += 1;
        }
        None
    }

    /// The `)` closing the `(` at `open`.
    pub(super) fn matching_paren(code: &str, open: usize) -> Option<usize> {
        matching(code.as_bytes(), open)
    }

    /// The `(` opening the `)` at `close`, counting brackets backwards
    /// (parameter lists hold no unbalanced brackets in strings, as a rule).
    fn opening_paren(code: &str, close: usize) -> Option<usize> {
        let mut depth = 0usize;
        for (i, b) in code.as_bytes()[..=close].iter().enumerate().rev() {
            match b {
                b')' => depth += 1,
                b'(' => {
                    depth -= 1;
                    if depth == 0 {
                        return Some(i);
                    }
                }
                _ => {}
            }
        }
        None
    }

    /// What the `{` at `at` opens, when it opens a function body.
    fn function_opened_at(code: &str, at: usize) -> Option<Function> {
        let before = code[..at].trim_end();
        if let Some(params) = before.strip_suffix("=>") {
            return arrow(code, params.trim_end().len());
        }
        if !before.ends_with(')') {
            return None;
        }
        let open = opening_paren(code, before.len() - 1)?;
        let (word_start, word) = word_before(code, open)?;
        if ["if", "for", "while", "switch", "catch", "with"].contains(&word) {
            return None;
        }
        if word == "function" {
            return Some(function_keyword(code, word_start, "a function".into()));
        }
        let star_trimmed = code[..word_start].trim_end().trim_end_matches('*');
        if let Some((keyword_start, "function")) = word_before(code, star_trimmed.len()) {
            return Some(function_keyword(
                code,
                keyword_start,
                format!("function `{word}`"),
            ));
        }
        // A method: `name(…) {`, `async name(…) {`.
        let is_async = word_before(code, word_start).is_some_and(|(_, w)| w == "async");
        Some(Function {
            insert_at: word_start,
            is_async,
            name: format!("method `{word}`"),
        })
    }

    fn function_keyword(code: &str, keyword_start: usize, name: String) -> Function {
        let is_async = word_before(code, keyword_start).is_some_and(|(_, w)| w == "async");
        Function {
            insert_at: keyword_start,
            is_async,
            name,
        }
    }

    /// The arrow function whose parameters end at `params_end` (before `=>`).
    fn arrow(code: &str, params_end: usize) -> Option<Function> {
        let params_start = if code[..params_end].ends_with(')') {
            opening_paren(code, params_end - 1)?
        } else {
            word_before(code, params_end)?.0
        };
        let is_async = word_before(code, params_start).is_some_and(|(_, w)| w == "async");
        let name = code[..params_start]
            .trim_end()
            .strip_suffix('=')
            .and_then(|left| word_before(code, left.len()))
            .map_or("an arrow function".into(), |(_, w)| {
                format!("function `{w}`")
            });
        Some(Function {
            insert_at: params_start,
            is_async,
            name,
        })
    }

    /// The innermost function around byte `at` (`None`: the module's top level).
    pub(super) fn enclosing_function(code: &str, at: usize) -> Option<Function> {
        let bytes = code.as_bytes();
        // One entry per open `{`: the function it opened, if any.
        let mut braces: Vec<Option<Function>> = Vec::new();
        // An arrow with an expression body, and the brace depth it is at.
        let mut arrow_body: Option<(usize, Function)> = None;
        let mut i = 0;
        let mut previous = None;
        while i < at {
            if let Some(end) = skip_literal(bytes, i, regex_after(previous)) {
                previous = Some(b'"');
                i = end;
                continue;
            }
            let b = bytes[i];
            match b {
                b'{' => braces.push(function_opened_at(code, i)),
                b'}' => {
                    braces.pop();
                    if arrow_body
                        .as_ref()
                        .is_some_and(|(depth, _)| *depth > braces.len())
                    {
                        arrow_body = None;
                    }
                }
                b';' if arrow_body
                    .as_ref()
                    .is_some_and(|(depth, _)| *depth == braces.len()) =>
                {
                    arrow_body = None;
                }
                b'>' if i > 0 && bytes[i - 1] == b'=' => {
                    let after = code[i + 1..].trim_start();
                    if !after.starts_with('{') {
                        if let Some(function) = arrow(code, code[..i - 1].trim_end().len()) {
                            arrow_body = Some((braces.len(), function));
                        }
                    }
                }
                _ => {}
            }
            if !b.is_ascii_whitespace() {
                previous = Some(b);
            }
            i += 1;
        }
        if let Some((_, function)) = arrow_body {
            return Some(function);
        }
        braces.into_iter().rev().flatten().next()
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        fn around(code: &str, marker: &str) -> Option<(String, bool, String)> {
            let at = code.find(marker).unwrap();
            enclosing_function(code, at).map(|f| {
                (
                    code[f.insert_at..].chars().take(8).collect(),
                    f.is_async,
                    f.name,
                )
            })
        }

        #[test]
        fn finds_the_function_a_call_is_in() {
            let code = "export function useGpt(q) { if (q) { return HERE } }";
            assert_eq!(
                around(code, "HERE"),
                Some(("function".into(), false, "function `useGpt`".into()))
            );
            let code = "export async function f() { const x = { a: 1 }; HERE }";
            assert_eq!(around(code, "HERE").map(|f| f.1), Some(true));
            let code = "const g = (a, b) => { return `${a}` + HERE }";
            assert_eq!(
                around(code, "HERE"),
                Some(("(a, b) =".into(), false, "function `g`".into()))
            );
            let code = "const h = async x => HERE;";
            assert_eq!(around(code, "HERE").map(|f| f.1), Some(true));
            let code = "class A { run(x) { for (;;) { HERE } } }";
            assert_eq!(
                around(code, "HERE").map(|f| f.2),
                Some("method `run`".into())
            );
            let code = "const s = '{'; /* { */ HERE";
            assert!(around(code, "HERE").is_none());
            let code = "function f() { return 1 }\nconst v = HERE";
            assert!(around(code, "HERE").is_none());
        }

        #[test]
        fn matches_brackets_past_strings_templates_and_regexes() {
            let code = "f(a, ')', `${ g(\")\") }`, /\\)/.test(x), [1, (2)]) + 1";
            assert_eq!(matching_paren(code, 1), code.rfind(")"));
        }
    }
}

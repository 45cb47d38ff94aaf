//! The `@` reference compile step: rewrites `@user.name`, `@me.secrets.key`,
//! `@user.name(...)`, `@user.name = v`, `@user.name@3` and `api(@user.name, ...)`
//! into calls on the guest's `__vt` runtime. A small JavaScript lexer keeps
//! strings, template text (with nested `${}`), comments and regex literals
//! untouched. Rewrites never add or remove lines, so line numbers stay right.
//!
//! | source | becomes |
//! |---|---|
//! | `@me.secrets.key` | `__vt.secret("me","key")` |
//! | `@bob.f(1)` | `__vt.call("bob","f",null,1)` |
//! | `@bob.f@3` | `__vt.ref("bob","f",3).value` |
//! | `@me.x = 1` | `__vt.ref("me","x",null).value = 1` |
//! | `api(@bob.f, 1)` | `api(__vt.ref("bob","f",null), 1)` |

use crate::source_map::{ColumnMap, Rewrite};
use std::fmt::Write;

/// A reference the transform could not read, with its 1-based position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransformError {
    /// What is wrong.
    pub message: String,
    /// 1-based line.
    pub line: u32,
    /// 1-based column.
    pub column: u32,
}

/// What came before the current position, for telling a regex from a division.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Previous {
    /// Start, an operator or punctuation after which an expression starts.
    ExpressionStart,
    /// An identifier, literal, `)` or `]`: a `/` here divides.
    Value,
    /// The identifier `api` (for `api(@user.val)`).
    Api,
    /// `(` right after `api`.
    ApiParen,
}

/// Keywords after which `/` starts a regex rather than dividing.
const EXPRESSION_KEYWORDS: &[&str] = &[
    "return",
    "typeof",
    "instanceof",
    "in",
    "of",
    "new",
    "delete",
    "void",
    "throw",
    "case",
    "do",
    "else",
    "yield",
    "await",
];

/// What a reference in the source does with what it names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReferenceKind {
    /// `@user.val` read as a value.
    Read,
    /// `@user.val(...)`: a library call.
    LibraryCall,
    /// `api(@user.val, ...)`: an API-mode call.
    ApiCall,
    /// `@user.val = v`.
    Write,
    /// `@user.secrets.key`.
    SecretRead,
}

impl ReferenceKind {
    /// The kind's name in the API (`read`, `library_call`, `api_call`, `write`, `secret_read`).
    pub fn as_str(self) -> &'static str {
        match self {
            ReferenceKind::Read => "read",
            ReferenceKind::LibraryCall => "library_call",
            ReferenceKind::ApiCall => "api_call",
            ReferenceKind::Write => "write",
            ReferenceKind::SecretRead => "secret_read",
        }
    }
}

/// One `@` reference as written in a val's source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceReference {
    /// What the code does with it.
    pub kind: ReferenceKind,
    /// The handle as written, lower-cased (`me` for the author).
    pub owner: String,
    /// The val's name, or the secret's key.
    pub name: String,
    /// The pinned version, if any.
    pub version: Option<u32>,
    /// 1-based line.
    pub line: u32,
    /// 1-based column.
    pub column: u32,
}

/// Something in a val's source the upgrade tooling looks at besides its
/// `@` references (see [`scan`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Found {
    /// An `@` reference.
    Reference(SourceReference),
    /// `console.email(` at this 1-based line and column.
    Email {
        /// 1-based line.
        line: u32,
        /// 1-based column.
        column: u32,
    },
    /// `api(` whose first argument is not an `@` reference (a computed
    /// target: what it calls cannot be told from the text).
    ComputedApi {
        /// 1-based line.
        line: u32,
        /// 1-based column of the argument.
        column: u32,
    },
}

/// Rewrites every `@` reference in `source`.
pub fn transform(source: &str) -> Result<String, TransformError> {
    rewrite(source, &mut |_| {}, &mut ColumnMap::default())
}

/// Rewrites every `@` reference in `source`, with the map of what moved.
pub(crate) fn transform_mapped(source: &str) -> Result<(String, ColumnMap), TransformError> {
    let mut map = ColumnMap::default();
    let out = rewrite(source, &mut |_| {}, &mut map)?;
    Ok((out, map))
}

/// Every `@` reference in `source`, in order, as [`transform`] reads them.
pub fn references(source: &str) -> Result<Vec<SourceReference>, TransformError> {
    let mut found = Vec::new();
    rewrite(
        source,
        &mut |seen| {
            if let Found::Reference(reference) = seen {
                found.push(reference)
            }
        },
        &mut ColumnMap::default(),
    )?;
    Ok(found)
}

/// The references of `source`, its `console.email(` calls and its
/// `api()` calls with computed targets, in source order.
pub fn scan(source: &str) -> Result<Vec<Found>, TransformError> {
    let mut found = Vec::new();
    rewrite(
        source,
        &mut |seen| found.push(seen),
        &mut ColumnMap::default(),
    )?;
    Ok(found)
}

/// Rewrites `source`, telling `seen` of each reference (and of the other
/// sites of [`Found`]).
fn rewrite(
    source: &str,
    seen: &mut dyn FnMut(Found),
    map: &mut ColumnMap,
) -> Result<String, TransformError> {
    let bytes = source.as_bytes();
    let mut out = String::with_capacity(source.len() + 64);
    let mut i = 0;
    let mut previous = Previous::ExpressionStart;
    // One entry per open `{` in code: true when it opened a template `${`.
    let mut braces: Vec<bool> = Vec::new();
    let position = |at: usize| -> (u32, u32) {
        let before = &source[..at];
        let line = before.matches('\n').count() as u32 + 1;
        let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) as u32 + 1;
        (line, column)
    };
    let error = |at: usize, message: String| {
        let (line, column) = position(at);
        TransformError {
            message,
            line,
            column,
        }
    };
    while i < bytes.len() {
        let c = bytes[i];
        if previous == Previous::ApiParen && !c.is_ascii_whitespace() && c != b'@' && c != b')' {
            let (line, column) = position(i);
            seen(Found::ComputedApi { line, column });
        }
        match c {
            b'\'' | b'"' => {
                let end = skip_string(bytes, i, c)
                    .ok_or_else(|| error(i, "unterminated string".into()))?;
                out.push_str(&source[i..end]);
                i = end;
                previous = Previous::Value;
            }
            b'`' => {
                let (end, opened) = skip_template(bytes, i + 1)
                    .ok_or_else(|| error(i, "unterminated template literal".into()))?;
                out.push_str(&source[i..end]);
                i = end;
                if opened {
                    braces.push(true);
                    previous = Previous::ExpressionStart;
                } else {
                    previous = Previous::Value;
                }
            }
            b'}' if braces.last() == Some(&true) => {
                braces.pop();
                let (end, opened) = skip_template(bytes, i + 1)
                    .ok_or_else(|| error(i, "unterminated template literal".into()))?;
                out.push_str(&source[i..end]);
                i = end;
                if opened {
                    braces.push(true);
                    previous = Previous::ExpressionStart;
                } else {
                    previous = Previous::Value;
                }
            }
            b'/' if bytes.get(i + 1) == Some(&b'/') => {
                let end = source[i..].find('\n').map_or(bytes.len(), |n| i + n);
                out.push_str(&source[i..end]);
                i = end;
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                let end = source[i + 2..]
                    .find("*/")
                    .map(|n| i + 2 + n + 2)
                    .ok_or_else(|| error(i, "unterminated comment".into()))?;
                out.push_str(&source[i..end]);
                i = end;
            }
            b'/' if previous != Previous::Value => {
                let end = skip_regex(bytes, i)
                    .ok_or_else(|| error(i, "unterminated regular expression".into()))?;
                out.push_str(&source[i..end]);
                i = end;
                previous = Previous::Value;
            }
            b'@' => {
                let (reference, end) =
                    read_reference(source, i).map_err(|(at, message)| error(at, message))?;
                let previous_was_api_paren = previous == Previous::ApiParen;
                let rest = source[end..].trim_start_matches([' ', '\t']);
                let (line, column) = position(i);
                let mut note = |kind, owner: &str, name: &str, version| {
                    seen(Found::Reference(SourceReference {
                        kind,
                        owner: owner.to_string(),
                        name: name.to_string(),
                        version,
                        line,
                        column,
                    }))
                };
                let at = i;
                let written_from = out.len();
                i = end;
                previous = Previous::Value;
                match reference {
                    Reference::Secret { owner, key } => {
                        note(ReferenceKind::SecretRead, &owner, key, None);
                        write!(out, "__vt.secret({owner:?},{key:?})").unwrap();
                    }
                    Reference::Val {
                        owner,
                        name,
                        version,
                    } => {
                        let kind = if previous_was_api_paren {
                            ReferenceKind::ApiCall
                        } else if rest.starts_with('(') {
                            ReferenceKind::LibraryCall
                        } else if rest.starts_with('=')
                            && !rest.starts_with("==")
                            && !rest.starts_with("=>")
                        {
                            ReferenceKind::Write
                        } else {
                            ReferenceKind::Read
                        };
                        note(kind, &owner, name, version);
                        let version = version.map_or("null".to_string(), |v| v.to_string());
                        if previous_was_api_paren {
                            // `api(@user.val, ...)` takes the reference itself.
                            write!(out, "__vt.ref({owner:?},{name:?},{version})").unwrap();
                        } else if rest.starts_with('(') {
                            // A call needs no reference object: the arguments
                            // follow the reference's own (a trailing comma
                            // is valid when there are none).
                            write!(out, "__vt.call({owner:?},{name:?},{version},").unwrap();
                            i = source.len() - rest.len() + 1;
                            previous = Previous::ExpressionStart;
                        } else {
                            write!(out, "__vt.ref({owner:?},{name:?},{version}).value").unwrap();
                        }
                    }
                }
                let old_width = source[at..i].chars().count() as u32;
                let new_start = out[..written_from]
                    .rsplit('\n')
                    .next()
                    .map_or(0, |l| l.chars().count()) as u32
                    + 1;
                map.rewrites.push(Rewrite {
                    line,
                    new_start,
                    new_end: new_start + (out.len() - written_from) as u32,
                    old_start: column,
                    old_end: column + old_width,
                });
            }
            c if c == b'_' || c == b'$' || c.is_ascii_alphanumeric() || c >= 0x80 => {
                let end = i + source[i..]
                    .find(|ch: char| !(ch == '_' || ch == '$' || ch.is_alphanumeric()))
                    .unwrap_or(source.len() - i);
                // A non-ASCII character that is not part of a name (say, an
                // emoji outside a string) is copied as it is.
                let end = if end == i {
                    i + source[i..].chars().next().map_or(1, char::len_utf8)
                } else {
                    end
                };
                let word = &source[i..end];
                if word == "email" && is_console_email(source, i, end) {
                    let (line, column) = position(i);
                    seen(Found::Email { line, column });
                }
                out.push_str(word);
                i = end;
                previous = if word == "api" {
                    Previous::Api
                } else if EXPRESSION_KEYWORDS.contains(&word) {
                    Previous::ExpressionStart
                } else {
                    Previous::Value
                };
            }
            c if c.is_ascii_whitespace() => {
                out.push(c as char);
                i += 1;
            }
            _ => {
                match c {
                    b'{' => braces.push(false),
                    b'}' => {
                        braces.pop();
                    }
                    _ => {}
                }
                previous = match c {
                    b')' | b']' | b'}' => Previous::Value,
                    b'(' if previous == Previous::Api => Previous::ApiParen,
                    _ => Previous::ExpressionStart,
                };
                out.push(c as char);
                i += 1;
            }
        }
    }
    Ok(out)
}

/// Whether `email` at `start..end` is `console.email(`.
fn is_console_email(source: &str, start: usize, end: usize) -> bool {
    let before = source[..start].trim_end();
    let called = source[end..].trim_start().starts_with('(');
    called
        && before.strip_suffix('.').is_some_and(|object| {
            let object = object.trim_end();
            object.ends_with("console")
                && !object[..object.len() - "console".len()]
                    .ends_with(|c: char| c == '_' || c == '$' || c.is_alphanumeric())
        })
}

enum Reference<'a> {
    Secret {
        owner: String,
        key: &'a str,
    },
    Val {
        owner: String,
        name: &'a str,
        version: Option<u32>,
    },
}

/// Reads `@user.name[@N]` or `@user.secrets.key` starting at the `@`.
fn read_reference(source: &str, at: usize) -> Result<(Reference<'_>, usize), (usize, String)> {
    let (user, mut end) = identifier(source, at + 1).ok_or((
        at,
        "`@` must be followed by a user handle, like `@me.name`".to_string(),
    ))?;
    let owner = user.to_ascii_lowercase();
    if !valid_handle(&owner) {
        return Err((at, format!("`@{user}` is not a valid user handle")));
    }
    if source.as_bytes().get(end) != Some(&b'.') {
        return Err((end, format!("expected `.name` after `@{user}`")));
    }
    let (name, name_end) = identifier(source, end + 1)
        .ok_or((end + 1, format!("expected a val name after `@{user}.`")))?;
    end = name_end;
    if name == "secrets" {
        if source.as_bytes().get(end) != Some(&b'.') {
            return Err((end, format!("expected `.key` after `@{user}.secrets`")));
        }
        let (key, key_end) = identifier(source, end + 1).ok_or((
            end + 1,
            format!("expected a secret name after `@{user}.secrets.`"),
        ))?;
        return Ok((Reference::Secret { owner, key }, key_end));
    }
    let mut version = None;
    if source.as_bytes().get(end) == Some(&b'@') {
        let digits = source[end + 1..]
            .bytes()
            .take_while(u8::is_ascii_digit)
            .count();
        let pinned = source[end + 1..end + 1 + digits]
            .parse::<u32>()
            .ok()
            .filter(|v| *v > 0)
            .ok_or((
                end,
                format!("expected a version number after `@{user}.{name}@`"),
            ))?;
        version = Some(pinned);
        end += 1 + digits;
    }
    Ok((
        Reference::Val {
            owner,
            name,
            version,
        },
        end,
    ))
}

fn identifier(source: &str, start: usize) -> Option<(&str, usize)> {
    let rest = source.get(start..)?;
    let first = rest.chars().next()?;
    if !(first.is_ascii_alphabetic() || first == '_' || first == '$') {
        return None;
    }
    let len = rest
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '$'))
        .unwrap_or(rest.len());
    Some((&rest[..len], start + len))
}

/// `[a-z][a-z0-9_]{0,31}` (SPEC §1), after lower-casing.
pub fn valid_handle(handle: &str) -> bool {
    let bytes = handle.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 32
        && bytes[0].is_ascii_lowercase()
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'_')
}

fn skip_string(bytes: &[u8], start: usize, quote: u8) -> Option<usize> {
    let mut i = start + 1;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'\n' => return None,
            c if c == quote => return Some(i + 1),
            _ => i += 1,
        }
    }
    None
}

/// Skips template text from `start` (just after a backtick or a `}` closing
/// `${`). Returns where the text ends and whether it ended by opening `${`.
fn skip_template(bytes: &[u8], start: usize) -> Option<(usize, bool)> {
    let mut i = start;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'`' => return Some((i + 1, false)),
            b'$' if bytes.get(i + 1) == Some(&b'{') => return Some((i + 2, true)),
            _ => i += 1,
        }
    }
    None
}

fn skip_regex(bytes: &[u8], start: usize) -> Option<usize> {
    let mut i = start + 1;
    let mut in_class = false;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'\n' => return None,
            b'[' => {
                in_class = true;
                i += 1
            }
            b']' => {
                in_class = false;
                i += 1
            }
            b'/' if !in_class => {
                i += 1;
                while i < bytes.len() && bytes[i].is_ascii_alphabetic() {
                    i += 1;
                }
                return Some(i);
            }
            _ => i += 1,
        }
    }
    None
}

#[cfg(test)]
mod tests {
    #[test]
    fn references_are_listed_with_what_the_code_does_with_them() {
        let source = "const k = @me.secrets.openai;\n\
                      const c = @me.config; @bob.gpt3(\"hi\");\n\
                      await api(@Bob.gpt3@2, 1); @me.count = 1; if (@me.count == 2) {}\n\
                      // @not.aReference\n\
                      const s = \"@nor.this\";";
        let found: Vec<_> = super::references(source)
            .unwrap()
            .into_iter()
            .map(|r| {
                (
                    r.kind.as_str(),
                    r.owner,
                    r.name,
                    r.version,
                    r.line,
                    r.column,
                )
            })
            .collect();
        let expect = |kind: &'static str, owner: &str, name: &str, version, line, column| {
            (
                kind,
                owner.to_string(),
                name.to_string(),
                version,
                line,
                column,
            )
        };
        assert_eq!(
            found,
            vec![
                expect("secret_read", "me", "openai", None, 1, 11),
                expect("read", "me", "config", None, 2, 11),
                expect("library_call", "bob", "gpt3", None, 2, 23),
                expect("api_call", "bob", "gpt3", Some(2), 3, 11),
                expect("write", "me", "count", None, 3, 28),
                expect("read", "me", "count", None, 3, 47),
            ]
        );
    }

    use super::*;

    fn t(source: &str) -> String {
        transform(source).unwrap()
    }

    #[test]
    fn rewrites_each_kind_of_reference() {
        assert_eq!(
            t("@me.secrets.openAiKey"),
            r#"__vt.secret("me","openAiKey")"#
        );
        assert_eq!(t("@Bob.add(1, 2)"), r#"__vt.call("bob","add",null,1, 2)"#);
        assert_eq!(t("@bob.add (1)"), r#"__vt.call("bob","add",null,1)"#);
        assert_eq!(
            t("x = @bob.config@3.port"),
            r#"x = __vt.ref("bob","config",3).value.port"#
        );
        assert_eq!(
            t("@me.count = 1"),
            r#"__vt.ref("me","count",null).value = 1"#
        );
        assert_eq!(
            t("await api(@bob.add, 1)"),
            r#"await api(__vt.ref("bob","add",null), 1)"#
        );
        assert_eq!(t("api( @bob.add )"), r#"api( __vt.ref("bob","add",null) )"#);
        assert_eq!(t("@bob.now()"), r#"__vt.call("bob","now",null,)"#);
        assert_eq!(
            t("@bob.f@2(@bob.g(1), /a/)"),
            r#"__vt.call("bob","f",2,__vt.call("bob","g",null,1), /a/)"#
        );
    }

    #[test]
    fn leaves_strings_comments_templates_and_regexes_alone() {
        for source in [
            r#"const s = "mail me @ bob@example.com";"#,
            "const s = 'it\\'s @me.secrets.x';",
            "// @me.secrets.x\nlet a = 1;",
            "/* @me.secrets.x */ let a = 1;",
            "const t = `@me.secrets.x`;",
            "const r = /@me\\.x/g.test(s);",
            "const r = [/@[a-z]+/];",
            "if (a) return /@x/;",
            "const half = a / 2 / b;",
        ] {
            assert_eq!(t(source), source);
        }
    }

    #[test]
    fn rewrites_inside_template_substitutions_but_not_template_text() {
        assert_eq!(
            t("`key @me.x: ${@me.secrets.k + `${@bob.v}`} done`"),
            r#"`key @me.x: ${__vt.secret("me","k") + `${__vt.ref("bob","v",null).value}`} done`"#
        );
    }

    #[test]
    fn object_braces_inside_substitutions_do_not_end_them() {
        assert_eq!(
            t("`${ {a: 1}.a } @x`; @bob.v"),
            r#"`${ {a: 1}.a } @x`; __vt.ref("bob","v",null).value"#
        );
    }

    #[test]
    fn reports_bad_references_with_their_position() {
        let error = transform("let a = 1;\nlet b = @;").unwrap_err();
        assert_eq!((error.line, error.column), (2, 9));
        let error = transform("@bob").unwrap_err();
        assert!(error.message.contains(".name"), "{}", error.message);
        let error = transform("@me.secrets").unwrap_err();
        assert!(error.message.contains(".key"), "{}", error.message);
        let error = transform("@bob.f@x").unwrap_err();
        assert!(error.message.contains("version"), "{}", error.message);
        let error = transform("@9lives.f").unwrap_err();
        assert!(error.message.contains("@"), "{}", error.message);
        assert!(transform("const s = 'open").is_err());
    }

    #[test]
    fn copies_non_ascii_text_outside_strings() {
        assert_eq!(
            t("let café = 1; // 👋\nconst ü = café; 👋"),
            "let café = 1; // 👋\nconst ü = café; 👋"
        );
    }

    #[test]
    fn keeps_line_numbers() {
        let source = "a\n@bob.f()\n/* x\n y */ @me.secrets.k\n";
        assert_eq!(t(source).lines().count(), source.lines().count());
    }

    #[test]
    fn scan_finds_emails_and_computed_api_targets_outside_strings() {
        use super::Found;
        let source = "console.email('a', 'b');\n\
                      const f = 'console.email(x)'; // console.email(y)\n\
                      myconsole.email(1); console . email (2);\n\
                      await api(target, 1); await api(@bob.f); api();";
        let other: Vec<_> = super::scan(source)
            .unwrap()
            .into_iter()
            .filter(|found| !matches!(found, Found::Reference(_)))
            .collect();
        assert_eq!(
            other,
            [
                Found::Email { line: 1, column: 9 },
                Found::Email {
                    line: 3,
                    column: 31
                },
                Found::ComputedApi {
                    line: 4,
                    column: 11
                },
            ]
        );
    }
}

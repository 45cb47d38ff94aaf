//! Reading what a request asks for out of its body, query string and path:
//! the request bodies' types and pure functions (no I/O), so
//! `fuzz/fuzz_targets/request_body.rs` can run them on arbitrary input.
//! Errors are messages for a 400 answer.

use serde::Deserialize;
use serde_json::Value;

/// `POST /v1/eval`.
#[derive(Deserialize)]
#[cfg_attr(not(fuzzing), derive(utoipa::ToSchema))]
pub struct EvalRequest {
    /// An expression, or the body of an async function.
    pub code: String,
    /// Its `arguments`.
    #[serde(default)]
    pub args: Option<Vec<Value>>,
}

/// `POST /v1/run`: the arguments, as a bare array or in an object.
#[derive(Deserialize)]
#[cfg_attr(not(fuzzing), derive(utoipa::ToSchema))]
#[serde(untagged)]
pub enum RunRequest {
    /// The arguments.
    Bare(Vec<Value>),
    /// `{"args": [...]}` (no `args`: none).
    Object(RunArgs),
}

/// `{"args": [...]}`.
#[derive(Deserialize)]
#[cfg_attr(not(fuzzing), derive(utoipa::ToSchema))]
pub struct RunArgs {
    /// The arguments.
    #[serde(default)]
    pub args: Option<Vec<Value>>,
}

/// A call's arguments (none: no arguments) as JSON text.
pub fn args_json(args: Option<Vec<Value>>) -> String {
    serde_json::to_string(&args.unwrap_or_default()).unwrap_or_else(|_| "[]".into())
}

/// A call's arguments: must be a JSON array; returned as its JSON text.
pub fn args_text(args: &Value) -> Result<String, String> {
    if args.is_array() {
        Ok(args.to_string())
    } else {
        Err("`args` must be a JSON array".into())
    }
}

/// `POST /v1/run` bodies: empty or `null` (no arguments), a bare array, or
/// `{"args": [...]}` (no `args`: none); the arguments as JSON text.
pub fn run_args_from_body(body: &[u8]) -> Result<String, String> {
    let text = body.trim_ascii();
    if text.is_empty() || text == b"null" {
        return Ok("[]".into());
    }
    match serde_json::from_slice::<RunRequest>(text) {
        Ok(RunRequest::Bare(args)) => Ok(args_json(Some(args))),
        Ok(RunRequest::Object(object)) => Ok(args_json(object.args)),
        Err(e) if e.is_data() => Err(format!(
            "the body must be {{\"args\": [...]}} or a JSON array: {e}"
        )),
        Err(e) => Err(format!("the body is not valid JSON: {e}")),
    }
}

/// `GET /v1/run?args=[...]` (no `args`: none).
pub fn run_args_from_query(args: Option<&str>) -> Result<String, String> {
    match args {
        None => Ok("[]".into()),
        Some(text) => {
            let args: Value =
                serde_json::from_str(text).map_err(|e| format!("`args` is not valid JSON: {e}"))?;
            args_text(&args)
        }
    }
}

/// A string field of a JSON object body.
pub fn string_field<'a>(body: &'a Value, name: &str) -> Result<&'a str, String> {
    match body.get(name) {
        Some(Value::String(text)) => Ok(text),
        Some(_) => Err(format!("`{name}` must be a string")),
        None => Err(format!("the body needs `{name}`")),
    }
}

/// Splits `user.val` (or `@user.val`) from a path.
pub fn split_target(target: &str) -> Result<(String, String), String> {
    let target = target.strip_prefix('@').unwrap_or(target);
    match target.split_once('.') {
        Some((user, name)) if !user.is_empty() && !name.is_empty() => {
            Ok((user.to_string(), name.to_string()))
        }
        _ => Err(format!("`{target}` is not of the form user.val")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_bodies_are_arrays_or_args_objects() {
        assert_eq!(run_args_from_body(b"[1, 2]").unwrap(), "[1,2]");
        assert_eq!(
            run_args_from_body(br#"{"args": ["a"]}"#).unwrap(),
            "[\"a\"]"
        );
        assert_eq!(run_args_from_body(b"{}").unwrap(), "[]");
        assert_eq!(run_args_from_body(b"  ").unwrap(), "[]");
        assert_eq!(run_args_from_body(b"null").unwrap(), "[]");
        assert!(run_args_from_body(br#"{"args": 1}"#).is_err());
        assert!(run_args_from_body(br#""x""#).is_err());
        assert!(run_args_from_body(b"[1,").is_err());
        assert_eq!(run_args_from_query(Some("[true]")).unwrap(), "[true]");
        assert!(run_args_from_query(Some("[")).is_err());
        assert!(run_args_from_query(Some("{}")).is_err());
    }

    #[test]
    fn eval_bodies_need_code_and_optional_array_args() {
        let parse = |text: &str| serde_json::from_str::<EvalRequest>(text);
        let body = parse(r#"{"code": "1"}"#).unwrap();
        assert_eq!(
            (body.code.as_str(), args_json(body.args).as_str()),
            ("1", "[]")
        );
        assert_eq!(
            args_json(parse(r#"{"code": "1", "args": [2]}"#).unwrap().args),
            "[2]"
        );
        assert!(parse(r#"{"code": 1}"#).is_err());
        assert!(parse(r#"{"args": []}"#).is_err());
        assert!(parse(r#"{"code": "1", "args": {}}"#).is_err());
    }

    #[test]
    fn targets_are_user_dot_val() {
        assert_eq!(
            split_target("@bob.add").unwrap(),
            ("bob".into(), "add".into())
        );
        assert!(split_target("bob").is_err());
        assert!(split_target(".add").is_err());
        assert!(split_target("bob.").is_err());
    }
}

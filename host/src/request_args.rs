//! Reading what a request asks for out of its body, query string and path:
//! pure functions (no I/O), so `fuzz/fuzz_targets/request_body.rs` can run
//! them on arbitrary input. Errors are messages for a 400 answer.

use serde_json::Value;

/// A call's arguments: must be a JSON array; returned as its JSON text.
pub fn args_text(args: &Value) -> Result<String, String> {
    if args.is_array() {
        Ok(args.to_string())
    } else {
        Err("`args` must be a JSON array".into())
    }
}

/// `POST /v1/run` bodies: a bare array, or `{"args": [...]}` (no `args`: none).
pub fn run_args_from_body(body: &Value) -> Result<String, String> {
    match body {
        Value::Array(_) => args_text(body),
        Value::Object(object) => object
            .get("args")
            .map_or_else(|| Ok("[]".into()), args_text),
        _ => Err("the body must be {\"args\": [...]} or a JSON array".into()),
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

/// `POST /v1/eval` bodies: `{"code": "...", "args": [...]}`; returns the code and the arguments.
pub fn eval_request(body: &Value) -> Result<(String, String), String> {
    let code = string_field(body, "code")?.to_string();
    let args = match body.get("args") {
        None | Some(Value::Null) => "[]".to_string(),
        Some(args) => args_text(args)?,
    };
    Ok((code, args))
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
    use serde_json::json;

    #[test]
    fn run_bodies_are_arrays_or_args_objects() {
        assert_eq!(run_args_from_body(&json!([1, 2])).unwrap(), "[1,2]");
        assert_eq!(
            run_args_from_body(&json!({"args": ["a"]})).unwrap(),
            "[\"a\"]"
        );
        assert_eq!(run_args_from_body(&json!({})).unwrap(), "[]");
        assert!(run_args_from_body(&json!({"args": 1})).is_err());
        assert!(run_args_from_body(&json!("x")).is_err());
        assert_eq!(run_args_from_query(Some("[true]")).unwrap(), "[true]");
        assert!(run_args_from_query(Some("[")).is_err());
        assert!(run_args_from_query(Some("{}")).is_err());
    }

    #[test]
    fn eval_bodies_need_code_and_optional_array_args() {
        assert_eq!(
            eval_request(&json!({"code": "1"})).unwrap(),
            ("1".into(), "[]".into())
        );
        assert_eq!(
            eval_request(&json!({"code": "1", "args": [2]})).unwrap().1,
            "[2]"
        );
        assert!(eval_request(&json!({"code": 1})).is_err());
        assert!(eval_request(&json!({"args": []})).is_err());
        assert!(eval_request(&json!({"code": "1", "args": {}})).is_err());
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

//! Request bodies, query strings and paths as the HTTP layer reads them:
//! never a panic, and whatever is accepted as arguments is a JSON array.
#![no_main]

use libfuzzer_sys::fuzz_target;

// Pure functions with no dependency but serde: built straight from their
// source so fuzzing does not build wasmtime under the sanitizer.
#[path = "../../host/src/request_args.rs"]
#[allow(dead_code)]
mod request_args;

fn assert_array(args: &str) {
    let parsed: serde_json::Value = serde_json::from_str(args).expect("arguments are JSON");
    assert!(parsed.is_array());
}

fuzz_target!(|data: &[u8]| {
    if let Ok(args) = request_args::run_args_from_body(data) {
        assert_array(&args);
    }
    if let Ok(body) = serde_json::from_slice::<request_args::EvalRequest>(data) {
        assert_array(&request_args::args_json(body.args));
    }
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(args) = request_args::run_args_from_query(Some(text)) {
            assert_array(&args);
        }
        if let Ok((user, name)) = request_args::split_target(text) {
            assert!(!user.is_empty() && !name.is_empty());
        }
    }
});

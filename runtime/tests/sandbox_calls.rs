//! Real JavaScript run in real fresh instances: what a val author can rely on.

use serde_json::{json, Value};
use std::sync::OnceLock;
use std::time::{Duration, Instant};
use valbox_runtime::{LogLevel, Sandbox, SandboxConfig, SandboxError};

fn config() -> SandboxConfig {
    SandboxConfig {
        cache_dir: Some(env!("CARGO_TARGET_TMPDIR").into()),
        ..SandboxConfig::default()
    }
}

fn sandbox() -> &'static Sandbox {
    static SANDBOX: OnceLock<Sandbox> = OnceLock::new();
    SANDBOX.get_or_init(|| Sandbox::new(config()).expect("sandbox starts"))
}

/// A sandbox with a long deadline, for tests that must reach a limit other
/// than time: they share the CPU with the tests that run until their
/// deadline, so on a busy machine the default one could end them first.
fn patient_sandbox() -> &'static Sandbox {
    static SANDBOX: OnceLock<Sandbox> = OnceLock::new();
    SANDBOX.get_or_init(|| {
        Sandbox::new(SandboxConfig {
            deadline: Duration::from_secs(60),
            ..config()
        })
        .expect("sandbox starts")
    })
}

/// Compiles `source` and calls `export` with `args`, returning the JSON result.
fn call(source: &str, export: &str, args: Value) -> Result<Value, SandboxError> {
    call_in(sandbox(), source, export, args)
}

/// [`call`] in `sandbox`.
fn call_in(
    sandbox: &Sandbox,
    source: &str,
    export: &str,
    args: Value,
) -> Result<Value, SandboxError> {
    let bytecode = sandbox.compile("test.js", source)?;
    let output = sandbox.call(&bytecode, export, &args.to_string());
    output
        .result
        .map(|text| serde_json::from_str(&text).expect("result is JSON"))
}

fn thrown(result: Result<Value, SandboxError>) -> valbox_runtime::JsError {
    match result {
        Err(SandboxError::Thrown(error)) => error,
        other => panic!("expected a thrown error, got {other:?}"),
    }
}

#[test]
fn adds_two_numbers() {
    let source = "export function add(a, b) { return a + b }";
    assert_eq!(call(source, "add", json!([1, 2])).unwrap(), json!(3));
    assert_eq!(
        call(source, "add", json!([0.5, -2.25])).unwrap(),
        json!(-1.75)
    );
}

#[test]
fn strings_and_unicode_round_trip() {
    let source = "export function shout(s) { return s.toUpperCase() + '!' + [...s].length }";
    assert_eq!(
        call(source, "shout", json!(["grüße 👋 日本"])).unwrap(),
        json!("GRÜSSE 👋 日本!10")
    );
}

#[test]
fn a_megabyte_of_objects_and_arrays_goes_in_and_comes_out() {
    let items: Vec<Value> = (0..20_000)
        .map(|i| json!({"id": i, "name": format!("item-{i}"), "tags": ["a", "b"]}))
        .collect();
    let args = json!([items]);
    assert!(args.to_string().len() > 900_000);
    let source = "export function mark(items) {
        return items.map(item => ({ ...item, seen: true, tags: item.tags.concat(['c']) }));
    }";
    let result = call_in(patient_sandbox(), source, "mark", args).unwrap();
    let result = result.as_array().unwrap();
    assert_eq!(result.len(), 20_000);
    assert_eq!(
        result[19_999],
        json!({"id": 19_999, "name": "item-19999", "tags": ["a", "b", "c"], "seen": true})
    );
}

#[test]
fn a_thrown_error_keeps_its_name_message_and_stack() {
    let source = "function inner() { throw new TypeError('no such thing') }
export function outer() { inner() }";
    let error = thrown(call(source, "outer", json!([])));
    assert_eq!(error.name, "TypeError");
    assert_eq!(error.message, "no such thing");
    assert!(error.stack.contains("inner"), "stack: {}", error.stack);
    assert!(error.stack.contains("test.js:1"), "stack: {}", error.stack);
}

#[test]
fn throwing_a_non_error_is_reported() {
    let error = thrown(call(
        "export default function () { throw 'plain' }",
        "x",
        json!([]),
    ));
    assert_eq!(error.name, "Error");
    assert!(error.message.contains("plain"));
}

#[test]
fn a_syntax_error_reports_line_and_column() {
    let source = "export function f() {\n  return 1 +;\n}";
    match sandbox().compile("broken.js", source) {
        Err(SandboxError::Compile(error)) => {
            assert!(
                error.message.starts_with("SyntaxError"),
                "{}",
                error.message
            );
            assert_eq!(error.line, Some(2));
            assert!(error.column.is_some());
        }
        other => panic!("expected a compile error, got {other:?}"),
    }
}

#[test]
fn an_async_function_is_awaited() {
    let source = "export async function later(x) {
        const a = await Promise.resolve(x * 2);
        const b = await new Promise(resolve => resolve(a + 1));
        return { a, b };
    }";
    assert_eq!(
        call(source, "later", json!([20])).unwrap(),
        json!({"a": 40, "b": 41})
    );
}

#[test]
fn a_rejected_promise_is_a_thrown_error() {
    let source = "export async function fails() { await null; throw new RangeError('too far') }";
    let error = thrown(call(source, "fails", json!([])));
    assert_eq!(
        (error.name.as_str(), error.message.as_str()),
        ("RangeError", "too far")
    );
}

#[test]
fn a_promise_that_never_settles_is_an_error_not_a_hang() {
    let source = "export function forever() { return new Promise(() => {}) }";
    let error = thrown(call(source, "forever", json!([])));
    assert!(error.message.contains("never settled"), "{}", error.message);
}

#[test]
fn default_export_is_used_when_the_named_one_is_missing() {
    let source = "export default function (a) { return `default:${a}` }";
    assert_eq!(
        call(source, "anything", json!(["x"])).unwrap(),
        json!("default:x")
    );
}

#[test]
fn a_missing_export_is_a_clear_error() {
    let error = thrown(call("export const a = 1", "b", json!([])));
    assert_eq!(error.name, "ReferenceError");
    assert!(error.message.contains("`b`"), "{}", error.message);
}

#[test]
fn a_value_export_is_returned_as_is() {
    let source = "export const config = { retries: 3, hosts: ['a', 'b'] }";
    assert_eq!(
        call(source, "config", json!([])).unwrap(),
        json!({"retries": 3, "hosts": ["a", "b"]})
    );
}

#[test]
fn undefined_becomes_null() {
    assert_eq!(
        call("export function f() {}", "f", json!([])).unwrap(),
        Value::Null
    );
}

#[test]
fn arguments_must_be_a_json_array() {
    let bytecode = sandbox()
        .compile("t.js", "export function f(a) { return a }")
        .unwrap();
    let error = match sandbox().call(&bytecode, "f", "{\"a\": 1}").result {
        Err(SandboxError::Thrown(error)) => error,
        other => panic!("expected an error, got {other:?}"),
    };
    assert_eq!(error.name, "TypeError");
    let error = match sandbox().call(&bytecode, "f", "[1,").result {
        Err(SandboxError::Thrown(error)) => error,
        other => panic!("expected an error, got {other:?}"),
    };
    assert_eq!(error.name, "SyntaxError");
}

#[test]
fn console_output_is_captured_with_levels() {
    let source = "export function talk() {
        console.log('hello', 42, { a: [1, 'two'] });
        console.warn('careful');
        console.error(new Error('bad'));
        return 'done';
    }";
    let bytecode = sandbox().compile("talk.js", source).unwrap();
    let output = sandbox().call(&bytecode, "talk", "[]");
    assert_eq!(output.result.unwrap(), "\"done\"");
    let lines: Vec<(LogLevel, &str)> = output
        .logs
        .iter()
        .map(|line| (line.level, line.message.as_str()))
        .collect();
    assert_eq!(lines[0], (LogLevel::Log, "hello 42 { a: [1, \"two\"] }"));
    assert_eq!(lines[1], (LogLevel::Warn, "careful"));
    assert_eq!(lines[2].0, LogLevel::Error);
    assert!(lines[2].1.starts_with("Error: bad"), "{}", lines[2].1);
}

#[test]
fn console_output_is_kept_when_the_call_fails() {
    let bytecode = sandbox()
        .compile(
            "t.js",
            "export function f() { console.info('before'); throw new Error('x') }",
        )
        .unwrap();
    let output = sandbox().call(&bytecode, "f", "[]");
    assert!(output.result.is_err());
    assert_eq!(output.logs.len(), 1);
    assert_eq!(output.logs[0].message, "before");
}

#[test]
fn no_state_survives_between_calls() {
    let source = "export function bump() {
        globalThis.counter = (globalThis.counter || 0) + 1;
        Array.prototype.polluted = 'yes';
        return { counter: globalThis.counter, polluted: [].polluted ?? null };
    }
    export function look() { return { counter: globalThis.counter ?? null, polluted: [].polluted ?? null } }";
    let bytecode = sandbox().compile("state.js", source).unwrap();
    let first = sandbox().call(&bytecode, "bump", "[]").result.unwrap();
    let second = sandbox().call(&bytecode, "bump", "[]").result.unwrap();
    assert_eq!(first, r#"{"counter":1,"polluted":"yes"}"#);
    assert_eq!(
        second, first,
        "the second call must start from a clean instance"
    );
    let look = sandbox().call(&bytecode, "look", "[]").result.unwrap();
    assert_eq!(look, r#"{"counter":null,"polluted":null}"#);
}

#[test]
fn an_infinite_loop_ends_at_the_deadline_and_the_sandbox_keeps_working() {
    let short = Sandbox::new(SandboxConfig {
        deadline: Duration::from_millis(300),
        ..config()
    })
    .unwrap();
    let bytecode = short
        .compile("loop.js", "export function spin() { while (true) {} }")
        .unwrap();
    let started = Instant::now();
    let output = short.call(&bytecode, "spin", "[]");
    let elapsed = started.elapsed();
    match output.result {
        Err(SandboxError::Timeout(deadline)) => assert_eq!(deadline, Duration::from_millis(300)),
        other => panic!("expected a timeout, got {other:?}"),
    }
    assert!(
        elapsed >= Duration::from_millis(300),
        "stopped early: {elapsed:?}"
    );
    let add = short
        .compile("add.js", "export const add = (a, b) => a + b")
        .unwrap();
    assert_eq!(short.call(&add, "add", "[2,3]").result.unwrap(), "5");
}

#[test]
fn an_async_infinite_loop_ends_at_the_deadline_too() {
    let short = Sandbox::new(SandboxConfig {
        deadline: Duration::from_millis(200),
        ..config()
    })
    .unwrap();
    let bytecode = short
        .compile(
            "loop.js",
            "export async function spin() { for (;;) { await null } }",
        )
        .unwrap();
    assert!(matches!(
        short.call(&bytecode, "spin", "[]").result,
        Err(SandboxError::Timeout(_))
    ));
}

#[test]
fn a_restart_loads_the_compiled_image_from_the_cache() {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("cache-reuse");
    let _ = std::fs::remove_dir_all(&dir);
    let with_dir = || SandboxConfig {
        cache_dir: Some(dir.clone()),
        ..SandboxConfig::default()
    };
    Sandbox::new(with_dir()).unwrap();
    let cached: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(cached.len(), 1, "one compiled image: {cached:?}");
    assert!(cached[0].ends_with(".cwasm"));
    let modified = std::fs::metadata(dir.join(&cached[0]))
        .unwrap()
        .modified()
        .unwrap();
    let again = Sandbox::new(with_dir()).unwrap();
    let after = std::fs::metadata(dir.join(&cached[0]))
        .unwrap()
        .modified()
        .unwrap();
    assert_eq!(modified, after, "the cached image is reused, not rewritten");
    let bytecode = again.compile("a.js", "export default () => 'ok'").unwrap();
    assert_eq!(again.call(&bytecode, "a", "[]").result.unwrap(), "\"ok\"");
}

#[test]
fn a_corrupt_cache_file_is_rebuilt() {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("cache-corrupt");
    let _ = std::fs::remove_dir_all(&dir);
    let with_dir = || SandboxConfig {
        cache_dir: Some(dir.clone()),
        ..SandboxConfig::default()
    };
    Sandbox::new(with_dir()).unwrap();
    let file = std::fs::read_dir(&dir)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    std::fs::write(&file, b"not a module").unwrap();
    let sandbox = Sandbox::new(with_dir()).unwrap();
    let bytecode = sandbox.compile("a.js", "export default () => 1").unwrap();
    assert_eq!(sandbox.call(&bytecode, "a", "[]").result.unwrap(), "1");
}

#[test]
fn deep_recursion_is_a_range_error_and_the_sandbox_keeps_working() {
    let error = thrown(call(
        "export default function f() { return f() }",
        "f",
        json!([]),
    ));
    assert_eq!(error.name, "RangeError");
    assert!(error.message.contains("call stack"), "{}", error.message);
    assert_eq!(
        call("export const one = () => 1", "one", json!([])).unwrap(),
        json!(1)
    );
}

#[test]
fn memory_bombs_end_in_an_error_naming_memory() {
    for source in [
        "export default function () { let s = 'x'; for (;;) s += s }",
        "export default function () { const a = []; for (;;) a.push(new Array(1e6).fill(1)) }",
        "export default function () { return 'x'.repeat(200 * 1024 * 1024) }",
    ] {
        let error = thrown(call_in(patient_sandbox(), source, "bomb", json!([])));
        assert_eq!(error.name, "InternalError", "{source}");
        assert!(
            error.message.contains("out of memory") || error.message.contains("too long"),
            "{source}: {}",
            error.message
        );
    }
    assert_eq!(
        call("export const one = () => 1", "one", json!([])).unwrap(),
        json!(1)
    );
}

#[test]
fn two_million_console_lines_hit_the_log_limit() {
    let sandbox = patient_sandbox();
    let bytecode = sandbox
        .compile(
            "logs.js",
            "export default function () { for (let i = 0; i < 2e6; i++) console.log('line', i) }",
        )
        .unwrap();
    let output = sandbox.call(&bytecode, "logs", "[]");
    match output.result {
        Err(SandboxError::Limit(message)) => {
            assert!(message.contains("console output"), "{message}")
        }
        other => panic!("expected the log limit, got {other:?}"),
    }
    let kept: usize = output.logs.iter().map(|l| l.message.len()).sum();
    assert!(kept <= sandbox.config().max_log_bytes);
}

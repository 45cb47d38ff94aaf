//! The `valbox` binary from the outside: `run` and `serve`.

mod common;

use common::{free_port, Process};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn workdir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Shared data dir, so the compiled guest image is built once for all tests.
fn data_dir() -> PathBuf {
    workdir("cli-data")
}

fn valbox(args: &[&str], cwd: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_valbox"))
        .args(args)
        .env("VALBOX_DATA_DIR", data_dir())
        .current_dir(cwd)
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn run_prints_the_json_result_and_exits_zero() {
    let dir = workdir("cli-run-ok");
    std::fs::write(
        dir.join("add.js"),
        "export function add(a, b) { console.log('adding', a, b); return { sum: a + b } }",
    )
    .unwrap();
    let output = valbox(&["run", "add.js", "--args", "[1,2]"], &dir);
    assert_eq!(
        output.status.code(),
        Some(0),
        "stderr: {}",
        text(&output.stderr)
    );
    assert_eq!(text(&output.stdout).trim(), r#"{"sum":3}"#);
    assert!(text(&output.stderr).contains("adding 1 2"));
}

#[test]
fn randomness_differs_in_every_process() {
    let dir = workdir("cli-run-random");
    std::fs::write(
        dir.join("rnd.js"),
        "export function rnd() { return [Math.random(), Math.random(), crypto.randomUUID(), \
         Array.from(crypto.getRandomValues(new Uint8Array(8)))] }",
    )
    .unwrap();
    let runs: Vec<String> = (0..3)
        .map(|_| {
            let output = valbox(&["run", "rnd.js"], &dir);
            assert_eq!(
                output.status.code(),
                Some(0),
                "stderr: {}",
                text(&output.stderr)
            );
            text(&output.stdout)
        })
        .collect();
    let parsed: Vec<serde_json::Value> = runs
        .iter()
        .map(|r| serde_json::from_str(r).unwrap())
        .collect();
    for (a, b) in [(0, 1), (1, 2), (0, 2)] {
        for part in ["0", "1", "2", "3"] {
            assert_ne!(
                parsed[a].pointer(&format!("/{part}")),
                parsed[b].pointer(&format!("/{part}")),
                "{runs:?}"
            );
        }
    }
}

#[test]
fn run_calls_the_named_export() {
    let dir = workdir("cli-run-export");
    std::fs::write(
        dir.join("math.js"),
        "export const twice = x => x * 2; export default () => 'default'",
    )
    .unwrap();
    let output = valbox(&["run", "math.js", "twice", "--args", "[21]"], &dir);
    assert_eq!(text(&output.stdout).trim(), "42");
    let output = valbox(&["run", "math.js"], &dir);
    assert_eq!(text(&output.stdout).trim(), "\"default\"");
}

#[test]
fn run_reports_a_syntax_error_with_its_position() {
    let dir = workdir("cli-run-syntax");
    std::fs::write(
        dir.join("bad.js"),
        "export function f() {\n  return 1 +;\n}\n",
    )
    .unwrap();
    let output = valbox(&["run", "bad.js"], &dir);
    assert_eq!(output.status.code(), Some(1));
    let stderr = text(&output.stderr);
    assert!(stderr.contains("SyntaxError"), "{stderr}");
    assert!(stderr.contains("bad.js:2:"), "{stderr}");
    assert!(output.stdout.is_empty());
}

#[test]
fn run_reports_a_thrown_error_with_its_stack() {
    let dir = workdir("cli-run-throw");
    std::fs::write(
        dir.join("t.js"),
        "export default function () { throw new TypeError('nope') }",
    )
    .unwrap();
    let output = valbox(&["run", "t.js"], &dir);
    assert_eq!(output.status.code(), Some(1));
    let stderr = text(&output.stderr);
    assert!(stderr.contains("TypeError: nope"), "{stderr}");
    assert!(stderr.contains("t.js:1"), "{stderr}");
}

#[test]
fn run_refuses_bad_arguments_and_missing_files() {
    let dir = workdir("cli-run-usage");
    std::fs::write(dir.join("a.js"), "export default () => 1").unwrap();
    let output = valbox(&["run", "a.js", "--args", "{"], &dir);
    assert_eq!(output.status.code(), Some(2));
    assert!(text(&output.stderr).contains("--args is not valid JSON"));
    let output = valbox(&["run", "a.js", "--args", "{\"a\":1}"], &dir);
    assert_eq!(output.status.code(), Some(2));
    assert!(text(&output.stderr).contains("JSON array"));
    let output = valbox(&["run", "missing.js"], &dir);
    assert_eq!(output.status.code(), Some(2));
    assert!(text(&output.stderr).contains("cannot read missing.js"));
}

#[test]
fn run_stops_an_infinite_loop_at_the_deadline() {
    let dir = workdir("cli-run-loop");
    std::fs::write(dir.join("loop.js"), "export default () => { for (;;) {} }").unwrap();
    let started = Instant::now();
    let output = valbox(&["--deadline-ms", "300", "run", "loop.js"], &dir);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        text(&output.stderr).contains("deadline exceeded"),
        "{}",
        text(&output.stderr)
    );
    assert!(started.elapsed() < Duration::from_secs(30));
}

fn http_get(port: u16, path: &str) -> std::io::Result<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    Ok(response)
}

#[test]
fn serve_answers_healthz_on_the_configured_address() {
    let port = free_port();
    let _server = Process(
        Command::new(env!("CARGO_BIN_EXE_valbox"))
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .env("VALBOX_DATA_DIR", data_dir())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    let response = loop {
        match http_get(port, "/healthz") {
            Ok(response) => break response,
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
            Err(e) => panic!("server did not come up: {e}"),
        }
    };
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.ends_with(r#"{"status":"ok"}"#), "{response}");
}

#[test]
fn a_bad_config_file_is_a_clear_error() {
    let dir = workdir("cli-bad-config");
    std::fs::write(dir.join("valbox.toml"), "listen = 12\n").unwrap();
    let output = valbox(&["--config", "valbox.toml", "serve"], &dir);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        text(&output.stderr).contains("valbox.toml"),
        "{}",
        text(&output.stderr)
    );
}

#[test]
fn user_add_prints_a_key_once_and_refuses_a_taken_handle() {
    let dir = workdir("cli-user-add");
    let data = dir.join("data");
    let _ = std::fs::remove_dir_all(&data);
    let add = |handle: &str| {
        Command::new(env!("CARGO_BIN_EXE_valbox"))
            .args([
                "--data-dir",
                data.to_str().unwrap(),
                "user",
                "add",
                handle,
                "--email",
                "c@example.com",
            ])
            .output()
            .unwrap()
    };
    let output = add("Carol");
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    let key = text(&output.stdout).trim().to_string();
    assert!(key.starts_with("vbk_") && key.len() > 40, "{key}");
    let again = add("carol");
    assert_eq!(again.status.code(), Some(2));
    assert!(
        text(&again.stderr).contains("taken"),
        "{}",
        text(&again.stderr)
    );
    let bad = add("9lives");
    assert_eq!(bad.status.code(), Some(2));
}

#[test]
fn an_unreachable_database_is_a_clear_error() {
    let dir = workdir("cli-bad-database");
    let port = free_port(); // nothing listens there
    let output = valbox(
        &[
            "--database-url",
            &format!("postgres://valbox@127.0.0.1:{port}/valbox"),
            "user",
            "add",
            "dana",
            "--email",
            "d@example.com",
        ],
        &dir,
    );
    assert_eq!(output.status.code(), Some(2));
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("opening the PostgreSQL database"),
        "{stderr}"
    );
}

//! Hostile code over HTTP: each attack ends in a clear error within the
//! deadline, the server answers a benign request right after, and its memory
//! comes back near where it started.

mod common;

use common::{free_port, wait_for_port, Process};
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

struct Server {
    process: Process,
    port: u16,
}

fn start() -> Server {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("attacks");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let port = free_port();
    let child = Command::new(env!("CARGO_BIN_EXE_valbox"))
        .args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            // Long enough that the memory and log bombs reach their limits
            // before the deadline even on a busy machine.
            "--deadline-ms",
            "2500",
        ])
        .env("VALBOX_DATA_DIR", &dir)
        .env("VALBOX_ADMIN_KEY", "admin")
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let process = Process(child);
    wait_for_port(port, "the server");
    Server { process, port }
}

impl Server {
    fn post(&self, path: &str, key: Option<&str>, body: &str) -> (u16, Value) {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        let auth = key
            .map(|k| format!("Authorization: Bearer {k}\r\n"))
            .unwrap_or_default();
        write!(
            stream,
            "POST {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        let status = response.split(' ').nth(1).unwrap().parse().unwrap();
        let body = response.split_once("\r\n\r\n").map_or("", |(_, b)| b);
        (status, serde_json::from_str(body).unwrap_or(Value::Null))
    }

    fn eval(&self, key: Option<&str>, code: &str) -> (u16, Value) {
        self.post("/v1/eval", key, &json!({ "code": code }).to_string())
    }

    fn rss_kib(&self) -> u64 {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.process.0.id())).unwrap();
        let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    }
}

#[test]
fn every_attack_ends_in_a_clear_error_and_the_server_recovers() {
    let server = start();
    let (_, user) = server.post(
        "/v1/users",
        Some("admin"),
        r#"{"handle":"mallory","email":"m@example.com"}"#,
    );
    let key = user["api_key"].as_str().unwrap().to_string();
    let save = |name: &str, code: &str| {
        let mut stream = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
        let body = json!({"code": code, "privacy": "public"}).to_string();
        write!(stream, "PUT /v1/vals/{name} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: Bearer {key}\r\nContent-Length: {}\r\n\r\n{body}", body.len()).unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    };
    save("spin", "export function spin() { for (;;) {} }");
    save(
        "outer",
        "export function outer() { try { return @mallory.spin() } catch (e) { return 'caught' } }",
    );

    for _ in 0..5 {
        assert_eq!(server.eval(None, "1 + 1"), (200, json!(2)));
    }
    let rss_before = server.rss_kib();

    let attacks: &[(&str, &str, &[&str])] = &[
        ("infinite loop", "for (;;) {}", &["timeout"]),
        (
            "infinite loop in a nested library call",
            "@mallory.outer()",
            &["timeout"],
        ),
        (
            "string memory bomb",
            "let s = 'x'; for (;;) s += s",
            &["val_error"],
        ),
        (
            "array memory bomb",
            "const a = []; for (;;) a.push(new Array(1e6).fill(1))",
            &["val_error"],
        ),
        (
            "deep recursion",
            "function f() { return f() } return f()",
            &["val_error"],
        ),
        (
            "ReDoS",
            "return /^(a+)+$/.test('a'.repeat(40) + 'b')",
            &["timeout"],
        ),
        (
            "200 MB result",
            "return 'x'.repeat(200 * 1024 * 1024)",
            &["val_error", "limit_exceeded"],
        ),
        (
            "2 million console.log lines",
            "for (let i = 0; i < 2e6; i++) console.log('line', i)",
            &["limit_exceeded"],
        ),
        (
            "fetch 127.0.0.1",
            "return await fetch('http://127.0.0.1:9/')",
            &["val_error"],
        ),
        (
            "fetch [::1]",
            "return await fetch('http://[::1]:9/')",
            &["val_error"],
        ),
        (
            "fetch metadata",
            "return await fetch('http://169.254.169.254/latest/meta-data/')",
            &["val_error"],
        ),
        (
            "fetch 10.0.0.1",
            "return await fetch('http://10.0.0.1/')",
            &["val_error"],
        ),
        (
            "fetch localhost",
            "return await fetch('http://localhost:9/')",
            &["val_error"],
        ),
        (
            "fetch a decimal IP",
            "return await fetch('http://2130706433:9/')",
            &["val_error"],
        ),
    ];
    for (name, code, expected) in attacks {
        let started = Instant::now();
        let (status, body) = server.eval(Some(&key), code);
        let elapsed = started.elapsed();
        let kind = body["error"]["type"].as_str().unwrap_or("");
        assert!(status >= 400, "{name}: status {status} {body}");
        assert!(expected.contains(&kind), "{name}: got {kind} ({body})");
        assert!(
            body["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{name}: {body}"
        );
        assert!(elapsed < Duration::from_secs(5), "{name} took {elapsed:?}");
        assert_eq!(
            server.eval(None, "40 + 2"),
            (200, json!(42)),
            "benign request right after {name}"
        );
    }

    let nested = format!(
        "{{\"code\": \"1\", \"args\": {}{}}}",
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    let (status, body) = server.post("/v1/eval", None, &nested);
    assert_eq!(
        (status, body["error"]["type"].as_str()),
        (400, Some("bad_request")),
        "deeply nested JSON"
    );

    let rss_after = server.rss_kib();
    assert!(
        rss_after < rss_before + 200 * 1024,
        "memory did not come back: {rss_before} KiB before, {rss_after} KiB after"
    );
    assert_eq!(
        server.eval(None, "'still here'"),
        (200, json!("still here"))
    );
}

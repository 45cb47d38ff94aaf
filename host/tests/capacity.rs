//! A storm of deep call trees from one user, over HTTP: every answer is a
//! result or a clear 429/503 `capacity` with `Retry-After` (never a
//! `val_error`), another user's call made during the storm is served, the
//! instances in use never pass `--max-instances`, and no stack shows the
//! guest's internals. Calls that sleep do not hold up the calls queued
//! behind them.

mod common;

use common::{free_port, fresh_dir, wait_for_port, Http, Process, ADMIN};
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;

/// One POST; the status, the raw head and the JSON body.
fn post(port: u16, path: &str, key: &str, body: &str) -> (u16, String, Value) {
    let mut stream = common::connect(port);
    write!(
        stream,
        "POST {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Type: application/json\r\n\
         Authorization: Bearer {key}\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (
        status,
        head.to_ascii_lowercase(),
        serde_json::from_str(body).unwrap_or(Value::Null),
    )
}

/// `valbox_instances_in_use` from `/metrics`.
fn instances_in_use(http: &Http) -> i64 {
    let (_, text) = http.raw("GET", "/metrics", None, None);
    text.lines()
        .find_map(|line| line.strip_prefix("valbox_instances_in_use "))
        .and_then(|value| value.trim().parse().ok())
        .expect("the metric is exported")
}

#[test]
fn a_storm_of_deep_trees_degrades_its_own_user_first() {
    let dir = fresh_dir("capacity-storm");
    let port = free_port();
    let _server = Process(
        Command::new(env!("CARGO_BIN_EXE_valbox"))
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .args(["--max-concurrent-calls", "64", "--max-calls-per-user", "64"])
            .args(["--max-instances", "64", "--user-instance-share", "0.5"])
            .env("VALBOX_DATA_DIR", &dir)
            .env("VALBOX_ADMIN_KEY", ADMIN)
            .stderr(common::server_log(port))
            .spawn()
            .unwrap(),
    );
    wait_for_port(port, "the server");
    let http = Http { port };
    let (_, metrics) = http.raw("GET", "/metrics", None, None);
    assert!(metrics.contains("valbox_instances_max 64"), "{metrics}");
    assert!(
        metrics.contains("valbox_instances_user_max 32"),
        "{metrics}"
    );

    let rec = |other: &str| {
        format!(
            "export function rec(n, busy) {{\n  if (n <= 0) {{ const end = Date.now() + busy; while (Date.now() < end) {{}} return 'bottom' }}\n  return {other}(n - 1, busy)\n}}"
        )
    };
    for (user, other) in [("deep", "@deep2.rec"), ("deep2", "@deep.rec")] {
        let key = http.user(user);
        let (status, body) = http.call(
            "PUT",
            "/v1/vals/rec",
            Some(&key),
            Some(json!({"code": rec(other), "privacy": "public"})),
        );
        assert_eq!(status, 200, "{body}");
    }
    let stormer = http.user("stormer");
    let carol = http.user("carol");
    let (status, body) = http.call(
        "PUT",
        "/v1/vals/add",
        Some(&carol),
        Some(json!({"code": "export function add(a, b) { return a + b }"})),
    );
    assert_eq!(status, 200, "{body}");

    let storming = Arc::new(AtomicBool::new(true));
    let most_in_use = Arc::new(AtomicI64::new(0));
    let watcher = {
        let (storming, most_in_use) = (storming.clone(), most_in_use.clone());
        std::thread::spawn(move || {
            let http = Http { port };
            while storming.load(Ordering::Relaxed) {
                most_in_use.fetch_max(instances_in_use(&http), Ordering::Relaxed);
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
        })
    };
    let storm: Vec<_> = (0..48)
        .map(|_| {
            let stormer = stormer.clone();
            std::thread::spawn(move || post(port, "/v1/run/deep.rec", &stormer, "[12, 300]"))
        })
        .collect();
    // carol's own call, made while the storm runs, is served.
    std::thread::sleep(std::time::Duration::from_millis(150));
    let (status, _, body) = post(port, "/v1/run/carol.add", &carol, "[2, 3]");
    assert_eq!(
        (status, body),
        (200, json!(5)),
        "carol is served during the storm"
    );

    let (mut served, mut refused) = (0, 0);
    for answer in storm {
        let (status, head, body) = answer.join().unwrap();
        assert!(
            !body.to_string().contains("eval_script"),
            "no stack shows the prelude: {body}"
        );
        match status {
            200 => {
                assert_eq!(body, json!("bottom"));
                served += 1;
            }
            429 | 503 => {
                assert_eq!(body["error"]["type"], "capacity", "{body}");
                assert!(head.contains("\r\nretry-after: "), "{head}");
                refused += 1;
            }
            other => panic!("a storm answer that is neither a result nor capacity: {other} {body}"),
        }
    }
    storming.store(false, Ordering::Relaxed);
    watcher.join().unwrap();
    eprintln!("served {served}, refused {refused}");
    assert!(served >= 1, "the storm's share still serves some trees");
    assert!(refused >= 1, "48 trees of 13 instances do not fit in 32");
    let most = most_in_use.load(Ordering::Relaxed);
    assert!(
        (1..=32).contains(&most),
        "the stormer's trees held {most} instances, more than their share"
    );
    let (_, metrics) = http.raw("GET", "/metrics", None, None);
    assert!(
        metrics.lines().any(|l| l
            .starts_with("valbox_capacity_refusals_total{reason=\"user_share\"}")
            && !l.ends_with(" 0")),
        "{metrics}"
    );
    assert_eq!(instances_in_use(&http), 0, "every instance given back");
}

/// Calls that wait (here on timers) do not hold up the calls behind them:
/// the server's runners (one per core) start more while jobs wait behind
/// stuck ones, so a quick call made while six others sleep (under the
/// limit of 8 per caller) is
/// answered before any of them wakes.
#[test]
fn sleeping_calls_do_not_hold_up_a_quick_one() {
    let (_server, http) = common::serve_with(&fresh_dir("capacity-sleepers"), &[]);
    let key = http.user("dora");
    common::save_val(
        &http,
        &key,
        "nap",
        "public",
        "export async function nap() { await new Promise((r) => setTimeout(r, 1500)); return \"slept\" }",
    );
    common::save_val(
        &http,
        &key,
        "quick",
        "public",
        "export const quick = () => 1",
    );
    let http = Arc::new(http);
    let finished = Arc::new(std::sync::Mutex::new(Vec::new()));
    let sleepers: Vec<_> = (0..6)
        .map(|_| {
            let (http, finished) = (http.clone(), finished.clone());
            std::thread::spawn(move || {
                let (status, body) = http.call("GET", "/v1/run/dora.nap", None, None);
                assert_eq!((status, body), (200, json!("slept")));
                finished.lock().unwrap().push("nap");
            })
        })
        .collect();
    std::thread::sleep(std::time::Duration::from_millis(300));
    let (status, body) = http.call("GET", "/v1/run/dora.quick", None, None);
    assert_eq!((status, body), (200, json!(1)));
    finished.lock().unwrap().push("quick");
    for sleeper in sleepers {
        sleeper.join().unwrap();
    }
    let finished = finished.lock().unwrap();
    assert_eq!(finished.len(), 7);
    assert_eq!(finished[0], "quick", "the quick call waited: {finished:?}");
}

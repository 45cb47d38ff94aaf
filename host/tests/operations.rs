//! Running valbox in production, tried as an operator would: request ids
//! from the request to the evaluation record, one log line per request
//! (never a key), graceful shutdown on SIGTERM (requests and jobs in
//! flight finish), a rolling restart that loses nothing, and a 413 that a
//! client writing its whole body first still reads.

mod common;

use common::{free_port, fresh_dir, wait_for_port, Http, Process, ADMIN};
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

extern "C" {
    fn kill(pid: i32, signal: i32) -> i32;
}
const SIGTERM: i32 = 15;

/// Starts `valbox serve` on `port` with its stderr (the log) in `<dir>/log`.
fn start_on(dir: &Path, port: u16, extra: &[&str]) -> Process {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("log"))
        .unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_valbox"))
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .args(extra)
        .env("VALBOX_DATA_DIR", dir)
        .env("VALBOX_ADMIN_KEY", ADMIN)
        .env_remove("RUST_LOG")
        .stderr(Stdio::from(log))
        .spawn()
        .unwrap();
    let process = Process(child);
    wait_for_port(port, "the server");
    process
}

/// One request; the status, the headers (lower-case names) and the body.
fn request(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, Vec<(String, String)>, String) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    stream
        .write_all(format!("{head}\r\n{body}").as_bytes())
        .unwrap();
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    (status, headers, body.to_string())
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

fn wait_for_exit(process: &mut Process, within: Duration) -> Option<i32> {
    let end = Instant::now() + within;
    while Instant::now() < end {
        if let Some(status) = process.0.try_wait().unwrap() {
            return Some(status.code().unwrap_or(-1));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

fn save(http: &Http, key: &str, name: &str, code: &str) {
    let (status, body) = http.call(
        "PUT",
        &format!("/v1/vals/{name}"),
        Some(key),
        Some(json!({"code": code, "privacy": "public"})),
    );
    assert_eq!(status, 200, "{body}");
}

#[test]
fn request_ids_reach_the_evaluation_record_and_the_log_never_holds_a_key() {
    let dir = fresh_dir("ops-request-ids");
    let port = free_port();
    let _server = start_on(&dir, port, &["--log-format", "json"]);
    let http = Http { port };
    let key = http.user("olga");
    save(
        &http,
        &key,
        "add",
        "export function add(a, b) { return a + b }",
    );

    // A client's id is kept, echoed, and finds the records of its request.
    let auth = format!("Bearer {key}");
    let (status, headers, body) = request(
        port,
        "POST",
        "/v1/run/olga.add",
        &[
            ("Authorization", &auth),
            ("x-request-id", "support-ticket-42"),
        ],
        "[2, 3]",
    );
    assert_eq!((status, body.as_str()), (200, "5"));
    assert_eq!(header(&headers, "x-request-id"), Some("support-ticket-42"));
    let (status, found) = http.call(
        "GET",
        "/v1/evaluations?request_id=support-ticket-42",
        Some(&key),
        None,
    );
    assert_eq!(status, 200, "{found}");
    let records = found["evaluations"].as_array().unwrap();
    assert_eq!(records.len(), 1, "{found}");
    assert_eq!(records[0]["request_id"], "support-ticket-42");
    assert_eq!(records[0]["record"]["target"], "@olga.add@1");

    // Without one (or with one that is not tame), the server makes one.
    let (_, headers, _) = request(
        port,
        "POST",
        "/v1/eval",
        &[("Authorization", &auth), ("x-request-id", "two words")],
        r#"{"code": "1 + 1"}"#,
    );
    let made = header(&headers, "x-request-id").unwrap().to_string();
    assert_eq!(made.len(), 24, "{made}");
    let (_, found) = http.call(
        "GET",
        &format!("/v1/evaluations?request_id={made}"),
        Some(&key),
        None,
    );
    assert_eq!(found["evaluations"].as_array().unwrap().len(), 1, "{found}");
    let (status, _) = http.call("GET", "/v1/evaluations?limit=0", Some(&key), None);
    assert_eq!(status, 400);

    // One JSON line per request: id, route template, status, user; no key.
    let deadline = Instant::now() + Duration::from_secs(5);
    let line = loop {
        let log = std::fs::read_to_string(dir.join("log")).unwrap();
        let found = log
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .find(|l| l["span"]["id"] == "support-ticket-42" && l["fields"]["status"] == 200);
        if let Some(line) = found {
            assert!(!log.contains(&key), "a key was logged");
            break line;
        }
        assert!(Instant::now() < deadline, "no request line in:\n{log}");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(line["span"]["route"], "/v1/run/{target}", "{line}");
    assert_eq!(line["span"]["method"], "POST", "{line}");
    assert_eq!(line["span"]["user"], "olga", "{line}");
    assert!(line["fields"]["took_ms"].as_f64().is_some(), "{line}");
}

#[test]
fn sigterm_lets_a_request_in_flight_finish_then_exits_cleanly() {
    let dir = fresh_dir("ops-sigterm");
    let port = free_port();
    let mut server = start_on(&dir, port, &[]);
    let http = Http { port };
    let key = http.user("sam");
    save(
        &http,
        &key,
        "slow",
        "export async function slow() { await new Promise(r => setTimeout(r, 1500)); return 'done' }",
    );
    let in_flight = std::thread::spawn(move || request(port, "GET", "/v1/run/sam.slow", &[], ""));
    std::thread::sleep(Duration::from_millis(400));
    unsafe { kill(server.0.id() as i32, SIGTERM) };
    let (status, _, body) = in_flight.join().unwrap();
    assert_eq!((status, body.as_str()), (200, "\"done\""));
    assert_eq!(wait_for_exit(&mut server, Duration::from_secs(10)), Some(0));
    // No new connection once it is gone; the log says why it stopped.
    assert!(TcpStream::connect(("127.0.0.1", port)).is_err());
    let log = std::fs::read_to_string(dir.join("log")).unwrap();
    assert!(
        log.contains("SIGTERM") && log.contains("valbox serve stopped"),
        "{log}"
    );
}

#[test]
fn a_job_in_flight_at_sigterm_completes_exactly_once() {
    let dir = fresh_dir("ops-sigterm-job");
    let port = free_port();
    let mut server = start_on(&dir, port, &[]);
    let http = Http { port };
    let key = http.user("jo");
    save(
        &http,
        &key,
        "tick",
        "export async function tick() { await new Promise(r => setTimeout(r, 1000)); return 'ticked' }",
    );
    let (status, job) = http.call(
        "POST",
        "/v1/jobs",
        Some(&key),
        Some(json!({"kind": "run", "target": "jo.tick"})),
    );
    assert_eq!(status, 202, "{job}");
    let id = job["id"].as_str().unwrap().to_string();
    let deadline = Instant::now() + Duration::from_secs(10);
    while http
        .call("GET", &format!("/v1/jobs/{id}"), Some(&key), None)
        .1["status"]
        != "running"
    {
        assert!(Instant::now() < deadline, "the job never started");
        std::thread::sleep(Duration::from_millis(20));
    }
    unsafe { kill(server.0.id() as i32, SIGTERM) };
    assert_eq!(wait_for_exit(&mut server, Duration::from_secs(10)), Some(0));
    // After a restart it is done, from its one start: not run again.
    let port = free_port();
    let _again = start_on(&dir, port, &[]);
    std::thread::sleep(Duration::from_millis(500));
    let http = Http { port };
    let (_, job) = http.call("GET", &format!("/v1/jobs/{id}"), Some(&key), None);
    assert_eq!(job["status"], "done", "{job}");
    assert_eq!(job["result"], "ticked", "{job}");
    assert_eq!(job["attempts"], 1, "{job}");
}

#[test]
fn a_rolling_restart_loses_no_request_it_did_not_refuse() {
    let dirs = [fresh_dir("ops-roll-a"), fresh_dir("ops-roll-b")];
    let ports = [free_port(), free_port()];
    let mut first = start_on(&dirs[0], ports[0], &[]);
    let _second = start_on(&dirs[1], ports[1], &[]);
    for port in ports {
        let http = Http { port };
        let key = http.user("ray");
        save(
            &http,
            &key,
            "work",
            "export async function work(n) { await new Promise(r => setTimeout(r, 30)); return n * 2 }",
        );
    }
    // A tiny round-robin client: a refused connection or a 503 goes to the
    // other node; anything else that is not the answer is a lost request.
    let stop = Arc::new(AtomicBool::new(false));
    let answered = Arc::new(AtomicUsize::new(0));
    let lost = Arc::new(std::sync::Mutex::new(Vec::new()));
    let clients: Vec<_> = (0..4)
        .map(|c| {
            let (stop, answered, lost) = (stop.clone(), answered.clone(), lost.clone());
            std::thread::spawn(move || {
                let mut n = c;
                while !stop.load(Ordering::SeqCst) {
                    n += 1;
                    let mut done = false;
                    for attempt in 0..4 {
                        let port = ports[(n + attempt) % 2];
                        let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
                            continue;
                        };
                        let path = format!("/v1/run/ray.work?args=[{n}]");
                        let _ = stream.write_all(
                            format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                                .as_bytes(),
                        );
                        let mut response = String::new();
                        let _ = stream.read_to_string(&mut response);
                        if response.starts_with("HTTP/1.1 503") {
                            continue;
                        }
                        if response.starts_with("HTTP/1.1 200")
                            && response.ends_with(&format!("\r\n\r\n{}", n * 2))
                        {
                            answered.fetch_add(1, Ordering::SeqCst);
                        } else {
                            lost.lock().unwrap().push(response);
                        }
                        done = true;
                        break;
                    }
                    if !done {
                        lost.lock().unwrap().push("no node accepted".into());
                    }
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    unsafe { kill(first.0.id() as i32, SIGTERM) };
    assert_eq!(wait_for_exit(&mut first, Duration::from_secs(10)), Some(0));
    let before_restart = answered.load(Ordering::SeqCst);
    let _first_again = start_on(&dirs[0], ports[0], &[]);
    std::thread::sleep(Duration::from_millis(500));
    stop.store(true, Ordering::SeqCst);
    for client in clients {
        client.join().unwrap();
    }
    let lost = lost.lock().unwrap();
    assert!(
        lost.is_empty(),
        "lost {} requests: {:?}",
        lost.len(),
        &lost[..lost.len().min(3)]
    );
    assert!(before_restart > 10 && answered.load(Ordering::SeqCst) > before_restart);
}

#[test]
fn an_oversized_body_is_a_413_even_for_clients_that_write_it_all_first() {
    let dir = fresh_dir("ops-413");
    let port = free_port();
    let _server = start_on(&dir, port, &["--max-body-bytes", "1000000"]);
    // Python's urllib writes the whole body before it reads the answer.
    let script = format!(
        r#"
import json, urllib.request, urllib.error
body = b'[' + b'1,' * 2500000 + b'1]'
request = urllib.request.Request('http://127.0.0.1:{port}/v1/eval', data=body, method='POST',
                                 headers={{'Content-Type': 'application/json'}})
try:
    urllib.request.urlopen(request)
    print('accepted')
except urllib.error.HTTPError as e:
    print(e.code, json.load(e)['error']['type'])
"#
    );
    let output = Command::new("python3")
        .args(["-c", &script])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim(),
        "413 too_large",
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    // curl, with and without `Expect: 100-continue`.
    let body = dir.join("body.json");
    std::fs::write(&body, format!("[{}1]", "1,".repeat(2_500_000))).unwrap();
    let body = format!("@{}", body.display());
    for expect in ["Expect: 100-continue", "Expect:"] {
        let output = Command::new("curl")
            .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "-H", expect])
            .args([
                "-H",
                "Content-Type: application/json",
                "--data-binary",
                &body,
            ])
            .arg(format!("http://127.0.0.1:{port}/v1/eval"))
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&output.stdout), "413", "{expect}");
    }
    // The server keeps serving.
    let (status, _) = Http { port }.call("GET", "/healthz", None, None);
    assert_eq!(status, 200);
}

/// Runs `promtool` (Debian's `prometheus` package, installed by
/// scripts/setup.sh) with `stdin`; its exit status and output.
fn promtool(args: &[&str], stdin: &str) -> (bool, String) {
    let mut child = Command::new("promtool")
        .args(args)
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool runs (scripts/setup.sh installs the prometheus package)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

#[test]
fn metrics_and_the_deploy_files_pass_promtool() {
    let dir = fresh_dir("ops-promtool");
    let port = free_port();
    let _server = start_on(&dir, port, &[]);
    let http = Http { port };
    let key = http.user("mia");
    save(
        &http,
        &key,
        "add",
        "export function add(a, b) { return a + b }",
    );
    assert_eq!(
        http.raw("GET", "/v1/run/mia.add?args=[1,2]", None, None).0,
        200
    );
    assert_eq!(http.raw("GET", "/v1/run/mia.nope", None, None).0, 404);
    let (status, text) = http.raw("GET", "/metrics", None, None);
    assert_eq!(status, 200);
    assert!(
        text.contains("valbox_http_request_duration_seconds_count{route=\"/v1/run/{target}\"} 2"),
        "{text}"
    );
    let (ok, output) = promtool(&["check", "metrics"], &text);
    assert!(ok, "promtool check metrics:\n{output}");
    let (ok, output) = promtool(&["check", "rules", "deploy/prometheus/alerts.yml"], "");
    assert!(ok, "promtool check rules:\n{output}");
    let (ok, output) = promtool(&["check", "config", "deploy/prometheus/prometheus.yml"], "");
    assert!(ok, "promtool check config:\n{output}");
}

#[test]
fn retention_keeps_the_newest_records_per_user_off_the_request_path() {
    let dir = fresh_dir("ops-retention");
    let port = free_port();
    let _server = start_on(
        &dir,
        port,
        &[
            "--retain-evaluations-per-user",
            "5",
            "--prune-interval-ms",
            "50",
        ],
    );
    let http = Http { port };
    let key = http.user("ret");
    for n in 0..12 {
        let (status, _) = http.call(
            "POST",
            "/v1/eval",
            Some(&key),
            Some(json!({"code": format!("console.log('{n}'); return {n}")})),
        );
        assert_eq!(status, 200);
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    let kept = loop {
        let (_, page) = http.call("GET", "/v1/evaluations?limit=100", Some(&key), None);
        let kept = page["evaluations"].as_array().unwrap().clone();
        if kept.len() == 5 {
            break kept;
        }
        assert!(
            Instant::now() < deadline,
            "never pruned to 5: {}",
            kept.len()
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let logged: Vec<&str> = kept
        .iter()
        .map(|e| e["record"]["logs"][0]["message"].as_str().unwrap())
        .collect();
    assert_eq!(logged, ["11", "10", "9", "8", "7"], "the newest are kept");
    let (_, metrics) = http.raw("GET", "/metrics", None, None);
    assert!(
        metrics.contains("valbox_pruned_rows_total{kind=\"evaluations\"} 7"),
        "{metrics}"
    );
}

#[test]
fn a_write_loop_ends_at_its_budget_with_a_clear_error() {
    let dir = fresh_dir("ops-budgets");
    let port = free_port();
    let _server = start_on(&dir, port, &["--max-val-writes-per-call", "3"]);
    let http = Http { port };
    let key = http.user("loop");
    let (status, answer) = http.call(
        "POST",
        "/v1/eval",
        Some(&key),
        Some(json!({"code": "let n = 0; for (;;) @me.blob = 'x' + n++"})),
    );
    assert_eq!(status, 500, "{answer}");
    assert_eq!(answer["error"]["type"], "limit_exceeded");
    let message = answer["error"]["message"].as_str().unwrap();
    assert!(message.contains("3 val writes"), "{message}");
    let (_, versions) = http.call("GET", "/v1/vals/loop.blob/versions", Some(&key), None);
    assert_eq!(
        versions["versions"].as_array().unwrap().len(),
        3,
        "{versions}"
    );
}

#[test]
fn the_storage_quota_refuses_saves_and_writes_and_me_shows_usage() {
    let dir = fresh_dir("ops-quota");
    let port = free_port();
    let _server = start_on(&dir, port, &["--user-storage-quota", "20000"]);
    let http = Http { port };
    let key = http.user("qu");
    save(&http, &key, "small", "export const small = 1");
    let (_, me) = http.call("GET", "/v1/me", Some(&key), None);
    let used = me["storage"]["used_bytes"].as_u64().unwrap();
    assert!(used > 0, "{me}");
    assert_eq!(me["storage"]["quota_bytes"], 20000);
    assert!(me["key_id"].as_str().unwrap().starts_with("key_"), "{me}");
    // A save past the quota: 507, named, nothing stored.
    let big = format!("export const big = '{}'", "x".repeat(30_000));
    let (status, answer) = http.call(
        "PUT",
        "/v1/vals/big",
        Some(&key),
        Some(json!({"code": big})),
    );
    assert_eq!(status, 507, "{answer}");
    assert_eq!(answer["error"]["type"], "quota_exceeded");
    assert!(answer["error"]["message"]
        .as_str()
        .unwrap()
        .contains("20000"));
    assert_eq!(http.call("GET", "/v1/vals/qu.big", Some(&key), None).0, 404);
    // A value written by running code: the write throws, nothing stored.
    let (status, answer) = http.call(
        "POST",
        "/v1/eval",
        Some(&key),
        Some(json!({"code": "try { @me.blob = 'y'.repeat(30000); return 'stored' } catch (e) { return e.message }"})),
    );
    assert_eq!(status, 200);
    assert!(answer.as_str().unwrap().contains("quota"), "{answer}");
    assert_eq!(
        http.call("GET", "/v1/vals/qu.blob", Some(&key), None).0,
        404
    );
    let (_, me) = http.call("GET", "/v1/me", Some(&key), None);
    assert_eq!(me["storage"]["used_bytes"].as_u64().unwrap(), used);
    let (_, metrics) = http.raw("GET", "/metrics", None, None);
    assert!(
        metrics.contains("valbox_quota_refusals_total 2"),
        "{metrics}"
    );
    let store_bytes = sample(&metrics, "valbox_store_bytes");
    assert!(store_bytes > 0.0, "{metrics}");
}

/// The value of a metric line `series value`.
fn sample(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no {series} in {text}"))
}

/// Runs `command` as root; false when not root or it fails.
fn as_root(command: &mut Command) -> bool {
    let root = std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .any(|line| line.starts_with("Uid:") && line.split_whitespace().nth(1) == Some("0"));
    root && command.status().is_ok_and(|s| s.success())
}

#[test]
fn a_full_disk_is_a_507_and_the_server_recovers_when_space_returns() {
    let dir = fresh_dir("ops-full-disk");
    let small = dir.join("small-fs");
    std::fs::create_dir_all(&small).unwrap();
    // The database lives on a 3 MiB filesystem of its own; the compiled
    // guest cache stays on the big one.
    if !as_root(
        Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=3m", "tmpfs"])
            .arg(&small),
    ) {
        eprintln!("skipped: mounting a small tmpfs needs root");
        return;
    }
    struct Unmount(PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg("-l").arg(&self.0).status();
        }
    }
    let _unmount = Unmount(small.clone());
    std::os::unix::fs::symlink(small.join("valbox.db"), dir.join("valbox.db")).unwrap();
    let port = free_port();
    let _server = start_on(&dir, port, &["--user-storage-quota", "1000000000"]);
    let http = Http { port };
    let key = http.user("disk");
    save(
        &http,
        &key,
        "add",
        "export function add(a, b) { return a + b }",
    );
    // Fill the rest of the filesystem, leaving a file to free later.
    let filler = small.join("filler");
    let _ = std::fs::write(&filler, vec![0u8; 3 << 20]);
    // Writes fail with a clear 507 until there is space again...
    let chunk = "z".repeat(200_000);
    let mut full = None;
    for n in 0..40 {
        let (status, answer) = http.call(
            "PUT",
            &format!("/v1/vals/fill{n}"),
            Some(&key),
            Some(json!({"code": format!("export const fill{n} = '{chunk}'")})),
        );
        if status != 200 {
            full = Some((status, answer));
            break;
        }
    }
    let (status, answer) = full.expect("the filesystem never filled");
    assert_eq!(status, 507, "{answer}");
    assert_eq!(answer["error"]["type"], "storage_full");
    // ...while reads and runs keep working.
    assert_eq!(
        http.call("GET", "/v1/run/disk.add?args=[2,3]", None, None),
        (200, json!(5))
    );
    assert_eq!(
        http.call("GET", "/v1/vals/disk.add", Some(&key), None).0,
        200
    );
    assert_eq!(http.call("GET", "/healthz", None, None).0, 200);
    // Space returns: writes work again, and nothing was corrupted.
    std::fs::remove_file(&filler).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, answer) = http.call(
            "PUT",
            "/v1/vals/after",
            Some(&key),
            Some(json!({"code": "export const after = 1"})),
        );
        if status == 200 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "writes never recovered: {answer}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        http.call("GET", "/v1/run/disk.after", Some(&key), None),
        (200, json!(1))
    );
    assert_eq!(
        http.call("GET", "/v1/run/disk.add?args=[1,1]", None, None),
        (200, json!(2))
    );
}

//! The queue and the schedules when Redis and processes fail, with real
//! processes: a `redis-server` this test starts (and kills, and starts
//! again empty), `valbox serve` nodes and `valbox worker`s sharing one
//! SQLite file.
//!
//! - Redis restarted without its data: every job the store holds still
//!   runs, exactly once; a job submitted while Redis is down is accepted;
//!   a schedule's ticks claimed during the outage all run, once.
//! - Two nodes and two workers, three 1 s schedules, one worker and then
//!   one node killed with SIGKILL and started again: every tick runs once
//!   (no tick twice, none missing that a run does not count as skipped).

mod common;

use common::{free_port, fresh_dir, wait_for_port, Http, Process, ADMIN};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A `redis-server` without persistence on `port`.
fn redis_on(port: u16) -> Process {
    let server = Command::new("redis-server")
        .args([
            "--port",
            &port.to_string(),
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .stdout(Stdio::null())
        .spawn()
        .expect("redis-server is installed (scripts/setup.sh installs it)");
    let server = Process(server);
    wait_for_port(port, "redis-server");
    server
}

fn valbox(command: &str, dir: &Path, redis: &str, args: &[&str], stderr: Stdio) -> Process {
    Process(
        Command::new(env!("CARGO_BIN_EXE_valbox"))
            .arg(command)
            .args(args)
            .args(["--min-schedule-interval", "1s"])
            .env("VALBOX_DATA_DIR", dir)
            .env("VALBOX_ADMIN_KEY", ADMIN)
            .env("VALBOX_REDIS_URL", redis)
            .stderr(stderr)
            .spawn()
            .unwrap(),
    )
}

fn node(dir: &Path, redis: &str, port: u16) -> Process {
    let listen = format!("127.0.0.1:{port}");
    let process = valbox(
        "serve",
        dir,
        redis,
        &["--listen", &listen, "--job-workers", "0"],
        common::server_log(port).into(),
    );
    wait_for_port(port, "valbox serve");
    process
}

fn job_status(http: &Http, key: &str, id: &str) -> Value {
    let (status, body) = http.call("GET", &format!("/v1/jobs/{id}"), Some(key), None);
    assert_eq!(status, 200, "{body}");
    body
}

#[test]
fn jobs_stored_before_redis_lost_its_data_still_run_exactly_once() {
    let redis_port = free_port();
    let redis_url = format!("redis://127.0.0.1:{redis_port}/0");
    let redis = redis_on(redis_port);
    let dir = fresh_dir("redis-recovery-jobs");
    let port = free_port();
    let _node = node(&dir, &redis_url, port);
    let http = Http { port };
    let key = http.user("alice");
    let submit = |n: u32| -> String {
        let (status, body) = http.call(
            "POST",
            "/v1/jobs",
            Some(&key),
            Some(json!({"kind": "eval", "code": format!("{n} * 2")})),
        );
        assert_eq!(status, 202, "job {n}: {body}");
        body["id"].as_str().unwrap().to_string()
    };
    let mut jobs: Vec<(u32, String)> = (0..50).map(|n| (n, submit(n))).collect();
    // A schedule keeps ticking through the outage: its ticks are stored.
    let code = "export default (i) => { console.log(JSON.stringify({at: i.scheduledAt.getTime(), skipped: i.skippedTicks})) }";
    let (status, body) = http.call(
        "PUT",
        "/v1/vals/beat",
        Some(&key),
        Some(json!({"code": code, "schedule": {"every": "1s"}})),
    );
    assert_eq!(status, 200, "{body}");
    // Redis dies: a job submitted now is still accepted (the store has it).
    drop(redis);
    jobs.extend((50..55).map(|n| (n, submit(n))));
    std::thread::sleep(Duration::from_secs(3));
    // Redis comes back empty, as after a restart without persistence.
    let _redis = redis_on(redis_port);
    jobs.extend((55..65).map(|n| (n, submit(n))));
    let _worker = valbox("worker", &dir, &redis_url, &[], Stdio::null());
    let deadline = Instant::now() + Duration::from_secs(60);
    for (n, id) in &jobs {
        let job = loop {
            let job = job_status(&http, &key, id);
            if job["status"] == "done" {
                break job;
            }
            assert!(Instant::now() < deadline, "job {n} never ran: {job}");
            std::thread::sleep(Duration::from_millis(100));
        };
        assert_eq!(job["result"], json!(n * 2), "job {n}");
        assert_eq!(job["attempts"], 1, "job {n} ran exactly once: {job}");
    }
    // Every tick claimed during the outage runs, once: those Redis never
    // had are queued by the reconciler after its grace period.
    let (status, _) = http.call(
        "PATCH",
        "/v1/vals/beat",
        Some(&key),
        Some(json!({"paused": true})),
    );
    assert_eq!(status, 200);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, listed) = http.call("GET", "/v1/jobs?limit=100", Some(&key), None);
        let waiting = listed["jobs"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|job| job["status"] != "done")
            .count();
        if waiting == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{waiting} jobs never ran: {listed}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let runs = &ticks(&http, &key)["alice.beat"];
    assert!(runs.len() >= 4, "{runs:?}");
    for pair in runs.windows(2) {
        let ((earlier, skipped), (later, _)) = (pair[0], pair[1]);
        assert_eq!(later - earlier, 1_000 * (1 + skipped), "{runs:?}");
    }
}

/// The ticks each schedule ran, by val: (scheduledAt, skippedTicks).
fn ticks(http: &Http, key: &str) -> BTreeMap<String, Vec<(i64, i64)>> {
    let mut by_val: BTreeMap<String, Vec<(i64, i64)>> = BTreeMap::new();
    let mut before = String::new();
    loop {
        let (status, page) = http.call(
            "GET",
            &format!("/v1/evaluations?limit=100{before}"),
            Some(key),
            None,
        );
        assert_eq!(status, 200, "{page}");
        let records = page["evaluations"].as_array().unwrap();
        for record in records {
            let target = record["record"]["target"].as_str().unwrap_or_default();
            let Some(line) = record["record"]["logs"][0]["message"].as_str() else {
                continue;
            };
            let run: Value = serde_json::from_str(line).unwrap();
            by_val
                .entry(target.split('@').nth(1).unwrap_or_default().to_string())
                .or_default()
                .push((
                    run["at"].as_i64().unwrap(),
                    run["skipped"].as_i64().unwrap(),
                ));
        }
        match records.last() {
            Some(last) if records.len() == 100 => before = format!("&before={}", last["id"]),
            _ => break,
        }
    }
    for runs in by_val.values_mut() {
        runs.sort();
    }
    by_val
}

#[test]
fn every_tick_runs_once_across_nodes_while_workers_and_nodes_are_killed() {
    let redis_port = free_port();
    let redis_url = format!("redis://127.0.0.1:{redis_port}/0");
    let _redis = redis_on(redis_port);
    let dir = fresh_dir("redis-recovery-schedules");
    let (port_a, port_b) = (free_port(), free_port());
    let node_a = node(&dir, &redis_url, port_a);
    let _node_b = node(&dir, &redis_url, port_b);
    let worker_1 = valbox("worker", &dir, &redis_url, &[], Stdio::null());
    let _worker_2 = valbox("worker", &dir, &redis_url, &[], Stdio::null());
    let http = Http { port: port_b };
    let key = http.user("al");
    let code = "export default (i) => { console.log(JSON.stringify({at: i.scheduledAt.getTime(), skipped: i.skippedTicks})) }";
    for name in ["one", "two", "three"] {
        let (status, body) = http.call(
            "PUT",
            &format!("/v1/vals/{name}"),
            Some(&key),
            Some(json!({"code": code, "schedule": {"every": "1s"}})),
        );
        assert_eq!(status, 200, "{body}");
    }
    // The kills land half-way between ticks (val "one" ticks whole seconds
    // after it was saved). A worker killed while it runs a tick leaves that
    // tick to be taken over after the visibility timeout (15 s), later
    // than this test looks (`redis_jobs`'s
    // `a_job_whose_worker_dies_is_taken_over_by_another` covers that).
    std::thread::sleep(Duration::from_millis(4_500));
    drop(worker_1); // SIGKILL
    let _worker_1 = valbox("worker", &dir, &redis_url, &[], Stdio::null());
    std::thread::sleep(Duration::from_secs(4));
    drop(node_a); // SIGKILL
    let _node_a = node(&dir, &redis_url, port_a);
    std::thread::sleep(Duration::from_secs(4));
    for name in ["one", "two", "three"] {
        let (status, _) = http.call(
            "PATCH",
            &format!("/v1/vals/{name}"),
            Some(&key),
            Some(json!({"paused": true})),
        );
        assert_eq!(status, 200);
    }
    // Let the last claimed ticks finish.
    std::thread::sleep(Duration::from_secs(2));
    let by_val = ticks(&http, &key);
    assert_eq!(by_val.len(), 3, "{by_val:?}");
    for (val, runs) in &by_val {
        assert!(runs.len() >= 9, "{val}: about 12 ticks in 12 s: {runs:?}");
        for pair in runs.windows(2) {
            let ((earlier, skipped), (later, _)) = (pair[0], pair[1]);
            assert_ne!(earlier, later, "{val}: tick {earlier} ran twice: {runs:?}");
            assert_eq!(
                later - earlier,
                1_000 * (1 + skipped),
                "{val}: ticks between {earlier} and {later} neither ran nor were counted: {runs:?}"
            );
        }
    }
}

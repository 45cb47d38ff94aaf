//! Scheduled vals on the embedded store, through a real `valbox serve`:
//! an `every: 1s` schedule runs about once a second with the previous run's
//! time as `lastRunAt`; pause, resume and removal; a failing val pauses
//! after the limit and emails its author; downtime ends in one catch-up run
//! that counts the ticks it missed.

mod common;

use common::{free_port, fresh_dir, wait_for_port, Http, Process, ADMIN};
use serde_json::{json, Value};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

fn serve(dir: &Path, port: u16) -> Process {
    let process = Process(
        Command::new(env!("CARGO_BIN_EXE_valbox"))
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .args([
                "--min-schedule-interval",
                "1s",
                "--schedule-max-failures",
                "3",
            ])
            .env("VALBOX_DATA_DIR", dir)
            .env("VALBOX_ADMIN_KEY", ADMIN)
            .stderr(common::server_log(port))
            .spawn()
            .unwrap(),
    );
    wait_for_port(port, "valbox serve");
    process
}

/// The val logs what it was given; every record of a run, oldest first.
const TICK: &str = "export default (interval) => {\n\
  console.log(JSON.stringify({\n\
    last: interval.lastRunAt instanceof Date ? interval.lastRunAt.getTime() : String(interval.lastRunAt),\n\
    at: interval.scheduledAt.getTime(), attempt: interval.attempt, skipped: interval.skippedTicks }));\n\
}";

/// What each run of `name` logged, oldest first.
fn runs(http: &Http, key: &str, name: &str) -> Vec<Value> {
    let (status, body) = http.call("GET", "/v1/evaluations?limit=100", Some(key), None);
    assert_eq!(status, 200, "{body}");
    let mut runs: Vec<Value> = body["evaluations"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| {
            e["record"]["target"]
                .as_str()
                .is_some_and(|t| t.starts_with(&format!("@{}.", "al")) && t.contains(name))
        })
        .filter_map(|e| {
            let line = e["record"]["logs"][0]["message"].as_str()?;
            serde_json::from_str(line).ok()
        })
        .collect();
    runs.reverse();
    runs
}

fn schedule(http: &Http, key: &str, name: &str) -> Value {
    let (status, body) = http.call("GET", &format!("/v1/vals/al.{name}"), Some(key), None);
    assert_eq!(status, 200, "{body}");
    body["schedule"].clone()
}

fn save(http: &Http, key: &str, name: &str, body: Value) {
    let (status, answer) = http.call("PUT", &format!("/v1/vals/{name}"), Some(key), Some(body));
    assert_eq!(status, 200, "{answer}");
}

fn patch(http: &Http, key: &str, name: &str, body: Value) -> (u16, Value) {
    http.call("PATCH", &format!("/v1/vals/{name}"), Some(key), Some(body))
}

#[test]
fn an_interval_schedule_runs_every_tick_with_the_last_run_time() {
    let dir = fresh_dir("schedules-every");
    let port = free_port();
    let server = serve(&dir, port);
    let http = Http { port };
    let key = http.user("al");
    save(
        &http,
        &key,
        "tick",
        json!({"code": TICK, "schedule": {"every": "1s"}}),
    );
    std::thread::sleep(Duration::from_millis(4_500));
    let seen = runs(&http, &key, "tick");
    assert!(
        (3..=5).contains(&seen.len()),
        "about one run a second: {seen:?}"
    );
    assert_eq!(
        seen[0]["last"], "undefined",
        "the first run has no lastRunAt"
    );
    for pair in seen.windows(2) {
        let (earlier, later) = (&pair[0], &pair[1]);
        assert_eq!(
            later["at"].as_i64().unwrap() - earlier["at"].as_i64().unwrap(),
            1_000
        );
        let last = later["last"].as_i64().expect("lastRunAt is a Date");
        assert!(
            last >= earlier["at"].as_i64().unwrap() && last < later["at"].as_i64().unwrap(),
            "lastRunAt is the previous run's start: {pair:?}"
        );
        assert_eq!(later["skipped"], 0);
    }
    let shown = schedule(&http, &key, "tick");
    assert_eq!(shown["schedule"], json!({"every": "1s"}));
    assert_eq!(shown["last_status"], "done");
    assert!(shown["next_run_at"].is_string() && shown["last_run_at"].is_string());
    let (status, list) = http.call("GET", "/v1/schedules", Some(&key), None);
    assert_eq!(status, 200);
    assert_eq!(list["schedules"][0]["val"], "al.tick");
    // Each run is one of the author's jobs.
    let (status, jobs) = http.call("GET", "/v1/jobs?limit=100", Some(&key), None);
    assert_eq!(status, 200, "{jobs}");
    let ticks: Vec<&Value> = jobs["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|job| job["request"]["kind"] == "schedule" && job["request"]["name"] == "tick")
        .collect();
    assert!(ticks.len() >= seen.len(), "{jobs}");
    assert!(ticks.iter().all(|job| job["owner"] == "al"));

    // Paused: no run. Resumed: runs again. Removed: no schedule at all.
    assert_eq!(patch(&http, &key, "tick", json!({"paused": true})).0, 200);
    let before = runs(&http, &key, "tick").len();
    std::thread::sleep(Duration::from_millis(2_200));
    assert_eq!(
        runs(&http, &key, "tick").len(),
        before,
        "a paused schedule does not run"
    );
    assert_eq!(schedule(&http, &key, "tick")["paused"], true);
    assert_eq!(patch(&http, &key, "tick", json!({"paused": false})).0, 200);
    std::thread::sleep(Duration::from_millis(2_200));
    assert!(runs(&http, &key, "tick").len() > before, "resumed");
    assert_eq!(patch(&http, &key, "tick", json!({"schedule": null})).0, 200);
    assert_eq!(schedule(&http, &key, "tick"), Value::Null);
    let after = runs(&http, &key, "tick").len();
    std::thread::sleep(Duration::from_millis(1_500));
    assert_eq!(runs(&http, &key, "tick").len(), after, "removed");

    // Bad schedules are clear 400s; the operator's minimum holds.
    for (bad, says) in [
        (json!({"every": "10ms"}), "at least 1s"),
        (json!({"cron": "not cron"}), "not a cron expression"),
        (
            json!({"cron": "0 9 * * *", "timezone": "Nowhere/City"}),
            "IANA",
        ),
    ] {
        let (status, body) = patch(&http, &key, "tick", json!({ "schedule": bad }));
        assert_eq!(status, 400, "{body}");
        assert!(
            body["error"]["message"].as_str().unwrap().contains(says),
            "{body}"
        );
    }
    let (status, body) = patch(&http, &key, "nothing", json!({"schedule": {"every": "1s"}}));
    assert_eq!(status, 404, "{body}");
    let (status, body) = patch(&http, &key, "tick", json!({"paused": true}));
    assert_eq!(status, 400, "no schedule to pause: {body}");
    drop(server);
}

#[test]
fn a_failing_schedule_pauses_itself_and_emails_its_author() {
    let dir = fresh_dir("schedules-failing");
    let port = free_port();
    let _server = serve(&dir, port);
    let http = Http { port };
    let key = http.user("al");
    save(
        &http,
        &key,
        "flaky",
        json!({"code": "export default () => { throw new Error('upstream is down') }",
               "schedule": {"every": "1s"}}),
    );
    std::thread::sleep(Duration::from_millis(4_500));
    let shown = schedule(&http, &key, "flaky");
    assert_eq!(shown["paused"], true, "{shown}");
    assert_eq!(shown["consecutive_failures"], 3);
    assert_eq!(shown["last_status"], "failed");
    assert_eq!(shown["last_error"], "Error: upstream is down");
    let (status, emails) = http.call("GET", "/v1/emails", Some(&key), None);
    assert_eq!(status, 200, "{emails}");
    let notice = &emails["emails"][0];
    assert!(
        notice["subject"]
            .as_str()
            .unwrap()
            .contains("@al.flaky is paused"),
        "{notice}"
    );
    let body = notice["body"].as_str().unwrap();
    assert!(
        body.contains("upstream is down") && body.contains("\"paused\": false"),
        "{body}"
    );
    // Only the notice: three failures, one email.
    assert_eq!(emails["emails"].as_array().unwrap().len(), 1);
}

#[test]
fn downtime_ends_in_one_catch_up_run_that_counts_the_missed_ticks() {
    let dir = fresh_dir("schedules-downtime");
    let port = free_port();
    let server = serve(&dir, port);
    let http = Http { port };
    let key = http.user("al");
    save(
        &http,
        &key,
        "tick",
        json!({"code": TICK, "schedule": {"every": "1s"}}),
    );
    std::thread::sleep(Duration::from_millis(1_500));
    drop(server);
    std::thread::sleep(Duration::from_secs(5));
    let port = free_port();
    let _server = serve(&dir, port);
    std::thread::sleep(Duration::from_millis(600));
    let http = Http { port };
    let seen = runs(&http, &key, "tick");
    let catch_up = seen
        .iter()
        .find(|run| run["skipped"].as_u64().unwrap_or(0) > 0)
        .unwrap_or_else(|| panic!("a catch-up run: {seen:?}"));
    assert!(
        (3..=7).contains(&catch_up["skipped"].as_u64().unwrap()),
        "5 s down at 1 s a tick: {catch_up}"
    );
    let catch_ups = seen.iter().filter(|run| run["skipped"] != 0).count();
    assert_eq!(catch_ups, 1, "one catch-up run, not a storm: {seen:?}");
}

#[test]
fn a_pinned_schedule_runs_its_version_and_an_unpinned_one_the_latest() {
    let dir = fresh_dir("schedules-pinned");
    let port = free_port();
    let _server = serve(&dir, port);
    let http = Http { port };
    let key = http.user("al");
    let logs = |version: &str| {
        format!("export default (i) => {{ console.log(JSON.stringify({{at: i.scheduledAt.getTime(), skipped: 0, v: '{version}'}})) }}")
    };
    save(&http, &key, "job", json!({"code": logs("one")}));
    save(
        &http,
        &key,
        "job",
        json!({"code": logs("two"), "schedule": {"every": "1s", "version": 1}}),
    );
    assert_eq!(
        schedule(&http, &key, "job")["schedule"],
        json!({"every": "1s", "version": 1})
    );
    std::thread::sleep(Duration::from_millis(2_300));
    let pinned = runs(&http, &key, "job");
    assert!(
        !pinned.is_empty() && pinned.iter().all(|run| run["v"] == "one"),
        "{pinned:?}"
    );
    let (status, _) = patch(&http, &key, "job", json!({"schedule": {"every": "1s"}}));
    assert_eq!(status, 200);
    std::thread::sleep(Duration::from_millis(2_300));
    let all = runs(&http, &key, "job");
    assert_eq!(
        all.last().unwrap()["v"],
        "two",
        "unpinned: the latest version: {all:?}"
    );
    let (status, body) = patch(
        &http,
        &key,
        "job",
        json!({"schedule": {"every": "1s", "version": 9}}),
    );
    assert_eq!(status, 404, "a pinned version must exist: {body}");
}

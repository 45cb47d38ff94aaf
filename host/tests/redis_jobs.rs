//! The job queue on Redis Streams, against a real `redis-server` (started
//! here on a free port unless `VALBOX_TEST_REDIS_URL` names one; each test
//! then uses a database of its own) and real `valbox serve` and `valbox
//! worker` processes sharing one data dir.

mod common;

use common::{free_port, redis, wait_for_port, Http, Process, ADMIN};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn fresh_dir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn valbox(command: &str, dir: &Path, redis: &str, extra: &[(&str, &str)]) -> Process {
    let mut process = Command::new(env!("CARGO_BIN_EXE_valbox"));
    process
        .arg(command)
        .env("VALBOX_DATA_DIR", dir)
        .env("VALBOX_ADMIN_KEY", ADMIN)
        .env("VALBOX_REDIS_URL", redis)
        .stderr(Stdio::null());
    for (key, value) in extra {
        process.env(key, value);
    }
    Process(process.spawn().unwrap())
}

struct Api {
    http: Http,
    _server: Process,
}

impl std::ops::Deref for Api {
    type Target = Http;
    fn deref(&self) -> &Http {
        &self.http
    }
}

impl Api {
    fn start(dir: &Path, redis: &str, extra: &[(&str, &str)]) -> Api {
        let port = free_port();
        let listen = format!("127.0.0.1:{port}");
        let mut settings = vec![("VALBOX_LISTEN", listen.as_str())];
        settings.extend_from_slice(extra);
        let server = valbox("serve", dir, redis, &settings);
        wait_for_port(port, "valbox serve");
        Api {
            http: Http { port },
            _server: server,
        }
    }

    fn submit(&self, key: &str, job: Value) -> String {
        let (status, body) = self.call("POST", "/v1/jobs", Some(key), Some(job));
        assert_eq!(status, 202, "{body}");
        body["id"].as_str().unwrap().to_string()
    }

    fn job(&self, key: &str, id: &str) -> Value {
        let (status, body) = self.call("GET", &format!("/v1/jobs/{id}"), Some(key), None);
        assert_eq!(status, 200, "{body}");
        body
    }

    fn wait_for(&self, key: &str, id: &str, status: &str, within: Duration) -> Value {
        let deadline = Instant::now() + within;
        loop {
            let job = self.job(key, id);
            if job["status"] == status {
                return job;
            }
            assert!(Instant::now() < deadline, "job {id} is not {status}: {job}");
            std::thread::sleep(Duration::from_millis(25));
        }
    }
}

fn stream_length(redis: &str, stream: &str) -> i64 {
    let mut connection = redis::Client::open(redis)
        .unwrap()
        .get_connection()
        .unwrap();
    redis::cmd("XLEN")
        .arg(stream)
        .query(&mut connection)
        .unwrap()
}

#[test]
fn jobs_wait_in_redis_until_a_worker_process_runs_them() {
    let (redis, _redis_server) = redis(1);
    let dir = fresh_dir("redis-jobs");
    // This server runs no jobs itself.
    let api = Api::start(&dir, &redis, &[("VALBOX_JOB_WORKERS", "0")]);
    let alice = api.user("alice");
    let bob = api.user("bob");
    let (status, _) = api.call(
        "PUT",
        "/v1/vals/add",
        Some(&bob),
        Some(json!({"code": "export function add(a, b) { return a + b }", "privacy": "public"})),
    );
    assert_eq!(status, 200);
    let run = api.submit(
        &alice,
        json!({"kind": "run", "target": "bob.add", "args": [20, 22]}),
    );
    let eval = api.submit(&alice, json!({"kind": "eval", "code": "@bob.add(1, 1)"}));
    assert_eq!(stream_length(&redis, "valbox:jobs"), 2);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        api.job(&alice, &run)["status"],
        "queued",
        "nobody runs jobs yet"
    );
    let (_, metrics) = api.raw("GET", "/metrics", None, None);
    assert!(
        metrics.lines().any(|l| l == "valbox_queue_depth 2"),
        "{metrics}"
    );

    let _worker = valbox("worker", &dir, &redis, &[]);
    let job = api.wait_for(&alice, &run, "done", Duration::from_secs(60));
    assert_eq!(job["result"], 42);
    assert_eq!(job["attempts"], 1);
    assert_eq!(
        api.wait_for(&alice, &eval, "done", Duration::from_secs(10))["result"],
        2
    );
    // The worker is another process: once it says the job is done, the
    // job's evaluation record is readable here too.
    let (status, page) = api.call(
        "GET",
        &format!("/v1/evaluations?request_id={eval}"),
        Some(&alice),
        None,
    );
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["evaluations"].as_array().unwrap().len(), 1, "{page}");
}

#[test]
fn a_job_whose_worker_dies_is_taken_over_by_another() {
    let (redis, _redis_server) = redis(2);
    let dir = fresh_dir("redis-jobs-takeover");
    // A 1 s deadline makes the visibility timeout 2 * 1 s + 5 s.
    let settings = [("VALBOX_JOB_WORKERS", "0"), ("VALBOX_DEADLINE_MS", "1000")];
    let api = Api::start(&dir, &redis, &settings);
    let alice = api.user("alice");
    let slow = "const end = Date.now() + 800; while (Date.now() < end) {} return 'finished'";
    let id = api.submit(&alice, json!({"kind": "eval", "code": slow}));
    let first = valbox("worker", &dir, &redis, &[("VALBOX_DEADLINE_MS", "1000")]);
    api.wait_for(&alice, &id, "running", Duration::from_secs(60));
    drop(first); // killed while the job runs: never acknowledged
    let _second = valbox("worker", &dir, &redis, &[("VALBOX_DEADLINE_MS", "1000")]);
    let job = api.wait_for(&alice, &id, "done", Duration::from_secs(30));
    assert_eq!(job["result"], "finished");
    assert_eq!(
        job["attempts"], 2,
        "once in the dead worker, once in the one that took over"
    );
    assert_eq!(stream_length(&redis, "valbox:jobs:dead"), 0);
}

#[test]
fn a_worker_without_redis_and_a_server_without_workers_are_refused() {
    let dir = fresh_dir("redis-refusals");
    let output = Command::new(env!("CARGO_BIN_EXE_valbox"))
        .arg("worker")
        .env("VALBOX_DATA_DIR", &dir)
        .env_remove("VALBOX_REDIS_URL")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("--redis-url"));
    let output = Command::new(env!("CARGO_BIN_EXE_valbox"))
        .arg("serve")
        .env("VALBOX_DATA_DIR", &dir)
        .env("VALBOX_JOB_WORKERS", "0")
        .env_remove("VALBOX_REDIS_URL")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("--job-workers 0"));
}

//! The PostgreSQL store (`--database-url`) against a real PostgreSQL: a
//! cluster this test starts on a free port (as the `postgres` user when run
//! as root) unless `VALBOX_TEST_POSTGRES_URL` names a database to use (it is
//! emptied first). Two `valbox serve` processes with different data dirs
//! share it, as two nodes would: each caches what it reads, and a write on
//! one is honoured by the other within the stated bound, also after the
//! other's listening connection or every pooled connection is terminated.
//! And `valbox rotate-master-key` on it, killed inside its transaction.

mod common;

use common::{free_port, read_secrets, wait_for_port, Http, Process, ADMIN};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The PostgreSQL binaries: Debian keeps them out of PATH.
fn pg_bin(name: &str) -> PathBuf {
    let debian = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .map(|version| version.path().join("bin").join(name))
        .find(|path| path.exists());
    debian.unwrap_or_else(|| PathBuf::from(name))
}

/// Runs a PostgreSQL command, as the `postgres` user when we are root
/// (PostgreSQL refuses to run as root).
fn as_postgres(program: &Path) -> Command {
    let root = std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .any(|line| line.starts_with("Uid:") && line.split_whitespace().nth(1) == Some("0"));
    if root {
        let mut command = Command::new("runuser");
        command.args(["-u", "postgres", "--"]).arg(program);
        command
    } else {
        Command::new(program)
    }
}

/// A PostgreSQL cluster this test started: stopped and removed when dropped.
struct Cluster {
    dir: PathBuf,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = as_postgres(&pg_bin("pg_ctl"))
            .args(["stop", "-m", "immediate", "-w", "-D"])
            .arg(self.dir.join("data"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A database for this test: its URL, and the cluster when this test started it.
fn postgres() -> (String, Option<Cluster>) {
    if let Ok(url) = std::env::var("VALBOX_TEST_POSTGRES_URL") {
        let mut client = postgres::Client::connect(&url, postgres::NoTls).unwrap();
        client
            .batch_execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public;")
            .unwrap();
        return (url, None);
    }
    static CLUSTERS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = CLUSTERS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("valbox-pg-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let _ = Command::new("chown")
        .arg("postgres:postgres")
        .arg(&dir)
        .status();
    let status = as_postgres(&pg_bin("initdb"))
        .args(["-A", "trust", "-U", "valbox", "-D"])
        .arg(dir.join("data"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("initdb runs (scripts/setup.sh installs postgresql)");
    assert!(status.success(), "initdb failed");
    let port = free_port();
    let cluster = Cluster { dir: dir.clone() };
    let options = format!(
        "-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
        dir.display()
    );
    let status = as_postgres(&pg_bin("pg_ctl"))
        .args(["start", "-w", "-o", &options, "-l"])
        .arg(dir.join("log"))
        .arg("-D")
        .arg(dir.join("data"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "pg_ctl start failed");
    wait_for_port(port, "postgres");
    let url = format!("postgres://valbox@127.0.0.1:{port}/postgres");
    let deadline = Instant::now() + Duration::from_secs(30);
    while postgres::Client::connect(&url, postgres::NoTls).is_err() {
        assert!(
            Instant::now() < deadline,
            "postgres does not accept connections"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    (url, Some(cluster))
}

struct Node {
    http: Http,
    server: Process,
}

impl std::ops::Deref for Node {
    type Target = Http;
    fn deref(&self) -> &Http {
        &self.http
    }
}

impl Node {
    /// The node's process id (its connections' `application_name` ends in it).
    fn pid(&self) -> u32 {
        self.server.0.id()
    }

    fn start(name: &str, database: &str) -> Node {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
        let _ = std::fs::remove_dir_all(&dir);
        let port = free_port();
        let server = Command::new(env!("CARGO_BIN_EXE_valbox"))
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .env("VALBOX_DATA_DIR", &dir)
            .env("VALBOX_ADMIN_KEY", ADMIN)
            .env("VALBOX_DATABASE_URL", database)
            // Secrets sealed on one node are read on the other.
            .env(
                "VALBOX_MASTER_KEY",
                "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff",
            )
            .stderr(common::server_log(port))
            .spawn()
            .unwrap();
        let server = Process(server);
        wait_for_port(port, "valbox serve");
        Node {
            http: Http { port },
            server,
        }
    }

    fn save(&self, key: &str, name: &str, privacy: &str, code: &str) -> Value {
        let (status, body) = self.call(
            "PUT",
            &format!("/v1/vals/{name}"),
            Some(key),
            Some(json!({"code": code, "privacy": privacy})),
        );
        assert_eq!(status, 200, "{body}");
        body
    }
}

#[test]
fn two_nodes_share_users_vals_secrets_traces_emails_and_jobs() {
    let (database, _postgres) = postgres();
    let one = Node::start("pg-node-one", &database);
    let two = Node::start("pg-node-two", &database);

    let alice = one.user("alice");
    let bob = one.user("bob");
    assert_eq!(
        two.call(
            "POST",
            "/v1/users",
            Some(ADMIN),
            Some(json!({"handle": "bob", "email": "b@x"}))
        )
        .0,
        409
    );
    assert_eq!(
        two.call("GET", "/v1/me", Some(&alice), None).1["handle"],
        "alice"
    );

    one.save(
        &bob,
        "add",
        "public",
        "export function add(a, b) { return a + b }",
    );
    let v2 = two.save(
        &bob,
        "add",
        "public",
        "export function add(a, b) { return a * b }",
    );
    assert_eq!(v2["version"], 2, "versions count across nodes");
    one.save(
        &bob,
        "hidden",
        "private",
        "export const hidden = 'bob only'",
    );
    assert_eq!(
        one.call("GET", "/v1/run/bob.add?args=[3,4]", None, None).1,
        json!(12)
    );
    let (status, body) = two.call(
        "POST",
        "/v1/eval",
        Some(&alice),
        Some(json!({"code": "@bob.add@1(3, 4)"})),
    );
    assert_eq!((status, body), (200, json!(7)));
    assert_eq!(
        two.call("GET", "/v1/vals/bob.hidden", Some(&alice), None).0,
        404
    );
    assert_eq!(
        two.call("GET", "/v1/vals/bob.hidden", Some(&bob), None).1["code"],
        "export const hidden = 'bob only'"
    );
    let (_, versions) = two.call("GET", "/v1/vals/bob.add/versions", None, None);
    assert_eq!(
        versions["versions"].as_array().map(Vec::len),
        Some(2),
        "{versions}"
    );
    assert_eq!(
        one.call(
            "PATCH",
            "/v1/vals/add",
            Some(&bob),
            Some(json!({"privacy": "private"}))
        )
        .0,
        200
    );
    within("made private on the other node", || {
        two.call("GET", "/v1/run/bob.add?args=[1,1]", None, None).0 == 404
    });

    assert_eq!(
        one.call(
            "PUT",
            "/v1/secrets/token",
            Some(&alice),
            Some(json!({"value": "s3cret"}))
        )
        .0,
        200
    );
    let (_, secret) = two.call(
        "POST",
        "/v1/eval",
        Some(&alice),
        Some(json!({"code": "@me.secrets.token"})),
    );
    assert_eq!(secret, "s3cret");
    assert_eq!(
        two.call("GET", "/v1/secrets", Some(&alice), None).1,
        json!({"secrets": ["token"]})
    );

    let (_, sent) = one.call(
        "POST",
        "/v1/eval",
        Some(&alice),
        Some(json!({"code": "console.email('hi', 'there'); return 1"})),
    );
    assert_eq!(sent, 1);
    let (_, emails) = two.call("GET", "/v1/emails", Some(&alice), None);
    assert_eq!(emails["emails"][0]["subject"], "hi", "{emails}");
    // Records are batched per node (≤ 10 ms): the other node sees them after.
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let (_, traces) = two.call("GET", "/v1/evaluations?limit=10", Some(&alice), None);
        if traces["evaluations"]
            .as_array()
            .is_some_and(|t| t.len() >= 3)
        {
            break;
        }
        assert!(Instant::now() < deadline, "{traces}");
        std::thread::sleep(Duration::from_millis(20));
    }

    let (status, queued) = one.call(
        "POST",
        "/v1/jobs",
        Some(&alice),
        Some(json!({"kind": "eval", "code": "6 * 7"})),
    );
    assert_eq!(status, 202);
    let id = queued["id"].as_str().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, job) = two.call("GET", &format!("/v1/jobs/{id}"), Some(&alice), None);
        if job["status"] == "done" {
            assert_eq!(job["result"], 42);
            break;
        }
        assert!(Instant::now() < deadline, "{job}");
        std::thread::sleep(Duration::from_millis(25));
    }

    assert_eq!(
        one.call("DELETE", "/v1/vals/hidden", Some(&bob), None).0,
        200
    );
    // Node two may answer from its cache until one's announcement arrives.
    within("deleted on the other node", || {
        two.call("GET", "/v1/vals/bob.hidden", Some(&bob), None).0 == 404
    });

    // The database drops every node's connection (a restart, a failover):
    // a request may fail while a node notices, then it connects again.
    let mut admin = postgres::Client::connect(&database, postgres::NoTls).unwrap();
    admin
        .execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid <> pg_backend_pid() AND datname = current_database()",
            &[],
        )
        .unwrap();
    for node in [&one, &two] {
        let recovered = (0..3).any(|_| node.call("GET", "/v1/me", Some(&alice), None).0 == 200);
        assert!(recovered, "a node did not reconnect to the database");
    }

    // Keys: made on one node, refused on the other as soon as the revocation's
    // announcement arrives (milliseconds; `within` allows 2 s).
    let (status, made) = one.call(
        "POST",
        "/v1/me/keys",
        Some(&alice),
        Some(json!({"name": "ci", "scopes": ["run"]})),
    );
    assert_eq!(status, 201, "{made}");
    let ci = made["key"].as_str().unwrap();
    assert_eq!(
        two.call("POST", "/v1/eval", Some(ci), Some(json!({"code": "1"})))
            .0,
        200
    );
    assert_eq!(two.call("GET", "/v1/secrets", Some(ci), None).0, 403);
    let id = made["id"].as_str().unwrap();
    assert_eq!(
        one.call("DELETE", &format!("/v1/me/keys/{id}"), Some(&alice), None)
            .0,
        200
    );
    within("revoked on the other node", || {
        two.call("POST", "/v1/eval", Some(ci), Some(json!({"code": "1"})))
            .0
            == 401
    });

    // Deleting a user removes everything theirs and retires the handle.
    assert_eq!(
        two.call("DELETE", "/v1/users/bob", Some(ADMIN), None).0,
        200
    );
    within("deleted on the other node", || {
        one.call("GET", "/v1/me", Some(&bob), None).0 == 401
    });
    let mut admin = postgres::Client::connect(&database, postgres::NoTls).unwrap();
    for table in [
        "vals WHERE owner",
        "val_versions WHERE owner",
        "api_keys WHERE handle",
    ] {
        let left: i64 = admin
            .query_one(&format!("SELECT count(*) FROM {table} = 'bob'"), &[])
            .unwrap()
            .get(0);
        assert_eq!(left, 0, "{table}");
    }
    let (status, _) = one.call(
        "POST",
        "/v1/users",
        Some(ADMIN),
        Some(json!({"handle": "bob", "email": "b@x"})),
    );
    assert_eq!(status, 409);
}

#[test]
fn the_master_key_rotates_on_postgres_even_when_killed_inside_its_transaction() {
    if std::env::var("VALBOX_TEST_POSTGRES_URL").is_ok() {
        // The shared database is emptied by the other test of this file.
        return;
    }
    let (database, _postgres) = postgres();
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("pg-rotate");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    // The master key lives in the data dir (no VALBOX_MASTER_KEY). One
    // call reads all the secrets, a query each: on a loaded machine that
    // takes longer than the default deadline.
    let serve = || {
        let port = free_port();
        let server = Process(
            Command::new(env!("CARGO_BIN_EXE_valbox"))
                .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
                .env("VALBOX_DATA_DIR", &dir)
                .env("VALBOX_ADMIN_KEY", ADMIN)
                .env("VALBOX_DATABASE_URL", &database)
                .env("VALBOX_DEADLINE_MS", "60000")
                .stderr(common::server_log(port))
                .spawn()
                .unwrap(),
        );
        wait_for_port(port, "valbox serve");
        (server, Http { port })
    };
    let count = 1500;
    let key = {
        let (_server, http) = serve();
        let key = http.user("sec");
        for n in 0..count {
            let (status, _) = http.call(
                "PUT",
                &format!("/v1/secrets/s{n}"),
                Some(&key),
                Some(json!({"value": format!("value {n}")})),
            );
            assert_eq!(status, 200);
        }
        key
    };
    let expected: Value = (0..count).map(|n| json!(format!("value {n}"))).collect();
    let old_key = std::fs::read_to_string(dir.join("master.key")).unwrap();
    let new_file = dir.join("new.key");
    std::fs::write(&new_file, "ab".repeat(32)).unwrap();
    let rotate = || {
        let mut command = Command::new(env!("CARGO_BIN_EXE_valbox"));
        command
            .args(["rotate-master-key", "--new-key-file"])
            .arg(&new_file)
            .env("VALBOX_DATA_DIR", &dir)
            .env("VALBOX_DATABASE_URL", &database)
            .stderr(Stdio::piped());
        command
    };

    // kill -9 exactly while the rotation's transaction is open: watched
    // from PostgreSQL's own view of its backends.
    let mut watcher = postgres::Client::connect(&database, postgres::NoTls).unwrap();
    let mut child = rotate().spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let open: i64 = watcher
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE pid <> pg_backend_pid() \
                 AND xact_start IS NOT NULL AND query ILIKE '%secrets%'",
                &[],
            )
            .unwrap()
            .get(0);
        if open > 0 {
            break;
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "the rotation ended before its transaction was seen"
        );
        assert!(Instant::now() < deadline, "the rotation never began");
    }
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(
        std::fs::read_to_string(dir.join("master.key")).unwrap(),
        old_key,
        "killed before its commit: the key file is unchanged"
    );
    {
        // Nothing was committed: the old key opens every secret.
        let (_server, http) = serve();
        assert_eq!(read_secrets(&http, &key, count), expected);
    }

    // Run again to the end: every secret opens with the new key, none with the old.
    let output = rotate().output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("master.key"))
            .unwrap()
            .trim(),
        "ab".repeat(32)
    );
    {
        let (_server, http) = serve();
        assert_eq!(read_secrets(&http, &key, count), expected);
    }
    let output = Command::new(env!("CARGO_BIN_EXE_valbox"))
        .args(["serve", "--listen", &format!("127.0.0.1:{}", free_port())])
        .env("VALBOX_DATA_DIR", &dir)
        .env("VALBOX_DATABASE_URL", &database)
        .env("VALBOX_MASTER_KEY", old_key.trim())
        .output()
        .unwrap();
    assert!(
        !output.status.success(),
        "a node with the old key refuses to start"
    );
    assert!(String::from_utf8_lossy(&output.stderr).contains("master key"));
}

/// Polls `check` every 5 ms until it holds; how long that took (panics after 2 s).
fn within(what: &str, mut check: impl FnMut() -> bool) -> Duration {
    let started = Instant::now();
    while !check() {
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{what}: not seen within 2 s"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    started.elapsed()
}

/// Terminates the backends whose `application_name` is `name`; how many.
fn terminate(database: &str, name: &str) -> i64 {
    let mut admin = postgres::Client::connect(database, postgres::NoTls).unwrap();
    admin
        .query_one(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = $1",
            &[&name],
        )
        .unwrap()
        .get(0)
}

fn backends(database: &str, name: &str) -> i64 {
    let mut admin = postgres::Client::connect(database, postgres::NoTls).unwrap();
    admin
        .query_one(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1",
            &[&name],
        )
        .unwrap()
        .get(0)
}

#[test]
fn a_write_on_one_node_is_honoured_by_the_other_s_cache_within_the_bound() {
    if std::env::var("VALBOX_TEST_POSTGRES_URL").is_ok() {
        return; // the shared database is emptied by the other tests of this file
    }
    let (database, _postgres) = postgres();
    let a = Node::start("pg-cache-a", &database);
    let b = Node::start("pg-cache-b", &database);
    let alice = a.user("alice");
    let bob = a.user("bob");
    let run =
        |node: &Node, key: &str| node.call("POST", "/v1/run/alice.f", Some(key), Some(json!([])));
    let answers = |node: &Node, key: &str, expected: (u16, Value)| {
        let (status, body) = run(node, key);
        if status == 200 {
            (status, body) == expected
        } else {
            status == expected.0
        }
    };
    a.save(&alice, "f", "public", "export function f() { return 1 }");
    for _ in 0..3 {
        assert_eq!(
            run(&b, &bob),
            (200, json!(1)),
            "b caches alice.f and bob's key"
        );
    }
    let (_, metrics) = b.raw("GET", "/metrics", None, None);
    let hits: f64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("valbox_cache_lookups_total{result=\"hit\"} "))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    assert!(hits >= 4.0, "b answers from its cache: {metrics}");
    assert!(metrics.contains("valbox_cache_live 1"), "{metrics}");
    let mut worst = Duration::ZERO;
    // A new version.
    a.save(&alice, "f", "public", "export function f() { return 2 }");
    worst = worst.max(within("a new version", || {
        answers(&b, &bob, (200, json!(2)))
    }));
    // Made private: bob no longer sees it on b.
    let (status, _) = a.call(
        "PATCH",
        "/v1/vals/f",
        Some(&alice),
        Some(json!({"privacy": "private"})),
    );
    assert_eq!(status, 200);
    worst = worst.max(within("made private", || {
        answers(&b, &bob, (404, Value::Null))
    }));
    assert_eq!(run(&b, &alice), (200, json!(2)), "its owner still runs it");
    // Deleted.
    let (status, _) = a.call("DELETE", "/v1/vals/f", Some(&alice), None);
    assert_eq!(status, 200);
    worst = worst.max(within("deleted", || {
        answers(&b, &alice, (404, Value::Null))
    }));
    // A key revoked on a.
    let (status, created) = a.call(
        "POST",
        "/v1/me/keys",
        Some(&alice),
        Some(json!({"name": "script", "scopes": ["vals:read"]})),
    );
    assert_eq!(status, 201, "{created}");
    let script = created["key"].as_str().unwrap().to_string();
    assert_eq!(b.call("GET", "/v1/me", Some(&script), None).0, 200);
    let (status, _) = a.call(
        "DELETE",
        &format!("/v1/me/keys/{}", created["id"].as_str().unwrap()),
        Some(&alice),
        None,
    );
    assert_eq!(status, 200);
    worst = worst.max(within("revoked", || {
        b.call("GET", "/v1/me", Some(&script), None).0 == 401
    }));
    // A user deleted on a.
    let carol = a.user("carol");
    assert_eq!(b.call("GET", "/v1/me", Some(&carol), None).0, 200);
    let (status, _) = a.call("DELETE", "/v1/users/carol", Some(ADMIN), None);
    assert_eq!(status, 200);
    worst = worst.max(within("user deleted", || {
        b.call("GET", "/v1/me", Some(&carol), None).0 == 401
    }));
    // Secrets are never cached: a's write is b's next read.
    let (status, _) = a.call(
        "PUT",
        "/v1/secrets/token",
        Some(&alice),
        Some(json!({"value": "v1"})),
    );
    assert_eq!(status, 200);
    let (_, read) = b.call(
        "POST",
        "/v1/eval",
        Some(&alice),
        Some(json!({"code": "@me.secrets.token"})),
    );
    assert_eq!(read, "v1");
    eprintln!("slowest invalidation seen by the other node: {worst:?}");
    assert!(
        // Measured: a few milliseconds; 500 ms keeps a loaded CI machine green.
        worst <= Duration::from_millis(500),
        "{worst:?}"
    );

    // b's listening connection is terminated: b stops serving from its
    // cache, listens again, and answers correctly throughout.
    a.save(
        &alice,
        "g",
        "public",
        "export function g() { return 'one' }",
    );
    let run_g = |node: &Node| node.call("POST", "/v1/run/alice.g", Some(&bob), Some(json!([])));
    assert_eq!(run_g(&b), (200, json!("one")));
    let listener = format!("valbox-listener-{}", b.pid());
    assert_eq!(terminate(&database, &listener), 1);
    a.save(
        &alice,
        "g",
        "public",
        "export function g() { return 'two' }",
    );
    within("after the listener was lost", || {
        run_g(&b) == (200, json!("two"))
    });
    within("the listener is back", || {
        backends(&database, &listener) == 1
    });
    a.save(
        &alice,
        "g",
        "public",
        "export function g() { return 'three' }",
    );
    within("after the listener came back", || {
        run_g(&b) == (200, json!("three"))
    });

    // Every pooled connection of b terminated: no request fails.
    let pool = format!("valbox-{}", b.pid());
    assert!(terminate(&database, &pool) >= 1);
    for n in 0..20 {
        let (status, body) = b.call("GET", "/v1/secrets", Some(&alice), None);
        assert_eq!(
            status, 200,
            "request {n} after the pool lost its connections: {body}"
        );
        let (status, body) = b.call(
            "POST",
            "/v1/eval",
            Some(&alice),
            Some(json!({"code": "@me.secrets.token"})),
        );
        assert_eq!((status, body), (200, json!("v1")), "request {n}");
    }
}

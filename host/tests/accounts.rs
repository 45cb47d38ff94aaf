//! Accounts and keys over real HTTP, as a user and an operator would use
//! them: scoped keys (checked against every route the OpenAPI document
//! lists), revocation and expiry, two nodes sharing one store, deleting a
//! user end to end, and rotating the master key (also after a kill -9).

mod common;

use common::{free_port, fresh_dir, read_secrets, wait_for_port, Http, Process, ADMIN};
use serde_json::{json, Value};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn valbox() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_valbox"));
    command.env_remove("RUST_LOG").env("VALBOX_LOG", "warn");
    command
}

fn serve(dir: &Path, extra: &[(&str, &str)]) -> (Process, Http) {
    let port = free_port();
    let mut command = valbox();
    command
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .env("VALBOX_DATA_DIR", dir)
        .env("VALBOX_ADMIN_KEY", ADMIN)
        .stderr(common::server_log(port));
    for (name, value) in extra {
        command.env(name, value);
    }
    let process = Process(command.spawn().unwrap());
    wait_for_port(port, "the server");
    (process, Http { port })
}

fn new_key(http: &Http, key: &str, name: &str, scopes: &[&str], expires_at: Option<i64>) -> Value {
    let mut body = json!({"name": name, "scopes": scopes});
    if let Some(at) = expires_at {
        body["expires_at"] = at.into();
    }
    let (status, made) = http.call("POST", "/v1/me/keys", Some(key), Some(body));
    assert_eq!(status, 201, "{made}");
    made
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// A concrete request for a documented operation: its path with the
/// parameters filled in, and a body of the documented shape.
fn concrete(path: &str, method: &str) -> (String, Option<Value>) {
    let own_val = path == "/v1/vals/{target}" && method != "get";
    let path = path
        .replace("{target}", if own_val { "add" } else { "kim.add" })
        .replace("{code}", "1")
        .replace("{rest}", "x")
        .replace("{expression}", "kim.add")
        .replace("{user}", "kim")
        .replace("{handle}", "kim")
        .replace("{key}", "token")
        .replace("{id}", "1");
    let body = match (path.as_str(), method) {
        ("/v1/eval", "post") => Some(json!({"code": "1"})),
        ("/v1/vals/add", "put") => Some(json!({"code": "export const add = 1"})),
        ("/v1/vals/add", "patch") => Some(json!({"privacy": "public"})),
        ("/v1/secrets/token", "put") => Some(json!({"value": "v"})),
        ("/v1/jobs", "post") => Some(json!({"kind": "eval", "code": "1"})),
        ("/v1/me/keys", "post") => Some(json!({"name": "k", "scopes": ["keys"]})),
        _ => None,
    };
    (path, body)
}

#[test]
fn every_route_allows_exactly_the_scopes_its_document_names() {
    let dir = fresh_dir("accounts-scopes");
    let (_server, http) = serve(&dir, &[]);
    let full = http.user("kim");
    let (_, document) = http.call("GET", "/openapi.json", None, None);
    // One key per scope, each holding only that scope.
    let scopes = [
        "vals:read",
        "vals:write",
        "secrets:read",
        "secrets:write",
        "run",
        "evaluations:read",
        "emails:read",
        "keys",
    ];
    let keys: Vec<(String, String)> = scopes
        .iter()
        .map(|scope| {
            let made = new_key(&http, &full, scope, &[scope], None);
            (scope.to_string(), made["key"].as_str().unwrap().to_string())
        })
        .collect();
    let mut checked = 0;
    for (path, item) in document["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let needed = operation["security"]
                .as_array()
                .into_iter()
                .flatten()
                .find_map(|requirement| requirement.get("bearer"))
                .map(|scopes| scopes.as_array().unwrap().clone());
            let Some(needed) = needed else {
                continue; // no user key here: public, or the admin key
            };
            // The DELETE routes would revoke or delete what later checks use.
            if path == "/v1/me/keys/{id}" {
                continue;
            }
            let needed = needed.first().and_then(Value::as_str);
            let (concrete_path, body) = concrete(path, method);
            for (scope, key) in &keys {
                let (status, answer) = http.call(
                    &method.to_uppercase(),
                    &concrete_path,
                    Some(key),
                    body.clone(),
                );
                let allowed = needed.is_none_or(|needed| needed == scope);
                if allowed {
                    assert_ne!(status, 403, "{method} {path} with {scope}: {answer}");
                    assert_ne!(status, 401, "{method} {path} with {scope}: {answer}");
                } else {
                    assert_eq!(status, 403, "{method} {path} with {scope}: {answer}");
                    if method == "head" {
                        continue; // no body
                    }
                    assert_eq!(answer["error"]["type"], "forbidden");
                    let message = answer["error"]["message"].as_str().unwrap();
                    assert!(message.contains(needed.unwrap()), "{message}");
                }
                checked += 1;
            }
        }
    }
    assert!(checked > 100, "only {checked} checks");
    // A new key never holds a scope the key making it lacks.
    let keys_only = &keys.iter().find(|(s, _)| s == "keys").unwrap().1;
    let (status, answer) = http.call(
        "POST",
        "/v1/me/keys",
        Some(keys_only),
        Some(json!({"name": "wider", "scopes": ["vals:write"]})),
    );
    assert_eq!(status, 403, "{answer}");
    // The listing shows names and scopes, never a key.
    let (_, listed) = http.call("GET", "/v1/me/keys", Some(&full), None);
    let text = listed.to_string();
    assert!(!text.contains("vbk_"), "{text}");
    // The first key, one per scope, and the one the POST /v1/me/keys check made.
    assert_eq!(listed["keys"].as_array().unwrap().len(), 2 + scopes.len());
    let first = listed["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["name"] == "first")
        .unwrap();
    assert!(first["last_used_at"].is_i64(), "{listed}");
    assert_eq!(first["scopes"].as_array().unwrap().len(), scopes.len());
}

#[test]
fn revoked_and_expired_keys_stop_working_at_once() {
    let dir = fresh_dir("accounts-revoke");
    let (_server, http) = serve(&dir, &[]);
    let full = http.user("rev");
    let made = new_key(&http, &full, "ci", &["run"], None);
    let key = made["key"].as_str().unwrap();
    assert_eq!(
        http.call("POST", "/v1/eval", Some(key), Some(json!({"code": "1"})))
            .0,
        200
    );
    let id = made["id"].as_str().unwrap();
    let (status, _) = http.call("DELETE", &format!("/v1/me/keys/{id}"), Some(&full), None);
    assert_eq!(status, 200);
    let (status, answer) = http.call("POST", "/v1/eval", Some(key), Some(json!({"code": "1"})));
    assert_eq!(status, 401, "{answer}");
    let (status, _) = http.call("DELETE", &format!("/v1/me/keys/{id}"), Some(&full), None);
    assert_eq!(status, 404);
    // Expiry: works until then, 401 after.
    let soon = new_key(&http, &full, "soon", &["run"], Some(now() + 2));
    let soon = soon["key"].as_str().unwrap();
    assert_eq!(
        http.call("POST", "/v1/eval", Some(soon), Some(json!({"code": "1"})))
            .0,
        200
    );
    std::thread::sleep(Duration::from_millis(3100));
    let (status, answer) = http.call("POST", "/v1/eval", Some(soon), Some(json!({"code": "1"})));
    assert_eq!(status, 401, "{answer}");
    assert!(answer["error"]["message"]
        .as_str()
        .unwrap()
        .contains("expired"));
    // A past expiry is refused when the key is made.
    let (status, _) = http.call(
        "POST",
        "/v1/me/keys",
        Some(&full),
        Some(json!({"name": "late", "scopes": ["run"], "expires_at": now() - 10})),
    );
    assert_eq!(status, 400);
    // The admin lists and revokes anyone's keys.
    let (_, keys) = http.call("GET", "/v1/users/rev/keys", Some(ADMIN), None);
    let first = keys["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["name"] == "first")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (status, _) = http.call(
        "DELETE",
        &format!("/v1/users/rev/keys/{first}"),
        Some(ADMIN),
        None,
    );
    assert_eq!(status, 200);
    assert_eq!(http.call("GET", "/v1/me", Some(&full), None).0, 401);
    assert_eq!(http.call("GET", "/v1/users", Some(&full), None).0, 401);
}

#[test]
fn a_key_revoked_on_one_node_is_refused_by_the_other_within_the_bound() {
    let dir = fresh_dir("accounts-two-nodes");
    // Two nodes sharing one SQLite file need the Redis queue.
    let (redis_url, _redis) = common::redis(7);
    let shared = [("VALBOX_REDIS_URL", redis_url.as_str())];
    let (_a, node_a) = serve(&dir, &shared);
    let (_b, node_b) = serve(&dir, &shared);
    let full = node_a.user("two");
    let made = new_key(&node_a, &full, "ci", &["run"], None);
    let key = made["key"].as_str().unwrap();
    // Node B has seen the key work (and caches it).
    for _ in 0..3 {
        assert_eq!(
            node_b
                .call("POST", "/v1/eval", Some(key), Some(json!({"code": "1"})))
                .0,
            200
        );
    }
    let (_, metrics) = node_b.raw("GET", "/metrics", None, None);
    assert!(metrics.contains("valbox_cache_live 1"), "{metrics}");
    assert!(
        !metrics.contains("valbox_cache_lookups_total{result=\"hit\"} 0"),
        "node b answers from its cache: {metrics}"
    );
    let id = made["id"].as_str().unwrap();
    assert_eq!(
        node_a
            .call("DELETE", &format!("/v1/me/keys/{id}"), Some(&full), None)
            .0,
        200
    );
    // Node a's invalidation reaches node b over Redis in a few
    // milliseconds; the test allows 500 ms so a loaded machine passes.
    let started = Instant::now();
    while node_b
        .call("POST", "/v1/eval", Some(key), Some(json!({"code": "1"})))
        .0
        != 401
    {
        assert!(
            started.elapsed() < Duration::from_millis(500),
            "node b still takes the revoked key"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
}

#[test]
fn a_deleted_user_is_gone_and_their_handle_is_never_given_out_again() {
    let dir = fresh_dir("accounts-delete");
    let (_server, http) = serve(&dir, &[]);
    let gone = http.user("gone");
    let stays = http.user("stays");
    for (key, name, code) in [
        (&gone, "lib", "export function lib() { return 'from gone' }"),
        (&stays, "uses", "export function uses() { try { return @gone.lib() } catch (e) { return `missing: ${e.name}` } }"),
        (&stays, "pinned", "export function pinned() { try { return @gone.lib@1() } catch (e) { return `missing: ${e.name}` } }"),
        (&stays, "never", "export function never() { try { return @nobody.lib() } catch (e) { return `missing: ${e.name}` } }"),
    ] {
        let (status, saved) = http.call(
            "PUT",
            &format!("/v1/vals/{name}"),
            Some(key),
            Some(json!({"code": code, "privacy": "public"})),
        );
        assert_eq!(status, 200, "{saved}");
    }
    http.call(
        "PUT",
        "/v1/secrets/token",
        Some(&gone),
        Some(json!({"value": "v"})),
    );
    assert_eq!(
        http.call("GET", "/v1/run/stays.uses", None, None).1,
        "from gone"
    );
    let (status, _) = http.call("DELETE", "/v1/users/gone", Some(ADMIN), None);
    assert_eq!(status, 200);
    assert_eq!(http.call("GET", "/v1/me", Some(&gone), None).0, 401);
    assert_eq!(http.call("GET", "/v1/vals/gone.lib", None, None).0, 404);
    // Its vals resolve as those that never existed (which, like private
    // ones, are not revealed).
    let never = http.call("GET", "/v1/run/stays.never", None, None).1;
    assert!(never.as_str().unwrap().starts_with("missing"), "{never}");
    assert_eq!(http.call("GET", "/v1/run/stays.uses", None, None).1, never);
    assert_eq!(
        http.call("GET", "/v1/run/stays.pinned", None, None).1,
        never
    );
    let (_, users) = http.call("GET", "/v1/users", Some(ADMIN), None);
    assert_eq!(users["users"].as_array().unwrap().len(), 1, "{users}");
    // The handle is retired: nobody can publish code a pinned reference would run.
    let (status, answer) = http.call(
        "POST",
        "/v1/users",
        Some(ADMIN),
        Some(json!({"handle": "gone", "email": "x@example.com"})),
    );
    assert_eq!(status, 409, "{answer}");
    assert_eq!(
        http.call("DELETE", "/v1/users/gone", Some(ADMIN), None).0,
        404
    );
}

#[test]
fn the_master_key_rotates_in_one_transaction_even_when_killed() {
    let dir = fresh_dir("accounts-rotate");
    let count = 300;
    let key = {
        let (_server, http) = serve(&dir, &[]);
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
    std::fs::write(&new_file, "cd".repeat(32)).unwrap();
    let rotate = || {
        let mut command = valbox();
        command
            .args(["rotate-master-key", "--new-key-file"])
            .arg(&new_file)
            .env("VALBOX_DATA_DIR", &dir)
            .stderr(Stdio::piped());
        command
    };
    // Interrupted: kill -9 soon after it starts, at whatever point it is.
    let mut child = rotate().spawn().unwrap();
    std::thread::sleep(Duration::from_millis(30));
    let _ = child.kill();
    let _ = child.wait();
    let after_kill = std::fs::read_to_string(dir.join("master.key")).unwrap();
    if after_kill.trim() == old_key.trim() {
        // Either nothing was committed (the old key still serves every
        // secret) or the commit happened and the node refuses the old key
        // until the rotation is run again: never a node serving missing secrets.
        let port = free_port();
        let mut attempt = valbox()
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .env("VALBOX_DATA_DIR", &dir)
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = attempt.try_wait().unwrap() {
                let mut error = String::new();
                use std::io::Read;
                attempt
                    .stderr
                    .take()
                    .unwrap()
                    .read_to_string(&mut error)
                    .unwrap();
                assert!(!status.success());
                assert!(error.contains("rotate-master-key"), "{error}");
                break;
            }
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                let http = Http { port };
                assert_eq!(read_secrets(&http, &key, count), expected);
                let _ = attempt.kill();
                let _ = attempt.wait();
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the node neither served nor refused"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    // Run again to the end: every secret opens with the new key.
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
        "cd".repeat(32)
    );
    {
        let (_server, http) = serve(&dir, &[]);
        assert_eq!(read_secrets(&http, &key, count), expected);
    }
    // And none with the old: a node given the old key refuses to start.
    let output = valbox()
        .args(["serve", "--listen", &format!("127.0.0.1:{}", free_port())])
        .env("VALBOX_DATA_DIR", &dir)
        .env("VALBOX_MASTER_KEY", old_key.trim())
        .output()
        .unwrap();
    assert!(!output.status.success());
    let error = String::from_utf8_lossy(&output.stderr);
    assert!(error.contains("another master key"), "{error}");
}

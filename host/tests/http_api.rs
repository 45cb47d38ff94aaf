//! The HTTP API over a real socket against a real SQLite file: the `valbox`
//! binary is started as a user would start it.

mod common;

use common::{free_port, fresh_dir, wait_for_port};
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

const ADMIN: &str = "test-admin-key";

struct Server {
    child: Child,
    port: u16,
    data_dir: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(data_dir: &Path, extra: &[(&str, &str)]) -> Server {
    let port = free_port();
    let mut command = Command::new(env!("CARGO_BIN_EXE_valbox"));
    command
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .env("VALBOX_DATA_DIR", data_dir)
        .env("VALBOX_ADMIN_KEY", ADMIN)
        .stderr(common::server_log(port));
    for (key, value) in extra {
        command.env(key, value);
    }
    let server = Server {
        child: command.spawn().unwrap(),
        port,
        data_dir: data_dir.to_path_buf(),
    };
    wait_for_port(port, "the server");
    server
}

struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn error_type(&self) -> String {
        self.json()["error"]["type"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }
}

impl Server {
    fn raw(
        &self,
        method: &str,
        path: &str,
        key: Option<&str>,
        content_type: &str,
        body: &[u8],
    ) -> Reply {
        let mut stream = common::connect(self.port);
        let mut head = format!("{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Length: {}\r\n", body.len());
        if let Some(key) = key {
            head.push_str(&format!("Authorization: Bearer {key}\r\n"));
        }
        if !content_type.is_empty() {
            head.push_str(&format!("Content-Type: {content_type}\r\n"));
        }
        head.push_str("\r\n");
        stream.write_all(head.as_bytes()).unwrap();
        let _ = stream.write_all(body);
        let mut response = Vec::new();
        let _ = stream.read_to_end(&mut response);
        let response = String::from_utf8_lossy(&response).into_owned();
        let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
        let mut lines = head.lines();
        let status = lines
            .next()
            .unwrap_or("")
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let headers = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
            .collect::<Vec<_>>();
        let body = if headers
            .iter()
            .any(|(n, v)| n.eq_ignore_ascii_case("transfer-encoding") && v == "chunked")
        {
            dechunk(body)
        } else {
            body.to_string()
        };
        Reply {
            status,
            headers,
            body,
        }
    }

    fn call(&self, method: &str, path: &str, key: Option<&str>, body: Option<Value>) -> Reply {
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        self.raw(method, path, key, "application/json", body.as_bytes())
    }

    fn user(&self, handle: &str) -> String {
        let reply = self.call(
            "POST",
            "/v1/users",
            Some(ADMIN),
            Some(json!({"handle": handle, "email": format!("{handle}@example.com")})),
        );
        assert_eq!(reply.status, 201, "{}", reply.body);
        reply.json()["api_key"].as_str().unwrap().to_string()
    }

    fn save(&self, key: &str, name: &str, privacy: &str, code: &str) -> Value {
        let reply = self.call(
            "PUT",
            &format!("/v1/vals/{name}"),
            Some(key),
            Some(json!({"code": code, "privacy": privacy})),
        );
        assert_eq!(reply.status, 200, "{}", reply.body);
        reply.json()
    }

    fn eval(&self, key: Option<&str>, code: &str) -> Reply {
        self.call("POST", "/v1/eval", key, Some(json!({"code": code})))
    }
}

fn dechunk(body: &str) -> String {
    let mut out = String::new();
    let mut rest = body;
    while let Some((size, tail)) = rest.split_once("\r\n") {
        let size = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if size == 0 {
            break;
        }
        out.push_str(&tail[..size]);
        rest = &tail[size + 2..];
    }
    out
}

#[test]
fn users_are_created_with_the_admin_key_only() {
    let server = start(&fresh_dir("http-users"), &[]);
    let body = json!({"handle": "alice", "email": "alice@example.com"});
    assert_eq!(
        server
            .call("POST", "/v1/users", None, Some(body.clone()))
            .status,
        401
    );
    assert_eq!(
        server
            .call("POST", "/v1/users", Some("wrong"), Some(body.clone()))
            .status,
        401
    );
    let key = server.user("Alice");
    let me = server.call("GET", "/v1/me", Some(&key), None).json();
    assert_eq!(
        (&me["handle"], &me["email"]),
        (&json!("alice"), &json!("Alice@example.com")),
        "handles are lower-cased"
    );
    assert_eq!(
        server
            .call("POST", "/v1/users", Some(ADMIN), Some(body))
            .status,
        409
    );
    let bad = server.call(
        "POST",
        "/v1/users",
        Some(ADMIN),
        Some(json!({"handle": "9x", "email": "a@b.c"})),
    );
    assert_eq!(
        (bad.status, bad.error_type().as_str()),
        (400, "bad_request")
    );
    let wrong_type = server.call(
        "POST",
        "/v1/users",
        Some(ADMIN),
        Some(json!({"handle": 5, "email": "a@b.c"})),
    );
    assert_eq!(wrong_type.status, 400);
    assert_eq!(server.call("GET", "/v1/me", None, None).status, 401);
    assert_eq!(server.call("GET", "/v1/me", Some("nope"), None).status, 401);
    let cookie = server.raw("GET", "/v1/me", None, "", b"");
    assert_eq!(cookie.status, 401);
}

#[test]
fn vals_are_versioned_and_private_ones_are_invisible_to_others() {
    let server = start(&fresh_dir("http-vals"), &[]);
    let alice = server.user("alice");
    let bob = server.user("bob");
    assert_eq!(
        server.save(
            &alice,
            "greet",
            "public",
            "export const greet = n => `hi ${n}`"
        ),
        json!({"user": "alice", "name": "greet", "version": 1, "privacy": "public"})
    );
    assert_eq!(
        server.save(
            &alice,
            "greet",
            "public",
            "export const greet = n => `hello ${n}`"
        )["version"],
        json!(2)
    );
    let v1 = server
        .call("GET", "/v1/vals/alice.greet?version=1", None, None)
        .json();
    assert_eq!(
        (v1["version"].clone(), v1["latest_version"].clone()),
        (json!(1), json!(2))
    );
    assert!(v1["code"].as_str().unwrap().contains("hi ${n}"));
    let versions = server
        .call("GET", "/v1/vals/alice.greet/versions", None, None)
        .json();
    assert_eq!(versions["versions"].as_array().unwrap().len(), 2);

    // Code that does not compile: 400 with the position, and no new version.
    let broken = server.call(
        "PUT",
        "/v1/vals/greet",
        Some(&alice),
        Some(json!({"code": "export const greet = (;"})),
    );
    assert_eq!(
        (broken.status, broken.error_type().as_str()),
        (400, "compile_error")
    );
    assert_eq!(broken.json()["error"]["line"], json!(1));
    assert_eq!(
        server
            .call("GET", "/v1/vals/alice.greet", None, None)
            .json()["version"],
        json!(2)
    );

    server.save(&alice, "diary", "private", "export default 'dear diary'");
    for viewer in [None, Some(bob.as_str())] {
        assert_eq!(
            server
                .call("GET", "/v1/vals/alice.diary", viewer, None)
                .status,
            404
        );
        assert_eq!(
            server
                .call("GET", "/v1/vals/alice.diary/versions", viewer, None)
                .status,
            404
        );
        assert_eq!(
            server
                .call("GET", "/v1/run/alice.diary", viewer, None)
                .status,
            404
        );
    }
    let missing = server.call("GET", "/v1/vals/alice.nothing", Some(&bob), None);
    let hidden = server.call("GET", "/v1/vals/alice.diary", Some(&bob), None);
    assert_eq!(
        missing.json()["error"]["message"]
            .as_str()
            .unwrap()
            .replace("nothing", "X"),
        hidden.json()["error"]["message"]
            .as_str()
            .unwrap()
            .replace("diary", "X")
    );
    assert_eq!(
        server
            .call("GET", "/v1/vals/alice.diary", Some(&alice), None)
            .json()["code"],
        json!("export default 'dear diary'")
    );
    let listed = server
        .call("GET", "/v1/users/alice/vals", Some(&bob), None)
        .json();
    assert_eq!(
        listed["vals"].as_array().unwrap().len(),
        1,
        "bob sees only the public val"
    );
    let own = server
        .call("GET", "/v1/users/alice/vals", Some(&alice), None)
        .json();
    assert_eq!(own["vals"].as_array().unwrap().len(), 2);

    let patched = server.call(
        "PATCH",
        "/v1/vals/diary",
        Some(&alice),
        Some(json!({"privacy": "public"})),
    );
    assert_eq!(patched.json()["privacy"], json!("public"));
    assert_eq!(
        server.call("GET", "/v1/run/alice.diary", None, None).json(),
        json!("dear diary")
    );
    // Runs read the latest version from a cache: every write must show at once.
    server.save(
        &alice,
        "diary",
        "public",
        "export default 'dear diary, again'",
    );
    assert_eq!(
        server.call("GET", "/v1/run/alice.diary", None, None).json(),
        json!("dear diary, again")
    );
    server.call(
        "PATCH",
        "/v1/vals/diary",
        Some(&alice),
        Some(json!({"privacy": "private"})),
    );
    assert_eq!(
        server
            .call("GET", "/v1/run/alice.diary", Some(&bob), None)
            .status,
        404,
        "a val made private after a run is not served from the cache"
    );
    server.call(
        "PATCH",
        "/v1/vals/diary",
        Some(&alice),
        Some(json!({"privacy": "public"})),
    );
    assert_eq!(
        server
            .call(
                "PATCH",
                "/v1/vals/diary",
                Some(&alice),
                Some(json!({"privacy": "secret"}))
            )
            .status,
        400
    );
    assert_eq!(
        server
            .call("DELETE", "/v1/vals/diary", Some(&alice), None)
            .status,
        200
    );
    assert_eq!(
        server
            .call("GET", "/v1/vals/alice.diary", Some(&alice), None)
            .status,
        404
    );
    assert_eq!(
        server.call("GET", "/v1/run/alice.diary", None, None).status,
        404,
        "a deleted val is not served from the cache"
    );
    assert_eq!(
        server
            .call("DELETE", "/v1/vals/diary", Some(&alice), None)
            .status,
        404
    );
    assert_eq!(
        server
            .call(
                "PUT",
                "/v1/vals/bad-name",
                Some(&alice),
                Some(json!({"code": "1"}))
            )
            .status,
        400
    );
    assert_eq!(
        server
            .call("PUT", "/v1/vals/x", None, Some(json!({"code": "1"})))
            .status,
        401
    );
}

#[test]
fn secrets_are_write_only_by_name() {
    let server = start(&fresh_dir("http-secrets"), &[]);
    let alice = server.user("alice");
    let set = server.call(
        "PUT",
        "/v1/secrets/token",
        Some(&alice),
        Some(json!({"value": "s3cr3t-value"})),
    );
    assert_eq!(set.status, 200);
    let listed = server.call("GET", "/v1/secrets", Some(&alice), None);
    assert_eq!(listed.json(), json!({"secrets": ["token"]}));
    assert!(!listed.body.contains("s3cr3t"));
    assert_eq!(
        server.eval(Some(&alice), "@me.secrets.token").json(),
        json!("s3cr3t-value")
    );
    let db = std::fs::read(server.data_dir.join("valbox.db")).unwrap();
    let wal = std::fs::read(server.data_dir.join("valbox.db-wal")).unwrap_or_default();
    assert!(
        ![db, wal].concat().windows(12).any(|w| w == b"s3cr3t-value"),
        "stored encrypted"
    );
    assert_eq!(
        server
            .call("DELETE", "/v1/secrets/token", Some(&alice), None)
            .status,
        200
    );
    assert_eq!(
        server
            .call("DELETE", "/v1/secrets/token", Some(&alice), None)
            .status,
        404
    );
    assert_eq!(
        server
            .call(
                "PUT",
                "/v1/secrets/token",
                Some(&alice),
                Some(json!({"value": 5}))
            )
            .status,
        400
    );
}

#[test]
fn eval_takes_an_expression_or_a_function_body() {
    let server = start(&fresh_dir("http-eval"), &[]);
    let alice = server.user("alice");
    assert_eq!(server.eval(None, "1 + 1").json(), json!(2));
    assert_eq!(
        server
            .eval(None, "const x = await Promise.resolve(20); return x + 1")
            .json(),
        json!(21)
    );
    let with_args = server.call(
        "POST",
        "/v1/eval",
        None,
        Some(json!({"code": "return arguments[0] * arguments[1]", "args": [6, 7]})),
    );
    assert_eq!(with_args.json(), json!(42));
    assert_eq!(server.eval(None, "undefined").json(), Value::Null);
    assert_eq!(
        server.call("GET", "/v1/eval/1%2B2", None, None).json(),
        json!(3)
    );
    assert_eq!(
        server.call("GET", "/eval/[1,2].length", None, None).json(),
        json!(2)
    );
    let threw = server.eval(Some(&alice), "throw new RangeError('too far')");
    assert_eq!(threw.status, 500);
    assert_eq!(threw.json()["error"]["name"], json!("RangeError"));
    assert!(threw.json()["error"]["stack"].is_string());
    let syntax = server.eval(None, "return (");
    assert_eq!(
        (syntax.status, syntax.error_type().as_str()),
        (400, "compile_error")
    );
    let malformed = server.raw("POST", "/v1/eval", None, "application/json", b"{not json");
    assert_eq!(
        (malformed.status, malformed.error_type().as_str()),
        (400, "bad_request")
    );
    assert_eq!(
        server
            .call("POST", "/v1/eval", None, Some(json!({"code": 1})))
            .status,
        400
    );
    assert_eq!(
        server
            .call(
                "POST",
                "/v1/eval",
                None,
                Some(json!({"code": "1", "args": {}}))
            )
            .status,
        400
    );
    let huge = vec![b'1'; 2 << 20];
    let too_large = server.raw("POST", "/v1/eval", None, "application/json", &huge);
    assert_eq!(
        (too_large.status, too_large.error_type().as_str()),
        (413, "too_large")
    );
    assert_eq!(
        server.eval(None, "'still serving'").json(),
        json!("still serving")
    );
}

#[test]
fn an_infinite_loop_is_a_timeout_and_the_server_keeps_serving() {
    let server = start(&fresh_dir("http-timeout"), &[("VALBOX_DEADLINE_MS", "300")]);
    let reply = server.eval(None, "for (;;) {}");
    assert_eq!(
        (reply.status, reply.error_type().as_str()),
        (408, "timeout")
    );
    assert_eq!(server.eval(None, "2 * 21").json(), json!(42));
}

#[test]
fn run_accepts_query_args_an_args_object_and_a_bare_array() {
    let server = start(&fresh_dir("http-run"), &[]);
    let bob = server.user("bob");
    server.save(
        &bob,
        "add",
        "public",
        "export function add(a, b) { return a + b }",
    );
    server.save(
        &bob,
        "config",
        "public",
        "export const config = { retries: 3 }",
    );
    assert_eq!(
        server
            .call("GET", "/v1/run/bob.add?args=%5B1%2C2%5D", None, None)
            .json(),
        json!(3)
    );
    assert_eq!(
        server
            .call(
                "POST",
                "/v1/run/bob.add",
                None,
                Some(json!({"args": [2, 3]}))
            )
            .json(),
        json!(5)
    );
    assert_eq!(
        server
            .call("POST", "/v1/run/bob.add", None, Some(json!([4, 5])))
            .json(),
        json!(9)
    );
    assert_eq!(
        server.call("GET", "/v1/run/bob.config", None, None).json(),
        json!({"retries": 3})
    );
    assert_eq!(
        server.call("GET", "/v1/run/bob.nothing", None, None).status,
        404
    );
    assert_eq!(
        server.call("GET", "/v1/run/nobody.add", None, None).status,
        404
    );
    assert_eq!(
        server
            .call("GET", "/v1/run/bob.add?args=%5B1", None, None)
            .status,
        400
    );
    assert_eq!(
        server
            .call("GET", "/v1/run/bob.add?args=5", None, None)
            .status,
        400
    );
    assert_eq!(
        server
            .call("POST", "/v1/run/bob.add", None, Some(json!("x")))
            .status,
        400
    );
    assert_eq!(
        server.call("GET", "/v1/run/justaname", None, None).status,
        400
    );
}

#[test]
fn express_handlers_build_the_response_and_get_a_sandbox_csp() {
    let server = start(&fresh_dir("http-express"), &[]);
    let bob = server.user("bob");
    server.save(
        &bob,
        "app",
        "public",
        r#"export default async function (req, res) {
        if (req.path === '/go') return res.redirect('/elsewhere');
        if (req.path === '/html') return res.send('<h1>hi</h1>');
        res.status(201).set('X-Val', 'app').json({
            method: req.method, path: req.path, query: req.query, body: req.body,
            type: req.get('content-type'), url: req.originalUrl,
        });
    }"#,
    );
    let reply = server.raw(
        "POST",
        "/v1/express/bob.app/items/7?sort=asc",
        None,
        "application/json",
        br#"{"name":"x"}"#,
    );
    assert_eq!(reply.status, 201);
    assert_eq!(reply.header("x-val"), Some("app"));
    assert_eq!(reply.header("content-security-policy"), Some("sandbox"));
    assert_eq!(
        reply.json(),
        json!({"method": "POST", "path": "/items/7", "query": {"sort": "asc"}, "body": {"name": "x"},
               "type": "application/json", "url": "/v1/express/bob.app/items/7?sort=asc"})
    );
    let form = server.raw(
        "PUT",
        "/v1/express/bob.app",
        None,
        "application/x-www-form-urlencoded",
        b"a=1&b=two+words",
    );
    assert_eq!(form.json()["body"], json!({"a": "1", "b": "two words"}));
    let redirect = server.call("GET", "/v1/express/bob.app/go", None, None);
    assert_eq!(
        (redirect.status, redirect.header("location")),
        (302, Some("/elsewhere"))
    );
    let html = server.call("GET", "/v1/express/bob.app/html", None, None);
    assert!(html
        .header("content-type")
        .unwrap()
        .starts_with("text/html"));
    assert_eq!(html.header("content-security-policy"), Some("sandbox"));
    let v0 = server.call("GET", "/express/bob.app/html", None, None);
    assert_eq!((v0.status, v0.body.as_str()), (200, "<h1>hi</h1>"));
}

/// The rest of the Express API a handler uses: `req` and `res` methods
/// reached through `this` (chained, as Express's are), header objects,
/// `statusCode`, `sendStatus`, `jsonp`, content negotiation.
#[test]
fn express_request_and_response_methods_behave_as_in_express() {
    let server = start(&fresh_dir("http-express-api"), &[]);
    let bob = server.user("bob");
    server.save(
        &bob,
        "api",
        "public",
        r#"export default function (req, res) {
        if (req.path === '/gone') return res.sendStatus(410);
        if (req.path === '/p') return res.jsonp({ ok: true });
        if (req.path === '/code') { res.statusCode = 418; return res.end('teapot ' + res.statusCode); }
        const send = res.set({ 'X-One': '1', 'X-Two': ['a', 'b'] }).status(202);
        send.type('text').send([
            req.get('X-Custom'), req.header('accept'), req.is('json'), req.is('html'),
            req.accepts('html', 'json'), req.accepts(['xml']), res.get('x-one'),
            Object.keys(req).includes('get'), Object.keys(req).includes('query'),
        ].join('|'));
    }"#,
    );
    let mut request = std::net::TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    request
        .write_all(
            b"POST /v1/express/bob.api/x HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\
              X-Custom: yes\r\nAccept: application/json\r\nContent-Type: application/json\r\n\
              Content-Length: 2\r\n\r\n{}",
        )
        .unwrap();
    let mut answer = String::new();
    request.read_to_string(&mut answer).unwrap();
    let (head, body) = answer.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 202"), "{head}");
    let head = head.to_ascii_lowercase();
    assert!(
        head.contains("x-one: 1") && head.contains("x-two: a, b"),
        "{head}"
    );
    assert!(head.contains("content-type: text/plain"), "{head}");
    assert_eq!(
        body,
        "yes|application/json|json|false|json|false|1|false|true"
    );
    let gone = server.call("GET", "/v1/express/bob.api/gone", None, None);
    assert_eq!((gone.status, gone.body.as_str()), (410, "410"));
    let code = server.call("GET", "/v1/express/bob.api/code", None, None);
    assert_eq!((code.status, code.body.as_str()), (418, "teapot 418"));
    let plain = server.call("GET", "/v1/express/bob.api/p", None, None);
    assert_eq!(plain.json(), json!({"ok": true}));
    let padded = server.call("GET", "/v1/express/bob.api/p?callback=cb", None, None);
    assert_eq!(
        padded.body,
        "/**/ typeof cb === 'function' && cb({\"ok\":true});"
    );
    assert!(padded
        .header("content-type")
        .unwrap()
        .starts_with("text/javascript"));
}

#[test]
fn binary_request_bodies_reach_handlers_byte_for_byte() {
    let server = start(&fresh_dir("http-binary-body"), &[]);
    let dave = server.user("dave");
    server.save(
        &dave,
        "web",
        "public",
        r#"export default async (req) => new Response(new Uint8Array(await req.arrayBuffer()).join(","))"#,
    );
    server.save(
        &dave,
        "classic",
        "public",
        r#"export default (req, res) => res.send(req.body instanceof Uint8Array ? "bytes " + req.body.join(",") : "text " + req.body)"#,
    );
    let bytes = [0u8, 255, 128, 10, 200, 195, 40];
    let web = server.raw(
        "POST",
        "/v1/express/dave.web",
        None,
        "application/octet-stream",
        &bytes,
    );
    assert_eq!(
        (web.status, web.body.as_str()),
        (200, "0,255,128,10,200,195,40")
    );
    let classic = server.raw(
        "POST",
        "/v1/express/dave.classic",
        None,
        "application/octet-stream",
        &bytes,
    );
    assert_eq!(
        (classic.status, classic.body.as_str()),
        (200, "bytes 0,255,128,10,200,195,40")
    );
    // UTF-8 text stays text.
    let text = server.raw(
        "POST",
        "/v1/express/dave.classic",
        None,
        "text/plain",
        "héllo".as_bytes(),
    );
    assert_eq!(text.body, "text héllo");
    let text = server.raw(
        "POST",
        "/v1/express/dave.web",
        None,
        "text/plain",
        "hé".as_bytes(),
    );
    assert_eq!(text.body, "104,195,169");
}

#[test]
fn web_standard_handlers_answer_with_their_response() {
    let server = start(&fresh_dir("http-web-handler"), &[]);
    let carol = server.user("carol");
    server.save(
        &carol,
        "site",
        "public",
        r#"export default async function (req) {
        const url = new URL(req.url);
        if (url.pathname === "/bytes") {
            return new Response(new Uint8Array([0, 255, 10]), { headers: { "content-type": "application/octet-stream" } });
        }
        const headers = new Headers({ "x-val": "web" });
        headers.append("set-cookie", "a=1");
        headers.append("set-cookie", "b=2");
        return Response.json({
            method: req.method, path: url.pathname, q: url.searchParams.get("q"),
            body: req.method === "POST" ? await req.json() : null, query: req.query,
        }, { status: 201, headers });
    }"#,
    );
    let reply = server.raw(
        "POST",
        "/v1/express/carol.site/items/7?q=ok",
        None,
        "application/json",
        br#"{"name":"x"}"#,
    );
    assert_eq!(reply.status, 201);
    assert_eq!(reply.header("x-val"), Some("web"));
    assert_eq!(reply.header("content-type"), Some("application/json"));
    assert_eq!(reply.header("content-security-policy"), Some("sandbox"));
    let cookies: Vec<_> = reply
        .headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("set-cookie"))
        .map(|(_, v)| v.as_str())
        .collect();
    assert_eq!(cookies, ["a=1", "b=2"]);
    assert_eq!(
        reply.json(),
        json!({"method": "POST", "path": "/items/7", "q": "ok", "body": {"name": "x"}, "query": {"q": "ok"}})
    );
    // The val's root, with and without the trailing slash.
    for path in ["/v1/express/carol.site/", "/v1/express/carol.site"] {
        let root = server.call("GET", path, None, None);
        assert_eq!(root.status, 201, "{path}");
        assert_eq!(root.json()["path"], "/", "{path}");
    }
    // /v1/run of a val that returns a Response answers with it; api() and
    // /v1/eval get its description as JSON.
    server.save(
        &carol,
        "made",
        "public",
        r#"export function made(name) {
            return new Response("hello " + name, { status: 202, headers: { "x-made": "yes", "content-type": "text/plain" } });
        }"#,
    );
    let made = server.call("GET", "/v1/run/carol.made?args=[%22ada%22]", None, None);
    assert_eq!(made.status, 202);
    assert_eq!(made.header("x-made"), Some("yes"));
    assert_eq!(made.header("content-security-policy"), Some("sandbox"));
    assert_eq!(made.body, "hello ada");
    let described = server.call(
        "POST",
        "/v1/eval",
        None,
        Some(json!({"code": "const r = await api(@carol.made, 'bo'); return [r.status, r.body, r.headers]"})),
    );
    assert_eq!(
        described.json(),
        json!([
            202,
            "hello bo",
            [["content-type", "text/plain"], ["x-made", "yes"]]
        ])
    );
    let bytes = server.call("GET", "/v1/express/carol.site/bytes", None, None);
    assert_eq!(bytes.header("content-length"), Some("3"));
    assert_eq!(
        bytes.header("content-type"),
        Some("application/octet-stream")
    );
}

/// The seed post's upgrade story, end to end.
#[test]
fn a_gpt3_like_library_reads_its_key_only_as_an_api_or_when_passed_the_key() {
    let server = start(&fresh_dir("http-gpt3"), &[]);
    let alice = server.user("alice");
    let bob = server.user("bob");
    server.call(
        "PUT",
        "/v1/secrets/openAiKey",
        Some(&alice),
        Some(json!({"value": "sk-alice"})),
    );
    server.call(
        "PUT",
        "/v1/secrets/openAiKey",
        Some(&bob),
        Some(json!({"value": "sk-bob"})),
    );
    server.save(&bob, "gpt3", "public", "export function gpt3(prompt, key) { const k = key ?? @me.secrets.openAiKey; return k === undefined ? 'no key' : `${prompt} with ${k}` }");
    assert_eq!(
        server.eval(Some(&alice), "@bob.gpt3('hi')").json(),
        json!("no key")
    );
    assert_eq!(
        server.eval(Some(&alice), "api(@bob.gpt3, 'hi')").json(),
        json!("hi with sk-bob")
    );
    assert_eq!(
        server
            .call(
                "POST",
                "/v1/run/bob.gpt3",
                Some(&alice),
                Some(json!(["hi"]))
            )
            .json(),
        json!("hi with sk-bob")
    );
    assert_eq!(
        server
            .eval(Some(&alice), "@bob.gpt3('hi', @me.secrets.openAiKey)")
            .json(),
        json!("hi with sk-alice")
    );
}

#[test]
fn traces_and_emails_go_to_the_right_user() {
    let server = start(&fresh_dir("http-traces"), &[]);
    let alice = server.user("alice");
    let bob = server.user("bob");
    server.save(&bob, "notify", "public", "export function notify() { console.log('notify ran'); console.email('ping', 'hello'); return 'ok' }");
    assert_eq!(
        server.eval(Some(&alice), "@bob.notify()").json(),
        json!("ok")
    );
    assert_eq!(
        server.eval(Some(&alice), "api(@bob.notify)").json(),
        json!("ok")
    );
    let alice_mail = server.call("GET", "/v1/emails", Some(&alice), None).json();
    let bob_mail = server.call("GET", "/v1/emails", Some(&bob), None).json();
    assert_eq!(
        alice_mail["emails"].as_array().unwrap().len(),
        1,
        "library call emails the caller"
    );
    assert_eq!(
        bob_mail["emails"].as_array().unwrap().len(),
        1,
        "API call emails the author"
    );
    assert_eq!(alice_mail["emails"][0]["subject"], json!("ping"));

    let alice_traces = server
        .call("GET", "/v1/evaluations", Some(&alice), None)
        .json();
    let records = alice_traces["evaluations"].as_array().unwrap();
    assert_eq!(records.len(), 2);
    let library_trace = &records[1]["record"];
    assert_eq!(
        library_trace["calls"][0]["logs"][0]["message"],
        json!("notify ran")
    );
    let api_stub = &records[0]["record"]["calls"][0];
    assert_eq!(
        (api_stub["redacted"].clone(), api_stub["logs"].clone()),
        (json!(true), json!([]))
    );
    let bob_traces = server
        .call("GET", "/v1/evaluations", Some(&bob), None)
        .json();
    let bob_records = bob_traces["evaluations"].as_array().unwrap();
    assert_eq!(bob_records.len(), 1);
    assert_eq!(
        bob_records[0]["record"]["logs"][0]["message"],
        json!("notify ran")
    );
    let id = bob_records[0]["id"].as_i64().unwrap();
    assert_eq!(
        server
            .call("GET", &format!("/v1/evaluations/{id}"), Some(&bob), None)
            .status,
        200
    );
    assert_eq!(
        server
            .call("GET", &format!("/v1/evaluations/{id}"), Some(&alice), None)
            .status,
        404
    );
    let limited = server
        .call("GET", "/v1/evaluations?limit=1", Some(&alice), None)
        .json();
    assert_eq!(limited["evaluations"].as_array().unwrap().len(), 1);
}

#[test]
fn the_openapi_document_lists_every_route() {
    let server = start(&fresh_dir("http-openapi"), &[]);
    let document = server.call("GET", "/openapi.json", None, None).json();
    let paths = document["paths"].as_object().unwrap();
    for (method, path) in [
        ("get", "/healthz"),
        ("get", "/readyz"),
        ("post", "/v1/eval"),
        ("get", "/v1/eval/{code}"),
        ("get", "/v1/run/{target}"),
        ("post", "/v1/run/{target}"),
        ("post", "/v1/express/{target}"),
        ("get", "/v1/express/{target}/{rest}"),
        ("get", "/eval/{code}"),
        ("post", "/express/{expression}"),
        ("post", "/v1/users"),
        ("get", "/v1/me"),
        ("put", "/v1/vals/{target}"),
        ("get", "/v1/vals/{target}"),
        ("patch", "/v1/vals/{target}"),
        ("delete", "/v1/vals/{target}"),
        ("get", "/v1/vals/{target}/versions"),
        ("get", "/v1/users/{user}/vals"),
        ("put", "/v1/secrets/{key}"),
        ("get", "/v1/secrets"),
        ("delete", "/v1/secrets/{key}"),
        ("get", "/v1/evaluations"),
        ("get", "/v1/evaluations/{id}"),
        ("get", "/v1/emails"),
        ("get", "/openapi.json"),
        ("post", "/v1/jobs"),
        ("get", "/v1/jobs/{id}"),
        ("get", "/metrics"),
    ] {
        assert!(
            paths.get(path).and_then(|p| p.get(method)).is_some(),
            "{method} {path} is not documented"
        );
    }
    // A route that needs a key answers 401 before it looks at the body.
    for (method, path) in [
        ("POST", "/v1/jobs"),
        ("PUT", "/v1/vals/x"),
        ("PUT", "/v1/secrets/x"),
        ("POST", "/v1/users"),
    ] {
        let reply = server.raw(method, path, None, "application/json", b"{not json");
        assert_eq!(reply.status, 401, "{method} {path}: {}", reply.body);
        assert_eq!(reply.error_type(), "unauthorized");
    }
    // With a key, a body without a required field is a 400 naming it.
    let key = server.user("oa");
    let reply = server.call("POST", "/v1/eval", Some(&key), Some(json!({"args": []})));
    assert_eq!(reply.status, 400);
    assert!(reply.body.contains("code"), "{}", reply.body);
    let reply = server.raw("POST", "/v1/eval", Some(&key), "application/json", b"");
    assert_eq!(
        (reply.status, reply.error_type().as_str()),
        (400, "bad_request")
    );
}

#[test]
fn acknowledged_writes_survive_kill_dash_nine() {
    let dir = fresh_dir("http-durability");
    let server = start(&dir, &[]);
    let alice = server.user("alice");
    for i in 1..=5 {
        server.save(&alice, "counter", "public", &format!("export default {i}"));
    }
    server.call(
        "PUT",
        "/v1/secrets/token",
        Some(&alice),
        Some(json!({"value": "kept"})),
    );
    let mut server = server;
    unsafe { libc_kill(server.child.id() as i32, 9) };
    let _ = server.child.wait();
    drop(server);
    let again = start(&dir, &[]);
    assert_eq!(
        again
            .call("GET", "/v1/vals/alice.counter", Some(&alice), None)
            .json()["version"],
        json!(5)
    );
    assert_eq!(
        again
            .call(
                "GET",
                "/v1/vals/alice.counter?version=3",
                Some(&alice),
                None
            )
            .json()["code"],
        json!("export default 3")
    );
    assert_eq!(
        again.eval(Some(&alice), "@me.secrets.token").json(),
        json!("kept")
    );
    assert_eq!(
        again
            .call("GET", "/v1/run/alice.counter", None, None)
            .json(),
        json!(5)
    );
}

extern "C" {
    #[link_name = "kill"]
    fn libc_kill(pid: i32, signal: i32) -> i32;
}

#[test]
fn calls_over_the_concurrency_limit_are_refused_at_once_with_429() {
    let server = std::sync::Arc::new(start(
        &fresh_dir("http-busy"),
        &[("VALBOX_MAX_CALLS_PER_USER", "1")],
    ));
    let alice = server.user("alice");
    let slow = {
        let server = server.clone();
        let alice = alice.clone();
        std::thread::spawn(move || {
            server.eval(
                Some(&alice),
                "const end = Date.now() + 1500; while (Date.now() < end) {} return 'slow'",
            )
        })
    };
    // Wait until the slow call runs (an instance in use: it took alice's one
    // place before it took the instance), without taking her place to ask.
    let deadline = Instant::now() + Duration::from_secs(1);
    while !server
        .call("GET", "/metrics", None, None)
        .body
        .lines()
        .any(|line| line == "valbox_instances_in_use 1")
    {
        assert!(Instant::now() < deadline, "the slow call never started");
        std::thread::sleep(Duration::from_millis(10));
    }
    let started = Instant::now();
    let refused = server.eval(Some(&alice), "1");
    assert_eq!(
        (refused.status, refused.error_type().as_str()),
        (429, "capacity")
    );
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "refused at once, not queued"
    );
    assert_eq!(
        server.eval(None, "'others still served'").json(),
        json!("others still served")
    );
    assert_eq!(slow.join().unwrap().json(), json!("slow"));
    assert_eq!(server.eval(Some(&alice), "2").json(), json!(2));
}

#[test]
fn a_v0_express_handler_runs_restricted_and_a_v1_one_as_its_author() {
    let server = start(&fresh_dir("http-express-modes"), &[]);
    let bob = server.user("bob");
    server.call(
        "PUT",
        "/v1/secrets/token",
        Some(&bob),
        Some(json!({"value": "bob-token"})),
    );
    server.save(
        &bob,
        "peek",
        "public",
        "export default (req, res) => res.json({ token: @me.secrets.token ?? 'undefined' })",
    );
    let v1 = server.call("GET", "/v1/express/bob.peek", None, None);
    assert_eq!(v1.json(), json!({"token": "bob-token"}));
    let v0 = server.call("GET", "/express/bob.peek", None, None);
    assert_eq!(
        v0.json(),
        json!({"token": "undefined"}),
        "v0 runs in Restricted Library Mode"
    );
}

/// The value of one sample line (`name{labels} value`) in a metrics text.
fn sample(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or_else(|| panic!("no sample {series} in:\n{text}"))
}

#[test]
fn metrics_count_evaluations_requests_instances_and_denials() {
    let server = start(&fresh_dir("http-metrics"), &[]);
    let alice = server.user("alice");
    let bob = server.user("bob");
    server.save(
        &bob,
        "add",
        "public",
        "export function add(a, b) { return a + b }",
    );
    server.save(
        &bob,
        "peek",
        "public",
        "export function peek() { return @me.secrets.key ?? 'nothing' }",
    );
    for _ in 0..3 {
        assert_eq!(
            server
                .call("GET", "/v1/run/bob.add?args=[1,2]", None, None)
                .json(),
            json!(3)
        );
    }
    assert_eq!(
        server.eval(Some(&alice), "@bob.peek()").json(),
        json!("nothing")
    );
    assert_eq!(server.eval(Some(&alice), "null.x").status, 500);
    assert_eq!(server.call("GET", "/no/such/route", None, None).status, 404);

    let reply = server.call("GET", "/metrics", None, None);
    assert_eq!(reply.status, 200);
    assert!(reply
        .header("content-type")
        .unwrap()
        .starts_with("text/plain"));
    let text = &reply.body;
    assert_eq!(
        sample(text, r#"valbox_evaluations_total{mode="api",outcome="ok"}"#),
        3.0
    );
    assert_eq!(
        sample(text, r#"valbox_evaluations_total{mode="own",outcome="ok"}"#),
        1.0
    );
    assert_eq!(
        sample(
            text,
            r#"valbox_evaluations_total{mode="own",outcome="threw"}"#
        ),
        1.0
    );
    assert_eq!(
        sample(
            text,
            r#"valbox_evaluation_duration_seconds_count{mode="api"}"#
        ),
        3.0
    );
    assert_eq!(
        sample(
            text,
            r#"valbox_http_requests_total{route="/v1/run/{target}",status="200"}"#
        ),
        3.0
    );
    assert_eq!(
        sample(
            text,
            r#"valbox_http_requests_total{route="unmatched",status="404"}"#
        ),
        1.0
    );
    // bob's library ran restricted for alice: reading "her" secret was refused.
    assert_eq!(
        sample(
            text,
            r#"valbox_capability_denials_total{capability="read_secret"}"#
        ),
        1.0
    );
    assert!(
        sample(text, "valbox_instances_total") >= 7.0,
        "3 runs, 2 evals, 1 nested call, compiles"
    );
    assert_eq!(sample(text, "valbox_instances_in_use"), 0.0);
    assert!(sample(text, "valbox_instantiation_seconds_total") > 0.0);
}

impl Server {
    /// Polls a job until it has finished.
    fn finished_job(&self, key: &str, id: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let reply = self.call("GET", &format!("/v1/jobs/{id}"), Some(key), None);
            assert_eq!(reply.status, 200, "{}", reply.body);
            let job = reply.json();
            if job["status"] == "done" || job["status"] == "failed" {
                return job;
            }
            assert!(Instant::now() < deadline, "job {id} did not finish: {job}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn submit(&self, key: &str, job: Value) -> String {
        let reply = self.call("POST", "/v1/jobs", Some(key), Some(job));
        assert_eq!(reply.status, 202, "{}", reply.body);
        assert_eq!(reply.json()["status"], "queued");
        reply.json()["id"].as_str().unwrap().to_string()
    }
}

#[test]
fn jobs_run_as_their_submitter_and_keep_their_result() {
    let server = start(&fresh_dir("http-jobs"), &[]);
    let alice = server.user("alice");
    let bob = server.user("bob");
    server.save(
        &bob,
        "add",
        "public",
        "export function add(a, b) { return a + b }",
    );
    server.save(
        &bob,
        "whoami",
        "public",
        "export function whoami() { return @me.secrets.name ?? 'nobody' }",
    );
    server.call(
        "PUT",
        "/v1/secrets/name",
        Some(&alice),
        Some(json!({"value": "alice"})),
    );

    let run = server.submit(
        &alice,
        json!({"kind": "run", "target": "bob.add", "args": [2, 3]}),
    );
    let eval = server.submit(
        &alice,
        json!({"kind": "eval", "code": "@me.secrets.name + '!'"}),
    );
    let restricted = server.submit(&alice, json!({"kind": "eval", "code": "@bob.whoami()"}));
    let threw = server.submit(&alice, json!({"kind": "eval", "code": "null.x"}));
    let missing = server.submit(&alice, json!({"kind": "run", "target": "bob.nothing"}));

    let job = server.finished_job(&alice, &run);
    assert_eq!(
        (job["status"].clone(), job["result"].clone()),
        (json!("done"), json!(5))
    );
    assert_eq!(job["attempts"], 1);
    assert_eq!(job["request"]["target"], "bob.add");
    assert_eq!(server.finished_job(&alice, &eval)["result"], "alice!");
    // A library call inside a job is restricted like any other.
    assert_eq!(server.finished_job(&alice, &restricted)["result"], "nobody");
    let job = server.finished_job(&alice, &threw);
    assert_eq!(job["status"], "failed");
    assert_eq!(job["error"]["type"], "val_error");
    assert_eq!(job["error"]["name"], "TypeError");
    assert_eq!(
        server.finished_job(&alice, &missing)["error"]["type"],
        "not_found"
    );

    // Only the submitter sees a job; bad jobs are refused before they are queued.
    assert_eq!(
        server
            .call("GET", &format!("/v1/jobs/{run}"), Some(&bob), None)
            .status,
        404
    );
    assert_eq!(
        server
            .call("GET", "/v1/jobs/nope", Some(&alice), None)
            .status,
        404
    );
    let anonymous = server.call(
        "POST",
        "/v1/jobs",
        None,
        Some(json!({"kind": "eval", "code": "1"})),
    );
    assert_eq!(anonymous.status, 401);
    for bad in [
        json!({"kind": "walk"}),
        json!({"kind": "run", "target": "bob"}),
        json!([1]),
    ] {
        let reply = server.call("POST", "/v1/jobs", Some(&alice), Some(bad));
        assert_eq!(
            (reply.status, reply.error_type()),
            (400, "bad_request".to_string())
        );
    }
    let reply = server.raw(
        "POST",
        "/v1/jobs",
        Some(&alice),
        "application/json",
        b"{not json",
    );
    assert_eq!(reply.status, 400);

    let metrics = server.call("GET", "/metrics", None, None).body;
    assert_eq!(
        sample(&metrics, r#"valbox_jobs_total{outcome="done"}"#),
        3.0
    );
    assert_eq!(
        sample(&metrics, r#"valbox_jobs_total{outcome="failed"}"#),
        2.0
    );
    assert_eq!(sample(&metrics, "valbox_queue_depth"), 0.0);
}

#[test]
fn a_job_running_when_the_server_is_killed_runs_again_after_restart() {
    let dir = fresh_dir("http-jobs-restart");
    let server = start(&dir, &[]);
    let alice = server.user("alice");
    let slow = "const end = Date.now() + 1500; while (Date.now() < end) {} return 'finished'";
    let id = server.submit(&alice, json!({"kind": "eval", "code": slow}));
    let deadline = Instant::now() + Duration::from_secs(1);
    loop {
        let job = server
            .call("GET", &format!("/v1/jobs/{id}"), Some(&alice), None)
            .json();
        if job["status"] == "running" {
            break;
        }
        assert!(
            Instant::now() < deadline && job["status"] == "queued",
            "the job did not start: {job}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut server = server;
    unsafe { libc_kill(server.child.id() as i32, 9) };
    let _ = server.child.wait();
    drop(server);
    let again = start(&dir, &[]);
    let job = again.finished_job(&alice, &id);
    assert_eq!(job["status"], "done");
    assert_eq!(job["result"], "finished");
    assert_eq!(
        job["attempts"], 2,
        "started once before the kill and once after"
    );
}

#[test]
fn a_job_whose_worker_keeps_dying_becomes_a_dead_letter() {
    let dir = fresh_dir("http-jobs-dead");
    let mut key = None;
    let mut id = None;
    for _ in 0..3 {
        let mut server = start(&dir, &[]);
        let alice = key.get_or_insert_with(|| server.user("alice")).clone();
        let slow = "const end = Date.now() + 5000; while (Date.now() < end) {} return 'finished'";
        let id = id
            .get_or_insert_with(|| server.submit(&alice, json!({"kind": "eval", "code": slow})))
            .clone();
        let deadline = Instant::now() + Duration::from_secs(10);
        while server
            .call("GET", &format!("/v1/jobs/{id}"), Some(&alice), None)
            .json()["status"]
            != "running"
        {
            assert!(Instant::now() < deadline, "the job never started");
            std::thread::sleep(Duration::from_millis(20));
        }
        unsafe { libc_kill(server.child.id() as i32, 9) };
        let _ = server.child.wait();
    }
    let server = start(&dir, &[]);
    let job = server.finished_job(key.as_ref().unwrap(), id.as_ref().unwrap());
    assert_eq!(job["status"], "failed");
    assert_eq!(job["error"]["type"], "dead_letter");
    assert_eq!(job["attempts"], 4);
}

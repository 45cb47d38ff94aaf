//! `fetch` against servers on loopback (with the guard told to allow them),
//! and the default guard refusing every private or metadata address.

mod common;

use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};
use valbox_runtime::fetch::FetchPolicy;
use valbox_runtime::{MemoryWorld, Sandbox, SandboxConfig, SandboxError};

/// A small HTTP/1.1 server on 127.0.0.1 (a thread per connection); returns
/// its port. `/together` answers `together` once three requests to it are
/// in at the same time (or `alone` after 3 s without them).
fn serve() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let arrivals = Arc::new((Mutex::new(0u32), Condvar::new()));
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let arrivals = arrivals.clone();
            std::thread::spawn(move || answer(stream, port, &arrivals));
        }
    });
    port
}

/// Reads one request and answers it (see [`serve`]).
fn answer(stream: TcpStream, port: u16, arrivals: &(Mutex<u32>, Condvar)) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    let mut parts = line.split_whitespace();
    let (method, path) = (
        parts.next().unwrap_or("").to_string(),
        parts.next().unwrap_or("").to_string(),
    );
    let mut headers = Vec::new();
    loop {
        let mut header = String::new();
        reader.read_line(&mut header).unwrap();
        if header.trim().is_empty() {
            break;
        }
        let (name, value) = header.split_once(':').unwrap();
        headers.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
    }
    let length: usize = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .map_or(0, |(_, v)| v.parse().unwrap());
    let mut body = vec![0; length];
    reader.read_exact(&mut body).unwrap();
    let header = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n == name)
            .map_or("", |(_, v)| v.as_str())
            .to_string()
    };
    let (status, extra, content) = match path.as_str() {
        "/text" => ("200 OK", String::new(), b"hello".to_vec()),
        "/json" => (
            "200 OK",
            "Content-Type: application/json\r\n".into(),
            br#"{"a":[1,2]}"#.to_vec(),
        ),
        "/echo" => (
            "201 Created",
            "X-Reply: yes\r\n".into(),
            format!(
                "{method} {} {}",
                header("x-test"),
                String::from_utf8_lossy(&body)
            )
            .into_bytes(),
        ),
        "/redirect" => (
            "302 Found",
            format!("Location: http://localhost:{port}/text\r\n"),
            Vec::new(),
        ),
        "/big" => ("200 OK", String::new(), vec![b'x'; 2 << 20]),
        "/slow" => {
            std::thread::sleep(Duration::from_secs(2));
            ("200 OK", String::new(), b"late".to_vec())
        }
        "/together" => {
            let (count, arrived) = arrivals;
            let mut count = count.lock().unwrap();
            *count += 1;
            arrived.notify_all();
            let (count, _) = arrived
                .wait_timeout_while(count, Duration::from_secs(3), |count| *count < 3)
                .unwrap();
            let word = if *count >= 3 { "together" } else { "alone" };
            ("200 OK", String::new(), word.as_bytes().to_vec())
        }
        _ => ("404 Not Found", String::new(), b"nope".to_vec()),
    };
    let mut stream = stream;
    let _ = write!(
        stream,
        "HTTP/1.1 {status}\r\n{extra}Content-Length: {}\r\nConnection: close\r\n\r\n",
        content.len()
    );
    let _ = stream.write_all(&content);
}

fn sandbox_with(policy: FetchPolicy) -> Sandbox {
    Sandbox::new(SandboxConfig {
        cache_dir: Some(env!("CARGO_TARGET_TMPDIR").into()),
        fetch: policy,
        ..SandboxConfig::default()
    })
    .unwrap()
}

fn loopback_allowed() -> &'static Sandbox {
    static SANDBOX: OnceLock<Sandbox> = OnceLock::new();
    SANDBOX.get_or_init(|| {
        sandbox_with(FetchPolicy {
            allow_private_addresses: true,
            deny_hosts: vec!["localhost".into()],
            max_response_bytes: 1 << 20,
            ..FetchPolicy::default()
        })
    })
}

fn default_guard() -> &'static Sandbox {
    static SANDBOX: OnceLock<Sandbox> = OnceLock::new();
    SANDBOX.get_or_init(|| sandbox_with(FetchPolicy::default()))
}

fn run(sandbox: &Sandbox, body: &str) -> Result<Value, SandboxError> {
    let outcome = common::run_with(sandbox, &Arc::new(MemoryWorld::new()), Some("alice"), body);
    outcome
        .result
        .map(|text| serde_json::from_str(&text).unwrap())
}

#[test]
fn fetch_reads_text_json_status_and_headers() {
    let port = serve();
    let body = format!(
        r#"const t = await fetch('http://127.0.0.1:{port}/text');
           const j = await fetch('http://127.0.0.1:{port}/json');
           const missing = await fetch('http://127.0.0.1:{port}/missing');
           return [t.status, t.ok, await t.text(), await j.json(), j.headers.get('content-type'), missing.status, missing.ok];"#
    );
    assert_eq!(
        run(loopback_allowed(), &body).unwrap(),
        json!([200, true, "hello", {"a": [1, 2]}, "application/json", 404, false])
    );
}

#[test]
fn fetch_sends_method_headers_and_body() {
    let port = serve();
    let body = format!(
        r#"const r = await fetch('http://127.0.0.1:{port}/echo', {{ method: 'POST', headers: {{ 'X-Test': 'yes' }}, body: 'grüße' }});
           const bytes = new Uint8Array(await r.arrayBuffer());
           return [r.status, r.headers.get('x-reply'), new TextDecoder().decode(bytes)];"#
    );
    assert_eq!(
        run(loopback_allowed(), &body).unwrap(),
        json!([201, "yes", "POST yes grüße"])
    );
}

#[test]
fn every_redirect_hop_is_checked_again() {
    let port = serve();
    let body = format!("try {{ await fetch('http://127.0.0.1:{port}/redirect'); return 'followed' }} catch (e) {{ return e.name + ': ' + e.message }}");
    let message = run(loopback_allowed(), &body).unwrap();
    assert!(
        message
            .as_str()
            .unwrap()
            .contains("localhost is on the deny list"),
        "{message}"
    );
}

#[test]
fn a_response_over_the_size_limit_is_an_error() {
    let port = serve();
    let body = format!("try {{ await fetch('http://127.0.0.1:{port}/big'); return 'read' }} catch (e) {{ return e.message }}");
    let message = run(loopback_allowed(), &body).unwrap();
    assert!(
        message.as_str().unwrap().contains("larger than the limit"),
        "{message}"
    );
}

#[test]
fn the_default_guard_refuses_private_loopback_and_metadata_addresses() {
    let port = serve();
    for url in [
        format!("http://127.0.0.1:{port}/text"),
        format!("http://[::1]:{port}/text"),
        format!("http://localhost:{port}/text"),
        "http://169.254.169.254/latest/meta-data/".to_string(),
        "http://10.0.0.1/".to_string(),
        format!("http://2130706433:{port}/text"),
        format!("http://0177.0.0.1:{port}/text"),
        format!("http://[::ffff:127.0.0.1]:{port}/text"),
        "file:///etc/passwd".to_string(),
    ] {
        let body = format!("try {{ await fetch('{url}'); return 'fetched' }} catch (e) {{ return e.name + ': ' + e.message }}");
        let message = run(default_guard(), &body).unwrap();
        let message = message.as_str().unwrap();
        assert!(message.starts_with("TypeError: fetch"), "{url}: {message}");
    }
}

#[test]
fn fetch_works_in_restricted_library_calls_too() {
    let port = serve();
    let sandbox = loopback_allowed();
    let world = Arc::new(MemoryWorld::new());
    let source = format!("export async function get() {{ return (await fetch('http://127.0.0.1:{port}/text')).text() }}");
    world.put_val(
        "bob",
        "get",
        true,
        sandbox.compile("bob/get.js", &source).unwrap(),
    );
    let outcome = common::run_with(sandbox, &world, Some("alice"), "return await @bob.get()");
    assert_eq!(outcome.result.unwrap(), "\"hello\"");
}

#[test]
fn an_aborted_signal_rejects_fetch_before_any_request() {
    let body = r#"const controller = new AbortController();
           controller.abort();
           const results = [];
           for (const signal of [controller.signal, AbortSignal.abort(new Error("mine"))]) {
             try { await fetch('http://127.0.0.1:9/never', { signal }); results.push("fetched"); }
             catch (e) { results.push(e.name + ": " + e.message); }
           }
           return results;"#;
    assert_eq!(
        run(loopback_allowed(), body).unwrap(),
        json!([
            "AbortError: signal is aborted without reason",
            "Error: mine"
        ])
    );
}

#[test]
fn abort_signal_timeout_stops_a_slow_fetch_then() {
    let port = serve();
    let body = format!(
        r#"const start = performance.now();
           try {{
             await fetch('http://127.0.0.1:{port}/slow', {{ signal: AbortSignal.timeout(200) }});
             return "fetched";
           }} catch (e) {{
             return [e.name, performance.now() - start];
           }}"#
    );
    let answer = run(loopback_allowed(), &body).unwrap();
    assert_eq!(answer[0], "TimeoutError", "{answer}");
    let waited = answer[1].as_f64().unwrap();
    assert!(
        (150.0..1500.0).contains(&waited),
        "the request was stopped after {waited} ms, not at its 200 ms timeout"
    );
}

#[test]
fn several_fetches_are_out_at_once() {
    let port = serve();
    let body = format!(
        r#"const url = 'http://127.0.0.1:{port}/together';
           const answers = await Promise.all([fetch(url), fetch(url), fetch(url)].map((p) => p.then((r) => r.text())));
           // More than a call runs at once (6): the rest wait for room.
           const many = await Promise.all(Array.from({{ length: 14 }}, (_, i) =>
             fetch('http://127.0.0.1:{port}/echo', {{ method: 'POST', body: String(i) }}).then((r) => r.text())));
           return [answers, many.join()];"#
    );
    assert_eq!(
        run(loopback_allowed(), &body).unwrap(),
        json!([
            ["together", "together", "together"],
            (0..14)
                .map(|i| format!("POST  {i}"))
                .collect::<Vec<_>>()
                .join(",")
        ])
    );
}

#[test]
fn aborting_from_a_timer_rejects_a_fetch_in_flight_at_once() {
    let port = serve();
    let body = format!(
        r#"const controller = new AbortController();
           const start = performance.now();
           setTimeout(() => controller.abort(), 100);
           const slow = fetch('http://127.0.0.1:{port}/slow', {{ signal: controller.signal }});
           let outcome;
           try {{ await slow; outcome = "fetched"; }} catch (e) {{ outcome = e.name; }}
           const waited = performance.now() - start;
           // The call goes on: another request, and one left running at the end.
           const after = await (await fetch('http://127.0.0.1:{port}/text')).text();
           fetch('http://127.0.0.1:{port}/slow');
           return [outcome, waited, after];"#
    );
    let start = Instant::now();
    let outcome = common::run_with(
        loopback_allowed(),
        &Arc::new(MemoryWorld::new()),
        Some("alice"),
        &body,
    );
    let answer: Value = serde_json::from_str(&outcome.result.unwrap()).unwrap();
    assert_eq!(answer[0], "AbortError", "{answer}");
    assert_eq!(answer[2], "hello", "{answer}");
    let waited = answer[1].as_f64().unwrap();
    assert!(
        waited < 1500.0,
        "the aborted fetch settled after {waited} ms, not when its signal aborted (100 ms; the server answers at 2 s)"
    );
    assert!(
        start.elapsed() < Duration::from_millis(1800),
        "the call waited for a request it no longer needed"
    );
    let logs: Vec<&str> = outcome
        .evaluation
        .logs
        .iter()
        .map(|l| l.message.as_str())
        .collect();
    assert!(
        logs.iter().any(|l| l
            .starts_with("valbox: 1 fetch request still running when the call ended was dropped")),
        "{logs:?}"
    );
}

//! Streamed HTTP answers over a real socket: a web-standard handler (and a
//! `/v1/run` val) returning a `Response` whose body is a `ReadableStream`
//! is answered chunk by chunk as the stream yields, with its status and
//! headers first; a stream that fails midway ends the body abruptly; a
//! client that goes away cancels the stream.

mod common;

use common::{fresh_dir, save_val, serve_with, Http};
use serde_json::Value;
use std::io::Read;
use std::time::{Duration, Instant};

/// A handler that sends `first`, waits `pause_ms` on a timer, then sends
/// `second` and ends.
fn two_chunks(pause_ms: u32) -> String {
    format!(
        r#"export default function () {{
            const bytes = (text) => new TextEncoder().encode(text);
            const body = new ReadableStream({{
                start(controller) {{
                    controller.enqueue(bytes("first;"));
                    setTimeout(() => {{ controller.enqueue(bytes("second")); controller.close(); }}, {pause_ms});
                }},
            }});
            const headers = new Headers({{ "content-type": "text/plain" }});
            headers.append("set-cookie", "a=1");
            headers.append("set-cookie", "b=2");
            return new Response(body, {{ status: 201, headers }});
        }}"#
    )
}

/// Reads the body as it comes: each piece with when it arrived.
fn pieces(response: ureq::Response) -> (Vec<(Instant, String)>, std::io::Result<()>) {
    let mut reader = response.into_reader();
    let mut got = Vec::new();
    let mut buffer = [0u8; 4096];
    loop {
        match reader.read(&mut buffer) {
            Ok(0) => return (got, Ok(())),
            Ok(n) => got.push((
                Instant::now(),
                String::from_utf8_lossy(&buffer[..n]).into_owned(),
            )),
            Err(error) => return (got, Err(error)),
        }
    }
}

/// `GET path` on the server, which must answer.
fn get(http: &Http, path: &str) -> ureq::Response {
    let url = format!("http://127.0.0.1:{}{path}", http.port);
    ureq::get(&url)
        .call()
        .unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The pieces' text, joined.
fn text_of(got: &[(Instant, String)]) -> String {
    got.iter().map(|(_, piece)| piece.as_str()).collect()
}

fn last_record(http: &Http, key: &str) -> Value {
    let (status, page) = http.call("GET", "/v1/evaluations?limit=1", Some(key), None);
    assert_eq!(status, 200, "{page}");
    page["evaluations"][0]["record"].clone()
}

#[test]
fn a_stream_body_reaches_the_client_as_the_val_produces_it() {
    let (_server, http) = serve_with(&fresh_dir("streaming-express"), &[]);
    let key = http.user("carol");
    save_val(&http, &key, "site", "public", &two_chunks(1500));
    for path in ["/v1/express/carol.site", "/v1/run/carol.site"] {
        let response = get(&http, path);
        assert_eq!(response.status(), 201, "{path}");
        assert_eq!(
            response.header("content-type"),
            Some("text/plain"),
            "{path}"
        );
        assert_eq!(response.all("set-cookie"), ["a=1", "b=2"], "{path}");
        assert_eq!(response.header("content-security-policy"), Some("sandbox"));
        assert_eq!(response.header("transfer-encoding"), Some("chunked"));
        let (got, ended) = pieces(response);
        ended.unwrap_or_else(|e| panic!("{path}: the body ends cleanly: {e}"));
        assert_eq!(text_of(&got), "first;second", "{path}");
        // The first chunk came while the val was still waiting on its
        // timer, not with the rest of the body at the end.
        let (first_at, first) = &got[0];
        let (last_at, _) = got.last().unwrap();
        assert_eq!(first, "first;", "{path}: {got:?}");
        assert!(
            *last_at - *first_at > Duration::from_millis(700),
            "{path}: the pieces came together: {got:?}"
        );
        let record = last_record(&http, &key);
        assert_eq!(record["ok"], true, "{record}");
    }
    // A Response whose body is bytes is still answered whole.
    save_val(
        &http,
        &key,
        "whole",
        "public",
        r#"export default () => new Response("all at once", { status: 202 })"#,
    );
    let response = get(&http, "/v1/express/carol.whole");
    assert_eq!(response.status(), 202);
    assert_eq!(response.header("content-length"), Some("11"));
    assert_eq!(response.into_string().unwrap(), "all at once");
}

#[test]
fn an_express_handler_streams_with_res_write() {
    let (_server, http) = serve_with(&fresh_dir("streaming-express-write"), &[]);
    let key = http.user("carol");
    let code = r#"export default async function (req, res) {
        res.status(200).set('content-type', 'text/event-stream');
        res.write('data: one\n\n');
        await new Promise((resolve) => setTimeout(resolve, 1500));
        res.write(new TextEncoder().encode('data: two\n\n'));
        res.end('data: end\n\n');
    }"#;
    save_val(&http, &key, "events", "public", code);
    let response = get(&http, "/v1/express/carol.events");
    assert_eq!(response.status(), 200);
    assert_eq!(response.header("content-type"), Some("text/event-stream"));
    assert_eq!(response.header("content-security-policy"), Some("sandbox"));
    let (got, ended) = pieces(response);
    ended.unwrap();
    assert_eq!(text_of(&got), "data: one\n\ndata: two\n\ndata: end\n\n");
    assert_eq!(got[0].1, "data: one\n\n", "{got:?}");
    let (first_at, last_at) = (got[0].0, got.last().unwrap().0);
    assert!(
        last_at - first_at > Duration::from_millis(700),
        "the writes came together: {got:?}"
    );
}

/// Only the call answering the request streams: a val it calls through
/// `api()` that returns a stream-bodied Response cannot take over the
/// caller's HTTP answer; the caller gets its description as JSON.
#[test]
fn a_nested_call_cannot_stream_its_callers_answer() {
    let (_server, http) = serve_with(&fresh_dir("streaming-nested"), &[]);
    let bob = http.user("bob");
    let carol = http.user("carol");
    let streamer = r#"export default () => new Response(new ReadableStream({
        start(controller) {
            controller.enqueue(new TextEncoder().encode("bob's stream"));
            controller.close();
        },
    }), { status: 299, headers: { "x-from": "bob" } })"#;
    save_val(&http, &bob, "streamer", "public", streamer);
    let outer = r#"export default async () => {
        const inner = await api(@bob.streamer);
        return new Response(`carol got ${inner.status}: ${inner.body}`, { status: 200 });
    }"#;
    save_val(&http, &carol, "outer", "public", outer);
    let response = get(&http, "/v1/express/carol.outer");
    assert_eq!(response.status(), 200);
    assert_eq!(response.header("x-from"), None);
    assert_eq!(
        response.into_string().unwrap(),
        "carol got 299: bob's stream"
    );
}

#[test]
fn a_stream_that_fails_midway_ends_the_body_abruptly() {
    let (_server, http) = serve_with(&fresh_dir("streaming-failure"), &[]);
    let key = http.user("carol");
    let code = r#"export default () => {
        let n = 0;
        return new Response(new ReadableStream({
            async pull(controller) {
                if (n++ === 1) throw new Error("the feed broke");
                controller.enqueue(new TextEncoder().encode("partial"));
            },
        }));
    }"#;
    save_val(&http, &key, "feed", "public", code);
    let response = get(&http, "/v1/express/carol.feed");
    assert_eq!(response.status(), 200);
    let (got, ended) = pieces(response);
    assert_eq!(text_of(&got), "partial");
    assert!(ended.is_err(), "a failed stream must not look complete");
    let record = last_record(&http, &key);
    assert_eq!(record["ok"], false, "{record}");
    assert!(
        record["error"].as_str().unwrap().contains("the feed broke"),
        "{record}"
    );
}

#[test]
fn a_client_that_goes_away_cancels_the_stream() {
    let (_server, http) = serve_with(&fresh_dir("streaming-cancel"), &[]);
    let key = http.user("carol");
    // Endless: a chunk every 20 ms until the reader cancels.
    let code = r#"export default () => {
        let n = 0;
        return new Response(new ReadableStream({
            async pull(controller) {
                await new Promise((resolve) => setTimeout(resolve, 20));
                controller.enqueue(new TextEncoder().encode(`tick ${n++}\n`));
            },
            cancel() { console.log(`cancelled after ${n} ticks`); },
        }));
    }"#;
    save_val(&http, &key, "ticks", "public", code);
    let response = get(&http, "/v1/express/carol.ticks");
    let mut reader = response.into_reader();
    let mut buffer = [0u8; 64];
    assert!(reader.read(&mut buffer).unwrap() > 0);
    drop(reader);
    let deadline = Instant::now() + Duration::from_secs(20);
    let record = loop {
        let record = last_record(&http, &key);
        if record["target"] == "@carol.ticks@1" {
            break record;
        }
        assert!(Instant::now() < deadline, "the call never ended");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(record["ok"], true, "{record}");
    let log = record["logs"][0]["message"].as_str().unwrap_or_default();
    assert!(log.starts_with("cancelled after"), "{record}");
}

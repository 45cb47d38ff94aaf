//! The web platform inside the guest where web-platform-tests do not reach
//! (those run in `wpt.rs`): timers against the call's deadline and what a
//! call's end does to pending timers, entropy per instance, the classes
//! living in the snapshot, and a val's everyday first lines.

mod common;

use serde_json::{json, Value};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};
use valbox_runtime::{LogLevel, MemoryWorld, Sandbox, SandboxConfig, SandboxError};

fn run(body: &str) -> Result<Value, SandboxError> {
    let outcome = common::run(&Arc::new(MemoryWorld::new()), Some("alice"), body);
    outcome
        .result
        .map(|text| serde_json::from_str(&text).unwrap())
}

/// A sandbox whose calls end after 300 ms.
fn short_deadline() -> &'static Sandbox {
    static SANDBOX: OnceLock<Sandbox> = OnceLock::new();
    SANDBOX.get_or_init(|| {
        Sandbox::new(SandboxConfig {
            deadline: Duration::from_millis(300),
            ..common::config()
        })
        .unwrap()
    })
}

#[test]
fn set_timeout_waits_and_timers_run_in_due_order() {
    let start = Instant::now();
    let answer = run(r#"
        const order = [];
        const t0 = performance.now();
        await new Promise((resolve) => {
          setTimeout(() => order.push(30), 30);
          setTimeout(() => order.push(10), 10);
          const cancelled = setTimeout(() => order.push("cancelled"), 25);
          setTimeout(() => { order.push(20); clearTimeout(cancelled); }, 12);
          setTimeout(resolve, 60);
        });
        let ticks = 0;
        await new Promise((resolve) => {
          const id = setInterval(() => { if (++ticks === 3) { clearInterval(id); resolve(); } }, 5);
        });
        return [order, ticks, performance.now() - t0 >= 60];
    "#)
    .unwrap();
    assert_eq!(answer, json!([[10, 20, 30], 3, true]));
    assert!(start.elapsed() >= Duration::from_millis(60));
}

#[test]
fn a_timer_past_the_deadline_ends_the_call_at_once() {
    let sandbox = short_deadline();
    let start = Instant::now();
    let outcome = common::run_with(
        sandbox,
        &Arc::new(MemoryWorld::new()),
        Some("alice"),
        "await new Promise((r) => setTimeout(r, 10000)); return 1;",
    );
    assert!(
        matches!(outcome.result, Err(SandboxError::Timeout(_))),
        "{:?}",
        outcome.result
    );
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "slept into the timer: {:?}",
        start.elapsed()
    );
    // Timers that keep being re-armed are still stopped by the deadline.
    let outcome = common::run_with(
        short_deadline(),
        &Arc::new(MemoryWorld::new()),
        Some("alice"),
        "await new Promise(() => setInterval(() => {}, 1)); return 1;",
    );
    assert!(
        matches!(outcome.result, Err(SandboxError::Timeout(_))),
        "{:?}",
        outcome.result
    );
}

#[test]
fn timers_pending_when_the_result_is_ready_are_dropped_and_logged() {
    let outcome = common::run(
        &Arc::new(MemoryWorld::new()),
        Some("alice"),
        r#"setTimeout(() => console.log("never"), 50);
           setInterval(() => console.log("never either"), 10);
           await new Promise((r) => setTimeout(r, 1));
           return "done";"#,
    );
    assert_eq!(outcome.result.unwrap(), "\"done\"");
    let logs = &outcome.evaluation.logs;
    assert_eq!(logs.len(), 1, "{logs:?}");
    assert_eq!(logs[0].level, LogLevel::Warn);
    assert!(
        logs[0].message.contains("2 timers still pending"),
        "{}",
        logs[0].message
    );
}

#[test]
fn an_exception_in_a_timer_is_reported_and_the_call_goes_on() {
    let outcome = common::run(
        &Arc::new(MemoryWorld::new()),
        Some("alice"),
        r#"await new Promise((r) => { setTimeout(() => { throw new TypeError("in a timer") }, 1); setTimeout(r, 5); });
           reportError(new RangeError("reported"));
           return "went on";"#,
    );
    assert_eq!(outcome.result.unwrap(), "\"went on\"");
    let messages: Vec<_> = outcome
        .evaluation
        .logs
        .iter()
        .map(|l| (l.level, l.message.as_str()))
        .collect();
    assert!(
        messages[0].0 == LogLevel::Error
            && messages[0].1.starts_with("Uncaught TypeError: in a timer"),
        "{messages:?}"
    );
    assert!(
        messages[1].1.starts_with("Uncaught RangeError: reported"),
        "{messages:?}"
    );
}

#[test]
fn entropy_differs_in_every_instance() {
    let source = r#"return [Math.random(), Math.random(), crypto.randomUUID(), Array.from(crypto.getRandomValues(new Uint8Array(16))).join(",")];"#;
    let first = run(source).unwrap();
    let second = run(source).unwrap();
    for i in 0..4 {
        assert_ne!(
            first[i], second[i],
            "part {i} repeated across instances: {first} {second}"
        );
    }
    assert_ne!(first[0], first[1]);
    let uuid = first[2].as_str().unwrap();
    assert!(
        uuid.len() == 36
            && uuid.as_bytes()[14] == b'4'
            && "89ab".contains(uuid.as_bytes()[19] as char),
        "{uuid} is not a version 4 UUID"
    );
}

#[test]
fn a_vals_first_lines_work() {
    let answer = run(r#"
        const url = new URL("/hook?name=Ada%20L&x=1#top", "https://example.com/base/");
        url.searchParams.append("y", "ä b");
        const key = await crypto.subtle.importKey("raw", new TextEncoder().encode("secret"), { name: "HMAC", hash: "SHA-256" }, false, ["sign", "verify"]);
        const mac = await crypto.subtle.sign("HMAC", key, new TextEncoder().encode("payload"));
        const hex = [...new Uint8Array(mac)].map((b) => b.toString(16).padStart(2, "0")).join("");
        const ok = await crypto.subtle.verify("HMAC", key, mac, new TextEncoder().encode("payload"));
        const digest = new Uint8Array(await crypto.subtle.digest("SHA-1", new TextEncoder().encode("abc")));
        const form = new FormData();
        form.append("a", "1");
        form.append("f", new Blob(["hi"], { type: "text/plain" }), "f.txt");
        const multipart = await new Response(form).formData();
        const streamed = await new Response(new ReadableStream({ start(c) { c.enqueue(new TextEncoder().encode("str")); c.enqueue(new TextEncoder().encode("eam")); c.close(); } })).text();
        return [
          url.href, url.searchParams.get("name"), btoa("user:pass"), atob("dXNlcjpwYXNz"),
          hex, ok, digest.length, multipart.get("a"), await multipart.get("f").text(), streamed,
          structuredClone(new Map([[1, { d: new Date(0) }]])).get(1).d.getTime(),
          typeof navigator.userAgent, new DOMException("m", "AbortError").code,
          new TextDecoder("utf-16le").decode(new Uint8Array([104, 0, 105, 0])),
        ];
    "#)
    .unwrap();
    assert_eq!(
        answer,
        json!([
            "https://example.com/hook?name=Ada+L&x=1&y=%C3%A4+b#top",
            "Ada L",
            "dXNlcjpwYXNz",
            "user:pass",
            "b82fcb791acec57859b989b430a826488ce2e479fdf92326bd0a2e8375a42ba4",
            true,
            20,
            "1",
            "hi",
            "stream",
            0,
            "string",
            20,
            "hi"
        ])
    );
}

#[test]
fn url_pattern_routes_as_a_vals_router_uses_it() {
    let answer = run(r#"
        const routes = [
          [new URLPattern({ pathname: "/books/:id(\\d+)" }), "book"],
          [new URLPattern({ pathname: "/users/:name/*?" }), "user"],
        ];
        const route = (url) => {
          for (const [pattern, name] of routes) {
            const found = pattern.exec(url);
            if (found) return [name, found.pathname.groups];
          }
          return null;
        };
        const full = new URLPattern("https://:sub.example.com/a/:x?", { ignoreCase: true });
        const refused = [];
        for (const bad of ["(", "/a/:x(", "relative/:x"]) {
          try { new URLPattern(bad); refused.push("accepted " + bad); } catch (e) { refused.push(e.name); }
        }
        let withBase;
        try { full.test({ pathname: "/a" }, "https://example.com"); } catch (e) { withBase = e.name; }
        return [
          route("https://v.example/books/42"), route("https://v.example/books/x"),
          route("https://v.example/users/ann/a/b"), route("https://v.example/users/ann"),
          full.exec("https://API.example.com/A/1").hostname.groups, full.test("https://example.com/a/1"),
          full.pathname, full.hasRegExpGroups, routes[0][0].hasRegExpGroups,
          new URLPattern("/p/:x", "https://base.example").test("https://base.example/p/1"),
          refused, withBase, Object.prototype.toString.call(full),
        ];
    "#)
    .unwrap();
    assert_eq!(
        answer,
        json!([
            ["book", { "id": "42" }],
            null,
            ["user", { "0": "a/b", "name": "ann" }],
            ["user", { "name": "ann" }],
            { "sub": "api" },
            false,
            "/a/:x?",
            false,
            true,
            true,
            ["TypeError", "TypeError", "TypeError"],
            "TypeError",
            "[object URLPattern]"
        ])
    );
}

#[test]
fn compression_streams_round_trip_and_refuse_bad_input() {
    let answer = run(r#"
        const text = "hello hello hello hello ".repeat(50);
        const through = async (bytes, stream) =>
          new Uint8Array(await new Response(new Blob([bytes]).stream().pipeThrough(stream)).arrayBuffer());
        const formats = {};
        for (const format of ["gzip", "deflate", "deflate-raw"]) {
          const packed = await through(text, new CompressionStream(format));
          const back = new TextDecoder().decode(await through(packed, new DecompressionStream(format)));
          formats[format] = [packed.length < text.length, back === text, packed[0]];
        }
        const refused = async (bytes) => {
          try { await through(bytes, new DecompressionStream("gzip")); return "accepted"; }
          catch (e) { return e.name + ": " + e.message; }
        };
        const good = await through("abc", new CompressionStream("gzip"));
        const trailing = new Uint8Array([...good, 1, 2, 3]);
        const errors = [
          await refused(new Uint8Array([1, 2, 3, 4, 5])),
          await refused(good.slice(0, good.length - 4)),
          await refused(trailing),
        ];
        try { new DecompressionStream("brotli"); } catch (e) { errors.push(e.name); }
        const cs = new CompressionStream("deflate");
        const reading = cs.readable.getReader().read().then(() => "read", (e) => e.name);
        const writing = cs.writable.getWriter().write("not bytes").then(() => "written", (e) => e.name);
        errors.push(await writing, await reading);
        return [formats, errors, Object.prototype.toString.call(cs)];
    "#)
    .unwrap();
    let errors = answer[1].as_array().unwrap();
    assert_eq!(
        answer[0],
        json!({
            "gzip": [true, true, 0x1f],
            "deflate": [true, true, 0x78],
            "deflate-raw": [true, true, answer[0]["deflate-raw"][2]],
        })
    );
    for (i, error) in errors[..3].iter().enumerate() {
        let error = error.as_str().unwrap();
        assert!(
            error.starts_with("TypeError: Failed to decompress the data"),
            "{i}: {error}"
        );
    }
    assert!(
        errors[2].as_str().unwrap().contains("after the end"),
        "{}",
        errors[2]
    );
    assert_eq!(
        errors[3..],
        [json!("TypeError"), json!("TypeError"), json!("TypeError")]
    );
    assert_eq!(answer[2], "[object CompressionStream]");
}

/// A 1024-bit RSA key (PKCS #8, base64) and a ciphertext of "hello oaep"
/// that `openssl pkeyutl -encrypt` made with it (OAEP, SHA-256, MGF1
/// SHA-256, no label).
const OAEP_KEY: &str = "MIICdwIBADANBgkqhkiG9w0BAQEFAASCAmEwggJdAgEAAoGBAOoQ/AhqbQwr+2Dsbmv7reH25R866HnCVxw8mviyzX5RahbP+UNyhiG6sNLAQRjOX0Nyhld25E1k4zArC1wmZ4030A3acG9dgM6tUD8ClFEFgjSHH+SouehSsTlSTqmYmhgY3tS/eiwPWwcDmtjsH2nm6zHH2Rw12FY+LTcZY26DAgMBAAECgYEA2J2tUXCEyM3vTyyfqEl8C3H9ayCOQxiqm1QvK1f2Ox/HaaNBEL1tCswGlpQb6oQav4W+dDVwZXunkU1UrwxPqSj5l68x3SbjcaCsHzeCOxZDgFORtY00z6bEKhLU7VAYHA+6v/C2UxXG4wk2pViX6b/pOMvsOjpHvmWyUFRdLEkCQQD+2Uqboi8WhxhgNYaYYNIC7mZQAgx9pGDmWyGXgBQPbb0OqginsWRpIWJpQfA382ACU2OzCkt2ZUklnoStNUGHAkEA6x+o/g82iVmvIA5bn/Kk6DyVPd/BQOifrqwaH3qb+yOieGfP48YLrTk2lvjRivmpPoO4GBqxgLkixtR1mvzaJQJAMuH1mH9YQXo1rrfhKLlkFPu+Z8kQ72ELi9K0MUh8ONxjO/NNCRZNAwSMXpGwwasRB0XZCR1MFdaBNUaiHOceLwJAHJufjjn/orqcykO09kMpuXAVoI+nDeS/+RrLmuTqMaZmUEwhSU+BgDQj5j6kEErMQuT380bcLhNYneSf4pm9WQJBAMBybOg6V0JJtRmAWaQ3Z7XoDWB2WeN0pf+RAaAk4XmIl5wgb0xk7KzzhdM7IvdGi5/3pXOMjBPLbfbTzr9AQ4g=";
const OAEP_CIPHERTEXT: &str = "payx3xvQWH8rR//I2A7p6VY7N8y6g9w9ycLND0QhAR4p1k3z2YVTN73Muu/iJcaCrsZeSOhaPQfH0YnqrUMUjljfi6aa4WGfKa/+phQ5fV2Gbg+d0pjKyfvhtnv095Df6rj9e35/Am8qt2pD0zY7sG2G+twwJRUejIMDOrDwNm8=";

#[test]
fn rsa_oaep_encrypts_decrypts_wraps_and_reads_what_openssl_wrote() {
    let body = r#"
        const b64 = (text) => Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
        const alg = { name: "RSA-OAEP", hash: "SHA-256" };
        const privateKey = await crypto.subtle.importKey("pkcs8", b64("{KEY}"), alg, true, ["decrypt", "unwrapKey"]);
        const jwk = await crypto.subtle.exportKey("jwk", privateKey);
        const publicKey = await crypto.subtle.importKey("jwk", { kty: "RSA", n: jwk.n, e: jwk.e, alg: jwk.alg }, alg, true, ["encrypt", "wrapKey"]);
        const text = (bytes) => new TextDecoder().decode(bytes);
        const fromOpenssl = text(await crypto.subtle.decrypt(alg, privateKey, b64("{CT}")));
        const label = new TextEncoder().encode("tag");
        const sealed = await crypto.subtle.encrypt({ ...alg, label }, publicKey, new TextEncoder().encode("round trip"));
        const opened = text(await crypto.subtle.decrypt({ ...alg, label }, privateKey, sealed));
        const errors = [];
        for (const attempt of [
          () => crypto.subtle.decrypt({ ...alg, label: new TextEncoder().encode("other") }, privateKey, sealed),
          () => crypto.subtle.decrypt(alg, publicKey, sealed),
          () => crypto.subtle.encrypt(alg, publicKey, new Uint8Array(200)),
        ]) {
          try { await attempt(); errors.push("accepted"); } catch (e) { errors.push(e.name); }
        }
        const aes = await crypto.subtle.generateKey({ name: "AES-GCM", length: 128 }, true, ["encrypt"]);
        const wrapped = await crypto.subtle.wrapKey("raw", aes, publicKey, alg);
        const unwrapped = await crypto.subtle.unwrapKey("raw", wrapped, privateKey, alg, "AES-GCM", true, ["encrypt"]);
        const same = text(new Uint8Array(await crypto.subtle.exportKey("raw", aes))) === text(new Uint8Array(await crypto.subtle.exportKey("raw", unwrapped)));
        return [fromOpenssl, opened, sealed.byteLength, errors, jwk.alg, privateKey.algorithm.modulusLength, same];
    "#
    .replace("{KEY}", OAEP_KEY)
    .replace("{CT}", OAEP_CIPHERTEXT);
    assert_eq!(
        run(&body).unwrap(),
        json!([
            "hello oaep",
            "round trip",
            128,
            ["OperationError", "InvalidAccessError", "OperationError"],
            "RSA-OAEP-256",
            1024,
            true
        ])
    );
}

#[test]
fn x25519_derives_the_rfc_7748_shared_secret() {
    // RFC 7748, section 6.1: Alice's key pair, Bob's public key, the secret.
    let answer = run(r#"
        const hex = (h) => Uint8Array.from(h.match(/../g), (b) => parseInt(b, 16));
        const toHex = (buf) => [...new Uint8Array(buf)].map((b) => b.toString(16).padStart(2, "0")).join("");
        const b64url = (bytes) => btoa(String.fromCharCode(...bytes)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
        const alice = await crypto.subtle.importKey("jwk", {
          kty: "OKP", crv: "X25519",
          d: b64url(hex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a")),
          x: b64url(hex("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a")),
        }, "X25519", true, ["deriveBits"]);
        const bob = await crypto.subtle.importKey("raw", hex("de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f"), { name: "X25519" }, true, []);
        const shared = toHex(await crypto.subtle.deriveBits({ name: "X25519", public: bob }, alice, 256));
        // Generated pairs agree, keys export and import again, a derived key works.
        const one = await crypto.subtle.generateKey("X25519", true, ["deriveBits", "deriveKey"]);
        const two = await crypto.subtle.generateKey({ name: "X25519" }, true, ["deriveBits"]);
        const ab = toHex(await crypto.subtle.deriveBits({ name: "X25519", public: two.publicKey }, one.privateKey, 256));
        const ba = toHex(await crypto.subtle.deriveBits({ name: "X25519", public: one.publicKey }, two.privateKey, 256));
        const pkcs8 = await crypto.subtle.exportKey("pkcs8", one.privateKey);
        const again = await crypto.subtle.importKey("pkcs8", pkcs8, "X25519", false, ["deriveBits"]);
        const spki = await crypto.subtle.exportKey("spki", two.publicKey);
        const twoAgain = await crypto.subtle.importKey("spki", spki, "X25519", true, []);
        const same = toHex(await crypto.subtle.deriveBits({ name: "X25519", public: twoAgain }, again, 256)) === ab;
        const aes = await crypto.subtle.deriveKey({ name: "X25519", public: two.publicKey }, one.privateKey, { name: "AES-GCM", length: 256 }, false, ["encrypt"]);
        let smallOrder;
        try {
          const zero = await crypto.subtle.importKey("raw", new Uint8Array(32), "X25519", true, []);
          await crypto.subtle.deriveBits({ name: "X25519", public: zero }, alice, 256);
          smallOrder = "derived";
        } catch (e) { smallOrder = e.name; }
        const jwk = await crypto.subtle.exportKey("jwk", alice);
        return [shared, ab === ba, same, aes.algorithm.name, smallOrder, jwk.crv, jwk.kty, new Uint8Array(spki).length, one.privateKey.algorithm.name];
    "#)
    .unwrap();
    assert_eq!(
        answer,
        json!([
            "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742",
            true,
            true,
            "AES-GCM",
            "OperationError",
            "X25519",
            "OKP",
            44,
            "X25519"
        ])
    );
}

#[test]
fn console_has_the_whole_console_standard() {
    let outcome = common::run(
        &Arc::new(MemoryWorld::new()),
        Some("alice"),
        r#"
        console.log("%s is %d, %i%% %f %o%c and", "Ada", "36", 4.7, "1.5", { a: 1 }, "color: red", "more", 1);
        console.log("%s stays", "no specifier left", "%s");
        console.assert(1 === 1, "not shown");
        console.assert(false, "x is %s", 2);
        console.count(); console.count(); console.count("hits"); console.countReset(); console.count();
        console.countReset("nope");
        console.time("t"); console.timeLog("t", "halfway"); console.timeEnd("t"); console.timeEnd("t");
        console.group("outer");
        console.log("inside");
        console.group();
        console.warn({ a: 1 });
        console.groupEnd(); console.groupEnd();
        console.log("outside");
        console.table([{ a: 1, b: "x" }, { a: 2 }]);
        console.table(5);
        console.dir({ d: [1] });
        console.group(); console.trace("in a group"); console.groupEnd();
        console.trace("here");
        console.clear();
        return "done";
    "#,
    );
    assert_eq!(outcome.result.unwrap(), "\"done\"");
    let lines: Vec<String> = outcome
        .evaluation
        .logs
        .iter()
        .map(|l| format!("{:?} {}", l.level, l.message))
        .collect();
    let (trace, lines) = lines.split_last().unwrap();
    let timed = |line: &String, start: &str| line.starts_with(start) && line.contains("ms");
    let (formatted, lines) = lines.split_at(2);
    assert_eq!(
        formatted,
        [
            "Log Ada is 36, 4% 1.5 { a: 1 } and more 1",
            "Log no specifier left stays %s"
        ]
    );
    assert_eq!(lines[0], "Error Assertion failed: x is 2");
    assert_eq!(
        lines[1..5],
        [
            "Info default: 1",
            "Info default: 2",
            "Info hits: 1",
            "Info default: 1"
        ]
    );
    assert_eq!(lines[5], "Warn Count for 'nope' does not exist");
    assert!(
        timed(&lines[6], "Info t: ") && lines[6].ends_with(" halfway"),
        "{}",
        lines[6]
    );
    assert!(timed(&lines[7], "Info t: "), "{}", lines[7]);
    assert_eq!(lines[8], "Warn Timer 't' does not exist");
    assert_eq!(
        lines[9..13],
        [
            "Log outer",
            "Log   inside",
            "Warn     { a: 1 }",
            "Log outside"
        ]
    );
    assert_eq!(
        lines[13],
        "Log ┌─────────┬───┬─────┐\n│ (index) │ a │ b   │\n├─────────┼───┼─────┤\n│ 0       │ 1 │ 'x' │\n│ 1       │ 2 │     │\n└─────────┴───┴─────┘"
    );
    assert_eq!(lines[14..16], ["Log 5", "Log { d: [1] }"]);
    let grouped = lines[16].strip_prefix("Debug ").unwrap();
    assert!(grouped.starts_with("  Trace: in a group\n"), "{grouped}");
    assert!(
        grouped.lines().all(|line| line.starts_with("  ")),
        "{grouped}"
    );
    assert!(trace.starts_with("Debug Trace: here\n"), "{trace}");
    assert!(
        trace.contains("eval.js"),
        "the trace shows the val's frame: {trace}"
    );
}

#[test]
fn structured_clone_refuses_what_cannot_cross() {
    let answer = run(r#"
        const refused = (value) => {
          try { structuredClone(value); return "cloned"; }
          catch (e) { return e instanceof DOMException && e.name; }
        };
        class Point { constructor() { this.x = 1; } }
        return [
          refused({ f() {} }),
          // Platform objects the standard does not make serializable.
          refused(new AbortController()), refused(new EventTarget()), refused(new ReadableStream()),
          refused(new URLPattern({ pathname: "/a" })), refused(new CompressionStream("gzip")),
          refused({ nested: [new TextEncoder()] }),
          // Serializable ones, and a user's class (its own properties).
          structuredClone(new DOMException("m", "AbortError")).name, structuredClone(new Blob(["ab"])).size,
          structuredClone(new Point()),
        ];
    "#)
    .unwrap();
    assert_eq!(
        answer,
        json!([
            "DataCloneError",
            "DataCloneError",
            "DataCloneError",
            "DataCloneError",
            "DataCloneError",
            "DataCloneError",
            "DataCloneError",
            "AbortError",
            2,
            { "x": 1 }
        ])
    );
}

#[test]
fn intl_formats_en_us_dates_in_iana_time_zones_and_numbers() {
    let answer = run(r#"
        const d = new Date(Date.UTC(2026, 10, 29, 19, 42, 40));
        return [
          d.toLocaleString("en-US", { timeZone: "UTC" }),
          d.toLocaleString("en-US", { timeZone: "Europe/Paris" }),
          new Date(Date.UTC(2026, 6, 1, 12)).toLocaleTimeString("en-US", { timeZone: "Europe/Paris" }),
          new Intl.DateTimeFormat("en-US", { dateStyle: "full", timeStyle: "long", timeZone: "America/Los_Angeles" }).format(d),
          new Intl.DateTimeFormat("en-US", { month: "short", day: "numeric", timeZone: "Asia/Kolkata", timeZoneName: "short" }).format(d),
          (1234567.891).toLocaleString(),
          new Intl.NumberFormat("en-US", { style: "currency", currency: "USD" }).format(-1234.5),
          new Intl.NumberFormat("en-US", { notation: "compact" }).format(1234567),
          new Intl.PluralRules("en-US", { type: "ordinal" }).select(23),
        ];
    "#)
    .unwrap();
    assert_eq!(
        answer,
        json!([
            "11/29/2026, 7:42:40 PM",
            "11/29/2026, 8:42:40 PM",
            "2:00:00 PM",
            "Sunday, November 29, 2026 at 11:42:40 AM PST",
            "Nov 30, GMT+5:30",
            "1,234,567.891",
            "-$1,234.50",
            "1.2M",
            "few"
        ])
    );
    let refused = run(r#"try { new Intl.DateTimeFormat("en-US", { timeZone: "Mars/Olympus" }); return "accepted"; } catch (e) { return e.name; }"#).unwrap();
    assert_eq!(refused, json!("RangeError"));
}

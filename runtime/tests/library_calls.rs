//! Library and API calls beyond the table: the value codec, sync and async
//! results, traces, sticky restriction, own and anonymous code, and attempts
//! to get around the frame.

mod common;

use common::{put, run, run_with};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::{Duration, Instant};
use valbox_runtime::{MemoryWorld, Mode, Outcome, Sandbox, SandboxConfig, SandboxError};

fn result(outcome: Outcome) -> Value {
    serde_json::from_str(&outcome.result.expect("the code runs")).unwrap()
}

/// A world where bob's public `echo` returns its argument.
fn bob_echo() -> Arc<MemoryWorld> {
    let world = Arc::new(MemoryWorld::new());
    put(
        &world,
        "bob",
        "echo",
        true,
        "export function echo(v) { return v }",
    );
    world
}

fn thrown_message(outcome: Outcome) -> String {
    match outcome.result {
        Err(SandboxError::Thrown(error)) => format!("{}: {}", error.name, error.message),
        other => panic!("expected a thrown error, got {other:?}"),
    }
}

#[test]
fn rich_values_cross_a_library_call_both_ways() {
    let world = Arc::new(MemoryWorld::new());
    put(
        &world,
        "bob",
        "echo",
        true,
        "export function echo(...args) { return args }",
    );
    let body = r#"
        const shared = { n: 1 };
        const cyclic = { name: 'loop' }; cyclic.self = cyclic;
        const input = [undefined, NaN, Infinity, -Infinity, -0, 12345678901234567890n,
            new Date(86400000), /a+b/gi, new Map([[1, 'one'], ['k', shared]]), new Set([1, 'two']),
            new TypeError('bad thing'), new Uint8Array([1, 2, 255]), new Float64Array([1.5]),
            new Uint8Array([7, 8]).buffer, [shared, shared], cyclic];
        const out = @bob.echo(...input);
        const [u, nan, inf, ninf, nzero, big, date, re, map, set, err, bytes, floats, buffer, pair, loop] = out;
        return {
            undefinedKept: u === undefined && out.length === input.length,
            nan: Number.isNaN(nan), inf: inf === Infinity, ninf: ninf === -Infinity,
            negativeZero: Object.is(nzero, -0),
            big: typeof big === 'bigint' && big === 12345678901234567890n,
            date: date instanceof Date && date.getTime() === 86400000,
            re: re instanceof RegExp && re.source === 'a+b' && re.flags === 'gi',
            map: map instanceof Map && map.get(1) === 'one' && map.get('k').n === 1,
            set: set instanceof Set && set.has('two'),
            error: err instanceof TypeError && err.message === 'bad thing' && typeof err.stack === 'string',
            bytes: bytes instanceof Uint8Array && bytes[2] === 255,
            floats: floats instanceof Float64Array && floats[0] === 1.5,
            buffer: buffer instanceof ArrayBuffer && buffer.byteLength === 2,
            sharedStaysShared: pair[0] === pair[1] && map.get('k') === pair[0],
            cycleKept: loop.self === loop,
            copied: pair[0] !== shared,
        };
    "#;
    let value = result(run(&world, Some("alice"), body));
    for (check, ok) in value.as_object().unwrap() {
        assert_eq!(ok, &json!(true), "{check} failed: {value}");
    }
}

#[test]
fn a_function_argument_is_a_data_clone_error_in_the_caller() {
    let world = Arc::new(MemoryWorld::new());
    put(
        &world,
        "bob",
        "take",
        true,
        "export function take(f) { return typeof f }",
    );
    let body = "try { @bob.take(() => 1); return 'passed' } catch (e) { return e.name + ': ' + e.message }";
    let message = result(run(&world, Some("alice"), body));
    let message = message.as_str().unwrap();
    assert!(
        message.starts_with("DataCloneError: a function cannot be passed to @bob.take"),
        "{message}"
    );
    let body =
        "try { @bob.take({ nested: [Symbol('s')] }); return 'passed' } catch (e) { return e.name }";
    assert_eq!(
        result(run(&world, Some("alice"), body)),
        json!("DataCloneError")
    );
}

#[test]
fn a_function_returned_by_a_library_is_a_data_clone_error_not_a_live_reference() {
    let world = Arc::new(MemoryWorld::new());
    put(
        &world,
        "bob",
        "leak",
        true,
        "export function leak() { return { steal: () => @me.secrets.foo } }",
    );
    let body = "try { @bob.leak(); return 'got it' } catch (e) { return e.name }";
    assert_eq!(
        result(run(&world, Some("alice"), body)),
        json!("DataCloneError")
    );
}

#[test]
fn getters_and_proxies_are_copied_as_data_in_the_callers_instance() {
    let world = Arc::new(MemoryWorld::new());
    put(&world, "bob", "inspect", true, "export function inspect(o) { return [Object.getOwnPropertyDescriptor(o, 'x').get === undefined, o.x, o.y] }");
    let body = r#"
        let reads = 0;
        const withGetter = { get x() { reads++; return 'from getter' }, y: 1 };
        const proxy = new Proxy({ x: 'proxied', y: 2 }, {});
        return { getter: @bob.inspect(withGetter), proxy: @bob.inspect(proxy), reads };
    "#;
    assert_eq!(
        result(run(&world, Some("alice"), body)),
        json!({"getter": [true, "from getter", 1], "proxy": [true, "proxied", 2], "reads": 1})
    );
}

#[test]
fn proto_keys_in_arguments_stay_own_properties() {
    let world = Arc::new(MemoryWorld::new());
    put(&world, "bob", "check", true, "export function check(o) { return [Object.keys(o), ({}).polluted === undefined, Object.getPrototypeOf(o) === Object.prototype, o.__proto__] }");
    let body = r#"return @bob.check(JSON.parse('{"__proto__": {"polluted": true}, "a": 1}'))"#;
    assert_eq!(
        result(run(&world, Some("alice"), body)),
        json!([["__proto__", "a"], true, true, {"polluted": true}])
    );
}

#[test]
fn a_plain_result_is_synchronous_and_a_promise_result_is_a_promise() {
    let world = Arc::new(MemoryWorld::new());
    put(
        &world,
        "bob",
        "now",
        true,
        "export function now() { return 1 }",
    );
    put(
        &world,
        "bob",
        "later",
        true,
        "export async function later() { return 2 }",
    );
    let body = r#"
        const a = @bob.now();
        const b = @bob.later();
        const c = api(@bob.now);
        return [a, b instanceof Promise, await b, c instanceof Promise, await c];
    "#;
    assert_eq!(
        result(run(&world, Some("alice"), body)),
        json!([1, true, 2, true, 1])
    );
}

#[test]
fn an_async_callees_rejection_is_a_rejected_promise_and_a_sync_throw_stays_sync() {
    let world = Arc::new(MemoryWorld::new());
    put(
        &world,
        "jon",
        "failAsync",
        true,
        "export async function failAsync() { throw new RangeError('boom') }",
    );
    put(
        &world,
        "jon",
        "failNow",
        true,
        "export function failNow() { throw new TypeError('now') }",
    );
    put(
        &world,
        "jon",
        "slowAdd",
        true,
        "export async function slowAdd(a, b) { await new Promise((r) => setTimeout(r, 5)); return a + b }",
    );
    let body = r#"
        const caught = await @jon.failAsync().catch((e) => "caught " + e.name + ": " + e.message);
        const settled = await Promise.allSettled([@jon.failAsync(), @jon.slowAdd(1, 1)]);
        let awaited;
        try { await @jon.failAsync(); } catch (e) { awaited = e instanceof RangeError; }
        let sync;
        try { @jon.failNow(); sync = "no throw"; } catch (e) { sync = "threw " + e.name; }
        return [caught, settled.map((s) => s.status), settled[1].value, awaited, sync];
    "#;
    let outcome = run(&world, Some("alice"), body);
    let failed_traces = outcome
        .evaluation
        .calls
        .iter()
        .filter(|call| !call.ok && call.error.as_deref().is_some_and(|e| e.contains("boom")))
        .count();
    assert_eq!(
        result(outcome),
        json!([
            "caught RangeError: boom",
            ["rejected", "fulfilled"],
            2,
            true,
            "threw TypeError"
        ])
    );
    assert_eq!(failed_traces, 3, "each rejected call is a failed trace");
}

#[test]
fn web_platform_values_cross_a_library_call_as_copies() {
    let world = Arc::new(MemoryWorld::new());
    put(
        &world,
        "erin",
        "mk",
        true,
        r#"export function mk(form) {
            const headers = new Headers({ "x-one": "1" });
            headers.append("set-cookie", "a=1");
            headers.append("set-cookie", "b=2");
            return {
                response: new Response("created " + form.get("name"), { status: 201, statusText: "Made", headers }),
                request: new Request("https://example.com/api?q=1", { method: "POST", body: "payload" }),
                url: new URL("https://example.com/a?b=c#d"),
                params: new URLSearchParams("x=1&x=2"),
                file: form.get("upload"),
                echo: form,
            };
        }"#,
    );
    let body = r#"
        const form = new FormData();
        form.append("name", "ada");
        form.append("upload", new File(["hello"], "h.txt", { type: "text/plain" }));
        const got = @erin.mk(form);
        const r = got.response;
        return [
          r instanceof Response, r.status, r.statusText, r.headers.get("x-one"), r.headers.getSetCookie(), await r.text(),
          got.request instanceof Request, got.request.method, got.request.url, await got.request.text(),
          got.url instanceof URL, got.url.searchParams.get("b"), got.url.hash,
          got.params.getAll("x"),
          got.file instanceof File, got.file.name, await got.file.text(),
          got.echo instanceof FormData, got.echo.get("upload") === got.file,
        ];
    "#;
    assert_eq!(
        result(run(&world, Some("alice"), body)),
        json!([
            true,
            201,
            "Made",
            "1",
            ["a=1", "b=2"],
            "created ada",
            true,
            "POST",
            "https://example.com/api?q=1",
            "payload",
            true,
            "c",
            "#d",
            ["1", "2"],
            true,
            "h.txt",
            "hello",
            true,
            true
        ])
    );
    // A body that is a stream, or was read, cannot be copied.
    put(
        &world,
        "erin",
        "streamed",
        true,
        "export function streamed() { return new Response(new ReadableStream({ start(c) { c.close() } })) }",
    );
    let refused = result(run(
        &world,
        Some("alice"),
        "try { @erin.streamed(); return 'copied' } catch (e) { return e.name + ': ' + e.message }",
    ));
    assert!(
        refused
            .as_str()
            .unwrap()
            .starts_with("DataCloneError: a Response whose body is a stream"),
        "{refused}"
    );
}

#[test]
fn a_value_val_is_read_as_a_copy_and_pinned_versions_work() {
    let world = Arc::new(MemoryWorld::new());
    put(
        &world,
        "bob",
        "config",
        true,
        "export const config = { retries: 1 }",
    );
    put(
        &world,
        "bob",
        "config",
        true,
        "export const config = { retries: 2 }",
    );
    let body = r#"
        const latest = @bob.config;
        latest.retries = 99;
        return [@bob.config.retries, @bob.config@1.retries, @bob.config@2.retries];
    "#;
    assert_eq!(result(run(&world, Some("alice"), body)), json!([2, 1, 2]));
}

#[test]
fn errors_thrown_by_a_library_reach_the_caller_with_name_and_stack() {
    let world = Arc::new(MemoryWorld::new());
    put(
        &world,
        "bob",
        "fail",
        true,
        "export function fail() { throw new RangeError('out of range') }",
    );
    let body = "try { @bob.fail() } catch (e) { return [e instanceof RangeError, e.message, e.stack.includes('bob/fail.js')] }";
    assert_eq!(
        result(run(&world, Some("alice"), body)),
        json!([true, "out of range", true])
    );
}

#[test]
fn api_passes_json_only() {
    let world = bob_echo();
    let body = "try { await api(@bob.echo, new Map()); return 'passed' } catch (e) { return e.name + ': ' + e.message }";
    let message = result(run(&world, Some("alice"), body));
    assert!(
        message
            .as_str()
            .unwrap()
            .starts_with("TypeError: api() passes JSON only"),
        "{message}"
    );
    let body = "return await api(@bob.echo, { a: [1, 'two', null] })";
    assert_eq!(
        result(run(&world, Some("alice"), body)),
        json!({"a": [1, "two", null]})
    );
}

#[test]
fn restriction_is_sticky_through_a_call_back_into_the_callers_own_code() {
    let world = Arc::new(MemoryWorld::new());
    world.put_secret("alice", "foo", "alice-secret");
    put(
        &world,
        "alice",
        "readMine",
        true,
        "export function readMine() { return @me.secrets.foo ?? 'undefined' }",
    );
    put(
        &world,
        "bob",
        "launder",
        true,
        "export function launder() { return @alice.readMine() }",
    );
    assert_eq!(
        result(run(&world, Some("alice"), "return @alice.readMine()")),
        json!("alice-secret")
    );
    assert_eq!(
        result(run(&world, Some("alice"), "return @bob.launder()")),
        json!("undefined")
    );
}

#[test]
fn forged_owners_in_raw_capability_calls_change_nothing() {
    let world = Arc::new(MemoryWorld::new());
    world.put_secret("alice", "foo", "alice-secret");
    put(
        &world,
        "bob",
        "forge",
        true,
        r#"export function forge() {
        return [__vt.secret("alice", "foo") ?? 'undefined', __vt.secret("me", "foo") ?? 'undefined'];
    }"#,
    );
    assert_eq!(
        result(run(&world, Some("alice"), "return @bob.forge()")),
        json!(["undefined", "undefined"])
    );
}

#[test]
fn bad_fields_in_raw_val_calls_are_clear_errors() {
    let world = Arc::new(MemoryWorld::new());
    put(
        &world,
        "bob",
        "add",
        true,
        "export function add(a, b) { return a + b }",
    );
    let body = r#"
        const attempt = (f) => { try { return f() } catch (e) { return e.name + ': ' + e.message } };
        return [
            attempt(() => __vt.call("bob", "add", -1, 1, 2)),
            attempt(() => __vt.call("bob", "add", "x", 1, 2)),
            attempt(() => __vt.call("bob", "add", 2 ** 40, 1, 2)),
            attempt(() => __vt.call({}, "add", null, 1, 2)),
            attempt(() => __vt.call("Bob Smith", "add", null, 1, 2)),
            attempt(() => __vt.call("bob", "constructor.prototype", null)),
            attempt(() => __vt.call("bob", "add", 1, 1, 2)),
        ];
    "#;
    let got = result(run(&world, Some("alice"), body));
    let got = got.as_array().unwrap();
    for refused in &got[..4] {
        assert!(
            refused.as_str().unwrap().starts_with("TypeError: "),
            "{refused}"
        );
    }
    assert_eq!(
        got[4],
        json!("TypeError: `@Bob Smith` is not a valid user handle")
    );
    assert_eq!(
        got[5],
        json!("TypeError: `constructor.prototype` is not a valid name")
    );
    assert_eq!(got[6], json!(3), "a well-formed raw call still works");
}

#[test]
fn own_code_reads_its_own_private_state_and_not_anyone_elses() {
    let world = Arc::new(MemoryWorld::new());
    world.put_secret("alice", "foo", "alice-secret");
    world.put_secret("bob", "foo", "bob-secret");
    put(
        &world,
        "alice",
        "notes",
        false,
        "export default 'alice notes'",
    );
    put(&world, "bob", "notes", false, "export default 'bob notes'");
    assert_eq!(
        result(run(
            &world,
            Some("alice"),
            "return [@me.secrets.foo, @alice.notes, @me.notes]"
        )),
        json!(["alice-secret", "alice notes", "alice notes"])
    );
    for body in ["return @bob.secrets.foo", "return @bob.notes", "@bob.x = 1"] {
        assert!(
            thrown_message(run(&world, Some("alice"), body)).starts_with("PermissionError"),
            "{body}"
        );
    }
}

#[test]
fn anonymous_code_reads_public_vals_only() {
    let world = Arc::new(MemoryWorld::new());
    put(&world, "bob", "greeting", true, "export default 'hi'");
    put(&world, "bob", "notes", false, "export default 'private'");
    assert_eq!(
        result(run(&world, None, "return @bob.greeting")),
        json!("hi")
    );
    for body in [
        "return @bob.notes",
        "@bob.greeting = 'x'",
        "return @me.secrets.foo",
        "console.email('hi', 'there')",
    ] {
        assert!(
            thrown_message(run(&world, None, body)).starts_with("PermissionError"),
            "{body}"
        );
    }
    assert!(world.emails().is_empty());
}

#[test]
fn traces_of_library_calls_belong_to_the_caller_and_of_api_calls_to_the_author() {
    let world = Arc::new(MemoryWorld::new());
    put(
        &world,
        "bob",
        "lib",
        true,
        "export function lib() { console.log('lib ran'); return 1 }",
    );
    put(
        &world,
        "bob",
        "svc",
        true,
        "export function svc() { console.log('svc ran'); return 2 }",
    );
    let outcome = run(
        &world,
        Some("alice"),
        "@bob.lib(); await api(@bob.svc); return 'ok'",
    );
    let records = outcome.evaluation.split_by_viewer();
    assert_eq!(records.len(), 2);
    let alices = &records[0];
    assert_eq!(alices.visible_to.as_deref(), Some("alice"));
    assert_eq!(alices.calls.len(), 2);
    let library = &alices.calls[0];
    assert_eq!((library.mode, library.redacted), (Mode::Restricted, false));
    assert_eq!(library.logs[0].message, "lib ran");
    let stub = &alices.calls[1];
    assert!(
        stub.redacted && stub.logs.is_empty(),
        "alice sees only a stub of the API call"
    );
    let bobs = &records[1];
    assert_eq!(bobs.visible_to.as_deref(), Some("bob"));
    assert_eq!((bobs.mode, bobs.target.as_str()), (Mode::Api, "@bob.svc@1"));
    assert_eq!(bobs.logs[0].message, "svc ran");
}

#[test]
fn globals_left_by_an_earlier_call_are_gone() {
    let world = Arc::new(MemoryWorld::new());
    put(&world, "bob", "plant", true, "export function plant() { globalThis.planted = 'bob was here'; Object.prototype.polluted = true; return 1 }");
    put(
        &world,
        "bob",
        "look",
        true,
        "export function look() { return [typeof planted, ({}).polluted ?? null] }",
    );
    let body = "@bob.plant(); return [@bob.look(), typeof planted, ({}).polluted ?? null]";
    assert_eq!(
        result(run(&world, Some("alice"), body)),
        json!([["undefined", null], "undefined", null])
    );
}

#[test]
fn recursion_past_the_depth_limit_is_a_range_error() {
    let world = Arc::new(MemoryWorld::new());
    put(
        &world,
        "bob",
        "deep",
        true,
        "export function deep(n) { return n === 0 ? 0 : 1 + @bob.deep(n - 1) }",
    );
    assert_eq!(
        result(run(&world, Some("alice"), "return @bob.deep(10)")),
        json!(10)
    );
    let message = thrown_message(run(&world, Some("alice"), "return @bob.deep(100)"));
    assert!(
        message.starts_with("RangeError: call depth limit of 16"),
        "{message}"
    );
}

#[test]
fn a_library_looping_forever_in_a_nested_call_ends_the_whole_tree_at_the_deadline() {
    let short = Sandbox::new(SandboxConfig {
        cache_dir: Some(env!("CARGO_TARGET_TMPDIR").into()),
        deadline: Duration::from_millis(400),
        ..SandboxConfig::default()
    })
    .unwrap();
    let world = Arc::new(MemoryWorld::new());
    let compile_into = |owner: &str, name: &str, source: &str| {
        world.put_val(owner, name, true, short.compile("v.js", source).unwrap());
    };
    compile_into("bob", "spin", "export function spin() { for (;;) {} }");
    compile_into(
        "bob",
        "outer",
        "export function outer() { try { @bob.spin() } catch (e) { return 'caught' } }",
    );
    let started = Instant::now();
    let outcome = run_with(
        &short,
        &world,
        Some("alice"),
        "try { return @bob.outer() } catch (e) { return 'caught' }",
    );
    assert!(
        matches!(outcome.result, Err(SandboxError::Timeout(_))),
        "{:?}",
        outcome.result
    );
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[test]
fn oversized_arguments_and_emails_are_refused_with_the_limit_named() {
    let world = Arc::new(MemoryWorld::new());
    put(
        &world,
        "bob",
        "take",
        true,
        "export function take(s) { return s.length }",
    );
    let body = "try { @bob.take('x'.repeat(5 * 1024 * 1024)); return 'passed' } catch (e) { return e.name + ': ' + e.message }";
    let message = result(run(&world, Some("alice"), body));
    assert!(
        message
            .as_str()
            .unwrap()
            .starts_with("RangeError: the arguments to @bob.take are"),
        "{message}"
    );
    let body = "try { console.email('big', 'x'.repeat(300 * 1024)); return 'sent' } catch (e) { return e.name + ': ' + e.message }";
    let message = result(run(&world, Some("alice"), body));
    assert!(
        message
            .as_str()
            .unwrap()
            .starts_with("RangeError: console.email is limited to"),
        "{message}"
    );
    assert!(world.emails().is_empty());
}

#[test]
fn an_oversized_result_is_a_limit_error() {
    let world = Arc::new(MemoryWorld::new());
    let outcome = run(&world, Some("alice"), "return 'x'.repeat(5 * 1024 * 1024)");
    match outcome.result {
        Err(SandboxError::Limit(message)) => assert!(message.contains("result"), "{message}"),
        other => panic!("expected a limit error, got {other:?}"),
    }
}

#[test]
fn numbers_cross_a_library_call_bit_for_bit() {
    let world = bob_echo();
    // Found by the codec fuzz target: a float that a lossy JSON parser on the
    // host rounded by one unit in the last place.
    let body = "const xs = [-6.666666666666667e+65, 0.1 + 0.2, 5e-324, 1.7976931348623157e308, 123456789.12345678];
                return xs.every((x) => Object.is(@bob.echo(x), x)) && Object.is(api(@bob.echo, 0.1 + 0.2) instanceof Promise, true)";
    assert_eq!(result(run(&world, Some("alice"), body)), json!(true));
}

#[test]
fn a_pinned_version_is_the_one_called() {
    let world = Arc::new(MemoryWorld::new());
    put(
        &world,
        "bob",
        "op",
        true,
        "export function op(a, b) { return a + b }",
    );
    put(
        &world,
        "bob",
        "op",
        true,
        "export function op(a, b) { return a * b }",
    );
    let body = "return [@bob.op@1(3, 4), @bob.op(3, 4), @bob.op@2 (3, 4), typeof @bob.op@1]";
    assert_eq!(
        result(run(&world, Some("alice"), body)),
        json!([7, 12, 12, "function"])
    );
}

#[test]
fn text_that_looks_like_the_codec_stays_text() {
    // Plain arguments and results skip the codec; text holding `"$"` must
    // still come back as the same text, not as what a tag would decode to.
    let world = bob_echo();
    let body = r#"
        const texts = ['{"$":"u"}', '"$"', '$', '{"$":"r","id":0}', '\u0022$\u0022'];
        const back = texts.map((t) => @bob.echo(t));
        const inArray = @bob.echo(texts);
        return back.every((t, i) => t === texts[i]) && inArray.every((t, i) => t === texts[i]);
    "#;
    assert_eq!(result(run(&world, Some("alice"), body)), json!(true));
}

#[test]
fn awkward_keys_holes_and_shared_plain_data_cross_unchanged() {
    let world = bob_echo();
    let body = r#"
        const inner = [1, 2];
        const sent = {
            $: 'looks like a tag', tagged: { $: 'u' }, list: [inner, inner, { deep: inner }],
            holes: [1, , 3], negativeZero: [-0], nested: { a: { b: { c: [null, true, 'x'] } } },
        };
        const got = @bob.echo(sent);
        return {
            dollar: got.$, tagged: got.tagged, hole: 1 in got.holes && got.holes[1] === undefined,
            negativeZero: Object.is(got.negativeZero[0], -0),
            shared: got.list[0] === got.list[1] && got.list[2].deep === got.list[0],
            copied: got.list[0] !== inner, nested: got.nested,
        };
    "#;
    assert_eq!(
        result(run(&world, Some("alice"), body)),
        json!({
            "dollar": "looks like a tag", "tagged": {"$": "u"}, "hole": true, "negativeZero": true,
            "shared": true, "copied": true, "nested": {"a": {"b": {"c": [null, true, "x"]}}},
        })
    );
}

#[test]
fn values_stored_with_awkward_keys_read_back_as_own_properties() {
    let world = Arc::new(MemoryWorld::new());
    let body = r#"
        @me.saved = JSON.parse('{"__proto__": {"polluted": true}, "$": 1, "plain": {"x": [1]}}');
        return 'saved';
    "#;
    assert_eq!(result(run(&world, Some("alice"), body)), json!("saved"));
    let body = r#"
        const v = @me.saved;
        return [Object.keys(v), Object.getPrototypeOf(v) === Object.prototype, v.$, v.plain, ({}).polluted === undefined];
    "#;
    assert_eq!(
        result(run(&world, Some("alice"), body)),
        json!([["__proto__", "$", "plain"], true, 1, {"x": [1]}, true])
    );
}

#[test]
fn values_in_the_earlier_wire_format_still_decode() {
    // Session 1's encoding wrapped every array and object with an id; values
    // saved with `@me.x = v` then are stored in that form.
    let world = Arc::new(MemoryWorld::new());
    let body = r#"
        const v = __vt.decode({ $: "a", id: 0, v: [
            { $: "o", id: 1, v: [["k", { $: "u" }]] }, { $: "r", id: 1 }, { $: "d", id: 2, v: 0 } ] });
        return [v[0] === v[1], 'k' in v[0] && v[0].k === undefined, v[2] instanceof Date];
    "#;
    assert_eq!(
        result(run(&world, Some("alice"), body)),
        json!([true, true, true])
    );
}

#[test]
fn object_key_order_survives_library_and_api_calls() {
    // Found by the codec fuzz target: the host re-serialized arguments with
    // sorted keys, so `{z, a}` arrived as `{a, z}`.
    let world = Arc::new(MemoryWorld::new());
    put(
        &world,
        "bob",
        "keys",
        true,
        "export function keys(o) { return Object.keys(o).join() }",
    );
    let body = r#"
        const o = { z: 1, "+": 2, a: { y: 1, b: 2 }, id: 3 };
        return [@bob.keys(o), await api(@bob.keys, o), @bob.keys(o.a)];
    "#;
    assert_eq!(
        result(run(&world, Some("alice"), body)),
        json!(["z,+,a,id", "z,+,a,id", "y,b"])
    );
}

#[test]
fn the_sandbox_counts_instances_and_refusals() {
    let sandbox = Sandbox::new(common::config()).unwrap();
    let world = Arc::new(MemoryWorld::new());
    world.put_secret("alice", "key", "alice-secret");
    let bytecode = sandbox
        .compile(
            "bob/peek.js",
            "export function peek() { return [__vt.secret('me', 'key') ?? 'undefined'] }",
        )
        .unwrap();
    world.put_val("bob", "peek", true, bytecode);
    let before = sandbox.stats();
    let outcome = run_with(&sandbox, &world, Some("alice"), "return @bob.peek()");
    assert_eq!(result(outcome), json!(["undefined"]));
    let after = sandbox.stats();
    assert_eq!(
        after.instances,
        before.instances + 3,
        "compiling the driver, alice's call and bob's"
    );
    assert_eq!(after.instances_in_use, 0);
    assert!(after.instantiate_seconds > before.instantiate_seconds);
    let refused = |stats: &valbox_runtime::SandboxStats, label: &str| {
        stats.refusals.iter().find(|(l, _)| *l == label).unwrap().1
    };
    assert_eq!(
        refused(&after, "read_secret"),
        refused(&before, "read_secret") + 1
    );
    assert_eq!(refused(&after, "read_val"), refused(&before, "read_val"));
}

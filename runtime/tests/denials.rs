//! Explainable denials (SPEC §7, upgrade tooling): every refusal of the
//! policy lands in the evaluation record of the call whose code asked, with
//! the seed-table row and a hint — one test per row of the table, and the
//! rule that a record never tells a secret's or a private val's existence.

mod common;

use common::{config, put, run, run_with};
use serde_json::{json, Value};
use std::sync::Arc;
use valbox_runtime::{MemoryWorld, Outcome, Sandbox, SandboxConfig};

/// alice (principal) and bob (author), each with a private val, a public
/// val and a secret.
fn world() -> Arc<MemoryWorld> {
    let world = Arc::new(MemoryWorld::new());
    for user in ["alice", "bob"] {
        put(&world, user, "privateFoo", false, "export default 1");
        put(&world, user, "publicFoo", true, "export default 2");
        world.put_secret(user, "foo", "s3cret");
    }
    world
}

/// The JSON of the record of the first nested call (bob's function).
fn nested(outcome: &Outcome) -> Value {
    let record = serde_json::to_value(&outcome.evaluation).unwrap();
    record["calls"][0].clone()
}

/// Saves `body` as bob's public `f`, runs it from alice's code as a library
/// call (or through `api()`), and returns the denials of bob's record.
fn denials_of(world: &Arc<MemoryWorld>, body: &str, api: bool) -> Vec<Value> {
    put(
        world,
        "bob",
        "f",
        true,
        &format!("export function f() {{ {body} }}"),
    );
    let call = if api {
        "try { return await api(@bob.f) } catch (e) { return String(e) }"
    } else {
        "return @bob.f()"
    };
    let outcome = run(world, Some("alice"), call);
    nested(&outcome)["denials"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn only_rule(denials: &[Value]) -> (&str, &str) {
    assert_eq!(denials.len(), 1, "one denial: {denials:?}");
    (
        denials[0]["rule"].as_str().unwrap(),
        denials[0]["decision"].as_str().unwrap(),
    )
}

macro_rules! row {
    ($name:ident, $body:expr, api = $api:expr, $rule:expr, $decision:expr) => {
        #[test]
        fn $name() {
            let denials = denials_of(&world(), $body, $api);
            assert_eq!(only_rule(&denials), ($rule, $decision), "{denials:?}");
            assert!(!denials[0]["hint"].as_str().unwrap().is_empty());
            assert!(!denials[0]["rule_text"].as_str().unwrap().is_empty());
        }
    };
}

// The Restricted Library Mode column.
row!(
    restricted_me_secret,
    "return @me.secrets.foo",
    api = false,
    "restricted_secret",
    "undefined"
);
row!(
    restricted_caller_secret,
    "return @alice.secrets.foo",
    api = false,
    "restricted_secret",
    "undefined"
);
row!(
    restricted_author_secret,
    "return @bob.secrets.foo",
    api = false,
    "restricted_secret",
    "undefined"
);
row!(
    restricted_me_private,
    "return @me.privateFoo",
    api = false,
    "restricted_private_val",
    "undefined"
);
row!(
    restricted_caller_private,
    "return @alice.privateFoo",
    api = false,
    "restricted_private_val",
    "undefined"
);
row!(
    restricted_author_private,
    "return @bob.privateFoo",
    api = false,
    "restricted_private_val",
    "undefined"
);
row!(
    restricted_me_write,
    "@me.foo = 1",
    api = false,
    "restricted_write",
    "no_op"
);
row!(
    restricted_author_write,
    "@bob.foo = 1",
    api = false,
    "restricted_write",
    "no_op"
);
row!(
    restricted_email,
    "console.email('hi', 'there')",
    api = false,
    "restricted_email",
    "sent_to_caller"
);
// The API column's refusals.
row!(
    api_caller_secret,
    "return @alice.secrets.foo",
    api = true,
    "foreign_secret",
    "permission_error"
);
row!(
    api_caller_private,
    "return @alice.privateFoo",
    api = true,
    "foreign_private_val",
    "permission_error"
);
row!(
    api_caller_write,
    "@alice.foo = 1",
    api = true,
    "foreign_write",
    "permission_error"
);

#[test]
fn what_the_table_allows_records_nothing() {
    let world = world();
    let cases = [
        (
            "return [@me.publicFoo, @alice.publicFoo, @bob.publicFoo]",
            false,
        ),
        ("@alice.written = 1", false),
        ("return [@me.secrets.foo, @me.privateFoo]", true),
        ("@me.foo = 1; console.email('a', 'b')", true),
    ];
    for (body, api) in cases {
        let denials = denials_of(&world, body, api);
        assert_eq!(denials, Vec::<Value>::new(), "{body} (api: {api})");
    }
}

#[test]
fn a_write_to_the_caller_is_a_denial_when_the_server_denies_library_writes() {
    let mut settings = config();
    settings.policy.deny_library_writes = true;
    let sandbox = Sandbox::new(settings).unwrap();
    let world = world();
    put(
        &world,
        "bob",
        "f",
        true,
        "export function f() { @alice.foo = 1 }",
    );
    let outcome = run_with(&sandbox, &world, Some("alice"), "return @bob.f()");
    let denials = nested(&outcome)["denials"].as_array().cloned().unwrap();
    assert_eq!(
        only_rule(&denials),
        ("restricted_caller_write_denied", "no_op")
    );
}

#[test]
fn a_denial_says_what_was_written_and_what_to_do() {
    let world = world();
    put(
        &world,
        "bob",
        "gpt3",
        true,
        "export function gpt3(q) { for (let i = 0; i < 3; i++) @me.openAiFreeUsageConfig; \
         const key = @me.openAiFreeUsageConfig?.key; if (!key) throw new Error('no key: pass your own'); return key }",
    );
    put(
        &world,
        "bob",
        "openAiFreeUsageConfig",
        false,
        "export default { key: 'sk-bob' }",
    );
    let outcome = run(&world, Some("alice"), "return @bob.gpt3('hi')");
    let record = nested(&outcome);
    assert_eq!(record["ok"], json!(false));
    let denial = &record["denials"][0];
    assert_eq!(record["denials"].as_array().unwrap().len(), 1);
    assert_eq!(denial["reference"], json!("@me.openAiFreeUsageConfig"));
    assert_eq!(denial["capability"], json!("read"));
    assert_eq!(denial["mode"], json!("restricted"));
    assert_eq!(denial["count"], json!(4));
    let hint = denial["hint"].as_str().unwrap();
    assert!(hint.contains("api(@bob.gpt3, …)"), "{hint}");
    let text = serde_json::to_string(&record).unwrap();
    assert!(
        !text.contains("sk-bob"),
        "no value is ever recorded: {text}"
    );
    // The caller's own record (alice's code) has no denials of its own.
    assert!(serde_json::to_value(&outcome.evaluation)
        .unwrap()
        .get("denials")
        .is_none());
}

#[test]
fn a_denial_deep_in_the_authors_own_vals_still_points_at_the_entry_call() {
    let world = world();
    put(
        &world,
        "bob",
        "helper",
        true,
        "export function helper() { return @me.secrets.foo }",
    );
    put(
        &world,
        "bob",
        "f",
        true,
        "export function f() { return @me.helper() }",
    );
    put(
        &world,
        "carol",
        "g",
        true,
        "export function g() { return @me.secrets.foo }",
    );
    put(
        &world,
        "bob",
        "viaCarol",
        true,
        "export function viaCarol() { return @carol.g() }",
    );
    let outcome = run(&world, Some("alice"), "return [@bob.f(), @bob.viaCarol()]");
    let record = serde_json::to_value(&outcome.evaluation).unwrap();
    let own = &record["calls"][0]["calls"][0]["denials"][0]["hint"];
    assert!(own.as_str().unwrap().contains("api(@bob.f, …)"), "{own}");
    let foreign = record["calls"][1]["calls"][0]["denials"][0]["hint"]
        .as_str()
        .unwrap();
    assert!(
        foreign.contains("@carol's code reached through @bob.viaCarol"),
        "{foreign}"
    );
}

/// "Does `@bob.secrets.x` exist?" stays unanswerable: the records of a
/// stranger's calls are the same, byte for byte but for durations, whether
/// or not the secret or the private val exists.
#[test]
fn a_denial_never_tells_whether_a_secret_or_private_val_exists() {
    fn records(secret_exists: bool, val_exists: bool, api: bool) -> String {
        let world = Arc::new(MemoryWorld::new());
        if secret_exists {
            world.put_secret("bob", "x", "value");
        }
        if val_exists {
            put(&world, "bob", "hidden", false, "export default 42");
        }
        put(
            &world,
            "bob",
            "probe",
            true,
            "export function probe() { return [@me.secrets.x, @me.hidden] }",
        );
        let code = if api {
            // The stranger's own code naming bob's state directly.
            "const r = []; try { r.push(@bob.secrets.x) } catch (e) { r.push(String(e)) } \
             try { r.push(@bob.hidden) } catch (e) { r.push(String(e)) } return r"
        } else {
            "return @bob.probe()"
        };
        let outcome = run(&world, Some("eve"), code);
        let mut record = serde_json::to_value(&outcome.evaluation).unwrap();
        strip_durations(&mut record);
        format!("{} {record}", outcome.result.unwrap())
    }
    for api in [false, true] {
        let nothing = records(false, false, api);
        assert_eq!(nothing, records(true, true, api), "api = {api}");
        assert_eq!(nothing, records(true, false, api), "api = {api}");
        assert!(nothing.contains("\"denials\""), "{nothing}");
    }
}

fn strip_durations(record: &mut Value) {
    if let Some(object) = record.as_object_mut() {
        object.remove("duration_us");
        object.remove("target"); // the probe's version is the same anyway
        for call in object
            .get_mut("calls")
            .and_then(Value::as_array_mut)
            .into_iter()
            .flatten()
        {
            strip_durations(call);
        }
    }
}

#[test]
fn a_server_may_turn_the_records_off() {
    let sandbox = Sandbox::new(SandboxConfig {
        explain_denials: false,
        ..config()
    })
    .unwrap();
    let world = world();
    put(
        &world,
        "bob",
        "f",
        true,
        "export function f() { return @me.secrets.foo }",
    );
    let before = sandbox.stats().denials;
    let outcome = run_with(&sandbox, &world, Some("alice"), "return @bob.f()");
    assert!(nested(&outcome).get("denials").is_none());
    let after = sandbox.stats().denials;
    let counted = |stats: &[(&str, u64)]| {
        stats
            .iter()
            .find(|(rule, _)| *rule == "restricted_secret")
            .unwrap()
            .1
    };
    assert_eq!(counted(&after), counted(&before) + 1, "still counted");
}

//! SPEC §2's conformance table, end to end: alice's own code calls bob's
//! function as a library (`@bob.f()`, Restricted Library Mode) and as an API
//! (`api(@bob.f)`), each call in a fresh instance. One test per cell.

mod common;

use common::{put, run, sandbox};
use serde_json::{json, Value};
use std::sync::Arc;
use valbox_runtime::{MemoryWorld, World};

/// Shows what a probe got: `undefined` as a string, values as themselves.
const SHOW: &str = "const show = (v) => (v === undefined ? 'undefined' : v);";

/// alice and bob, each with a secret `foo`, a private val and a public val,
/// and bob's public probe functions, one per row of the table.
fn world() -> Arc<MemoryWorld> {
    let world = Arc::new(MemoryWorld::new());
    for user in ["alice", "bob"] {
        world.put_secret(user, "foo", &format!("{user}-secret"));
        put(
            &world,
            user,
            "privateFoo",
            false,
            &format!("export default '{user}-private'"),
        );
        put(
            &world,
            user,
            "publicFoo",
            true,
            &format!("export default '{user}-public'"),
        );
    }
    let probes = [
        ("meSecret", "return show(@me.secrets.foo)"),
        ("aliceSecret", "return show(@alice.secrets.foo)"),
        ("bobSecret", "return show(@bob.secrets.foo)"),
        ("mePrivate", "return show(@me.privateFoo)"),
        ("alicePrivate", "return show(@alice.privateFoo)"),
        ("bobPrivate", "return show(@bob.privateFoo)"),
        ("mePublic", "return show(@me.publicFoo)"),
        ("alicePublic", "return show(@alice.publicFoo)"),
        ("bobPublic", "return show(@bob.publicFoo)"),
        ("meWrite", "@me.foo = 'written'; return 'done'"),
        ("aliceWrite", "@alice.foo = 'written'; return 'done'"),
        ("bobWrite", "@bob.foo = 'written'; return 'done'"),
        ("email", "console.email('hello', 'from bob'); return 'sent'"),
    ];
    for (name, body) in probes {
        put(
            &world,
            "bob",
            name,
            true,
            &format!("{SHOW}\nexport function {name}() {{ {body} }}"),
        );
    }
    world
}

/// Runs alice's code and returns its JSON result (or panics with the error).
fn as_alice(world: &Arc<MemoryWorld>, body: &str) -> Value {
    let outcome = run(world, Some("alice"), body);
    serde_json::from_str(&outcome.result.expect("alice's code runs")).unwrap()
}

fn library(probe: &str) -> (Arc<MemoryWorld>, Value) {
    let world = world();
    let body = format!("try {{ return @bob.{probe}() }} catch (e) {{ return 'error:' + e.name }}");
    let result = as_alice(&world, &body);
    (world, result)
}

fn api(probe: &str) -> (Arc<MemoryWorld>, Value) {
    let world = world();
    let body = format!(
        "try {{ return await api(@bob.{probe}) }} catch (e) {{ return 'error:' + e.name }}"
    );
    let result = as_alice(&world, &body);
    (world, result)
}

fn foo_of(world: &MemoryWorld, user: &str) -> Option<Value> {
    let bytecode = world.val(user, "foo", None)?.bytecode;
    let output = sandbox().call(&bytecode, "foo", "[]");
    Some(serde_json::from_str(&output.result.unwrap()).unwrap())
}

// @me.secrets.foo
#[test]
fn api_me_secret_is_bobs() {
    assert_eq!(api("meSecret").1, json!("bob-secret"));
}
#[test]
fn restricted_me_secret_is_undefined() {
    assert_eq!(library("meSecret").1, json!("undefined"));
}
// @A.secrets.foo
#[test]
fn api_alice_secret_throws_a_permission_error() {
    assert_eq!(api("aliceSecret").1, json!("error:PermissionError"));
}
#[test]
fn restricted_alice_secret_is_undefined() {
    assert_eq!(library("aliceSecret").1, json!("undefined"));
}
// @B.secrets.foo
#[test]
fn api_bob_secret_is_bobs() {
    assert_eq!(api("bobSecret").1, json!("bob-secret"));
}
#[test]
fn restricted_bob_secret_is_undefined() {
    assert_eq!(library("bobSecret").1, json!("undefined"));
}
// @me.privateFoo
#[test]
fn api_me_private_is_bobs() {
    assert_eq!(api("mePrivate").1, json!("bob-private"));
}
#[test]
fn restricted_me_private_is_undefined() {
    assert_eq!(library("mePrivate").1, json!("undefined"));
}
// @A.privateFoo
#[test]
fn api_alice_private_throws_a_permission_error() {
    assert_eq!(api("alicePrivate").1, json!("error:PermissionError"));
}
#[test]
fn restricted_alice_private_is_undefined() {
    assert_eq!(library("alicePrivate").1, json!("undefined"));
}
// @B.privateFoo
#[test]
fn api_bob_private_is_bobs() {
    assert_eq!(api("bobPrivate").1, json!("bob-private"));
}
#[test]
fn restricted_bob_private_is_undefined() {
    assert_eq!(library("bobPrivate").1, json!("undefined"));
}
// @me.publicFoo
#[test]
fn api_me_public_is_bobs() {
    assert_eq!(api("mePublic").1, json!("bob-public"));
}
#[test]
fn restricted_me_public_is_bobs() {
    assert_eq!(library("mePublic").1, json!("bob-public"));
}
// @A.publicFoo / @B.publicFoo
#[test]
fn api_alice_public_is_alices() {
    assert_eq!(api("alicePublic").1, json!("alice-public"));
}
#[test]
fn restricted_alice_public_is_alices() {
    assert_eq!(library("alicePublic").1, json!("alice-public"));
}
#[test]
fn api_bob_public_is_bobs() {
    assert_eq!(api("bobPublic").1, json!("bob-public"));
}
#[test]
fn restricted_bob_public_is_bobs() {
    assert_eq!(library("bobPublic").1, json!("bob-public"));
}
// @me.foo = x
#[test]
fn api_me_write_sets_bobs_val() {
    let (world, result) = api("meWrite");
    assert_eq!(result, json!("done"));
    assert_eq!(foo_of(&world, "bob"), Some(json!("written")));
    assert_eq!(foo_of(&world, "alice"), None);
}
#[test]
fn restricted_me_write_is_a_noop() {
    let (world, result) = library("meWrite");
    assert_eq!(result, json!("done"));
    assert_eq!(
        (foo_of(&world, "bob"), foo_of(&world, "alice")),
        (None, None)
    );
}
// @A.foo = x
#[test]
fn api_alice_write_throws_a_permission_error() {
    let (world, result) = api("aliceWrite");
    assert_eq!(result, json!("error:PermissionError"));
    assert_eq!(foo_of(&world, "alice"), None);
}
#[test]
fn restricted_alice_write_sets_alices_val() {
    let (world, result) = library("aliceWrite");
    assert_eq!(result, json!("done"));
    assert_eq!(foo_of(&world, "alice"), Some(json!("written")));
    assert!(
        !world.val("alice", "foo", None).unwrap().public,
        "a new val is private"
    );
}
// @B.foo = x
#[test]
fn api_bob_write_sets_bobs_val() {
    let (world, result) = api("bobWrite");
    assert_eq!(result, json!("done"));
    assert_eq!(foo_of(&world, "bob"), Some(json!("written")));
}
#[test]
fn restricted_bob_write_is_a_noop() {
    let (world, result) = library("bobWrite");
    assert_eq!(result, json!("done"));
    assert_eq!(foo_of(&world, "bob"), None);
}
// console.email
#[test]
fn api_email_goes_to_bob() {
    let (world, result) = api("email");
    assert_eq!(result, json!("sent"));
    let emails = world.emails();
    assert_eq!(emails.len(), 1);
    assert_eq!(
        (emails[0].to.as_str(), emails[0].subject.as_str()),
        ("bob", "hello")
    );
}
#[test]
fn restricted_email_goes_to_alice() {
    let (world, result) = library("email");
    assert_eq!(result, json!("sent"));
    let emails = world.emails();
    assert_eq!(emails.len(), 1);
    assert_eq!(emails[0].to, "alice");
    assert_eq!(emails[0].from_author.as_deref(), Some("bob"));
}

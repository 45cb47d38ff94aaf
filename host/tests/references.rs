//! References between vals over HTTP: a version's outgoing references,
//! the vals that reference a val (private referrers only counted), what a
//! stranger may not learn, and the one-time index of versions saved before
//! references were recorded. Versions past `--max-versions-per-val`
//! pruned, except the ones a reference pins. Forks with their upstream,
//! and pinning others' vals to their current versions.

mod common;

use common::{fresh_dir, save_val, serve_with, Http};
use serde_json::{json, Value};

fn get(http: &Http, key: Option<&str>, path: &str) -> (u16, Value) {
    http.call("GET", path, key, None)
}

#[test]
fn references_and_referrers_show_only_what_the_viewer_may_know() {
    let dir = fresh_dir("references");
    let (server, http) = serve_with(&dir, &[]);
    let alice = http.user("alice");
    let bob = http.user("bob");
    let carol = http.user("carol");
    save_val(&http, &bob, "f", "public", "export const f = (x) => x");
    save_val(
        &http,
        &alice,
        "helper",
        "private",
        "export const helper = 1",
    );
    save_val(&http, &alice, "lib", "public", "export const lib = () => 1");
    save_val(
        &http,
        &alice,
        "lib",
        "public",
        "export const lib = async () =>\n  @me.helper + @me.secrets.k + @bob.f@1(1) + await api(@bob.f, 2);\n@me.counter = 1;",
    );
    let (status, listed) = get(&http, None, "/v1/vals/alice.lib/references");
    assert_eq!(status, 200, "{listed}");
    assert_eq!(listed["version"], 2);
    assert_eq!(
        listed["references"],
        json!([
            {"kind": "read", "owner": "alice", "name": "helper", "line": 2, "column": 3},
            {"kind": "secret_read", "owner": "alice", "name": "k", "line": 2, "column": 16},
            {"kind": "library_call", "owner": "bob", "name": "f", "version": 1, "line": 2, "column": 32},
            {"kind": "api_call", "owner": "bob", "name": "f", "line": 2, "column": 56},
            {"kind": "write", "owner": "alice", "name": "counter", "line": 3, "column": 1},
        ])
    );
    let (status, first) = get(&http, None, "/v1/vals/alice.lib/references?version=1");
    assert_eq!(status, 200);
    assert_eq!(
        first["references"],
        json!([]),
        "version 1 referenced nothing"
    );

    // Referrers: bob's public and private vals, carol's public one.
    save_val(
        &http,
        &bob,
        "usesLib",
        "public",
        "export default () => @alice.lib()",
    );
    save_val(
        &http,
        &bob,
        "secretUse",
        "private",
        "export default () => @alice.lib()",
    );
    save_val(
        &http,
        &carol,
        "mine",
        "private",
        "export default () => @alice.lib@2()",
    );
    let (status, seen) = get(&http, Some(&carol), "/v1/vals/alice.lib/referenced-by");
    assert_eq!(status, 200, "{seen}");
    let names: Vec<&str> = seen["referrers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["val"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["bob.usesLib", "carol.mine"], "{seen}");
    assert_eq!(
        seen["private_referrers"], 1,
        "bob's private val is counted, not named"
    );
    assert_eq!(seen["referrers"][1]["pinned"], 2);
    let (_, by_bob) = get(&http, Some(&bob), "/v1/vals/alice.lib/referenced-by");
    assert_eq!(by_bob["referrers"].as_array().unwrap().len(), 2);
    assert_eq!(by_bob["private_referrers"], 1, "carol's private val");
    assert!(!by_bob.to_string().contains("carol"), "{by_bob}");

    // A private val: nothing about it for a stranger, not even that it exists.
    for path in [
        "/v1/vals/alice.helper/references",
        "/v1/vals/alice.helper/referenced-by",
    ] {
        let (status, body) = get(&http, Some(&carol), path);
        assert_eq!(status, 404, "{path}: {body}");
        let (missing, _) = get(&http, Some(&carol), &path.replace("helper", "nothing"));
        assert_eq!(
            missing, 404,
            "the same answer as for a val that does not exist"
        );
    }
    let (status, own) = get(&http, Some(&alice), "/v1/vals/alice.helper/referenced-by");
    assert_eq!(status, 200);
    assert_eq!(own["referrers"][0]["val"], "alice.lib");
    // A secret named like a val is not a reference to the val.
    save_val(&http, &alice, "k", "public", "export const k = 0");
    let (_, k) = get(&http, Some(&alice), "/v1/vals/alice.k/referenced-by");
    assert_eq!(k["referrers"], json!([]), "{k}");

    // Versions saved before references were recorded are indexed at start.
    drop(server);
    let db = rusqlite::Connection::open(dir.join("valbox.db")).unwrap();
    db.execute_batch(
        "DELETE FROM val_references; DELETE FROM meta WHERE name = 'references_indexed';",
    )
    .unwrap();
    drop(db);
    let (_server, http) = serve_with(&dir, &[]);
    let (_, again) = get(&http, None, "/v1/vals/alice.lib/references");
    assert_eq!(again["references"], listed["references"]);
    let (_, seen) = get(&http, Some(&carol), "/v1/vals/alice.lib/referenced-by");
    assert_eq!(seen["referrers"].as_array().unwrap().len(), 2, "{seen}");
}

#[test]
fn versions_past_the_limit_are_pruned_except_pinned_ones() {
    let dir = fresh_dir("references-versions");
    let (_server, http) = serve_with(&dir, &["--max-versions-per-val", "3"]);
    let alice = http.user("alice");
    let bob = http.user("bob");
    let version = |n: u32| format!("export const x = {n}");
    save_val(&http, &alice, "x", "public", &version(1));
    save_val(&http, &alice, "x", "public", &version(2));
    // bob pins version 2.
    save_val(
        &http,
        &bob,
        "pin",
        "public",
        "export const pin = () => @alice.x@2",
    );
    for n in 3..=6 {
        save_val(&http, &alice, "x", "public", &version(n));
    }
    let (status, listed) = get(&http, None, "/v1/vals/alice.x/versions");
    assert_eq!(status, 200, "{listed}");
    let kept: Vec<u64> = listed["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["version"].as_u64().unwrap())
        .collect();
    assert_eq!(kept, [2, 4, 5, 6], "the newest 3 and the pinned one");
    assert_eq!(get(&http, None, "/v1/vals/alice.x?version=1").0, 404);
    let (status, pinned) = http.call("POST", "/v1/run/bob.pin", Some(&bob), Some(json!([])));
    assert_eq!((status, pinned), (200, json!(2)), "the pin still runs");

    // Values written by running code are bounded the same way.
    let (status, body) = http.call(
        "POST",
        "/v1/eval",
        Some(&alice),
        Some(
            json!({"code": "for (let i = 0; i < 10; i++) { @me.counter = i } return @me.counter"}),
        ),
    );
    assert_eq!((status, &body), (200, &json!(9)), "{body}");
    let (_, counter) = get(&http, Some(&alice), "/v1/vals/alice.counter/versions");
    assert_eq!(
        counter["versions"].as_array().unwrap().len(),
        3,
        "{counter}"
    );
    let (_, metrics) = http.raw("GET", "/metrics", None, None);
    assert!(
        metrics.contains("valbox_pruned_rows_total{kind=\"versions\"} 9"),
        "2 of x and 7 of counter: {metrics}"
    );
}

#[test]
fn forks_remember_their_upstream_and_pinning_rewrites_foreign_references() {
    let dir = fresh_dir("references-forks");
    let (_server, http) = serve_with(&dir, &[]);
    let alice = http.user("alice");
    let bob = http.user("bob");
    save_val(
        &http,
        &bob,
        "gpt3",
        "public",
        "export const gpt3 = (p) => 'v1 ' + p",
    );
    save_val(
        &http,
        &bob,
        "notes",
        "private",
        "export const notes = 'mine'",
    );

    // A private val of someone else is not forkable: the same 404 as a missing one.
    let fork = |key: &str, target: &str, body: Value| {
        http.call(
            "POST",
            &format!("/v1/vals/{target}/fork"),
            Some(key),
            Some(body),
        )
    };
    assert_eq!(fork(&alice, "bob.notes", json!({})).0, 404);
    assert_eq!(fork(&alice, "bob.nothing", json!({})).0, 404);
    assert_eq!(
        fork(&bob, "bob.notes", json!({"name": "notes2"})).0,
        200,
        "own private val"
    );

    let (status, forked) = fork(&alice, "bob.gpt3", json!({"name": "myGpt"}));
    assert_eq!(status, 200, "{forked}");
    assert_eq!(forked["privacy"], "private");
    let (_, shown) = get(&http, Some(&alice), "/v1/vals/alice.myGpt");
    assert_eq!(shown["forked_from"], "bob.gpt3@1");
    assert_eq!(
        fork(&alice, "bob.gpt3", json!({"name": "myGpt"})).0,
        409,
        "the name is taken"
    );
    let (_, upstream) = get(&http, Some(&alice), "/v1/vals/alice.myGpt/upstream");
    assert_eq!(upstream["newer_versions"], false, "{upstream}");
    save_val(
        &http,
        &bob,
        "gpt3",
        "public",
        "export const gpt3 = (p) => 'v2 ' + p",
    );
    let (_, upstream) = get(&http, Some(&alice), "/v1/vals/alice.myGpt/upstream");
    assert_eq!(
        (
            upstream["newer_versions"].clone(),
            upstream["latest_version"].clone()
        ),
        (json!(true), json!(2))
    );
    let diff = upstream["diff"].as_str().unwrap();
    assert!(
        diff.contains("-export const gpt3 = (p) => 'v1 ' + p")
            && diff.contains("+export const gpt3 = (p) => 'v2 ' + p"),
        "{diff}"
    );
    // The original made private: the fork's owner learns nothing more of it.
    let (status, _) = http.call(
        "PATCH",
        "/v1/vals/gpt3",
        Some(&bob),
        Some(json!({"privacy": "private"})),
    );
    assert_eq!(status, 200);
    let (_, upstream) = get(&http, Some(&alice), "/v1/vals/alice.myGpt/upstream");
    assert_eq!(upstream["visible"], false, "{upstream}");
    assert!(upstream.get("diff").is_none() && upstream.get("latest_version").is_none());
    let (status, _) = http.call(
        "PATCH",
        "/v1/vals/gpt3",
        Some(&bob),
        Some(json!({"privacy": "public"})),
    );
    assert_eq!(status, 200);

    // Pinning: a preview, then applied.
    save_val(
        &http,
        &alice,
        "useGpt",
        "private",
        "export const useGpt = async () =>\n  @bob.gpt3('a') + await api(@bob.gpt3, 'b') + @bob.gpt3@1('c') + typeof @me.myGpt;",
    );
    let (status, preview) = http.call("POST", "/v1/me/pin", Some(&alice), Some(json!({})));
    assert_eq!(status, 200, "{preview}");
    assert_eq!(preview["applied"], false);
    let vals = preview["vals"].as_array().unwrap();
    assert_eq!(
        vals.len(),
        1,
        "only useGpt has foreign unpinned references: {preview}"
    );
    assert_eq!(vals[0]["changes"].as_array().unwrap().len(), 2, "{preview}");
    let pinned = "export const useGpt = async () =>\n  @bob.gpt3@2('a') + await api(@bob.gpt3@2, 'b') + @bob.gpt3@1('c') + typeof @me.myGpt;";
    assert_eq!(vals[0]["code"], pinned);
    let (_, still) = get(&http, Some(&alice), "/v1/vals/alice.useGpt");
    assert_eq!(still["version"], 1, "a preview saves nothing");
    let (status, applied) = http.call(
        "POST",
        "/v1/me/pin",
        Some(&alice),
        Some(json!({"apply": true})),
    );
    assert_eq!(status, 200, "{applied}");
    assert_eq!(applied["vals"][0]["saved_version"], 2);
    let (_, saved) = get(&http, Some(&alice), "/v1/vals/alice.useGpt");
    assert_eq!(saved["code"], pinned);
    // bob moves on; alice's pinned call keeps running version 2.
    save_val(
        &http,
        &bob,
        "gpt3",
        "public",
        "export const gpt3 = (p) => 'v3 ' + p",
    );
    let (status, ran) = http.call(
        "POST",
        "/v1/run/alice.useGpt",
        Some(&alice),
        Some(json!([])),
    );
    assert_eq!(status, 200, "{ran}");
    assert!(ran.as_str().unwrap().starts_with("v2 a"), "{ran}");
    let (_, again) = http.call("POST", "/v1/me/pin", Some(&alice), Some(json!({})));
    assert_eq!(again["vals"], json!([]), "nothing left to pin");
}

//! The seed's upgrade guide, automated, over HTTP: explainable denials in
//! evaluation records, the broken-call-site finder (`GET /v1/me/call-sites`
//! and `valbox check`), and the fix preview — the gpt3 story end to end,
//! one finding per seed-table row, recursion through three users, cycles,
//! pinned versions, and what a stranger may not learn.

mod common;

use common::{fresh_dir, save_val, serve_with, Http};
use serde_json::{json, Value};
use std::process::Command;

fn broken(http: &Http, key: &str) -> Vec<Value> {
    let (status, body) = http.call("GET", "/v1/me/call-sites?status=broken", Some(key), None);
    assert_eq!(status, 200, "{body}");
    body["call_sites"].as_array().unwrap().clone()
}

/// The paths of every finding, in order.
fn paths(sites: &[Value]) -> Vec<String> {
    sites
        .iter()
        .flat_map(|s| s["findings"].as_array().unwrap().clone())
        .map(|f| {
            format!(
                "{} [{}]",
                f["path"].as_str().unwrap(),
                f["rule"].as_str().unwrap()
            )
        })
        .collect()
}

/// Every denial in a record's tree.
fn denials(record: &Value) -> Vec<Value> {
    let mut found: Vec<Value> = record["denials"].as_array().cloned().unwrap_or_default();
    for call in record["calls"].as_array().into_iter().flatten() {
        found.extend(denials(call));
    }
    found
}

#[test]
fn the_gpt3_story_is_found_explained_fixed_and_gone() {
    let dir = fresh_dir("call-sites-gpt3");
    let (_server, http) = serve_with(&dir, &[]);
    let alice = http.user("alice");
    let bob2 = http.user("bob2");
    save_val(
        &http,
        &bob2,
        "openAiFreeUsageConfig",
        "private",
        "export default { key: 'sk-free' }",
    );
    save_val(
        &http,
        &bob2,
        "gpt3",
        "public",
        "export function gpt3(prompt, key) {\n  key = key ?? @me.openAiFreeUsageConfig?.key;\n  if (!key) throw new Error('no key: pass your own');\n  return `answer to ${prompt} with ${key.slice(0, 3)}`;\n}",
    );
    save_val(
        &http,
        &alice,
        "useGpt",
        "private",
        "export function useGpt() {\n  const answer = @bob2.gpt3(\"hi\");\n  return answer.toUpperCase();\n}",
    );

    // The run fails, and the record says why.
    let (status, failed) = http.call(
        "POST",
        "/v1/run/alice.useGpt",
        Some(&alice),
        Some(json!([])),
    );
    assert_eq!(status, 500, "{failed}");
    assert!(failed.to_string().contains("no key"), "{failed}");
    let (_, records) = http.call("GET", "/v1/evaluations", Some(&alice), None);
    let record = &records["evaluations"][0]["record"];
    let denial = &denials(record)[0];
    assert_eq!(denial["reference"], "@me.openAiFreeUsageConfig");
    assert_eq!(denial["rule"], "restricted_private_val");
    assert_eq!(
        (denial["line"].clone(), denial["column"].clone()),
        (json!(2), json!(16))
    );
    assert!(
        denial["hint"]
            .as_str()
            .unwrap()
            .contains("api(@bob2.gpt3, …)"),
        "{denial}"
    );
    assert!(!record.to_string().contains("sk-free"));
    // bob2 sees no record of alice's run, and so no denial either.
    let (_, bob_records) = http.call("GET", "/v1/evaluations", Some(&bob2), None);
    assert!(
        !bob_records.to_string().contains("openAiFreeUsageConfig"),
        "{bob_records}"
    );

    // The finder flags the call site, with the path and the evidence.
    let sites = broken(&http, &alice);
    assert_eq!(sites.len(), 1, "{sites:?}");
    let site = &sites[0];
    assert_eq!(
        (
            site["val"].clone(),
            site["line"].clone(),
            site["column"].clone()
        ),
        (json!("alice.useGpt"), json!(2), json!(18))
    );
    assert_eq!(site["callee"], "@bob2.gpt3");
    assert_eq!(
        paths(&sites),
        ["@alice.useGpt → @bob2.gpt3 → reads @me.openAiFreeUsageConfig (not public) [restricted_private_val]"]
    );
    let finding = &site["findings"][0];
    assert_eq!(finding["fixable"], true);
    assert_eq!(finding["at"], "@bob2.gpt3@1:2:16");
    assert!(finding["suggestion"]
        .as_str()
        .unwrap()
        .contains("await api(@bob2.gpt3, …)"));
    assert_eq!(site["evidence"][0]["ok"], false);
    assert_eq!(
        site["evidence"][0]["denials"],
        json!(["restricted_private_val"])
    );

    // `valbox check` says the same and exits 1.
    let check = Command::new(env!("CARGO_BIN_EXE_valbox"))
        .args([
            "check",
            "--server",
            &format!("http://127.0.0.1:{}", http.port),
        ])
        .env("VALBOX_KEY", &alice)
        .output()
        .unwrap();
    let printed = String::from_utf8_lossy(&check.stdout);
    assert_eq!(check.status.code(), Some(1), "{printed}");
    assert!(
        printed.contains("@alice.useGpt → @bob2.gpt3 → reads @me.openAiFreeUsageConfig"),
        "{printed}"
    );
    assert!(
        printed.contains("1 broken call site of 1 listed"),
        "{printed}"
    );

    // The fix preview rewrites the call (and makes the function async).
    let (status, preview) = http.call(
        "POST",
        "/v1/me/call-sites/fix",
        Some(&alice),
        Some(json!({"call_sites": sites})),
    );
    assert_eq!(status, 200, "{preview}");
    let fixed = &preview["vals"][0];
    let code = fixed["code"].as_str().unwrap();
    assert_eq!(
        code,
        "export async function useGpt() {\n  const answer = await api(@bob2.gpt3, \"hi\");\n  return answer.toUpperCase();\n}"
    );
    assert!(
        fixed["notes"].to_string().contains("now `async`"),
        "{fixed}"
    );
    // Nothing was saved by the preview.
    let (_, still) = http.call("GET", "/v1/vals/alice.useGpt", Some(&alice), None);
    assert_eq!(still["version"], 1);

    // Saved, it runs, and the finding is gone.
    save_val(&http, &alice, "useGpt", "private", code);
    let (status, answer) = http.call(
        "POST",
        "/v1/run/alice.useGpt",
        Some(&alice),
        Some(json!([])),
    );
    assert_eq!((status, answer), (200, json!("ANSWER TO HI WITH SK-")));
    assert_eq!(broken(&http, &alice), Vec::<Value>::new());
    let check = Command::new(env!("CARGO_BIN_EXE_valbox"))
        .args([
            "check",
            "--server",
            &format!("http://127.0.0.1:{}", http.port),
            "--key",
            &alice,
        ])
        .output()
        .unwrap();
    assert_eq!(
        check.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&check.stdout)
    );
}

#[test]
fn the_finder_names_each_row_follows_users_and_pins_and_ends_cycles() {
    let dir = fresh_dir("call-sites-rows");
    let (_server, http) = serve_with(&dir, &[]);
    let alice = http.user("alice");
    let bob = http.user("bob");
    let carol = http.user("carol");
    save_val(
        &http,
        &bob,
        "secretUser",
        "public",
        "export const secretUser = () => @me.secrets.token",
    );
    save_val(
        &http,
        &bob,
        "writer",
        "public",
        "export function writer() { @me.count = 1 }",
    );
    save_val(
        &http,
        &bob,
        "mailer",
        "public",
        "export function mailer() { console.email('hi', 'there') }",
    );
    save_val(&http, &bob, "stats", "private", "export default 3");
    save_val(
        &http,
        &bob,
        "reader",
        "public",
        "export const reader = () => @bob.stats",
    );
    // Three users: alice → bob.viaCarol → carol.g, which reads carol's secret.
    save_val(
        &http,
        &carol,
        "g",
        "public",
        "export const g = () => @me.secrets.k",
    );
    save_val(
        &http,
        &bob,
        "viaCarol",
        "public",
        "export const viaCarol = () => @carol.g()",
    );
    // A cycle through bob's own vals, one of which reads his secret.
    save_val(
        &http,
        &bob,
        "ping",
        "public",
        "export const ping = (n) => n ? @me.pong(n - 1) : @me.secrets.k",
    );
    save_val(
        &http,
        &bob,
        "pong",
        "public",
        "export const pong = (n) => (n > 5 ? @me.secrets.other : @me.ping(n))",
    );
    // Pinned: version 1 read nothing; version 2 reads a private val.
    save_val(
        &http,
        &bob,
        "versioned",
        "public",
        "export const versioned = () => 1",
    );
    save_val(
        &http,
        &bob,
        "versioned",
        "public",
        "export const versioned = () => @me.stats",
    );
    // Computed: cannot tell.
    save_val(
        &http,
        &bob,
        "dynamic",
        "public",
        "export const dynamic = (f) => api(f)",
    );
    save_val(
        &http,
        &alice,
        "main",
        "private",
        "export function main() {\n  @bob.secretUser(); @bob.writer(); @bob.mailer(); @bob.reader();\n  @bob.viaCarol(); @bob.ping(2); @bob.versioned@1(); @bob.versioned(); @bob.dynamic(1);\n}",
    );
    let (status, all) = http.call("GET", "/v1/me/call-sites", Some(&alice), None);
    assert_eq!(status, 200, "{all}");
    let sites = all["call_sites"].as_array().unwrap();
    let status_of = |callee: &str| {
        sites
            .iter()
            .find(|s| s["callee"] == callee)
            .map(|s| s["status"].as_str().unwrap().to_string())
            .unwrap()
    };
    assert_eq!(
        status_of("@bob.versioned@1"),
        "ok",
        "a pinned version that reads nothing private"
    );
    assert_eq!(status_of("@bob.versioned"), "broken");
    assert_eq!(status_of("@bob.dynamic"), "unknown");
    let dynamic = sites
        .iter()
        .find(|s| s["callee"] == "@bob.dynamic")
        .unwrap();
    assert!(dynamic["cannot_tell"][0]
        .as_str()
        .unwrap()
        .contains("cannot tell statically"));

    let found = paths(&broken(&http, &alice));
    assert_eq!(
        found,
        [
            "@alice.main → @bob.secretUser → reads @me.secrets.token [restricted_secret]",
            "@alice.main → @bob.writer → writes @me.count [restricted_write]",
            "@alice.main → @bob.mailer → sends console.email [restricted_email]",
            "@alice.main → @bob.reader → reads @bob.stats (not public) [restricted_private_val]",
            "@alice.main → @bob.viaCarol → @carol.g → reads @me.secrets.k [restricted_secret]",
            "@alice.main → @bob.ping → @bob.pong → reads @me.secrets.other [restricted_secret]",
            "@alice.main → @bob.ping → reads @me.secrets.k [restricted_secret]",
            "@alice.main → @bob.versioned → reads @me.stats (not public) [restricted_private_val]",
        ]
    );
    let findings: Vec<Value> = broken(&http, &alice)
        .iter()
        .flat_map(|s| s["findings"].as_array().unwrap().clone())
        .collect();
    let via_carol = findings
        .iter()
        .find(|f| f["path"].as_str().unwrap().contains("@carol.g"))
        .unwrap();
    assert_eq!(via_carol["fixable"], false);
    assert!(via_carol["suggestion"]
        .as_str()
        .unwrap()
        .contains("leaves @bob's vals at @carol.g"));
    let through_ping = findings
        .iter()
        .find(|f| f["path"].as_str().unwrap().contains("@bob.pong"))
        .unwrap();
    assert_eq!(through_ping["fixable"], true);
    assert_eq!(
        through_ping["vals"],
        json!(["@alice.main@1", "@bob.ping@1", "@bob.pong@1"])
    );

    // bob's own view: his call of carol.g is broken for him too.
    assert_eq!(
        paths(&broken(&http, &bob)),
        ["@bob.viaCarol → @carol.g → reads @me.secrets.k [restricted_secret]"]
    );
}

#[test]
fn a_stranger_learns_nothing_about_private_vals_or_secrets() {
    let dir = fresh_dir("call-sites-stranger");
    let (_server, http) = serve_with(&dir, &[]);
    let eve = http.user("eve");
    let bob = http.user("bob");
    // bob's public probe reads two names: one exists (private), one does not.
    save_val(
        &http,
        &bob,
        "hidden",
        "private",
        "export default 'hidden-value-7f3'",
    );
    save_val(
        &http,
        &bob,
        "probe",
        "public",
        "export const probe = () => [@me.hidden, @me.nothing, @me.secrets.x]",
    );
    let (status, _) = http.call(
        "PUT",
        "/v1/secrets/x",
        Some(&bob),
        Some(json!({"value": "v"})),
    );
    assert!(status == 200 || status == 204, "{status}");
    save_val(
        &http,
        &eve,
        "spy",
        "private",
        "export const spy = () => @bob.probe()",
    );
    let found = paths(&broken(&http, &eve));
    assert_eq!(
        found,
        [
            "@eve.spy → @bob.probe → reads @me.hidden (not public) [restricted_private_val]",
            "@eve.spy → @bob.probe → reads @me.nothing (not public) [restricted_private_val]",
            "@eve.spy → @bob.probe → reads @me.secrets.x [restricted_secret]",
        ],
        "an existing private val and a missing one read the same"
    );
    // Run it: the denials read the same for the existing and the missing val.
    let (status, _) = http.call("POST", "/v1/run/eve.spy", Some(&eve), Some(json!([])));
    assert_eq!(status, 200);
    let (_, records) = http.call("GET", "/v1/evaluations", Some(&eve), None);
    let found = denials(&records["evaluations"][0]["record"]);
    let shapes: Vec<_> = found
        .iter()
        .map(|d| {
            (
                d["rule"].clone(),
                d["decision"].clone(),
                d["rule_text"].clone(),
            )
        })
        .collect();
    assert_eq!(shapes[0], shapes[1], "{found:?}");
    assert!(!records.to_string().contains("hidden-value-7f3"));
    // The finder lists only the caller's own call sites, and the fix only
    // rewrites the caller's own vals.
    assert!(broken(&http, &eve)
        .iter()
        .all(|s| s["val"].as_str().unwrap().starts_with("eve.")));
    let (status, refused) = http.call(
        "POST",
        "/v1/me/call-sites/fix",
        Some(&eve),
        Some(json!({"call_sites": [{"val": "bob.probe", "line": 1, "column": 29}]})),
    );
    assert_eq!(status, 404, "{refused}");
    let (status, _) = http.call("GET", "/v1/me/call-sites", None, None);
    assert_eq!(status, 401);
}

#[test]
fn the_fix_preview_refuses_what_it_cannot_rewrite() {
    let dir = fresh_dir("call-sites-fix");
    let (_server, http) = serve_with(&dir, &[]);
    let alice = http.user("alice");
    let bob = http.user("bob");
    save_val(&http, &bob, "f", "public", "export const f = (a) => a");
    save_val(
        &http,
        &alice,
        "multi",
        "private",
        "export const multi = async (x) => {\n  const a = @bob.f(`)${x}`, [1, (2)]).length;\n  return a + await @bob.f();\n};",
    );
    let (status, preview) = http.call(
        "POST",
        "/v1/me/call-sites/fix",
        Some(&alice),
        Some(json!({"findings": [{"val": "multi", "line": 2, "column": 13}, {"val": "alice.multi", "line": 3, "column": 20, "version": 1}]})),
    );
    assert_eq!(status, 200, "{preview}");
    assert_eq!(
        preview["vals"][0]["code"],
        "export const multi = async (x) => {\n  const a = (await api(@bob.f, `)${x}`, [1, (2)])).length;\n  return a + await api(@bob.f);\n};"
    );
    for (body, expected) in [
        (
            json!({"call_sites": [{"val": "multi", "line": 1, "column": 1}]}),
            409,
        ),
        (
            json!({"call_sites": [{"val": "multi", "line": 2, "column": 13, "version": 7}]}),
            409,
        ),
        (
            json!({"call_sites": [{"val": "nothere", "line": 1, "column": 1}]}),
            404,
        ),
        (json!({"call_sites": []}), 400),
        (
            json!({"call_sites": [{"val": "multi", "line": "two"}]}),
            400,
        ),
    ] {
        let (status, answer) = http.call(
            "POST",
            "/v1/me/call-sites/fix",
            Some(&alice),
            Some(body.clone()),
        );
        assert_eq!(status, expected, "{body} → {answer}");
    }
}

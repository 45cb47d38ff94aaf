//! A pooled slot is reset completely between calls, however scattered the
//! pages a call dirtied (vendor/README.md: wasmtime 48 decommitted all but
//! the first 32 dirty regions; the vendored fix resets them in place). A
//! call that writes into objects all over the snapshot's heap is followed,
//! in the same sandbox, by calls that must see none of it.

mod common;

use common::sandbox;

const SCATTER: &str = r#"export function scatter(mark) {
  let touched = 0;
  for (const name of Object.getOwnPropertyNames(globalThis)) {
    const value = globalThis[name];
    if ((typeof value === "function" || (typeof value === "object" && value !== null)) && Object.isExtensible(value)) {
      try { value.__left = mark; touched++; } catch {}
      const proto = value.prototype;
      if (proto && typeof proto === "object" && Object.isExtensible(proto)) {
        try { proto.__left = mark; touched++; } catch {}
      }
    }
  }
  return touched;
}"#;

const CHECK: &str = r#"export function check() {
  const left = [];
  for (const name of Object.getOwnPropertyNames(globalThis)) {
    const value = globalThis[name];
    if (value !== null && (typeof value === "function" || typeof value === "object")) {
      if (Object.hasOwn(value, "__left")) left.push(name);
      if (value.prototype && Object.hasOwn(value.prototype, "__left")) left.push(name + ".prototype");
    }
  }
  return left;
}"#;

#[test]
fn scattered_writes_never_reach_the_next_call() {
    let scatter = sandbox().compile("scatter.js", SCATTER).unwrap();
    let check = sandbox().compile("check.js", CHECK).unwrap();
    // The sandbox's slots are reused call after call: each round dirties
    // a slot all over and then checks the state the next calls start from.
    for round in 0..20 {
        let touched = sandbox().call(&scatter, "scatter", &format!("[{round}]"));
        let touched: u32 = touched.result.unwrap().parse().unwrap();
        assert!(touched > 100, "the call wrote into {touched} objects");
        for _ in 0..3 {
            let left = sandbox().call(&check, "check", "[]").result.unwrap();
            assert_eq!(left, "[]", "round {round}: a call saw {left}");
        }
    }
}

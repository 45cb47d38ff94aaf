//! A pooled slot is reset completely between calls, however scattered the
//! pages a call dirtied (vendor/README.md: wasmtime 48 decommitted all but
//! the first 32 dirty regions; the vendored fix resets them in place). A
//! call that writes into objects all over the snapshot's heap is followed,
//! in the same sandbox, by calls that must see none of it. And a slot maps
//! only the pages its calls touch (the vendored wasmtime turns the kernel's
//! fault-around off in slot images), which keeps every reset's walk short.

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

/// Whether this process has a mapping registered with `userfaultfd` in
/// write-protect mode (`uw` in `/proc/self/smaps`): how the vendored
/// wasmtime turns the kernel's fault-around off in a slot's image.
fn fault_around_is_off() -> bool {
    std::fs::read_to_string("/proc/self/smaps").is_ok_and(|smaps| {
        smaps
            .lines()
            .filter_map(|line| line.strip_prefix("VmFlags:"))
            .any(|flags| flags.split_whitespace().any(|flag| flag == "uw"))
    })
}

/// A slot maps only the pages its calls touch, not their neighbours: the
/// reset walks every mapped page of a slot after every call, so a plain
/// call's cost grows with them (vendor/README.md, docs/perf.md).
#[test]
fn a_slot_maps_only_the_pages_its_calls_touch() {
    let sandbox = valbox_runtime::Sandbox::new(valbox_runtime::SandboxConfig {
        max_instances: 1,
        ..common::config()
    })
    .unwrap();
    let add = sandbox
        .compile("add.js", "export function add(a, b) { return a + b }")
        .unwrap();
    for _ in 0..20 {
        assert_eq!(sandbox.call(&add, "add", "[1,2]").result.unwrap(), "3");
    }
    let pages = sandbox.memory_pages(&add, "add", "[1,2]").unwrap();
    let Some(present) = pages.present_at_start else {
        eprintln!("/proc/self/pagemap is not readable here: not measured");
        return;
    };
    if !fault_around_is_off() {
        eprintln!("userfaultfd is not available here: fault-around stays on, not checked");
        return;
    }
    eprintln!(
        "a slot that served add calls has {present} of {} pages mapped",
        pages.initial
    );
    assert!(
        present < pages.initial / 8,
        "a slot that served 20 add calls has {present} of {} pages mapped",
        pages.initial
    );
}

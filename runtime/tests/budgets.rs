//! Budgets of a call tree: val writes and their bytes, emails, fetches.
//! Each overdraft ends the whole tree with a limit error naming the budget,
//! and nothing beyond the budget is stored or sent — also when a foreign
//! library spends its caller's budget by writing the caller's vals.

mod common;

use common::{config, put, run_with};
use std::sync::{Arc, OnceLock};
use valbox_runtime::{CallBudgets, MemoryWorld, Sandbox, SandboxConfig, SandboxError, World};

fn small() -> &'static Sandbox {
    static SANDBOX: OnceLock<Sandbox> = OnceLock::new();
    SANDBOX.get_or_init(|| {
        Sandbox::new(SandboxConfig {
            budgets: CallBudgets {
                val_writes: 5,
                written_bytes: 4_000,
                emails: 3,
                fetches: 2,
            },
            ..config()
        })
        .expect("the sandbox starts")
    })
}

fn limit_message(result: Result<String, SandboxError>) -> String {
    match result {
        Err(SandboxError::Limit(message)) => message,
        other => panic!("expected a limit error, got {other:?}"),
    }
}

fn versions(world: &MemoryWorld, owner: &str, name: &str) -> u32 {
    world.val(owner, name, None).map_or(0, |v| v.version)
}

#[test]
fn own_writes_stop_at_the_budget_and_cannot_be_caught() {
    let world = Arc::new(MemoryWorld::new());
    let outcome = run_with(
        small(),
        &world,
        Some("alice"),
        "for (let i = 0; i < 50; i++) { try { @me.counter = i } catch (e) {} } return 'finished'",
    );
    let message = limit_message(outcome.result);
    assert!(message.contains("5 val writes"), "{message}");
    assert_eq!(
        versions(&world, "alice", "counter"),
        5,
        "nothing beyond the budget"
    );
}

#[test]
fn written_bytes_have_a_budget_of_their_own() {
    let world = Arc::new(MemoryWorld::new());
    let outcome = run_with(
        small(),
        &world,
        Some("alice"),
        "const big = 'x'.repeat(1500); for (let i = 0; i < 5; i++) @me.blob = big + i; return 1",
    );
    let message = limit_message(outcome.result);
    assert!(message.contains("4000 bytes written"), "{message}");
    assert_eq!(versions(&world, "alice", "blob"), 2);
}

#[test]
fn a_foreign_library_writing_its_callers_vals_spends_the_callers_budget() {
    let world = Arc::new(MemoryWorld::new());
    put(
        &world,
        "mallory",
        "helper",
        true,
        "export function helper() { for (let i = 0; i < 1000; i++) @alice.junk = i; return 'done' }",
    );
    let outcome = run_with(
        small(),
        &world,
        Some("alice"),
        "try { return @mallory.helper() } catch (e) { return 'caught: ' + e.message }",
    );
    // Not a catchable error in alice's code: the whole tree ends.
    let message = limit_message(outcome.result);
    assert!(message.contains("val writes"), "{message}");
    assert_eq!(versions(&world, "alice", "junk"), 5);
}

#[test]
fn emails_and_fetches_are_counted_per_tree() {
    let world = Arc::new(MemoryWorld::new());
    put(
        &world,
        "alice",
        "notify",
        false,
        "export function notify(n) { console.email('n' + n, 'body'); return n }",
    );
    let outcome = run_with(
        small(),
        &world,
        Some("alice"),
        "for (let n = 0; n < 10; n++) @alice.notify(n); return 1",
    );
    let message = limit_message(outcome.result);
    assert!(message.contains("3 emails"), "{message}");
    assert_eq!(
        world.emails().len(),
        3,
        "nothing beyond the budget was sent"
    );

    // Fetches spend even when refused by the address guard afterwards.
    let outcome = run_with(
        small(),
        &world,
        Some("alice"),
        "for (let n = 0; n < 5; n++) { try { await fetch('http://127.0.0.1:9/') } catch (e) {} } return 1",
    );
    let message = limit_message(outcome.result);
    assert!(message.contains("2 fetch requests"), "{message}");
    // A new tree starts with a full budget.
    let outcome = run_with(small(), &world, Some("alice"), "@me.fresh = 1; return 1");
    assert_eq!(outcome.result.unwrap(), "1");
}

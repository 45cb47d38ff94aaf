//! Instance admission: every instance of a call tree counts against the pool
//! and the payer's share; a nested call that finds no instance ends the
//! whole tree with a capacity error the caller's code cannot catch. And
//! stacks show user code only.

mod common;

use common::{config, put, run_with};
use std::sync::{Arc, Barrier, OnceLock};
use std::time::Instant;
use valbox_runtime::{
    Arguments, CapacityScope, Frame, Invocation, MemoryWorld, Outcome, Sandbox, SandboxConfig,
    SandboxError, World,
};

/// A pool of 8 instances of which one user may hold half.
fn small() -> &'static Sandbox {
    static SANDBOX: OnceLock<Sandbox> = OnceLock::new();
    SANDBOX.get_or_init(|| {
        Sandbox::new(SandboxConfig {
            max_instances: 8,
            user_instance_share: 0.5,
            ..config()
        })
        .expect("the sandbox starts")
    })
}

/// Two public vals calling each other `depth` deep, with a busy loop of
/// `busy_ms` at the bottom.
fn recursive_pair(world: &MemoryWorld) {
    let body = |other: &str| {
        format!(
            "export function rec(n, busy) {{\n\
             if (n <= 0) {{ const end = Date.now() + busy; while (Date.now() < end) {{}} return 'bottom'; }}\n\
             return {other}(n - 1, busy);\n}}"
        )
    };
    put(world, "deep", "rec", true, &body("@deep2.rec"));
    put(world, "deep2", "rec", true, &body("@deep.rec"));
}

/// Runs `body` as `user`'s code with `payer` paying for its instances.
fn run_paid(sandbox: &Sandbox, world: &Arc<MemoryWorld>, user: &str, body: &str) -> Outcome {
    let source = format!("export default async function () {{ {body} }}");
    let bytecode = sandbox.compile("eval.js", &source).expect("compiles");
    sandbox.run(
        world.clone() as Arc<dyn World>,
        Invocation {
            frame: Frame::own(Some(user), Instant::now() + sandbox.config().deadline),
            target: "eval".into(),
            bytecode: &bytecode,
            export: "default",
            args: Arguments::Json("[]"),
            payer: Some(user),
        },
    )
}

#[test]
fn a_tree_deeper_than_the_users_share_ends_with_a_capacity_error_the_code_cannot_catch() {
    let world = Arc::new(MemoryWorld::new());
    recursive_pair(&world);
    // Four instances for alice: the driver and three nested calls; the
    // fourth nested call finds none. The code catches everything, yet the
    // tree ends with the capacity error rather than the catch's value.
    let outcome = run_paid(
        small(),
        &world,
        "alice",
        "try { return await @deep.rec(5, 0) } catch (e) { return 'caught: ' + e.message }",
    );
    match outcome.result {
        Err(SandboxError::Capacity(refused)) => {
            assert_eq!(refused.scope, CapacityScope::User);
            assert!(
                refused
                    .message
                    .contains("hold 4 of the 4 sandbox instances"),
                "{refused}"
            );
        }
        other => panic!("expected a capacity error, got {other:?}"),
    }
    assert!(outcome.admitted, "the tree ran before it was refused");
    // Within the share the same tree runs.
    let outcome = run_paid(small(), &world, "alice", "return await @deep.rec(2, 0)");
    assert_eq!(outcome.result.unwrap(), "\"bottom\"");
    assert_eq!(
        small().stats().instances_in_use,
        0,
        "every lease given back"
    );
}

#[test]
fn a_full_pool_refuses_new_trees_and_other_users_keep_their_share() {
    let world = Arc::new(MemoryWorld::new());
    recursive_pair(&world);
    let sandbox = Arc::new(
        Sandbox::new(SandboxConfig {
            max_instances: 8,
            user_instance_share: 0.5,
            ..config()
        })
        .unwrap(),
    );
    // alice holds her whole share (4) with a tree that sleeps at depth 3.
    let started = Arc::new(Barrier::new(2));
    let holder = {
        let (sandbox, world, started) = (sandbox.clone(), world.clone(), started.clone());
        std::thread::spawn(move || {
            started.wait();
            run_paid(&sandbox, &world, "alice", "return await @deep.rec(2, 600)")
        })
    };
    started.wait();
    let deadline = Instant::now() + std::time::Duration::from_secs(5);
    while sandbox.stats().instances_in_use < 4 {
        assert!(Instant::now() < deadline, "alice's tree never got deep");
        std::thread::yield_now();
    }
    // alice's next call is refused before it starts: nothing ran.
    let refused = run_paid(&sandbox, &world, "alice", "return 1");
    assert!(matches!(
        refused.result,
        Err(SandboxError::Capacity(ref c)) if c.scope == CapacityScope::User
    ));
    assert!(!refused.admitted);
    // bob still gets instances while alice holds hers.
    let bob = run_paid(&sandbox, &world, "bob", "return await @deep.rec(1, 0)");
    assert_eq!(bob.result.unwrap(), "\"bottom\"");
    assert_eq!(holder.join().unwrap().result.unwrap(), "\"bottom\"");
    let stats = sandbox.stats();
    assert_eq!(stats.instances_in_use, 0);
    assert_eq!(stats.max_instances, 8);
    assert_eq!(stats.user_instances, 4);
    assert!(stats.capacity_refusals.contains(&("user_share", 1)));
}

#[test]
fn stacks_show_user_code_only() {
    let world = Arc::new(MemoryWorld::new());
    put(
        &world,
        "bob",
        "thrower",
        true,
        "export function thrower() {\n  throw new TypeError('bad input');\n}",
    );
    recursive_pair(&world);
    let sandbox = common::sandbox();
    for body in [
        "return @bob.thrower()",
        "try { @bob.thrower() } catch (e) { throw e }",
        "return [1].map(() => { null.x })",
        "throw new Error('plain')",
        "return JSON.parse('{')",
        "return @deep.rec(40, 0)",
        "return new URL('not a url')",
        "return await new Response('x').json()",
        "return structuredClone(() => 1)",
    ] {
        let outcome = run_with(sandbox, &world, Some("carol"), body);
        let Err(SandboxError::Thrown(error)) = outcome.result else {
            panic!("{body}: expected a throw, got {:?}", outcome.result);
        };
        // (After an `await`, QuickJS's stack starts at the awaited job.)
        assert!(
            error.stack.contains(".js:") || body.contains("await"),
            "{body}: the user's frame remains: {}",
            error.stack
        );
        for line in error.stack.lines() {
            assert!(
                [".js:", "(native)", "<input>:"]
                    .iter()
                    .any(|user| line.contains(user))
                    && !line.contains("eval_script"),
                "{body}: a frame that is not user code: {line:?} in\n{}",
                error.stack
            );
        }
    }
}

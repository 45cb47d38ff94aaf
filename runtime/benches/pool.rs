//! How many nested calls per second the instance pool sustains at the
//! server's default size on this machine
//! (`SandboxConfig::instances_fitting_memory`, 64 MiB instances): threads run call trees 12 deep (`@deep.rec` and `@deep2.rec`
//! calling each other, nothing at the bottom) for a few seconds each, as
//! one user (whose share is half the pool) and as many users; a thread
//! refused for want of an instance waits 10 ms before its next tree (a
//! client backing off), and refusals are counted.
//!
//! Run: `cargo bench -p valbox-runtime --bench pool` (numbers go to
//! docs/perf.md). `VALBOX_BENCH_SECONDS` sets each measurement's length
//! (default 3).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};
use valbox_runtime::{
    Arguments, Frame, Invocation, MemoryWorld, Sandbox, SandboxConfig, SandboxError, World,
    HOST_THREAD_STACK,
};

const DEPTH: u32 = 12;

fn main() {
    let seconds = std::env::var("VALBOX_BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    let pool = SandboxConfig::instances_fitting_memory(64 << 20);
    let sandbox = Arc::new(
        Sandbox::new(SandboxConfig {
            cache_dir: Some(std::env::temp_dir().join("valbox-bench-cache")),
            max_instances: pool,
            ..SandboxConfig::default()
        })
        .unwrap(),
    );
    let world = Arc::new(MemoryWorld::new());
    for (owner, other) in [("deep", "@deep2.rec"), ("deep2", "@deep.rec")] {
        let source =
            format!("export function rec(n) {{ return n <= 0 ? 'bottom' : {other}(n - 1) }}");
        let bytecode = sandbox
            .compile(&format!("{owner}/rec.js"), &source)
            .unwrap();
        world.put_val(owner, "rec", true, bytecode);
    }
    let driver = sandbox
        .compile(
            "eval.js",
            &format!(
                "export default function () {{ return @deep.rec({}) }}",
                DEPTH - 1
            ),
        )
        .unwrap();
    let world: Arc<dyn World> = world;
    println!(
        "pool of {pool} instances (one user's share {}), trees of {DEPTH} nested calls, {seconds} s each",
        sandbox.stats().user_instances
    );
    for (threads, users) in [(2, 1), (8, 1), (64, 1), (64, 64)] {
        let stop = Arc::new(AtomicBool::new(false));
        let (trees, refused) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
        let workers: Vec<_> = (0..threads)
            .map(|t| {
                let (sandbox, world, driver) = (sandbox.clone(), world.clone(), driver.clone());
                let (stop, trees, refused) = (stop.clone(), trees.clone(), refused.clone());
                std::thread::Builder::new()
                    .stack_size(HOST_THREAD_STACK)
                    .spawn(move || {
                        let user = format!("user{}", t % users);
                        while !stop.load(Relaxed) {
                            let outcome = sandbox.run(
                                world.clone(),
                                Invocation {
                                    frame: Frame::own(
                                        Some(&user),
                                        Instant::now() + Duration::from_secs(5),
                                    ),
                                    target: "eval".into(),
                                    bytecode: &driver,
                                    export: "default",
                                    args: Arguments::Json("[]"),
                                    payer: Some(&user),
                                },
                            );
                            match outcome.result {
                                Ok(_) => trees.fetch_add(1, Relaxed),
                                Err(SandboxError::Capacity(_)) => {
                                    // A client told to come back later does not retry at once.
                                    std::thread::sleep(Duration::from_millis(10));
                                    refused.fetch_add(1, Relaxed)
                                }
                                Err(e) => panic!("{e}"),
                            };
                        }
                    })
                    .unwrap()
            })
            .collect();
        let started = Instant::now();
        std::thread::sleep(Duration::from_secs(seconds));
        stop.store(true, Relaxed);
        for worker in workers {
            worker.join().unwrap();
        }
        let elapsed = started.elapsed().as_secs_f64();
        let trees = trees.load(Relaxed) as f64;
        println!(
            "{threads:>3} threads, {users:>2} user(s): {:>8.0} nested calls/s ({:>6.0} trees/s), {} trees refused",
            trees * f64::from(DEPTH) / elapsed,
            trees / elapsed,
            refused.load(Relaxed)
        );
    }
}

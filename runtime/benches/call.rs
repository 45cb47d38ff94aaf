//! Per-call cost of a fresh sandbox instance, next to the floor of a bare
//! wasmtime instantiate + call on an engine configured the same way.
//!
//! Run: `cargo bench -p valbox-runtime --bench call` (numbers go to docs/perf.md).

use std::sync::Arc;
use std::time::{Duration, Instant};
use valbox_runtime::{Arguments, Frame, Invocation, MemoryWorld, Sandbox, SandboxConfig, World};
use wasmtime::{
    Engine, InstanceAllocationStrategy, Linker, Module, PoolingAllocationConfig, Store,
};

const WARMUP: usize = 500;
const SAMPLES: usize = 5_000;

fn measure(label: &str, mut f: impl FnMut()) -> (Duration, Duration) {
    for _ in 0..WARMUP {
        f();
    }
    let mut samples: Vec<Duration> = (0..SAMPLES)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed()
        })
        .collect();
    samples.sort();
    let p50 = samples[SAMPLES / 2];
    let p99 = samples[SAMPLES * 99 / 100];
    println!(
        "{label:<58} p50 {:>8.1} µs   p99 {:>8.1} µs",
        micros(p50),
        micros(p99)
    );
    (p50, p99)
}

fn micros(d: Duration) -> f64 {
    d.as_nanos() as f64 / 1000.0
}

fn floor() -> (Duration, Duration) {
    let mut pooling = PoolingAllocationConfig::new();
    pooling
        .total_memories(16)
        .linear_memory_keep_resident(4 << 20);
    let mut config = wasmtime::Config::new();
    config
        .epoch_interruption(true)
        .allocation_strategy(InstanceAllocationStrategy::Pooling(pooling));
    let engine = Engine::new(&config).unwrap();
    let module = Module::new(
        &engine,
        r#"(module (memory (export "memory") 1)
             (func (export "add") (param i32 i32) (result i32)
               local.get 0 local.get 1 i32.add))"#,
    )
    .unwrap();
    let pre = Linker::<()>::new(&engine).instantiate_pre(&module).unwrap();
    measure("floor: bare wasmtime instantiate + call (wat add)", || {
        let mut store = Store::new(&engine, ());
        store.set_epoch_deadline(1_000);
        let instance = pre.instantiate(&mut store).unwrap();
        let add = instance
            .get_typed_func::<(i32, i32), i32>(&mut store, "add")
            .unwrap();
        assert_eq!(add.call(&mut store, (1, 2)).unwrap(), 3);
    })
}

fn main() {
    let cache = std::env::temp_dir().join("valbox-bench-cache");
    let sandbox = Sandbox::new(SandboxConfig {
        cache_dir: Some(cache),
        ..SandboxConfig::default()
    })
    .unwrap();
    let source = "export function add(a, b) { return a + b }";
    let compiler = Sandbox::new(SandboxConfig {
        cache_dir: Some(std::env::temp_dir().join("valbox-bench-cache")),
        ..SandboxConfig::default()
    })
    .unwrap();
    let bytecode = compiler.compile("add.js", source).unwrap();

    let (floor_p50, _) = floor();
    let (call_p50, _) = measure(
        "sandbox.call: fresh instance, load + evaluate + add(1,2)",
        || {
            let out = sandbox.call(&bytecode, "add", "[1,2]");
            assert_eq!(out.result.unwrap(), "3");
        },
    );
    println!(
        "ratio to floor (p50): {:.1}x",
        micros(call_p50) / micros(floor_p50)
    );

    // Library and API round trips: alice's code calls bob's add; two fresh
    // instances per sample (alice's and bob's).
    let world = Arc::new(MemoryWorld::new());
    world.put_val("bob", "add", true, bytecode.clone());
    let world: Arc<dyn World> = world;
    let round_trip = |label: &str, body: &str| {
        let driver = compiler
            .compile(
                "eval.js",
                &format!("export default function () {{ {body} }}"),
            )
            .unwrap();
        measure(label, || {
            let outcome = sandbox.run(
                world.clone(),
                Invocation {
                    frame: Frame::own(Some("alice"), Instant::now() + Duration::from_secs(5)),
                    target: "eval".into(),
                    bytecode: &driver,
                    export: "default",
                    args: Arguments::Json("[]"),
                },
            );
            assert_eq!(outcome.result.unwrap(), "3");
        })
    };
    let (library_p50, _) = round_trip(
        "library round trip: alice -> @bob.add(1,2)",
        "return @bob.add(1, 2)",
    );
    round_trip(
        "api round trip: alice -> api(@bob.add, 1, 2)",
        "return api(@bob.add, 1, 2)",
    );
    println!(
        "a library call adds {:.1} µs = {:.2}x the single call (target <= 2x)",
        micros(library_p50) - micros(call_p50),
        (micros(library_p50) - micros(call_p50)) / micros(call_p50)
    );
}

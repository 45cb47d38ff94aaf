//! Per-call cost of a fresh sandbox instance, next to the floor of a bare
//! wasmtime instantiate + call on an engine configured the same way, and the
//! library and `api()` round trips (two fresh instances each).
//!
//! The three are sampled in alternating blocks, so a noisy stretch of the
//! machine falls on all of them; single calls run on a sandbox of their own,
//! so its pooled memory slots only ever hold single calls (the pages a slot
//! has dirtied are reset on every later use, so sharing slots with the
//! bigger round trips would slow single calls down and flatter the ratio).
//!
//! Then a web-platform call (`new URL`, `crypto.randomUUID()`, one
//! HMAC-SHA256), the web-standard and Express hello handlers as
//! `/v1/express` runs them, and the memory pages of one instance
//! (`Sandbox::memory_pages`).
//!
//! Run: `cargo bench -p valbox-runtime --bench call` (numbers go to docs/perf.md).
//! `VALBOX_BENCH_KEEP_RESIDENT=<bytes>` overrides the slots' kept-resident
//! memory; `VALBOX_BENCH_SINGLE_LOOP=<n>` only runs n single calls, and
//! `VALBOX_BENCH_HANDLER_LOOP=<n>` n calls of the handler whose label starts
//! with `VALBOX_BENCH_HANDLER` (`web` or `Express`), for `perf record`.

use std::sync::Arc;
use std::time::{Duration, Instant};
use valbox_runtime::{Arguments, Frame, Invocation, MemoryWorld, Sandbox, SandboxConfig, World};
use wasmtime::{
    Engine, InstanceAllocationStrategy, Linker, Module, PoolingAllocationConfig, Store,
};

const WARMUP: usize = 500;
const SAMPLES: usize = 5_000;
/// Round-trip samples come in this many alternating blocks of `SAMPLES / BLOCKS`.
const BLOCKS: usize = 5;

fn micros(d: Duration) -> f64 {
    d.as_nanos() as f64 / 1000.0
}

/// Sorted samples of one measurement.
struct Samples {
    label: &'static str,
    times: Vec<Duration>,
}

impl Samples {
    fn new(label: &'static str) -> Self {
        Samples {
            label,
            times: Vec::with_capacity(SAMPLES),
        }
    }

    fn take(&mut self, count: usize, f: &mut dyn FnMut()) {
        for _ in 0..count {
            let start = Instant::now();
            f();
            self.times.push(start.elapsed());
        }
    }

    fn report(&self) -> Duration {
        let mut sorted = self.times.clone();
        sorted.sort();
        let p50 = sorted[sorted.len() / 2];
        let p99 = sorted[sorted.len() * 99 / 100];
        println!(
            "{:<58} p50 {:>8.1} µs   p99 {:>8.1} µs",
            self.label,
            micros(p50),
            micros(p99)
        );
        p50
    }
}

fn measure(label: &'static str, mut f: impl FnMut()) -> Duration {
    for _ in 0..WARMUP {
        f();
    }
    let mut samples = Samples::new(label);
    samples.take(SAMPLES, &mut f);
    samples.report()
}

fn floor() -> Duration {
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
    let new_sandbox = || {
        Sandbox::new(SandboxConfig {
            cache_dir: Some(cache.clone()),
            keep_resident_bytes: std::env::var("VALBOX_BENCH_KEEP_RESIDENT")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(SandboxConfig::default().keep_resident_bytes),
            ..SandboxConfig::default()
        })
        .unwrap()
    };
    let single_sandbox = new_sandbox();
    let calls_sandbox = new_sandbox();
    let source = "export function add(a, b) { return a + b }";
    let bytecode = single_sandbox.compile("add.js", source).unwrap();

    let floor_p50 = floor();

    // alice's code calls bob's add.
    let world = Arc::new(MemoryWorld::new());
    world.put_val("bob", "add", true, bytecode.clone());
    let world: Arc<dyn World> = world;
    let driver = |body: &str| {
        calls_sandbox
            .compile(
                "eval.js",
                &format!("export default function () {{ {body} }}"),
            )
            .unwrap()
    };
    let library_driver = driver("return @bob.add(1, 2)");
    let api_driver = driver("return api(@bob.add, 1, 2)");
    let round_trip = |driver: &[u8]| {
        let outcome = calls_sandbox.run(
            world.clone(),
            Invocation {
                frame: Frame::own(Some("alice"), Instant::now() + Duration::from_secs(5)),
                target: "eval".into(),
                bytecode: driver,
                export: "default",
                args: Arguments::Json("[]"),
                payer: Some("alice"),
            },
        );
        assert_eq!(outcome.result.unwrap(), "3");
    };
    let mut single = || {
        let out = single_sandbox.call(&bytecode, "add", "[1,2]");
        assert_eq!(out.result.unwrap(), "3");
    };
    if let Ok(n) = std::env::var("VALBOX_BENCH_SINGLE_LOOP") {
        for _ in 0..n.parse::<usize>().unwrap() {
            single();
        }
        return;
    }
    let mut library = || round_trip(&library_driver);
    let mut api = || round_trip(&api_driver);

    let mut measurements: [(Samples, &mut dyn FnMut()); 3] = [
        (
            Samples::new("sandbox.call: fresh instance, load + evaluate + add(1,2)"),
            &mut single,
        ),
        (
            Samples::new("library round trip: alice -> @bob.add(1,2)"),
            &mut library,
        ),
        (
            Samples::new("api round trip: alice -> api(@bob.add, 1, 2)"),
            &mut api,
        ),
    ];
    for (_, f) in measurements.iter_mut() {
        for _ in 0..WARMUP {
            f();
        }
    }
    for _ in 0..BLOCKS {
        for (samples, f) in measurements.iter_mut() {
            samples.take(SAMPLES / BLOCKS, *f);
        }
    }
    let call_p50 = measurements[0].0.report();
    println!(
        "ratio to floor (p50): {:.1}x",
        micros(call_p50) / micros(floor_p50)
    );
    let library_p50 = measurements[1].0.report();
    measurements[2].0.report();
    println!(
        "a library call adds {:.1} µs = {:.2}x the single call (target <= 2x)",
        micros(library_p50) - micros(call_p50),
        (micros(library_p50) - micros(call_p50)) / micros(call_p50)
    );

    // The web platform: a val's everyday first lines, on a sandbox of its own.
    let web_sandbox = new_sandbox();
    let web = web_sandbox.compile("web.js", WEB_SOURCE).unwrap();
    let mut web_samples = Samples::new("web call: new URL + crypto.randomUUID + HMAC-SHA256");
    let mut web_call = || {
        let out = web_sandbox.call(&web, "web", "[]");
        assert!(out.result.unwrap().starts_with("[\"https://example.com/x"));
    };
    web_samples.take(WARMUP, &mut web_call);
    web_samples.times.clear();
    web_samples.take(SAMPLES, &mut web_call);
    web_samples.report();

    // HTTP handlers as `/v1/express` runs them: the request as the host
    // describes it, the answer as the host reads it.
    let http_world: Arc<dyn World> = Arc::new(MemoryWorld::new());
    for (label, source) in [
        (
            "web-standard hello handler: (req) => new Response(\"hello\")",
            "export default (req) => new Response(\"hello\")",
        ),
        (
            "Express hello handler: (req, res) => res.send(\"hello\")",
            "export default (req, res) => res.send(\"hello\")",
        ),
    ] {
        let handler = web_sandbox.compile("hello.js", source).unwrap();
        let mut samples = Samples::new(label);
        let mut handle = || {
            let outcome = web_sandbox.run(
                http_world.clone(),
                Invocation {
                    frame: Frame::api("bench", 0, Instant::now() + Duration::from_secs(5)),
                    target: "hello".into(),
                    bytecode: &handler,
                    export: "default",
                    args: Arguments::ExpressRequest(EXPRESS_REQUEST),
                    payer: Some("bench"),
                },
            );
            let text = outcome.result.unwrap();
            assert!(text.contains(r#""body":"hello""#), "{text}");
        };
        if let Ok(n) = std::env::var("VALBOX_BENCH_HANDLER_LOOP") {
            if label.starts_with(&std::env::var("VALBOX_BENCH_HANDLER").unwrap_or_default()) {
                for _ in 0..n.parse::<usize>().unwrap() {
                    handle();
                }
            }
            continue;
        }
        samples.take(WARMUP, &mut handle);
        samples.times.clear();
        samples.take(SAMPLES, &mut handle);
        samples.report();
    }

    let handler = web_sandbox.compile("handler.js", HANDLER_SOURCE).unwrap();
    for (label, sandbox, bytecode, export) in [
        ("add(1,2)", &single_sandbox, &bytecode, "add"),
        ("web call", &web_sandbox, &web, "web"),
        ("Request + Response", &web_sandbox, &handler, "handler"),
    ] {
        let pages = sandbox.memory_pages(bytecode, export, "[1,2]").unwrap();
        let written = match pages.written {
            Some((written, runs)) => format!("writes {written} in {runs} runs"),
            None => "wrote pages not measurable here".into(),
        };
        let present = match pages.present_at_start {
            Some(present) => format!("; its slot had {present} pages mapped at the start"),
            None => String::new(),
        };
        println!(
            "memory of one instance, {label}: starts with {} pages of 4 KiB, ends with {}; the call changes {}, {written}{present}",
            pages.initial, pages.after, pages.dirtied
        );
    }
}

/// The request `/v1/express` describes for `wrk`'s `GET /v1/express/bench.web`.
const EXPRESS_REQUEST: &str = r#"{"method":"GET","url":"http://127.0.0.1:18180/","path":"/","originalUrl":"/v1/express/bench.web","baseUrl":"/v1/express/bench.web","query":{},"params":{},"headers":{"host":"127.0.0.1:18180"},"body":"","protocol":"http"}"#;

/// What `new URL` + `crypto.randomUUID()` + one HMAC-SHA256 costs.
/// What a web-standard HTTP handler's call does with the platform: a
/// `Request` as `/v1/express` builds it, a `Response`, its headers and body.
const HANDLER_SOURCE: &str = r#"export async function handler() {
  const req = new Request("http://localhost/", { method: "GET", headers: { host: "localhost", "user-agent": "wrk" } });
  const res = new Response("hello");
  const body = await res.arrayBuffer();
  return [req.method, res.status, Array.from(res.headers).length, body.byteLength];
}"#;

const WEB_SOURCE: &str = r#"export async function web() {
  const url = new URL("/x?user=ada", "https://example.com");
  const id = crypto.randomUUID();
  const key = await crypto.subtle.importKey("raw", new TextEncoder().encode("secret"), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  const mac = await crypto.subtle.sign("HMAC", key, new TextEncoder().encode(url.href + id));
  return [url.href, id.length, mac.byteLength];
}"#;

//! [`Sandbox`]: one wasmtime engine and guest image; every call — the one a
//! request makes and every val call inside it — gets a fresh store and
//! instance with its own frame, so nothing survives from one call to the next.

use crate::abi;
use crate::admission::{Admission, Payer};
use crate::capabilities;
use crate::config::SandboxConfig;
use crate::cpu_share::CpuShare;
use crate::error::{position_from_stack, CompileError, DeadlineExceeded, SandboxError};
use crate::evaluation::Evaluation;
use crate::frame::Frame;
use crate::image::ImageBuilder;
use crate::response_sink::ResponseSink;
use crate::source_map;
use crate::state::{CallState, CallTree, LogLine};
use crate::stats::{Counters, SandboxStats};
use crate::transform::transform_mapped;
use crate::world::{NoWorld, World};
use std::sync::Arc;
use std::time::{Duration, Instant};
use wasmtime::{
    Enabled, Engine, InstanceAllocationStrategy, InstancePre, Linker, PoolingAllocationConfig,
    Store, UpdateDeadline,
};

/// Native stack one instance may use. Deep JavaScript recursion ends here
/// (QuickJS's own stack check is not active in this wasm build): the call
/// ends with `RangeError: Maximum call stack size exceeded`, which the code
/// itself cannot catch. Host threads that run sandboxes need
/// `MAX_WASM_STACK * (max_depth + 1)` of stack plus room for the host
/// itself: see [`HOST_THREAD_STACK`].
const MAX_WASM_STACK: usize = 1 << 20;

/// Stack size for host threads that run sandbox calls (nested calls run on
/// the same thread, one wasm stack each).
pub const HOST_THREAD_STACK: usize = 64 << 20;

/// How often the epoch advances: deadlines are checked and turns of the
/// CPU handed on at every tick.
const EPOCH_TICK: Duration = Duration::from_millis(1);

/// How a run passes arguments and results (the WIT `run-mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RunMode {
    /// JSON in and out: own code and API mode.
    Json = 0,
    /// The tagged codec of library calls.
    Tagged = 1,
    /// Only read the export's value.
    Read = 2,
    /// Call an Express-style handler.
    Express = 3,
    /// Tagged arguments, a JSON result (scheduled runs).
    TaggedArgs = 4,
}

/// What a run is given.
#[derive(Debug, Clone, Copy)]
pub enum Arguments<'a> {
    /// A JSON array of arguments for the export.
    Json(&'a str),
    /// An HTTP request as JSON (`method`, `url` (absolute, for a web
    /// `Request`), `path`, `originalUrl`, `query`, `params`, `headers` (names
    /// in lower case), `body`, `protocol`) for an Express-style handler
    /// `(req, res)` or a web-standard one; the result is `{"status",
    /// "headers", "body"}`.
    ExpressRequest(&'a str),
    /// An array of arguments in the tagged codec of library calls (so a
    /// `{"$": "d", "v": ms}` arrives as a `Date`); the result is JSON.
    Tagged(&'a str),
}

/// What a call produced: the JSON result or the error, and the console lines
/// written before it ended either way.
#[derive(Debug)]
pub struct CallOutput {
    /// The JSON text of the result (`undefined` becomes `null`), or why there is none.
    pub result: Result<String, SandboxError>,
    /// Everything user code wrote with `console.*`, in order.
    pub logs: Vec<LogLine>,
}

/// What a run in a frame produced: the result and the trace of the whole call tree.
#[derive(Debug)]
pub struct Outcome {
    /// The JSON text of the result, or why there is none.
    pub result: Result<String, SandboxError>,
    /// The evaluation record of the root call, nested calls inside.
    pub evaluation: Evaluation,
    /// False when the call was refused before anything ran (no instance
    /// was free for it), so there is nothing to record.
    pub admitted: bool,
}

/// One run: whose code, as whom, with what.
pub struct Invocation<'a> {
    /// The frame the code runs in.
    pub frame: Frame,
    /// What the trace calls it (`@user.val@3`, `eval`).
    pub target: String,
    /// Bytecode from [`Sandbox::compile`].
    pub bytecode: &'a [u8],
    /// The export to call (or `default`).
    pub export: &'a str,
    /// What the export is given.
    pub args: Arguments<'a>,
    /// The user whose request this is (`None`: anonymous): every instance
    /// of the call tree counts against their share of the pool.
    pub payer: Option<&'a str>,
}

/// The sandbox: compiles JavaScript to bytecode and runs it, each call in a
/// fresh instance under the configured limits.
pub struct Sandbox {
    shared: Arc<Shared>,
}

/// What every store of a sandbox shares; host imports reach it to start
/// nested calls.
pub(crate) struct Shared {
    pub(crate) config: SandboxConfig,
    /// Who runs guest code now; see [`CpuShare`].
    pub(crate) cpu: CpuShare,
    /// What operators watch.
    pub(crate) counters: Counters,
    /// Instances held, by payer; see [`Admission`].
    pub(crate) admission: Admission,
    engine: Engine,
    runtime: InstancePre<CallState>,
}

impl Sandbox {
    /// Sets up the engine (pooling allocator, copy-on-write memory images,
    /// epoch interruption) and loads the runtime image, from the cache when
    /// `config.cache_dir` has it.
    pub fn new(config: SandboxConfig) -> Result<Self, SandboxError> {
        let mut pooling = PoolingAllocationConfig::new();
        pooling
            .total_memories(config.max_instances)
            .total_tables(config.max_instances)
            .total_core_instances(config.max_instances)
            .max_memory_size(config.memory_limit)
            .table_elements(100_000)
            .linear_memory_keep_resident(config.keep_resident_bytes)
            .pagemap_scan(Enabled::Auto)
            .table_keep_resident(64 << 10);
        let mut engine_config = wasmtime::Config::new();
        engine_config
            .epoch_interruption(true)
            .max_wasm_stack(MAX_WASM_STACK)
            .memory_init_cow(true)
            // The image in a memfd even when the module is mapped from the
            // cache file: only then can the vendored wasmtime turn the
            // kernel's fault-around off for it, which keeps each slot's
            // reset walk to the pages instances really touch (docs/perf.md).
            .force_memory_init_memfd(true)
            // A full 4 GiB of address space per memory (never backed beyond
            // what is touched; growth stops at `memory_limit`) lets Cranelift
            // drop the bounds check on every load and store: ~10 % faster
            // calls (docs/perf.md).
            .memory_reservation(1 << 32)
            .memory_reservation_for_growth(0)
            .allocation_strategy(InstanceAllocationStrategy::Pooling(pooling));
        let engine = Engine::new(&engine_config)
            .map_err(|e| SandboxError::setup("creating the engine", e))?;
        let mut linker = Linker::new(&engine);
        abi::define_wasi_shim(&mut linker).map_err(|e| SandboxError::setup("linking", e))?;
        capabilities::define(&mut linker).map_err(|e| SandboxError::setup("linking", e))?;
        crate::timers::define(&mut linker).map_err(|e| SandboxError::setup("linking", e))?;
        let module = ImageBuilder::new(&engine, config.cache_dir.clone())?.runtime_image()?;
        let runtime = linker
            .instantiate_pre(&module)
            .map_err(|e| SandboxError::setup("pre-instantiating the runtime image", e))?;
        start_epoch_ticker(&engine);
        Ok(Sandbox {
            shared: Arc::new(Shared {
                cpu: CpuShare::new(config.cpu_turns),
                counters: Counters::default(),
                admission: Admission::new(config.max_instances, config.user_instance_share),
                config,
                engine,
                runtime,
            }),
        })
    }

    /// Instances and refusals so far, for metrics.
    pub fn stats(&self) -> SandboxStats {
        let admission = &self.shared.admission;
        self.shared.counters.snapshot(
            admission.in_use(),
            self.shared.config.max_instances,
            admission.per_user(),
            admission.refusals(),
        )
    }

    /// The settings this sandbox was built with.
    pub fn config(&self) -> &SandboxConfig {
        &self.shared.config
    }

    /// Compiles an ES module to QuickJS bytecode, after rewriting its `@`
    /// references. `name` appears in stacks and error positions.
    pub fn compile(&self, name: &str, source: &str) -> Result<Vec<u8>, SandboxError> {
        self.shared.compile(name, source)
    }

    /// Runs `export` (or `default`) of `bytecode` with the JSON array
    /// `args_json` as anonymous code with no vals, secrets or email around
    /// (what `valbox run` does).
    pub fn call(&self, bytecode: &[u8], export: &str, args_json: &str) -> CallOutput {
        let outcome = self.run(
            Arc::new(NoWorld),
            Invocation {
                frame: Frame::own(None, Instant::now() + self.shared.config.deadline),
                target: "main".into(),
                bytecode,
                export,
                args: Arguments::Json(args_json),
                payer: None,
            },
        );
        CallOutput {
            result: outcome.result,
            logs: outcome.evaluation.logs,
        }
    }

    /// Runs `invocation` in a fresh instance with its frame; val references
    /// reach `world` through the policy.
    pub fn run(&self, world: Arc<dyn World>, invocation: Invocation<'_>) -> Outcome {
        self.run_answering(world, invocation, None)
    }

    /// Like [`Sandbox::run`] for a call answering an HTTP request: a
    /// `Response` with a stream body that it returns goes out through
    /// `sink` as the stream yields it (see [`ResponseSink`]).
    pub fn run_answering(
        &self,
        world: Arc<dyn World>,
        invocation: Invocation<'_>,
        sink: Option<Arc<dyn ResponseSink>>,
    ) -> Outcome {
        let (mode, args) = match invocation.args {
            Arguments::Json(args) => (RunMode::Json, args),
            Arguments::ExpressRequest(request) => (RunMode::Express, request),
            Arguments::Tagged(args) => (RunMode::TaggedArgs, args),
        };
        let limit = self.shared.config.max_args_bytes;
        if args.len() > limit {
            let mut evaluation = Evaluation::start(invocation.target, &invocation.frame);
            let error = SandboxError::Limit(format!(
                "the arguments are {} bytes, more than the limit of {limit} bytes",
                args.len()
            ));
            evaluation.error = Some(error.to_string());
            return Outcome {
                result: Err(error),
                evaluation,
                admitted: true,
            };
        }
        let request = abi::run_request(invocation.bytecode, invocation.export, mode, args);
        // A new tree, with a budget of its own.
        let tree = CallTree::answering(Payer::user(invocation.payer), sink);
        let (result, mut evaluation) = self.shared.run_in_frame(
            world,
            invocation.frame,
            tree.clone(),
            invocation.target,
            "run",
            &request,
        );
        if tree.denied() {
            evaluation.explain_denials();
        }
        let result = source_map::remap_thrown(invocation.bytecode, result);
        Outcome {
            admitted: !matches!(result, Err(SandboxError::Capacity(_)))
                || !evaluation.calls.is_empty(),
            result: result.and_then(into_text),
            evaluation,
        }
    }
}

/// What one call does to its instance's linear memory (see
/// [`Sandbox::memory_pages`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryPages {
    /// 4 KiB pages of linear memory the fresh instance starts with.
    pub initial: usize,
    /// 4 KiB pages of linear memory after the call (more when it grew).
    pub after: usize,
    /// 4 KiB pages whose content the call changed (pages it grew count
    /// when they hold anything).
    pub dirtied: usize,
    /// Pages of the instance's memory that hold a private copy after the
    /// call (written by this call or an earlier one in the same pooled slot,
    /// also when written back to the same value, such as reference counts
    /// going up and down), and in how many separate runs they lie, from
    /// `/proc/self/pagemap`; `None` where that is not readable. These are
    /// the pages wasmtime copies back when it resets the slot, and its reset
    /// scan stops after 32 runs and unmaps the rest (to be faulted in again
    /// by the next call), so both are a call's memory cost.
    pub written: Option<(usize, usize)>,
    /// Pages of the pooled slot that were mapped when the instance started:
    /// what earlier calls in the slot touched (and, where the kernel maps
    /// neighbours on a fault, their neighbours). Every reset of the slot
    /// looks at each of them; `None` where `/proc/self/pagemap` is not readable.
    pub present_at_start: Option<usize>,
}

impl Sandbox {
    /// Runs `export` of `bytecode` like [`Sandbox::call`] and reports the
    /// linear-memory pages the fresh instance started with and the pages
    /// the call changed (measured by comparing memory before and after; for
    /// benchmarks and docs/perf.md, not for serving).
    pub fn memory_pages(
        &self,
        bytecode: &[u8],
        export: &str,
        args_json: &str,
    ) -> Result<MemoryPages, SandboxError> {
        const PAGE: usize = 4096;
        let shared = &self.shared;
        let frame = Frame::own(None, Instant::now() + shared.config.deadline);
        let tree = CallTree::new(Payer::Pool);
        let _lease = shared
            .admission
            .acquire(&tree.payer, true)
            .map_err(SandboxError::Capacity)?;
        let mut store = Store::new(
            &shared.engine,
            CallState::new(frame, shared.clone(), Arc::new(NoWorld), tree.clone()),
        );
        store.limiter(|state| &mut state.limits);
        store.set_epoch_deadline(1 << 40);
        let trap = |e: wasmtime::Error| abi::classify_trap(e, shared.config.deadline);
        let instance = shared.runtime.instantiate(&mut store).map_err(trap)?;
        let memory = instance
            .get_memory(&mut store, "memory")
            .ok_or_else(|| SandboxError::Trap("the guest exports no memory".into()))?;
        let present_at_start =
            slot_pages(memory.data_ptr(&store) as usize, memory.data_size(&store))
                .map(|pages| pages.present);
        let before = memory.data(&store).to_vec();
        let request = abi::run_request(bytecode, export, RunMode::Json, args_json);
        abi::call_export(&mut store, &instance, "run", &request, usize::MAX)
            .map_err(trap)??
            .map_err(SandboxError::Thrown)?;
        let written = slot_pages(memory.data_ptr(&store) as usize, before.len())
            .map(|pages| (pages.private, pages.private_runs));
        let after = memory.data(&store);
        let dirtied = after
            .chunks(PAGE)
            .enumerate()
            .filter(|(i, page)| match before.get(i * PAGE..(i + 1) * PAGE) {
                Some(old) => old != *page,
                None => page.iter().any(|b| *b != 0),
            })
            .count();
        Ok(MemoryPages {
            initial: before.len() / PAGE,
            after: after.len() / PAGE,
            dirtied,
            written,
            present_at_start,
        })
    }
}

/// What `/proc/self/pagemap` says of the pages in `[start, start + len)`.
struct SlotPages {
    /// Pages mapped (bit 63).
    present: usize,
    /// Mapped pages that are private copies (not a file or shared page, bit 61).
    private: usize,
    /// Separate runs the private pages form.
    private_runs: usize,
}

/// Reads [`SlotPages`] for `[start, start + len)` (Linux only).
fn slot_pages(start: usize, len: usize) -> Option<SlotPages> {
    use std::io::{Read, Seek, SeekFrom};
    const PAGE: usize = 4096;
    let mut pagemap = std::fs::File::open("/proc/self/pagemap").ok()?;
    pagemap
        .seek(SeekFrom::Start((start / PAGE * 8) as u64))
        .ok()?;
    let mut entries = vec![0u8; len / PAGE * 8];
    pagemap.read_exact(&mut entries).ok()?;
    let mut pages = SlotPages {
        present: 0,
        private: 0,
        private_runs: 0,
    };
    let mut previous = false;
    for entry in entries.chunks(8) {
        let bits = u64::from_le_bytes(entry.try_into().ok()?);
        let present = bits >> 63 & 1 == 1;
        let private = present && bits >> 61 & 1 == 0;
        pages.present += usize::from(present);
        if private {
            pages.private += 1;
            if !previous {
                pages.private_runs += 1;
            }
        }
        previous = private;
    }
    Some(pages)
}

/// The description `{status, headers, body, latin1}` of a `Response` the
/// called export returned, when `result` (a JSON-mode result) is one rather
/// than a JSON value: `/v1/run` answers with that Response, `api()` and the
/// other JSON paths pass the description on as JSON.
pub fn returned_response(result: &str) -> Option<&str> {
    result.strip_prefix('\u{1}')
}

fn into_text(response: abi::GuestResponse) -> Result<String, SandboxError> {
    let payload = response.map_err(SandboxError::Thrown)?;
    String::from_utf8(payload)
        .map_err(|_| SandboxError::Trap("the guest returned text that is not UTF-8".into()))
}

impl Shared {
    pub(crate) fn compile(
        self: &Arc<Self>,
        name: &str,
        source: &str,
    ) -> Result<Vec<u8>, SandboxError> {
        let (source, map) = transform_mapped(source).map_err(|e| {
            SandboxError::Compile(CompileError {
                message: format!("SyntaxError: {}", e.message),
                line: Some(e.line),
                column: Some(e.column),
            })
        })?;
        let request = abi::encode_request(&[name.as_bytes(), source.as_bytes()]);
        let frame = Frame::own(None, Instant::now() + self.config.deadline);
        let (result, _) = self.run_in_frame(
            Arc::new(NoWorld),
            frame,
            CallTree::new(Payer::Pool),
            "compile".into(),
            "compile",
            &request,
        );
        match result? {
            Ok(bytecode) => Ok(source_map::attach(bytecode, name, &map)),
            Err(error) => {
                let (mut line, mut column) = position_from_stack(&error.stack);
                if error.name == "SyntaxError" {
                    match source_map::syntax_error_position(&source, &map) {
                        Some((at_line, at_column)) => {
                            (line, column) = (Some(at_line), Some(at_column))
                        }
                        None => {
                            column = line.zip(column).map(|(l, c)| map.original_column(l, c));
                        }
                    }
                }
                Err(SandboxError::Compile(CompileError {
                    message: format!("{}: {}", error.name, error.message),
                    line,
                    column,
                }))
            }
        }
    }

    /// One fresh store and instance in `frame`, one export call, then
    /// everything is dropped. The deadline is the frame's; the instance is
    /// admitted against the tree's payer first (see [`Admission`]).
    pub(crate) fn run_in_frame(
        self: &Arc<Self>,
        world: Arc<dyn World>,
        frame: Frame,
        tree: Arc<CallTree>,
        target: String,
        export: &str,
        request: &[u8],
    ) -> (Result<abi::GuestResponse, SandboxError>, Evaluation) {
        let mut evaluation = Evaluation::start(target, &frame);
        let root = frame.depth == 0 && matches!(tree.payer, Payer::User(_));
        let _lease = match self.admission.acquire(&tree.payer, root) {
            Ok(lease) => lease,
            Err(refused) => {
                evaluation.error = Some(refused.to_string());
                return (Err(SandboxError::Capacity(refused)), evaluation);
            }
        };
        let _in_tree = self.cpu.enter();
        let started = Instant::now();
        let deadline = frame.deadline;
        let mut store = Store::new(
            &self.engine,
            CallState::new(frame, self.clone(), world, tree.clone()),
        );
        store.limiter(|state| &mut state.limits);
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(move |store| {
            if Instant::now() >= deadline {
                return Err(DeadlineExceeded.into());
            }
            store.data().shared.cpu.tick();
            Ok(UpdateDeadline::Continue(1))
        });
        let instantiating = Instant::now();
        let instance = self.runtime.instantiate(&mut store);
        self.counters.instance_started(instantiating.elapsed());
        let result = instance.and_then(|instance| {
            abi::call_export(
                &mut store,
                &instance,
                export,
                request,
                self.config.max_result_bytes,
            )
        });
        let result = match result {
            Ok(response) => response,
            Err(trap) => Err(abi::classify_trap(trap, self.config.deadline)),
        };
        let state = store.data_mut();
        state.report_dropped_fetches();
        evaluation.logs = std::mem::take(&mut state.logs);
        evaluation.calls = std::mem::take(&mut state.calls);
        evaluation.denials = state.denials.take();
        evaluation.duration_us = started.elapsed().as_micros() as u64;
        match &result {
            Ok(Ok(_)) => evaluation.ok = true,
            Ok(Err(thrown)) => evaluation.error = Some(thrown.to_string()),
            Err(error) => evaluation.error = Some(error.to_string()),
        }
        (result, evaluation)
    }
}

/// Advances the engine's epoch every [`EPOCH_TICK`] until the engine is dropped.
fn start_epoch_ticker(engine: &Engine) {
    let weak = engine.weak();
    std::thread::Builder::new()
        .name("valbox-epoch".into())
        .spawn(move || loop {
            std::thread::sleep(EPOCH_TICK);
            match weak.upgrade() {
                Some(engine) => engine.increment_epoch(),
                None => return,
            }
        })
        .expect("spawning the epoch thread");
}

//! [`Sandbox`]: one wasmtime engine and guest image; every call gets a fresh
//! store and instance, so nothing survives from one call to the next.

use crate::abi;
use crate::config::SandboxConfig;
use crate::error::{position_from_stack, CompileError, SandboxError};
use crate::image::ImageBuilder;
use crate::state::{CallState, LogLine};
use std::sync::OnceLock;
use std::time::Duration;
use wasmtime::{Engine, InstancePre, InstanceAllocationStrategy, Linker, PoolingAllocationConfig, Store};

/// How often the epoch advances; deadlines are rounded up to it.
const EPOCH_TICK: Duration = Duration::from_millis(1);
/// Pooled memory pages kept resident between instances: the pages every call
/// touches stay mapped instead of faulting in again.
const KEEP_RESIDENT_BYTES: usize = 4 << 20;

/// The code a call runs.
#[derive(Clone, Copy)]
pub enum Code<'a> {
    /// Bytecode from [`Sandbox::compile`], loaded and evaluated in the call.
    Bytecode(&'a [u8]),
    /// A val image from [`Sandbox::prepare`]: the module is already evaluated.
    Prepared(&'a PreparedVal),
}

/// A val whose evaluated module is part of its own pre-initialized image, so
/// calls skip loading and evaluating it. Costs one compiled image in memory.
pub struct PreparedVal {
    instance_pre: InstancePre<CallState>,
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

/// The sandbox: compiles JavaScript to bytecode and runs it, each call in a
/// fresh instance under the configured limits.
pub struct Sandbox {
    config: SandboxConfig,
    engine: Engine,
    linker: Linker<CallState>,
    runtime: InstancePre<CallState>,
    images: ImageBuilder,
    runtime_wasm: OnceLock<Vec<u8>>,
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
            .linear_memory_keep_resident(KEEP_RESIDENT_BYTES)
            .table_keep_resident(64 << 10);
        let mut engine_config = wasmtime::Config::new();
        engine_config
            .epoch_interruption(true)
            .memory_init_cow(true)
            .memory_reservation(config.memory_limit as u64)
            .memory_reservation_for_growth(0)
            .allocation_strategy(InstanceAllocationStrategy::Pooling(pooling));
        let engine =
            Engine::new(&engine_config).map_err(|e| SandboxError::setup("creating the engine", e))?;
        let mut linker = Linker::new(&engine);
        abi::define_imports(&mut linker).map_err(|e| SandboxError::setup("linking", e))?;
        let images = ImageBuilder::new(&engine, config.cache_dir.clone())?;
        let module = images.runtime_image()?;
        let runtime = linker
            .instantiate_pre(&module)
            .map_err(|e| SandboxError::setup("pre-instantiating the runtime image", e))?;
        start_epoch_ticker(&engine);
        Ok(Sandbox {
            config,
            engine,
            linker,
            runtime,
            images,
            runtime_wasm: OnceLock::new(),
        })
    }

    /// The settings this sandbox was built with.
    pub fn config(&self) -> &SandboxConfig {
        &self.config
    }

    /// Compiles an ES module to QuickJS bytecode. `name` appears in stacks
    /// and error positions.
    pub fn compile(&self, name: &str, source: &str) -> Result<Vec<u8>, SandboxError> {
        let request = abi::encode_request(&[name.as_bytes(), source.as_bytes()]);
        let (result, _logs) = self.run_export(&self.runtime, "compile", &request);
        result?.map_err(|error| {
            let (line, column) = position_from_stack(&error.stack);
            SandboxError::Compile(CompileError {
                message: format!("{}: {}", error.name, error.message),
                line,
                column,
            })
        })
    }

    /// Runs `export` (or `default`) of `code` with the JSON array `args_json`
    /// in a fresh instance.
    pub fn call(&self, code: Code<'_>, export: &str, args_json: &str) -> CallOutput {
        let (bytecode, instance_pre) = match code {
            Code::Bytecode(bytecode) => (bytecode, &self.runtime),
            Code::Prepared(prepared) => (&[][..], &prepared.instance_pre),
        };
        let request = abi::encode_request(&[bytecode, export.as_bytes(), args_json.as_bytes()]);
        let (result, logs) = self.run_export(instance_pre, "run", &request);
        let result = result.and_then(|response| {
            let payload = response.map_err(SandboxError::Thrown)?;
            String::from_utf8(payload)
                .map_err(|_| SandboxError::Trap("the guest returned text that is not UTF-8".into()))
        });
        CallOutput { result, logs }
    }

    /// Builds a val image for `bytecode` (a hot val): calls then skip loading
    /// and evaluating the module. Refused when the module's top-level code
    /// uses the host, since its effects would be frozen into the image.
    pub fn prepare(&self, bytecode: &[u8]) -> Result<PreparedVal, SandboxError> {
        let runtime_wasm = match self.runtime_wasm.get() {
            Some(wasm) => wasm,
            None => {
                let wasm = self.images.runtime_wasm()?;
                self.runtime_wasm.get_or_init(|| wasm)
            }
        };
        let module = self.images.val_image(runtime_wasm, bytecode)?;
        let instance_pre = self
            .linker
            .instantiate_pre(&module)
            .map_err(|e| SandboxError::setup("pre-instantiating the val image", e))?;
        Ok(PreparedVal { instance_pre })
    }

    /// One fresh store and instance, one export call, then everything is dropped.
    fn run_export(
        &self,
        instance_pre: &InstancePre<CallState>,
        export: &str,
        request: &[u8],
    ) -> (Result<abi::GuestResponse, SandboxError>, Vec<LogLine>) {
        let mut store = Store::new(
            &self.engine,
            CallState::for_call(self.config.memory_limit, self.config.max_log_bytes),
        );
        store.limiter(|state| &mut state.limits);
        store.set_epoch_deadline(deadline_ticks(self.config.deadline));
        store.epoch_deadline_trap();
        let result = instance_pre
            .instantiate(&mut store)
            .and_then(|instance| abi::call_export(&mut store, &instance, export, request));
        let result = match result {
            Ok(response) => response,
            Err(trap) => Err(abi::classify_trap(trap, self.config.deadline)),
        };
        (result, std::mem::take(&mut store.data_mut().logs))
    }
}

fn deadline_ticks(deadline: Duration) -> u64 {
    (deadline.as_nanos() / EPOCH_TICK.as_nanos()) as u64 + 1
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

//! [`Sandbox`]: one wasmtime engine and guest image; every call gets a fresh
//! store and instance, so nothing survives from one call to the next.

use crate::abi;
use crate::config::SandboxConfig;
use crate::error::{position_from_stack, CompileError, SandboxError};
use crate::image::ImageBuilder;
use crate::state::{CallState, LogLine};
use std::time::Duration;
use wasmtime::{
    Enabled, Engine, InstanceAllocationStrategy, InstancePre, Linker, PoolingAllocationConfig,
    Store,
};

/// How often the epoch advances; deadlines are rounded up to it.
const EPOCH_TICK: Duration = Duration::from_millis(1);

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
            .memory_init_cow(true)
            .memory_reservation(config.memory_limit as u64)
            .memory_reservation_for_growth(0)
            .allocation_strategy(InstanceAllocationStrategy::Pooling(pooling));
        let engine = Engine::new(&engine_config)
            .map_err(|e| SandboxError::setup("creating the engine", e))?;
        let mut linker = Linker::new(&engine);
        abi::define_imports(&mut linker).map_err(|e| SandboxError::setup("linking", e))?;
        let module = ImageBuilder::new(&engine, config.cache_dir.clone())?.runtime_image()?;
        let runtime = linker
            .instantiate_pre(&module)
            .map_err(|e| SandboxError::setup("pre-instantiating the runtime image", e))?;
        start_epoch_ticker(&engine);
        Ok(Sandbox {
            config,
            engine,
            runtime,
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
        let (result, _logs) = self.run_export("compile", &request);
        result?.map_err(|error| {
            let (line, column) = position_from_stack(&error.stack);
            SandboxError::Compile(CompileError {
                message: format!("{}: {}", error.name, error.message),
                line,
                column,
            })
        })
    }

    /// Runs `export` (or `default`) of the module `bytecode` (from
    /// [`Sandbox::compile`]) with the JSON array `args_json`, in a fresh instance.
    pub fn call(&self, bytecode: &[u8], export: &str, args_json: &str) -> CallOutput {
        let request = abi::encode_request(&[bytecode, export.as_bytes(), args_json.as_bytes()]);
        let (result, logs) = self.run_export("run", &request);
        let result = result.and_then(|response| {
            let payload = response.map_err(SandboxError::Thrown)?;
            String::from_utf8(payload)
                .map_err(|_| SandboxError::Trap("the guest returned text that is not UTF-8".into()))
        });
        CallOutput { result, logs }
    }

    /// One fresh store and instance, one export call, then everything is dropped.
    fn run_export(
        &self,
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
        let result = self
            .runtime
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

//! The runtime image: the QuickJS guest pre-initialized with Wizer (runtime
//! built, globals installed) and compiled for the engine. The compiled image
//! is cached on disk, keyed by the guest's hash and the engine's settings.

use crate::abi;
use crate::error::SandboxError;
use std::future::Future;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use wasmtime::{Engine, Linker, Module, Store};
use wasmtime_wizer::{WasmtimeWizer, Wizer};

/// The guest module as built from `guest-js/` (never committed, see `build.rs`).
pub static GUEST_WASM: &[u8] = include_bytes!(env!("VALBOX_GUEST_WASM"));
/// SHA-256 of [`GUEST_WASM`]; bytecode compiled by another guest must be recompiled.
pub const GUEST_SHA256: &str = env!("VALBOX_GUEST_SHA256");
/// What compiled bytecode depends on: the guest, and the format of the
/// column map valbox appends to it (`source_map.rs`). Stored bytecode of
/// another format is compiled again from its source.
pub const BYTECODE_FORMAT: &str = concat!(env!("VALBOX_GUEST_SHA256"), "+columns1");

const INIT_FUNC: &str = "initialize-runtime";

/// Compiles guest images for `engine`, caching compiled artifacts in `cache_dir`.
pub(crate) struct ImageBuilder {
    engine: Engine,
    /// Engine that runs Wizer's one-off initializations (no epoch, no pooling).
    init_engine: Engine,
    cache_dir: Option<PathBuf>,
    /// Part of every cache key: guest hash and engine compatibility hash.
    key: String,
}

impl ImageBuilder {
    pub(crate) fn new(engine: &Engine, cache_dir: Option<PathBuf>) -> Result<Self, SandboxError> {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        let key = format!("{}-{:016x}", &GUEST_SHA256[..16], hasher.finish());
        let mut init_config = wasmtime::Config::new();
        init_config.cranelift_opt_level(wasmtime::OptLevel::None);
        let init_engine =
            Engine::new(&init_config).map_err(|e| SandboxError::setup("init engine", e))?;
        if let Some(dir) = &cache_dir {
            std::fs::create_dir_all(dir)
                .map_err(|e| SandboxError::setup(&format!("creating {}", dir.display()), e))?;
        }
        Ok(ImageBuilder {
            engine: engine.clone(),
            init_engine,
            cache_dir,
            key,
        })
    }

    /// The runtime image: the guest with QuickJS initialized and the
    /// globals installed, compiled for the engine.
    pub(crate) fn runtime_image(&self) -> Result<Module, SandboxError> {
        self.cached(&format!("runtime-{}", self.key), || {
            let snapshot = self.initialized_guest()?;
            self.engine
                .precompile_module(&snapshot)
                .map_err(|e| SandboxError::setup("compiling the runtime image", e))
        })
    }

    /// Runs the guest's `initialize-runtime` under Wizer and returns the snapshot.
    fn initialized_guest(&self) -> Result<Vec<u8>, SandboxError> {
        let mut wizer = Wizer::new();
        wizer.init_func(INIT_FUNC);
        let (context, instrumented) = wizer
            .instrument(GUEST_WASM)
            .map_err(|e| SandboxError::setup("instrumenting the guest", e))?;
        let module = Module::new(&self.init_engine, &instrumented)
            .map_err(|e| SandboxError::setup("compiling the guest for initialization", e))?;
        // Initialization may read the clock and randomness (Rust's hash
        // seeds); no capability is there.
        let mut linker = Linker::new(&self.init_engine);
        abi::define_wasi_shim(&mut linker)
            .and_then(|_| linker.define_unknown_imports_as_traps(&module))
            .map_err(|e| SandboxError::setup("linking", e))?;
        let mut store = Store::new(&self.init_engine, ());
        let instance = linker
            .instantiate(&mut store, &module)
            .and_then(|instance| {
                instance
                    .get_typed_func::<(), ()>(&mut store, INIT_FUNC)?
                    .call(&mut store, ())?;
                Ok(instance)
            })
            .map_err(|e| SandboxError::setup("initializing the guest", e))?;
        block_on(wizer.snapshot(
            &context,
            &mut WasmtimeWizer {
                store: &mut store,
                instance,
            },
        ))
        .map_err(|e| SandboxError::setup("snapshotting the guest", e))
    }

    /// Loads the compiled image `name` from the cache, or builds and caches it.
    fn cached(
        &self,
        name: &str,
        build: impl FnOnce() -> Result<Vec<u8>, SandboxError>,
    ) -> Result<Module, SandboxError> {
        let path = self
            .cache_dir
            .as_ref()
            .map(|d| d.join(format!("{name}.cwasm")));
        if let Some(path) = &path {
            if path.exists() {
                // SAFETY: the cache folder is valbox's own and the file name
                // carries the engine's compatibility hash; a file that fails
                // to load is rebuilt below.
                if let Ok(module) = unsafe { Module::deserialize_file(&self.engine, path) } {
                    return Ok(module);
                }
            }
        }
        let compiled = build()?;
        if let Some(path) = &path {
            write_atomically(path, &compiled);
            remove_stale_images(path);
        }
        // SAFETY: `compiled` was produced by `precompile_module` on this engine just now.
        unsafe { Module::deserialize(&self.engine, &compiled) }
            .map_err(|e| SandboxError::setup("loading the compiled image", e))
    }
}

/// Best-effort cache write: a failure only costs a recompile next time.
fn write_atomically(path: &Path, bytes: &[u8]) {
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    if std::fs::write(&tmp, bytes).is_ok() && std::fs::rename(&tmp, path).is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
}

/// Deletes images left by other guest builds or engine settings, so the
/// cache folder holds one image instead of one per upgrade.
fn remove_stale_images(current: &Path) {
    let (Some(dir), Some(name)) = (current.parent(), current.file_name()) else {
        return;
    };
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let other = entry.file_name();
        let other = other.to_string_lossy();
        if other.starts_with("runtime-")
            && other.ends_with(".cwasm")
            && *other != *name.to_string_lossy()
        {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// Drives one of Wizer's futures; with a wasmtime instance they never wait.
fn block_on<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    let mut context = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(value) = future.as_mut().poll(&mut context) {
            return value;
        }
        std::thread::yield_now();
    }
}

//! valbox's sandbox: QuickJS compiled to WebAssembly, pre-initialized with
//! Wizer, and run in a fresh wasmtime instance for every call.
//!
//! ```no_run
//! use valbox_runtime::{Sandbox, SandboxConfig};
//! let sandbox = Sandbox::new(SandboxConfig::default()).unwrap();
//! let bytecode = sandbox.compile("add.js", "export function add(a, b) { return a + b }").unwrap();
//! let output = sandbox.call(&bytecode, "add", "[1, 2]");
//! assert_eq!(output.result.unwrap(), "3");
//! ```

#![warn(missing_docs)]

mod abi;
mod admission;
mod budget;
mod capabilities;
mod config;
mod cpu_share;
mod error;
mod evaluation;
pub mod fetch;
mod frame;
mod image;
mod in_flight;
pub mod policy;
mod response_sink;
mod sandbox;
mod source_map;
mod state;
mod stats;
mod timers;
pub mod transform;
mod world;

pub use admission::{Capacity, CapacityScope};
pub use budget::CallBudgets;
pub use config::SandboxConfig;
pub use error::{CompileError, JsError, SandboxError};
pub use evaluation::{Denial, Evaluation, Use};
pub use frame::{Frame, Mode};
pub use image::{BYTECODE_FORMAT, GUEST_SHA256, GUEST_WASM};
pub use response_sink::ResponseSink;
pub use sandbox::{
    returned_response, Arguments, CallOutput, Invocation, MemoryPages, Outcome, Sandbox,
    HOST_THREAD_STACK,
};
pub use state::{LogLevel, LogLine};
pub use stats::SandboxStats;
pub use world::{Email, MemoryWorld, StoredVal, World};

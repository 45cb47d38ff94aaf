//! The host side of the guest's core-module ABI (the WIT world in
//! `wit/valbox.wit`, mapped as `guest-js/src/lib.rs` describes): memory
//! access for the `valbox` imports (which live in `capabilities/`), a minimal
//! WASI preview-1 shim, and calling guest exports.
//!
//! The WASI shim gives the guest only what QuickJS needs: a clock, randomness,
//! an empty environment and no files. No `WasiCtx` is built per call.

use crate::error::{user_frames, DeadlineExceeded, JsError, LimitExceeded, SandboxError};
use crate::sandbox::RunMode;
use crate::state::CallState;
use wasmtime::{Caller, Extern, Instance, Linker, Memory, Store};

const WASI: &str = "wasi_snapshot_preview1";
const ERRNO_SUCCESS: i32 = 0;
const ERRNO_BADF: i32 = 8;
const ERRNO_INVAL: i32 = 28;

/// Adds the WASI preview-1 functions the guest imports.
pub(crate) fn define_wasi_shim<T: 'static>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
    linker.func_wrap(
        WASI,
        "clock_time_get",
        |mut caller: Caller<'_, T>, clock: i32, _precision: i64, out: i32| {
            let nanos: u64 = match clock {
                0 => std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_nanos() as u64)
                    .unwrap_or(0),
                1..=3 => monotonic_nanos(),
                _ => return Ok(ERRNO_INVAL),
            };
            write_bytes(&mut caller, out, &nanos.to_le_bytes())?;
            Ok(ERRNO_SUCCESS)
        },
    )?;
    linker.func_wrap(
        WASI,
        "random_get",
        |mut caller: Caller<'_, T>, ptr: i32, len: i32| {
            let mut bytes = vec![0u8; len as u32 as usize];
            getrandom::fill(&mut bytes).map_err(|e| wasmtime::Error::msg(e.to_string()))?;
            write_bytes(&mut caller, ptr, &bytes)?;
            Ok(ERRNO_SUCCESS)
        },
    )?;
    // An empty environment.
    linker.func_wrap(
        WASI,
        "environ_sizes_get",
        |mut caller: Caller<'_, T>, count: i32, size: i32| {
            write_bytes(&mut caller, count, &0u32.to_le_bytes())?;
            write_bytes(&mut caller, size, &0u32.to_le_bytes())?;
            Ok(ERRNO_SUCCESS)
        },
    )?;
    linker.func_wrap(WASI, "environ_get", |_: i32, _: i32| ERRNO_SUCCESS)?;
    // No files: stdout/stderr writes are accepted and dropped (user output
    // goes through `console`, which is the `log` import).
    linker.func_wrap(
        WASI,
        "fd_write",
        |mut caller: Caller<'_, T>, fd: i32, iovs: i32, iovs_len: i32, written: i32| {
            if fd != 1 && fd != 2 {
                return Ok(ERRNO_BADF);
            }
            let mut total: u32 = 0;
            for i in 0..iovs_len as u32 {
                let entry = read_bytes(&mut caller, iovs + (i * 8) as i32, 8)?;
                total = total.wrapping_add(u32::from_le_bytes(entry[4..8].try_into().unwrap()));
            }
            write_bytes(&mut caller, written, &total.to_le_bytes())?;
            Ok(ERRNO_SUCCESS)
        },
    )?;
    linker.func_wrap(WASI, "fd_read", |_: i32, _: i32, _: i32, _: i32| ERRNO_BADF)?;
    linker.func_wrap(WASI, "fd_close", |_: i32| ERRNO_BADF)?;
    linker.func_wrap(WASI, "fd_fdstat_get", |_: i32, _: i32| ERRNO_BADF)?;
    linker.func_wrap(WASI, "fd_seek", |_: i32, _: i64, _: i32, _: i32| ERRNO_BADF)?;
    linker.func_wrap(WASI, "proc_exit", |code: i32| -> wasmtime::Result<()> {
        Err(wasmtime::Error::msg(format!(
            "the guest exited with code {code}"
        )))
    })?;
    Ok(())
}

fn monotonic_nanos() -> u64 {
    use std::sync::OnceLock;
    static START: OnceLock<std::time::Instant> = OnceLock::new();
    START
        .get_or_init(std::time::Instant::now)
        .elapsed()
        .as_nanos() as u64
}

fn memory<T>(caller: &mut Caller<'_, T>) -> wasmtime::Result<Memory> {
    match caller.get_export("memory") {
        Some(Extern::Memory(memory)) => Ok(memory),
        _ => Err(wasmtime::Error::msg("the guest exports no memory")),
    }
}

pub(crate) fn read_bytes<T>(
    caller: &mut Caller<'_, T>,
    ptr: i32,
    len: i32,
) -> wasmtime::Result<Vec<u8>> {
    let memory = memory(caller)?;
    let mut bytes = vec![0u8; len as u32 as usize];
    memory.read(&*caller, ptr as u32 as usize, &mut bytes)?;
    Ok(bytes)
}

pub(crate) fn read_string<T>(
    caller: &mut Caller<'_, T>,
    ptr: i32,
    len: i32,
) -> wasmtime::Result<String> {
    let bytes = read_bytes(caller, ptr, len)?;
    String::from_utf8(bytes)
        .map_err(|_| wasmtime::Error::msg("the guest passed a string that is not UTF-8"))
}

pub(crate) fn write_bytes<T>(
    caller: &mut Caller<'_, T>,
    ptr: i32,
    bytes: &[u8],
) -> wasmtime::Result<()> {
    let memory = memory(caller)?;
    memory.write(&mut *caller, ptr as u32 as usize, bytes)?;
    Ok(())
}

/// The request of the guest's `run` export.
pub(crate) fn run_request(bytecode: &[u8], export: &str, mode: RunMode, args: &str) -> Vec<u8> {
    // The guest gets the bytecode proper, without valbox's column map.
    let (bytecode, _) = crate::source_map::split(bytecode);
    encode_request(&[bytecode, export.as_bytes(), &[mode as u8], args.as_bytes()])
}

/// Builds a request of length-prefixed fields; the last field takes the rest.
pub(crate) fn encode_request(fields: &[&[u8]]) -> Vec<u8> {
    let total = fields.iter().map(|f| f.len() + 4).sum();
    let mut request = Vec::with_capacity(total);
    if let Some((last, leading)) = fields.split_last() {
        for field in leading {
            request.extend_from_slice(&(field.len() as u32).to_le_bytes());
            request.extend_from_slice(field);
        }
        request.extend_from_slice(last);
    }
    request
}

/// Splits one length-prefixed field off the front of a request (the
/// inverse of [`encode_request`] for all but the last field).
pub(crate) fn split_field(request: &[u8]) -> Option<(&[u8], &[u8])> {
    let (len, rest) = request.split_first_chunk::<4>()?;
    let len = u32::from_le_bytes(*len) as usize;
    (rest.len() >= len).then(|| rest.split_at(len))
}

/// A guest export's answer: `Ok(payload)` or the error the guest described.
pub(crate) type GuestResponse = Result<Vec<u8>, JsError>;

/// Writes `request` into the guest's input buffer, calls `export`, and reads
/// the response back (see the ABI in `guest-js/src/lib.rs`).
pub(crate) fn call_export(
    store: &mut Store<CallState>,
    instance: &Instance,
    export: &str,
    request: &[u8],
    max_response: usize,
) -> wasmtime::Result<Result<GuestResponse, SandboxError>> {
    let memory = instance
        .get_memory(&mut *store, "memory")
        .ok_or_else(|| wasmtime::Error::msg("the guest exports no memory"))?;
    let input_buffer = instance.get_typed_func::<u32, u32>(&mut *store, "input-buffer")?;
    let function = instance.get_typed_func::<u32, u64>(&mut *store, export)?;
    let len = u32::try_from(request.len())
        .map_err(|_| wasmtime::Error::msg("request larger than 4 GiB"))?;
    let ptr = input_buffer.call(&mut *store, len)?;
    memory.write(&mut *store, ptr as usize, request)?;
    let packed = function.call(&mut *store, len)?;
    let (ptr, len) = ((packed & 0xffff_ffff) as usize, (packed >> 32) as usize);
    if len > max_response.saturating_add(1) {
        return Ok(Err(SandboxError::Limit(format!(
            "the result is {} bytes, more than the limit of {max_response} bytes",
            len - 1
        ))));
    }
    let data = memory.data(&*store);
    let Some(response) = data.get(ptr..ptr + len) else {
        return Ok(Err(SandboxError::Trap(
            "the guest answered with a response outside its memory".into(),
        )));
    };
    Ok(match response.split_first() {
        Some((0, payload)) => Ok(Ok(payload.to_vec())),
        Some((1, payload)) => match serde_json::from_slice::<JsError>(payload) {
            Ok(mut error) => {
                error.stack = user_frames(&error.stack);
                Ok(Err(error))
            }
            Err(e) => Err(SandboxError::Trap(format!(
                "the guest sent an unreadable error: {e}"
            ))),
        },
        _ => Err(SandboxError::Trap(
            "the guest sent a malformed response".into(),
        )),
    })
}

/// Turns a trap that ended a call into the error the caller sees.
pub(crate) fn classify_trap(error: wasmtime::Error, deadline: std::time::Duration) -> SandboxError {
    if error.downcast_ref::<DeadlineExceeded>().is_some() {
        return SandboxError::Timeout(deadline);
    }
    if let Some(refused) = error.downcast_ref::<crate::admission::Capacity>() {
        return SandboxError::Capacity(refused.clone());
    }
    if let Some(limit) = error.downcast_ref::<LimitExceeded>() {
        return SandboxError::Limit(limit.0.clone());
    }
    if let Some(trap) = error.downcast_ref::<wasmtime::Trap>() {
        match trap {
            wasmtime::Trap::Interrupt => return SandboxError::Timeout(deadline),
            wasmtime::Trap::StackOverflow => {
                return SandboxError::Thrown(JsError {
                    name: "RangeError".into(),
                    message: "Maximum call stack size exceeded (the sandbox's stack limit; \
                              this error cannot be caught by the code)"
                        .into(),
                    stack: String::new(),
                })
            }
            _ => {}
        }
    }
    SandboxError::Trap(format!("{error:#}"))
}

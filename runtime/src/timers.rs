//! `wait`: the guest's event loop sleeping until its next timer
//! (`setTimeout`, `setInterval`, `AbortSignal.timeout`, `scheduler.wait`).
//!
//! Timers are not a capability (they carry nobody's state), so `wait` asks
//! no policy. It only ever shortens a call: the sleep gives the call tree's
//! CPU turn back (as `fetch` does) and a timer due after the call tree's
//! deadline ends the call at once with the deadline error, instead of
//! sleeping into it.

use crate::error::DeadlineExceeded;
use crate::state::CallState;
use std::time::{Duration, Instant};
use wasmtime::{Caller, Linker};

/// Adds the `wait` import.
pub(crate) fn define(linker: &mut Linker<CallState>) -> wasmtime::Result<()> {
    linker.func_wrap(
        crate::capabilities::HOST_MODULE,
        "wait",
        |caller: Caller<'_, CallState>, milliseconds: u32| -> wasmtime::Result<()> {
            let state = caller.data();
            let now = Instant::now();
            let wake = now + Duration::from_millis(u64::from(milliseconds));
            if wake > state.frame.deadline {
                return Err(wasmtime::Error::new(DeadlineExceeded));
            }
            state
                .shared
                .cpu
                .without_turn(|| std::thread::sleep(wake - now));
            Ok(())
        },
    )?;
    Ok(())
}

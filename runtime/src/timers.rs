//! `wait`: the guest's event loop sleeping until its next timer
//! (`setTimeout`, `setInterval`, `AbortSignal.timeout`, `scheduler.wait`) or
//! until one of its `fetch` requests finishes, whichever comes first.
//!
//! Timers are not a capability (they carry nobody's state), so `wait` asks
//! no policy. It only ever shortens a call: the sleep gives the call tree's
//! CPU turn back and a timer due after the call tree's deadline ends the
//! call at once with the deadline error, instead of sleeping into it.

use crate::error::DeadlineExceeded;
use crate::state::CallState;
use std::time::{Duration, Instant};
use wasmtime::{Caller, Linker};

/// Adds the `wait` import: `milliseconds` to the next timer (negative: no
/// timer); answers the id of a `fetch` that finished first, else 0 (the
/// timer is due, or there was nothing to wait for).
pub(crate) fn define(linker: &mut Linker<CallState>) -> wasmtime::Result<()> {
    linker.func_wrap(
        crate::capabilities::HOST_MODULE,
        "wait",
        |mut caller: Caller<'_, CallState>, milliseconds: i32| -> wasmtime::Result<u32> {
            let state = caller.data_mut();
            let now = Instant::now();
            let deadline = state.frame.deadline;
            let wake = u64::try_from(milliseconds)
                .ok()
                .map(|ms| now + Duration::from_millis(ms));
            if !state.fetches.any_pending() {
                return match wake {
                    None => Ok(0),
                    Some(wake) if wake > deadline => Err(wasmtime::Error::new(DeadlineExceeded)),
                    Some(wake) => {
                        state
                            .shared
                            .cpu
                            .without_turn(|| std::thread::sleep(wake - now));
                        Ok(0)
                    }
                };
            }
            let until = wake.map_or(deadline, |wake| wake.min(deadline));
            let cpu = &state.shared.cpu;
            let fetches = &mut state.fetches;
            match cpu.without_turn(|| fetches.next_finished(until)) {
                Some(id) => Ok(id),
                None if wake.is_some_and(|wake| wake <= deadline) => Ok(0),
                None => Err(wasmtime::Error::new(DeadlineExceeded)),
            }
        },
    )?;
    Ok(())
}

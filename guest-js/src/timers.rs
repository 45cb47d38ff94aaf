//! The guest's event loop: promises' jobs first, then timers (`web/timers.js`
//! keeps them) and `fetch` requests, waiting for the next timer or the next
//! request to finish through the host's `wait` import, which sleeps without
//! holding a CPU turn and ends the call at the call tree's deadline. A call
//! ends when its result is ready; timers still pending then are dropped and
//! the call's log says how many.

use std::cell::Cell;

#[link(wasm_import_module = "valbox")]
extern "C" {
    /// WIT `wait: func(milliseconds: s32) -> u32`.
    #[link_name = "wait"]
    fn host_wait(milliseconds: i32) -> u32;
}

thread_local! {
    /// Whether this instance ever set a timer (so a call that set none never
    /// asks the JavaScript side about timers).
    static ARMED: Cell<bool> = const { Cell::new(false) };
}

/// `armTimers()`: called by `setTimeout`/`setInterval`.
pub(crate) fn arm() {
    ARMED.with(|armed| armed.set(true));
}

/// Whether a timer was ever set in this instance.
pub(crate) fn armed() -> bool {
    ARMED.with(Cell::get)
}

/// Sleeps until the next timer is due (`milliseconds`, rounded up to
/// whole ones; negative: no timer) or a `fetch` request finishes first:
/// answers its id, else 0. A timer due now does not wait (nor look for
/// finished requests: the next turn of the loop does).
pub(crate) fn wait(milliseconds: f64) -> u32 {
    if milliseconds == 0.0 {
        return 0;
    }
    let ms = if milliseconds < 0.0 {
        -1
    } else {
        milliseconds.ceil().min(i32::MAX as f64) as i32
    };
    // SAFETY: a host import taking and returning plain integers.
    unsafe { host_wait(ms) }
}

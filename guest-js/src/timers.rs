//! The guest's event loop: promises' jobs first, then timers (`web/timers.js`
//! keeps them), waiting for the next one through the host's `wait` import,
//! which sleeps without holding a CPU turn and ends the call at the call
//! tree's deadline. A call ends when its result is ready; timers still
//! pending then are dropped and the call's log says how many.

use std::cell::Cell;

#[link(wasm_import_module = "valbox")]
extern "C" {
    /// WIT `wait: func(milliseconds: u32)`.
    #[link_name = "wait"]
    fn host_wait(milliseconds: u32);
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

/// Sleeps until the next timer is due (whole milliseconds, rounded up).
pub(crate) fn wait(milliseconds: f64) {
    if milliseconds > 0.0 {
        let ms = milliseconds.ceil().min(u32::MAX as f64) as u32;
        // SAFETY: a host import taking a plain integer.
        unsafe { host_wait(ms) }
    }
}

//! `log`: console output of the current call (no policy: it only ever
//! reaches the call's own trace).

use crate::abi;
use crate::state::CallState;
use wasmtime::{Caller, Linker};

pub(super) fn define(linker: &mut Linker<CallState>) -> wasmtime::Result<()> {
    linker.func_wrap(
        super::HOST_MODULE,
        "log",
        |mut caller: Caller<'_, CallState>, level: i32, ptr: i32, len: i32| {
            let message = abi::read_string(&mut caller, ptr, len)?;
            caller
                .data_mut()
                .log(level, message)
                .map_err(wasmtime::Error::new)
        },
    )?;
    Ok(())
}

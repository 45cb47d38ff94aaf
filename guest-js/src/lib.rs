//! The valbox guest: QuickJS (through the `javy` crate) built for
//! `wasm32-wasip1` as a core module, pre-initialized by the host with Wizer.
//!
//! # How `wit/valbox.wit` maps onto this core module
//!
//! The guest is a core module, not a component, so the WIT world is realised
//! by hand with one fixed convention (the host side is in
//! `runtime/src/abi.rs`; `runtime/tests/wit_contract.rs` checks the two agree
//! with the WIT file):
//!
//! * Every WIT import `valbox:sandbox/host.f` is a core import `valbox.f`.
//!   `log` takes `(level: i32, ptr, len)`; `wait` takes `(milliseconds: i32)`
//!   and returns a `u32` (see `timers.rs`). Every other import takes one
//!   `(ptr, len)` pair holding its parameters and returns the length of its
//!   answer, which the host wrote into the buffer it got from the export
//!   `response-buffer(len)`.
//! * The val imports (`read-val`, `library-call`, `api-call`) take
//!   length-prefixed fields `owner`, `name`, `version` (a `u32`, 0 for the
//!   latest) and `args` (JSON or tagged JSON text, passed on untouched; empty
//!   for `read-val`). Their answer is one tag byte and a payload: `v` value
//!   (the text the called val's `run` produced), `p` the value a returned
//!   Promise settled to, `r` a returned Promise rejected (a JSON
//!   `js-error`), `f` the val is a function (`read-val`), `u`
//!   undefined, `t` the val threw (a JSON `js-error`), `e` refused (a JSON
//!   `{"name", "message"}`).
//! * The other imports take their parameters as a JSON object named like the
//!   WIT parameters. Their answer is `{"ok": value}`, `{"undefined": true}`,
//!   `{"noop": true}` or `{"error": {"name", "message"}}` (the WIT
//!   `result`/`option`).
//! * Every WIT export `valbox:sandbox/guest.f` is a core export `f` taking the
//!   length of the request the host wrote into the guest's input buffer (whose
//!   address `input-buffer(len)` returns) and returning an `i64` holding the
//!   response: low 32 bits its address, high 32 bits its length. The first
//!   byte of a response is 0 for `ok` and 1 for `err`; the rest is the payload
//!   (bytecode or JSON text for `ok`, a JSON `js-error` for `err`).
//! * Composite requests are length-prefixed fields: `u32` little-endian length
//!   then bytes, the last field taking the rest.
//!
//! `initialize-runtime` builds the QuickJS runtime and installs the globals; the
//! host runs it once under Wizer so no call pays for it.

use javy::quickjs::{
    promise::PromiseState, Ctx, Error as JsError, Function, Module, Object, Persistent, Promise,
    String as JsString, TypedArray, Value,
};
use javy::{Config, Runtime};
use std::cell::RefCell;

mod timers;
mod web;

#[link(wasm_import_module = "valbox")]
extern "C" {
    /// WIT `log: func(level: log-level, message: string)`.
    #[link_name = "log"]
    fn host_log(level: i32, ptr: *const u8, len: usize);
    #[link_name = "read-val"]
    fn host_read_val(ptr: *const u8, len: usize) -> u32;
    #[link_name = "write-val"]
    fn host_write_val(ptr: *const u8, len: usize) -> u32;
    #[link_name = "read-secret"]
    fn host_read_secret(ptr: *const u8, len: usize) -> u32;
    #[link_name = "send-email"]
    fn host_send_email(ptr: *const u8, len: usize) -> u32;
    #[link_name = "library-call"]
    fn host_library_call(ptr: *const u8, len: usize) -> u32;
    #[link_name = "api-call"]
    fn host_api_call(ptr: *const u8, len: usize) -> u32;
    #[link_name = "fetch-start"]
    fn host_fetch_start(ptr: *const u8, len: usize) -> u32;
    #[link_name = "fetch-take"]
    fn host_fetch_take(ptr: *const u8, len: usize) -> u32;
    #[link_name = "fetch-cancel"]
    fn host_fetch_cancel(ptr: *const u8, len: usize) -> u32;
    #[link_name = "time-zone"]
    fn host_time_zone(ptr: *const u8, len: usize) -> u32;
    #[link_name = "respond-head"]
    fn host_respond_head(ptr: *const u8, len: usize) -> u32;
    #[link_name = "respond-chunk"]
    fn host_respond_chunk(ptr: *const u8, len: usize) -> u32;
}

/// A host import taking one JSON request and answering with a JSON response
/// of the returned length, written into the response buffer.
type HostImport = unsafe extern "C" fn(*const u8, usize) -> u32;

/// Calls a JSON host import from JavaScript.
fn call_host(import: HostImport, request: String) -> String {
    call_import(import, request.as_bytes())
}

/// Calls a val import from JavaScript (the fields are described above).
fn call_val(import: HostImport, owner: String, name: String, version: u32, args: String) -> String {
    let mut request = Vec::with_capacity(owner.len() + name.len() + args.len() + 16);
    for field in [owner.as_bytes(), name.as_bytes(), &version.to_le_bytes()] {
        request.extend_from_slice(&(field.len() as u32).to_le_bytes());
        request.extend_from_slice(field);
    }
    request.extend_from_slice(args.as_bytes());
    call_import(import, &request)
}

fn call_import(import: HostImport, request: &[u8]) -> String {
    // SAFETY: the pointer and length describe `request`, alive for the call;
    // the host writes the answer through `response-buffer` before returning.
    let len = unsafe { import(request.as_ptr(), request.len()) } as usize;
    RESPONSE.with(|response| {
        let response = response.borrow();
        String::from_utf8_lossy(&response[..len.min(response.len())]).into_owned()
    })
}

/// Everything the guest keeps between `initialize-runtime` and a call.
struct Guest {
    runtime: Runtime,
    /// The functions the prelude returned.
    helpers: Helpers,
}

/// JavaScript functions from `prelude.js` that the Rust side calls, kept as
/// persistent handles so a call does not look them up by name.
struct Helpers {
    encode_result: Persistent<Function<'static>>,
    encode_tagged_result: Persistent<Function<'static>>,
    decode_args: Persistent<Function<'static>>,
    describe_error: Persistent<Function<'static>>,
    express: Persistent<Function<'static>>,
    /// `web/timers.js`: milliseconds to the next timer (-1: none).
    next_timer: Persistent<Function<'static>>,
    /// `web/timers.js`: runs the earliest timer if it is due.
    run_timer: Persistent<Function<'static>>,
    /// `web/timers.js`: how many timers are pending.
    pending_timers: Persistent<Function<'static>>,
    /// `web/fetch.js`: settles the `fetch` whose request finished.
    fetch_finished: Persistent<Function<'static>>,
}

thread_local! {
    static GUEST: RefCell<Option<Guest>> = const { RefCell::new(None) };
    static INPUT: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
    static OUTPUT: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
    static RESPONSE: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

const OK: u8 = 0;
const ERR: u8 = 1;

/// Builds the runtime and installs the globals. Run once, under Wizer.
#[export_name = "initialize-runtime"]
pub extern "C" fn initialize_runtime() {
    let mut config = Config::default();
    config.weak_ref(true);
    let runtime = Runtime::new(config).expect("QuickJS runtime");
    let helpers = runtime.context().with(|ctx| {
        let log = Function::new(ctx.clone(), |level: i32, message: String| unsafe {
            host_log(level, message.as_ptr(), message.len())
        })
        .expect("log function");
        let host = Object::new(ctx.clone()).expect("host object");
        let json_imports: [(&str, HostImport); 7] = [
            ("writeVal", host_write_val),
            ("readSecret", host_read_secret),
            ("sendEmail", host_send_email),
            ("fetchStart", host_fetch_start),
            ("fetchTake", host_fetch_take),
            ("fetchCancel", host_fetch_cancel),
            ("timeZone", host_time_zone),
        ];
        for (name, import) in json_imports {
            let function = Function::new(ctx.clone(), move |request: String| {
                call_host(import, request)
            })
            .expect("host function");
            host.set(name, function).expect("host function installed");
        }
        let val_imports: [(&str, HostImport); 3] = [
            ("readVal", host_read_val),
            ("libraryCall", host_library_call),
            ("apiCall", host_api_call),
        ];
        for (name, import) in val_imports {
            let function = Function::new(
                ctx.clone(),
                move |owner: String, name: String, version: u32, args: String| {
                    call_val(import, owner, name, version, args)
                },
            )
            .expect("host function");
            host.set(name, function).expect("host function installed");
        }
        let internal = web::internal(&ctx).expect("web platform natives");
        let install: Function = ctx
            .eval(include_str!("prelude.js"))
            .expect("prelude evaluates");
        let helpers: Object = install
            .call((log, host, internal.clone()))
            .expect("prelude installs");
        // Installed after the prelude (which everything a plain call
        // touches comes from), so they leave its heap layout as it was.
        install_respond_imports(&ctx, &internal);
        if let Err(e) = web::install(&ctx, &internal) {
            panic!("the web platform does not install: {e}");
        }
        let timers: Object = internal.get("timers").expect("timers installed");
        Helpers {
            encode_result: helper(&ctx, &helpers, "encodeResult"),
            encode_tagged_result: helper(&ctx, &helpers, "encodeTaggedResult"),
            decode_args: helper(&ctx, &helpers, "decodeArgs"),
            describe_error: helper(&ctx, &helpers, "describeError"),
            express: helper(&ctx, &helpers, "express"),
            next_timer: helper(&ctx, &timers, "next"),
            run_timer: helper(&ctx, &timers, "runDue"),
            pending_timers: helper(&ctx, &timers, "pending"),
            fetch_finished: helper(&ctx, &internal, "fetchFinished"),
        }
    });
    runtime.context().runtime().run_gc();
    plug_heap_holes();
    GUEST.with(|g| *g.borrow_mut() = Some(Guest { runtime, helpers }));
}

/// `internal.respondHead(json)` and `internal.respondChunk(bytes)`: a call
/// streaming its HTTP answer (`web/respond.js`); the chunk's bytes go as
/// they are, not as JSON.
fn install_respond_imports<'js>(ctx: &Ctx<'js>, internal: &Object<'js>) {
    let head = Function::new(ctx.clone(), |head: String| {
        call_host(host_respond_head, head)
    })
    .expect("respondHead function");
    let chunk = Function::new(ctx.clone(), |bytes: TypedArray<'_, u8>| {
        call_import(host_respond_chunk, bytes.as_bytes().unwrap_or_default())
    })
    .expect("respondChunk function");
    internal.set("respondHead", head).expect("respondHead installed");
    internal.set("respondChunk", chunk).expect("respondChunk installed");
}

/// Fills the free chunks that evaluating the web platform left in the
/// middle of the heap, so a call's allocations come from one contiguous
/// region at its end and dirty as few pages as possible (each page a call
/// dirties is copied when its instance is reset). The filled chunks are part
/// of the snapshot, shared by every instance.
fn plug_heap_holes() {
    use std::alloc::{alloc, dealloc, Layout};
    // A large block comes from the end of the heap: anything below it is a hole.
    let large = Layout::from_size_align(64 << 10, 8).expect("layout");
    let small = Layout::from_size_align(16, 8).expect("layout");
    // SAFETY: plain allocations; the large block is freed at once and the
    // small ones are deliberately kept for the life of the instance.
    unsafe {
        let end = alloc(large);
        dealloc(end, large);
        loop {
            let p = alloc(small);
            if p.is_null() || p >= end {
                if !p.is_null() {
                    dealloc(p, small);
                }
                break;
            }
        }
    }
}

/// A function of `object` kept across calls.
fn helper<'js>(ctx: &Ctx<'js>, object: &Object<'js>, name: &str) -> Persistent<Function<'static>> {
    let function: Function = object.get(name).expect("prelude helper");
    Persistent::save(ctx, function)
}

/// Makes the input buffer `len` bytes long and returns its address.
#[export_name = "input-buffer"]
pub extern "C" fn input_buffer(len: u32) -> *mut u8 {
    INPUT.with(|input| {
        let mut input = input.borrow_mut();
        input.clear();
        input.resize(len as usize, 0);
        input.as_mut_ptr()
    })
}

/// Makes the buffer for a host import's answer `len` bytes long and returns
/// its address (called by the host during an import).
#[export_name = "response-buffer"]
pub extern "C" fn response_buffer(len: u32) -> *mut u8 {
    RESPONSE.with(|response| {
        let mut response = response.borrow_mut();
        response.clear();
        response.resize(len as usize, 0);
        response.as_mut_ptr()
    })
}

/// WIT `compile: func(name: string, source: string) -> result<list<u8>, js-error>`.
#[export_name = "compile"]
pub extern "C" fn compile(len: u32) -> u64 {
    respond(len, |guest: &mut Guest, request| {
        let (name, source) = split_field(request)?;
        let name =
            std::str::from_utf8(name).map_err(|_| usage_error("module name is not UTF-8"))?;
        let source = std::str::from_utf8(source).map_err(|_| usage_error("source is not UTF-8"))?;
        guest.runtime.context().with(|ctx| {
            let module = Module::declare(ctx.clone(), name, source)
                .map_err(|e| describe(&ctx, &guest.helpers, e))?;
            module
                .write(Default::default())
                .map_err(|e| describe(&ctx, &guest.helpers, e))
        })
    })
}

/// First byte of a `json` answer that is a returned `Response`'s
/// description rather than the value (JSON text never starts with it).
const RESPONSE_MARK: u8 = 1;

/// How `run` passes arguments and results.
const RUN_JSON: u8 = 0;
const RUN_TAGGED: u8 = 1;
const RUN_READ: u8 = 2;
const RUN_EXPRESS: u8 = 3;
const RUN_TAGGED_ARGS: u8 = 4;

/// WIT `run: func(bytecode: list<u8>, export: string, mode: run-mode, args: string) -> result<string, js-error>`.
///
/// The export named `export` is used, or `default` when there is none.
/// `json`: a function is called with the JSON array `args` (a returned
/// Promise is awaited) and the result is JSON; anything else is the val's
/// value. A returned `Response` answers with byte 1 and its description
/// `{status, headers, body, latin1}` instead. `tagged`: the same with the tagged codec of library calls, the
/// answer being `p` (a Promise was returned) or `v`, then the tagged JSON
/// text of the value, or `r` and a JSON `js-error` when the returned
/// Promise rejected (a synchronous throw stays an error). `read`: the val's value the same way, or `f` for a
/// function. `express`:
/// the function is an Express-style handler; `args` is the request as JSON and
/// the result is the response it built (`{status, headers, body}`).
#[export_name = "run"]
pub extern "C" fn run(len: u32) -> u64 {
    respond(len, |guest, request| {
        let (bytecode, rest) = split_field(request)?;
        let (export, rest) = split_field(rest)?;
        let (mode, args) = split_field(rest)?;
        let export = std::str::from_utf8(export).map_err(|_| usage_error("export is not UTF-8"))?;
        let args = std::str::from_utf8(args).map_err(|_| usage_error("arguments are not UTF-8"))?;
        let mode = *mode.first().ok_or_else(|| usage_error("no run mode"))?;
        let helpers = &guest.helpers;
        guest.runtime.context().with(|ctx| {
            let fail = |e: JsError| describe(&ctx, helpers, e);
            let namespace = evaluate(&ctx, helpers, bytecode)?;
            let mut value: Value = namespace.get(export).map_err(fail)?;
            if value.is_undefined() {
                value = namespace.get("default").map_err(fail)?;
            }
            if value.is_undefined() && !namespace.contains_key(export).map_err(fail)? {
                return Err(js_error(
                    "ReferenceError",
                    &format!("the module has no export named `{export}` and no default export"),
                ));
            }
            if let Some(function) = value.as_function() {
                if mode == RUN_READ {
                    return Ok(b"f".to_vec());
                }
                if mode == RUN_EXPRESS {
                    let express = helpers.express.clone().restore(&ctx).map_err(fail)?;
                    value = express.call((function.clone(), args)).map_err(fail)?;
                    let promise = value.as_promise().cloned();
                    if let Some(promise) = promise {
                        value = settle(&ctx, helpers, promise)?;
                    }
                    report_dropped_timers(&ctx, helpers);
                    let encode = helpers.encode_result.clone().restore(&ctx).map_err(fail)?;
                    let text: JsString = encode.call((value,)).map_err(fail)?;
                    return Ok(text.to_string().map_err(fail)?.into_bytes());
                }
                let decode = helpers.decode_args.clone().restore(&ctx).map_err(fail)?;
                let args: javy::quickjs::Array =
                    decode.call((args, mode == RUN_TAGGED || mode == RUN_TAGGED_ARGS)).map_err(fail)?;
                let mut call_args = javy::quickjs::function::Args::new(ctx.clone(), args.len());
                for arg in args.iter::<Value>() {
                    call_args.push_arg(arg.map_err(fail)?).map_err(fail)?;
                }
                value = function.call_arg(call_args).map_err(fail)?;
            }
            let was_promise = value.is_promise();
            if let Some(promise) = value.as_promise().cloned() {
                match settle(&ctx, helpers, promise.clone()) {
                    Ok(settled) => value = settled,
                    // A library call's Promise that rejected is an answer
                    // (`r`), so the caller gets a rejected Promise.
                    Err(error)
                        if mode == RUN_TAGGED && promise.state() == PromiseState::Rejected =>
                    {
                        report_dropped_timers(&ctx, helpers);
                        let mut answer = b"r".to_vec();
                        answer.extend_from_slice(&error);
                        return Ok(answer);
                    }
                    Err(error) => return Err(error),
                }
            }
            report_dropped_timers(&ctx, helpers);
            let text: JsString = if mode == RUN_JSON || mode == RUN_TAGGED_ARGS {
                let encode = helpers.encode_result.clone().restore(&ctx).map_err(fail)?;
                let encoded: Value = encode.call((value,)).map_err(fail)?;
                if let Some(promise) = encoded.as_promise().cloned() {
                    // A returned Response: `encodeResult` gave the Promise of
                    // its description, and the answer is RESPONSE_MARK and
                    // that description (status, header pairs, body bytes).
                    let described = settle(&ctx, helpers, promise)?;
                    let text: JsString = encode.call((described,)).map_err(fail)?;
                    let mut answer = vec![RESPONSE_MARK];
                    answer.extend_from_slice(text.to_string().map_err(fail)?.as_bytes());
                    return Ok(answer);
                }
                encoded
                    .into_string()
                    .ok_or_else(|| js_error("InternalError", "the result was not encoded"))?
            } else {
                let encode = helpers
                    .encode_tagged_result
                    .clone()
                    .restore(&ctx)
                    .map_err(fail)?;
                encode.call((value, was_promise)).map_err(fail)?
            };
            Ok(text.to_string().map_err(fail)?.into_bytes())
        })
    })
}

/// Loads bytecode as a module, evaluates it (awaiting top-level `await`) and
/// returns its namespace.
fn evaluate<'js>(
    ctx: &Ctx<'js>,
    helpers: &Helpers,
    bytecode: &[u8],
) -> Result<Object<'js>, Vec<u8>> {
    let fail = |e: JsError| describe(ctx, helpers, e);
    // SAFETY: the bytecode was produced by this guest's own `compile` export
    // (the host stores only what `compile` returned, keyed by the guest build).
    let module = unsafe { Module::load(ctx.clone(), bytecode) }.map_err(fail)?;
    let (module, done) = module.eval().map_err(fail)?;
    settle(ctx, helpers, done)?;
    module.namespace().map_err(fail)
}

/// Runs the event loop until `promise` settles: the job queue first, then
/// the next timer or the next `fetch` to finish, whichever comes first
/// (waiting for them through the host).
fn settle<'js>(
    ctx: &Ctx<'js>,
    helpers: &Helpers,
    promise: Promise<'js>,
) -> Result<Value<'js>, Vec<u8>> {
    let fail = |e: JsError| describe(ctx, helpers, e);
    loop {
        if let Some(result) = promise.result::<Value>() {
            return result.map_err(fail);
        }
        if ctx.execute_pending_job() {
            continue;
        }
        let next: f64 = if timers::armed() {
            let next = helpers.next_timer.clone().restore(ctx).map_err(fail)?;
            next.call(()).map_err(fail)?
        } else {
            -1.0
        };
        let finished = timers::wait(next);
        if finished != 0 {
            let settle_fetch = helpers.fetch_finished.clone().restore(ctx).map_err(fail)?;
            settle_fetch.call::<_, ()>((finished,)).map_err(fail)?;
            continue;
        }
        if next < 0.0 {
            return Err(js_error(
                "Error",
                "the returned Promise never settled (nothing left that could settle it)",
            ));
        }
        let run = helpers.run_timer.clone().restore(ctx).map_err(fail)?;
        run.call::<_, ()>(()).map_err(fail)?;
    }
}

/// Says in the call's log how many timers the end of the call dropped.
fn report_dropped_timers(ctx: &Ctx<'_>, helpers: &Helpers) {
    if !timers::armed() {
        return;
    }
    let pending: u32 = helpers
        .pending_timers
        .clone()
        .restore(ctx)
        .and_then(|pending| pending.call(()))
        .unwrap_or(0);
    if pending > 0 {
        let message = format!(
            "valbox: {pending} timer{} still pending when the call's result was ready {} dropped \
             (a call ends with its result; await what must finish)",
            if pending == 1 { "" } else { "s" },
            if pending == 1 { "was" } else { "were" },
        );
        // SAFETY: the pointer and length describe `message`, alive for the call.
        unsafe { host_log(2, message.as_ptr(), message.len()) }
    }
}

/// Turns a QuickJS error (usually a pending exception) into a JSON `js-error`.
fn describe(ctx: &Ctx<'_>, helpers: &Helpers, error: JsError) -> Vec<u8> {
    let thrown = match error {
        JsError::Exception => ctx.catch(),
        other => return js_error("InternalError", &other.to_string()),
    };
    let described = helpers
        .describe_error
        .clone()
        .restore(ctx)
        .and_then(|describe| {
            let text: JsString = describe.call((thrown,))?;
            text.to_string()
        });
    match described {
        Ok(text) => text.into_bytes(),
        Err(e) => js_error(
            "InternalError",
            &format!("could not describe the error: {e}"),
        ),
    }
}

/// A `js-error` made by the guest itself.
fn js_error(name: &str, message: &str) -> Vec<u8> {
    serde_json::json!({ "name": name, "message": message, "stack": "" })
        .to_string()
        .into_bytes()
}

fn usage_error(message: &str) -> Vec<u8> {
    js_error("TypeError", message)
}

/// Splits one length-prefixed field off the front of a request.
fn split_field(request: &[u8]) -> Result<(&[u8], &[u8]), Vec<u8>> {
    if request.len() < 4 {
        return Err(usage_error("truncated request"));
    }
    let len = u32::from_le_bytes(request[..4].try_into().unwrap()) as usize;
    let rest = &request[4..];
    if rest.len() < len {
        return Err(usage_error("truncated request field"));
    }
    Ok(rest.split_at(len))
}

/// Runs `handler` on the current input and stores its answer as the response.
fn respond(len: u32, handler: impl FnOnce(&mut Guest, &[u8]) -> Result<Vec<u8>, Vec<u8>>) -> u64 {
    let input = INPUT.with(|input| std::mem::take(&mut *input.borrow_mut()));
    let request = &input[..(len as usize).min(input.len())];
    let result = GUEST.with(|g| match g.borrow_mut().as_mut() {
        Some(guest) => handler(guest, request),
        None => Err(js_error("InternalError", "guest runtime not initialized")),
    });
    OUTPUT.with(|output| {
        let mut output = output.borrow_mut();
        output.clear();
        match result {
            Ok(payload) => {
                output.push(OK);
                output.extend_from_slice(&payload);
            }
            Err(payload) => {
                output.push(ERR);
                output.extend_from_slice(&payload);
            }
        }
        (output.as_ptr() as u32 as u64) | ((output.len() as u64) << 32)
    })
}

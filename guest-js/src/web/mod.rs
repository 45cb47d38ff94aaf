//! The web platform a val sees (SPEC §7): URL and URLPattern, encodings,
//! compression, base64, timers, events, abort signals, blobs, forms,
//! streams, fetch classes, crypto, performance and navigator. Each API is one JavaScript file here (and,
//! where Rust does the work, one Rust module of natives). Everything is
//! installed once, under Wizer, so the classes live in the snapshot and a
//! call that uses none of them pays nothing for them.

mod compression;
mod crypto;
mod encoding;
mod random;
mod url;
mod url_pattern;

use javy::quickjs::{Ctx, Function, Module, Object, Result, WriteOptions};

/// The web platform's JavaScript files, in the order they are evaluated
/// (each may use what the earlier ones left in `internal`). They run after
/// `prelude.js` (console, vals, the codec), so the objects every call
/// touches (the prelude's) sit together at the start of the heap and the
/// web platform's objects after them: a call that uses none of the web
/// platform writes to few, clustered pages (see docs/perf.md).
const FILES: &[(&str, &str)] = &[
    ("base.js", include_str!("base.js")),
    ("dom_exception.js", include_str!("dom_exception.js")),
    ("events.js", include_str!("events.js")),
    ("abort.js", include_str!("abort.js")),
    ("timers.js", include_str!("timers.js")),
    ("performance.js", include_str!("performance.js")),
    ("base64.js", include_str!("base64.js")),
    ("encoding.js", include_str!("encoding.js")),
    ("url.js", include_str!("url.js")),
    ("streams.js", include_str!("streams.js")),
    ("blob.js", include_str!("blob.js")),
    ("file_reader.js", include_str!("file_reader.js")),
    ("crypto.js", include_str!("crypto.js")),
    ("form_data.js", include_str!("form_data.js")),
    ("fetch.js", include_str!("fetch.js")),
    ("intl.js", include_str!("intl.js")),
    ("structured_clone.js", include_str!("structured_clone.js")),
    ("respond.js", include_str!("respond.js")),
    ("http_handlers.js", include_str!("http_handlers.js")),
    ("url_pattern.js", include_str!("url_pattern.js")),
    ("compression.js", include_str!("compression.js")),
    ("console.js", include_str!("console.js")),
];

/// The vendored WHATWG streams implementation (see `guest-js/vendor/`).
const STREAMS_POLYFILL: &str = include_str!("../../vendor/web-streams-polyfill/ponyfill.js");

/// Builds the `internal` object the prelude and the web files share, with
/// the Rust natives under `native`.
pub(crate) fn internal<'js>(ctx: &Ctx<'js>) -> Result<Object<'js>> {
    let internal = Object::new(ctx.clone())?;
    let native = Object::new(ctx.clone())?;
    macro_rules! natives {
        ($($name:literal => $f:expr),* $(,)?) => {
            $(native.set($name, Function::new(ctx.clone(), $f)?.with_name($name)?)?;)*
        };
    }
    natives! {
        "urlParse" => url::parse,
        "urlSet" => url::set,
        "formDecode" => url::form_decode,
        "formEncode" => url::form_encode,
        "urlPatternParse" => url_pattern::parse,
        "urlPatternInput" => url_pattern::match_input,
        "compressionOpen" => compression::open,
        "compressionWrite" => compression::write,
        "compressionFinish" => compression::finish,
        "compressionClose" => compression::close,
        "encodingName" => encoding::encoding_name,
        "decodeOnce" => encoding::decode_once,
        "decoderOpen" => encoding::decoder_open,
        "decoderDecode" => encoding::decoder_decode,
        "decoderClose" => encoding::decoder_close,
        "utf8Encode" => encoding::utf8_encode,
        "latin1Decode" => encoding::latin1_decode,
        "latin1Encode" => encoding::latin1_encode,
        "atob" => encoding::atob,
        "btoa" => encoding::btoa,
        "mathRandom" => random::math_random,
        "getRandomValues" => random::get_random_values,
        "randomUUID" => random::random_uuid,
        "now" => random::now,
        "timeOrigin" => random::time_origin,
        "armTimers" => crate::timers::arm,
        "version" => || env!("CARGO_PKG_VERSION"),
    }
    crypto::install(ctx, &native)?;
    internal.set("native", native)?;
    Ok(internal)
}

/// Evaluates the web platform: the streams library into `internal.streams`,
/// then every file of [`FILES`], each called with `internal`.
///
/// Each file is compiled as a module exporting its function, written as
/// bytecode without source text or debug information and loaded back, so
/// the heap every instance maps (and every call's memory reset walks, see
/// docs/perf.md) holds no source text, and stack traces show user code only.
pub(crate) fn install<'js>(
    ctx: &Ctx<'js>,
    internal: &Object<'js>,
) -> std::result::Result<(), String> {
    let streams = format!("(function (exports, module) {{\n{STREAMS_POLYFILL}\n}})");
    let load = |name: &str, source: &str| -> std::result::Result<Function<'js>, String> {
        stripped(ctx, name, source).map_err(|e| format!("{name}: {}", caught(ctx, e)))
    };
    let streams_loader = load("web-streams-polyfill.js", &streams)?;
    load_streams(ctx, internal, streams_loader)
        .map_err(|e| format!("the streams library: {}", caught(ctx, e)))?;
    for (name, source) in FILES {
        load(name, source)?
            .call::<_, ()>((internal.clone(),))
            .map_err(|e| format!("{name}: {}", caught(ctx, e)))?;
    }
    Ok(())
}

/// Compiles `source` (a function expression) as a module exporting it,
/// writes it as stripped bytecode, loads that and returns the function.
fn stripped<'js>(ctx: &Ctx<'js>, name: &str, source: &str) -> Result<Function<'js>> {
    let bytecode = Module::declare(ctx.clone(), name, format!("export default {source}"))?.write(
        WriteOptions {
            strip_source: true,
            strip_debug: true,
            ..WriteOptions::default()
        },
    )?;
    load_default(ctx, &bytecode)
}

/// Loads bytecode written by [`stripped`] and returns its default export.
fn load_default<'js>(ctx: &Ctx<'js>, bytecode: &[u8]) -> Result<Function<'js>> {
    // SAFETY: the bytecode was written by this guest's own QuickJS, just now.
    let module = unsafe { Module::load(ctx.clone(), bytecode) }?;
    let (module, done) = module.eval()?;
    done.finish::<()>()?;
    module.namespace()?.get("default")
}

/// Runs the vendored streams library's loader into `internal.streams`.
fn load_streams<'js>(ctx: &Ctx<'js>, internal: &Object<'js>, load: Function<'js>) -> Result<()> {
    let exports = Object::new(ctx.clone())?;
    let module = Object::new(ctx.clone())?;
    module.set("exports", exports.clone())?;
    load.call::<_, ()>((exports.clone(), module))?;
    internal.set("streams", exports)
}

/// The message of a QuickJS error, with the pending exception's text.
fn caught(ctx: &Ctx<'_>, error: javy::quickjs::Error) -> String {
    if let javy::quickjs::Error::Exception = error {
        let value = ctx.catch();
        if let Some(exception) = value.as_exception() {
            return format!(
                "{} {}",
                exception.message().unwrap_or_default(),
                exception.stack().unwrap_or_default()
            );
        }
        return format!("{value:?}");
    }
    error.to_string()
}

//! Natives of `compression.js`: the Compression Standard's formats
//! (`gzip`, `deflate` = zlib, `deflate-raw`) in both directions, streaming,
//! with the `flate2` crate on its pure-Rust backend (miniz_oxide).
//!
//! Each stream's coder lives here under an id until the stream is flushed
//! (or the instance ends: instances live for one call).

use flate2::write::{
    DeflateDecoder, DeflateEncoder, GzDecoder, GzEncoder, ZlibDecoder, ZlibEncoder,
};
use flate2::Compression;
use javy::quickjs::{Ctx, Exception, Result, TypedArray};
use std::cell::RefCell;
use std::collections::HashMap;
use std::io::Write;

/// One stream's coder, writing its output into a buffer drained after
/// every chunk.
enum Coder {
    GzipEncode(GzEncoder<Vec<u8>>),
    GzipDecode(GzDecoder<Vec<u8>>),
    ZlibEncode(ZlibEncoder<Vec<u8>>),
    ZlibDecode(ZlibDecoder<Vec<u8>>),
    RawEncode(DeflateEncoder<Vec<u8>>),
    RawDecode(DeflateDecoder<Vec<u8>>),
}

impl Coder {
    fn new(format: &str, decompress: bool) -> Option<Coder> {
        let level = Compression::default();
        Some(match (format, decompress) {
            ("gzip", false) => Coder::GzipEncode(GzEncoder::new(Vec::new(), level)),
            ("gzip", true) => Coder::GzipDecode(GzDecoder::new(Vec::new())),
            ("deflate", false) => Coder::ZlibEncode(ZlibEncoder::new(Vec::new(), level)),
            ("deflate", true) => Coder::ZlibDecode(ZlibDecoder::new(Vec::new())),
            ("deflate-raw", false) => Coder::RawEncode(DeflateEncoder::new(Vec::new(), level)),
            ("deflate-raw", true) => Coder::RawDecode(DeflateDecoder::new(Vec::new())),
            _ => return None,
        })
    }

    fn decompresses(&self) -> bool {
        matches!(
            self,
            Coder::GzipDecode(_) | Coder::ZlibDecode(_) | Coder::RawDecode(_)
        )
    }

    /// Feeds `bytes` in; answers what came out so far.
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<Vec<u8>> {
        macro_rules! feed {
            ($coder:expr) => {{
                $coder.write_all(bytes)?;
                Ok(std::mem::take($coder.get_mut()))
            }};
        }
        match self {
            Coder::GzipEncode(c) => feed!(c),
            Coder::GzipDecode(c) => feed!(c),
            Coder::ZlibEncode(c) => feed!(c),
            Coder::ZlibDecode(c) => feed!(c),
            Coder::RawEncode(c) => feed!(c),
            Coder::RawDecode(c) => feed!(c),
        }
    }

    /// Ends the stream; answers the rest of the output. A compressed
    /// stream that ended early is an error.
    fn finish(self) -> std::io::Result<Vec<u8>> {
        match self {
            Coder::GzipEncode(c) => c.finish(),
            Coder::GzipDecode(c) => c.finish(),
            Coder::ZlibEncode(c) => c.finish(),
            Coder::ZlibDecode(c) => c.finish(),
            Coder::RawEncode(c) => c.finish(),
            Coder::RawDecode(c) => c.finish(),
        }
    }
}

thread_local! {
    static CODERS: RefCell<(u32, HashMap<u32, Coder>)> = RefCell::new((0, HashMap::new()));
}

/// `compressionOpen(format, decompress)`: a new stream's id, or a
/// TypeError for a format the standard does not name.
pub(super) fn open(ctx: Ctx<'_>, format: String, decompress: bool) -> Result<u32> {
    let coder = Coder::new(&format, decompress).ok_or_else(|| {
        Exception::throw_type(
            &ctx,
            &format!("Unsupported compression format: '{format}' (gzip, deflate or deflate-raw)"),
        )
    })?;
    Ok(CODERS.with(|coders| {
        let (last, map) = &mut *coders.borrow_mut();
        *last += 1;
        map.insert(*last, coder);
        *last
    }))
}

/// The error a stream gets for bad input (decompression) or a bad id.
fn failed(ctx: &Ctx<'_>, decompress: bool, error: std::io::Error) -> javy::quickjs::Error {
    let what = if decompress { "decompress" } else { "compress" };
    // A decoder takes nothing after its stream's end: `write_all` then
    // stops with `WriteZero`.
    let why = if error.kind() == std::io::ErrorKind::WriteZero {
        "there is data after the end of the compressed stream".to_string()
    } else {
        error.to_string()
    };
    Exception::throw_type(ctx, &format!("Failed to {what} the data: {why}"))
}

/// `compressionWrite(id, bytes)`: the output the chunk produced.
pub(super) fn write<'js>(
    ctx: Ctx<'js>,
    id: u32,
    bytes: TypedArray<'js, u8>,
) -> Result<TypedArray<'js, u8>> {
    let input = bytes.as_bytes().unwrap_or_default();
    let output = CODERS.with(|coders| {
        let map = &mut coders.borrow_mut().1;
        let coder = map
            .get_mut(&id)
            .ok_or_else(|| Exception::throw_type(&ctx, "the stream has ended"))?;
        let decompress = coder.decompresses();
        let written = coder.write(input);
        written.map_err(|e| {
            map.remove(&id);
            failed(&ctx, decompress, e)
        })
    })?;
    TypedArray::new(ctx, output)
}

/// `compressionFinish(id)`: the last output; a compressed stream that
/// ended before its end (or with data after it) is a TypeError.
pub(super) fn finish<'js>(ctx: Ctx<'js>, id: u32) -> Result<TypedArray<'js, u8>> {
    let coder = CODERS
        .with(|coders| coders.borrow_mut().1.remove(&id))
        .ok_or_else(|| Exception::throw_type(&ctx, "the stream has ended"))?;
    let decompress = coder.decompresses();
    let output = coder.finish().map_err(|e| failed(&ctx, decompress, e))?;
    TypedArray::new(ctx, output)
}

/// `compressionClose(id)`: forgets a stream that was cancelled or errored.
pub(super) fn close(id: u32) {
    CODERS.with(|coders| coders.borrow_mut().1.remove(&id));
}

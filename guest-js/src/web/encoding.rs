//! Natives of `encoding.js` and `base64.js`: the Encoding Standard's
//! decoders (encoding_rs), UTF-8 encoding, Latin-1 byte strings and
//! forgiving base64.

use base64::engine::{general_purpose::GeneralPurpose, DecodePaddingMode, GeneralPurposeConfig};
use base64::Engine;
use encoding_rs::{Decoder, DecoderResult, Encoding};
use javy::quickjs::{Ctx, Result, TypedArray};
use std::cell::RefCell;

thread_local! {
    /// Streaming decoders (`decode(…, {stream: true})`) by handle, until flushed.
    static DECODERS: RefCell<Vec<Option<Decoder>>> = const { RefCell::new(Vec::new()) };
}

fn encoding(name: &str) -> Option<&'static Encoding> {
    Encoding::for_label_no_replacement(name.as_bytes())
}

/// `encodingName(label)`: the lower-case name of the encoding a label
/// names, or `undefined` (the standard's RangeError).
pub(super) fn encoding_name(label: String) -> Option<String> {
    encoding(&label).map(|e| e.name().to_ascii_lowercase())
}

fn new_decoder(encoding: &'static Encoding, ignore_bom: bool) -> Decoder {
    if ignore_bom {
        encoding.new_decoder_without_bom_handling()
    } else {
        encoding.new_decoder_with_bom_removal()
    }
}

/// Decodes `bytes`; `None` when `fatal` and the bytes are malformed.
fn run(decoder: &mut Decoder, bytes: &[u8], last: bool, fatal: bool) -> Option<String> {
    if fatal {
        let capacity = decoder.max_utf8_buffer_length_without_replacement(bytes.len())?;
        let mut out = String::with_capacity(capacity);
        let (result, _) = decoder.decode_to_string_without_replacement(bytes, &mut out, last);
        matches!(result, DecoderResult::InputEmpty).then_some(out)
    } else {
        let capacity = decoder.max_utf8_buffer_length(bytes.len())?;
        let mut out = String::with_capacity(capacity);
        let _ = decoder.decode_to_string(bytes, &mut out, last);
        Some(out)
    }
}

/// `decodeOnce(name, ignoreBOM, fatal, bytes)`: a whole input at once.
pub(super) fn decode_once(
    name: String,
    ignore_bom: bool,
    fatal: bool,
    bytes: TypedArray<'_, u8>,
) -> Option<String> {
    let mut decoder = new_decoder(encoding(&name)?, ignore_bom);
    run(
        &mut decoder,
        bytes.as_bytes().unwrap_or_default(),
        true,
        fatal,
    )
}

/// `decoderOpen(name, ignoreBOM)`: a handle for a streaming decoder.
pub(super) fn decoder_open(name: String, ignore_bom: bool) -> i32 {
    let Some(encoding) = encoding(&name) else {
        return -1;
    };
    DECODERS.with(|decoders| {
        let mut decoders = decoders.borrow_mut();
        let decoder = Some(new_decoder(encoding, ignore_bom));
        match decoders.iter().position(Option::is_none) {
            Some(free) => {
                decoders[free] = decoder;
                free as i32
            }
            None => {
                decoders.push(decoder);
                decoders.len() as i32 - 1
            }
        }
    })
}

/// `decoderDecode(handle, bytes, last, fatal)`: the next piece of a stream.
pub(super) fn decoder_decode(
    handle: i32,
    bytes: TypedArray<'_, u8>,
    last: bool,
    fatal: bool,
) -> Option<String> {
    DECODERS.with(|decoders| {
        let mut decoders = decoders.borrow_mut();
        let decoder = decoders.get_mut(usize::try_from(handle).ok()?)?.as_mut()?;
        run(decoder, bytes.as_bytes().unwrap_or_default(), last, fatal)
    })
}

/// `decoderClose(handle)`: forgets a streaming decoder.
pub(super) fn decoder_close(handle: i32) {
    DECODERS.with(|decoders| {
        let mut decoders = decoders.borrow_mut();
        if let Some(slot) = usize::try_from(handle)
            .ok()
            .and_then(|h| decoders.get_mut(h))
        {
            *slot = None;
        }
    })
}

/// `utf8Encode(text)`: UTF-8 bytes of a well-formed string.
pub(super) fn utf8_encode<'js>(ctx: Ctx<'js>, text: String) -> Result<TypedArray<'js, u8>> {
    TypedArray::new(ctx, text.into_bytes())
}

/// `latin1Decode(bytes)`: a string with one character per byte.
pub(super) fn latin1_decode(bytes: TypedArray<'_, u8>) -> String {
    bytes
        .as_bytes()
        .unwrap_or_default()
        .iter()
        .map(|b| *b as char)
        .collect()
}

/// `latin1Encode(text)`: the bytes of a string of characters U+0000–U+00FF
/// (higher characters keep their low byte).
pub(super) fn latin1_encode<'js>(ctx: Ctx<'js>, text: String) -> Result<TypedArray<'js, u8>> {
    TypedArray::new(
        ctx,
        text.chars().map(|c| c as u32 as u8).collect::<Vec<u8>>(),
    )
}

const FORGIVING: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::RequireNone)
        .with_decode_allow_trailing_bits(true),
);

/// `atob(data)`: HTML's forgiving-base64 decode into a byte string, or
/// `undefined` for input the standard rejects.
pub(super) fn atob(data: String) -> Option<String> {
    let mut cleaned: Vec<u8> = data
        .bytes()
        .filter(|b| !matches!(b, b'\t' | b'\n' | 0x0c | b'\r' | b' '))
        .collect();
    if cleaned.len().is_multiple_of(4) {
        for _ in 0..2 {
            if cleaned.last() == Some(&b'=') {
                cleaned.pop();
            }
        }
    }
    if cleaned.len() % 4 == 1 {
        return None;
    }
    if !cleaned
        .iter()
        .all(|b| b.is_ascii_alphanumeric() || *b == b'+' || *b == b'/')
    {
        return None;
    }
    let bytes = FORGIVING.decode(&cleaned).ok()?;
    Some(bytes.iter().map(|b| *b as char).collect())
}

/// `btoa(data)`: base64 of a byte string (the JS side checked its range).
pub(super) fn btoa(data: String) -> String {
    let bytes: Vec<u8> = data.chars().map(|c| c as u32 as u8).collect();
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

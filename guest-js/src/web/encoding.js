// TextEncoder and TextDecoder (Encoding Standard). Decoding is encoding_rs
// in Rust: every label of the standard, `fatal`, `ignoreBOM` and
// `stream: true` (a streaming decoder lives in Rust under a handle until
// the stream is flushed).
(function (internal) {
  "use strict";
  const { native, toBytes } = internal;

  // UTF-8 of a code point into `dest` at `at`; the number of bytes.
  function utf8Length(cp) {
    return cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
  }

  class TextEncoder {
    get encoding() { return "utf-8"; }
    encode(input = "") {
      return native.utf8Encode(internal.toUSV(input));
    }
    encodeInto(source, destination) {
      if (!(destination instanceof Uint8Array)) throw new TypeError("encodeInto: the destination must be a Uint8Array");
      const text = internal.toUSV(source);
      let read = 0;
      let written = 0;
      const length = destination.length;
      for (let i = 0; i < text.length; ) {
        const cp = text.codePointAt(i);
        const size = utf8Length(cp);
        if (written + size > length) break;
        if (size === 1) destination[written] = cp;
        else if (size === 2) {
          destination[written] = 0xc0 | (cp >> 6);
          destination[written + 1] = 0x80 | (cp & 0x3f);
        } else if (size === 3) {
          destination[written] = 0xe0 | (cp >> 12);
          destination[written + 1] = 0x80 | ((cp >> 6) & 0x3f);
          destination[written + 2] = 0x80 | (cp & 0x3f);
        } else {
          destination[written] = 0xf0 | (cp >> 18);
          destination[written + 1] = 0x80 | ((cp >> 12) & 0x3f);
          destination[written + 2] = 0x80 | ((cp >> 6) & 0x3f);
          destination[written + 3] = 0x80 | (cp & 0x3f);
        }
        written += size;
        const units = cp > 0xffff ? 2 : 1;
        i += units;
        read += units;
      }
      return { read, written };
    }
  }
  internal.brand(TextEncoder);

  const decoders = new WeakMap();
  function slot(self) {
    const s = decoders.get(self);
    if (!s) throw new TypeError("Illegal invocation");
    return s;
  }

  class TextDecoder {
    constructor(label = "utf-8", options) {
      const name = native.encodingName(String(label));
      if (name === null || name === undefined) throw new RangeError("The encoding label provided ('" + label + "') is invalid.");
      const opts = options === undefined || options === null ? {} : options;
      decoders.set(this, { name, fatal: !!opts.fatal, ignoreBOM: !!opts.ignoreBOM, handle: -1 });
    }
    get encoding() { return slot(this).name; }
    get fatal() { return slot(this).fatal; }
    get ignoreBOM() { return slot(this).ignoreBOM; }
    decode(input, options) {
      const s = slot(this);
      const bytes = input === undefined || input === null ? new Uint8Array(0) : toBytes(input, "TextDecoder.decode input");
      const stream = !!(options && options.stream);
      let text;
      if (stream || s.handle >= 0) {
        if (s.handle < 0) s.handle = native.decoderOpen(s.name, s.ignoreBOM);
        text = native.decoderDecode(s.handle, bytes, !stream, s.fatal);
        if (!stream || text === null) {
          native.decoderClose(s.handle);
          s.handle = -1;
        }
      } else {
        text = native.decodeOnce(s.name, s.ignoreBOM, s.fatal, bytes);
      }
      if (text === null || text === undefined) throw new TypeError("The encoded data was not valid " + s.name + ".");
      return text;
    }
  }
  internal.brand(TextDecoder);

  internal.TextEncoder = TextEncoder;
  internal.TextDecoder = TextDecoder;
  internal.expose("TextEncoder", TextEncoder);
  internal.expose("TextDecoder", TextDecoder);
});

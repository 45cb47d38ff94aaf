// ReadableStream, WritableStream, TransformStream and their readers,
// writers, controllers and queuing strategies (WHATWG Streams), from the
// vendored web-streams-polyfill (guest-js/vendor/), which `lib.rs`
// evaluated into `internal.streams`; plus TextEncoderStream and
// TextDecoderStream on top of them.
(function (internal) {
  "use strict";
  const streams = internal.streams;
  for (const name of [
    "ReadableStream", "ReadableStreamDefaultReader", "ReadableStreamBYOBReader", "ReadableStreamBYOBRequest",
    "ReadableByteStreamController", "ReadableStreamDefaultController", "WritableStream", "WritableStreamDefaultWriter",
    "WritableStreamDefaultController", "TransformStream", "TransformStreamDefaultController",
    "ByteLengthQueuingStrategy", "CountQueuingStrategy",
  ]) {
    internal.expose(name, streams[name]);
    internal.platformPrototypes.add(streams[name].prototype);
  }
  const { TransformStream } = streams;

  class TextEncoderStream {
    constructor() {
      const encoder = new internal.TextEncoder();
      let pending = "";
      const transform = new TransformStream({
        transform(chunk, controller) {
          let text = pending + String(chunk);
          pending = "";
          // A high surrogate at the end may pair with the next chunk.
          const last = text.charCodeAt(text.length - 1);
          if (last >= 0xd800 && last <= 0xdbff) {
            pending = text.slice(-1);
            text = text.slice(0, -1);
          }
          if (text) controller.enqueue(encoder.encode(text));
        },
        flush(controller) {
          if (pending) controller.enqueue(new Uint8Array([0xef, 0xbf, 0xbd]));
        },
      });
      Object.defineProperty(this, "__transform", { value: transform });
    }
    get encoding() { return "utf-8"; }
    get readable() { return this.__transform.readable; }
    get writable() { return this.__transform.writable; }
  }
  internal.brand(TextEncoderStream);

  class TextDecoderStream {
    constructor(label = "utf-8", options) {
      const decoder = new internal.TextDecoder(label, options);
      const transform = new TransformStream({
        transform(chunk, controller) {
          const text = decoder.decode(internal.toBytes(chunk, "TextDecoderStream chunk"), { stream: true });
          if (text) controller.enqueue(text);
        },
        flush(controller) {
          const text = decoder.decode();
          if (text) controller.enqueue(text);
        },
      });
      Object.defineProperty(this, "__decoder", { value: decoder });
      Object.defineProperty(this, "__transform", { value: transform });
    }
    get encoding() { return this.__decoder.encoding; }
    get fatal() { return this.__decoder.fatal; }
    get ignoreBOM() { return this.__decoder.ignoreBOM; }
    get readable() { return this.__transform.readable; }
    get writable() { return this.__transform.writable; }
  }
  internal.brand(TextDecoderStream);

  internal.expose("TextEncoderStream", TextEncoderStream);
  internal.expose("TextDecoderStream", TextDecoderStream);

  // All the bytes of a ReadableStream of Uint8Array chunks.
  internal.readAllBytes = async function readAllBytes(stream) {
    const reader = stream.getReader();
    const chunks = [];
    let total = 0;
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      if (!(value instanceof Uint8Array)) throw new TypeError("a body stream chunk is not a Uint8Array");
      chunks.push(value);
      total += value.byteLength;
    }
    const bytes = new Uint8Array(total);
    let at = 0;
    for (const chunk of chunks) {
      bytes.set(chunk, at);
      at += chunk.byteLength;
    }
    return bytes;
  };
  // A ReadableStream of one chunk (or none).
  internal.streamOf = function streamOf(bytes) {
    return new streams.ReadableStream({
      type: "bytes",
      start(controller) {
        if (bytes.byteLength > 0) controller.enqueue(bytes.slice());
        controller.close();
      },
    });
  };
});

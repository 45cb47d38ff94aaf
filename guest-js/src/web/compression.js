// CompressionStream and DecompressionStream (Compression Standard): a
// TransformStream over a native coder (`compression.rs`, the flate2
// crate) for `gzip`, `deflate` (zlib) and `deflate-raw`.
(function (internal) {
  "use strict";
  const native = internal.native;
  const { TransformStream } = internal.streams;

  // The TransformStream of one direction: each BufferSource chunk goes
  // through the coder, what comes out is enqueued; the end flushes it.
  function coderStream(format, decompress, what) {
    const id = native.compressionOpen(String(format), decompress);
    return new TransformStream({
      transform(chunk, controller) {
        let bytes;
        try {
          bytes = internal.toBytes(chunk, what + " chunk");
        } catch (e) {
          native.compressionClose(id);
          throw e;
        }
        const out = native.compressionWrite(id, bytes);
        if (out.length) controller.enqueue(out);
      },
      flush(controller) {
        const out = native.compressionFinish(id);
        if (out.length) controller.enqueue(out);
      },
      cancel() {
        native.compressionClose(id);
      },
    });
  }

  class CompressionStream {
    constructor(format) {
      if (arguments.length === 0) throw new TypeError("Failed to construct 'CompressionStream': 1 argument required");
      Object.defineProperty(this, "__transform", { value: coderStream(format, false, "CompressionStream") });
    }
    get readable() { return this.__transform.readable; }
    get writable() { return this.__transform.writable; }
  }
  internal.brand(CompressionStream);

  class DecompressionStream {
    constructor(format) {
      if (arguments.length === 0) throw new TypeError("Failed to construct 'DecompressionStream': 1 argument required");
      Object.defineProperty(this, "__transform", { value: coderStream(format, true, "DecompressionStream") });
    }
    get readable() { return this.__transform.readable; }
    get writable() { return this.__transform.writable; }
  }
  internal.brand(DecompressionStream);

  internal.expose("CompressionStream", CompressionStream);
  internal.expose("DecompressionStream", DecompressionStream);
});

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

  // CompressionStream or DecompressionStream: `new X(format)` with the
  // GenericTransformStream's `readable` and `writable`.
  function coderClass(name, decompress) {
    const Class = {
      [name]: class {
        constructor(format) {
          if (arguments.length === 0) throw new TypeError("Failed to construct '" + name + "': 1 argument required");
          Object.defineProperty(this, "__transform", { value: coderStream(format, decompress, name) });
        }
        get readable() { return this.__transform.readable; }
        get writable() { return this.__transform.writable; }
      },
    }[name];
    internal.brand(Class);
    return Class;
  }
  const CompressionStream = coderClass("CompressionStream", false);
  const DecompressionStream = coderClass("DecompressionStream", true);

  internal.expose("CompressionStream", CompressionStream);
  internal.expose("DecompressionStream", DecompressionStream);
});

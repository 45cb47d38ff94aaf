// Blob and File (File API): immutable bytes with a type (and a name).
(function (internal) {
  "use strict";
  const { toBytes } = internal;
  const blobs = new WeakMap();
  function slot(self) {
    const s = blobs.get(self);
    if (!s) throw new TypeError("Illegal invocation");
    return s;
  }
  function normalizeType(type) {
    const t = String(type);
    return /[^\x20-\x7e]/.test(t) ? "" : t.toLowerCase();
  }
  function partBytes(part, endings) {
    if (part instanceof Blob) return slot(part).bytes;
    if (part instanceof ArrayBuffer || ArrayBuffer.isView(part)) return toBytes(part).slice();
    let text = internal.toUSV(part);
    if (endings === "native") text = text.replace(/\r\n|\r/g, "\n");
    return new internal.TextEncoder().encode(text);
  }

  class Blob {
    constructor(blobParts, options) {
      if (options !== undefined && options !== null && typeof options !== "object" && typeof options !== "function") {
        throw new TypeError("Failed to construct 'Blob': parameter 2 is not an object");
      }
      const opts = options || {};
      const endings = opts.endings === undefined ? "transparent" : String(opts.endings);
      if (endings !== "transparent" && endings !== "native") throw new TypeError("Failed to construct 'Blob': invalid endings");
      const parts = [];
      if (blobParts !== undefined) {
        if (blobParts === null || typeof blobParts !== "object" || typeof blobParts[Symbol.iterator] !== "function") {
          throw new TypeError("Failed to construct 'Blob': The provided value cannot be converted to a sequence.");
        }
        for (const part of blobParts) parts.push(partBytes(part, endings));
      }
      const type = opts.type === undefined ? "" : normalizeType(opts.type);
      blobs.set(this, { bytes: concat(parts), type });
    }
    get size() { return slot(this).bytes.byteLength; }
    get type() { return slot(this).type; }
    slice(start, end, contentType) {
      const bytes = slot(this).bytes;
      const size = bytes.byteLength;
      const clamp = (v, dflt) => {
        if (v === undefined) return dflt;
        const n = Math.trunc(Number(v)) || 0;
        return n < 0 ? Math.max(size + n, 0) : Math.min(n, size);
      };
      const from = clamp(start, 0);
      const to = clamp(end, size);
      const blob = Object.create(Blob.prototype);
      blobs.set(blob, { bytes: bytes.slice(from, Math.max(from, to)), type: contentType === undefined ? "" : normalizeType(contentType) });
      return blob;
    }
    stream() { return internal.streamOf(slot(this).bytes); }
    async text() { return new internal.TextDecoder().decode(slot(this).bytes); }
    async arrayBuffer() { return slot(this).bytes.slice().buffer; }
    async bytes() { return slot(this).bytes.slice(); }
  }
  internal.brand(Blob);

  class File extends Blob {
    constructor(fileBits, fileName, options) {
      if (arguments.length < 2) throw new TypeError("Failed to construct 'File': 2 arguments required");
      super(fileBits, options);
      const opts = options || {};
      const lastModified = opts.lastModified === undefined ? Date.now() : Number(opts.lastModified);
      Object.defineProperty(this, "__file", { value: { name: internal.toUSV(fileName), lastModified: Number.isFinite(lastModified) ? Math.trunc(lastModified) : 0 } });
    }
    get name() { return fileSlot(this).name; }
    get lastModified() { return fileSlot(this).lastModified; }
    get webkitRelativePath() { return ""; }
  }
  function fileSlot(self) {
    const s = Object.prototype.hasOwnProperty.call(self, "__file") && self.__file;
    if (!s) throw new TypeError("Illegal invocation");
    return s;
  }
  internal.brand(File);

  function concat(parts) {
    let total = 0;
    for (const p of parts) total += p.byteLength;
    const out = new Uint8Array(total);
    let at = 0;
    for (const p of parts) {
      out.set(p, at);
      at += p.byteLength;
    }
    return out;
  }

  // The bytes of a Blob, without a copy (for bodies and FormData).
  internal.blobBytes = (blob) => slot(blob).bytes;
  internal.concatBytes = concat;
  Object.assign(internal, { Blob, File });
  internal.expose("Blob", Blob);
  internal.expose("File", File);
});

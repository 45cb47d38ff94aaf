// FileReader and ProgressEvent (File API): a Blob read as an ArrayBuffer,
// a byte string, text or a data: URL, with the load events, each step a
// separate task as the standard describes.
(function (internal) {
  "use strict";
  const { EventTarget, Event, DOMException, Blob } = internal;

  class ProgressEvent extends Event {
    constructor(type, init) {
      super(type, init);
      const i = init || {};
      Object.defineProperty(this, "__progress", {
        value: { lengthComputable: !!i.lengthComputable, loaded: Number(i.loaded) || 0, total: Number(i.total) || 0 },
      });
    }
    get lengthComputable() { return this.__progress.lengthComputable; }
    get loaded() { return this.__progress.loaded; }
    get total() { return this.__progress.total; }
  }
  internal.brand(ProgressEvent);

  const readers = new WeakMap();
  function slot(self) {
    const s = readers.get(self);
    if (!s) throw new TypeError("Illegal invocation");
    return s;
  }
  const task = (f) => internal.setTimer(f, 0);

  class FileReader extends EventTarget {
    constructor() {
      super();
      readers.set(this, { state: 0, result: null, error: null, generation: 0, handlers: {} });
    }
    get readyState() { return slot(this).state; }
    get result() { return slot(this).result; }
    get error() { return slot(this).error; }
    readAsArrayBuffer(blob) { read(this, blob, "arraybuffer"); }
    readAsBinaryString(blob) { read(this, blob, "binary"); }
    readAsText(blob, encoding) { read(this, blob, "text", encoding); }
    readAsDataURL(blob) { read(this, blob, "dataurl"); }
    abort() {
      const s = slot(this);
      if (s.state === 0 || s.state === 2) {
        s.result = null;
        return;
      }
      s.state = 2;
      s.result = null;
      s.generation++;
      fire(this, "abort");
      fire(this, "loadend");
    }
  }
  for (const [name, value] of [["EMPTY", 0], ["LOADING", 1], ["DONE", 2]]) {
    Object.defineProperty(FileReader, name, { value, enumerable: true });
    Object.defineProperty(FileReader.prototype, name, { value, enumerable: true });
  }
  for (const type of ["loadstart", "progress", "load", "abort", "error", "loadend"]) {
    Object.defineProperty(FileReader.prototype, "on" + type, {
      get() { return slot(this).handlers[type] || null; },
      set(handler) {
        const s = slot(this);
        if (s.handlers[type]) this.removeEventListener(type, s.handlers[type]);
        s.handlers[type] = typeof handler === "function" ? handler : null;
        if (s.handlers[type]) this.addEventListener(type, s.handlers[type]);
      },
      enumerable: true,
      configurable: true,
    });
  }
  internal.brand(FileReader);

  function fire(reader, type, loaded, total) {
    reader.dispatchEvent(new ProgressEvent(type, { lengthComputable: total !== undefined, loaded: loaded || 0, total: total || 0 }));
  }

  function read(reader, blob, kind, encoding) {
    const s = slot(reader);
    if (!(blob instanceof Blob)) throw new TypeError("Failed to execute 'read' on 'FileReader': parameter 1 is not of type 'Blob'.");
    if (s.state === 1) throw new DOMException("The object is already busy reading Blobs.", "InvalidStateError");
    s.state = 1;
    s.result = null;
    s.error = null;
    const generation = ++s.generation;
    const bytes = internal.blobBytes(blob);
    const live = () => s.generation === generation;
    task(() => {
      if (!live()) return;
      fire(reader, "loadstart", 0, bytes.length);
      task(() => {
        if (!live()) return;
        fire(reader, "progress", bytes.length, bytes.length);
        task(() => {
          if (!live()) return;
          s.state = 2;
          s.result = result(bytes, kind, encoding, blob.type);
          fire(reader, "load", bytes.length, bytes.length);
          if (s.state !== 1) fire(reader, "loadend", bytes.length, bytes.length);
        });
      });
    });
  }

  function result(bytes, kind, encoding, type) {
    switch (kind) {
      case "arraybuffer": return bytes.slice().buffer;
      case "binary": return internal.native.latin1Decode(bytes);
      case "dataurl": return "data:" + (type || "application/octet-stream") + ";base64," + internal.native.btoa(internal.native.latin1Decode(bytes));
      default: {
        let label = "utf-8";
        if (encoding !== undefined && internal.native.encodingName(String(encoding))) label = String(encoding);
        return new internal.TextDecoder(label).decode(bytes);
      }
    }
  }

  internal.expose("ProgressEvent", ProgressEvent);
  internal.expose("FileReader", FileReader);
});

// Shared helpers of the web platform files (evaluated first, in the
// snapshot). Every file in this folder is a function of `internal`: the
// natives written in Rust (`internal.native`) and what earlier files left
// there. `expose` defines a global the way Web IDL does (writable,
// configurable, not enumerable).
(function (internal) {
  "use strict";
  internal.expose = function expose(name, value) {
    Object.defineProperty(globalThis, name, { value, writable: true, enumerable: false, configurable: true });
  };

  // A string as a USVString: lone surrogates become U+FFFD.
  internal.toUSV = function toUSV(value) {
    return String(value).toWellFormed();
  };

  // Any BufferSource as a Uint8Array over the same bytes (no copy).
  internal.toBytes = function toBytes(value, what) {
    if (value instanceof Uint8Array) return value;
    if (value instanceof ArrayBuffer) return new Uint8Array(value);
    if (ArrayBuffer.isView(value)) return new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
    if (typeof SharedArrayBuffer === "function" && value instanceof SharedArrayBuffer) return new Uint8Array(value);
    throw new TypeError((what || "The value") + " is not an ArrayBuffer or an ArrayBuffer view");
  };

  // The prototypes of the platform's classes: their instances are platform
  // objects, which structuredClone refuses unless the standard makes them
  // serializable (the codec knows those: Blob, File, DOMException, …).
  internal.platformPrototypes = new WeakSet();

  // Gives a class's instances the @@toStringTag Web IDL gives interfaces
  // (`[object URL]`), and marks them as platform objects.
  internal.brand = function brand(Class, tag) {
    Object.defineProperty(Class.prototype, Symbol.toStringTag, { value: tag || Class.name, configurable: true });
    internal.platformPrototypes.add(Class.prototype);
  };

  // Web IDL pair iterators (Headers, URLSearchParams): `pairIterator(tag,
  // pairs)` returns `iterate(owner, pick)`, an iterator over `pairs(owner)`
  // read afresh at every step, as the standards' live lists are.
  const IteratorPrototype = Object.getPrototypeOf(Object.getPrototypeOf([][Symbol.iterator]()));
  internal.pairIterator = function pairIterator(tag, pairs) {
    const prototype = Object.create(IteratorPrototype, {
      next: {
        value: function next() {
          const state = this.__state;
          if (!state) throw new TypeError("Illegal invocation");
          const list = pairs(state.owner);
          if (state.index >= list.length) return { value: undefined, done: true };
          return { value: state.pick(list[state.index++]), done: false };
        },
        writable: true, enumerable: true, configurable: true,
      },
      [Symbol.toStringTag]: { value: tag, configurable: true },
    });
    return function iterate(owner, pick) {
      pairs(owner);
      const it = Object.create(prototype);
      Object.defineProperty(it, "__state", { value: { owner, index: 0, pick } });
      return it;
    };
  };

  // Web IDL `long long` / `unsigned long` conversions used by several files.
  internal.toUnsignedLong = function toUnsignedLong(value) {
    const n = Number(value);
    if (!Number.isFinite(n)) return 0;
    return (Math.trunc(n) % 4294967296 + 4294967296) % 4294967296;
  };
});

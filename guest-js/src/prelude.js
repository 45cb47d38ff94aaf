// Evaluated once, when the guest is pre-initialized (so it lives in the
// snapshot and costs nothing per call), after the web platform files in
// `web/` and before those that need the codec. It receives the raw host
// functions and the web files' shared `internal`, installs the globals user
// code sees (`console`, `api`, `__vt`), and returns the helpers the Rust
// side of the guest calls. User code never sees the raw
// host functions; and they could not do more than the frame allows anyway,
// since the host decides everything from the frame of its own store.
(function (hostLog, host, internal) {
  "use strict";
  const stringify = JSON.stringify;
  const parse = JSON.parse;
  const isArray = Array.isArray;

  // Renders one console argument the way a developer expects to read it.
  function inspect(value, seen) {
    switch (typeof value) {
      case "string":
        return value;
      case "undefined":
        return "undefined";
      case "bigint":
        return value + "n";
      case "symbol":
        return value.toString();
      case "function":
        return "[Function " + (value.name || "anonymous") + "]";
      case "object":
        break;
      default:
        return String(value);
    }
    if (value === null) return "null";
    if (value instanceof Error) return value.stack ? value.name + ": " + value.message + "\n" + value.stack : String(value);
    if (seen.includes(value)) return "[Circular]";
    seen = seen.concat([value]);
    const inner = (v) => (typeof v === "string" ? stringify(v) : inspect(v, seen));
    if (isArray(value)) return "[" + value.map(inner).join(", ") + "]";
    if (value instanceof Map) return "Map(" + value.size + ") {" + [...value].map(([k, v]) => inner(k) + " => " + inner(v)).join(", ") + "}";
    if (value instanceof Set) return "Set(" + value.size + ") {" + [...value].map(inner).join(", ") + "}";
    if (value instanceof Date) return value.toISOString();
    if (value instanceof RegExp) return String(value);
    const keys = Object.keys(value);
    if (keys.length === 0) return "{}";
    return "{ " + keys.map((k) => k + ": " + inner(value[k])).join(", ") + " }";
  }

  // An exception nobody caught (a timer callback, an event listener,
  // reportError): reported to the call's log, as a browser reports it.
  internal.reportException = (e) => hostLog(3, "Uncaught " + inspect(e, []));
  // `console` gets its methods from web/console.js; its slots are made
  // here, so the object keeps its place in the heap (see docs/perf.md).
  const console = {};
  for (const name of ["log", "info", "warn", "error", "debug", "assert", "count", "countReset", "time", "timeLog",
    "timeEnd", "group", "groupCollapsed", "groupEnd", "table", "dir", "dirxml", "trace", "clear"]) {
    console[name] = undefined;
  }
  // For web/console.js: one value as the log shows it, and a line to the
  // call's log at a WIT log level.
  internal.inspect = (value) => inspect(value, []);
  internal.writeLog = hostLog;

  // ---- errors ---------------------------------------------------------

  class DataCloneError extends Error {}
  DataCloneError.prototype.name = "DataCloneError";
  class PermissionError extends Error {}
  PermissionError.prototype.name = "PermissionError";
  const errorTypes = {
    Error, TypeError, RangeError, SyntaxError, ReferenceError, EvalError, URIError,
    DataCloneError, PermissionError,
  };

  // An error described as {name, message, stack} made into a real Error.
  function reviveError(described) {
    const Type = errorTypes[described.name] || Error;
    const error = new Type(String(described.message));
    if (!errorTypes[described.name]) {
      Object.defineProperty(error, "name", { value: String(described.name), writable: true, configurable: true });
    }
    if (described.stack) {
      Object.defineProperty(error, "stack", { value: String(described.stack), writable: true, configurable: true });
    }
    return error;
  }

  // Describes a thrown value as {name, message, stack}.
  function errorRecord(e) {
    if (e !== null && typeof e === "object") {
      return {
        name: e.name === undefined ? "Error" : String(e.name),
        message: e.message === undefined ? inspect(e, []) : String(e.message),
        stack: typeof e.stack === "string" ? e.stack : "",
      };
    }
    return { name: "Error", message: "Uncaught " + inspect(e, []), stack: "" };
  }

  // ---- the tagged codec of library calls -------------------------------
  // Plain data travels as itself: strings, booleans, finite numbers, null,
  // arrays and objects (unless an object has a `$` or `__proto__` key).
  // Everything else is an object tagged by `$`. Every object is numbered in
  // the order encoding meets it (depth first, before its contents) and
  // decoding numbers what it builds in the same order, so `{$: "r", id}`
  // brings shared and cyclic references back shared. Objects with awkward
  // keys travel as key/value pairs, so `__proto__` stays an own property and
  // never touches a prototype. Each property is read exactly once.

  const typedArrays = {
    Int8Array, Uint8Array, Uint8ClampedArray, Int16Array, Uint16Array,
    Int32Array, Uint32Array, Float32Array, Float64Array, BigInt64Array, BigUint64Array,
  };
  const hasOwn = Object.prototype.hasOwnProperty;
  const getPrototypeOf = Object.getPrototypeOf;
  const objectKeys = Object.keys;
  const defineProperty = Object.defineProperty;

  // Thrown inside the encoder; `encodeTagged` turns it into a DataCloneError
  // naming where the value was going (built only when it is thrown).
  class Uncloneable {
    constructor(what) {
      this.what = what;
    }
  }

  // A value that is the same in JSON and in the codec: no copy needed.
  function plainPrimitive(v) {
    switch (typeof v) {
      case "string":
      case "boolean":
        return true;
      case "number":
        return v === v && v !== Infinity && v !== -Infinity && (v !== 0 || 1 / v > 0);
      default:
        return v === null;
    }
  }

  function encodeValue(v, seen) {
    switch (typeof v) {
      case "undefined": return { $: "u" };
      case "number":
        if (v !== v) return { $: "n", v: "NaN" };
        if (v === Infinity) return { $: "n", v: "Infinity" };
        if (v === -Infinity) return { $: "n", v: "-Infinity" };
        if (v === 0 && 1 / v < 0) return { $: "n", v: "-0" };
        return v;
      case "string":
      case "boolean":
        return v;
      case "bigint": return { $: "b", v: v.toString() };
      case "function": throw new Uncloneable("a function");
      case "symbol": throw new Uncloneable("a symbol");
    }
    if (v === null) return null;
    const earlier = seen.get(v);
    if (earlier !== undefined) return { $: "r", id: earlier };
    seen.set(v, seen.size);
    if (isArray(v)) {
      const length = v.length;
      const items = new Array(length);
      for (let i = 0; i < length; i++) items[i] = encodeValue(v[i], seen);
      return items;
    }
    const proto = getPrototypeOf(v);
    if (proto === Object.prototype || proto === null) return encodeObject(v, seen);
    if (v instanceof Date) return { $: "d", v: encodeValue(v.getTime(), seen) };
    if (v instanceof Number) return { $: "N", v: encodeValue(v.valueOf(), seen) };
    if (v instanceof String) return { $: "S", v: v.valueOf() };
    if (v instanceof Boolean) return { $: "B", v: v.valueOf() };
    if (v instanceof internal.File) {
      return { $: "F", name: v.name, lastModified: v.lastModified, type: v.type, v: Array.from(internal.blobBytes(v)) };
    }
    if (v instanceof internal.Blob) return { $: "bl", type: v.type, v: Array.from(internal.blobBytes(v)) };
    const web = encodeWebValue(v, seen);
    if (web !== undefined) return web;
    if (v instanceof RegExp) return { $: "re", source: v.source, flags: v.flags };
    if (v instanceof Map) return { $: "m", v: [...v].map(([k, x]) => [encodeValue(k, seen), encodeValue(x, seen)]) };
    if (v instanceof Set) return { $: "s", v: [...v].map((x) => encodeValue(x, seen)) };
    if (v instanceof Error) {
      const record = errorRecord(v);
      return { $: "e", name: record.name, message: record.message, stack: record.stack };
    }
    if (v instanceof ArrayBuffer) return { $: "ab", v: Array.from(new Uint8Array(v)) };
    if (ArrayBuffer.isView(v)) {
      const type = Object.keys(typedArrays).find((name) => v instanceof typedArrays[name]);
      if (!type) throw new Uncloneable("a DataView");
      return { $: "ta", type, v: Array.from(new Uint8Array(v.buffer, v.byteOffset, v.byteLength)) };
    }
    if (v instanceof Promise) throw new Uncloneable("a Promise");
    if (v instanceof WeakMap || v instanceof WeakSet || (typeof WeakRef === "function" && v instanceof WeakRef)) {
      throw new Uncloneable("a weak collection");
    }
    if (!copyingPlatformObjects) refusePlatformObject(proto);
    return encodeObject(v, seen);
  }

  // structuredClone of any other platform object (an AbortController, a
  // stream, an EventTarget, …) is a DataCloneError, as the standard says;
  // between vals it travels as its own properties, like any object.
  function refusePlatformObject(proto) {
    const platform = internal.platformPrototypes;
    for (let p = proto; p !== null && p !== Object.prototype; p = getPrototypeOf(p)) {
      if (platform.has(p)) throw new Uncloneable("a " + (p[Symbol.toStringTag] || "platform object"));
    }
  }

  // Whether the web platform's classes that structuredClone refuses (URL,
  // Headers, Request, …) are copied: yes between vals, no for structuredClone.
  let copyingPlatformObjects = true;

  // URL, URLSearchParams, Headers, FormData, Request and Response as data
  // (a Request or Response with its body's bytes), or undefined for
  // anything else.
  function encodeWebValue(v, seen) {
    const kind = v instanceof internal.URL ? "URL" : v instanceof internal.URLSearchParams ? "URLSearchParams"
      : v instanceof internal.Headers ? "Headers" : v instanceof internal.FormData ? "FormData"
      : v instanceof internal.Request ? "Request" : v instanceof internal.Response ? "Response" : undefined;
    if (kind === undefined) return undefined;
    if (!copyingPlatformObjects) throw new Uncloneable("a " + kind);
    switch (kind) {
      case "URL": return { $: "U", v: v.href };
      case "URLSearchParams": return { $: "Q", v: v.toString() };
      case "Headers": return { $: "H", v: Array.from(v) };
      case "FormData": return { $: "FD", v: Array.from(v, ([name, value]) => [name, encodeValue(value, seen)]) };
    }
    const body = internal.bodySnapshot(v);
    if (body === false) throw new Uncloneable("a " + kind + " whose body is a stream or was already read (read it with arrayBuffer() and pass a new one)");
    const bytes = body === null ? null : Array.from(body);
    if (kind === "Request") return { $: "Rq", url: v.url, method: v.method, headers: Array.from(v.headers), body: bytes };
    return { $: "Rs", status: v.status, statusText: v.statusText, headers: Array.from(v.headers), body: bytes, url: v.url, redirected: v.redirected, type: v.type };
  }

  // Any other object travels as its own enumerable properties.
  function encodeObject(v, seen) {
    const keys = objectKeys(v);
    if (keys.includes("$") || keys.includes("__proto__")) {
      const pairs = [];
      for (const key of keys) pairs.push([key, encodeValue(v[key], seen)]);
      return { $: "o", v: pairs };
    }
    const copy = {};
    for (const key of keys) copy[key] = encodeValue(v[key], seen);
    return copy;
  }

  // The tagged JSON text of `root`; `context` says where it is going
  // ("to @bob.f"), for the error about a value that cannot go there.
  function encodeTagged(root, context) {
    if (plainPrimitive(root)) return stringify(root);
    try {
      return stringify(encodeValue(root, new Map()));
    } catch (e) {
      if (!(e instanceof Uncloneable)) throw e;
      throw new DataCloneError(e.what + " cannot be passed " + context() + ": only copyable values (no functions, symbols, Promises or weak collections) cross between vals");
    }
  }

  // The tagged JSON text of the arguments of a call to @owner.name: an array
  // of plain primitives is its own encoding.
  function encodeArguments(args, owner, name, version) {
    for (let i = 0; i < args.length; i++) {
      if (!plainPrimitive(args[i])) return encodeTagged(args, () => "to " + refName(owner, name, version));
    }
    return stringify(args);
  }

  function malformed() {
    return new TypeError("malformed value in a library call");
  }

  function decodeValue(t, refs) {
    if (t === null || typeof t !== "object") return t;
    if (isArray(t)) {
      refs.push(t);
      for (let i = 0; i < t.length; i++) {
        const x = t[i];
        if (x !== null && typeof x === "object") t[i] = decodeValue(x, refs);
      }
      return t;
    }
    if (!hasOwn.call(t, "$")) {
      refs.push(t);
      for (const key of Object.keys(t)) {
        const x = t[key];
        if (x === null || typeof x !== "object") continue;
        // Plain containers are decoded in place; only a tag is replaced.
        const value = decodeValue(x, refs);
        if (value !== x) defineProperty(t, key, { value, writable: true, enumerable: true, configurable: true });
      }
      return t;
    }
    switch (t.$) {
      case "u": return undefined;
      case "n": return Number(t.v);
      case "b": return BigInt(t.v);
      case "r":
        if (typeof t.id !== "number" || !(t.id in refs)) throw malformed();
        return refs[t.id];
      case "a": {
        const a = [];
        refs.push(a);
        for (const x of t.v) a.push(decodeValue(x, refs));
        return a;
      }
      case "d": {
        const d = new Date(NaN);
        refs.push(d);
        d.setTime(decodeValue(t.v, refs));
        return d;
      }
      case "N":
      case "S":
      case "B": {
        const wrapper = Object(t.$ === "N" ? decodeValue(t.v, refs) : t.$ === "S" ? String(t.v) : !!t.v);
        refs.push(wrapper);
        return wrapper;
      }
      case "bl": {
        const blob = new internal.Blob([new Uint8Array(t.v)], { type: String(t.type) });
        refs.push(blob);
        return blob;
      }
      case "FD": {
        // The form is numbered before the values inside it, as encoded.
        const form = new internal.FormData();
        refs.push(form);
        for (const [name, value] of t.v) form.append(String(name), decodeValue(value, refs));
        return form;
      }
      case "U":
      case "Q":
      case "H":
      case "Rq":
      case "Rs": {
        const value = decodeWebValue(t);
        refs.push(value);
        return value;
      }
      case "F": {
        const file = new internal.File([new Uint8Array(t.v)], String(t.name), { type: String(t.type), lastModified: Number(t.lastModified) });
        refs.push(file);
        return file;
      }
      case "re": {
        const re = new RegExp(t.source, t.flags);
        refs.push(re);
        return re;
      }
      case "m": {
        const m = new Map();
        refs.push(m);
        for (const [k, x] of t.v) m.set(decodeValue(k, refs), decodeValue(x, refs));
        return m;
      }
      case "s": {
        const s = new Set();
        refs.push(s);
        for (const x of t.v) s.add(decodeValue(x, refs));
        return s;
      }
      case "e": {
        const e = reviveError(t);
        refs.push(e);
        return e;
      }
      case "ab": {
        const ab = new Uint8Array(t.v).buffer;
        refs.push(ab);
        return ab;
      }
      case "ta": {
        const Type = typedArrays[t.type];
        if (!Type) throw malformed();
        const ta = new Type(new Uint8Array(t.v).buffer);
        refs.push(ta);
        return ta;
      }
      case "o": {
        const o = {};
        refs.push(o);
        for (const [key, x] of t.v) {
          defineProperty(o, String(key), { value: decodeValue(x, refs), writable: true, enumerable: true, configurable: true });
        }
        return o;
      }
      default: throw malformed();
    }
  }

  // What encodeWebValue made (but FormData), rebuilt.
  function decodeWebValue(t) {
    switch (t.$) {
      case "U": return new internal.URL(String(t.v));
      case "Q": return new internal.URLSearchParams(String(t.v));
      case "H": return new internal.Headers(t.v);
      case "Rq": {
        const method = String(t.method);
        const body = t.body === null || method === "GET" || method === "HEAD" ? undefined : new Uint8Array(t.body);
        return new internal.Request(String(t.url), { method, headers: t.headers, body });
      }
      default: {
        if (t.type === "error") return internal.Response.error();
        const status = Number(t.status);
        const response = new internal.Response(t.body === null ? null : new Uint8Array(t.body), {
          status: status >= 200 && status <= 599 ? status : 200, statusText: String(t.statusText), headers: t.headers,
        });
        internal.setResponseMeta(response, { status, url: String(t.url), redirected: !!t.redirected, type: String(t.type) });
        return response;
      }
    }
  }

  internal.codec = {
    // A copy of `value` by the codec's rules (structuredClone).
    clone(value) {
      if (plainPrimitive(value)) return value;
      copyingPlatformObjects = false;
      try {
        return decodeValue(parse(encodeTagged(value, () => "to structuredClone")), []);
      } finally {
        copyingPlatformObjects = true;
      }
    },
  };

  // Decodes what `encodeValue` made, after JSON.parse; plain arrays and
  // objects are taken over in place.
  function decodeTagged(root) {
    return decodeValue(root, []);
  }

  // Decodes tagged JSON text. Text in which no `"$"` occurs holds no tag,
  // so it is plain JSON.
  function decodeText(text) {
    const value = parse(text);
    return text.indexOf('"$"') < 0 ? value : decodeValue(value, []);
  }

  // ---- capabilities ------------------------------------------------------

  // Calls a JSON host import; a refusal becomes a thrown error.
  function hostCall(importFn, request) {
    const answer = parse(importFn(stringify(request)));
    if (answer.error) throw reviveError(answer.error);
    return answer;
  }

  // The val imports (read-val, library-call, api-call) answer with one tag
  // character and a payload: `v` value, `p` value of a settled Promise,
  // `r` a returned Promise rejected (a described error), `f` the val is a
  // function, `u` undefined, `t` the val threw (a described error), `e`
  // refused (a described error).
  function answerError(answer) {
    return reviveError(parse(answer.slice(1)));
  }

  const REF = Symbol("valbox.ref");

  function refName(owner, name, version) {
    return "@" + owner + "." + name + (version ? "@" + version : "");
  }

  function libraryCall(owner, name, version, args) {
    const text = encodeArguments(args, owner, name, version);
    const answer = host.libraryCall(owner, name, version || 0, text);
    switch (answer[0]) {
      case "v": return decodeText(answer.slice(1));
      case "p": return Promise.resolve(decodeText(answer.slice(1)));
      // The callee returned a Promise that rejected: so does the call.
      case "r": return Promise.reject(answerError(answer));
      case "u": throw new TypeError(refName(owner, name, version) + " is not a function");
      default: throw answerError(answer);
    }
  }

  function readVal(owner, name, version) {
    const answer = host.readVal(owner, name, version || 0, "");
    switch (answer[0]) {
      case "v": return decodeText(answer.slice(1));
      case "p": return Promise.resolve(decodeText(answer.slice(1)));
      case "u": return undefined;
      case "f": {
        const call = function (...args) {
          return libraryCall(owner, name, version, args);
        };
        defineProperty(call, "name", { value: name });
        defineProperty(call, REF, { value: Object.freeze({ owner, name, version }) });
        return call;
      }
      default: throw answerError(answer);
    }
  }

  // `@owner.name` where it is not called: `.value` reads or writes the val,
  // and `api()` takes it as its target.
  class Ref {
    constructor(owner, name, version) {
      this.owner = owner;
      this.name = name;
      this.version = version;
      Object.freeze(this);
    }
    get value() {
      return readVal(this.owner, this.name, this.version);
    }
    set value(v) {
      const { owner, name, version } = this;
      const encoded = encodeTagged(v, () => "into " + refName(owner, name, version));
      hostCall(host.writeVal, { owner, name, value: parse(encoded) });
    }
  }
  Object.freeze(Ref.prototype);

  // Throws unless `value` is plain JSON data (API mode passes JSON only).
  function requireJson(value, path) {
    switch (typeof value) {
      case "string":
      case "boolean":
        return;
      case "number":
        if (!Number.isFinite(value)) throw new TypeError("api() passes JSON only: " + path + " is " + value);
        return;
      case "object":
        if (value === null) return;
        if (isArray(value)) return value.forEach((v, i) => requireJson(v, path + "[" + i + "]"));
        if (Object.getPrototypeOf(value) !== Object.prototype && Object.getPrototypeOf(value) !== null) {
          throw new TypeError("api() passes JSON only: " + path + " is a " + (value.constructor && value.constructor.name));
        }
        for (const key of Object.keys(value)) requireJson(value[key], path + "." + key);
        return;
      default:
        throw new TypeError("api() passes JSON only: " + path + " is " + (typeof value === "function" ? "a function" : typeof value));
    }
  }

  function api(target, ...args) {
    return new Promise((resolve) => {
      const info = target instanceof Ref ? target : typeof target === "function" ? target[REF] : undefined;
      if (!info) throw new TypeError("api() takes a val reference: api(@user.val, ...args)");
      requireJson(args, "args");
      const answer = host.apiCall(info.owner, info.name, info.version || 0, stringify(args));
      switch (answer[0]) {
        case "v":
        case "p":
          return resolve(parse(answer.slice(1)));
        case "u": throw new TypeError(refName(info.owner, info.name, info.version) + " was not found");
        default: throw answerError(answer);
      }
    });
  }

  console.email = function email(subject, body) {
    const text = (v) => (typeof v === "string" ? v : inspect(v, []));
    hostCall(host.sendEmail, { subject: text(subject === undefined ? "" : subject), body: text(body === undefined ? "" : body) });
  };

  // ---- HTTP handlers: web/http_handlers.js (loaded last, so the snapshot
  // objects a plain call touches keep their place) -------------------------

  // ---- fetch (the classes are in web/fetch.js) ---------------------------------

  // A request starts (its id), runs while the loop goes on, and is taken
  // once the loop heard it finished, or given up (web/fetch.js).
  internal.hostFetch = {
    start: (request) => hostCall(host.fetchStart, request).ok,
    take: (id) => hostCall(host.fetchTake, { id }).ok,
    cancel: (id) => hostCall(host.fetchCancel, { id }),
  };

  // An IANA time zone at an instant, for Intl: {name, offset, abbreviation}
  // or undefined (web/intl.js).
  internal.timeZone = (name, ms) => hostCall(host.timeZone, { name, ms }).ok;

  const vt = Object.freeze({
    ref(owner, name, version) {
      return new Ref(owner, name, version);
    },
    // `@owner.name(...args)`.
    call(owner, name, version, ...args) {
      return libraryCall(owner, name, version, args);
    },
    secret(owner, key) {
      const answer = hostCall(host.readSecret, { owner, key });
      return answer.undefined ? undefined : answer.ok;
    },
    decode: decodeTagged,
  });
  for (const [name, value] of [["console", console], ["api", api], ["__vt", vt], ["DataCloneError", DataCloneError], ["PermissionError", PermissionError]]) {
    Object.defineProperty(globalThis, name, { value, writable: name === "console", enumerable: false, configurable: false });
  }

  const backFromThisVal = () => "back from this val";

  return {
    // JSON result of a call; `undefined` (which JSON cannot carry) becomes null.
    // A returned Response gives instead the Promise of its description.
    encodeResult(value) {
      // A returned Response: the promise of its description (lib.rs).
      if (value instanceof internal.Response) return Promise.resolve(internal.webResponse(value));
      const text = stringify(value);
      return text === undefined ? "null" : text;
    },
    // A library call's or read's answer: `p` (the val returned a Promise)
    // or `v`, then the tagged JSON text of the value.
    encodeTaggedResult(value, promise) {
      return (promise ? "p" : "v") + encodeTagged(value, backFromThisVal);
    },
    decodeArgs(text, tagged) {
      const args = tagged ? decodeText(text) : parse(text);
      if (!isArray(args)) throw new TypeError("arguments must be a JSON array");
      return args;
    },
    describeError(e) {
      return stringify(errorRecord(e));
    },
    express(handler, requestText) {
      return internal.express(handler, requestText);
    },
  };
});

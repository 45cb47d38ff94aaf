// Headers, Request, Response and fetch (Fetch Standard). Bodies are bytes
// or a ReadableStream; `fetch` goes out through the host's `fetch` import,
// which applies the operator's address guard, and honours an AbortSignal
// (already aborted: rejected at once; `AbortSignal.timeout`: the host
// stops the request at that time).
(function (internal) {
  "use strict";
  const { native, toUSV, toBytes, Blob, FormData, URLSearchParams, DOMException } = internal;
  const { ReadableStream } = internal.streams;
  const encoder = new internal.TextEncoder();
  const decoder = new internal.TextDecoder();

  // ---- Headers ---------------------------------------------------------------

  const tokenRe = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
  const headerSlots = new WeakMap();
  function hslot(self) {
    const s = headerSlots.get(self);
    if (!s) throw new TypeError("Illegal invocation");
    return s;
  }
  // QuickJS's regex `replace` costs microseconds: values are trimmed only
  // when they start or end with whitespace, and checked with regexes made
  // once.
  const edgeSpaceRe = /^[\t\n\r ]+|[\t\n\r ]+$/g;
  const badValueRe = /[\0\r\n]|[^\x00-\xff]/;
  const isSpace = (c) => c === 32 || c === 9 || c === 10 || c === 13;
  function normalizeValue(value) {
    const v = String(value);
    if (v.length === 0 || !(isSpace(v.charCodeAt(0)) || isSpace(v.charCodeAt(v.length - 1)))) return v;
    return v.replace(edgeSpaceRe, "");
  }
  // Header names seen often, as given and lower-cased: a lookup instead of
  // a regex test (QuickJS's regexes cost microseconds a test).
  const knownNames = new Map();
  for (const name of ["accept", "accept-encoding", "accept-language", "authorization", "cache-control", "connection",
    "content-disposition", "content-encoding", "content-length", "content-type", "cookie", "etag", "host", "location",
    "origin", "referer", "set-cookie", "user-agent", "vary", "x-request-id"]) {
    knownNames.set(name, name);
    knownNames.set(name.replace(/(^|-)[a-z]/g, (c) => c.toUpperCase()), name);
  }
  function checkName(name) {
    const n = typeof name === "string" ? name : String(name);
    const known = knownNames.get(n);
    if (known !== undefined) return known;
    if (!tokenRe.test(n)) throw new TypeError("Headers: '" + n + "' is not a valid header name");
    return n.toLowerCase();
  }
  // Values the platform itself sets: a lookup instead of a regex test.
  const knownValues = new Set(["text/plain;charset=UTF-8", "application/json", "application/x-www-form-urlencoded;charset=UTF-8",
    "text/plain", "text/html", "text/plain; charset=utf-8", "text/html; charset=utf-8", "application/json; charset=utf-8",
    "application/octet-stream"]);
  function checkValue(value) {
    if (knownValues.has(value)) return value;
    const v = normalizeValue(value);
    if (badValueRe.test(v)) throw new TypeError("Headers: '" + v + "' is not a valid header value");
    return v;
  }
  function writable(s) {
    if (s.guard === "immutable") throw new TypeError("Headers are immutable");
  }
  function fill(headers, init) {
    if (init === undefined || init === null) {
      if (init === null) throw new TypeError("Headers: init must not be null");
      return;
    }
    if (typeof init !== "object" && typeof init !== "function") throw new TypeError("Headers: init must be an object");
    const iterator = init[Symbol.iterator];
    if (iterator !== undefined) {
      if (typeof iterator !== "function") throw new TypeError("Headers: init's @@iterator is not callable");
      for (const pair of init) {
        if (pair === null || typeof pair !== "object" || typeof pair[Symbol.iterator] !== "function") throw new TypeError("Headers: each header must be a [name, value] pair");
        const items = [...pair];
        if (items.length !== 2) throw new TypeError("Headers: each header must be a [name, value] pair");
        appendTo(hslot(headers), items[0], items[1]);
      }
    } else {
      for (const key of Reflect.ownKeys(init)) {
        const desc = Reflect.getOwnPropertyDescriptor(init, key);
        if (desc === undefined || !desc.enumerable) continue;
        if (typeof key === "symbol") throw new TypeError("Headers: a symbol is not a header name");
        appendTo(hslot(headers), key, init[key]);
      }
    }
  }
  function appendTo(s, name, value) {
    const n = checkName(name);
    const v = checkValue(value);
    writable(s);
    s.list.push([n, v]);
    s.sorted = null;
  }
  // The list's pairs of name `n` (pairs are [name, value]; plain loops, as
  // destructuring a pair walks an iterator in QuickJS).
  function valuesOf(list, n) {
    const values = [];
    for (let i = 0; i < list.length; i++) if (list[i][0] === n) values.push(list[i][1]);
    return values;
  }
  // Whether the list has a pair of name `n`.
  function hasName(list, n) {
    for (let i = 0; i < list.length; i++) if (list[i][0] === n) return true;
    return false;
  }

  class Headers {
    constructor(init) {
      headerSlots.set(this, { list: [], guard: "none", sorted: null });
      fill(this, init);
    }
    append(name, value) {
      if (value === undefined && arguments.length < 2) throw new TypeError("Headers.append takes 2 arguments");
      appendTo(hslot(this), name, value);
    }
    delete(name) {
      const s = hslot(this);
      const n = checkName(name);
      writable(s);
      s.list = s.list.filter((p) => p[0] !== n);
      s.sorted = null;
    }
    get(name) {
      const values = valuesOf(hslot(this).list, checkName(name));
      return values.length ? values.join(", ") : null;
    }
    getSetCookie() {
      return valuesOf(hslot(this).list, "set-cookie");
    }
    has(name) {
      return hasName(hslot(this).list, checkName(name));
    }
    set(name, value) {
      if (value === undefined && arguments.length < 2) throw new TypeError("Headers.set takes 2 arguments");
      const s = hslot(this);
      const n = checkName(name);
      const v = checkValue(value);
      writable(s);
      const index = s.list.findIndex((p) => p[0] === n);
      if (index < 0) s.list.push([n, v]);
      else {
        s.list[index] = [n, v];
        s.list = s.list.filter((p, i) => i <= index || p[0] !== n);
      }
      s.sorted = null;
    }
    forEach(callback, thisArg) {
      if (typeof callback !== "function") throw new TypeError("Headers.forEach takes a function");
      for (const [k, v] of sortedOf(hslot(this))) callback.call(thisArg, v, k, this);
    }
    keys() { return iterate(this, (p) => p[0]); }
    values() { return iterate(this, (p) => p[1]); }
    entries() { return iterate(this, (p) => [p[0], p[1]]); }
    [Symbol.iterator]() { return this.entries(); }
  }
  // The sort-and-combine of the standard: names sorted, values of a name
  // joined, except set-cookie, which stays one pair per cookie; kept until
  // the list changes.
  function sortedOf(s) {
    if (s.sorted === null) s.sorted = sortedPairs(s.list);
    return s.sorted;
  }
  function sortedPairs(list) {
    if (list.length === 1) return [[list[0][0], list[0][1]]];
    const names = [];
    for (let i = 0; i < list.length; i++) if (!names.includes(list[i][0])) names.push(list[i][0]);
    names.sort();
    const out = [];
    for (const name of names) {
      const values = valuesOf(list, name);
      if (name === "set-cookie") for (const v of values) out.push([name, v]);
      else out.push([name, values.join(", ")]);
    }
    return out;
  }
  const iterate = internal.pairIterator("Headers Iterator", (headers) => sortedOf(hslot(headers)));
  internal.brand(Headers);
  function headersWithGuard(init, guard) {
    const headers = new Headers(init);
    hslot(headers).guard = guard;
    return headers;
  }
  // Headers holding `list` (pairs already checked), as the platform makes them.
  function headersOfList(list, guard) {
    const headers = Object.create(Headers.prototype);
    headerSlots.set(headers, { list, guard, sorted: null });
    return headers;
  }

  // ---- bodies ------------------------------------------------------------------

  // What a body init becomes: {bytes | stream, type}.
  function extractBody(init) {
    if (typeof init === "string") return { bytes: encoder.encode(init), type: "text/plain;charset=UTF-8" };
    if (init instanceof URLSearchParams) return { bytes: encoder.encode(init.toString()), type: "application/x-www-form-urlencoded;charset=UTF-8" };
    if (init instanceof FormData) return internal.encodeMultipart(init);
    if (init instanceof Blob) return { bytes: internal.blobBytes(init), type: init.type || null };
    if (init instanceof ArrayBuffer || ArrayBuffer.isView(init)) return { bytes: toBytes(init).slice(), type: null };
    if (init instanceof ReadableStream) {
      if (init.locked || init._disturbed) throw new TypeError("the body stream is locked or already read");
      return { stream: init, type: null };
    }
    return { bytes: encoder.encode(toUSV(init)), type: "text/plain;charset=UTF-8" };
  }

  const bodySlots = new WeakMap();
  function bslot(self) {
    const s = bodySlots.get(self);
    if (!s) throw new TypeError("Illegal invocation");
    return s;
  }
  function used(s) {
    return s.stream ? !!s.stream._disturbed : s.used;
  }
  async function consume(self) {
    const s = bslot(self);
    if (s.bytes === null && s.stream === null) return new Uint8Array(0);
    if (used(s)) throw new TypeError("Body has already been consumed.");
    if (s.stream && s.stream.locked) throw new TypeError("The body stream is locked.");
    s.used = true;
    if (s.stream) return internal.readAllBytes(s.stream);
    return s.bytes || new Uint8Array(0);
  }
  // The body's stream when it is one nobody has read or locked (a
  // Response streamed out as the HTTP answer), else null.
  function unreadStream(self) {
    const s = bslot(self);
    return s.stream && !used(s) && !s.stream.locked ? s.stream : null;
  }
  function mimeType(self) {
    const type = self.headers.get("content-type");
    return type === null ? "" : type;
  }

  // The methods Request and Response share (the Body mixin).
  const bodyMethods = {
    get body() {
      const s = bslot(this);
      if (s.stream) return s.stream;
      if (s.bytes === null) return null;
      s.stream = internal.streamOf(s.bytes);
      if (s.used) s.stream.getReader().cancel();
      return s.stream;
    },
    get bodyUsed() { return used(bslot(this)); },
    async arrayBuffer() { const b = await consume(this); return b.slice().buffer; },
    async bytes() { return (await consume(this)).slice(); },
    async blob() { const b = await consume(this); return new Blob([b], { type: mimeType(this) }); },
    async text() { return decoder.decode(await consume(this)); },
    async json() { return JSON.parse(decoder.decode(await consume(this))); },
    async formData() {
      const type = mimeType(this);
      const essence = type.split(";")[0].trim().toLowerCase();
      const bytes = await consume(this);
      if (essence === "multipart/form-data") return internal.decodeMultipart(bytes, type);
      if (essence === "application/x-www-form-urlencoded") return internal.decodeUrlencodedForm(decoder.decode(bytes));
      throw new TypeError("the body is not multipart/form-data or application/x-www-form-urlencoded");
    },
  };
  function mixBody(Class) {
    for (const key of Object.keys(Object.getOwnPropertyDescriptors(bodyMethods))) {
      const desc = Object.getOwnPropertyDescriptor(bodyMethods, key);
      desc.enumerable = true;
      Object.defineProperty(Class.prototype, key, desc);
    }
  }
  function setBody(self, headers, init) {
    if (init === undefined || init === null) {
      bodySlots.set(self, { bytes: null, stream: null, used: false });
      return;
    }
    const extracted = extractBody(init);
    bodySlots.set(self, { bytes: extracted.bytes || null, stream: extracted.stream || null, used: false });
    const hs = hslot(headers);
    if (extracted.type && !hasName(hs.list, "content-type")) {
      hs.list.push(["content-type", checkValue(extracted.type)]);
      hs.sorted = null;
    }
  }
  // A copy of a stream chunk that shares no buffer with it.
  function copyChunk(chunk) {
    if (chunk instanceof ArrayBuffer) return chunk.slice(0);
    if (chunk instanceof DataView) return new DataView(chunk.buffer.slice(chunk.byteOffset, chunk.byteOffset + chunk.byteLength));
    if (ArrayBuffer.isView(chunk)) return chunk.slice();
    return chunk;
  }
  // A copy of a body for clone(): bytes are shared (never written), a stream is teed.
  function cloneBody(from, to) {
    const s = bslot(from);
    if (used(s)) throw new TypeError("Cannot clone: the body has already been read.");
    if (s.stream && s.stream.locked) throw new TypeError("Cannot clone: the body stream is locked.");
    let stream = null;
    if (s.stream) {
      const [a, b] = s.stream.tee();
      s.stream = a;
      // The clone gets copies of the chunks, not the same buffers.
      stream = b.pipeThrough(new internal.streams.TransformStream({
        transform(chunk, controller) {
          controller.enqueue(copyChunk(chunk));
        },
      }));
    }
    bodySlots.set(to, { bytes: s.bytes, stream, used: false });
  }

  // ---- Request ------------------------------------------------------------------

  // Relative URLs resolve against `globalThis.location` when code defines
  // one (as Deno's --location does); otherwise they are an error.
  function baseUrl() {
    const location = globalThis.location;
    const href = location && location.href;
    return typeof href === "string" ? href : undefined;
  }

  const methods = ["DELETE", "GET", "HEAD", "OPTIONS", "POST", "PUT", "PATCH"];
  const requestSlots = new WeakMap();
  function rslot(self) {
    const s = requestSlots.get(self);
    if (!s) throw new TypeError("Illegal invocation");
    return s;
  }
  // A Request the host described (the one an HTTP handler gets) keeps its
  // URL, headers and signal as given until first asked for: a handler that
  // never looks at them does not pay for parsing or building them.
  function urlOf(s) {
    if (s.url === undefined) {
      const parsed = internal.URL.parse(s.hostUrl);
      s.url = parsed ? parsed.href : s.hostUrl;
    }
    return s.url;
  }
  function headersOf(s) {
    if (s.headers === undefined) s.headers = headersWithGuard(s.hostHeaders, "request");
    return s.headers;
  }
  function signalOf(s) {
    if (s.signal === undefined) s.signal = new AbortController().signal;
    return s.signal;
  }
  function resolved(s) {
    urlOf(s);
    headersOf(s);
    signalOf(s);
    return s;
  }
  // The Request of an HTTP request the host described: `url` is absolute,
  // `headers` an object of header values, `body` a string or bytes (none
  // for GET and HEAD), `express` the Express-style fields it also has
  // (`query`, `params`, `path`, …; accessors of `hostRequestProto`).
  internal.hostRequest = function hostRequest(url, method, headers, body, express) {
    const request = Object.create(hostRequestProto);
    requestSlots.set(request, { ...requestDefaults, method, url: undefined, hostUrl: url, headers: undefined, hostHeaders: headers, signal: undefined, express });
    const bytes = body === undefined ? null : typeof body === "string" ? encoder.encode(body) : body;
    bodySlots.set(request, { bytes, stream: null, used: false });
    return request;
  };

  // The values the Request enums allow.
  const requestEnums = {
    redirect: ["follow", "error", "manual"],
    credentials: ["omit", "same-origin", "include"],
    mode: ["navigate", "same-origin", "no-cors", "cors"],
    cache: ["default", "no-store", "reload", "no-cache", "force-cache", "only-if-cached"],
    referrerPolicy: ["", "no-referrer", "no-referrer-when-downgrade", "same-origin", "origin", "strict-origin", "origin-when-cross-origin", "strict-origin-when-cross-origin", "unsafe-url"],
    priority: ["high", "low", "auto"],
  };
  const requestDefaults = {
    redirect: "follow", credentials: "same-origin", mode: "cors", cache: "default", referrer: "about:client",
    referrerPolicy: "", integrity: "", keepalive: false, destination: "", duplex: "half", priority: "auto",
  };

  class Request {
    constructor(input, init) {
      if (arguments.length === 0) throw new TypeError("Failed to construct 'Request': 1 argument required, but only 0 present.");
      if (init !== undefined && init !== null && typeof init !== "object") throw new TypeError("Failed to construct 'Request': init is not an object");
      init = init || {};
      const from = input instanceof Request ? input : null;
      const s = { ...requestDefaults };
      if (from) {
        Object.assign(s, resolved(rslot(from)));
      } else {
        const parsed = internal.URL.parse(toUSV(input), baseUrl());
        if (!parsed) throw new TypeError("Failed to construct 'Request': Invalid URL '" + input + "'");
        if (parsed.username || parsed.password) throw new TypeError("Failed to construct 'Request': the URL includes credentials");
        s.url = parsed.href;
        s.method = "GET";
      }
      if (init.method !== undefined) {
        const method = String(init.method);
        if (!tokenRe.test(method)) throw new TypeError("Failed to construct 'Request': '" + method + "' is not a valid HTTP method.");
        const upper = method.toUpperCase();
        if (["CONNECT", "TRACE", "TRACK"].includes(upper)) throw new TypeError("Failed to construct 'Request': '" + method + "' HTTP method is unsupported.");
        s.method = methods.includes(upper) ? upper : method;
      }
      for (const key of ["redirect", "credentials", "mode", "cache", "referrerPolicy", "integrity", "priority"]) {
        if (init[key] === undefined) continue;
        const value = String(init[key]);
        if (requestEnums[key] && !requestEnums[key].includes(value)) {
          throw new TypeError("Failed to construct 'Request': '" + value + "' is not a valid " + key);
        }
        s[key] = value;
      }
      if (init.window !== undefined && init.window !== null) throw new TypeError("Failed to construct 'Request': window must be null");
      if (s.cache === "only-if-cached" && s.mode !== "same-origin") {
        throw new TypeError("Failed to construct 'Request': cache mode 'only-if-cached' needs mode 'same-origin'");
      }
      if (init.referrer !== undefined && init.referrer !== "" && !internal.URL.parse(toUSV(init.referrer), baseUrl())) {
        throw new TypeError("Failed to construct 'Request': the referrer is not a valid URL");
      }
      if (init.keepalive !== undefined) s.keepalive = !!init.keepalive;
      if (init.referrer !== undefined) s.referrer = init.referrer === "" ? "" : "about:client";
      if (s.mode === "navigate") throw new TypeError("Failed to construct 'Request': mode 'navigate' is not allowed");
      if (s.mode === "no-cors" && !["GET", "HEAD", "POST"].includes(s.method)) {
        throw new TypeError("Failed to construct 'Request': mode 'no-cors' allows only GET, HEAD and POST");
      }
      // The signal follows init's, or the input's.
      const parentSignal = init.signal !== undefined ? init.signal : from ? from.signal : null;
      if (parentSignal !== null && parentSignal !== undefined && !(parentSignal instanceof internal.AbortSignal)) {
        throw new TypeError("Failed to construct 'Request': member signal is not of type AbortSignal.");
      }
      s.signal = parentSignal ? AbortSignal.any([parentSignal]) : new AbortController().signal;
      requestSlots.set(this, s);
      const headers = headersWithGuard(init.headers !== undefined ? init.headers : from ? from.headers : undefined, "request");
      s.headers = headers;
      const bodyInit = init.body !== undefined ? init.body : null;
      const inputBody = from !== null && init.body === undefined && (bslot(from).bytes !== null || bslot(from).stream !== null);
      if ((bodyInit !== null || inputBody) && (s.method === "GET" || s.method === "HEAD")) {
        throw new TypeError("Failed to construct 'Request': Request with GET/HEAD method cannot have body.");
      }
      if (bodyInit !== null) {
        setBody(this, headers, bodyInit);
        if (bslot(this).stream && init.duplex !== "half") throw new TypeError("Failed to construct 'Request': a stream body needs duplex: 'half'");
      } else if (from) {
        const fs = bslot(from);
        if (used(fs)) throw new TypeError("Failed to construct 'Request': the input's body has already been read.");
        bodySlots.set(this, { bytes: fs.bytes, stream: fs.stream, used: false });
        if (fs.stream || fs.bytes) fs.used = true;
      } else {
        setBody(this, headers, null);
      }
    }
    get method() { return rslot(this).method; }
    get url() { return urlOf(rslot(this)); }
    get headers() { return headersOf(rslot(this)); }
    get destination() { return rslot(this).destination; }
    get referrer() { return rslot(this).referrer; }
    get referrerPolicy() { return rslot(this).referrerPolicy; }
    get mode() { return rslot(this).mode; }
    get credentials() { return rslot(this).credentials; }
    get cache() { return rslot(this).cache; }
    get redirect() { return rslot(this).redirect; }
    get integrity() { return rslot(this).integrity; }
    get keepalive() { return rslot(this).keepalive; }
    get isReloadNavigation() { return false; }
    get isHistoryNavigation() { return false; }
    get signal() { return signalOf(rslot(this)); }
    get duplex() { return "half"; }
    clone() {
      const s = resolved(rslot(this));
      const copy = Object.create(Request.prototype);
      requestSlots.set(copy, { ...s, headers: headersWithGuard(s.headers, "request"), signal: AbortSignal.any([s.signal]) });
      cloneBody(this, copy);
      return copy;
    }
  }
  mixBody(Request);
  internal.brand(Request);
  // The Express-style fields of a host's Request: readable, and writable
  // as own properties.
  const hostRequestProto = Object.create(Request.prototype);
  for (const key of ["query", "params", "path", "originalUrl", "baseUrl", "protocol", "hostname", "ip"]) {
    Object.defineProperty(hostRequestProto, key, {
      get() { return rslot(this).express[key]; },
      set(value) { Object.defineProperty(this, key, { value, writable: true, enumerable: false, configurable: true }); },
      enumerable: false,
      configurable: true,
    });
  }

  // ---- Response -------------------------------------------------------------------

  const nullBodyStatus = [101, 103, 204, 205, 304];
  // The init of a Response made without one.
  const noInit = Object.freeze({});
  const redirectStatus = [301, 302, 303, 307, 308];
  const responseSlots = new WeakMap();
  function pslot(self) {
    const s = responseSlots.get(self);
    if (!s) throw new TypeError("Illegal invocation");
    return s;
  }

  class Response {
    constructor(body = null, init) {
      if (init !== undefined && init !== null && typeof init !== "object") throw new TypeError("Failed to construct 'Response': init is not an object");
      init = init || noInit;
      const status = init.status === undefined ? 200 : Number(init.status);
      if (!Number.isInteger(status) || status < 200 || status > 599) {
        throw new RangeError("Failed to construct 'Response': The status provided (" + init.status + ") is outside the range [200, 599].");
      }
      const statusText = init.statusText === undefined ? "" : String(init.statusText);
      if (statusText !== "" && !/^[\t\x20-\x7e\x80-\xff]*$/.test(statusText)) throw new TypeError("Failed to construct 'Response': Invalid statusText");
      const headers = init.headers === undefined ? headersOfList([], "response") : headersWithGuard(init.headers, "response");
      responseSlots.set(this, { status, statusText, headers, type: "default", url: "", redirected: false });
      if (body !== null && nullBodyStatus.includes(status)) throw new TypeError("Failed to construct 'Response': Response with null body status cannot have body");
      setBody(this, headers, body);
    }
    static error() {
      const r = new Response(null, {});
      Object.assign(pslot(r), { status: 0, type: "error" });
      hslot(r.headers).guard = "immutable";
      return r;
    }
    static redirect(url, status = 302) {
      const parsed = internal.URL.parse(toUSV(url), baseUrl());
      if (!parsed) throw new TypeError("Failed to execute 'redirect' on 'Response': Invalid URL");
      status = Number(status);
      if (!redirectStatus.includes(status)) throw new RangeError("Failed to execute 'redirect' on 'Response': Invalid status code");
      const r = new Response(null, { status: 200 });
      pslot(r).status = status;
      r.headers.set("location", parsed.href);
      hslot(r.headers).guard = "immutable";
      return r;
    }
    static json(data, init) {
      const text = JSON.stringify(data);
      if (text === undefined) throw new TypeError("Failed to execute 'json' on 'Response': the data is not JSON-serializable");
      const r = new Response(text, init);
      if (!(init && init.headers && new Headers(init.headers).has("content-type"))) r.headers.set("content-type", "application/json");
      return r;
    }
    get type() { return pslot(this).type; }
    get url() { return pslot(this).url; }
    get redirected() { return pslot(this).redirected; }
    get status() { return pslot(this).status; }
    get ok() { const s = pslot(this).status; return s >= 200 && s <= 299; }
    get statusText() { return pslot(this).statusText; }
    get headers() { return pslot(this).headers; }
    clone() {
      const s = pslot(this);
      const copy = Object.create(Response.prototype);
      responseSlots.set(copy, { ...s, headers: headersWithGuard(s.headers, hslot(s.headers).guard) });
      cloneBody(this, copy);
      return copy;
    }
  }
  mixBody(Response);
  internal.brand(Response);

  // ---- fetch ---------------------------------------------------------------------

  // Requests out on the host, by id: their promise's settlers and signal.
  const inFlight = new Map();
  // Called by the event loop (lib.rs) when the host says request `id`
  // finished: settles its fetch, unless its signal gave it up meanwhile.
  internal.fetchFinished = function fetchFinished(id) {
    const pending = inFlight.get(id);
    if (pending === undefined) return;
    inFlight.delete(id);
    try {
      pending.resolve(internal.hostFetch.take(id));
    } catch (e) {
      if (pending.signal.aborted) pending.reject(pending.signal.reason);
      // The host stopped the request at its AbortSignal.timeout, just
      // before the signal's own timer ran.
      else if (pending.abortAt !== undefined && native.now() >= pending.abortAt - 1) pending.reject(new DOMException("The operation timed out.", "TimeoutError"));
      else pending.reject(e);
    }
  };

  async function fetch(input, init) {
    const request = new Request(input, init);
    const signal = request.signal;
    if (signal.aborted) throw signal.reason;
    const s = bslot(request);
    let bytes = null;
    if (s.stream) bytes = await internal.readAllBytes(s.stream);
    else if (s.bytes) bytes = s.bytes;
    const headers = [];
    for (const [k, v] of hslot(request.headers).list) headers.push([k, v]);
    const abortAt = internal.abortDeadline(signal);
    const hostRequest = {
      url: request.url,
      method: request.method,
      headers,
      body: bytes === null ? null : native.latin1Decode(bytes),
    };
    if (abortAt !== undefined) hostRequest.timeout_ms = Math.max(0, Math.ceil(abortAt - native.now()));
    if (signal.aborted) throw signal.reason;
    let id;
    try {
      id = internal.hostFetch.start(hostRequest);
    } catch (e) {
      // Its AbortSignal.timeout passed while it waited for room to start.
      if (abortAt !== undefined && native.now() >= abortAt - 1) throw new DOMException("The operation timed out.", "TimeoutError");
      throw e;
    }
    const answer = await new Promise((resolve, reject) => {
      inFlight.set(id, { resolve, reject, signal, abortAt });
      internal.addAbortAlgorithm(signal, () => {
        if (!inFlight.delete(id)) return;
        internal.hostFetch.cancel(id);
        reject(signal.reason);
      });
    });
    const response = new Response(nullBodyStatus.includes(answer.status) ? null : native.latin1Encode(answer.body), {
      status: answer.status < 200 || answer.status > 599 ? 200 : answer.status,
      statusText: answer.statusText,
      headers: answer.headers,
    });
    Object.assign(pslot(response), { status: answer.status, url: answer.url, redirected: !!answer.redirected, type: "basic" });
    hslot(response.headers).guard = "immutable";
    return response;
  }

  // A body's bytes without reading it (null: no body), or false when it is
  // a stream or was already read (for copying between vals).
  function bodySnapshot(self) {
    const s = bslot(self);
    if (used(s) || s.stream) return false;
    return s.bytes;
  }
  // Sets what a Response made by the platform carries (status outside
  // 200–599, url, redirected, type), for copies between vals.
  function setResponseMeta(response, meta) {
    Object.assign(pslot(response), meta);
  }

  // A Response as the HTTP answer, given its body's bytes (null: none):
  // {status, headers (the sorted pairs, Set-Cookie apart), body (one
  // character per byte), latin1}.
  function describeAnswer(response, bytes) {
    return {
      status: response.status,
      headers: sortedOf(hslot(response.headers)),
      body: bytes === null ? "" : native.latin1Decode(bytes),
      latin1: true,
    };
  }
  // The same at once when its body is bytes nobody has read (it then counts
  // as read); undefined for a stream or a body already read, which take
  // the general way (web/http_handlers.js).
  function wholeAnswer(response) {
    const s = bslot(response);
    if (s.stream || s.used) return undefined;
    if (s.bytes !== null) s.used = true;
    return describeAnswer(response, s.bytes);
  }

  Object.assign(internal, { Headers, Request, Response, bodyBytesOf: consume, unreadStream, bodySnapshot, setResponseMeta, wholeAnswer, describeAnswer });
  internal.expose("Headers", Headers);
  internal.expose("Request", Request);
  internal.expose("Response", Response);
  internal.expose("fetch", fetch);
});

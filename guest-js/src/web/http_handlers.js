// HTTP handlers: runs an Express-style `(req, res)` or web-standard
// `(Request) => Response` handler on the request the host described
// (`/v1/express`), and turns a returned Response into what the host sends.
// Loaded after everything else, so the snapshot objects a plain call
// touches keep their place.
(function (internal) {
  "use strict";
  const stringify = JSON.stringify;
  const parse = JSON.parse;
  const isArray = Array.isArray;

  const contentTypes = {
    json: "application/json; charset=utf-8",
    html: "text/html; charset=utf-8",
    text: "text/plain; charset=utf-8",
    txt: "text/plain; charset=utf-8",
    xml: "application/xml",
    js: "text/javascript; charset=utf-8",
    css: "text/css; charset=utf-8",
  };

  function parseForm(text) {
    const out = {};
    for (const part of String(text).split("&")) {
      if (!part) continue;
      const eq = part.indexOf("=");
      const key = decodeURIComponent((eq < 0 ? part : part.slice(0, eq)).replace(/\+/g, " "));
      const value = eq < 0 ? "" : decodeURIComponent(part.slice(eq + 1).replace(/\+/g, " "));
      Object.defineProperty(out, key, { value, writable: true, enumerable: true, configurable: true });
    }
    return out;
  }

  // Runs `handler(req, res)` on the request the host described and returns
  // (the promise of) the response it built: {status, headers, body}. A
  // handler of one parameter is a web-standard handler: it gets a Request
  // (with the Express-style fields readable on it) and no `res`. The answer
  // is read once the handler's result settles, after the microtasks it
  // queued; one promise step, not one per layer (each costs microseconds
  // in QuickJS).
  function express(handler, requestText) {
    const data = parse(requestText);
    // The host gives header names in lower case (`express_request` in
    // host/src/http/code.rs).
    const headers = data.headers || {};
    const state = { status: 200, headers: {}, body: "", done: false, streamed: undefined, buffered: false };
    // A web-standard handler gets no `res`; one is made only should it
    // return something else than a Response.
    const web = handler.length === 1;
    const res = web ? undefined : expressResponse(state, data.query || {});
    const req = handler.length <= 1 ? webRequest(data, headers) : expressRequest(data, headers);
    return Promise.resolve(web ? handler(req) : handler(req, res)).then((returned) => {
      if (returned instanceof internal.Response) return webResponse(returned);
      if (!state.done && returned !== undefined) (res || expressResponse(state, data.query || {})).send(returned);
      return answerOf(state);
    });
  }

  // The answer an Express-style `res` built.
  function answerOf(state) {
    if (state.streamed !== undefined) {
      // `res.write` sent the head: finish the body, if `end` was not called.
      state.done = true;
      return { status: state.status, headers: state.headers, body: "", streamed: true };
    }
    return { status: state.status, headers: state.headers, body: state.body };
  }

  // Express's `req` for the request the host described.
  function expressRequest(data, headers) {
    let body = data.body;
    if (typeof data.bodyLatin1 === "string") {
      // Not UTF-8: the bytes as they came (Express's `raw` body).
      body = internal.native.latin1Encode(data.bodyLatin1);
    } else if (typeof body === "string" && body.length > 0) {
      const type = (headers["content-type"] || "").split(";")[0].trim().toLowerCase();
      if (type === "application/json" || type.endsWith("+json")) {
        try { body = parse(body); } catch (e) { body = data.body; }
      } else if (type === "application/x-www-form-urlencoded") {
        body = parseForm(body);
      }
    } else if (body === "" || body === undefined) {
      body = {};
    }
    const req = Object.create(requestMethods);
    req.method = data.method;
    req.path = data.path;
    req.originalUrl = data.originalUrl;
    req.url = data.originalUrl;
    req.baseUrl = data.baseUrl || "";
    req.query = data.query || {};
    req.params = data.params || {};
    req.protocol = data.protocol;
    req.secure = data.protocol === "https";
    req.hostname = (headers.host || "").split(":")[0];
    req.ip = data.ip || "";
    req.headers = headers;
    req.body = body;
    return req;
  }

  // The methods of Express's `req`, shared by every request (they read
  // `this`, as Express's do).
  const requestMethods = {
    get(name) { return this.headers[String(name).toLowerCase()]; },
    header(name) { return this.headers[String(name).toLowerCase()]; },
    is(t) {
      const type = (this.headers["content-type"] || "").split(";")[0].trim().toLowerCase();
      return type.includes(String(t).replace("*", "")) ? t : false;
    },
    accepts(...types) {
      if (types.length === 1 && isArray(types[0])) types = types[0];
      const accept = this.headers.accept || "*/*";
      if (types.length === 0) return accept.split(",").map((s) => s.split(";")[0].trim());
      for (const t of types) {
        const full = contentTypes[t] ? contentTypes[t].split(";")[0] : t;
        if (accept.includes("*/*") || accept.includes(full) || accept.includes(full.split("/")[0] + "/*")) return t;
      }
      return false;
    },
  };
  for (const key of Object.keys(requestMethods)) {
    Object.defineProperty(requestMethods, key, { enumerable: false });
  }

  // Express's `res`, building its answer in `state`.
  const STATE = Symbol("res state");
  const QUERY = Symbol("res query");
  function expressResponse(state, query) {
    const res = Object.create(responseMethods);
    res[STATE] = state;
    res[QUERY] = query;
    return res;
  }

  // The methods of Express's `res`, shared by every response.
  const responseMethods = {
    get statusCode() { return this[STATE].status; },
    set statusCode(code) { this[STATE].status = code; },
    status(code) { this[STATE].status = Number(code); return this; },
    sendStatus(code) { this[STATE].status = Number(code); return this.type("text").send(String(code)); },
    set(field, value) {
      if (field !== null && typeof field === "object") {
        for (const k of Object.keys(field)) this.set(k, field[k]);
      } else {
        this[STATE].headers[String(field).toLowerCase()] = isArray(value) ? value.map(String).join(", ") : String(value);
      }
      return this;
    },
    header(field, value) { return this.set(field, value); },
    setHeader(field, value) { return this.set(field, value); },
    get(field) { return this[STATE].headers[String(field).toLowerCase()]; },
    type(t) { return this.set("content-type", contentTypes[t] || String(t)); },
    json(value) {
      if (!this.get("content-type")) this.type("json");
      return this.end(stringify(value === undefined ? null : value));
    },
    jsonp(value) {
      const callback = this[QUERY].callback;
      if (typeof callback !== "string" || !/^[\w$.\[\]]+$/.test(callback)) return this.json(value);
      this.set("content-type", "text/javascript; charset=utf-8");
      return this.end("/**/ typeof " + callback + " === 'function' && " + callback + "(" + stringify(value) + ");");
    },
    send(value) {
      if (value === undefined || value === null) return this.end("");
      if (typeof value === "object" && !(value instanceof Uint8Array)) return this.json(value);
      if (typeof value === "number") return this.status(value).end("");
      if (!this.get("content-type")) this.type("html");
      return this.end(value instanceof Uint8Array ? new TextDecoder().decode(value) : String(value));
    },
    redirect(a, b) {
      const [status, url] = b === undefined ? [302, a] : [a, b];
      this.status(status).set("location", String(url));
      return this.end("");
    },
    // Streams when the host streams this call's answer: the first write
    // sends the status and headers, each write its chunk at once (an SSE
    // handler can wait on timers between writes); otherwise the writes
    // make the body.
    write(chunk) {
      const state = this[STATE];
      if (state.done) return false;
      const text = chunk instanceof Uint8Array ? null : String(chunk);
      if (state.streamed === undefined && !state.buffered) {
        const pairs = Object.keys(state.headers).map((k) => [k, state.headers[k]]);
        state.streamed = internal.respondStart(state.status, pairs);
        if (state.streamed === undefined) state.buffered = true;
      }
      if (state.buffered) {
        state.body += text === null ? new TextDecoder().decode(chunk) : text;
        return true;
      }
      if (state.streamed) state.streamed = internal.respondSend(text === null ? chunk : new TextEncoder().encode(text));
      return true;
    },
    end(value) {
      const state = this[STATE];
      if (state.done) return this;
      if (state.streamed !== undefined || state.buffered) {
        if (value !== undefined && value !== null) this.write(value);
      } else if (value !== undefined && value !== null) {
        state.body = String(value);
      }
      state.done = true;
      return this;
    },
  };
  for (const key of Object.keys(responseMethods)) {
    Object.defineProperty(responseMethods, key, { enumerable: false });
  }

  // The web `Request` of a request the host described (its absolute `url`
  // made by the host), with the Express fields (`query`, `params`, `path`,
  // …) readable on it too; its URL, headers and signal are made when first
  // asked for.
  function webRequest(data, headers) {
    const method = String(data.method || "GET").toUpperCase();
    const bytes = typeof data.bodyLatin1 === "string" ? internal.native.latin1Encode(data.bodyLatin1) : undefined;
    const body = method === "GET" || method === "HEAD" || !data.body ? undefined : bytes || data.body;
    return internal.hostRequest(data.url, method, headers, body, {
      query: data.query || {},
      params: data.params || {},
      path: data.path,
      originalUrl: data.originalUrl,
      baseUrl: data.baseUrl || "",
      protocol: data.protocol,
      hostname: (headers.host || "").split(":")[0],
      ip: data.ip || "",
    });
  }

  // What a returned Response becomes: status, header pairs (Set-Cookie kept
  // apart) and the body as one character per byte — unless its stream body
  // went out as the HTTP answer (web/respond.js). A body of bytes is
  // answered at once; a stream through the promise of its description.
  function webResponse(response) {
    return internal.wholeAnswer(response) || streamedAnswer(response);
  }
  async function streamedAnswer(response) {
    const streamed = await internal.streamAnswer(response);
    if (streamed) return streamed;
    return internal.describeAnswer(response, await internal.bodyBytesOf(response));
  }

  internal.express = express;
  internal.webResponse = webResponse;
})

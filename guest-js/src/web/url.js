// URL and URLSearchParams (WHATWG URL Standard). Parsing and the setters
// are the `url` crate (a WHATWG implementation) in Rust; a URL object keeps
// the parsed components, URLSearchParams is the standard's list of pairs.
(function (internal) {
  "use strict";
  const { native, toUSV } = internal;
  // Component indexes of what `native.urlParse` and `native.urlSet` return.
  const HREF = 0, ORIGIN = 1, PROTOCOL = 2, USERNAME = 3, PASSWORD = 4, HOST = 5, HOSTNAME = 6, PORT = 7, PATHNAME = 8, SEARCH = 9, HASH = 10;

  const urls = new WeakMap();
  function slot(self) {
    const s = urls.get(self);
    if (!s) throw new TypeError("Illegal invocation");
    return s;
  }
  function parse(url, base) {
    return native.urlParse(toUSV(url), base === undefined ? undefined : toUSV(base));
  }

  class URL {
    constructor(url, base) {
      if (arguments.length === 0) throw new TypeError("Failed to construct 'URL': 1 argument required, but only 0 present.");
      const parts = parse(url, base);
      if (!parts) throw new TypeError("Failed to construct 'URL': Invalid URL" + (base === undefined ? "" : " (with base)"));
      urls.set(this, { parts, params: null });
    }
    static parse(url, base) {
      if (arguments.length === 0) throw new TypeError("URL.parse takes at least 1 argument");
      const parts = parse(url, base);
      if (!parts) return null;
      const result = Object.create(URL.prototype);
      urls.set(result, { parts, params: null });
      return result;
    }
    static canParse(url, base) {
      if (arguments.length === 0) throw new TypeError("URL.canParse takes at least 1 argument");
      return !!parse(url, base);
    }
    get href() { return slot(this).parts[HREF]; }
    set href(value) {
      const s = slot(this);
      const parts = native.urlParse(toUSV(value), undefined);
      if (!parts) throw new TypeError("Failed to set the 'href' property on 'URL': Invalid URL");
      s.parts = parts;
      if (s.params) setList(s.params, parseQuery(parts[SEARCH]));
    }
    get origin() { return slot(this).parts[ORIGIN]; }
    get protocol() { return slot(this).parts[PROTOCOL]; }
    set protocol(v) { update(this, "protocol", v); }
    get username() { return slot(this).parts[USERNAME]; }
    set username(v) { update(this, "username", v); }
    get password() { return slot(this).parts[PASSWORD]; }
    set password(v) { update(this, "password", v); }
    get host() { return slot(this).parts[HOST]; }
    set host(v) { update(this, "host", v); }
    get hostname() { return slot(this).parts[HOSTNAME]; }
    set hostname(v) { update(this, "hostname", v); }
    get port() { return slot(this).parts[PORT]; }
    set port(v) { update(this, "port", v); }
    get pathname() { return slot(this).parts[PATHNAME]; }
    set pathname(v) { update(this, "pathname", v); }
    get search() { return slot(this).parts[SEARCH]; }
    set search(v) {
      update(this, "search", v);
      const s = slot(this);
      if (s.params) setList(s.params, parseQuery(s.parts[SEARCH]));
    }
    get searchParams() {
      const s = slot(this);
      if (!s.params) {
        s.params = new URLSearchParams(s.parts[SEARCH]);
        paramSlot(s.params).url = this;
      }
      return s.params;
    }
    get hash() { return slot(this).parts[HASH]; }
    set hash(v) { update(this, "hash", v); }
    toString() { return slot(this).parts[HREF]; }
    toJSON() { return slot(this).parts[HREF]; }
  }
  function update(url, setter, value) {
    const s = slot(url);
    const parts = native.urlSet(s.parts[HREF], setter, toUSV(value));
    if (parts) s.parts = parts;
  }
  internal.brand(URL);

  // ---- URLSearchParams ------------------------------------------------------

  const params = new WeakMap();
  function paramSlot(self) {
    const s = params.get(self);
    if (!s) throw new TypeError("Illegal invocation");
    return s;
  }
  function parseQuery(query) {
    if (query.startsWith("?")) query = query.slice(1);
    return native.formDecode(query);
  }
  function setList(searchParams, list) {
    paramSlot(searchParams).list = list;
  }
  // After a change: the URL's query follows the list (empty list: no query).
  function updateUrl(s) {
    if (!s.url) return;
    const serialized = native.formEncode(s.list);
    const u = slot(s.url);
    const parts = native.urlSet(u.parts[HREF], "search", serialized);
    if (parts) u.parts = parts;
  }

  class URLSearchParams {
    constructor(init = "") {
      let list = [];
      if (init !== null && (typeof init === "object" || typeof init === "function")) {
        const iterator = init[Symbol.iterator];
        if (iterator !== undefined && iterator !== null) {
          if (typeof iterator !== "function") throw new TypeError("URLSearchParams: the init's @@iterator is not callable");
          for (const pair of init) {
            if (pair === null || typeof pair !== "object" || typeof pair[Symbol.iterator] !== "function") {
              throw new TypeError("URLSearchParams: each pair must be an iterable of two strings");
            }
            const items = [...pair];
            if (items.length !== 2) throw new TypeError("URLSearchParams: each pair must have exactly two items");
            list.push([toUSV(items[0]), toUSV(items[1])]);
          }
        } else {
          // A record: keys that are the same USVString keep the last value.
          const record = new Map();
          for (const key of Reflect.ownKeys(init)) {
            if (typeof key !== "string") continue;
            const desc = Reflect.getOwnPropertyDescriptor(init, key);
            if (desc && desc.enumerable) record.set(toUSV(key), toUSV(init[key]));
          }
          list = [...record];
        }
      } else {
        list = parseQuery(toUSV(init));
      }
      params.set(this, { list, url: null });
    }
    get size() { return paramSlot(this).list.length; }
    append(name, value) {
      if (arguments.length < 2) throw new TypeError("URLSearchParams.append takes 2 arguments");
      const s = paramSlot(this);
      s.list.push([toUSV(name), toUSV(value)]);
      updateUrl(s);
    }
    delete(name, value) {
      if (arguments.length < 1) throw new TypeError("URLSearchParams.delete takes 1 argument");
      const s = paramSlot(this);
      name = toUSV(name);
      if (value === undefined) s.list = s.list.filter(([k]) => k !== name);
      else {
        value = toUSV(value);
        s.list = s.list.filter(([k, v]) => k !== name || v !== value);
      }
      updateUrl(s);
    }
    get(name) {
      if (arguments.length < 1) throw new TypeError("URLSearchParams.get takes 1 argument");
      name = toUSV(name);
      const pair = paramSlot(this).list.find(([k]) => k === name);
      return pair ? pair[1] : null;
    }
    getAll(name) {
      if (arguments.length < 1) throw new TypeError("URLSearchParams.getAll takes 1 argument");
      name = toUSV(name);
      return paramSlot(this).list.filter(([k]) => k === name).map(([, v]) => v);
    }
    has(name, value) {
      if (arguments.length < 1) throw new TypeError("URLSearchParams.has takes 1 argument");
      name = toUSV(name);
      if (value === undefined) return paramSlot(this).list.some(([k]) => k === name);
      value = toUSV(value);
      return paramSlot(this).list.some(([k, v]) => k === name && v === value);
    }
    set(name, value) {
      if (arguments.length < 2) throw new TypeError("URLSearchParams.set takes 2 arguments");
      const s = paramSlot(this);
      name = toUSV(name);
      value = toUSV(value);
      const index = s.list.findIndex(([k]) => k === name);
      if (index < 0) s.list.push([name, value]);
      else {
        s.list[index][1] = value;
        s.list = s.list.filter(([k], i) => i <= index || k !== name);
      }
      updateUrl(s);
    }
    sort() {
      const s = paramSlot(this);
      // Stable sort by UTF-16 code units of the names.
      s.list = s.list.map((pair, i) => [pair, i]).sort((a, b) => (a[0][0] < b[0][0] ? -1 : a[0][0] > b[0][0] ? 1 : a[1] - b[1])).map(([pair]) => pair);
      updateUrl(s);
    }
    forEach(callback, thisArg) {
      if (typeof callback !== "function") throw new TypeError("URLSearchParams.forEach takes a function");
      const s = paramSlot(this);
      for (let i = 0; i < s.list.length; i++) callback.call(thisArg, s.list[i][1], s.list[i][0], this);
    }
    keys() { return iterate(this, (p) => p[0]); }
    values() { return iterate(this, (p) => p[1]); }
    entries() { return iterate(this, (p) => [p[0], p[1]]); }
    [Symbol.iterator]() { return this.entries(); }
    toString() { return native.formEncode(paramSlot(this).list); }
  }
  const iterate = internal.pairIterator("URLSearchParams Iterator", (searchParams) => paramSlot(searchParams).list);
  internal.brand(URLSearchParams);

  Object.assign(internal, { URL, URLSearchParams });
  internal.expose("URL", URL);
  internal.expose("URLSearchParams", URLSearchParams);
});

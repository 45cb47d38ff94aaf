// URLPattern (URL Pattern Standard). Parsing a pattern and canonicalizing
// an input are the `urlpattern` crate in Rust (what Deno runs); matching
// runs the regular expressions it generates with this engine's RegExp, as
// the standard says, so `(\\d+)` and friends behave as in a browser.
(function (internal) {
  "use strict";
  const { native, toUSV } = internal;
  const COMPONENTS = ["protocol", "username", "password", "hostname", "port", "pathname", "search", "hash"];
  const INIT_MEMBERS = [...COMPONENTS, "baseURL"];

  const patterns = new WeakMap();
  function slot(self) {
    const s = patterns.get(self);
    if (!s) throw new TypeError("Illegal invocation");
    return s;
  }

  // A URLPatternInput (a string or a URLPatternInit dictionary) as Web IDL
  // converts it: undefined and null are the empty dictionary.
  function toInput(value) {
    if (value === undefined || value === null) return {};
    if (typeof value !== "object" && typeof value !== "function") return toUSV(value);
    const init = {};
    for (const member of INIT_MEMBERS) {
      const v = value[member];
      if (v !== undefined) init[member] = toUSV(v);
    }
    return init;
  }

  class URLPattern {
    constructor(input, baseURL, options) {
      // The two overloads: (input, baseURL, options) and (input, options).
      if (baseURL === undefined || baseURL === null || typeof baseURL === "object" || typeof baseURL === "function") {
        if (options === undefined) options = baseURL;
        baseURL = undefined;
      } else {
        baseURL = toUSV(baseURL);
      }
      const ignoreCase = options !== undefined && options !== null && !!options.ignoreCase;
      // Per component [patternString, regexpString, ...groupNames], then
      // [hasRegExpGroups] (url_pattern.rs).
      const parsed = native.urlPatternParse(JSON.stringify(toInput(input)), baseURL, ignoreCase);
      const flags = ignoreCase ? "ui" : "u";
      const regexps = [];
      const names = [];
      const strings = [];
      for (let i = 0; i < COMPONENTS.length; i++) {
        const component = parsed[i];
        try {
          regexps.push(new RegExp(component[1], flags));
        } catch (e) {
          throw new TypeError(`Failed to construct 'URLPattern': invalid regular expression in the ${COMPONENTS[i]} component: ${e.message}`);
        }
        names.push(component.slice(2));
        strings.push(component[0]);
      }
      patterns.set(this, { regexps, names, strings, hasRegExpGroups: parsed[COMPONENTS.length][0] === "true" });
    }

    test(input, baseURL) {
      return match(slot(this), input, baseURL) !== null;
    }

    exec(input, baseURL) {
      return match(slot(this), input, baseURL);
    }

    get protocol() { return slot(this).strings[0]; }
    get username() { return slot(this).strings[1]; }
    get password() { return slot(this).strings[2]; }
    get hostname() { return slot(this).strings[3]; }
    get port() { return slot(this).strings[4]; }
    get pathname() { return slot(this).strings[5]; }
    get search() { return slot(this).strings[6]; }
    get hash() { return slot(this).strings[7]; }
    get hasRegExpGroups() { return slot(this).hasRegExpGroups; }
  }

  // The standard's "match": null when the input is not a URL or a
  // component does not match, else each component's input and groups.
  function match(pattern, input, baseURL) {
    input = toInput(input);
    const inputs = [input];
    if (baseURL !== undefined) {
      baseURL = toUSV(baseURL);
      if (typeof input === "object") throw new TypeError("URLPattern: a base URL cannot be given with a URLPatternInit");
      inputs.push(baseURL);
    }
    const components = native.urlPatternInput(JSON.stringify(input), baseURL);
    if (components === undefined) return null;
    const result = { inputs };
    for (let i = 0; i < COMPONENTS.length; i++) {
      const found = pattern.regexps[i].exec(components[i]);
      if (found === null) return null;
      const groups = {};
      const names = pattern.names[i];
      for (let g = 0; g < names.length; g++) groups[names[g]] = found[g + 1];
      result[COMPONENTS[i]] = { input: components[i], groups };
    }
    return result;
  }

  internal.brand(URLPattern);
  internal.expose("URLPattern", URLPattern);
});

// Evaluated once, when the guest is pre-initialized (so it lives in the
// snapshot and costs nothing per call). It receives the raw host functions,
// installs the globals user code sees, and returns the helpers the Rust side
// of the guest calls. User code never sees `hostLog` itself.
(function (hostLog) {
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

  const levels = ["log", "info", "warn", "error", "debug"];
  const console = {};
  levels.forEach((name, level) => {
    console[name] = function (...args) {
      hostLog(level, args.map((a) => inspect(a, [])).join(" "));
    };
  });
  globalThis.console = console;

  // Describes a thrown value as {name, message, stack}.
  function describeError(e) {
    if (e !== null && typeof e === "object") {
      const name = e.name === undefined ? "Error" : String(e.name);
      const message = e.message === undefined ? inspect(e, []) : String(e.message);
      const stack = typeof e.stack === "string" ? e.stack : "";
      return stringify({ name, message, stack });
    }
    return stringify({ name: "Error", message: "Uncaught " + inspect(e, []), stack: "" });
  }

  return {
    // JSON result of a call; `undefined` (which JSON cannot carry) becomes null.
    encodeResult(value) {
      const text = stringify(value);
      return text === undefined ? "null" : text;
    },
    decodeArgs(text) {
      const args = parse(text);
      if (!isArray(args)) throw new TypeError("arguments must be a JSON array");
      return args;
    },
    describeError,
  };
});

// `console` (Console Standard) on the prelude's object (which has
// valbox's `console.email`): the five levels with format specifiers and
// group indentation, and assert, count, time, group, table, dir, trace.
// Every line goes to the call's log at its level.
(function (internal) {
  "use strict";
  const console = globalThis.console;
  const { inspect, writeLog } = internal;
  const LOG = 0, INFO = 1, WARN = 2, ERROR = 3, DEBUG = 4;
  const label = (value) => (value === undefined ? "default" : String(value));
  const counts = new Map();
  const timers = new Map();
  let indent = "";

  // The standard's formatter: a first string with %s, %d, %i, %f, %o, %O
  // or %c takes the next arguments; the rest follow, rendered.
  const specifier = /%[sdifoOc%]/g;
  function format(args) {
    let start = 0;
    let text = "";
    const first = args[0];
    if (typeof first === "string" && args.length > 1 && first.includes("%")) {
      let next = 1;
      text = first.replace(specifier, (match) => {
        if (match === "%%") return "%";
        if (next >= args.length) return match;
        const value = args[next++];
        switch (match) {
          case "%s": return typeof value === "string" ? value : inspect(value);
          case "%d": return typeof value === "bigint" ? value + "n" : typeof value === "symbol" ? "NaN" : String(Number(value));
          case "%i": return typeof value === "bigint" ? value + "n" : typeof value === "symbol" ? "NaN" : String(parseInt(value, 10));
          case "%f": return typeof value === "symbol" ? "NaN" : String(parseFloat(value));
          case "%c": return "";
          default: return inspect(value);
        }
      });
      start = next;
    }
    for (let i = start; i < args.length; i++) text += (i === 0 ? "" : " ") + inspect(args[i]);
    return text;
  }
  // Every line of `text` indented by the open groups.
  const indented = (text) => (indent === "" ? text : text.split("\n").map((line) => indent + line).join("\n"));
  const write = (level, args) => writeLog(level, indented(format(args)));

  Object.assign(console, {
    log(...args) { write(LOG, args); },
    info(...args) { write(INFO, args); },
    warn(...args) { write(WARN, args); },
    error(...args) { write(ERROR, args); },
    debug(...args) { write(DEBUG, args); },
    assert(condition, ...data) {
      if (condition) return;
      if (typeof data[0] === "string") data[0] = "Assertion failed: " + data[0];
      else data.unshift("Assertion failed");
      write(ERROR, data);
    },
    count(name) {
      const key = label(name);
      const n = (counts.get(key) || 0) + 1;
      counts.set(key, n);
      write(INFO, [key + ": " + n]);
    },
    countReset(name) {
      const key = label(name);
      if (!counts.has(key)) return write(WARN, ["Count for '" + key + "' does not exist"]);
      counts.set(key, 0);
    },
    time(name) {
      const key = label(name);
      if (timers.has(key)) return write(WARN, ["Timer '" + key + "' already exists"]);
      timers.set(key, performance.now());
    },
    timeLog(name, ...data) {
      const key = label(name);
      if (!timers.has(key)) return write(WARN, ["Timer '" + key + "' does not exist"]);
      write(INFO, [key + ": " + elapsed(timers.get(key))].concat(data));
    },
    timeEnd(name) {
      const key = label(name);
      if (!timers.has(key)) return write(WARN, ["Timer '" + key + "' does not exist"]);
      const started = timers.get(key);
      timers.delete(key);
      write(INFO, [key + ": " + elapsed(started)]);
    },
    group(...data) {
      if (data.length) write(LOG, data);
      indent += "  ";
    },
    groupCollapsed(...data) {
      console.group(...data);
    },
    groupEnd() {
      indent = indent.slice(2);
    },
    table(data, columns) {
      if (data === null || typeof data !== "object") return write(LOG, [data]);
      write(LOG, [table(data, columns)]);
    },
    dir(value) {
      write(LOG, [value]);
    },
    dirxml(...data) {
      write(LOG, data);
    },
    trace(...data) {
      const stack = String(new Error().stack || "").split("\n").slice(1).filter((line) => line.trim() !== "");
      const message = data.length ? ": " + format(data) : "";
      writeLog(DEBUG, indented(["Trace" + message].concat(stack).join("\n")));
    },
    clear() {},
  });

  function elapsed(started) {
    const ms = performance.now() - started;
    return ms < 1000 ? ms.toFixed(3) + "ms" : (ms / 1000).toFixed(3) + "s";
  }

  // A box-drawn table of an array or object of rows, as Node and Deno
  // print it: an index column, then each key seen (or `columns`), then
  // `Values` for rows that are not objects.
  function table(data, columns) {
    const rows = data instanceof Map ? [...data] : Object.entries(data);
    const keys = [];
    let hasValues = false;
    for (const [, row] of rows) {
      if (row !== null && typeof row === "object") {
        for (const key of Object.keys(row)) if (!keys.includes(key)) keys.push(key);
      } else {
        hasValues = true;
      }
    }
    const heads = ["(index)"].concat(columns ? [...columns].map(String) : keys);
    if (hasValues) heads.push("Values");
    const cell = (v) => (v === undefined ? "" : typeof v === "string" ? "'" + v + "'" : inspect(v));
    const body = rows.map(([index, row]) => {
      const isObject = row !== null && typeof row === "object";
      const line = [String(index)];
      for (const key of heads.slice(1, hasValues ? -1 : undefined)) line.push(isObject && key in row ? cell(row[key]) : "");
      if (hasValues) line.push(isObject ? "" : cell(row));
      return line;
    });
    const widths = heads.map((h, i) => Math.max(h.length, ...body.map((line) => line[i].length)) + 2);
    const rule = (left, mid, right) => left + widths.map((w) => "─".repeat(w)).join(mid) + right;
    const line = (cells) => "│" + cells.map((c, i) => " " + c.padEnd(widths[i] - 1)).join("│") + "│";
    return [rule("┌", "┬", "┐"), line(heads), rule("├", "┼", "┤"), ...body.map(line), rule("└", "┴", "┘")].join("\n");
  }
});

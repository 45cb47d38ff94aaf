// setTimeout, setInterval, clearTimeout, clearInterval (HTML timers) on the
// guest's event loop. The loop itself is in Rust (`lib.rs`, `settle`): when
// no microtask is left it asks `internal.timers.next()` how long to wait,
// waits through the host (which gives the CPU turn back and stops at the
// call tree's deadline), then runs one due timer with `runDue()`.
//
// A call ends when its result is ready: timers still pending then are
// dropped, and the evaluation record says how many (see `pending()`).
(function (internal) {
  "use strict";
  const native = internal.native;
  const timers = new Map();
  let nextId = 1;
  let sequence = 0;
  let nesting = 0;

  function schedule(callback, delay, args, repeat) {
    let ms = Number(delay);
    if (!(ms >= 0)) ms = 0;
    if (ms > 2147483647) ms = 0;
    if (nesting > 5 && ms < 4) ms = 4;
    const id = nextId++;
    native.armTimers();
    timers.set(id, { callback, args, ms, repeat, at: native.now() + ms, order: sequence++, nesting: nesting + 1 });
    return id;
  }

  function setTimeout(handler, timeout = 0, ...args) {
    return schedule(handler, timeout, args, false);
  }
  function setInterval(handler, timeout = 0, ...args) {
    return schedule(handler, timeout, args, true);
  }
  function clearTimer(id) {
    timers.delete(Number(id));
  }

  // The timer to run next: the earliest due time, then the order of setting.
  function earliest() {
    let best;
    let bestId;
    for (const [id, t] of timers) {
      if (best === undefined || t.at < best.at || (t.at === best.at && t.order < best.order)) {
        best = t;
        bestId = id;
      }
    }
    return bestId;
  }

  internal.timers = {
    // Milliseconds until the next timer is due (0: now), or -1 when none.
    next() {
      const id = earliest();
      if (id === undefined) return -1;
      return Math.max(0, timers.get(id).at - native.now());
    },
    // Runs the earliest timer if it is due.
    runDue() {
      const id = earliest();
      if (id === undefined) return;
      const t = timers.get(id);
      if (t.at > native.now()) return;
      if (t.repeat) {
        t.at = native.now() + Math.max(t.ms, t.nesting > 5 ? 4 : 0);
        t.order = sequence++;
        t.nesting++;
      } else {
        timers.delete(id);
      }
      const saved = nesting;
      nesting = t.nesting;
      try {
        if (typeof t.callback === "function") t.callback.apply(globalThis, t.args);
        else (0, eval)(String(t.callback));
      } catch (e) {
        internal.reportException(e);
      } finally {
        nesting = saved;
      }
    },
    // How many timers are pending.
    pending() {
      return timers.size;
    },
  };
  // For other files (AbortSignal.timeout): a timer that user code cannot clear.
  internal.setTimer = (callback, ms) => schedule(callback, ms, [], false);

  internal.expose("setTimeout", setTimeout);
  internal.expose("setInterval", setInterval);
  internal.expose("clearTimeout", clearTimer);
  internal.expose("clearInterval", clearTimer);
  if (typeof globalThis.queueMicrotask !== "function") {
    internal.expose("queueMicrotask", (callback) => {
      if (typeof callback !== "function") throw new TypeError("queueMicrotask takes a function");
      Promise.resolve().then(() => callback());
    });
  }
  // scheduler.wait(ms): a Promise settled after `ms` (workerd and Deno have it).
  internal.expose("scheduler", Object.freeze({
    wait(ms, options) {
      return new Promise((resolve, reject) => {
        const signal = options && options.signal;
        if (signal && signal.aborted) return reject(signal.reason);
        const id = setTimeout(resolve, ms);
        if (signal) internal.addAbortAlgorithm(signal, () => { clearTimer(id); reject(signal.reason); });
      });
    },
  }));
});

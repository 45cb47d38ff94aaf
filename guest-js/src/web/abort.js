// AbortController and AbortSignal (DOM Standard), with `AbortSignal.abort`,
// `timeout` (on the guest's timers) and `any`.
(function (internal) {
  "use strict";
  const { DOMException, EventTarget } = internal;
  const signals = new WeakMap();
  let constructing = false;

  function slot(self) {
    const s = signals.get(self);
    if (!s) throw new TypeError("Illegal invocation");
    return s;
  }
  function newSignal() {
    constructing = true;
    try {
      return new AbortSignal();
    } finally {
      constructing = false;
    }
  }

  class AbortSignal extends EventTarget {
    constructor() {
      if (!constructing) throw new TypeError("Illegal constructor");
      super();
      signals.set(this, { aborted: false, reason: undefined, algorithms: [], dependents: [], sources: [], timeoutAt: undefined, onabort: null });
    }
    get aborted() { return slot(this).aborted; }
    get reason() { return slot(this).reason; }
    throwIfAborted() {
      const s = slot(this);
      if (s.aborted) throw s.reason;
    }
    get onabort() { return slot(this).onabort; }
    set onabort(handler) {
      const s = slot(this);
      if (s.onabort) this.removeEventListener("abort", s.onabortListener);
      s.onabort = typeof handler === "function" ? handler : null;
      if (s.onabort) {
        s.onabortListener = (e) => s.onabort && s.onabort.call(this, e);
        this.addEventListener("abort", s.onabortListener);
      }
    }
    static abort(reason) {
      const signal = newSignal();
      const s = slot(signal);
      s.aborted = true;
      s.reason = reason === undefined ? new DOMException("signal is aborted without reason", "AbortError") : reason;
      return signal;
    }
    static timeout(milliseconds) {
      const ms = Number(milliseconds);
      if (!Number.isFinite(ms) || ms < 0 || ms > Number.MAX_SAFE_INTEGER) {
        throw new TypeError("AbortSignal.timeout: the timeout must be a non-negative integer");
      }
      const signal = newSignal();
      slot(signal).timeoutAt = internal.native.now() + ms;
      internal.setTimer(() => signalAbort(signal, new DOMException("The operation timed out.", "TimeoutError")), ms, false);
      return signal;
    }
    static any(signals) {
      const result = newSignal();
      const r = slot(result);
      const list = [...signals];
      for (const signal of list) {
        if (!(signal instanceof AbortSignal)) throw new TypeError("AbortSignal.any takes AbortSignals");
      }
      for (const signal of list) {
        if (signal.aborted) {
          r.aborted = true;
          r.reason = signal.reason;
          return result;
        }
      }
      for (const signal of list) {
        const s = slot(signal);
        const sources = s.sources.length ? s.sources : [signal];
        for (const source of sources) {
          if (r.sources.includes(source)) continue;
          r.sources.push(source);
          slot(source).dependents.push(result);
          const t = slot(source).timeoutAt;
          if (t !== undefined && (r.timeoutAt === undefined || t < r.timeoutAt)) r.timeoutAt = t;
        }
      }
      return result;
    }
  }
  internal.brand(AbortSignal);

  function signalAbort(signal, reason) {
    const s = slot(signal);
    if (s.aborted) return;
    s.aborted = true;
    s.reason = reason === undefined ? new DOMException("signal is aborted without reason", "AbortError") : reason;
    const dependents = [];
    for (const d of s.dependents) {
      const ds = slot(d);
      if (!ds.aborted) {
        ds.aborted = true;
        ds.reason = s.reason;
        dependents.push(d);
      }
    }
    runAbortSteps(signal);
    for (const d of dependents) runAbortSteps(d);
  }
  function runAbortSteps(signal) {
    const s = slot(signal);
    const algorithms = s.algorithms;
    s.algorithms = [];
    for (const algorithm of algorithms) algorithm();
    signal.dispatchEvent(internal.trustedEvent("abort"));
  }

  class AbortController {
    constructor() {
      Object.defineProperty(this, "__signal", { value: newSignal() });
    }
    get signal() { return this.__signal; }
    abort(reason) { signalAbort(this.__signal, reason); }
  }
  internal.brand(AbortController);

  internal.AbortSignal = AbortSignal;
  // Runs `algorithm` once when `signal` aborts (fetch, streams, listeners).
  internal.addAbortAlgorithm = function (signal, algorithm) {
    slot(signal).algorithms.push(algorithm);
  };
  // When the signal will abort by itself (AbortSignal.timeout), in the
  // guest's clock, or undefined.
  internal.abortDeadline = function (signal) {
    return slot(signal).timeoutAt;
  };
  internal.expose("AbortSignal", AbortSignal);
  internal.expose("AbortController", AbortController);
});

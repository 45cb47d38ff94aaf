// performance (High Resolution Time: now, timeOrigin, toJSON), navigator,
// and reportError.
(function (internal) {
  "use strict";
  const native = internal.native;
  class Performance extends internal.EventTarget {
    get timeOrigin() { return native.timeOrigin(); }
    now() { return native.now(); }
    toJSON() { return { timeOrigin: this.timeOrigin }; }
  }
  internal.brand(Performance);
  internal.expose("Performance", Performance);
  internal.expose("performance", new Performance());

  class Navigator {
    get userAgent() { return "valbox/" + native.version(); }
    get hardwareConcurrency() { return 1; }
    get language() { return "en-US"; }
    get languages() { return ["en-US"]; }
  }
  internal.brand(Navigator);
  internal.expose("Navigator", Navigator);
  internal.expose("navigator", new Navigator());

  // reportError(e): as an uncaught exception is reported (to the call's log).
  internal.expose("reportError", function reportError(e) {
    if (arguments.length === 0) throw new TypeError("reportError takes 1 argument");
    internal.reportException(e);
  });
});

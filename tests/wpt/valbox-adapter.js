// valbox's adapter around WPT's own resources/testharness.js (a "shim" in
// the words): what the WPT server's generated wrapper of an
// `.any.js` file would set up, for a val instead of a window or worker.
// runtime/tests/wpt.rs runs this, then testharness.js, the test's META
// scripts and the test itself as one classic script, and collects the
// results through testharness's callbacks.
globalThis.self = globalThis;
globalThis.GLOBAL = { isWindow: () => false, isWorker: () => false, isShadowRealm: () => false };
(function () {
  const wpt = globalThis.__wpt;
  const href = "https://wpt.valbox.test/" + wpt.path;
  const url = new URL(href);
  globalThis.location = {
    href, origin: url.origin, protocol: url.protocol, host: url.host, hostname: url.hostname,
    port: url.port, pathname: url.pathname, search: "", hash: "", toString() { return href; },
  };
  if (wpt.title) globalThis.META_TITLE = wpt.title;
  // The test's own data files (resources/*.json) answer fetch from memory;
  // everything else goes to valbox's real fetch.
  const realFetch = globalThis.fetch;
  globalThis.fetch = function fetch(input, init) {
    try {
      const target = new URL(input instanceof Request ? input.url : String(input), href);
      const key = target.pathname.slice(1);
      if (target.origin === url.origin && Object.prototype.hasOwnProperty.call(wpt.resources, key)) {
        return Promise.resolve(new Response(wpt.resources[key], { headers: { "content-type": "application/json" } }));
      }
    } catch (e) {
      // Not a URL we serve: the real fetch reports it.
    }
    return realFetch(input, init);
  };
})();

// Runs after testharness.js (see valbox-adapter.js): collects every
// subtest's result and settles `__wpt_done` when the harness completes;
// a harness that has not completed after the time budget is timed out.
(function () {
  const results = [];
  add_result_callback((test) => {
    // Names and messages may hold lone surrogates, which JSON readers refuse.
    const text = (v) => (v === null || v === undefined ? "" : String(v)).toWellFormed();
    results.push({ name: text(test.name), status: test.status, message: text(test.message) });
  });
  globalThis.__wpt_done = new Promise((resolve) => {
    add_completion_callback((tests, status) => {
      resolve({ harness: { status: status.status, message: String(status.message === null || status.message === undefined ? "" : status.message).toWellFormed() }, tests: results });
    });
  });
  setTimeout(() => timeout(), globalThis.__wpt.timeout_ms);
})();

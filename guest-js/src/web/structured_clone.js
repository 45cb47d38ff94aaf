// structuredClone(value, {transfer}): the same rules as the library-call
// codec (prelude.js), so what can cross between vals can be cloned and
// what cannot is a DataCloneError.
(function (internal) {
  "use strict";
  const { codec, DOMException } = internal;
  internal.expose("structuredClone", function structuredClone(value, options) {
    if (arguments.length === 0) throw new TypeError("structuredClone takes 1 argument");
    if (options !== undefined && options !== null && options.transfer !== undefined) {
      const transfer = [...options.transfer];
      if (transfer.length) throw new DOMException("structuredClone: transferring is not supported in valbox", "DataCloneError");
    }
    try {
      return codec.clone(value);
    } catch (e) {
      if (e && e.name === "DataCloneError") throw new DOMException(e.message, "DataCloneError");
      throw e;
    }
  });
});

// DOMException (WebIDL): a name, a message and the legacy code of that name.
(function (internal) {
  "use strict";
  const codes = {
    IndexSizeError: 1, HierarchyRequestError: 3, WrongDocumentError: 4, InvalidCharacterError: 5,
    NoModificationAllowedError: 7, NotFoundError: 8, NotSupportedError: 9, InvalidStateError: 11,
    SyntaxError: 12, InvalidModificationError: 13, NamespaceError: 14, InvalidAccessError: 15,
    TypeMismatchError: 17, SecurityError: 18, NetworkError: 19, AbortError: 20, URLMismatchError: 21,
    QuotaExceededError: 22, TimeoutError: 23, InvalidNodeTypeError: 24, DataCloneError: 25,
  };
  const slots = new WeakMap();
  class DOMException extends Error {
    constructor(message = "", name = "Error") {
      super();
      slots.set(this, { message: String(message), name: String(name) });
      // `stack` is an own property of every Error in QuickJS; keep it.
    }
    get name() { return slot(this).name; }
    get message() { return slot(this).message; }
    get code() { return codes[slot(this).name] || 0; }
  }
  function slot(self) {
    const s = slots.get(self);
    if (!s) throw new TypeError("Illegal invocation");
    return s;
  }
  for (const [name, code] of Object.entries(codes)) {
    const constant = name.replace(/([a-z])([A-Z])/g, "$1_$2").toUpperCase().replace(/_ERROR$/, "_ERR");
    for (const target of [DOMException, DOMException.prototype]) {
      Object.defineProperty(target, constant, { value: code, enumerable: true });
    }
  }
  // Legacy names whose constant differs from the error name.
  for (const [constant, code] of [["DOMSTRING_SIZE_ERR", 2], ["NO_DATA_ALLOWED_ERR", 6], ["INUSE_ATTRIBUTE_ERR", 10], ["INVALID_ACCESS_ERR", 15], ["VALIDATION_ERR", 16], ["TYPE_MISMATCH_ERR", 17], ["URL_MISMATCH_ERR", 21], ["QUOTA_EXCEEDED_ERR", 22], ["TIMEOUT_ERR", 23], ["INVALID_NODE_TYPE_ERR", 24], ["DATA_CLONE_ERR", 25], ["NETWORK_ERR", 19], ["ABORT_ERR", 20], ["SECURITY_ERR", 18]]) {
    for (const target of [DOMException, DOMException.prototype]) {
      Object.defineProperty(target, constant, { value: code, enumerable: true });
    }
  }
  internal.brand(DOMException);
  internal.DOMException = DOMException;
  internal.expose("DOMException", DOMException);
});

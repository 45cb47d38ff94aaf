// atob and btoa (HTML, forgiving base64), decoded and encoded in Rust.
(function (internal) {
  "use strict";
  const { native, DOMException } = internal;
  internal.expose("atob", function atob(data) {
    if (arguments.length === 0) throw new TypeError("atob takes 1 argument");
    const decoded = native.atob(String(data));
    if (decoded === null || decoded === undefined) {
      throw new DOMException("The string to be decoded is not correctly encoded.", "InvalidCharacterError");
    }
    return decoded;
  });
  internal.expose("btoa", function btoa(data) {
    if (arguments.length === 0) throw new TypeError("btoa takes 1 argument");
    const text = String(data);
    if (/[^\x00-\xff]/.test(text)) {
      throw new DOMException("The string to be encoded contains characters outside of the Latin1 range.", "InvalidCharacterError");
    }
    return native.btoa(text);
  });
});

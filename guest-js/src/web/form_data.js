// FormData (XMLHttpRequest Standard) and the two body formats that carry
// it: multipart/form-data (written and read) and
// application/x-www-form-urlencoded.
(function (internal) {
  "use strict";
  const { Blob, File, toUSV } = internal;
  const forms = new WeakMap();
  function slot(self) {
    const s = forms.get(self);
    if (!s) throw new TypeError("Illegal invocation");
    return s;
  }
  function entry(name, value, filename, count, method) {
    if (count < 2) throw new TypeError("Failed to execute '" + method + "' on 'FormData': 2 arguments required");
    name = toUSV(name);
    if (value instanceof Blob) {
      if (!(value instanceof File) || filename !== undefined) {
        value = new File([value], filename !== undefined ? toUSV(filename) : value instanceof File ? value.name : "blob", { type: value.type, lastModified: value instanceof File ? value.lastModified : undefined });
      }
      return [name, value];
    }
    if (count > 2 && filename !== undefined) throw new TypeError("Failed to execute '" + method + "' on 'FormData': parameter 2 is not of type 'Blob'.");
    return [name, toUSV(value)];
  }

  class FormData {
    constructor(form, submitter) {
      if (form !== undefined) throw new TypeError("Failed to construct 'FormData': there are no HTML forms here");
      forms.set(this, { list: [] });
    }
    append(name, value, filename) { slot(this).list.push(entry(name, value, filename, arguments.length, "append")); }
    delete(name) {
      const s = slot(this);
      name = toUSV(name);
      s.list = s.list.filter(([k]) => k !== name);
    }
    get(name) {
      name = toUSV(name);
      const found = slot(this).list.find(([k]) => k === name);
      return found ? found[1] : null;
    }
    getAll(name) {
      name = toUSV(name);
      return slot(this).list.filter(([k]) => k === name).map(([, v]) => v);
    }
    has(name) {
      name = toUSV(name);
      return slot(this).list.some(([k]) => k === name);
    }
    set(name, value, filename) {
      const s = slot(this);
      const pair = entry(name, value, filename, arguments.length, "set");
      const index = s.list.findIndex(([k]) => k === pair[0]);
      if (index < 0) s.list.push(pair);
      else {
        s.list[index] = pair;
        s.list = s.list.filter(([k], i) => i <= index || k !== pair[0]);
      }
    }
    forEach(callback, thisArg) {
      for (const [k, v] of slot(this).list.slice()) callback.call(thisArg, v, k, this);
    }
    *entries() { const s = slot(this); for (let i = 0; i < s.list.length; i++) yield [s.list[i][0], s.list[i][1]]; }
    *keys() { for (const [k] of this.entries()) yield k; }
    *values() { for (const [, v] of this.entries()) yield v; }
    [Symbol.iterator]() { return this.entries(); }
  }
  internal.brand(FormData);

  const encoder = new internal.TextEncoder();
  const escapeName = (s) => s.replace(/\r\n|\r|\n/g, "\r\n").replace(/\n/g, "%0A").replace(/\r/g, "%0D").replace(/"/g, "%22");

  // multipart/form-data: the body bytes and the content type with its boundary.
  internal.encodeMultipart = function encodeMultipart(formData) {
    const random = new Uint8Array(12);
    crypto.getRandomValues(random);
    const boundary = "----valboxFormBoundary" + Array.from(random, (b) => b.toString(16).padStart(2, "0")).join("");
    const parts = [];
    for (const [name, value] of slot(formData).list) {
      let head = "--" + boundary + "\r\nContent-Disposition: form-data; name=\"" + escapeName(name) + "\"";
      if (value instanceof File) {
        head += "; filename=\"" + escapeName(value.name) + "\"\r\nContent-Type: " + (value.type || "application/octet-stream") + "\r\n\r\n";
        parts.push(encoder.encode(head), internal.blobBytes(value), encoder.encode("\r\n"));
      } else {
        parts.push(encoder.encode(head + "\r\n\r\n" + value.replace(/\r\n|\r|\n/g, "\r\n") + "\r\n"));
      }
    }
    parts.push(encoder.encode("--" + boundary + "--\r\n"));
    return { bytes: internal.concatBytes(parts), type: "multipart/form-data; boundary=" + boundary };
  };

  // Reads a multipart/form-data body into a FormData; throws a TypeError
  // when it is malformed.
  internal.decodeMultipart = function decodeMultipart(bytes, contentType) {
    const match = /;\s*boundary=(?:"([^"]+)"|([^;\s]+))/i.exec(contentType);
    if (!match) throw new TypeError("the multipart body has no boundary");
    const boundary = match[1] || match[2];
    const latin1 = internal.native.latin1Decode(bytes);
    const delimiter = "--" + boundary;
    const form = new FormData();
    let at = latin1.indexOf(delimiter);
    if (at < 0) throw new TypeError("the multipart body does not start with its boundary");
    for (;;) {
      at += delimiter.length;
      if (latin1.startsWith("--", at)) break;
      if (!latin1.startsWith("\r\n", at)) throw new TypeError("malformed multipart body");
      at += 2;
      const headEnd = latin1.indexOf("\r\n\r\n", at);
      if (headEnd < 0) throw new TypeError("malformed multipart part headers");
      const headers = latin1.slice(at, headEnd).split("\r\n");
      const next = latin1.indexOf("\r\n" + delimiter, headEnd + 4);
      if (next < 0) throw new TypeError("the multipart body is not terminated");
      const body = bytes.subarray(headEnd + 4, next);
      let name, filename, type = "";
      for (const header of headers) {
        const colon = header.indexOf(":");
        const key = header.slice(0, colon).trim().toLowerCase();
        const value = header.slice(colon + 1).trim();
        if (key === "content-disposition") {
          const utf8 = new internal.TextDecoder().decode(internal.native.latin1Encode(value));
          const n = /(?:^|;)\s*name="([^"]*)"/i.exec(utf8);
          const f = /;\s*filename="([^"]*)"/i.exec(utf8);
          if (n) name = n[1].replace(/%22/g, '"').replace(/%0D/g, "\r").replace(/%0A/g, "\n");
          if (f) filename = f[1].replace(/%22/g, '"').replace(/%0D/g, "\r").replace(/%0A/g, "\n");
        } else if (key === "content-type") {
          type = value;
        }
      }
      if (name === undefined) throw new TypeError("a multipart part has no name");
      if (filename !== undefined) form.append(name, new File([body], filename, { type }));
      else form.append(name, new internal.TextDecoder().decode(body));
      at = next + 2;
    }
    return form;
  };

  // application/x-www-form-urlencoded text into a FormData.
  internal.decodeUrlencodedForm = function decodeUrlencodedForm(text) {
    const form = new FormData();
    for (const [k, v] of internal.native.formDecode(text)) form.append(k, v);
    return form;
  };

  internal.FormData = FormData;
  internal.expose("FormData", FormData);
});

// crypto: getRandomValues, randomUUID (entropy from the host, per call) and
// crypto.subtle (WebCrypto) — digest; HMAC; AES-GCM, -CBC, -CTR and -KW;
// PBKDF2 and HKDF; ECDSA and ECDH on P-256/P-384/P-521; Ed25519; X25519;
// RSASSA-PKCS1-v1_5, RSA-PSS and RSA-OAEP — with raw, jwk, spki and pkcs8 keys. The arithmetic is in Rust (crypto.rs);
// this file is the standard's algorithm normalization, key objects,
// usages and errors.
(function (internal) {
  "use strict";
  const { native, DOMException, toBytes } = internal;
  const integerArrays = [Int8Array, Uint8Array, Uint8ClampedArray, Int16Array, Uint16Array, Int32Array, Uint32Array, BigInt64Array, BigUint64Array];

  class Crypto {
    getRandomValues(array) {
      if (arguments.length === 0) throw new TypeError("getRandomValues takes 1 argument");
      if (!integerArrays.some((T) => array instanceof T)) {
        throw new DOMException("getRandomValues takes an integer TypedArray", "TypeMismatchError");
      }
      if (array.byteLength > 65536) {
        throw new DOMException("getRandomValues: " + array.byteLength + " bytes is more than the 65536 allowed", "QuotaExceededError");
      }
      native.getRandomValues(new Uint8Array(array.buffer, array.byteOffset, array.byteLength));
      return array;
    }
    randomUUID() { return native.randomUUID(); }
    get subtle() { return subtle; }
  }
  internal.brand(Crypto);

  // ---- errors and conversions -----------------------------------------------------

  const fail = (name, message) => new DOMException(message, name);
  // A native's Error("Name: message") as the DOMException it stands for.
  function call(fn, ...args) {
    try {
      return fn(...args);
    } catch (e) {
      const m = /^(\w+Error): ([\s\S]*)$/.exec(e && e.message);
      if (m) throw fail(m[1], m[2]);
      throw e;
    }
  }
  const copy = (data, what) => toBytes(data, what).slice();
  const b64url = (bytes) => native.btoa(native.latin1Decode(bytes)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  function unb64url(text, what) {
    if (typeof text !== "string" || /[^A-Za-z0-9_-]/.test(text)) throw fail("DataError", "JWK member " + what + " is not base64url");
    const decoded = native.atob(text.replace(/-/g, "+").replace(/_/g, "/"));
    if (decoded === null || decoded === undefined) throw fail("DataError", "JWK member " + what + " is not base64url");
    return native.latin1Encode(decoded);
  }
  const hashes = { "SHA-1": 160, "SHA-256": 256, "SHA-384": 384, "SHA-512": 512 };
  const hashBlock = { "SHA-1": 512, "SHA-256": 512, "SHA-384": 1024, "SHA-512": 1024 };

  // ---- algorithm normalization ------------------------------------------------------

  const names = ["SHA-1", "SHA-256", "SHA-384", "SHA-512", "HMAC", "AES-GCM", "AES-CBC", "AES-CTR", "AES-KW", "PBKDF2", "HKDF", "ECDSA", "ECDH", "Ed25519", "X25519", "RSASSA-PKCS1-v1_5", "RSA-PSS", "RSA-OAEP"];
  const canonical = new Map(names.map((n) => [n.toUpperCase(), n]));
  // Which algorithm supports which operation.
  const operations = {
    digest: ["SHA-1", "SHA-256", "SHA-384", "SHA-512"],
    sign: ["HMAC", "ECDSA", "Ed25519", "RSASSA-PKCS1-v1_5", "RSA-PSS"],
    encrypt: ["AES-GCM", "AES-CBC", "AES-CTR", "RSA-OAEP"],
    wrapKey: ["AES-KW", "AES-GCM", "AES-CBC", "AES-CTR", "RSA-OAEP"],
    deriveBits: ["PBKDF2", "HKDF", "ECDH", "X25519"],
    importKey: ["HMAC", "AES-GCM", "AES-CBC", "AES-CTR", "AES-KW", "PBKDF2", "HKDF", "ECDSA", "ECDH", "Ed25519", "X25519", "RSASSA-PKCS1-v1_5", "RSA-PSS", "RSA-OAEP"],
    generateKey: ["HMAC", "AES-GCM", "AES-CBC", "AES-CTR", "AES-KW", "ECDSA", "ECDH", "Ed25519", "X25519", "RSASSA-PKCS1-v1_5", "RSA-PSS", "RSA-OAEP"],
    get: ["HMAC", "AES-GCM", "AES-CBC", "AES-CTR", "AES-KW", "HKDF", "PBKDF2"],
  };
  function normalize(algorithm, op) {
    if (typeof algorithm === "string") return normalize({ name: algorithm }, op);
    if (algorithm === null || typeof algorithm !== "object") throw new TypeError("An algorithm must be a string or an object");
    if (algorithm.name === undefined) throw new TypeError("The algorithm has no name");
    const name = canonical.get(String(algorithm.name).toUpperCase());
    if (!name || !operations[op].includes(name)) throw fail("NotSupportedError", "Unrecognized or unsupported algorithm for " + op + ": " + algorithm.name);
    const out = { name };
    const hashOf = (h) => {
      if (h === undefined) throw new TypeError(name + " needs a hash");
      const n = normalize(h, "digest");
      return n;
    };
    switch (name) {
      case "HMAC":
        if (op !== "sign") {
          out.hash = hashOf(algorithm.hash);
          if (algorithm.length !== undefined) out.length = internal.toUnsignedLong(algorithm.length);
        }
        break;
      case "AES-GCM":
      case "AES-CBC":
      case "AES-CTR":
      case "AES-KW":
        if (op === "encrypt" && name === "AES-CTR") {
          if (algorithm.counter === undefined || algorithm.length === undefined) throw new TypeError("AES-CTR needs a counter and a length");
          out.counter = copy(algorithm.counter, "counter");
          out.length = Number(algorithm.length) & 0xff;
        } else if (op === "encrypt") {
          if (algorithm.iv === undefined) throw new TypeError(name + " needs an iv");
          out.iv = copy(algorithm.iv, "iv");
          if (name === "AES-GCM") {
            if (algorithm.additionalData !== undefined) out.additionalData = copy(algorithm.additionalData, "additionalData");
            out.tagLength = algorithm.tagLength === undefined ? 128 : Number(algorithm.tagLength);
          }
        } else if (op === "generateKey" || op === "get") {
          if (algorithm.length === undefined && op === "generateKey") throw new TypeError(name + " needs a length");
          if (algorithm.length !== undefined) out.length = Number(algorithm.length);
        }
        break;
      case "PBKDF2":
        if (op === "deriveBits") {
          out.hash = hashOf(algorithm.hash);
          out.salt = copy(algorithm.salt, "salt");
          out.iterations = internal.toUnsignedLong(algorithm.iterations);
        }
        break;
      case "HKDF":
        if (op === "deriveBits") {
          out.hash = hashOf(algorithm.hash);
          out.salt = copy(algorithm.salt, "salt");
          out.info = copy(algorithm.info, "info");
        }
        break;
      case "ECDH":
        if (op === "deriveBits") {
          if (!(algorithm.public instanceof CryptoKey)) throw new TypeError("ECDH needs a public CryptoKey");
          out.public = algorithm.public;
        } else {
          if (algorithm.namedCurve === undefined) throw new TypeError("ECDH needs a namedCurve");
          out.namedCurve = String(algorithm.namedCurve);
        }
        break;
      case "X25519":
        if (op === "deriveBits") {
          if (!(algorithm.public instanceof CryptoKey)) throw new TypeError("X25519 needs a public CryptoKey");
          out.public = algorithm.public;
        }
        break;
      case "ECDSA":
        if (op === "sign") out.hash = hashOf(algorithm.hash);
        else {
          if (algorithm.namedCurve === undefined) throw new TypeError("ECDSA needs a namedCurve");
          out.namedCurve = String(algorithm.namedCurve);
        }
        break;
      case "RSASSA-PKCS1-v1_5":
      case "RSA-PSS":
      case "RSA-OAEP":
        if (op === "sign" && name === "RSA-PSS") out.saltLength = internal.toUnsignedLong(algorithm.saltLength);
        if (op === "encrypt" && name === "RSA-OAEP" && algorithm.label !== undefined) out.label = copy(algorithm.label, "label");
        if (op === "importKey") out.hash = hashOf(algorithm.hash);
        if (op === "generateKey") {
          out.hash = hashOf(algorithm.hash);
          out.modulusLength = internal.toUnsignedLong(algorithm.modulusLength);
          out.publicExponent = copy(algorithm.publicExponent, "publicExponent");
        }
        break;
    }
    return out;
  }

  // ---- CryptoKey ---------------------------------------------------------------------

  const keys = new WeakMap();
  let constructing = false;
  function kslot(key) {
    const s = keys.get(key);
    if (!s) throw new TypeError("Not a CryptoKey");
    return s;
  }
  class CryptoKey {
    constructor() {
      if (!constructing) throw new TypeError("Illegal constructor");
    }
    get type() { return kslot(this).type; }
    get extractable() { return kslot(this).extractable; }
    get algorithm() { return kslot(this).algorithmView; }
    get usages() { return kslot(this).usagesView; }
  }
  internal.brand(CryptoKey);
  const usageOrder = ["encrypt", "decrypt", "sign", "verify", "deriveKey", "deriveBits", "wrapKey", "unwrapKey"];
  function makeKey(type, extractable, algorithm, usages, material) {
    constructing = true;
    let key;
    try {
      key = new CryptoKey();
    } finally {
      constructing = false;
    }
    const view = { ...algorithm };
    if (view.hash) view.hash = { name: view.hash.name };
    if (view.publicExponent) view.publicExponent = view.publicExponent.slice();
    const list = usageOrder.filter((u) => usages.includes(u));
    keys.set(key, { type, extractable: !!extractable, algorithm, algorithmView: Object.freeze(view), usages: list, usagesView: Object.freeze(list.slice()), material });
    return key;
  }
  // Checks usages against what the algorithm allows for a key type.
  function checkUsages(usages, allowed, requireSome) {
    const list = [...usages].map(String);
    for (const u of list) {
      if (!usageOrder.includes(u)) throw new TypeError("'" + u + "' is not a key usage");
      if (!allowed.includes(u)) throw fail("SyntaxError", "Cannot create a key with usage '" + u + "'");
    }
    if (requireSome && list.length === 0) throw fail("SyntaxError", "Usages cannot be empty when creating a key.");
    return list;
  }
  const usagesFor = {
    HMAC: { secret: ["sign", "verify"] },
    "AES-GCM": { secret: ["encrypt", "decrypt", "wrapKey", "unwrapKey"] },
    "AES-CBC": { secret: ["encrypt", "decrypt", "wrapKey", "unwrapKey"] },
    "AES-CTR": { secret: ["encrypt", "decrypt", "wrapKey", "unwrapKey"] },
    "AES-KW": { secret: ["wrapKey", "unwrapKey"] },
    PBKDF2: { secret: ["deriveKey", "deriveBits"] },
    HKDF: { secret: ["deriveKey", "deriveBits"] },
    ECDSA: { private: ["sign"], public: ["verify"] },
    ECDH: { private: ["deriveKey", "deriveBits"], public: [] },
    Ed25519: { private: ["sign"], public: ["verify"] },
    X25519: { private: ["deriveKey", "deriveBits"], public: [] },
    "RSASSA-PKCS1-v1_5": { private: ["sign"], public: ["verify"] },
    "RSA-PSS": { private: ["sign"], public: ["verify"] },
    "RSA-OAEP": { private: ["decrypt", "unwrapKey"], public: ["encrypt", "wrapKey"] },
  };
  const curves = ["P-256", "P-384", "P-521"];
  const curveJwk = { "P-256": "ES256", "P-384": "ES384", "P-521": "ES512" };

  // ---- importKey ---------------------------------------------------------------------

  function jwkUsageCheck(jwk, usages, extractable) {
    if (jwk.use !== undefined && usages.length && jwk.use !== (usages.some((u) => u === "sign" || u === "verify") ? "sig" : "enc")) {
      throw fail("DataError", "The JWK 'use' does not match the usages");
    }
    if (jwk.key_ops !== undefined) {
      if (!Array.isArray(jwk.key_ops)) throw fail("DataError", "JWK key_ops must be an array");
      for (const u of usages) if (!jwk.key_ops.includes(u)) throw fail("DataError", "The JWK key_ops do not allow '" + u + "'");
    }
    if (jwk.ext === false && extractable) throw fail("DataError", "The JWK is not extractable");
  }
  // The JWK "alg" of an AES key: A128GCM, A256KW, ...
  const aesJwkAlg = (name, bytes) => "A" + bytes * 8 + name.slice(4);
  const isAes = (name) => name.startsWith("AES-");
  const hmacJwkAlg = { "SHA-1": "HS1", "SHA-256": "HS256", "SHA-384": "HS384", "SHA-512": "HS512" };
  const rsaJwkAlg = {
    "RSASSA-PKCS1-v1_5": { "SHA-1": "RS1", "SHA-256": "RS256", "SHA-384": "RS384", "SHA-512": "RS512" },
    "RSA-PSS": { "SHA-1": "PS1", "SHA-256": "PS256", "SHA-384": "PS384", "SHA-512": "PS512" },
    "RSA-OAEP": { "SHA-1": "RSA-OAEP", "SHA-256": "RSA-OAEP-256", "SHA-384": "RSA-OAEP-384", "SHA-512": "RSA-OAEP-512" },
  };

  function importSecret(format, keyData, algorithm, extractable, usages) {
    const name = algorithm.name;
    let raw;
    if (format === "raw" || format === "raw-secret") raw = copy(keyData, "keyData");
    else if (format === "jwk") {
      const jwk = keyData;
      if (!jwk || typeof jwk !== "object" || ArrayBuffer.isView(jwk) || jwk instanceof ArrayBuffer) throw new TypeError("keyData must be a JsonWebKey");
      if (name === "PBKDF2" || name === "HKDF") throw fail("NotSupportedError", name + " keys cannot be imported as jwk");
      if (jwk.kty !== "oct") throw fail("DataError", "The JWK kty must be 'oct'");
      if (jwk.k === undefined) throw fail("DataError", "The JWK has no 'k'");
      raw = unb64url(jwk.k, "k");
      jwkUsageCheck(jwk, usages, extractable);
      if (jwk.alg !== undefined) {
        const expected = name === "HMAC" ? hmacJwkAlg[algorithm.hash.name] : aesJwkAlg(name, raw.length);
        if (jwk.alg !== expected) throw fail("DataError", "The JWK alg does not match the algorithm");
      }
    } else {
      throw fail("NotSupportedError", "Secret keys are imported as raw or jwk, not " + format);
    }
    const alg = { name };
    if (name === "HMAC") {
      alg.hash = algorithm.hash;
      if (raw.length === 0) throw fail("DataError", "An HMAC key cannot be empty");
      let length = raw.length * 8;
      if (algorithm.length !== undefined) {
        if (algorithm.length > length || algorithm.length <= length - 8) throw fail("DataError", "The HMAC length does not match the key");
        length = algorithm.length;
      }
      alg.length = length;
    } else if (isAes(name)) {
      if (![16, 24, 32].includes(raw.length)) throw fail("DataError", "AES keys are 128, 192 or 256 bits");
      alg.length = raw.length * 8;
    } else if (extractable) {
      throw fail("SyntaxError", name + " keys cannot be extractable");
    }
    const list = checkUsages(usages, usagesFor[name].secret, true);
    return makeKey("secret", extractable, alg, list, raw);
  }

  function importAsymmetric(format, keyData, algorithm, extractable, usages) {
    const name = algorithm.name;
    let isPrivate, der, jwkParts;
    if (format === "jwk") {
      const jwk = keyData;
      if (!jwk || typeof jwk !== "object" || ArrayBuffer.isView(jwk) || jwk instanceof ArrayBuffer) throw new TypeError("keyData must be a JsonWebKey");
      isPrivate = jwk.d !== undefined;
      jwkUsageCheck(jwk, usages, extractable);
      if (name === "ECDSA" || name === "ECDH") {
        if (jwk.kty !== "EC") throw fail("DataError", "The JWK kty must be 'EC'");
        if (jwk.crv !== algorithm.namedCurve) throw fail("DataError", "The JWK crv does not match namedCurve");
        if (name === "ECDSA" && jwk.alg !== undefined && jwk.alg !== curveJwk[jwk.crv]) throw fail("DataError", "The JWK alg does not match the curve");
        jwkParts = [isPrivate ? unb64url(jwk.d, "d") : new Uint8Array(0), unb64url(jwk.x, "x"), unb64url(jwk.y, "y")];
      } else if (name === "Ed25519" || name === "X25519") {
        if (jwk.kty !== "OKP" || jwk.crv !== name) throw fail("DataError", "The JWK must be kty 'OKP', crv '" + name + "'");
        if (name === "Ed25519" && jwk.alg !== undefined && jwk.alg !== "EdDSA" && jwk.alg !== "Ed25519") throw fail("DataError", "The JWK alg must be EdDSA");
        jwkParts = [isPrivate ? unb64url(jwk.d, "d") : new Uint8Array(0), unb64url(jwk.x, "x")];
      } else {
        if (jwk.kty !== "RSA") throw fail("DataError", "The JWK kty must be 'RSA'");
        if (jwk.alg !== undefined && jwk.alg !== rsaJwkAlg[name][algorithm.hash.name]) throw fail("DataError", "The JWK alg does not match the hash");
        jwkParts = [unb64url(jwk.n, "n"), unb64url(jwk.e, "e")];
        if (isPrivate) for (const k of ["d", "p", "q", "dp", "dq", "qi"]) jwkParts.push(unb64url(jwk[k], k));
      }
    } else if (format === "spki" || format === "raw" || format === "raw-public") {
      isPrivate = false;
      if (format !== "spki" && name !== "ECDSA" && name !== "ECDH" && name !== "Ed25519" && name !== "X25519") throw fail("NotSupportedError", name + " keys cannot be imported as raw");
    } else if (format === "pkcs8") {
      isPrivate = true;
    } else {
      throw fail("NotSupportedError", "Unknown key format " + format);
    }
    const type = isPrivate ? "private" : "public";
    const list = checkUsages(usages, usagesFor[name][type], isPrivate);
    const fmt = format === "raw-public" ? "raw" : format;
    const data = jwkParts || [copy(keyData, "keyData")];
    const alg = { name };
    if (name === "ECDSA" || name === "ECDH") {
      if (!curves.includes(algorithm.namedCurve)) throw fail("NotSupportedError", "Unsupported namedCurve " + algorithm.namedCurve);
      der = call(native.ecImport, algorithm.namedCurve, fmt, data, isPrivate);
      alg.namedCurve = algorithm.namedCurve;
    } else if (name === "Ed25519" || name === "X25519") {
      der = call(name === "X25519" ? native.xImport : native.edImport, fmt, data, isPrivate);
    } else {
      der = call(native.rsaImport, fmt, data, isPrivate);
      const parts = call(native.rsaParts, der, isPrivate);
      alg.modulusLength = bitLength(parts[0]);
      alg.publicExponent = parts[1];
      alg.hash = algorithm.hash;
    }
    return makeKey(type, extractable, alg, list, der);
  }
  function bitLength(bytes) {
    let i = 0;
    while (i < bytes.length && bytes[i] === 0) i++;
    if (i === bytes.length) return 0;
    return (bytes.length - i - 1) * 8 + (32 - Math.clz32(bytes[i]));
  }

  // ---- exportKey ---------------------------------------------------------------------

  function exportKey(format, key) {
    const s = kslot(key);
    if (!s.extractable) throw fail("InvalidAccessError", "The key is not extractable");
    const name = s.algorithm.name;
    const usagesList = s.usages.slice();
    if (s.type === "secret") {
      if (name === "PBKDF2" || name === "HKDF") throw fail("NotSupportedError", name + " keys cannot be exported");
      if (format === "raw" || format === "raw-secret") return s.material.slice().buffer;
      if (format === "jwk") {
        const jwk = { kty: "oct", k: b64url(s.material), key_ops: usagesList, ext: true };
        jwk.alg = name === "HMAC" ? hmacJwkAlg[s.algorithm.hash.name] : aesJwkAlg(name, s.material.length);
        return jwk;
      }
      throw fail("NotSupportedError", "Secret keys are exported as raw or jwk");
    }
    const isPrivate = s.type === "private";
    if (name === "ECDSA" || name === "ECDH") {
      const [d, x, y, spki, raw] = call(native.ecParts, s.algorithm.namedCurve, s.material, isPrivate);
      if (format === "spki" && !isPrivate) return spki.buffer;
      if ((format === "raw" || format === "raw-public") && !isPrivate) return raw.buffer;
      if (format === "pkcs8" && isPrivate) return s.material.slice().buffer;
      if (format === "jwk") {
        const jwk = { kty: "EC", crv: s.algorithm.namedCurve, x: b64url(x), y: b64url(y), key_ops: usagesList, ext: true };
        if (isPrivate) jwk.d = b64url(d);
        return jwk;
      }
    } else if (name === "Ed25519" || name === "X25519") {
      const [d, x, spki] = call(name === "X25519" ? native.xParts : native.edParts, s.material, isPrivate);
      if (format === "spki" && !isPrivate) return spki.buffer;
      if ((format === "raw" || format === "raw-public") && !isPrivate) return x.buffer;
      if (format === "pkcs8" && isPrivate) return s.material.slice().buffer;
      if (format === "jwk") {
        const jwk = { kty: "OKP", crv: name, x: b64url(x), key_ops: usagesList, ext: true };
        if (isPrivate) jwk.d = b64url(d);
        return jwk;
      }
    } else {
      const parts = call(native.rsaParts, s.material, isPrivate);
      if (format === "spki" && !isPrivate) return parts[2].buffer;
      if (format === "pkcs8" && isPrivate) return s.material.slice().buffer;
      if (format === "jwk") {
        const jwk = { kty: "RSA", n: b64url(parts[0]), e: b64url(parts[1]), alg: rsaJwkAlg[name][s.algorithm.hash.name], key_ops: usagesList, ext: true };
        if (isPrivate) ["d", "p", "q", "dp", "dq", "qi"].forEach((k, i) => (jwk[k] = b64url(parts[3 + i])));
        return jwk;
      }
    }
    throw fail("InvalidAccessError", "A " + s.type + " " + name + " key cannot be exported as " + format);
  }

  // ---- generateKey -------------------------------------------------------------------

  function generateKey(algorithm, extractable, usages) {
    const name = algorithm.name;
    if (usagesFor[name].secret) {
      const list = checkUsages(usages, usagesFor[name].secret, true);
      let length;
      const alg = { name };
      if (name === "HMAC") {
        alg.hash = algorithm.hash;
        length = algorithm.length === undefined ? hashBlock[algorithm.hash.name] : algorithm.length;
        if (!length) throw fail("OperationError", "The HMAC length cannot be 0");
        alg.length = length;
      } else {
        length = algorithm.length;
        if (![128, 192, 256].includes(length)) throw fail("OperationError", "AES keys are 128, 192 or 256 bits");
        alg.length = length;
      }
      const raw = new Uint8Array(Math.ceil(length / 8));
      native.getRandomValues(raw);
      return makeKey("secret", extractable, alg, list, raw);
    }
    const all = [...usages].map(String);
    checkUsages(all, usagesFor[name].private.concat(usagesFor[name].public), false);
    const privateUsages = all.filter((u) => usagesFor[name].private.includes(u));
    const publicUsages = all.filter((u) => usagesFor[name].public.includes(u));
    if (privateUsages.length === 0) throw fail("SyntaxError", "Usages cannot be empty when creating a key.");
    const alg = { name };
    let pair;
    if (name === "ECDSA" || name === "ECDH") {
      if (!curves.includes(algorithm.namedCurve)) throw fail("NotSupportedError", "Unsupported namedCurve " + algorithm.namedCurve);
      alg.namedCurve = algorithm.namedCurve;
      pair = call(native.ecGenerate, algorithm.namedCurve);
    } else if (name === "Ed25519" || name === "X25519") {
      pair = call(name === "X25519" ? native.xGenerate : native.edGenerate);
    } else {
      const e = algorithm.publicExponent;
      if (algorithm.modulusLength < 256 || algorithm.modulusLength % 8 !== 0) throw fail("OperationError", "Unsupported modulusLength");
      pair = call(native.rsaGenerate, algorithm.modulusLength, e);
      Object.assign(alg, { modulusLength: algorithm.modulusLength, publicExponent: e, hash: algorithm.hash });
    }
    return {
      privateKey: makeKey("private", extractable, alg, privateUsages, pair[0]),
      publicKey: makeKey("public", true, alg, publicUsages, pair[1]),
    };
  }

  // ---- sign, verify, encrypt, decrypt, deriveBits ----------------------------------------

  function useKey(key, name, usage) {
    const s = kslot(key);
    if (s.algorithm.name !== name) throw fail("InvalidAccessError", "The key is for " + s.algorithm.name + ", not " + name);
    if (!s.usages.includes(usage)) throw fail("InvalidAccessError", "The key does not allow '" + usage + "'");
    return s;
  }
  function sign(algorithm, key, data) {
    const s = useKey(key, algorithm.name, "sign");
    switch (algorithm.name) {
      case "HMAC": return call(native.hmacSign, s.algorithm.hash.name, s.material, data);
      case "ECDSA": return call(native.ecSign, s.algorithm.namedCurve, algorithm.hash.name, s.material, data);
      case "Ed25519": return call(native.edSign, s.material, data);
      case "RSASSA-PKCS1-v1_5": return call(native.rsaSign, false, s.algorithm.hash.name, s.material, data, undefined);
      case "RSA-PSS": return call(native.rsaSign, true, s.algorithm.hash.name, s.material, data, algorithm.saltLength);
    }
  }
  function verify(algorithm, key, signature, data) {
    const s = useKey(key, algorithm.name, "verify");
    switch (algorithm.name) {
      case "HMAC": return call(native.hmacVerify, s.algorithm.hash.name, s.material, signature, data);
      case "ECDSA": return call(native.ecVerify, s.algorithm.namedCurve, algorithm.hash.name, s.material, signature, data);
      case "Ed25519": return call(native.edVerify, s.material, signature, data);
      case "RSASSA-PKCS1-v1_5": return call(native.rsaVerify, false, s.algorithm.hash.name, s.material, signature, data, undefined);
      case "RSA-PSS": return call(native.rsaVerify, true, s.algorithm.hash.name, s.material, signature, data, algorithm.saltLength);
    }
  }
  function cipher(encrypt, algorithm, key, data, usage) {
    const s = useKey(key, algorithm.name, usage || (encrypt ? "encrypt" : "decrypt"));
    if (algorithm.name === "RSA-OAEP") {
      if (s.type !== (encrypt ? "public" : "private")) throw fail("InvalidAccessError", "RSA-OAEP " + (encrypt ? "encrypts with a public" : "decrypts with a private") + " key");
      return call(native.rsaOaep, encrypt, s.algorithm.hash.name, s.material, data, algorithm.label || new Uint8Array(0));
    }
    if (algorithm.name === "AES-KW") {
      if (encrypt && data.length % 8 !== 0) throw fail("OperationError", "AES-KW wraps data in multiples of 8 bytes");
      return call(native.aesKw, encrypt, s.material, data);
    }
    if (algorithm.name === "AES-CTR") {
      if (algorithm.counter.length !== 16) throw fail("OperationError", "The AES-CTR counter must be 16 bytes");
      if (algorithm.length < 1 || algorithm.length > 128) throw fail("OperationError", "The AES-CTR length must be 1 to 128");
      return call(native.aesCtr, s.material, algorithm.counter, algorithm.length, data);
    }
    if (algorithm.name === "AES-GCM") {
      if (![32, 64, 96, 104, 112, 120, 128].includes(algorithm.tagLength)) throw fail("OperationError", "AES-GCM tagLength " + algorithm.tagLength + " is not one of 32, 64, 96, 104, 112, 120, 128");
      if (!encrypt && data.length < algorithm.tagLength / 8) throw fail("OperationError", "The data is shorter than the tag");
      return call(native.aesGcm, encrypt, s.material, algorithm.iv, data, algorithm.additionalData || new Uint8Array(0), algorithm.tagLength / 8);
    }
    if (algorithm.iv.length !== 16) throw fail("OperationError", "The AES-CBC iv must be 16 bytes");
    return call(native.aesCbc, encrypt, s.material, algorithm.iv, data);
  }
  function deriveBits(algorithm, key, length) {
    return derive(algorithm, useKey(key, algorithm.name, "deriveBits"), length);
  }
  function derive(algorithm, s, length) {
    if (algorithm.name === "ECDH" || algorithm.name === "X25519") {
      const name = algorithm.name;
      if (s.type !== "private") throw fail("InvalidAccessError", name + " derives from a private key");
      const p = kslot(algorithm.public);
      if (p.type !== "public") throw fail("InvalidAccessError", "The " + name + " public key is not a public key");
      if (p.algorithm.name !== name || p.algorithm.namedCurve !== s.algorithm.namedCurve) throw fail("InvalidAccessError", "The public key is not an " + name + " key" + (name === "ECDH" ? " on the same curve" : ""));
      const secret = name === "X25519" ? call(native.xDerive, s.material, p.material) : call(native.ecdhDerive, s.algorithm.namedCurve, s.material, p.material);
      if (length === null) return secret;
      if (length > secret.length * 8) throw fail("OperationError", name + " cannot derive " + length + " bits from this key");
      const out = secret.slice(0, Math.ceil(length / 8));
      if (length % 8) out[out.length - 1] &= 0xff << (8 - (length % 8));
      return out;
    }
    if (length === null || length === undefined) throw fail("OperationError", algorithm.name + " needs a length");
    if (length % 8 !== 0) throw fail("OperationError", "The length must be a multiple of 8");
    if (algorithm.name === "PBKDF2") {
      if (algorithm.iterations === 0) throw fail("OperationError", "PBKDF2 iterations cannot be 0");
      if (length === 0) throw fail("OperationError", "PBKDF2 cannot derive 0 bits");
      return call(native.pbkdf2, algorithm.hash.name, s.material, algorithm.salt, algorithm.iterations, length);
    }
    return call(native.hkdf, algorithm.hash.name, s.material, algorithm.salt, algorithm.info, length);
  }
  // The length of the key deriveKey makes for `algorithm`.
  function keyLength(algorithm) {
    if (algorithm.name === "HMAC") return algorithm.length === undefined ? hashBlock[algorithm.hash.name] : algorithm.length;
    if (isAes(algorithm.name)) {
      if (![128, 192, 256].includes(algorithm.length)) throw fail("OperationError", "AES keys are 128, 192 or 256 bits");
      return algorithm.length;
    }
    return null;
  }

  // AES-KW is normalized for wrapKey; the other ciphers as for encrypt.
  function normalizedWrapOp(algorithm) {
    const name = typeof algorithm === "string" ? algorithm : algorithm && algorithm.name;
    return String(name).toUpperCase() === "AES-KW" ? "wrapKey" : "encrypt";
  }

  // ---- SubtleCrypto ---------------------------------------------------------------------

  // Every method answers with a Promise; errors (even argument errors) reject it.
  const promised = (f) => new Promise((resolve) => resolve(f()));
  const buffer = (bytes) => bytes.buffer.byteLength === bytes.byteLength ? bytes.buffer : bytes.slice().buffer;
  function need(args, count, method) {
    if (args.length < count) throw new TypeError("Failed to execute '" + method + "' on 'SubtleCrypto': " + count + " arguments required, but only " + args.length + " present.");
  }

  class SubtleCrypto {
    digest(algorithm, data) {
      const args = arguments;
      return promised(() => {
        need(args, 2, "digest");
        const alg = normalize(algorithm, "digest");
        return buffer(call(native.digest, alg.name, copy(data, "data")));
      });
    }
    importKey(format, keyData, algorithm, extractable, usages) {
      const args = arguments;
      return promised(() => {
        need(args, 5, "importKey");
        format = String(format);
        if (!["raw", "raw-secret", "raw-public", "spki", "pkcs8", "jwk"].includes(format)) throw new TypeError("Unknown key format " + format);
        if (format !== "jwk" && !(keyData instanceof ArrayBuffer || ArrayBuffer.isView(keyData))) throw new TypeError("keyData must be a BufferSource");
        const alg = normalize(algorithm, "importKey");
        return usagesFor[alg.name].secret ? importSecret(format, keyData, alg, !!extractable, [...usages].map(String)) : importAsymmetric(format, keyData, alg, !!extractable, [...usages].map(String));
      });
    }
    exportKey(format, key) {
      const args = arguments;
      return promised(() => {
        need(args, 2, "exportKey");
        kslot(key);
        return exportKey(String(format), key);
      });
    }
    generateKey(algorithm, extractable, usages) {
      const args = arguments;
      return promised(() => {
        need(args, 3, "generateKey");
        return generateKey(normalize(algorithm, "generateKey"), !!extractable, usages);
      });
    }
    sign(algorithm, key, data) {
      const args = arguments;
      return promised(() => {
        need(args, 3, "sign");
        const alg = normalize(algorithm, "sign");
        const bytes = copy(data, "data");
        kslot(key);
        return buffer(sign(alg, key, bytes));
      });
    }
    verify(algorithm, key, signature, data) {
      const args = arguments;
      return promised(() => {
        need(args, 4, "verify");
        const alg = normalize(algorithm, "sign");
        const sig = copy(signature, "signature");
        const bytes = copy(data, "data");
        kslot(key);
        return verify(alg, key, sig, bytes);
      });
    }
    encrypt(algorithm, key, data) {
      const args = arguments;
      return promised(() => {
        need(args, 3, "encrypt");
        const alg = normalize(algorithm, "encrypt");
        const bytes = copy(data, "data");
        kslot(key);
        return buffer(cipher(true, alg, key, bytes));
      });
    }
    decrypt(algorithm, key, data) {
      const args = arguments;
      return promised(() => {
        need(args, 3, "decrypt");
        const alg = normalize(algorithm, "encrypt");
        const bytes = copy(data, "data");
        kslot(key);
        return buffer(cipher(false, alg, key, bytes));
      });
    }
    deriveBits(algorithm, baseKey, length = null) {
      const args = arguments;
      return promised(() => {
        need(args, 2, "deriveBits");
        const alg = normalize(algorithm, "deriveBits");
        kslot(baseKey);
        return buffer(deriveBits(alg, baseKey, length === null ? null : internal.toUnsignedLong(length)));
      });
    }
    wrapKey(format, key, wrappingKey, wrapAlgorithm) {
      const args = arguments;
      return promised(() => {
        need(args, 4, "wrapKey");
        const alg = normalize(wrapAlgorithm, normalizedWrapOp(wrapAlgorithm));
        kslot(key);
        kslot(wrappingKey);
        const exported = exportKey(String(format), key);
        const bytes = String(format) === "jwk" ? native.utf8Encode(JSON.stringify(exported)) : new Uint8Array(exported);
        return buffer(cipher(true, alg, wrappingKey, bytes, "wrapKey"));
      });
    }
    unwrapKey(format, wrappedKey, unwrappingKey, unwrapAlgorithm, unwrappedKeyAlgorithm, extractable, usages) {
      const args = arguments;
      return promised(() => {
        need(args, 7, "unwrapKey");
        const alg = normalize(unwrapAlgorithm, normalizedWrapOp(unwrapAlgorithm));
        const target = normalize(unwrappedKeyAlgorithm, "importKey");
        kslot(unwrappingKey);
        const bytes = cipher(false, alg, unwrappingKey, copy(wrappedKey, "wrappedKey"), "unwrapKey");
        format = String(format);
        let keyData = bytes;
        if (format === "jwk") {
          try {
            keyData = JSON.parse(new internal.TextDecoder().decode(bytes));
          } catch (e) {
            throw fail("DataError", "The unwrapped key is not a JWK");
          }
        }
        return usagesFor[target.name].secret ? importSecret(format, keyData, target, !!extractable, [...usages].map(String)) : importAsymmetric(format, keyData, target, !!extractable, [...usages].map(String));
      });
    }
    deriveKey(algorithm, baseKey, derivedKeyType, extractable, usages) {
      const args = arguments;
      return promised(() => {
        need(args, 5, "deriveKey");
        const alg = normalize(algorithm, "deriveBits");
        const target = normalize(derivedKeyType, "get");
        const imported = normalize(derivedKeyType, "importKey");
        const s = useKey(baseKey, alg.name, "deriveKey");
        const bits = derive(alg, s, keyLength(target));
        return importSecret("raw", bits, imported, !!extractable, [...usages].map(String));
      });
    }
  }
  internal.brand(SubtleCrypto);
  const subtle = Object.create(SubtleCrypto.prototype);

  internal.expose("Crypto", Crypto);
  internal.expose("CryptoKey", CryptoKey);
  internal.expose("SubtleCrypto", SubtleCrypto);
  internal.expose("crypto", new Crypto());
  // Math.random from the host-seeded generator (never the snapshot's seed).
  Object.defineProperty(Math, "random", { value: native.mathRandom, writable: true, enumerable: false, configurable: true });
});

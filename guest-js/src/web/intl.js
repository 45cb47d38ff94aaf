// Intl for en-US (QuickJS has none): DateTimeFormat with IANA time zones
// (asked of the host's bundled database through the `time-zone` import, so
// the database is not in every instance's memory), NumberFormat (decimal, percent,
// currency, compact), PluralRules, Collator, and the toLocaleString family
// of Date, Number and BigInt on top of them. Every locale resolves to
// "en-US"; other locales' conventions are not carried.
(function (internal) {
  "use strict";
  const LOCALE = "en-US";
  const defaultTimeZone = "UTC";

  function options(value) {
    if (value === undefined) return {};
    if (value === null) throw new TypeError("Intl options cannot be null");
    return Object(value);
  }
  function pick(opts, key, allowed, fallback) {
    const value = opts[key];
    if (value === undefined) return fallback;
    const text = String(value);
    if (allowed && !allowed.includes(text)) throw new RangeError("Value " + text + " out of range for Intl option " + key);
    return text;
  }
  function number(opts, key, min, max, fallback) {
    const value = opts[key];
    if (value === undefined) return fallback;
    const n = Number(value);
    if (!Number.isFinite(n) || n < min || n > max) throw new RangeError(key + " value is out of range.");
    return Math.floor(n);
  }
  function canonicalLocales(locales) {
    if (locales === undefined) return [];
    const list = typeof locales === "string" ? [locales] : [...locales];
    return list.map((l) => {
      if (typeof l !== "string" || !/^[A-Za-z]{2,8}(-[A-Za-z0-9]{1,8})*$/.test(l)) throw new RangeError("Incorrect locale information provided");
      return l;
    });
  }

  // ---- DateTimeFormat ----------------------------------------------------------

  const weekdays = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"];
  const months = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November", "December"];
  const two = (n) => String(n).padStart(2, "0");
  const dateFields = ["weekday", "year", "month", "day"];
  const usAbbreviations = ["EST", "EDT", "CST", "CDT", "MST", "MDT", "PST", "PDT", "AKST", "AKDT", "HST"];
  const timeFields = ["hour", "minute", "second", "fractionalSecondDigits"];

  const dtfSlots = new WeakMap();
  class DateTimeFormat {
    constructor(locales, opts) {
      canonicalLocales(locales);
      const o = options(opts);
      let timeZone = defaultTimeZone;
      if (o.timeZone !== undefined) {
        const zone = internal.timeZone(String(o.timeZone), 0);
        if (!zone) throw new RangeError("Invalid time zone specified: " + o.timeZone);
        timeZone = zone.name;
      }
      const r = {
        locale: LOCALE, calendar: "gregory", numberingSystem: "latn", timeZone,
        weekday: pick(o, "weekday", ["long", "short", "narrow"]),
        year: pick(o, "year", ["numeric", "2-digit"]),
        month: pick(o, "month", ["numeric", "2-digit", "long", "short", "narrow"]),
        day: pick(o, "day", ["numeric", "2-digit"]),
        hour: pick(o, "hour", ["numeric", "2-digit"]),
        minute: pick(o, "minute", ["numeric", "2-digit"]),
        second: pick(o, "second", ["numeric", "2-digit"]),
        fractionalSecondDigits: number(o, "fractionalSecondDigits", 1, 3, undefined),
        timeZoneName: pick(o, "timeZoneName", ["short", "long", "shortOffset", "longOffset", "shortGeneric", "longGeneric"]),
        dateStyle: pick(o, "dateStyle", ["full", "long", "medium", "short"]),
        timeStyle: pick(o, "timeStyle", ["full", "long", "medium", "short"]),
      };
      const hour12 = o.hour12 === undefined ? undefined : !!o.hour12;
      const hourCycle = pick(o, "hourCycle", ["h11", "h12", "h23", "h24"]);
      r.hourCycle = hour12 === undefined ? hourCycle || "h12" : hour12 ? "h12" : "h23";
      const hasStyle = r.dateStyle || r.timeStyle;
      const hasField = [...dateFields, ...timeFields, "timeZoneName"].some((f) => r[f] !== undefined);
      if (hasStyle && hasField) throw new TypeError("Can't set option " + [...dateFields, ...timeFields].find((f) => r[f] !== undefined) + " when dateStyle or timeStyle is used");
      const defaults = o.__defaults || "date";
      if (!hasStyle && ![...dateFields, ...timeFields].some((f) => r[f] !== undefined)) {
        if (defaults === "date" || defaults === "all") Object.assign(r, { year: "numeric", month: "numeric", day: "numeric" });
        if (defaults === "time" || defaults === "all") Object.assign(r, { hour: "numeric", minute: "2-digit", second: "2-digit" });
      }
      if (r.hour === undefined && !r.timeStyle) delete r.hourCycle;
      dtfSlots.set(this, r);
    }
    format(date) { return parts(dtfSlot(this), date).map((p) => p.value).join(""); }
    formatToParts(date) { return parts(dtfSlot(this), date); }
    formatRange(a, b) { return this.format(a) + " – " + this.format(b); }
    resolvedOptions() {
      const r = { ...dtfSlot(this) };
      if (r.hourCycle) r.hour12 = r.hourCycle === "h11" || r.hourCycle === "h12";
      for (const k of Object.keys(r)) if (r[k] === undefined) delete r[k];
      return r;
    }
    static supportedLocalesOf(locales) { return canonicalLocales(locales).filter((l) => /^en(-US)?$/i.test(l)); }
  }
  function dtfSlot(self) {
    const s = dtfSlots.get(self);
    if (!s) throw new TypeError("Method called on an object that is not an Intl.DateTimeFormat");
    return s;
  }
  internal.brand(DateTimeFormat, "Intl.DateTimeFormat");

  // The wall-clock fields of `ms` in `timeZone`, with its abbreviation.
  function wall(ms, timeZone) {
    const zone = timeZone === "UTC" ? { offset: 0, abbreviation: "UTC" } : internal.timeZone(timeZone, ms);
    const offset = zone.offset;
    const d = new Date(ms + offset * 60000);
    return {
      year: d.getUTCFullYear(), month: d.getUTCMonth(), day: d.getUTCDate(), weekday: d.getUTCDay(),
      hour: d.getUTCHours(), minute: d.getUTCMinutes(), second: d.getUTCSeconds(), ms: d.getUTCMilliseconds(), offset,
      abbreviation: zone.abbreviation,
    };
  }
  function offsetName(offset, long) {
    if (offset === 0) return "GMT";
    const sign = offset < 0 ? "-" : "+";
    const a = Math.abs(offset);
    const h = Math.floor(a / 60);
    const m = a % 60;
    return "GMT" + sign + (long ? two(h) + ":" + two(m) : h + (m ? ":" + two(m) : ""));
  }

  function parts(r, date) {
    const ms = date === undefined ? Date.now() : Number(date instanceof Date ? date.getTime() : date);
    if (!Number.isFinite(ms)) throw new RangeError("Invalid time value");
    const w = wall(ms, r.timeZone);
    const out = [];
    const push = (type, value) => out.push({ type, value: String(value) });
    const lit = (value) => push("literal", value);
    let f = r;
    if (r.dateStyle || r.timeStyle) {
      f = {};
      if (r.dateStyle === "full") Object.assign(f, { weekday: "long", month: "long", day: "numeric", year: "numeric" });
      if (r.dateStyle === "long") Object.assign(f, { month: "long", day: "numeric", year: "numeric" });
      if (r.dateStyle === "medium") Object.assign(f, { month: "short", day: "numeric", year: "numeric" });
      if (r.dateStyle === "short") Object.assign(f, { month: "numeric", day: "numeric", year: "2-digit" });
      if (r.timeStyle) Object.assign(f, { hour: "numeric", minute: "2-digit" });
      if (r.timeStyle && r.timeStyle !== "short") f.second = "2-digit";
      if (r.timeStyle === "full" || r.timeStyle === "long") f.timeZoneName = "short";
      f.hourCycle = r.hourCycle || "h12";
    }
    const hasDate = dateFields.some((k) => f[k] !== undefined);
    const hasTime = timeFields.some((k) => f[k] !== undefined);
    const year = f.year === "2-digit" ? two(w.year % 100) : w.year;
    if (hasDate) {
      const textMonth = f.month === "long" || f.month === "short" || f.month === "narrow";
      if (f.weekday) {
        const name = weekdays[w.weekday];
        push("weekday", f.weekday === "long" ? name : f.weekday === "short" ? name.slice(0, 3) : name[0]);
        if (f.month || f.day || f.year) lit(", ");
      }
      if (textMonth) {
        const name = months[w.month];
        push("month", f.month === "long" ? name : f.month === "short" ? name.slice(0, 3) : name[0]);
        if (f.day) { lit(" "); push("day", f.day === "2-digit" ? two(w.day) : w.day); }
        if (f.year) { lit(f.day ? ", " : " "); push("year", year); }
      } else {
        const numeric = [];
        if (f.month) numeric.push(["month", f.month === "2-digit" ? two(w.month + 1) : w.month + 1]);
        if (f.day) numeric.push(["day", f.day === "2-digit" ? two(w.day) : w.day]);
        if (f.year) numeric.push(["year", year]);
        numeric.forEach(([type, value], i) => { if (i) lit("/"); push(type, value); });
      }
    }
    if (hasTime) {
      if (hasDate) lit(r.dateStyle === "full" || r.dateStyle === "long" ? " at " : ", ");
      const cycle = f.hourCycle || "h12";
      const twelve = cycle === "h11" || cycle === "h12";
      if (f.hour) {
        let h = w.hour;
        if (twelve) h = cycle === "h12" ? (h % 12 || 12) : h % 12;
        else if (cycle === "h24" && h === 0) h = 24;
        push("hour", f.hour === "2-digit" || (!twelve && (f.minute || f.second)) ? two(h) : h);
      }
      if (f.minute) { if (f.hour) lit(":"); push("minute", f.hour || f.minute === "2-digit" ? two(w.minute) : w.minute); }
      if (f.second) { if (f.hour || f.minute) lit(":"); push("second", f.hour || f.minute || f.second === "2-digit" ? two(w.second) : w.second); }
      if (f.fractionalSecondDigits) { lit("."); push("fractionalSecond", String(w.ms).padStart(3, "0").slice(0, f.fractionalSecondDigits)); }
      if (f.hour && twelve) { lit(" "); push("dayPeriod", w.hour < 12 ? "AM" : "PM"); }
    }
    if (f.timeZoneName) {
      if (out.length) lit(hasTime ? " " : ", ");
      const name = f.timeZoneName;
      let value;
      if (name === "shortOffset" || name === "longOffset") value = offsetName(w.offset, name === "longOffset");
      else if (r.timeZone === "UTC") value = name === "long" ? "Coordinated Universal Time" : "UTC";
      else {
        // en-US names only the US zones by abbreviation (as CLDR does).
        value = usAbbreviations.includes(w.abbreviation) ? w.abbreviation : offsetName(w.offset, false);
      }
      push("timeZoneName", value);
    }
    return out;
  }

  // ---- NumberFormat ------------------------------------------------------------

  const currencySymbols = { USD: "$", EUR: "€", GBP: "£", JPY: "¥", CNY: "CN¥", INR: "₹", CAD: "CA$", AUD: "A$", KRW: "₩", BRL: "R$", MXN: "MX$" };
  const zeroDecimalCurrencies = ["JPY", "KRW", "VND", "CLP", "ISK", "HUF"];
  const nfSlots = new WeakMap();
  class NumberFormat {
    constructor(locales, opts) {
      canonicalLocales(locales);
      const o = options(opts);
      const style = pick(o, "style", ["decimal", "percent", "currency", "unit"], "decimal");
      let currency = o.currency === undefined ? undefined : String(o.currency).toUpperCase();
      if (currency !== undefined && !/^[A-Z]{3}$/.test(currency)) throw new RangeError("Invalid currency code : " + o.currency);
      if (style === "currency" && currency === undefined) throw new TypeError("Currency code is required with currency style.");
      if (style === "unit") throw new RangeError("Intl.NumberFormat style 'unit' is not supported in valbox");
      const notation = pick(o, "notation", ["standard", "scientific", "engineering", "compact"], "standard");
      const currencyDigits = style === "currency" ? (zeroDecimalCurrencies.includes(currency) ? 0 : 2) : 0;
      const minFD = number(o, "minimumFractionDigits", 0, 100, undefined);
      const maxFD = number(o, "maximumFractionDigits", 0, 100, undefined);
      const defaultMin = style === "currency" ? currencyDigits : 0;
      const defaultMax = style === "currency" ? Math.max(currencyDigits, minFD || 0) : style === "percent" ? Math.max(0, minFD || 0) : notation === "compact" ? 0 : Math.max(3, minFD || 0);
      const r = {
        locale: LOCALE, numberingSystem: "latn", style,
        currency, currencyDisplay: style === "currency" ? pick(o, "currencyDisplay", ["symbol", "narrowSymbol", "code", "name"], "symbol") : undefined,
        minimumIntegerDigits: number(o, "minimumIntegerDigits", 1, 21, 1),
        minimumFractionDigits: minFD === undefined ? Math.min(defaultMin, maxFD === undefined ? defaultMin : maxFD) : minFD,
        maximumFractionDigits: maxFD === undefined ? Math.max(defaultMax, minFD || 0) : maxFD,
        minimumSignificantDigits: number(o, "minimumSignificantDigits", 1, 21, undefined),
        maximumSignificantDigits: number(o, "maximumSignificantDigits", 1, 21, undefined),
        useGrouping: o.useGrouping === undefined ? "auto" : o.useGrouping === false || o.useGrouping === "false" ? false : String(o.useGrouping === true ? "always" : o.useGrouping),
        notation, compactDisplay: notation === "compact" ? pick(o, "compactDisplay", ["short", "long"], "short") : undefined,
        signDisplay: pick(o, "signDisplay", ["auto", "never", "always", "exceptZero", "negative"], "auto"),
      };
      if (r.minimumFractionDigits > r.maximumFractionDigits) throw new RangeError("maximumFractionDigits value is out of range.");
      if (r.minimumSignificantDigits !== undefined || r.maximumSignificantDigits !== undefined) {
        r.minimumSignificantDigits = r.minimumSignificantDigits || 1;
        r.maximumSignificantDigits = r.maximumSignificantDigits || 21;
      }
      nfSlots.set(this, r);
    }
    get format() {
      const r = nfSlot(this);
      return (value) => formatNumber(r, value);
    }
    formatToParts(value) { return [{ type: "literal", value: formatNumber(nfSlot(this), value) }]; }
    resolvedOptions() {
      const r = { ...nfSlot(this) };
      for (const k of Object.keys(r)) if (r[k] === undefined) delete r[k];
      return r;
    }
    static supportedLocalesOf(locales) { return canonicalLocales(locales).filter((l) => /^en(-US)?$/i.test(l)); }
  }
  function nfSlot(self) {
    const s = nfSlots.get(self);
    if (!s) throw new TypeError("Method called on an object that is not an Intl.NumberFormat");
    return s;
  }
  internal.brand(NumberFormat, "Intl.NumberFormat");

  function group(integer) {
    return integer.replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  }
  // Decimal digits of |x| rounded half away from zero to `digits` places.
  function fixed(x, digits) {
    if (x >= 1e21) return BigInt(Math.round(x)).toString() + (digits ? "." + "0".repeat(digits) : "");
    const shifted = Number(Math.round(Number(x + "e" + digits)) + "e-" + digits);
    return (Number.isFinite(shifted) ? shifted : x).toFixed(digits);
  }
  function formatNumber(r, value) {
    if (typeof value === "bigint") value = Number(value);
    let x = Number(value);
    if (Number.isNaN(x)) return "NaN";
    const negative = x < 0 || Object.is(x, -0);
    let abs = Math.abs(x);
    let suffix = "";
    if (r.style === "percent") abs *= 100;
    if (r.notation === "compact" && Number.isFinite(abs)) {
      const units = r.compactDisplay === "long" ? [[1e12, " trillion"], [1e9, " billion"], [1e6, " million"], [1e3, " thousand"]] : [[1e12, "T"], [1e9, "B"], [1e6, "M"], [1e3, "K"]];
      for (const [size, name] of units) {
        if (abs >= size) {
          abs /= size;
          suffix = name;
          break;
        }
      }
    }
    let text;
    if (!Number.isFinite(abs)) text = "∞";
    else if (r.minimumSignificantDigits !== undefined) {
      text = String(Number(abs.toPrecision(r.maximumSignificantDigits)));
      const [int, frac = ""] = text.includes("e") ? [fixed(Number(text), 0), ""] : text.split(".");
      const sig = (int.replace(/^0+/, "") + frac).length;
      const pad = Math.max(0, r.minimumSignificantDigits - sig);
      text = group(int) + (frac || pad ? "." + frac + "0".repeat(pad) : "");
    } else {
      const maxFD = r.notation === "compact" && abs < 100 && suffix ? Math.max(r.maximumFractionDigits, 1) : r.maximumFractionDigits;
      let digits = fixed(abs, maxFD);
      let [int, frac = ""] = digits.split(".");
      while (frac.length > r.minimumFractionDigits && frac.endsWith("0")) frac = frac.slice(0, -1);
      int = int.padStart(r.minimumIntegerDigits, "0");
      text = (r.useGrouping === false ? int : group(int)) + (frac ? "." + frac : "");
    }
    const zero = /^[0.,]*$/.test(text);
    let sign = "";
    if (r.signDisplay === "always") sign = negative ? "-" : "+";
    else if (r.signDisplay === "exceptZero") sign = zero ? "" : negative ? "-" : "+";
    else if (r.signDisplay !== "never") sign = negative && !(zero && r.signDisplay === "negative") ? "-" : "";
    if (r.style === "percent") return sign + text + suffix + "%";
    if (r.style === "currency") {
      const code = r.currency;
      if (r.currencyDisplay === "code") return sign + code + "\u00a0" + text + suffix;
      if (r.currencyDisplay === "name") return sign + text + suffix + " " + code;
      const symbol = currencySymbols[code] || code;
      return sign + symbol + (symbol.length === 3 && symbol === code ? "\u00a0" : "") + text + suffix;
    }
    return sign + text + suffix;
  }

  // ---- PluralRules and Collator ---------------------------------------------------

  class PluralRules {
    constructor(locales, opts) {
      canonicalLocales(locales);
      this.__type = pick(options(opts), "type", ["cardinal", "ordinal"], "cardinal");
      Object.defineProperty(this, "__type", { enumerable: false });
    }
    select(n) {
      const x = Math.abs(Number(n));
      if (this.__type === "ordinal") {
        const ten = x % 10, hundred = x % 100;
        if (ten === 1 && hundred !== 11) return "one";
        if (ten === 2 && hundred !== 12) return "two";
        if (ten === 3 && hundred !== 13) return "few";
        return "other";
      }
      return x === 1 && Number.isInteger(Number(n)) ? "one" : "other";
    }
    resolvedOptions() {
      return { locale: LOCALE, type: this.__type, pluralCategories: this.__type === "ordinal" ? ["few", "one", "two", "other"] : ["one", "other"] };
    }
    static supportedLocalesOf(locales) { return canonicalLocales(locales).filter((l) => /^en(-US)?$/i.test(l)); }
  }
  internal.brand(PluralRules, "Intl.PluralRules");

  class Collator {
    constructor(locales, opts) {
      canonicalLocales(locales);
      const o = options(opts);
      this.__options = {
        locale: LOCALE, usage: pick(o, "usage", ["sort", "search"], "sort"),
        sensitivity: pick(o, "sensitivity", ["base", "accent", "case", "variant"], "variant"),
        numeric: !!o.numeric, ignorePunctuation: !!o.ignorePunctuation, caseFirst: "false", collation: "default",
      };
      Object.defineProperty(this, "__options", { enumerable: false });
    }
    get compare() {
      const o = this.__options;
      const key = (s) => {
        let t = String(s).normalize("NFD");
        if (o.sensitivity === "base" || o.sensitivity === "accent") t = t.toLowerCase();
        if (o.sensitivity === "base" || o.sensitivity === "case") t = t.replace(/[\u0300-\u036f]/g, "");
        return t;
      };
      return (a, b) => {
        const x = key(a), y = key(b);
        if (o.numeric) {
          const re = /(\d+)|(\D+)/g;
          const xs = x.match(re) || [], ys = y.match(re) || [];
          for (let i = 0; i < Math.min(xs.length, ys.length); i++) {
            const p = xs[i], q = ys[i];
            const c = /^\d/.test(p) && /^\d/.test(q) ? Number(p) - Number(q) : p.toLowerCase() < q.toLowerCase() ? -1 : p.toLowerCase() > q.toLowerCase() ? 1 : 0;
            if (c) return c < 0 ? -1 : 1;
          }
          return Math.sign(xs.length - ys.length);
        }
        const lx = x.toLowerCase(), ly = y.toLowerCase();
        if (lx !== ly) return lx < ly ? -1 : 1;
        return x === y ? 0 : x < y ? 1 : -1;
      };
    }
    resolvedOptions() { return { ...this.__options }; }
    static supportedLocalesOf(locales) { return canonicalLocales(locales).filter((l) => /^en(-US)?$/i.test(l)); }
  }
  internal.brand(Collator, "Intl.Collator");

  // DateTimeFormat, NumberFormat and Collator may be called without `new`.
  function callable(Class) {
    const f = function (locales, opts) {
      return new Class(locales, opts);
    };
    Object.defineProperty(f, "name", { value: Class.name });
    Object.defineProperty(f, "length", { value: 0 });
    f.prototype = Class.prototype;
    Object.defineProperty(Class.prototype, "constructor", { value: f, writable: true, configurable: true });
    f.supportedLocalesOf = Class.supportedLocalesOf;
    return f;
  }

  const Intl = {
    DateTimeFormat: callable(DateTimeFormat), NumberFormat: callable(NumberFormat), PluralRules, Collator: callable(Collator),
    getCanonicalLocales(locales) { return canonicalLocales(locales); },
    supportedValuesOf(key) {
      if (key === "currency") return Object.keys(currencySymbols).sort();
      if (key === "calendar") return ["gregory"];
      if (key === "numberingSystem") return ["latn"];
      throw new RangeError("Invalid key : " + key);
    },
  };
  Object.defineProperty(Intl, Symbol.toStringTag, { value: "Intl", configurable: true });
  internal.expose("Intl", Intl);

  // The toLocaleString family, on the classes above.
  const method = (target, name, f) => Object.defineProperty(target, name, { value: f, writable: true, enumerable: false, configurable: true });
  const dateFormat = (defaults) => function (locales, opts) {
    if (!(this instanceof Date)) throw new TypeError("this is not a Date object.");
    if (Number.isNaN(this.getTime())) return "Invalid Date";
    const o = { ...options(opts), __defaults: defaults };
    const hasField = [...dateFields, ...timeFields, "dateStyle", "timeStyle"].some((k) => o[k] !== undefined);
    if (hasField) delete o.__defaults;
    return new DateTimeFormat(locales, o).format(this);
  };
  method(Date.prototype, "toLocaleString", dateFormat("all"));
  method(Date.prototype, "toLocaleDateString", dateFormat("date"));
  method(Date.prototype, "toLocaleTimeString", dateFormat("time"));
  method(Number.prototype, "toLocaleString", function (locales, opts) {
    return new NumberFormat(locales, opts).format(Number.prototype.valueOf.call(this));
  });
  method(BigInt.prototype, "toLocaleString", function (locales, opts) {
    return new NumberFormat(locales, opts).format(BigInt.prototype.valueOf.call(this));
  });
});

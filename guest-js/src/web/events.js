// Event, CustomEvent and EventTarget (DOM Standard), without a tree: an
// event is dispatched to its target only.
(function (internal) {
  "use strict";
  const { DOMException } = internal;
  const eventSlots = new WeakMap();
  const origin = () => internal.native.now();

  function ev(self) {
    const s = eventSlots.get(self);
    if (!s) throw new TypeError("Illegal invocation");
    return s;
  }

  class Event {
    constructor(type, init) {
      if (arguments.length === 0) throw new TypeError("Failed to construct 'Event': 1 argument required, but only 0 present.");
      if (init !== undefined && init !== null && typeof init !== "object" && typeof init !== "function") {
        throw new TypeError("Failed to construct 'Event': the second argument is not an object");
      }
      init = init || {};
      eventSlots.set(this, {
        type: String(type),
        bubbles: !!init.bubbles,
        cancelable: !!init.cancelable,
        composed: !!init.composed,
        target: null,
        currentTarget: null,
        phase: 0,
        stop: false,
        stopImmediate: false,
        canceled: false,
        inPassive: false,
        dispatching: false,
        initialized: true,
        timeStamp: origin(),
      });
      Object.defineProperty(this, "isTrusted", { get: isTrusted, enumerable: true, configurable: false });
    }
    get type() { return ev(this).type; }
    get target() { return ev(this).target; }
    get srcElement() { return ev(this).target; }
    get currentTarget() { return ev(this).currentTarget; }
    composedPath() { const s = ev(this); return s.dispatching && s.target ? [s.target] : []; }
    get eventPhase() { return ev(this).phase; }
    stopPropagation() { ev(this).stop = true; }
    get cancelBubble() { return ev(this).stop; }
    set cancelBubble(value) { if (value) ev(this).stop = true; }
    stopImmediatePropagation() { const s = ev(this); s.stop = true; s.stopImmediate = true; }
    get bubbles() { return ev(this).bubbles; }
    get cancelable() { return ev(this).cancelable; }
    get returnValue() { return !ev(this).canceled; }
    set returnValue(value) { if (!value) cancel(ev(this)); }
    preventDefault() { cancel(ev(this)); }
    get defaultPrevented() { return ev(this).canceled; }
    get composed() { return ev(this).composed; }
    get timeStamp() { return ev(this).timeStamp; }
    initEvent(type, bubbles = false, cancelable = false) {
      if (arguments.length === 0) throw new TypeError("Failed to execute 'initEvent': 1 argument required");
      const s = ev(this);
      if (s.dispatching) return;
      Object.assign(s, { type: String(type), bubbles: !!bubbles, cancelable: !!cancelable, stop: false, stopImmediate: false, canceled: false, target: null, initialized: true });
    }
  }
  // Events the platform itself dispatches (an AbortSignal's "abort") are
  // trusted; events user code constructs are not.
  function isTrusted() {
    const s = eventSlots.get(this);
    return !!(s && s.trusted);
  }
  internal.trustedEvent = function trustedEvent(type) {
    const event = new Event(type);
    ev(event).trusted = true;
    return event;
  };
  function cancel(s) {
    if (s.cancelable && !s.inPassive) s.canceled = true;
  }
  const phases = { NONE: 0, CAPTURING_PHASE: 1, AT_TARGET: 2, BUBBLING_PHASE: 3 };
  for (const [name, value] of Object.entries(phases)) {
    Object.defineProperty(Event, name, { value, enumerable: true });
    Object.defineProperty(Event.prototype, name, { value, enumerable: true });
  }
  internal.brand(Event);

  class CustomEvent extends Event {
    constructor(type, init) {
      super(type, init);
      this.__detail = init && init.detail !== undefined ? init.detail : null;
      Object.defineProperty(this, "__detail", { enumerable: false });
    }
    get detail() { return this.__detail; }
    initCustomEvent(type, bubbles = false, cancelable = false, detail = null) {
      if (ev(this).dispatching) return;
      this.initEvent(type, bubbles, cancelable);
      this.__detail = detail;
    }
  }
  internal.brand(CustomEvent);

  const listenerSlots = new WeakMap();
  function listeners(self) {
    if (self === undefined || self === null) self = globalThis;
    let map = listenerSlots.get(self);
    if (!map) {
      if (self !== globalThis && !(self instanceof EventTarget)) throw new TypeError("Illegal invocation");
      map = new Map();
      listenerSlots.set(self, map);
    }
    return map;
  }
  function flatten(options) {
    if (typeof options === "boolean") return { capture: options };
    if (options === null || options === undefined) return { capture: false };
    return { capture: !!options.capture, once: !!options.once, passive: options.passive === undefined ? undefined : !!options.passive, signal: options.signal };
  }

  class EventTarget {
    constructor() {
      listenerSlots.set(this, new Map());
    }
    addEventListener(type, callback, options) {
      if (arguments.length < 2) throw new TypeError("Failed to execute 'addEventListener': 2 arguments required");
      const map = listeners(this);
      const opts = flatten(options);
      if (opts.signal !== undefined && !(opts.signal instanceof internal.AbortSignal)) {
        throw new TypeError("Failed to execute 'addEventListener': member signal is not of type AbortSignal.");
      }
      if (callback === null || callback === undefined) return;
      if (typeof callback !== "function" && typeof callback !== "object") throw new TypeError("The listener must be an object or a function");
      if (opts.signal && opts.signal.aborted) return;
      type = String(type);
      let list = map.get(type);
      if (!list) map.set(type, (list = []));
      if (list.some((l) => l.callback === callback && l.capture === opts.capture)) return;
      const listener = { callback, capture: opts.capture, once: !!opts.once, passive: !!opts.passive, removed: false };
      list.push(listener);
      if (opts.signal) {
        internal.addAbortAlgorithm(opts.signal, () => this.removeEventListener(type, callback, opts));
      }
    }
    removeEventListener(type, callback, options) {
      if (arguments.length < 2) throw new TypeError("Failed to execute 'removeEventListener': 2 arguments required");
      const map = listeners(this);
      const capture = flatten(options).capture;
      const list = map.get(String(type));
      if (!list) return;
      const index = list.findIndex((l) => l.callback === callback && l.capture === capture);
      if (index >= 0) {
        list[index].removed = true;
        list.splice(index, 1);
      }
    }
    dispatchEvent(event) {
      if (!(event instanceof Event)) throw new TypeError("Failed to execute 'dispatchEvent': parameter 1 is not of type 'Event'.");
      const s = ev(event);
      if (s.dispatching || !s.initialized) throw new DOMException("The event is already being dispatched.", "InvalidStateError");
      const target = this === undefined || this === null ? globalThis : this;
      const map = listeners(target);
      s.dispatching = true;
      s.target = target;
      s.currentTarget = target;
      s.phase = 2;
      const list = map.get(s.type);
      if (list) {
        for (const phaseCapture of [true, false]) {
          for (const l of list.slice()) {
            if (s.stop) break;
            if (l.removed || l.capture !== phaseCapture) continue;
            if (l.once) target.removeEventListener(s.type, l.callback, { capture: l.capture });
            if (l.passive) s.inPassive = true;
            try {
              if (typeof l.callback === "function") l.callback.call(target, event);
              else {
                const handle = l.callback.handleEvent;
                if (typeof handle !== "function") throw new TypeError("handleEvent is not a function");
                handle.call(l.callback, event);
              }
            } catch (e) {
              internal.reportException(e);
            }
            s.inPassive = false;
            if (s.stopImmediate) break;
          }
          if (s.stopImmediate) break;
        }
      }
      s.dispatching = false;
      s.phase = 0;
      s.currentTarget = null;
      s.stop = false;
      s.stopImmediate = false;
      return !s.canceled;
    }
  }
  internal.brand(EventTarget);

  Object.assign(internal, { Event, CustomEvent, EventTarget });
  internal.expose("Event", Event);
  internal.expose("CustomEvent", CustomEvent);
  internal.expose("EventTarget", EventTarget);
  // The global object is an event target too (`addEventListener("error", …)`).
  for (const name of ["addEventListener", "removeEventListener", "dispatchEvent"]) {
    internal.expose(name, EventTarget.prototype[name]);
  }
});

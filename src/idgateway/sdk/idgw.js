/*! idgateway browser SDK v1 (SPEC §5.9). Plain JavaScript, no third-party code.
 *
 * idgw.init({url, key, onError}) then the vendors' own browser calls:
 *   groove.widget.identifyContact / setContact / identifyCompany / setCompany / logout
 *   gist.identify(userId, props)        Smooch.updateUser({...})
 *
 * State lives in localStorage under "idgw:<key>": the session id, the calls not yet sent (in
 * order), the values set so far (Groove's "stored locally") and the last identify of each kind.
 * Calls go to POST /v1/sessions/{id}/calls in small batches; network errors, 408, 429 and 5xx
 * are retried with backoff, other 4xx reach onError and the console and are never retried.
 */
(() => {
  "use strict";
  const VERSION = "1.0.0";
  const BATCH_CALLS = 50; // the gateway takes up to 100 calls per request
  const BATCH_BYTES = 24576; // under max_body_bytes (32 KiB default) and keepalive's 64 KiB
  const GATHER_MS = 30; // default wait so that calls made together share a request
  const MAX_BACKOFF_MS = 60000;
  const LEASE_MS = 15000; // one tab flushes at a time; a dead tab's lease runs out
  const w = window;
  const script = document.currentScript;
  const tab = Math.random().toString(36).slice(2);

  let cfg = null; // {url, key, onError, batchDelay}
  let early = []; // calls made before init
  let memory = null; // state when localStorage is not available
  let timer = 0;
  let running = null; // the flush in progress (a promise)
  let attempt = 0;
  let retryAt = 0;
  let halted = false; // a 401 or a refused mint: nothing can be sent with this config

  // ---- state -------------------------------------------------------------------------------

  const fresh = () => ({
    v: 1,
    seq: 0,
    // A lane is one gateway session and the calls still to send to it; the last lane is the
    // current one, earlier lanes were logged out and are deleted once their calls are sent.
    lanes: [],
    kept: { c: {}, o: {} }, // every value set since the last logout
    ident: { c: null, o: null }, // the last identify asked for (not refused)
  });
  const storeKey = () => "idgw:" + cfg.key;
  const load = () => {
    try {
      const raw = w.localStorage.getItem(storeKey());
      if (raw) return JSON.parse(raw);
      if (raw === null) return fresh();
    } catch (_) {
      /* storage blocked: fall back to memory below */
    }
    return memory ? JSON.parse(JSON.stringify(memory)) : fresh();
  };
  const save = (s) => {
    memory = s;
    try {
      w.localStorage.setItem(storeKey(), JSON.stringify(s));
    } catch (_) {
      /* private mode or quota: keep going in memory */
    }
  };
  const mutate = (fn) => {
    const s = load();
    const out = fn(s);
    save(s);
    return out;
  };
  const newLane = (s) => {
    const lane = { id: s.seq++, sid: null, queue: [], bound: { c: null, o: null }, closing: false };
    s.lanes.push(lane);
    return lane;
  };
  const current = (s) => {
    const last = s.lanes[s.lanes.length - 1];
    return last && !last.closing ? last : newLane(s);
  };
  const push = (s, call) => current(s).queue.push({ n: s.seq++, call });
  const same = (a, b) => JSON.stringify(a) === JSON.stringify(b);

  // ---- errors ------------------------------------------------------------------------------

  const report = (error) => {
    try {
      console.error("[idgw]", error.status || "", error.message, error);
    } catch (_) {
      /* no console */
    }
    if (cfg && typeof cfg.onError === "function") {
      try {
        cfg.onError(error);
      } catch (e) {
        setTimeout(() => {
          throw e;
        });
      }
    }
  };
  const misuse = (message) => report({ status: 0, message, problem: null, calls: [] });
  const isObject = (x) => x !== null && typeof x === "object" && !Array.isArray(x);

  // ---- sending -----------------------------------------------------------------------------

  const schedule = (ms) => {
    clearTimeout(timer);
    timer = setTimeout(flush, Math.max(ms, retryAt - Date.now(), 0));
  };
  const soon = () => {
    if (cfg) schedule(cfg.batchDelay);
  };

  const request = async (method, path, body) => {
    const headers = { "X-Idgw-Key": cfg.key };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    // keepalive: a request in flight when the page goes away still reaches the gateway.
    const r = await fetch(cfg.url + path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      keepalive: true,
      mode: "cors",
      credentials: "omit",
      cache: "no-store",
    });
    let data = null;
    try {
      data = await r.json();
    } catch (_) {
      /* 204 or not JSON */
    }
    return { status: r.status, data, retryAfter: r.headers.get("Retry-After") };
  };

  const backoff = (retryAfter) => {
    attempt += 1;
    let ms = Math.min(MAX_BACKOFF_MS, 500 * 2 ** attempt) * (0.5 + Math.random() / 2);
    if (retryAfter) {
      const secs = Number(retryAfter);
      const date = Date.parse(retryAfter);
      if (Number.isFinite(secs)) ms = secs * 1000;
      else if (Number.isFinite(date)) ms = date - Date.now();
    }
    retryAt = Date.now() + Math.max(ms, 0);
    schedule(0);
  };
  const retryable = (status) => status === 408 || status === 429 || status >= 500;

  const takeLease = () => {
    const key = storeKey() + ":lease";
    try {
      const held = JSON.parse(w.localStorage.getItem(key) || "null");
      if (held && held.tab !== tab && held.until > Date.now()) return false;
      w.localStorage.setItem(key, JSON.stringify({ tab, until: Date.now() + LEASE_MS }));
    } catch (_) {
      /* no storage: this tab is alone */
    }
    return true;
  };
  const dropLease = () => {
    try {
      const key = storeKey() + ":lease";
      const held = JSON.parse(w.localStorage.getItem(key) || "null");
      if (held && held.tab === tab) w.localStorage.removeItem(key);
    } catch (_) {
      /* nothing to drop */
    }
  };

  const utf8 = new TextEncoder();
  const batchOf = (queue) => {
    const out = [];
    let bytes = 12;
    for (const entry of queue) {
      const size = utf8.encode(JSON.stringify(entry.call)).length + 1;
      if (out.length && (out.length >= BATCH_CALLS || bytes + size > BATCH_BYTES)) break;
      out.push(entry);
      bytes += size;
    }
    return out;
  };

  // What a problem names: call index -> the property keys refused in it, or null for the
  // whole call ($.calls[3].user_hash, $.calls[0].properties.contact_phone, ...). Nothing
  // named means the whole batch.
  const PATH = /^\$\.calls\[(\d+)\](?:\.properties(?:\.([A-Za-z_]\w*)|\['((?:[^'\\]|\\.)*)'\]))?/;
  const named = (problem, calls) => {
    const paths = [];
    if (problem && Array.isArray(problem.paths)) paths.push(...problem.paths);
    if (problem && Array.isArray(problem.errors)) {
      for (const e of problem.errors) if (e && e.path) paths.push(e.path);
    }
    const found = new Map();
    for (const p of paths) {
      const m = PATH.exec(String(p));
      if (!m || Number(m[1]) >= calls.length) continue;
      const i = Number(m[1]);
      const key = m[2] ?? (m[3] === undefined ? null : m[3].replace(/\\(.)/g, "$1"));
      const props = calls[i].properties;
      if (key === null || !props || !(key in props)) found.set(i, null);
      else if (found.get(i) !== null) found.set(i, new Set([...(found.get(i) || []), key]));
    }
    if (!found.size) calls.forEach((_, i) => found.set(i, null));
    return found;
  };

  const kindOf = (op) =>
    op === "identifyContact" ? "c" : op === "identifyCompany" ? "o" : null;

  // One step of work on the oldest lane; false when there is nothing left to do now.
  const step = async () => {
    const s = load();
    const lane = s.lanes[0];
    if (!lane || (!lane.queue.length && !lane.closing)) return false;
    const update = (fn) =>
      mutate((t) => {
        const l = t.lanes.find((x) => x.id === lane.id);
        if (l) fn(l, t);
      });

    if (!lane.queue.length) {
      // A logged-out lane with everything sent: delete its session on the gateway.
      if (lane.sid) {
        const r = await request("DELETE", "/v1/sessions/" + encodeURIComponent(lane.sid));
        if (retryable(r.status)) {
          backoff(r.retryAfter);
          return false;
        }
        if (r.status >= 400 && r.status !== 404) {
          report({ status: r.status, message: "logout failed", problem: r.data, calls: [] });
        }
      }
      mutate((t) => {
        t.lanes = t.lanes.filter((x) => x.id !== lane.id);
      });
      return true;
    }

    if (!lane.sid) {
      const r = await request("POST", "/v1/sessions", {});
      if (retryable(r.status)) {
          backoff(r.retryAfter);
          return false;
        }
      if ((r.status !== 201 && r.status !== 200) || !r.data || typeof r.data.id !== "string") {
        halted = true;
        report({ status: r.status, message: "no session", problem: r.data, calls: [] });
        return false;
      }
      update((l) => {
        l.sid = r.data.id;
        l.session = r.data;
      });
      return true;
    }

    const batch = batchOf(lane.queue);
    const calls = batch.map((e) => e.call);
    const r = await request(
      "POST",
      "/v1/sessions/" + encodeURIComponent(lane.sid) + "/calls",
      { calls },
    );
    if (retryable(r.status)) {
          backoff(r.retryAfter);
          return false;
        }
    const sent = new Set(batch.map((e) => e.n));

    if (r.status === 200 || r.status === 201) {
      update((l) => {
        l.queue = l.queue.filter((e) => !sent.has(e.n));
        for (const call of calls) {
          const k = kindOf(call.op);
          if (k) l.bound[k] = call;
        }
        l.session = r.data && r.data.session;
        l.lost = 0;
      });
      const discarded = r.data && r.data.discarded;
      if (discarded && discarded.length) {
        // Groove's rule: keys naming no declared field are dropped. Say so, quietly.
        console.warn("[idgw] discarded (no such field):", discarded.join(", "));
      }
      return true;
    }

    if (r.status === 404 && (lane.lost || 0) < 2) {
      // The session expired or was logged out elsewhere: mint a new one, bind it again as
      // the old one was bound, then send the same calls.
      update((l, t) => {
        l.sid = null;
        l.lost = (l.lost || 0) + 1;
        const again = ["c", "o"].filter((k) => l.bound[k]);
        l.queue = [...again.map((k) => ({ n: t.seq++, call: l.bound[k] })), ...l.queue];
      });
      return true;
    }

    if (r.status === 401) {
      halted = true;
      report({ status: r.status, message: "key refused", problem: r.data, calls: [] });
      return false;
    }

    // Any other 4xx: what it names (whole calls, or single properties of a set call) is
    // dropped and reported; the rest is sent again.
    const bad = named(r.data, calls);
    const refused = [];
    mutate((t) => {
      const l = t.lanes.find((x) => x.id === lane.id);
      const keep = [];
      for (const e of l ? l.queue : []) {
        const i = sent.has(e.n) ? batch.findIndex((b) => b.n === e.n) : -1;
        if (!bad.has(i)) {
          keep.push(e);
          continue;
        }
        const keys = bad.get(i);
        const k = kindOf(e.call.op);
        // A refused identify is not the identity any more: the next one starts afresh.
        if (k && same(t.ident[k], e.call)) t.ident[k] = l.bound[k];
        if (keys === null) {
          refused.push(e.call);
          continue;
        }
        const props = { ...e.call.properties };
        const out = {};
        for (const key of keys) {
          out[key] = props[key];
          delete props[key];
          // Not kept either, or every later identify would send it again.
          delete t.kept[e.call.op === "setCompany" ? "o" : "c"][key];
        }
        refused.push({ op: e.call.op, properties: out });
        if (Object.keys(props).length) keep.push({ n: e.n, call: { ...e.call, properties: props } });
      }
      if (l) l.queue = keep;
    });
    report({
      status: r.status,
      message: (r.data && (r.data.detail || r.data.title)) || "refused",
      problem: r.data,
      calls: refused,
    });
    return true;
  };

  const flush = () => {
    if (!cfg || halted) return Promise.resolve();
    if (running) return running;
    if (Date.now() < retryAt) {
      schedule(0);
      return Promise.resolve();
    }
    if (!takeLease()) {
      schedule(1000);
      return Promise.resolve();
    }
    clearTimeout(timer);
    running = (async () => {
      try {
        for (;;) {
          let more;
          try {
            more = await step();
          } catch (_) {
            backoff(null); // offline, refused connection, CORS refusal: all look alike here
            more = false;
          }
          if (!more) break;
          attempt = 0;
          takeLease();
        }
      } finally {
        dropLease();
        running = null;
      }
    })();
    return running;
  };

  // ---- the gateway's own calls --------------------------------------------------------------

  const api = {
    version: VERSION,
    init(options) {
      if (!isObject(options) || typeof options.key !== "string" || !options.key) {
        throw new TypeError("idgw.init({key}) needs the tenant's publishable key");
      }
      let url = options.url || (script && script.src ? new URL(script.src).origin : "");
      const delay = Number(options.batchDelay);
      cfg = {
        url: String(url).replace(/\/+$/, ""),
        key: options.key,
        onError: options.onError,
        // Smooch uploads "in batches at regular intervals": calls wait this long (ms) for
        // company; hiding or leaving the page sends at once.
        batchDelay: Number.isFinite(delay) && delay >= 0 ? delay : GATHER_MS,
      };
      memory = null;
      halted = false;
      const calls = early;
      early = [];
      for (const fn of calls) fn();
      if (load().lanes.some((l) => l.queue.length || l.closing)) soon();
      return api;
    },
    flush: () => {
      retryAt = 0;
      return flush();
    },
    state: () => (cfg ? load() : null),
  };

  // Calls made before init wait for it.
  const ready = (fn) =>
    function (...args) {
      if (!cfg) early.push(() => fn(...args));
      else fn(...args);
    };

  // ---- Groove widget (seed 000) ------------------------------------------------------------

  const setter = (k, op) =>
    ready((props) => {
      if (!isObject(props)) return misuse(op + " takes an object of properties");
      mutate((s) => {
        Object.assign(s.kept[k], props);
        // Before identify the values stay here ("stored locally and not passed to the server").
        if (s.ident[k]) push(s, { op, properties: props });
      });
      soon();
    });

  const identifier = (k, op, setOp) =>
    ready((key, value, userHash) => {
      if (typeof key !== "string" || value === undefined || value === null || value === "") {
        return misuse(op + "(key, value, user_hash) needs a key and a value");
      }
      const call = { op, key, value };
      if (userHash !== undefined && userHash !== null) call.user_hash = String(userHash);
      mutate((s) => {
        const prev = s.ident[k];
        const kept = s.kept[k];
        const some = Object.keys(kept).length > 0;
        const lane = current(s);
        if (!prev) {
          // First identify: the values stored locally go with it, ahead of it, so the gateway
          // applies them as the session's buffer (the identify's own value wins).
          if (some) push(s, { op: setOp, properties: { ...kept } });
          push(s, call);
        } else if (prev.key !== key || !same(prev.value, value)) {
          // Another identity: the stored values stay and are pushed to the new record.
          push(s, call);
          if (some) push(s, { op: setOp, properties: { ...kept } });
        } else if (
          !(lane.sid && same(lane.bound[k], call)) &&
          !lane.queue.some((e) => same(e.call, call))
        ) {
          push(s, call);
        } // else: the session is bound to exactly this already; nothing to send.
        s.ident[k] = call;
      });
      soon();
    });

  const logout = ready(() => {
    mutate((s) => {
      const last = s.lanes[s.lanes.length - 1];
      if (last && !last.closing) {
        if (last.sid || last.queue.length) last.closing = true;
        else s.lanes.pop();
      }
      s.kept = { c: {}, o: {} };
      s.ident = { c: null, o: null };
    });
    soon();
  });

  const widget = {
    identifyContact: identifier("c", "identifyContact", "setContact"),
    setContact: setter("c", "setContact"),
    identifyCompany: identifier("o", "identifyCompany", "setCompany"),
    setCompany: setter("o", "setCompany"),
    logout,
  };

  // ---- Gist (seed 003) -----------------------------------------------------------------------

  // A browser cannot prove a user id, so `userId` is not sent: the contact is identified by
  // `email` with `user_hash` (HMAC of the email). Link the user id from the app's server.
  const gistIdentify = (userId, props) => {
    if (!isObject(props) || typeof props.email !== "string" || !props.email) {
      return misuse("gist.identify(userId, props) needs props.email");
    }
    const set = {};
    for (const [k, v] of Object.entries(props)) {
      if (k !== "email" && k !== "user_hash" && k !== "overwrite_tags") set["contact_" + k] = v;
    }
    if (Object.keys(set).length) widget.setContact(set);
    widget.identifyContact("contact_email", props.email, props.user_hash);
  };

  // ---- Smooch Web Messenger (seed 004) -------------------------------------------------------

  const smoochUpdate = (user) => {
    if (!isObject(user)) {
      misuse("Smooch.updateUser takes an object");
      return Promise.resolve();
    }
    const props = {};
    if ("givenName" in user) props.contact_first_name = user.givenName;
    if ("surname" in user) props.contact_last_name = user.surname;
    if ("signedUpAt" in user) {
      const at = user.signedUpAt;
      // Smooch takes epoch milliseconds or ISO 8601; the gateway reads numbers as seconds.
      props.contact_signed_up_at =
        typeof at === "number" || at instanceof Date ? new Date(at).toISOString() : at;
    }
    if (isObject(user.properties)) {
      for (const [k, v] of Object.entries(user.properties)) props["contact_" + k] = v;
    }
    if (Object.keys(props).length) widget.setContact(props);
    if (user.email) {
      widget.identifyContact("contact_email", user.email, user.user_hash ?? user.userHash);
    }
    return Promise.resolve();
  };

  // ---- wiring ------------------------------------------------------------------------------

  w.idgw = api;
  w.groove = w.groove || {};
  w.groove.widget = Object.assign(w.groove.widget || {}, widget);
  w.grooveWidget = w.groove.widget;
  w.gist = Object.assign(w.gist || {}, { identify: ready(gistIdentify) });
  w.Smooch = Object.assign(w.Smooch || {}, {
    updateUser: (user) => {
      ready(smoochUpdate)(user);
      return Promise.resolve();
    },
    logout: () => {
      logout();
      return Promise.resolve();
    },
  });

  const now = () => {
    if (cfg && Date.now() >= retryAt) flush();
  };
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "hidden") now();
  });
  w.addEventListener("pagehide", now);
  w.addEventListener("online", () => {
    attempt = 0;
    retryAt = 0;
    now();
  });
})();

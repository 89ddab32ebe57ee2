// The in-app client: local evaluation against a ruleset kept fresh (ETag,
// the /sdk/v1/stream push, polling as a fallback), exposures logged once per
// user and experiment, and events batched to /sdk/v1/events.

import { eventQueue, sleep, type ApiEvent, type Transport } from "./events.js";
import { compile, unitId, type Assignment, type Attributes, type Compiled, type Warning } from "./ruleset.js";
import { readEvents } from "./sse.js";

export interface ClientOptions {
  /** The server, e.g. `https://ab.example.com`. */
  apiHost: string;
  /** A key with the `sdk` role. */
  sdkKey: string;
  /**
   * Follow the change stream (default true): with EventSource where the
   * runtime has one and no `fetch` is given, else with a streaming fetch.
   * Polling runs either way.
   */
  stream?: boolean;
  /** Milliseconds between ruleset polls (default 30 000). */
  pollInterval?: number;
  /** Longest wait of an event before its batch is sent, ms (default 2000). */
  flushInterval?: number;
  /** Events per request (default 500). */
  batchSize?: number;
  /** Events buffered before new ones are dropped (default 10 000). */
  bufferSize?: number;
  /** (user, experiment) pairs remembered to log each exposure once (default 100 000). */
  dedupeSize?: number;
  /** First and longest delay between retries, ms (defaults 200 and 30 000). */
  retryInitial?: number;
  retryMax?: number;
  /** Timeout of each request, ms (default 10 000). */
  requestTimeout?: number;
  /** How long close() keeps trying to deliver, ms (default 5000). */
  closeTimeout?: number;
  /** The fetch to use (default the global one); the stream then uses it too, not EventSource. */
  fetch?: typeof fetch;
}

/** What the client did so far. */
export interface ClientStats {
  eventsQueued: number;
  /** Not buffered (the buffer was full) or given up when closing. */
  eventsDropped: number;
  eventsSent: number;
  /** Handed to `navigator.sendBeacon` as the page went away; the browser sends them, unanswered. */
  eventsBeaconed: number;
  /** Accepted by the server but not counted (`skipped`: unknown experiment or variant). */
  eventsSkipped: number;
  /** Refused by the server (400 naming them, or another 4xx). */
  eventsRejected: number;
  sendRetries: number;
  exposuresDeduplicated: number;
  rulesetFetches: number;
  rulesetNotModified: number;
  rulesetUpdates: number;
  /** Rulesets ignored because they were older than the one in use. */
  rulesetsStale: number;
  fetchErrors: number;
  streamConnects: number;
}

export interface Client {
  /** Resolves once the first ruleset fetch is done: true when a ruleset is in use. */
  ready(): Promise<boolean>;
  /** Evaluates an experiment locally (null for an unknown key) and logs the exposure. */
  assign(key: string, attributes: Attributes): Assignment | null;
  /** Evaluates every experiment, logging exposures as assign does. */
  assignAll(attributes: Attributes): Assignment[];
  /** Logs a metric event for a user (`purchase`, 249). Never blocks or throws. */
  track(user: string, event: string, value?: number): void;
  /** Sends the buffered events now. */
  flush(): Promise<void>;
  /** Stops syncing and delivers what is buffered (within closeTimeout). */
  close(): Promise<void>;
  stats(): ClientStats;
  /** The ruleset version in use (0 before the first one). */
  version(): number;
  /** Problems found compiling the ruleset in use. */
  warnings(): readonly Warning[];
}

/** An event id: a UUID, or without crypto.randomUUID (React Native, plain-HTTP pages) about 100 bits from Math.random. */
const eventId = () => globalThis.crypto?.randomUUID?.() ?? Math.random().toString(36).slice(2) + Math.random().toString(36).slice(2);

const event = (fields: Record<string, unknown> & Pick<ApiEvent, "type" | "user">): ApiEvent => ({ id: eventId(), ...fields, ts: new Date().toISOString() });

/** Creates a client and starts fetching the ruleset; `await client.ready()` before the first assign. */
export function createClient(options: ClientOptions): Client {
  const o = {
    stream: true, pollInterval: 30_000, flushInterval: 2000, batchSize: 500, bufferSize: 10_000, dedupeSize: 100_000,
    retryInitial: 200, retryMax: 30_000, requestTimeout: 10_000, closeTimeout: 5000, fetch: (url: RequestInfo | URL, init?: RequestInit) => fetch(url, init),
    ...options,
  };
  const host = o.apiHost.replace(/\/+$/, "");
  /** For what cannot send the key in a header: EventSource, beacons. */
  const withKey = (path: string) => `${host}${path}?key=${encodeURIComponent(o.sdkKey)}`;
  const stats: ClientStats = {
    eventsQueued: 0, eventsDropped: 0, eventsSent: 0, eventsBeaconed: 0, eventsSkipped: 0, eventsRejected: 0, sendRetries: 0,
    exposuresDeduplicated: 0, rulesetFetches: 0, rulesetNotModified: 0, rulesetUpdates: 0, rulesetsStale: 0,
    fetchErrors: 0, streamConnects: 0,
  };
  /** The ruleset in use: before the first one, none at version -1. */
  let rules: Compiled = compile({ version: -1, experiments: [] });
  let etag: string | null = null;
  let closed = false;
  let stopStream = () => {};
  const seen = new Set<string>();

  /** A request with the key in a header beside `headers`, aborted after requestTimeout or by `abort`. */
  async function request(path: string, headers: Record<string, string>, init: RequestInit = {}, abort = new AbortController()): Promise<Response> {
    const timer = setTimeout(() => abort.abort(), o.requestTimeout);
    try {
      return await o.fetch(host + path, { ...init, headers: { Authorization: `Bearer ${o.sdkKey}`, ...headers }, signal: abort.signal });
    } finally {
      clearTimeout(timer);
    }
  }

  // The last requests of a page carry no headers: a CORS preflight might not
  // finish before the page is gone.
  const transport: Transport = {
    post: (body, keepalive) =>
      keepalive
        ? o.fetch(withKey("/sdk/v1/events"), { method: "POST", body, keepalive })
        : request("/sdk/v1/events", { "Content-Type": "application/json" }, { method: "POST", body }),
    beacon: typeof navigator === "object" && navigator.sendBeacon ? (body) => navigator.sendBeacon(withKey("/sdk/v1/events"), body) : undefined,
  };
  const events = eventQueue(transport, o, stats);

  /** One ruleset fetch: a 304 keeps the current one, an older version is ignored. */
  async function fetchRuleset(): Promise<void> {
    stats.rulesetFetches++;
    const res = await request("/sdk/v1/ruleset", etag ? { "If-None-Match": etag } : {}).catch(() => null);
    const body = res?.ok && (await res.json().catch(() => null));
    if (res?.status === 304) {
      stats.rulesetNotModified++;
    } else if (typeof body?.version !== "number") {
      stats.fetchErrors++;
    } else if (body.version < rules.version) {
      stats.rulesetsStale++;
    } else {
      etag = res!.headers.get("ETag");
      if (body.version > rules.version) {
        rules = compile(body);
        stats.rulesetUpdates++;
      }
    }
  }

  // Fetches never overlap; those asked for during one become one after it.
  let fetches = Promise.resolve();
  let queued = false;
  function refresh(): Promise<void> {
    if (!queued) {
      queued = true;
      fetches = fetches.then(() => {
        queued = false;
        return fetchRuleset();
      });
    }
    return fetches;
  }

  /** A `ruleset` event: fetch when it names a newer version. The server sends one on connecting, too. */
  function onRuleset(data: string): void {
    let version = Infinity;
    try {
      version = JSON.parse(data).version;
    } catch {
      // Unreadable: fetch to be sure.
    }
    if (!(version <= rules.version)) refresh();
  }

  /** EventSource reconnects by itself; it cannot send headers, hence the key in the URL. */
  function listen(): void {
    const source = new EventSource(withKey("/sdk/v1/stream"));
    source.onopen = () => stats.streamConnects++;
    source.addEventListener("ruleset", (e) => onRuleset((e as MessageEvent).data));
    stopStream = () => source.close();
  }

  /** Reads the stream with a streaming fetch, reconnecting with backoff. */
  async function read(): Promise<void> {
    for (let delay = o.retryInitial; !closed; delay = Math.min(delay * 2, o.retryMax)) {
      const connection = new AbortController();
      stopStream = () => connection.abort();
      try {
        const res = await request("/sdk/v1/stream", { Accept: "text/event-stream" }, {}, connection);
        if (res.ok) {
          const reader = res.body?.getReader();
          if (!reader) return; // no streaming fetch here (React Native): polling only
          stats.streamConnects++;
          delay = o.retryInitial;
          await readEvents(reader, "ruleset", onRuleset);
        }
      } catch {
        // Reconnect below.
      }
      if (closed) return;
      await sleep(delay, (cancel) => (stopStream = cancel));
    }
  }

  function logExposure(a: Assignment, attributes: Attributes): void {
    const rule = a.in_experiment && rules.rule(a.experiment);
    const user = rule && unitId(attributes[rule.hashAttribute]);
    if (!rule || !user) return;
    const key = `${a.experiment}\u0000${user}`;
    if (seen.has(key)) {
      stats.exposuresDeduplicated++;
      return;
    }
    const kept = rule.dimensions.filter((d) => attributes[d] !== undefined).map((d) => [d, attributes[d]]);
    const exposure = event({ type: "exposure", user, experiment: a.experiment, variant: a.variant });
    if (kept.length) exposure.attributes = Object.fromEntries(kept);
    // Remembered only once queued: a dropped exposure is logged next time.
    if (!events.push(exposure)) return;
    seen.add(key);
    if (seen.size > o.dedupeSize) seen.delete(seen.values().next().value as string);
  }

  // pagehide fires while the page is still visible; visibilitychange covers
  // mobile browsers, which may end a hidden page without a pagehide.
  const hidden = (e: Event) => {
    if (e.type === "pagehide" || document.visibilityState === "hidden") events.unload();
  };
  const pageEvents = typeof document === "object" && typeof addEventListener === "function" ? ["pagehide", "visibilitychange"] : [];
  for (const type of pageEvents) addEventListener(type, hidden);

  const first = refresh().then(() => rules.version >= 0);
  const poller = setInterval(refresh, o.pollInterval);
  const flusher = setInterval(events.flush, o.flushInterval);
  const follow = typeof EventSource === "function" && !options.fetch ? listen : read;
  if (o.stream) first.then(() => closed || follow());

  return {
    ready: () => first,
    assign(key, attributes) {
      const a = rules.assign(key, attributes);
      if (a) logExposure(a, attributes);
      return a;
    },
    assignAll(attributes) {
      const all = rules.assignAll(attributes);
      for (const a of all) logExposure(a, attributes);
      return all;
    },
    track(user, name, value) {
      const e = event({ type: "track", user: String(user), event: String(name) });
      if (Number.isFinite(value)) e.value = value;
      events.push(e);
    },
    flush: events.flush,
    async close() {
      closed = true;
      clearInterval(poller);
      clearInterval(flusher);
      stopStream();
      for (const type of pageEvents) removeEventListener(type, hidden);
      events.stop(Date.now() + o.closeTimeout);
      await events.flush();
    },
    stats: () => ({ ...stats }),
    version: () => Math.max(rules.version, 0),
    warnings: () => rules.warnings,
  };
}

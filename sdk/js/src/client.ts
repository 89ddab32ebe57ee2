// The in-app client: local evaluation against a ruleset kept fresh (ETag,
// the /sdk/v1/stream push, polling as a fallback), exposures logged once per
// user and experiment, and events batched to /sdk/v1/events.

import { EventQueue, type Event } from "./events.js";
import { compile, unitId, type Assignment, type Attributes, type Compiled, type Warning } from "./ruleset.js";
import { readEvents } from "./sse.js";

export interface ClientOptions {
  /** The server, e.g. `https://ab.example.com`. */
  apiHost: string;
  /** A key with the `sdk` role. */
  sdkKey: string;
  /** Follow the change stream (default true); polling runs either way. */
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
  /** The fetch to use (default the global one). */
  fetch?: typeof fetch;
}

/** What the client did so far. */
export interface ClientStats {
  eventsQueued: number;
  /** Not buffered (the buffer was full) or given up when closing. */
  eventsDropped: number;
  eventsSent: number;
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

const STREAM_IDLE_MS = 60_000;

/** A version 4 UUID; without crypto.randomUUID (React Native, plain-HTTP pages) from Math.random. */
function uuid(): string {
  const random = globalThis.crypto?.randomUUID;
  if (random) return random.call(globalThis.crypto);
  return "10000000-1000-4000-8000-100000000000".replace(/[018]/g, (c) => (+c ^ ((Math.random() * 16) >> (+c / 4))).toString(16));
}

const event = (fields: Record<string, unknown> & Pick<Event, "type" | "user">): Event => ({ id: uuid(), ...fields, ts: new Date().toISOString() });

/** Creates a client and starts fetching the ruleset; `await client.ready()` before the first assign. */
export function createClient(options: ClientOptions): Client {
  const o = {
    stream: true, pollInterval: 30_000, flushInterval: 2000, batchSize: 500, bufferSize: 10_000, dedupeSize: 100_000,
    retryInitial: 200, retryMax: 30_000, requestTimeout: 10_000, closeTimeout: 5000, fetch: globalThis.fetch?.bind(globalThis),
    ...options,
  };
  const host = o.apiHost.replace(/\/+$/, "");
  const stats: ClientStats = {
    eventsQueued: 0, eventsDropped: 0, eventsSent: 0, eventsSkipped: 0, eventsRejected: 0, sendRetries: 0,
    exposuresDeduplicated: 0, rulesetFetches: 0, rulesetNotModified: 0, rulesetUpdates: 0, rulesetsStale: 0,
    fetchErrors: 0, streamConnects: 0,
  };
  let rules: Compiled | null = null;
  let etag: string | null = null;
  let closed = false;
  const seen = new Set<string>();
  const stream = new AbortController();

  const request = async (path: string, init: RequestInit, timeout = o.requestTimeout): Promise<Response> => {
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(), timeout);
    init.signal?.addEventListener("abort", () => abort.abort());
    try {
      const headers = { Authorization: `Bearer ${o.sdkKey}`, ...init.headers };
      return await o.fetch(host + path, { ...init, headers, signal: abort.signal });
    } finally {
      clearTimeout(timer);
    }
  };

  const events = new EventQueue(
    (body, keepalive) => request("/sdk/v1/events", { method: "POST", body, keepalive, headers: { "Content-Type": "application/json" } }),
    o,
    stats,
  );

  /** One ruleset fetch: a 304 keeps the current one, an older version is ignored. */
  async function fetchRuleset(): Promise<void> {
    stats.rulesetFetches++;
    try {
      const res = await request("/sdk/v1/ruleset", { headers: etag ? { "If-None-Match": etag } : {} });
      if (res.status === 304) {
        stats.rulesetNotModified++;
        return;
      }
      const body = res.ok ? await res.json() : null;
      if (typeof body?.version !== "number") throw new Error(`ruleset: HTTP ${res.status}`);
      if (rules && body.version < rules.version) {
        stats.rulesetsStale++;
        return;
      }
      etag = res.headers.get("ETag");
      if (!rules || body.version > rules.version) {
        rules = compile(body);
        stats.rulesetUpdates++;
      }
    } catch {
      stats.fetchErrors++;
    }
  }

  // Fetches never overlap; a request made during one runs once it is done.
  let fetching: Promise<void> | null = null;
  let again = false;
  function refresh(): Promise<void> {
    if (fetching) {
      again = true;
      return fetching;
    }
    const loop = async () => {
      do {
        again = false;
        await fetchRuleset();
      } while (again && !closed);
    };
    return (fetching = loop().finally(() => (fetching = null)));
  }

  /** Follows the SSE stream with a streaming fetch (EventSource cannot send the key header). */
  async function follow(): Promise<void> {
    for (let delay = o.retryInitial; !closed; delay = Math.min(delay * 2, o.retryMax)) {
      try {
        const res = await request("/sdk/v1/stream", { headers: { Accept: "text/event-stream" }, signal: stream.signal }, STREAM_IDLE_MS);
        const reader = res.ok ? res.body?.getReader() : undefined;
        if (res.ok && !reader) return; // no streaming fetch here (React Native): polling only
        if (reader) {
          stats.streamConnects++;
          delay = o.retryInitial;
          refresh();
          await readEvents(reader, STREAM_IDLE_MS, (name, data) => {
            if (name === "ruleset" && newer(data)) refresh();
          });
        }
      } catch {
        // Reconnect below.
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, delay);
        stream.signal.addEventListener("abort", () => (clearTimeout(timer), resolve()), { once: true });
      });
    }
  }

  const newer = (data: string) => {
    try {
      return JSON.parse(data).version > (rules?.version ?? -1);
    } catch {
      return true;
    }
  };

  function logExposure(a: Assignment, attributes: Attributes): void {
    const rule = a.in_experiment && rules?.exposureRule(a.experiment);
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

  const hidden = () => {
    if (document.visibilityState !== "visible") events.sendBeforeUnload();
  };
  const browser = typeof document !== "undefined" && typeof addEventListener === "function";
  if (browser) {
    addEventListener("pagehide", hidden);
    document.addEventListener("visibilitychange", hidden);
  }

  const first = refresh().then(() => rules !== null);
  const poller = setInterval(refresh, o.pollInterval);
  const flusher = setInterval(() => events.flush(), o.flushInterval);
  if (o.stream) first.then(follow);

  return {
    ready: () => first,
    assign(key, attributes) {
      const a = rules?.assign(key, attributes) ?? null;
      if (a) logExposure(a, attributes);
      return a;
    },
    assignAll(attributes) {
      const all = rules?.assignAll(attributes) ?? [];
      for (const a of all) logExposure(a, attributes);
      return all;
    },
    track(user, name, value) {
      const e = event({ type: "track", user: String(user), event: String(name) });
      if (Number.isFinite(value)) e.value = value;
      events.push(e);
    },
    flush: () => events.flush(),
    async close() {
      closed = true;
      clearInterval(poller);
      clearInterval(flusher);
      stream.abort();
      if (browser) {
        removeEventListener("pagehide", hidden);
        document.removeEventListener("visibilitychange", hidden);
      }
      events.stop(Date.now() + o.closeTimeout);
      await events.flush();
    },
    stats: () => ({ ...stats }),
    version: () => rules?.version ?? 0,
    warnings: () => rules?.warnings ?? [],
  };
}

// Exposure and track events: a bounded buffer, batches to POST /sdk/v1/events
// with retry and exponential backoff, and a last send when a page goes away.
// Event ids make every resend safe: the server stores each id once.

import type { ClientStats } from "./client.js";

/** One event as the API takes it. */
export type ApiEvent = { id: string; type: "exposure" | "track"; user: string; ts: string } & Record<string, unknown>;

export interface Transport {
  /** Sends a JSON batch; rejects on a network failure. */
  post(body: string, keepalive: boolean): Promise<Response>;
  /** `navigator.sendBeacon` where the runtime has it: false when it refused the body. */
  beacon?: (body: string) => boolean;
}

export interface EventOptions {
  batchSize: number;
  bufferSize: number;
  retryInitial: number;
  retryMax: number;
}

export interface EventQueue {
  /** Buffers an event; false (and counted as dropped) when the buffer is full. */
  push(event: ApiEvent): boolean;
  /** Sends everything buffered, in batches; resolves once each is stored or given up. */
  flush(): Promise<void>;
  /** For close(): ends the wait before a retry, and retries stop at `deadline` (ms since the epoch). */
  stop(deadline: number): void;
  /** The page is going away: sends what fits in one beacon or keepalive request. */
  unload(): void;
}

/** Beacons and keepalive requests may have 64 KiB in flight in all. */
const UNLOAD_BYTES = 60_000;

/** Resolves after `ms`, or as soon as the function given to `onCancel` is called. */
export function sleep(ms: number, onCancel: (cancel: () => void) => void): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    onCancel(() => (clearTimeout(timer), resolve()));
  });
}

/** The client's event buffer and its sender; `stats` counts what becomes of each event. */
export function eventQueue(transport: Transport, o: EventOptions, stats: ClientStats): EventQueue {
  let buffered: ApiEvent[] = [];
  /** The batch being delivered, and whether it is waiting for a retry. */
  let sending: ApiEvent[] = [];
  let backingOff = false;
  let busy: Promise<void> | null = null;
  let deadline = Infinity;
  let wake = () => {};

  /**
   * One attempt: the events still to send (none when done), or null to retry
   * them all. A 400 drops only the events it names; a 413 sends half now and
   * puts the other half back in the buffer.
   */
  async function send(batch: ApiEvent[], keepalive: boolean): Promise<ApiEvent[] | null> {
    const res = await transport.post(JSON.stringify({ events: batch }), keepalive).catch(() => null);
    if (!res || res.status >= 500 || res.status === 408 || res.status === 429) return null;
    if (res.status === 413 && batch.length > 1) {
      buffered.unshift(...batch.splice(batch.length >> 1));
      return batch;
    }
    const body = await res.json().catch(() => null);
    if (res.ok) {
      const skipped = Array.isArray(body?.skipped) ? body.skipped.length : 0;
      stats.eventsSkipped += skipped;
      stats.eventsSent += batch.length - skipped;
      return [];
    }
    // A 400 names the events it refuses in its details (`events[3].user`);
    // naming none, or another 4xx, refuses them all.
    const named = (res.status === 400 && JSON.stringify(body?.error?.details)) || "";
    const rest = batch.filter((_, i) => !named.includes(`"field":"events[${i}]`));
    const kept = rest.length < batch.length ? rest : [];
    stats.eventsRejected += batch.length - kept.length;
    return kept;
  }

  /** Delivers the buffer batch by batch, each retried with backoff until stored, rejected or past the deadline. */
  async function drain(): Promise<void> {
    while (buffered.length) {
      sending = buffered.splice(0, o.batchSize);
      for (let delay = o.retryInitial; sending.length; ) {
        const rest = await send(sending, false);
        if (rest) {
          sending = rest;
          continue;
        }
        stats.sendRetries++;
        if (Date.now() + delay > deadline) {
          stats.eventsDropped += sending.length;
          sending = [];
        } else {
          backingOff = true;
          await sleep(delay, (cancel) => (wake = cancel));
          backingOff = false;
          delay = Math.min(delay * 2, o.retryMax);
        }
      }
    }
  }

  const flush = () => (busy ??= drain().finally(() => (busy = null)));
  return {
    push(event) {
      if (buffered.length + sending.length >= o.bufferSize) {
        stats.eventsDropped++;
        return false;
      }
      buffered.push(event);
      stats.eventsQueued++;
      if (buffered.length >= o.batchSize) flush();
      return true;
    },
    flush,
    stop(at) {
      deadline = at;
      wake();
    },
    // The browser may end the page before any answer: a beacon where there is
    // one, else a keepalive request, whose answer is read if the page stays.
    // What does not go out stays buffered.
    unload() {
      // What fits in UNLOAD_BYTES of JSON, a batch waiting to be retried first.
      const batch = [...(backingOff ? sending.splice(0) : []), ...buffered];
      const encoder = new TextEncoder();
      let bytes = 0;
      const count = batch.findIndex((e) => (bytes += encoder.encode(JSON.stringify(e)).length + 1) > UNLOAD_BYTES);
      buffered = count < 0 ? [] : batch.splice(count);
      wake(); // a batch waiting for its retry may be in this one: the wait is over
      if (!batch.length) return;
      if (!transport.beacon) {
        send(batch, true).then((rest) => buffered.unshift(...(rest ?? batch)));
      } else if (transport.beacon(JSON.stringify({ events: batch }))) {
        stats.eventsBeaconed += batch.length;
      } else {
        buffered.unshift(...batch);
      }
    },
  };
}

// Exposure and track events: a bounded buffer, batches to POST /sdk/v1/events
// with retry and exponential backoff, and a last keepalive send when a page goes
// away. Event ids make every resend safe: the server stores each id once.

import type { ClientStats } from "./client.js";

/** One event as the API takes it. */
export type Event = { id: string; type: "exposure" | "track"; user: string; ts: string } & Record<string, unknown>;

/** Sends a JSON batch; rejects on a network failure. */
export type Post = (body: string, keepalive: boolean) => Promise<Response>;

export interface EventOptions {
  batchSize: number;
  bufferSize: number;
  retryInitial: number;
  retryMax: number;
}

/** Keepalive requests may carry 64 KiB in all. */
const KEEPALIVE_BYTES = 60_000;

/** The indices of the events a 400 names in its `details` (`events[3].user`). */
function rejectedIndices(body: any): Set<number> {
  const fields: unknown[] = (body?.error?.details ?? []).map((d: any) => d?.field);
  return new Set(fields.map((f) => /^events\[(\d+)\]/.exec(String(f))?.[1]).filter(Boolean).map(Number));
}

export class EventQueue {
  private queue: Event[] = [];
  private sending: Event[] = [];
  private busy: Promise<void> | null = null;
  private backingOff = false;
  private wake = () => {};
  /** Set by close(): retries stop at this time (ms since the epoch). */
  deadline = Infinity;

  constructor(private readonly post: Post, private readonly o: EventOptions, private readonly stats: ClientStats) {}

  /** Buffers an event; false (and counted as dropped) when the buffer is full. */
  push(event: Event): boolean {
    if (this.queue.length + this.sending.length >= this.o.bufferSize) {
      this.stats.eventsDropped++;
      return false;
    }
    this.queue.push(event);
    this.stats.eventsQueued++;
    if (this.queue.length >= this.o.batchSize) this.flush();
    return true;
  }

  /** Sends everything buffered, in batches; resolves once each is stored or given up. */
  flush(): Promise<void> {
    return (this.busy ??= this.drain().finally(() => (this.busy = null)));
  }

  /** Stops waiting between retries (for close). */
  stop(deadline: number): void {
    this.deadline = deadline;
    this.wake();
  }

  private async drain(): Promise<void> {
    while (this.queue.length) {
      this.sending = this.queue.splice(0, this.o.batchSize);
      await this.deliver();
      this.sending = [];
    }
  }

  /** Delivers `sending`, retrying with backoff until stored, rejected or past the deadline. */
  private async deliver(): Promise<void> {
    for (let delay = this.o.retryInitial; this.sending.length; delay = Math.min(delay * 2, this.o.retryMax)) {
      const rest = await this.send(this.sending, false);
      if (rest) {
        this.sending = rest;
        continue;
      }
      this.stats.sendRetries++;
      if (Date.now() + delay > this.deadline) {
        this.stats.eventsDropped += this.sending.length;
        return;
      }
      this.backingOff = true;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, delay);
        this.wake = () => (clearTimeout(timer), resolve());
      });
      this.backingOff = false;
    }
  }

  /** One attempt: the events still to send (none when done), or null to retry them all. */
  private async send(batch: Event[], keepalive: boolean): Promise<Event[] | null> {
    const res = await this.post(JSON.stringify({ events: batch }), keepalive).catch(() => null);
    if (!res || res.status >= 500 || res.status === 408 || res.status === 429) return null;
    const body = await res.json().catch(() => null);
    if (res.ok) {
      const skipped = Array.isArray(body?.skipped) ? body.skipped.length : 0;
      this.stats.eventsSkipped += skipped;
      this.stats.eventsSent += batch.length - skipped;
      return [];
    }
    // A 400 names the invalid events: drop those and send the others again.
    const bad = res.status === 400 ? rejectedIndices(body) : new Set<number>();
    const rest = bad.size ? batch.filter((_, i) => !bad.has(i)) : [];
    this.stats.eventsRejected += batch.length - rest.length;
    return rest;
  }

  /**
   * The page is going away: send what fits in one keepalive request, a batch
   * waiting to be retried included. If the page stays, what did not go
   * through is buffered again.
   */
  sendBeforeUnload(): void {
    let bytes = 0;
    const fits = (e: Event) => (bytes += JSON.stringify(e).length + 1) <= KEEPALIVE_BYTES;
    const pending = this.backingOff ? this.sending.splice(0) : [];
    pending.push(...this.queue.splice(0));
    const count = pending.findIndex((e) => !fits(e));
    const batch = pending.splice(0, count < 0 ? pending.length : count);
    this.queue.unshift(...pending);
    this.wake();
    if (batch.length) this.send(batch, true).then((rest) => this.queue.unshift(...(rest ?? batch)));
  }
}

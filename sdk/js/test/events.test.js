// The event queue with a fake transport: what a 413 and the last flush of a
// page (sendBeacon's size limit) do to the buffer.
import { test } from "node:test";
import assert from "node:assert/strict";
import { eventQueue } from "../dist/events.js";

const options = { batchSize: 500, bufferSize: 10_000, retryInitial: 10, retryMax: 20 };
const newStats = () => ({ eventsQueued: 0, eventsDropped: 0, eventsSent: 0, eventsBeaconed: 0, eventsSkipped: 0, eventsRejected: 0, sendRetries: 0 });
const track = (i, text = "") => ({ id: `e${i}`, type: "track", user: "u1", event: `purchase${text}`, ts: "2025-01-01T00:00:00.000Z" });
const accepted = (n) => new Response(JSON.stringify({ accepted: n, duplicates: 0 }), { status: 202 });
const count = (body) => JSON.parse(body).events.length;

test("a 413 sends the batch in halves", async () => {
  const sizes = [];
  const post = async (body) => {
    sizes.push(count(body));
    return count(body) > 2 ? new Response(null, { status: 413 }) : accepted(count(body));
  };
  const stats = newStats();
  const queue = eventQueue({ post }, options, stats);
  for (let i = 0; i < 5; i++) queue.push(track(i));
  await queue.flush();
  assert.deepEqual(sizes, [5, 2, 3, 1, 2]);
  assert.deepEqual([stats.eventsSent, stats.eventsRejected, stats.sendRetries], [5, 0, 0]);
});

test("the last flush of a page fits one beacon, counted in bytes; the rest stays buffered", async () => {
  const beacons = [];
  const posts = [];
  const transport = {
    post: async (body) => (posts.push(count(body)), accepted(count(body))),
    beacon: (body) => (beacons.push(body), true),
  };
  const stats = newStats();
  const queue = eventQueue(transport, options, stats);
  const wide = "€".repeat(1000); // 3 bytes each in UTF-8: 3 kB an event, 1 kB in JavaScript's length
  for (let i = 0; i < 30; i++) queue.push(track(i, wide));
  queue.unload();
  assert.equal(beacons.length, 1);
  const bytes = new TextEncoder().encode(beacons[0]).length;
  assert.ok(bytes <= 60_000 && bytes > 50_000, `${bytes} bytes`);
  assert.equal(stats.eventsBeaconed, count(beacons[0]));
  await queue.flush(); // the page stayed: the others go the usual way
  assert.equal(count(beacons[0]) + posts[0], 30);
  assert.equal(stats.eventsSent, posts[0]);
});

test("a refused beacon keeps its events; a batch waiting for a retry goes in the beacon", async () => {
  let down = true;
  const transport = {
    post: async (body) => (down ? new Response(null, { status: 503 }) : accepted(count(body))),
    beacon: () => false,
  };
  const stats = newStats();
  const queue = eventQueue(transport, options, stats);
  queue.push(track(1));
  const flushed = queue.flush();
  await new Promise((r) => setTimeout(r, 5)); // the first attempt failed: backing off
  queue.push(track(2));
  queue.unload();
  assert.equal(stats.eventsBeaconed, 0);
  down = false;
  await flushed;
  await queue.flush();
  assert.equal(stats.eventsSent, 2);
});

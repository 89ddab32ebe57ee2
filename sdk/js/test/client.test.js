// The client against a real `sluice serve` started here (see sluice.js).
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { createClient } from "../dist/index.js";
import { noServer, reported, runningExperiment, sleep, startProxy, startSluice, until } from "./sluice.js";

const users = (n, prefix) => Array.from({ length: n }, (_, i) => ({ id: `${prefix}-${i}` }));

describe("client against sluice serve", { skip: noServer }, () => {
  let sluice;
  const clients = [];
  const client = (options) => {
    const c = createClient({ apiHost: sluice.url, sdkKey: sluice.sdkKey, ...options });
    clients.push(c);
    return c;
  };
  before(async () => {
    sluice = await startSluice();
  });
  after(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await sluice?.stop();
  });

  test("fetches the ruleset, then gets 304 Not Modified with its ETag", async () => {
    await runningExperiment(sluice.api, "etag-exp");
    const c = client({ stream: false, pollInterval: 50 });
    assert.equal(await c.ready(), true);
    assert.equal(c.assign("etag-exp", { id: "u1" }).reason, "split");
    await until(() => c.stats().rulesetNotModified >= 3, 2000, "three 304s");
    const s = c.stats();
    assert.equal(s.rulesetUpdates, 1);
    assert.equal(s.fetchErrors, 0);
  });

  test("the stream brings a rollback to the client within a second", async (t) => {
    await runningExperiment(sluice.api, "stream-exp");
    const c = client({ pollInterval: 60_000 });
    await c.ready();
    await until(() => c.version() > 0 && c.stats().streamConnects === 1, 2000, "stream connected");
    const user = { id: "u-stream" };
    assert.equal(c.assign("stream-exp", user).reason, "split");
    const start = Date.now();
    await sluice.api("POST", "/api/v1/experiments/stream-exp/rollback");
    await until(() => c.assign("stream-exp", user).reason === "rolled_back", 1000, "the rollback");
    const elapsed = Date.now() - start;
    assert.ok(elapsed < 1000, `${elapsed} ms`);
    t.diagnostic(`the rollback reached the client in ${elapsed} ms`);
    assert.deepEqual(c.assign("stream-exp", user), {
      experiment: "stream-exp", variant: "control", value: { price: 199 }, in_experiment: false, reason: "rolled_back",
    });
    assert.equal(c.stats().streamConnects, 1);
  });

  test("exposures once per user; events stored once although responses were lost", async () => {
    await runningExperiment(sluice.api, "retry-exp");
    let lost = 0;
    const proxy = await startProxy(sluice.url, {
      lose: (req) => req.url === "/sdk/v1/events" && lost++ < 2,
    });
    const c = createClient({ apiHost: proxy.url, sdkKey: sluice.sdkKey, stream: false, retryInitial: 20, flushInterval: 60_000 });
    await c.ready();
    const people = users(10, "retry");
    const variants = {};
    for (const u of people) {
      for (let i = 0; i < 3; i++) c.assign("retry-exp", u);
      const { variant } = c.assign("retry-exp", u);
      variants[variant] = (variants[variant] ?? 0) + 1;
      c.track(u.id, "purchase", 1);
    }
    await c.flush();
    const s = c.stats();
    assert.equal(s.exposuresDeduplicated, 30);
    assert.equal(s.eventsQueued, 20);
    assert.equal(s.sendRetries, 2);
    assert.equal(s.eventsSent, 20);
    assert.deepEqual(await reported(sluice.api, "retry-exp"), { users: { control: variants.control ?? 0, premium: variants.premium ?? 0 }, events: 10 });
    await c.close();
    await proxy.close();
  });

  test("a 400 drops only the event it names; the others are sent again", async () => {
    await runningExperiment(sluice.api, "reject-exp");
    const c = client({ stream: false, flushInterval: 60_000 });
    await c.ready();
    c.assign("reject-exp", { id: "r1" });
    c.track("r1", "purchase", 2);
    c.track("", "purchase", 5); // an empty user: the server refuses this one
    c.track("r1", "purchase", 3);
    await c.flush();
    const s = c.stats();
    assert.equal(s.eventsRejected, 1);
    assert.equal(s.eventsSent, 3);
    assert.equal(s.sendRetries, 0);
    const r = await reported(sluice.api, "reject-exp");
    assert.equal(r.events, 2);
  });

  test("the buffer is bounded: drops are counted, and a dropped exposure is logged later", async () => {
    await runningExperiment(sluice.api, "buffer-exp");
    const c = client({ stream: false, bufferSize: 3, flushInterval: 60_000 });
    await c.ready();
    const [a, b, d] = users(3, "buffer");
    c.assign("buffer-exp", a);
    c.assign("buffer-exp", b);
    c.track(a.id, "purchase");
    c.assign("buffer-exp", d); // the buffer is full: dropped, not remembered
    c.track(b.id, "purchase");
    assert.deepEqual([c.stats().eventsQueued, c.stats().eventsDropped], [3, 2]);
    await c.flush();
    c.assign("buffer-exp", d);
    await c.flush();
    const s = c.stats();
    assert.deepEqual([s.eventsQueued, s.eventsDropped, s.eventsSent, s.exposuresDeduplicated], [4, 2, 4, 0]);
    const r = await reported(sluice.api, "buffer-exp");
    assert.equal(r.users.control + r.users.premium, 3);
    assert.equal(r.events, 1);
  });

  test("keeps serving the last good ruleset while the server is unreachable", async () => {
    await runningExperiment(sluice.api, "outage-exp");
    const hooks = {};
    const proxy = await startProxy(sluice.url, hooks);
    const c = createClient({ apiHost: proxy.url, sdkKey: sluice.sdkKey, pollInterval: 30, retryInitial: 20, retryMax: 50 });
    await c.ready();
    const before = c.assign("outage-exp", { id: "o1" });
    hooks.down = true;
    await until(() => c.stats().fetchErrors >= 3, 2000, "failed polls");
    assert.deepEqual(c.assign("outage-exp", { id: "o1" }), before);
    hooks.down = false;
    await sluice.api("POST", "/api/v1/experiments/outage-exp/pause");
    await until(() => c.assign("outage-exp", { id: "o1" }).reason === "paused", 2000, "the pause after the outage");
    await c.close();
    await proxy.close();
  });

  test("close() delivers what is buffered", async () => {
    await runningExperiment(sluice.api, "close-exp");
    const c = createClient({ apiHost: sluice.url, sdkKey: sluice.sdkKey, flushInterval: 60_000 });
    await c.ready();
    c.assign("close-exp", { id: "c1" });
    c.track("c1", "purchase", 1);
    c.track("c1", "purchase", 1);
    await c.close();
    assert.equal(c.stats().eventsSent, 3);
    assert.equal((await reported(sluice.api, "close-exp")).events, 2);
  });
});

/** A fetch that answers from `routes` (path → function returning a Response) and records each call. */
function fakeFetch(routes) {
  const calls = [];
  const f = async (url, init) => {
    const path = new URL(url).pathname;
    calls.push({ path, init });
    return routes[path]?.(init) ?? new Response(null, { status: 404 });
  };
  return { fetch: f, calls };
}

const json = (status, body, headers = {}) => new Response(JSON.stringify(body), { status, headers });
const ruleset = (version) => ({
  version,
  experiments: [{ key: "e", status: "running", variants: [{ key: "a", weight: 0.5 }, { key: "b", weight: 0.5 }], coverage: 1, hash_attribute: "id", seed: "e", hash_version: 2 }],
});

test("a `skipped` event in a 202 is counted and not sent again", async () => {
  const { fetch, calls } = fakeFetch({
    "/sdk/v1/ruleset": () => json(200, ruleset(1)),
    "/sdk/v1/events": () => json(202, { accepted: 1, duplicates: 0, skipped: [{ index: 1, problem: "unknown experiment" }] }),
  });
  const c = createClient({ apiHost: "http://sluice.test", sdkKey: "k", fetch, stream: false });
  await c.ready();
  c.track("u1", "purchase");
  c.track("u1", "purchase");
  await c.flush();
  await c.close();
  const posts = calls.filter((x) => x.path === "/sdk/v1/events");
  assert.equal(posts.length, 1);
  assert.equal(JSON.parse(posts[0].init.body).events.length, 2);
  assert.equal(posts[0].init.headers.Authorization, "Bearer k");
  const s = c.stats();
  assert.deepEqual([s.eventsSent, s.eventsSkipped, s.sendRetries], [1, 1, 0]);
});

test("an older ruleset from a lagging server is ignored", async () => {
  const versions = [5, 4, 6];
  const { fetch } = fakeFetch({ "/sdk/v1/ruleset": () => json(200, ruleset(versions.shift() ?? 6), { ETag: '"x"' }) });
  const c = createClient({ apiHost: "http://sluice.test", sdkKey: "k", fetch, stream: false, pollInterval: 10 });
  await c.ready();
  assert.equal(c.version(), 5);
  await until(() => c.version() === 6, 1000, "version 6");
  await c.close();
  assert.equal(c.stats().rulesetsStale, 1);
  assert.equal(c.stats().rulesetUpdates, 2);
});

test("assign never throws: unknown keys are null, bad attributes get control", async () => {
  const { fetch } = fakeFetch({ "/sdk/v1/ruleset": () => json(200, ruleset(1)) });
  const c = createClient({ apiHost: "http://sluice.test", sdkKey: "k", fetch, stream: false });
  assert.equal(c.assign("e", { id: "u1" }), null); // no ruleset yet
  await c.ready();
  assert.equal(c.assign("nope", { id: "u1" }), null);
  assert.equal(c.assign("e", null).reason, "no_hash_attribute");
  assert.equal(c.assign("e", { id: 10n }).reason, "no_hash_attribute");
  await c.close();
  await sleep(0);
});

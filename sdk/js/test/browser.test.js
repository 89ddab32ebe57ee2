// The built bundle in headless Chromium, the way a site uses it: the page
// comes from one origin (a static server) and talks to `sluice serve` on
// another, through its CORS headers. It assigns, tracks, follows the stream
// with EventSource, and flushes on pagehide with sendBeacon, or a keepalive
// fetch where there is no sendBeacon.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";
import puppeteer from "puppeteer-core";
import { noServer, reported, runningExperiment, startSluice, startStatic, until } from "./sluice.js";

const chromium = process.env.CHROMIUM ?? "/usr/bin/chromium";
const skip = noServer || (existsSync(chromium) ? false : `skipping: ${chromium} absent (apt-get install chromium)`);
if (skip && !noServer) console.log(skip);
const here = (p) => fileURLToPath(new URL(p, import.meta.url));

describe("in a browser, from another origin", { skip, timeout: 60_000 }, () => {
  let dir, sluice, site, browser, page;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "sluice-browser-"));
    const bundle = join(dir, "sdk.js");
    await build({ entryPoints: [here("../dist/index.js")], bundle: true, minify: true, format: "esm", outfile: bundle, logLevel: "silent" });
    sluice = await startSluice();
    site = await startStatic({
      "/": ["text/html", here("browser/page.html")],
      "/bye": ["text/html", here("browser/bye.html")],
      "/sdk.js": ["text/javascript", bundle],
    });
    browser = await puppeteer.launch({ executablePath: chromium, headless: true, args: ["--no-sandbox"] });
    page = await browser.newPage();
    await runningExperiment(sluice.api, "browser-exp", { condition: { country: { $in: ["CN", "US"] } } });
  });
  after(async () => {
    await browser?.close();
    await site?.close();
    await sluice?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  /** Opens the page as `user`; resolves with what it assigned and its stats then. */
  async function open(user, extra = "") {
    await page.goto(`${site.url}/?host=${sluice.url}&key=${sluice.sdkKey}&user=${user}${extra}`);
    await page.waitForFunction(() => window.result, { timeout: 10_000 });
    return page.evaluate(() => window.result);
  }
  /** Leaves the page (pagehide); resolves with what the page recorded of its last flush. */
  async function leave() {
    await page.goto(`${site.url}/bye`);
    return page.evaluate(() => ({ ...localStorage }));
  }
  const eventsUrl = () => `${sluice.url}/sdk/v1/events?key=${sluice.sdkKey}`;

  test("assigns, follows the stream with EventSource, and its pagehide beacon is stored", async (t) => {
    const { assignment, stats } = await open("browser-1");
    assert.equal(assignment.experiment, "browser-exp");
    assert.equal(assignment.reason, "split");
    assert.equal(assignment.in_experiment, true);
    assert.deepEqual(assignment.value, { price: assignment.variant === "control" ? 199 : 249 });
    assert.equal(stats.eventsQueued, 2);

    const connected = () => page.evaluate(() => window.client.stats().streamConnects === 1);
    await until(connected, 5000, "the EventSource connected");
    const start = Date.now();
    await runningExperiment(sluice.api, "browser-late");
    const started = () => page.evaluate(() => window.client.assign("browser-late", { id: "browser-late" })?.reason === "split");
    await until(started, 1000, "a new experiment, by the stream");
    t.diagnostic(`a new experiment reached the page in ${Date.now() - start} ms`);

    const recorded = await leave();
    assert.equal(recorded.eventsource, `${sluice.url}/sdk/v1/stream?key=${sluice.sdkKey}`);
    assert.equal(recorded.beacon, eventsUrl());
    assert.equal(recorded.keepalive, undefined);
    await until(async () => (await reported(sluice.api, "browser-exp")).events === 1, 5000, "the beacon's events stored");
    assert.equal((await reported(sluice.api, "browser-exp")).users[assignment.variant], 1);
  });

  test("without sendBeacon, the pagehide flush is a keepalive fetch", async () => {
    await page.evaluate(() => localStorage.clear());
    const { assignment } = await open("browser-2", "&nobeacon");
    const before = await reported(sluice.api, "browser-exp");
    const recorded = await leave();
    assert.equal(recorded.beacon, undefined);
    assert.equal(recorded.keepalive, eventsUrl());
    await until(async () => (await reported(sluice.api, "browser-exp")).events === before.events + 1, 5000, "the keepalive fetch's events stored");
    assert.equal((await reported(sluice.api, "browser-exp")).users[assignment.variant], before.users[assignment.variant] + 1);
  });
});

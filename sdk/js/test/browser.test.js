// The built bundle in headless Chromium: a page served from the same origin
// as the SDK endpoints (a proxy in front of sluice, as the server sends no
// CORS headers yet) assigns, tracks, and flushes on pagehide.
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";
import puppeteer from "puppeteer-core";
import { noServer, reported, runningExperiment, startProxy, startSluice, until } from "./sluice.js";

const chromium = process.env.CHROMIUM ?? "/usr/bin/chromium";
const skip = noServer || (existsSync(chromium) ? false : `skipping: ${chromium} absent (apt-get install chromium)`);
if (skip && !noServer) console.log(skip);
const here = (p) => fileURLToPath(new URL(p, import.meta.url));

test("a browser page assigns, tracks and flushes on pagehide", { skip, timeout: 60_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), "sluice-browser-"));
  const bundle = join(dir, "sdk.js");
  await build({ entryPoints: [here("../dist/index.js")], bundle: true, minify: true, format: "esm", outfile: bundle, logLevel: "silent" });
  const sluice = await startSluice();
  const posts = [];
  const proxy = await startProxy(sluice.url, { seen: (req) => req.url === "/sdk/v1/events" && posts.push(req.headers) }, {
    "/": ["text/html", here("browser/page.html")],
    "/bye": ["text/html", here("browser/bye.html")],
    "/sdk.js": ["text/javascript", bundle],
  });
  const browser = await puppeteer.launch({ executablePath: chromium, headless: true, args: ["--no-sandbox"] });
  try {
    await runningExperiment(sluice.api, "browser-exp", { condition: { country: { $in: ["CN", "US"] } } });
    const page = await browser.newPage();
    await page.goto(`${proxy.url}/?key=${sluice.sdkKey}`);
    await page.waitForFunction(() => window.result, { timeout: 10_000 });
    const { assignment, stats } = await page.evaluate(() => window.result);
    assert.equal(assignment.experiment, "browser-exp");
    assert.equal(assignment.reason, "split");
    assert.equal(assignment.in_experiment, true);
    assert.deepEqual(assignment.value, { price: assignment.variant === "control" ? 199 : 249 });
    assert.equal(stats.eventsQueued, 2);
    assert.equal(posts.length, 0);
    await page.goto(`${proxy.url}/bye`); // pagehide: the keepalive flush
    await until(() => posts.length === 1, 5000, "the pagehide flush");
    assert.equal(posts[0].authorization, `Bearer ${sluice.sdkKey}`);
    await until(async () => (await reported(sluice.api, "browser-exp")).events === 1, 5000, "the events stored");
    const r = await reported(sluice.api, "browser-exp");
    assert.equal(r.users[assignment.variant], 1);
  } finally {
    await browser.close();
    await proxy.close();
    await sluice.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});

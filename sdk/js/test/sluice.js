// Test helpers: a real `sluice serve` on a free port with a temporary SQLite
// database, its keys, an HTTP proxy in front of it that can lose responses or
// go down, and a static file server (the browser test's page origin).
import { execFileSync, spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer, request } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const bin = process.env.SLUICE_BIN ?? fileURLToPath(new URL("../../../target/debug/sluice", import.meta.url));

/** A reason to skip the server tests, or false. */
export const noServer = existsSync(bin) ? false : `skipping: sluice binary ${bin} absent (set SLUICE_BIN)`;
if (noServer) console.log(noServer);

function freePort() {
  return new Promise((resolve) => {
    const s = createServer().listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Waits until `check()` is truthy, polling every 10 ms; fails after `ms`. */
export async function until(check, ms = 5000, what = "condition") {
  for (const end = Date.now() + ms; Date.now() < end; await sleep(10)) if (await check()) return;
  throw new Error(`timed out waiting for ${what}`);
}

/** Starts sluice; returns its URL, keys, an admin API caller and stop(). */
export async function startSluice() {
  const dir = mkdtempSync(join(tmpdir(), "sluice-js-"));
  const db = `sqlite://${join(dir, "sluice.db")}`;
  const key = (role) => execFileSync(bin, ["key", "create", "--role", role, "--name", `js-${role}`, "--db", db], { encoding: "utf8" }).trim();
  const adminKey = key("admin");
  const sdkKey = key("sdk");
  const port = await freePort();
  const child = spawn(bin, ["serve", "--db", db, "--addr", `127.0.0.1:${port}`, "--guard-interval", "0"], { stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  child.stderr.on("data", (d) => (stderr += d));
  const url = `http://127.0.0.1:${port}`;
  await until(() => fetch(`${url}/healthz`).then((r) => r.ok, () => false), 15000, `sluice on ${url}: ${stderr}`);

  async function api(method, path, body) {
    const res = await fetch(url + path, {
      method,
      headers: { Authorization: `Bearer ${adminKey}`, "Content-Type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${text}`);
    return text ? JSON.parse(text) : null;
  }

  async function stop() {
    const exited = new Promise((r) => child.once("exit", r));
    child.kill("SIGTERM");
    await exited;
    rmSync(dir, { recursive: true, force: true });
  }
  return { url, sdkKey, api, stop };
}

/** Creates and starts a 50/50 experiment measured by a `count` metric of `event`. */
export async function runningExperiment(api, key, extra = {}) {
  const metric = `${key}-events`;
  await api("POST", "/api/v1/metrics", { key: metric, name: metric, kind: "count", event: "purchase" });
  await api("POST", "/api/v1/experiments", {
    key, name: key,
    variants: [{ key: "control", weight: 0.5, value: { price: 199 } }, { key: "premium", weight: 0.5, value: { price: 249 } }],
    primary_metric: metric,
    ...extra,
  });
  await api("POST", `/api/v1/experiments/${key}/start`);
}

/** Users per variant and the metric's total, from the report. */
export async function reported(api, key) {
  const report = await api("GET", `/api/v1/experiments/${key}/report`);
  const variants = report.metrics[0].variants;
  return {
    users: Object.fromEntries(variants.map((v) => [v.variant, v.users])),
    events: variants.reduce((sum, v) => sum + v.sum, 0),
  };
}

/**
 * An HTTP proxy to `target`. `hooks.lose(req)` true: the request reaches
 * sluice but the client gets a 503 instead of its answer; `hooks.down`: every
 * connection is reset.
 */
export async function startProxy(target, hooks = {}) {
  const server = createServer(async (req, res) => {
    if (hooks.down) return req.socket.destroy();
    const chunks = [];
    for await (const c of req) chunks.push(c);
    const lose = hooks.lose?.(req) ?? false;
    const upstream = request(target + req.url, { method: req.method, headers: req.headers }, (up) => {
      if (lose) {
        up.resume().on("end", () => res.writeHead(503).end());
        return;
      }
      res.writeHead(up.statusCode, up.headers);
      up.pipe(res);
    });
    upstream.on("error", () => res.destroy());
    upstream.end(Buffer.concat(chunks));
  });
  return listen(server);
}

/** A static file server: path → [content type, file]; anything else is a 404. */
export async function startStatic(files) {
  const server = createServer((req, res) => {
    const file = files[req.url.split("?")[0]];
    if (!file) return res.writeHead(404).end();
    res.writeHead(200, { "Content-Type": file[0] }).end(readFileSync(file[1]));
  });
  return listen(server);
}

async function listen(server) {
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    close: () => new Promise((r) => { server.closeAllConnections(); server.close(r); }),
  };
}

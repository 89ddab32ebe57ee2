// A real `sluice serve` on a free port with a temporary SQLite database, as
// sdk/js/test/sluice.js starts it, plus the keys and API callers the harness needs.
import { execFileSync, spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";

function freePort() {
  return new Promise((resolve) => {
    const server = createServer().listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Waits until `check()` is truthy, polling every 20 ms; throws after `ms`. */
export async function until(check, ms, what) {
  for (const end = Date.now() + ms; Date.now() < end; await sleep(20)) if (await check()) return;
  throw new Error(`timed out waiting for ${what}`);
}

/**
 * Starts sluice from `bin`. Returns its URL, `createKey(role, env?)`, `api`
 * (the management API as admin), `sdk(key)` (a caller of /sdk/v1 with that
 * sdk key) and `stop()`.
 */
export async function startSluice(bin) {
  if (!existsSync(bin)) throw new Error(`sluice binary ${bin} absent (set SLUICE_BIN)`);
  const dir = mkdtempSync(join(tmpdir(), "sluice-interop-"));
  const db = `sqlite://${join(dir, "sluice.db")}`;
  const createKey = (role, env) => {
    const scope = env ? ["--env", env] : [];
    const name = ["interop", role, ...(env ? [env] : [])].join("-");
    return execFileSync(bin, ["key", "create", "--db", db, "--role", role, ...scope, "--name", name], { encoding: "utf8" }).trim();
  };
  const adminKey = createKey("admin");
  const port = await freePort();
  const child = spawn(bin, ["serve", "--db", db, "--addr", `127.0.0.1:${port}`, "--guard-interval", "0"], {
    stdio: ["ignore", "ignore", "pipe"],
  });
  let stderr = "";
  child.stderr.on("data", (chunk) => (stderr += chunk));
  const url = `http://127.0.0.1:${port}`;
  await until(() => fetch(`${url}/healthz`).then((res) => res.ok, () => false), 15_000, `sluice on ${url}: ${stderr}`);

  const caller = (key) => async (method, path, body) => {
    const res = await fetch(url + path, {
      method,
      headers: { Authorization: `Bearer ${key}`, "Content-Type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${text}`);
    return text ? JSON.parse(text) : null;
  };

  async function stop() {
    const exited = new Promise((resolve) => child.once("exit", resolve));
    child.kill("SIGTERM");
    await exited;
    rmSync(dir, { recursive: true, force: true });
  }
  return { url, createKey, api: caller(adminKey), sdk: caller, stop };
}

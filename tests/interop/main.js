// Starts sluice, sets up the scenario, takes assign's answers as the reference,
// has each published SDK answer the same questions, and judges them.
// Environment: SLUICE_BIN (the binary), INTEROP_PYTHON (the venv's python).
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { referenceAnswers } from "./lib/reference.js";
import { createScenario, ENVIRONMENTS, EXPERIMENTS, makeUsers, valueType } from "./lib/scenario.js";
import { startSluice } from "./lib/sluice.js";
import { judge, printVerdicts } from "./lib/verdicts.js";
import * as npmGrowthbook from "./sdks/npm_growthbook.js";
import * as npmOpenfeature from "./sdks/npm_openfeature.js";
import { checkTracking } from "./tracking.js";

const USERS = 3000;
// OFREP evaluates on the server, one request per flag: 13 flags × 2
// environments × 1000 users already take the debug server most of a minute.
const OFREP_USERS = 1000;
const bin = process.env.SLUICE_BIN ?? fileURLToPath(new URL("../../target/debug/sluice", import.meta.url));
const python = process.env.INTEROP_PYTHON ?? "python3";

const seconds = (since) => ((Date.now() - since) / 1000).toFixed(1);

const experimentsFor = (family) =>
  EXPERIMENTS.filter((e) => family !== "ofrep" || e.ofrep !== false).map((e) => ({ key: e.definition.key, valueType: valueType(e) }));

/** Runs a Python checker on `fixture`; resolves to its `{name, answers}`. */
async function runPython(script, fixturePath) {
  const path = fileURLToPath(new URL(`sdks/${script}`, import.meta.url));
  const { stdout } = await promisify(execFile)(python, [path, fixturePath], { maxBuffer: 1 << 30 });
  return JSON.parse(stdout);
}

/** Each SDK's answers: `[{name, family, answers}]`. */
async function askSdks(fixtures, dir) {
  const paths = {};
  for (const [family, fixture] of Object.entries(fixtures)) {
    paths[family] = join(dir, `${family}.json`);
    writeFileSync(paths[family], JSON.stringify(fixture));
  }
  const timed = async (family, ask) => {
    const start = Date.now();
    const { name, answers } = await ask();
    console.log(`${name}: answered in ${seconds(start)} s`);
    return { name, family, answers };
  };
  // The Python checkers run beside the Node ones: they wait on sluice alike.
  return Promise.all([
    timed("growthbook", async () => ({ name: npmGrowthbook.name, answers: await npmGrowthbook.evaluate(fixtures.growthbook) })),
    timed("growthbook", () => runPython("pypi_growthbook.py", paths.growthbook)),
    timed("ofrep", async () => ({ name: npmOpenfeature.name, answers: await npmOpenfeature.evaluate(fixtures.ofrep) })),
    timed("ofrep", () => runPython("pypi_openfeature.py", paths.ofrep)),
  ]);
}

async function main() {
  const sluice = await startSluice(bin);
  const dir = mkdtempSync(join(tmpdir(), "sluice-interop-fixtures-"));
  try {
    await createScenario(sluice.api);
    const sdkKeys = Object.fromEntries(ENVIRONMENTS.map((env) => [env, sluice.createKey("sdk", env)]));
    const users = makeUsers(USERS);
    const sdkCallers = Object.fromEntries(Object.entries(sdkKeys).map(([env, key]) => [env, sluice.sdk(key)]));
    const start = Date.now();
    const reference = await referenceAnswers(sdkCallers, users);
    console.log(`reference: POST /sdk/v1/assign for ${users.length} users × ${ENVIRONMENTS.length} environments in ${seconds(start)} s`);
    const fixture = (family, count) => ({ url: sluice.url, sdkKeys, experiments: experimentsFor(family), users: users.slice(0, count) });
    const fixtures = { growthbook: fixture("growthbook", USERS), ofrep: fixture("ofrep", OFREP_USERS) };

    const verdicts = (await askSdks(fixtures, dir)).map(({ name, family, answers }) =>
      judge({ sdk: name, family, answers, reference, users, experimentKeys: fixtures[family].experiments.map((e) => e.key) }),
    );
    verdicts.push(
      await checkTracking({
        url: sluice.url,
        sdkKey: sdkKeys.production,
        api: sluice.api,
        users,
        answers: reference.production.assign,
      }),
    );
    const mismatches = printVerdicts(verdicts);
    const failed = verdicts.filter((v) => v.mismatches.length).length;
    console.log(mismatches ? `interop: ${mismatches} mismatches` : "interop: every SDK agrees with /sdk/v1/assign");
    console.log(`interop: ${verdicts.length - failed} passed, ${failed} failed`);
    process.exitCode = failed ? 1 : 0;
  } finally {
    rmSync(dir, { recursive: true, force: true });
    await sluice.stop();
  }
}

await main();

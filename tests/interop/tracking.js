// The GrowthBook tracking callback of README.md (sluice-exposures.js) against
// the server: one GrowthBook instance per user, as a Node app makes one per
// request; the exposures flushed must show in the experiment's report.
import { readFileSync } from "node:fs";
import { isDeepStrictEqual } from "node:util";
import { GrowthBook } from "@growthbook/growthbook";
import { EXPERIMENTS } from "./lib/scenario.js";
import { until } from "./lib/sluice.js";
import { name as growthbookName } from "./sdks/npm_growthbook.js";
import { sluiceExposures } from "./sluice-exposures.js";

const EXPERIMENT = "tracked-welcome";
const { definition } = EXPERIMENTS.find((e) => e.definition.key === EXPERIMENT);

/** Users per variant that assign puts in the experiment. */
function expectedUsers(answers) {
  const counts = Object.fromEntries(definition.variants.map((v) => [v.key, 0]));
  for (const byKey of answers) if (byKey[EXPERIMENT].in_experiment) counts[byKey[EXPERIMENT].variant]++;
  return counts;
}

async function sendExposures(url, sdkKey, users) {
  const exposures = sluiceExposures(url, sdkKey);
  for (const attributes of users) {
    const gb = new GrowthBook({ apiHost: url, clientKey: sdkKey, attributes, trackingCallback: exposures.trackingCallback });
    await gb.init({ timeout: 5000 });
    gb.evalFeature(EXPERIMENT);
    gb.destroy();
  }
  return exposures.flush(); // one batch: fewer users than a batch may hold
}

function readmeQuotesSnippet() {
  const readme = readFileSync(new URL("README.md", import.meta.url), "utf8");
  const snippet = readFileSync(new URL("sluice-exposures.js", import.meta.url), "utf8");
  return readme.includes(snippet);
}

/** Waits for the report to show `expected` users per variant; returns what it shows when it does not. */
async function reportDiffers(api, expected) {
  const reported = async () => (await api("GET", `/api/v1/experiments/${EXPERIMENT}/report`)).srm.users;
  return until(async () => isDeepStrictEqual(await reported(), expected), 10_000, "the report").then(() => null, () => reported());
}

/** A verdict like judge()'s: the exposures sent and the report's users per variant against assign's. */
export async function checkTracking({ url, sdkKey, api, users, answers }) {
  const sdk = `${growthbookName} trackingCallback → POST /sdk/v1/events`;
  const mismatches = [];
  if (!readmeQuotesSnippet()) mismatches.push(`${sdk}: README.md no longer quotes sluice-exposures.js verbatim`);
  const { accepted: sent, skipped = [] } = await sendExposures(url, sdkKey, users);
  if (skipped.length) mismatches.push(`${sdk}: Sluice skipped ${skipped.length} exposures, the first: ${JSON.stringify(skipped[0])}`);
  const expected = expectedUsers(answers);
  const inExperiment = Object.values(expected).reduce((a, b) => a + b, 0);
  if (sent !== inExperiment) mismatches.push(`${sdk}: ${sent} exposures stored for the ${inExperiment} users assign puts in ${EXPERIMENT}`);
  const shown = await reportDiffers(api, expected);
  if (shown) mismatches.push(`${sdk}: ${EXPERIMENT}'s report shows users ${JSON.stringify(shown)}, assign puts ${JSON.stringify(expected)} in it`);
  const summary = `${users.length} users, ${sent} exposures stored, report users per variant ${JSON.stringify(expected)}`;
  return { sdk, summary, mismatches };
}

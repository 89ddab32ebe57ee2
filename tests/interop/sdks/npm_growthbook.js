// @growthbook/growthbook (npm): features from GET /api/features/{sdk key},
// evaluated locally by the SDK.
import { GrowthBook } from "@growthbook/growthbook";
import { installedVersion } from "../lib/installed.js";

export const name = `@growthbook/growthbook ${installedVersion("@growthbook/growthbook")} (npm)`;

const observe = (result) => ({
  value: result.value,
  source: result.source,
  variationId: result.experimentResult?.variationId ?? null,
  inExperiment: result.experimentResult?.inExperiment ?? null,
});

/** environment → array by user of experiment key → evalFeature's result. */
export async function evaluate({ url, sdkKeys, experiments, users }) {
  const answers = {};
  for (const [env, clientKey] of Object.entries(sdkKeys)) {
    const gb = new GrowthBook({ apiHost: url, clientKey });
    const { success, error } = await gb.init({ timeout: 5000 });
    if (!success) throw new Error(`${name} could not load the ${env} features from ${url}: ${error}`);
    answers[env] = [];
    for (const user of users) {
      await gb.setAttributes(user);
      answers[env].push(Object.fromEntries(experiments.map(({ key }) => [key, observe(gb.evalFeature(key))])));
    }
    gb.destroy();
  }
  return answers;
}

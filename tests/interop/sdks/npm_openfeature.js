// @openfeature/server-sdk with @openfeature/ofrep-provider (npm): each flag
// evaluated remotely at POST /ofrep/v1/evaluate/flags/{key}.
import { OpenFeature } from "@openfeature/server-sdk";
import { OFREPProvider } from "@openfeature/ofrep-provider";
import { installedVersion } from "../lib/installed.js";
import { inParallel } from "../lib/parallel.js";

const server = `@openfeature/server-sdk ${installedVersion("@openfeature/server-sdk")}`;
export const name = `${server} + @openfeature/ofrep-provider ${installedVersion("@openfeature/ofrep-provider")} (npm)`;

// The provider checks the flag's JSON type against the default's, so an app
// calls the getter of its flag's type.
const GETTERS = {
  boolean: (client, key, context) => client.getBooleanDetails(key, false, context),
  string: (client, key, context) => client.getStringDetails(key, "", context),
  integer: (client, key, context) => client.getNumberDetails(key, 0, context),
  float: (client, key, context) => client.getNumberDetails(key, 0, context),
  object: (client, key, context) => client.getObjectDetails(key, {}, context),
};

const observe = (details) => ({
  value: details.value,
  variant: details.variant ?? null,
  reason: details.reason ?? null,
  inExperiment: details.flagMetadata?.in_experiment ?? null,
  errorCode: details.errorCode ?? null,
});

async function evaluateUser(client, experiments, { id, ...attributes }) {
  const context = { targetingKey: id, ...attributes };
  const byKey = {};
  for (const { key, valueType } of experiments) byKey[key] = observe(await GETTERS[valueType](client, key, context));
  return byKey;
}

/** environment → array by user of experiment key → the evaluation details. */
export async function evaluate({ url, sdkKeys, experiments, users }) {
  const answers = {};
  for (const [env, sdkKey] of Object.entries(sdkKeys)) {
    const domain = `sluice-${env}`;
    await OpenFeature.setProviderAndWait(domain, new OFREPProvider({ baseUrl: url, headers: { Authorization: `Bearer ${sdkKey}` } }));
    const client = OpenFeature.getClient(domain);
    answers[env] = await inParallel(users, 8, (user) => evaluateUser(client, experiments, user));
  }
  await OpenFeature.close();
  return answers;
}

// The reference answers: what Sluice's own POST /sdk/v1/assign says, per
// environment, user and experiment.
import { inParallel } from "./parallel.js";
import { EXPERIMENTS, servedIn } from "./scenario.js";

const definitions = new Map(EXPERIMENTS.map(({ definition }) => [definition.key, definition]));

/** assign's answers for `user` as experiment key → {variant, variantIndex, value, in_experiment, reason}. */
async function assign(sdk, user, experiments) {
  const { assignments } = await sdk("POST", "/sdk/v1/assign", { user, experiments, log_exposure: false });
  return Object.fromEntries(
    assignments.map(({ experiment, variant, value, in_experiment, reason }) => {
      const variantIndex = definitions.get(experiment).variants.findIndex((v) => v.key === variant);
      return [experiment, { variant, variantIndex, value, in_experiment, reason }];
    }),
  );
}

/**
 * What OFREP must answer. A context's `targetingKey` stands for the
 * experiment's hash attribute when the context lacks it, so a user without a
 * `device_id` is bucketed by their id in a device_id experiment: assign is
 * asked again with that substitution.
 */
async function assignAsOfrep(sdk, user, direct) {
  const substituted = EXPERIMENTS.map(({ definition }) => definition).filter(
    ({ key, hash_attribute: attribute = "id" }) => key in direct && !(attribute in user),
  );
  const answers = { ...direct };
  for (const { key, hash_attribute: attribute } of substituted) {
    Object.assign(answers, await assign(sdk, { ...user, [attribute]: user.id }, [key]));
  }
  return answers;
}

/**
 * For each environment (name → sdk caller): `{assign, ofrep}`, each an array
 * by user of experiment key → answer; an experiment not served is absent.
 */
export async function referenceAnswers(sdkCallers, users) {
  const reference = {};
  for (const [env, sdk] of Object.entries(sdkCallers)) {
    const direct = await inParallel(users, 8, (user) => assign(sdk, user, undefined));
    const ofrep = await inParallel(users, 8, (user, i) => assignAsOfrep(sdk, user, direct[i]));
    reference[env] = { assign: direct, ofrep };
  }
  checkScenarioServed(reference, users);
  return reference;
}

/**
 * Fails the run when the server did not set the scenario up as asked: an
 * experiment served in the wrong environments, or a running experiment one of
 * whose variants no user gets (then that variant would go unchecked).
 */
function checkScenarioServed(reference, users) {
  const problems = [];
  for (const experiment of EXPERIMENTS) {
    const { key, variants } = experiment.definition;
    for (const [env, { assign: answers }] of Object.entries(reference)) {
      const served = answers.every((byKey) => key in byKey);
      const expected = servedIn(experiment).includes(env);
      if (answers.some((byKey) => key in byKey) && !served) problems.push(`${key} is served to some users of ${env} only`);
      if (served !== expected) problems.push(`${key} is ${served ? "" : "not "}served in ${env}`);
      if (served && experiment.lifecycle.at(-1) === "start") {
        const seen = new Set(answers.filter((byKey) => byKey[key].in_experiment).map((byKey) => byKey[key].variant));
        const unseen = variants.filter((v) => !seen.has(v.key)).map((v) => v.key);
        if (unseen.length) problems.push(`${key} in ${env}: none of ${users.length} users gets ${unseen.join(", ")}`);
      }
    }
  }
  if (problems.length) throw new Error(`the scenario is not what the server serves:\n  ${problems.join("\n  ")}`);
}

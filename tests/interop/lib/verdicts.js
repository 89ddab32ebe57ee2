// Compares what each SDK answered with the reference, user × experiment ×
// environment, and prints the verdicts.
import { isDeepStrictEqual } from "node:util";

const json = (value) => JSON.stringify(value);

/**
 * A GrowthBook SDK's `evalFeature` result, as `{value, source, variationId,
 * inExperiment}` (the last two null without an experimentResult), against
 * assign's answer. Returns what is wrong, or null.
 */
function growthbookProblem(expected, got) {
  if (!expected) return got.source === "unknownFeature" ? null : "a feature assign does not serve";
  if (got.source === "unknownFeature") return "no such feature in the payload";
  if (!isDeepStrictEqual(got.value, expected.value)) return "value differs";
  // GrowthBook gives an experimentResult only to users in the experiment;
  // the others fall through to defaultValue, whose equality was checked above.
  if (got.variationId === null) return expected.in_experiment ? "not in the experiment" : null;
  if (got.variationId !== expected.variantIndex) return "variation differs";
  if (got.inExperiment !== expected.in_experiment) return "inExperiment differs";
  return null;
}

const OFREP_REASONS = { split: "SPLIT", shipped: "STATIC", paused: "DISABLED", rolled_back: "DISABLED", stopped: "DISABLED" };

/**
 * An OpenFeature evaluation through OFREP, as `{value, variant, reason,
 * inExperiment, errorCode}`, against assign's answer. Returns what is wrong, or null.
 */
function ofrepProblem(expected, got) {
  if (!expected) return got.errorCode === "FLAG_NOT_FOUND" ? null : "a flag assign does not serve";
  if (got.errorCode) return `error ${got.errorCode}`;
  if (!isDeepStrictEqual(got.value, expected.value)) return "value differs";
  if (got.variant !== expected.variant) return "variant differs";
  if (got.inExperiment !== expected.in_experiment) return "metadata.in_experiment differs";
  if (got.reason !== (OFREP_REASONS[expected.reason] ?? "DEFAULT")) return "reason differs";
  return null;
}

/** How each kind of SDK is judged, and which reference view it is judged against. */
export const FAMILIES = {
  growthbook: { problem: growthbookProblem, view: "assign" },
  ofrep: { problem: ofrepProblem, view: "ofrep" },
};

const describe = (expected) =>
  expected ? `${expected.variant} ${json(expected.value)} (${expected.reason}, in_experiment ${expected.in_experiment})` : "not served";

/**
 * Judges one SDK's `answers` (environment → array by user of experiment key →
 * observation). Returns `{sdk, summary, mismatches}`, each mismatch a sentence.
 */
export function judge({ sdk, family, answers, reference, users, experimentKeys }) {
  const { problem, view } = FAMILIES[family];
  let checks = 0;
  const mismatches = [];
  for (const [env, byUser] of Object.entries(answers)) {
    byUser.forEach((observed, i) => {
      for (const key of experimentKeys) {
        checks++;
        const expected = reference[env][view][i][key];
        const wrong = problem(expected, observed[key]);
        if (wrong) {
          mismatches.push(
            `${sdk}: user ${json(users[i].id)} × ${key} in ${env}: ${wrong}; assign says ${describe(expected)}, the SDK says ${json(observed[key])}`,
          );
        }
      }
    });
  }
  const environments = Object.keys(answers);
  const shape = `${answers[environments[0]].length} users × ${experimentKeys.length} experiments × ${environments.length} environments`;
  return { sdk, summary: `${shape} = ${checks} checks`, mismatches };
}

const SHOWN = 20;

/** Prints one summary line per verdict, then the first mismatches; returns their total. */
export function printVerdicts(verdicts) {
  for (const { sdk, summary, mismatches } of verdicts) console.log(`${sdk}: ${summary}, ${mismatches.length} mismatches`);
  const all = verdicts.flatMap((v) => v.mismatches);
  for (const line of all.slice(0, SHOWN)) console.log(`  MISMATCH ${line}`);
  if (all.length > SHOWN) console.log(`  … and ${all.length - SHOWN} more`);
  return all.length;
}

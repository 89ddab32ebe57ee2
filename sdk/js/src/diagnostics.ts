// @sluice/sdk/diagnostics: compile's warnings and the problems of a
// condition in words, each problem with its JSON path (SPEC.md §6, strict
// compilation), for tools, logs and tests. Apps do not need them:
// `compile(ruleset)` gives each warning as a code and data, and only says
// which part of a condition made a rule invalid, so the words stay out of the
// main bundle.

import { clampCoverage } from "./bucket.js";
import { compilePredicate, Problem, type Predicate, type SavedGroups } from "./condition.js";
import type { Warning, WarningCode } from "./ruleset.js";

export type { Predicate, SavedGroups } from "./condition.js";
export type { Warning, WarningCode } from "./ruleset.js";

type Of<C extends WarningCode> = Extract<Warning, { code: C }>;
const invalid = (what: string) => `${what}: control for all`;

/** Each warning in words, from its data. */
const SENTENCES: { [C in WarningCode]: (w: Of<C>) => string } = {
  no_experiments: () => "no experiments array",
  no_key: () => "no key: skipped",
  duplicate_key: () => "duplicate key: skipped",
  empty_hash_attribute: () => 'hash_attribute "": using "id"',
  variants_not_array: () => invalid("variants: not an array"),
  variant_without_key: (w) => invalid(`${w.path}: no key`),
  too_few_variants: (w) => invalid(`${w.value} variants`),
  duplicate_variant: (w) => invalid(`variant ${w.value} twice`),
  unknown_hash_version: (w) => invalid(`hash_version ${w.value}`),
  invalid_namespace: () => invalid("namespace: no name or finite range"),
  namespace_range: ({ value: [lo, hi] }) => `namespace [${lo}, ${hi}): empty or outside 0..1`,
  invalid_condition: (w) => invalid(`condition invalid${w.path.slice(10) && ` at ${w.path.slice(10)}`}`),
  no_shipped_variant: () => "no shipped_variant: control",
  unknown_shipped_variant: (w) => `shipped_variant ${w.value}: unknown, control`,
  unknown_status: (w) => invalid(`status ${w.value}`),
  coverage_clamped: (w) => {
    const coverage = typeof w.value === "number" ? w.value : NaN;
    return `coverage ${coverage}: using ${clampCoverage(coverage)}`;
  },
  weights_invalid: () => "weights: not finite and >= 0: equal weights",
  weights_sum: () => "weights: sum is not 1: equal weights",
};

/**
 * A warning of `compile(ruleset)` in words: what is wrong, then what
 * evaluation does about it (`hash_version 3: control for all`,
 * `condition invalid at email.$regex: control for all`). The experiment is
 * not part of it: it is `warning.experiment`.
 */
export function describeWarning(warning: Warning): string {
  return (SENTENCES[warning.code] as (w: Warning) => string)(warning);
}

/** A compiled condition and its problems (`country.$regex: …`); a ruleset takes it only without any. */
export interface CompiledCondition {
  predicate: Predicate;
  problems: string[];
}

/** Each problem in words; the detail (a group, an operator, the regex engine's message) follows. */
const WORDS: Record<Problem, string> = {
  [Problem.NotObject]: "expected an object",
  [Problem.NotArray]: "expected an array",
  [Problem.NotPrimitive]: "expected a string, number, boolean or null",
  [Problem.NotBoolean]: "expected a boolean",
  [Problem.NotNumberOrOperators]: "expected a number or operators",
  [Problem.NotStringOrNumber]: "expected a string or number",
  [Problem.NotGroupName]: "expected a group name",
  [Problem.NotArrayGroup]: "expected an array group",
  [Problem.UnknownGroup]: "unknown group ",
  [Problem.NotRegexString]: "expected a regex string",
  [Problem.RegexSyntax]: "",
  [Problem.LookAround]: "regex: no look-around",
  [Problem.BackReference]: "regex: no back-references",
  [Problem.NotTypeName]: "expected a type name",
  [Problem.UnknownOperator]: "unknown operator ",
  [Problem.MixedKeys]: "mixes operators and fields",
};

/**
 * Compiles a condition as `compile(ruleset)` does, listing every problem as
 * `path: what is wrong` (`condition: …` for the condition itself). The
 * predicate is GrowthBook's lenient one: a part with a problem never matches
 * or, where GrowthBook lets it through, still works.
 */
export function compileCondition(condition: unknown, groups: SavedGroups = {}): CompiledCondition {
  const problems: string[] = [];
  const predicate = compilePredicate(condition, groups, (at, problem, detail = "") => {
    problems.push(`${at || "condition"}: ${WORDS[problem]}${detail}`);
  });
  return { predicate, problems };
}

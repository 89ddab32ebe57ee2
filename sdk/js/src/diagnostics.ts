// @sluice/sdk/diagnostics: the problems of a condition in words, each with
// its JSON path (SPEC.md §6, strict compilation), for tools and tests. Apps
// do not need them: `compile(ruleset)` only says which part of a condition
// made a rule invalid, so the words stay out of the main bundle.

import { compilePredicate, Problem, type Predicate, type SavedGroups } from "./condition.js";

export type { Predicate, SavedGroups } from "./condition.js";

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

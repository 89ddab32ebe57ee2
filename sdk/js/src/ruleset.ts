// Compiling a ruleset (SPEC.md §1, §4, §5) into per-experiment evaluators.
//
// Compilation never throws: a rule that cannot be evaluated safely serves
// control to everyone with reason `invalid_rule`, and every problem becomes a
// warning naming the experiment, with a code and the data that explain it
// (the words are in the diagnostics entry point, `describeWarning`). Everything that can be prepared is prepared
// here: conditions compiled (identical ones shared, so `assignAll` evaluates
// each once per user), ranges computed, the FNV state of each seed hashed, and
// every possible result built and frozen, so evaluation allocates nothing.

import { chooseVariation, clampCoverage, getBucketRanges, inNamespace, weightProblem } from "./bucket.js";
import { compilePredicate, isObject, property, type Predicate } from "./condition.js";
import { hasher } from "./hash.js";

/** Why a user got the variant they got. */
export type Reason =
  | "split" | "condition" | "namespace" | "coverage" | "no_hash_attribute"
  | "draft" | "paused" | "rolled_back" | "shipped" | "stopped" | "invalid_rule";

/** One experiment's outcome for one user. `in_experiment` is true only for `split`. */
export interface Assignment {
  readonly experiment: string;
  readonly variant: string;
  readonly value: unknown;
  readonly in_experiment: boolean;
  readonly reason: Reason;
}

/**
 * A problem found while compiling. `experiment` is the rule's key
 * (`experiments[i]` for a rule without one, `""` for the ruleset itself);
 * `code` says what is wrong and, with it, what evaluation does: the rule is
 * skipped (`no_key`, `duplicate_key`), serves control to everyone (the codes of
 * {@link InvalidRuleCode}), or runs with a fallback (the others). `path` is the
 * JSON path in the rule of what is wrong, `value` the offending value.
 * `describeWarning` in `@sluice/sdk/diagnostics` puts a warning in words.
 */
export type Warning = { readonly experiment: string } & (
  /** The ruleset has no `experiments` array, so it has no experiments. */
  | { readonly code: "no_experiments" }
  /** A rule without a string `key`, or with the key of an earlier rule: it is skipped. */
  | { readonly code: "no_key" | "duplicate_key" }
  /** An empty `hash_attribute`: `id` is used. */
  | { readonly code: "empty_hash_attribute" }
  /** `variants` is not an array. */
  | { readonly code: "variants_not_array" }
  /** The variant at `path` (`variants[1]`) is not an object with a string `key`. */
  | { readonly code: "variant_without_key"; readonly path: string }
  /** Fewer than two variants; `value` is how many. */
  | { readonly code: "too_few_variants"; readonly value: number }
  /** Variant key `value` appears twice. */
  | { readonly code: "duplicate_variant"; readonly value: string }
  /** `hash_version` `value` is neither 1 nor 2. */
  | { readonly code: "unknown_hash_version"; readonly value: unknown }
  /** The namespace `value` has no string name or no range of two finite numbers. */
  | { readonly code: "invalid_namespace"; readonly value: unknown }
  /** The namespace range `value`, `[lo, hi]`, is empty or outside 0..1: the slice is used as it is. */
  | { readonly code: "namespace_range"; readonly value: readonly [number, number] }
  /** The condition does not compile strictly (SPEC.md §6); `path` is where the first problem is (`condition.email.$regex`, `condition` for the condition itself). */
  | { readonly code: "invalid_condition"; readonly path: string }
  /** A `shipped` rule without `shipped_variant`: control is served. */
  | { readonly code: "no_shipped_variant" }
  /** `shipped_variant` `value` names no variant: control is served. */
  | { readonly code: "unknown_shipped_variant"; readonly value: unknown }
  /** `status` `value` is not one of the statuses. */
  | { readonly code: "unknown_status"; readonly value: unknown }
  /** `coverage` `value` is not a number in 0..1: it is clamped (NaN, or not a number, counts as 0). */
  | { readonly code: "coverage_clamped"; readonly value: unknown }
  /** The weights `value` (one per variant, as the rule has them) are not all finite and >= 0, or do not sum to 1 (0.99..1.01): equal weights are used. */
  | { readonly code: "weights_invalid" | "weights_sum"; readonly value: readonly unknown[] }
);

/** What a warning can say. */
export type WarningCode = Warning["code"];

/** The codes of the problems that make a rule invalid: it serves control to everyone, reason `invalid_rule` for a `running` or `shipped` rule. */
export type InvalidRuleCode =
  | "variants_not_array" | "variant_without_key" | "too_few_variants" | "duplicate_variant"
  | "unknown_hash_version" | "invalid_namespace" | "invalid_condition" | "unknown_status";

/** A warning's data: its path, its value, or neither. */
type Data = { path?: string; value?: unknown };
type Warn = (code: WarningCode, data?: Data) => void;

/** User attributes: `{id: "u1", country: "CN", …}`. */
export type Attributes = Record<string, unknown>;

/** A ruleset ready for evaluation; build it once per ruleset version. */
export interface CompiledRuleset {
  readonly version: number;
  readonly warnings: readonly Warning[];
  /** Evaluates one experiment; null when no experiment has this key. */
  assign(key: string, attributes: Attributes): Assignment | null;
  /** Evaluates every experiment, in ruleset order. */
  assignAll(attributes: Attributes): Assignment[];
}

/** What the client needs to log an exposure. */
export interface ExposureRule {
  readonly hashAttribute: string;
  readonly dimensions: readonly string[];
}

/** Per-user condition results, by condition id, shared by one `assignAll` call. */
type Memo = (boolean | undefined)[];
type Evaluate = (attributes: Attributes, memo: Memo | null) => Assignment;

interface Experiment extends ExposureRule {
  readonly evaluate: Evaluate;
}

type Json = Record<string, unknown>;
const asObject = (v: unknown): Json => (isObject(v) ? v : {});
const asArray = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);
const nonEmpty = (v: unknown, fallback: string): string => ((typeof v === "string" && v) || fallback);
/** Statuses that serve control to everyone, with the status as the reason. */
const STOPPED: readonly string[] = ["draft", "paused", "rolled_back", "stopped"];

/**
 * The unit id (SPEC.md §2): a non-empty string as is, a non-zero number as
 * JavaScript prints it, `true` as "true"; otherwise none.
 */
export function unitId(value: unknown): string | null {
  // "", 0 and NaN are falsy: no unit id.
  return (typeof value === "string" || typeof value === "number" || value === true) && value ? String(value) : null;
}

/**
 * A condition as the experiments of one ruleset share it. With a problem it
 * is unusable: `invalidAt` is the JSON path of the first one (`""` for the
 * condition itself); the diagnostics entry point says what is wrong there.
 */
interface Condition {
  readonly id: number;
  readonly predicate: Predicate;
  readonly invalidAt: string | undefined;
}

/**
 * Compiles each distinct condition of a ruleset once. Attributes that make a
 * condition throw (a BigInt, a throwing getter) do not match it.
 */
function conditionCache(): (condition: unknown) => Condition {
  const byJson = new Map<string, Condition>();
  return (condition) => {
    const json = JSON.stringify(condition);
    let c = byJson.get(json);
    if (!c) {
      let invalidAt: string | undefined;
      const predicate = compilePredicate(condition, {}, (at) => (invalidAt ??= at));
      const guarded: Predicate = (doc) => {
        try {
          return predicate(doc);
        } catch {
          return false;
        }
      };
      byJson.set(json, (c = { id: byJson.size, predicate: guarded, invalidAt }));
    }
    return c;
  };
}

/** A variant as the rule has it (weight and value unchecked), or `{key: ""}` for one without a key. */
interface Variant {
  key: string;
  weight?: unknown;
  value?: unknown;
}

/**
 * Compiles one rule; problems go to `warn`. A stopped, shipped or invalid
 * rule gets a fixed result; a running one checks condition, unit id,
 * namespace and split, in that order (SPEC.md §5).
 */
function compileRule(rule: Json, key: string, conditionOf: (c: unknown) => Condition, warn: Warn): Experiment {
  let invalid = false;
  const fail = (code: InvalidRuleCode, data?: Data) => {
    invalid = true;
    warn(code, data);
  };
  const hashAttribute = nonEmpty(rule.hash_attribute, "id");
  if (rule.hash_attribute === "") warn("empty_hash_attribute");
  const dimensions = asArray(rule.dimensions).filter((d): d is string => typeof d === "string");

  if (!Array.isArray(rule.variants)) fail("variants_not_array");
  const variants = asArray(rule.variants).map((v, i): Variant => {
    if (isObject(v) && typeof v.key === "string") return v as Json & Variant;
    fail("variant_without_key", { path: `variants[${i}]` });
    return { key: "" };
  });
  const n = variants.length;
  if (n < 2) fail("too_few_variants", { value: n });
  variants.forEach((v, i) => {
    if (variants.findIndex((w) => w.key === v.key) < i) fail("duplicate_variant", { value: v.key });
  });
  const result = (i: number, reason: Reason): Assignment =>
    Object.freeze({
      experiment: key,
      variant: variants[i]?.key ?? "",
      value: variants[i]?.value ?? null,
      in_experiment: reason === "split",
      reason,
    });
  const experiment = (evaluate: Evaluate): Experiment => ({ hashAttribute, dimensions, evaluate });
  const fixed = (i: number, reason: Reason) => {
    const r = result(i, reason);
    return experiment(() => r);
  };

  const hashVersion = rule.hash_version ?? 2;
  if (hashVersion !== 1 && hashVersion !== 2) fail("unknown_hash_version", { value: hashVersion });

  let inSlice: ((id: string) => boolean) | null = null;
  const ns = rule.namespace;
  if (ns != null) {
    const { name, range } = asObject(ns);
    const bounds = asArray(range);
    const [lo, hi] = bounds as number[];
    if (typeof name !== "string" || bounds.length !== 2 || !Number.isFinite(lo) || !Number.isFinite(hi)) {
      fail("invalid_namespace", { value: ns });
    } else {
      if (!(lo >= 0 && hi <= 1 && lo < hi)) warn("namespace_range", { value: [lo, hi] });
      inSlice = inNamespace(name, bounds as [number, number]);
    }
  }

  const condition = rule.condition == null ? null : conditionOf(rule.condition);
  const invalidAt = condition?.invalidAt;
  if (invalidAt !== undefined) fail("invalid_condition", { path: "condition" + (invalidAt && "." + invalidAt) });

  const shipped = rule.shipped_variant;
  let shippedAt = 0;
  if (shipped == null) {
    if (rule.status === "shipped") warn("no_shipped_variant");
  } else {
    shippedAt = variants.findIndex((v) => v.key === shipped);
    if (shippedAt < 0) warn("unknown_shipped_variant", { value: shipped });
  }

  const status = rule.status as Reason | "running";
  if (STOPPED.includes(status)) return fixed(0, status as Reason);
  if (status !== "running" && status !== "shipped") fail("unknown_status", { value: status });
  if (invalid) return fixed(0, "invalid_rule");
  if (status === "shipped") return fixed(Math.max(shippedAt, 0), "shipped");

  const coverage = rule.coverage === undefined ? 1 : typeof rule.coverage === "number" ? rule.coverage : NaN;
  if (clampCoverage(coverage) !== coverage) warn("coverage_clamped", { value: rule.coverage });
  // Not numbers, or missing: not finite, so equal weights.
  const weights = variants.map((v) => v.weight) as number[];
  const problem = weightProblem(n, weights);
  // One weight per variant, so never "weights_count".
  if (problem) warn(problem as "weights_sum", { value: weights });
  const ranges = getBucketRanges(n, coverage, weights);

  const attribute = property(hashAttribute);
  const bucket = hasher(nonEmpty(rule.seed, key), hashVersion as 1 | 2);
  const [noMatch, noId, outside, uncovered] = (["condition", "no_hash_attribute", "namespace", "coverage"] as const).map((r) => result(0, r));
  const split = ranges.map((_, i) => result(i, "split"));
  return experiment((attributes, memo) => {
    if (condition) {
      const { id, predicate } = condition;
      const passes = memo ? (memo[id] ??= predicate(attributes)) : predicate(attributes);
      if (!passes) return noMatch;
    }
    const id = unitId(attribute(attributes));
    if (id === null) return noId;
    if (inSlice && !inSlice(id)) return outside;
    const i = chooseVariation(bucket(id), ranges);
    return i < 0 ? uncovered : split[i];
  });
}

/** The compiled ruleset plus what the client needs to log exposures. */
export interface Compiled extends CompiledRuleset {
  /** The hash attribute and dimensions of an experiment, for its exposures. */
  rule(key: string): ExposureRule | undefined;
}

/** Compiles a ruleset as served by `GET /sdk/v1/ruleset`. Never throws. */
export function compile(ruleset: unknown): Compiled {
  const warnings: Warning[] = [];
  const conditionOf = conditionCache();
  const byKey = new Map<string, Experiment>();
  const { experiments, version } = asObject(ruleset);
  if (!Array.isArray(experiments)) warnings.push({ experiment: "", code: "no_experiments" });
  asArray(experiments).forEach((rule, i) => {
    const key = isObject(rule) && typeof rule.key === "string" ? rule.key : null;
    const warn: Warn = (code, data) => warnings.push({ experiment: key ?? `experiments[${i}]`, code, ...data } as Warning);
    if (key === null) warn("no_key");
    else if (byKey.has(key)) warn("duplicate_key");
    else byKey.set(key, compileRule(rule as Json, key, conditionOf, warn));
  });
  const all = [...byKey.values()];
  return {
    version: typeof version === "number" ? version : 0,
    warnings,
    assign: (key, attributes) => byKey.get(key)?.evaluate(asObject(attributes), null) ?? null,
    assignAll: (attributes) => {
      const doc = asObject(attributes);
      const memo: Memo = [];
      return all.map((e) => e.evaluate(doc, memo));
    },
    rule: (key) => byKey.get(key),
  };
}

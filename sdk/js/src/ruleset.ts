// Compiling a ruleset (SPEC.md §1, §4, §5) into per-experiment evaluators.
//
// Compilation never throws: a rule that cannot be evaluated safely serves
// control to everyone with reason `invalid_rule`, and every problem becomes a
// warning naming the experiment. Everything that can be prepared is prepared
// here: conditions compiled (identical ones shared, so `assignAll` evaluates
// each once per user), ranges computed, the FNV state of each seed hashed, and
// every possible result built and frozen, so evaluation allocates nothing.

import { chooseVariation, clampCoverage, getBucketRanges, inNamespace, weightProblem } from "./bucket.js";
import { compileCondition, ConditionError, property, type Predicate } from "./condition.js";
import { bucketV1, bucketV2, fnv1a32, fnvFeed } from "./hash.js";

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

/** A problem found while compiling, and what evaluation does about it. */
export interface Warning {
  experiment: string;
  message: string;
}

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
const EMPTY: Attributes = Object.freeze({});
/** Statuses that serve control to everyone, with the status as the reason. */
const STOPPED: Reason[] = ["draft", "paused", "rolled_back", "stopped"];

function isObject(v: unknown): v is Json {
  return v !== null && typeof v === "object" && !Array.isArray(v);
}

/** JSON with sorted keys: equal conditions, whatever their key order, share one id. */
function canonical(v: unknown): string {
  return JSON.stringify(v, (_, x) => (isObject(x) ? Object.fromEntries(Object.entries(x).sort()) : x));
}

/**
 * The unit id (SPEC.md §2): a non-empty string as is, a non-zero number as
 * JavaScript prints it, `true` as "true"; otherwise none.
 */
export function unitId(value: unknown): string | null {
  if (typeof value === "string") return value === "" ? null : value;
  if (typeof value === "number") return value === 0 || Number.isNaN(value) ? null : String(value);
  return value === true ? "true" : null;
}

/** Shared, per ruleset, by every experiment with the same condition. */
class Conditions {
  private readonly ids = new Map<string, number>();
  readonly list: Predicate[] = [];

  /** The id of `condition`, compiled strictly (throws a ConditionError). */
  id(condition: unknown): number {
    const key = canonical(condition);
    let id = this.ids.get(key);
    if (id === undefined) {
      const predicate = compileCondition(condition);
      id = this.list.push(guarded(predicate)) - 1;
      this.ids.set(key, id);
    }
    return id;
  }
}

/** Attributes that make a condition throw (a BigInt, a throwing getter) do not match it. */
function guarded(predicate: Predicate): Predicate {
  return (doc) => {
    try {
      return predicate(doc);
    } catch {
      return false;
    }
  };
}

interface Variant {
  key: string;
  weight: number;
  value: unknown;
}

function variantsOf(rule: Json, invalid: (m: string) => void): Variant[] {
  if (!Array.isArray(rule.variants)) {
    invalid("variants: not an array");
    return [];
  }
  const variants = rule.variants.map((v: unknown, i): Variant => {
    if (!isObject(v) || typeof v.key !== "string") {
      invalid(`variants[${i}]: no key`);
      return { key: "", weight: NaN, value: null };
    }
    return { key: v.key, weight: typeof v.weight === "number" ? v.weight : NaN, value: v.value ?? null };
  });
  if (variants.length < 2) invalid(`${variants.length} variants`);
  variants.forEach((v, i) => {
    if (variants.findIndex((w) => w.key === v.key) < i) invalid(`variant ${v.key} twice`);
  });
  return variants;
}

/** Compiles one rule; problems go to `warn`. */
function compileRule(rule: Json, key: string, conditions: Conditions, warn: (m: string) => void): Experiment {
  let invalid = false;
  const fail = (m: string) => {
    invalid = true;
    warn(`${m}: control for all`);
  };
  const variants = variantsOf(rule, fail);
  const result = (i: number, reason: Reason): Assignment =>
    Object.freeze({
      experiment: key,
      variant: variants[i]?.key ?? "",
      value: variants[i]?.value ?? null,
      in_experiment: reason === "split",
      reason,
    });
  const control = (reason: Reason): Evaluate => {
    const r = result(0, reason);
    return () => r;
  };
  const hashAttribute = typeof rule.hash_attribute === "string" && rule.hash_attribute !== "" ? rule.hash_attribute : "id";
  if (rule.hash_attribute === "") warn('hash_attribute "": using "id"');
  const dimensions = Array.isArray(rule.dimensions) ? rule.dimensions.filter((d): d is string => typeof d === "string") : [];
  const exposure = { hashAttribute, dimensions };

  const hashVersion = rule.hash_version ?? 2;
  if (hashVersion !== 1 && hashVersion !== 2) fail(`hash_version ${hashVersion}`);
  const namespace = namespaceOf(rule.namespace, warn, fail);
  let condition = -1;
  if (rule.condition !== undefined && rule.condition !== null) {
    try {
      condition = conditions.id(rule.condition);
    } catch (e) {
      if (!(e instanceof ConditionError)) throw e;
      fail(`condition ${e.message}`);
    }
  }
  const shipped = shippedIndex(rule, variants, warn);

  const status = rule.status as Reason | "running";
  if (status !== "running" && STOPPED.includes(status)) return { ...exposure, evaluate: control(status) };
  if (status !== "running" && status !== "shipped") fail(`status ${status}`);
  if (invalid) return { ...exposure, evaluate: control("invalid_rule") };
  if (status === "shipped") {
    const r = result(shipped, "shipped");
    return { ...exposure, evaluate: () => r };
  }

  const coverage = rule.coverage === undefined ? 1 : typeof rule.coverage === "number" ? rule.coverage : NaN;
  if (clampCoverage(coverage) !== coverage) warn(`coverage ${coverage}: using ${clampCoverage(coverage)}`);
  const weights = variants.map((v) => v.weight);
  const problem = weightProblem(variants.length, weights);
  if (problem) warn(`${problem}: equal weights`);
  const seed = typeof rule.seed === "string" && rule.seed !== "" ? rule.seed : key;
  const split = {
    ranges: getBucketRanges(variants.length, coverage, weights),
    bucket: bucketer(seed, hashVersion as 1 | 2),
    results: variants.map((_, i) => result(i, "split")),
  };
  const evaluate = running(property(hashAttribute), condition, conditions.list[condition], namespace, split, result);
  return { ...exposure, evaluate };
}

/** The hash in [0, 1) of a unit id under this seed and hash version. */
function bucketer(seed: string, version: 1 | 2): (id: string) => number {
  if (version === 1) return (id) => bucketV1(fnvFeed(fnv1a32(id), seed)) / 1000;
  const seedState = fnv1a32(seed);
  return (id) => bucketV2(fnvFeed(seedState, id)) / 10000;
}

interface Split {
  ranges: [number, number][];
  bucket: (id: string) => number;
  results: Assignment[];
}

/** The evaluation order of a running experiment: condition, unit id, namespace, split. */
function running(
  attribute: (doc: unknown) => unknown,
  conditionId: number,
  condition: Predicate | undefined,
  namespace: Namespace | null,
  split: Split,
  result: (i: number, reason: Reason) => Assignment,
): Evaluate {
  const [noMatch, noId, outside, uncovered] = (["condition", "no_hash_attribute", "namespace", "coverage"] as const).map((r) => result(0, r));
  return (attributes, memo) => {
    if (condition) {
      const passes = memo ? (memo[conditionId] ??= condition(attributes)) : condition(attributes);
      if (!passes) return noMatch;
    }
    const id = unitId(attribute(attributes));
    if (id === null) return noId;
    if (namespace && !inNamespace(id, namespace.name, namespace.range)) return outside;
    const i = chooseVariation(split.bucket(id), split.ranges);
    return i < 0 ? uncovered : split.results[i];
  };
}

interface Namespace {
  name: string;
  range: [number, number];
}

function namespaceOf(ns: unknown, warn: (m: string) => void, fail: (m: string) => void): Namespace | null {
  if (ns === undefined || ns === null) return null;
  const range = isObject(ns) && Array.isArray(ns.range) ? ns.range : [];
  const [lo, hi] = range;
  if (!isObject(ns) || typeof ns.name !== "string" || range.length !== 2 || !Number.isFinite(lo) || !Number.isFinite(hi)) {
    fail("namespace: no name or finite range");
    return null;
  }
  if (!(lo >= 0 && hi <= 1 && lo < hi)) warn(`namespace range [${lo}, ${hi}): empty or outside 0..1`);
  return { name: ns.name, range: [lo, hi] };
}

function shippedIndex(rule: Json, variants: Variant[], warn: (m: string) => void): number {
  const shipped = rule.shipped_variant;
  if (shipped === undefined || shipped === null) {
    if (rule.status === "shipped") warn("no shipped_variant: control");
    return 0;
  }
  const i = variants.findIndex((v) => v.key === shipped);
  if (i < 0) warn(`shipped_variant ${shipped}: unknown, control`);
  return Math.max(i, 0);
}

function attributesOf(attributes: unknown): Attributes {
  return isObject(attributes) ? attributes : EMPTY;
}

/** The compiled ruleset plus what the client needs to log exposures. */
export interface Compiled extends CompiledRuleset {
  /** The hash attribute and dimensions of an experiment, for its exposures. */
  exposureRule(key: string): ExposureRule | undefined;
}

/** Compiles a ruleset as served by `GET /sdk/v1/ruleset`. Never throws. */
export function compile(ruleset: unknown): Compiled {
  const warnings: Warning[] = [];
  const conditions = new Conditions();
  const byKey = new Map<string, Experiment>();
  const source = isObject(ruleset) && Array.isArray(ruleset.experiments) ? ruleset.experiments : [];
  if (!isObject(ruleset) || !Array.isArray(ruleset.experiments)) warnings.push({ experiment: "", message: "no experiments array" });
  source.forEach((rule: unknown, i) => {
    const key = isObject(rule) && typeof rule.key === "string" ? rule.key : null;
    const warn = (message: string) => warnings.push({ experiment: key ?? `experiments[${i}]`, message });
    if (key === null) warn("no key: skipped");
    else if (byKey.has(key)) warn("duplicate key: skipped");
    else byKey.set(key, compileRule(rule as Json, key, conditions, warn));
  });
  const experiments = [...byKey.values()];
  const version = isObject(ruleset) && typeof ruleset.version === "number" ? ruleset.version : 0;
  return {
    version,
    warnings,
    assign: (key, attributes) => byKey.get(key)?.evaluate(attributesOf(attributes), null) ?? null,
    assignAll: (attributes) => {
      const doc = attributesOf(attributes);
      const memo: Memo = [];
      return experiments.map((e) => e.evaluate(doc, memo));
    },
    exposureRule: (key) => byKey.get(key),
  };
}

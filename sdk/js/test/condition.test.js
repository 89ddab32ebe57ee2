// Strict compilation and the spec's own corners of the condition language
// (SPEC.md §6), beyond GrowthBook's conformance cases, and compile's
// warnings. The problems and warnings in words come from the diagnostics entry
// point, imported as a tool would.
import { test } from "node:test";
import assert from "node:assert/strict";
import { compile } from "../dist/index.js";
import { compileCondition, describeWarning } from "@sluice/sdk/diagnostics";

/** The first problem strict compilation (rulesets) would refuse the condition for. */
const errorOf = (condition) => compileCondition(condition).problems[0] ?? null;

test("strict compilation names the offending part", () => {
  assert.equal(errorOf({ country: { $regex: "(unclosed" } }), "country.$regex: Invalid regular expression: /(unclosed/: Unterminated group");
  assert.equal(errorOf({ $and: [{ a: 1 }, { age: { $gt: [1] } }] }), "$and[1].age.$gt: expected a string or number");
  assert.equal(errorOf({ age: { $between: [1, 2] } }), "age.$between: unknown operator $between");
  assert.equal(errorOf({ tags: { $in: ["a", ["b"]] } }), "tags.$in[1]: expected a string, number, boolean or null");
  assert.equal(errorOf({ id: { $inGroup: "beta" } }), "id.$inGroup: unknown group beta");
  assert.equal(errorOf({ a: { $exists: 1 } }), "a.$exists: expected a boolean");
  assert.equal(errorOf({ a: { $eq: 1, b: 2 } }), "a: mixes operators and fields");
  assert.equal(errorOf(5), "condition: expected an object");
  assert.equal(errorOf({ name: { $regex: "^(?!bot)" } }), "name.$regex: regex: no look-around");
  assert.equal(errorOf({ name: { $regex: "(a)\\1" } }), "name.$regex: regex: no back-references");
  assert.equal(errorOf({ name: { $regex: "[(?=]\\(?=x" } }), null);
});

test("every problem is listed; the predicate is GrowthBook's lenient one", () => {
  const { predicate, problems } = compileCondition({ a: { $exists: 1 }, b: { $nin: 5 }, $or: [{ c: { $regex: "(?=x)x" } }] });
  assert.deepEqual(problems, ["a.$exists: expected a boolean", "b.$nin: expected an array", "$or[0].c.$regex: regex: no look-around"]);
  assert.equal(predicate({ a: 1, b: 1, c: "x" }), false); // a non-array $nin never holds
  assert.equal(compileCondition({ a: { $exists: 1 } }).predicate({ a: 0 }), true);
  assert.equal(compileCondition({ $or: [{ c: { $regex: "(?=x)x" } }] }).predicate({ c: "x" }), true);
  assert.equal(compileCondition({ $not: { x: { $bad: 1 } } }).predicate({}), true); // an unknown operator never matches
  assert.equal(compileCondition({ $not: 5 }).predicate({}), false); // malformed structure never matches
});

test("the spec's corners", () => {
  const matches = (condition, attributes) => {
    const { predicate, problems } = compileCondition(condition);
    assert.deepEqual(problems, [], JSON.stringify(condition));
    return predicate(attributes);
  };
  assert.equal(matches({ $nor: [] }, {}), false);
  assert.equal(matches({ $or: [] }, {}), true);
  assert.equal(matches({ o: { b: 2, a: [1, { c: null }] } }, { o: { a: [1.0, { c: null }], b: 2 } }), true);
  assert.equal(matches({ n: "10" }, { n: 10 }), true);
  assert.equal(matches({ x: "null" }, {}), true);
  assert.equal(matches({ n: 0 }, {}), true);
  assert.equal(matches({ "tags.1": "b" }, { tags: ["a", "b"] }), true);
  assert.equal(matches({ "tags.01": "b" }, { tags: ["a", "b"] }), false);
  assert.equal(matches({ "tags.length": 2 }, { tags: ["a", "b"] }), false);
  assert.equal(matches({ constructor: { $exists: true } }, {}), false);
  assert.equal(matches({ v: { $vgt: "1.0.0-rc.1" } }, { v: "v1.0.0+build" }), true);
  assert.equal(matches({ s: { $lt: "b" } }, { s: "\u{1F600}" }), false);
  assert.equal(matches({ a: { $gte: 18 } }, { a: "20" }), true);
});

test("a condition that throws on the user's attributes does not match", () => {
  const rules = compile({
    version: 1,
    experiments: [{ key: "e", status: "running", coverage: 1, hash_attribute: "id", seed: "e", hash_version: 2, condition: { age: 5 },
      variants: [{ key: "a", weight: 0.5 }, { key: "b", weight: 0.5 }] }],
  });
  const user = { id: "u1", get age() { throw new Error("no"); } };
  assert.deepEqual(rules.assign("e", user), { experiment: "e", variant: "a", value: null, in_experiment: false, reason: "condition" });
});

test("compiling never throws; each problem is a warning naming its experiment, with a code and data", () => {
  const base = { status: "running", coverage: 1, hash_attribute: "id", hash_version: 2, variants: [{ key: "a", weight: 0.5 }, { key: "b", weight: 0.5 }] };
  const rules = compile({
    version: 7,
    experiments: [
      { ...base, key: "regex", condition: { email: { $regex: "(?<=x)y" } } },
      { ...base, key: "weights", variants: [{ key: "a", weight: 0.9 }, { key: "b", weight: 0.9 }] },
      { ...base, key: "weights" },
      { ...base, key: "ship", status: "shipped", shipped_variant: "gone" },
      { ...base, key: "v3", hash_version: 3 },
      "nonsense",
    ],
  });
  assert.equal(rules.version, 7);
  assert.deepEqual(rules.warnings, [
    { experiment: "regex", code: "invalid_condition", path: "condition.email.$regex" },
    { experiment: "weights", code: "weights_sum", value: [0.9, 0.9] },
    { experiment: "weights", code: "duplicate_key" },
    { experiment: "ship", code: "unknown_shipped_variant", value: "gone" },
    { experiment: "v3", code: "unknown_hash_version", value: 3 },
    { experiment: "experiments[5]", code: "no_key" },
  ]);
  assert.deepEqual(rules.assignAll({ id: "u1" }).map((a) => [a.experiment, a.variant, a.reason]), [
    ["regex", "a", "invalid_rule"], ["weights", "b", "split"], ["ship", "a", "shipped"], ["v3", "a", "invalid_rule"],
  ]);
  assert.deepEqual(compile(null).assignAll({ id: "u1" }), []);
});

test("every kind of warning: its code and data, and describeWarning gives the words compile used to give", () => {
  const base = { status: "running", coverage: 1, hash_attribute: "id", hash_version: 2, variants: [{ key: "a", weight: 0.5 }, { key: "b", weight: 0.5 }] };
  const rules = compile({
    version: 3,
    experiments: [
      { ...base, key: "hash_attribute", hash_attribute: "" },
      { ...base, key: "variants", variants: { a: 1 } },
      { ...base, key: "variant", variants: [{ key: "a", weight: 0.5 }, { weight: 0.5 }] },
      { ...base, key: "one", variants: [{ key: "a" }] },
      { ...base, key: "twice", variants: [{ key: "a", weight: 0.5 }, { key: "a", weight: 0.5 }] },
      { ...base, key: "v3", hash_version: 3 },
      { ...base, key: "ns", namespace: { name: "n", range: [0, "x"] } },
      { ...base, key: "slice", namespace: { name: "n", range: [0.5, 1.5] } },
      { ...base, key: "condition", condition: { email: { $regex: "(?<=x)y" } } },
      { ...base, key: "top", condition: 5 },
      { ...base, key: "shipped", status: "shipped" },
      { ...base, key: "gone", status: "shipped", shipped_variant: "gone" },
      { ...base, key: "status", status: "live" },
      { ...base, key: "coverage", coverage: 1.5 },
      { ...base, key: "coverage_text", coverage: "0.5" },
      { ...base, key: "weights", variants: [{ key: "a", weight: -1 }, { key: "b", weight: 2 }] },
      { ...base, key: "sum", variants: [{ key: "a", weight: 0.9 }, { key: "b", weight: 0.9 }] },
      { ...base, key: "sum" },
      "nonsense",
    ],
  });
  const warnings = [...rules.warnings, ...compile({}).warnings];
  // Each warning, and the message compile gave for it before warnings had codes.
  const expected = [
    [{ experiment: "hash_attribute", code: "empty_hash_attribute" }, 'hash_attribute "": using "id"'],
    [{ experiment: "variants", code: "variants_not_array" }, "variants: not an array: control for all"],
    [{ experiment: "variants", code: "too_few_variants", value: 0 }, "0 variants: control for all"],
    [{ experiment: "variant", code: "variant_without_key", path: "variants[1]" }, "variants[1]: no key: control for all"],
    [{ experiment: "one", code: "too_few_variants", value: 1 }, "1 variants: control for all"],
    [{ experiment: "twice", code: "duplicate_variant", value: "a" }, "variant a twice: control for all"],
    [{ experiment: "v3", code: "unknown_hash_version", value: 3 }, "hash_version 3: control for all"],
    [{ experiment: "ns", code: "invalid_namespace", value: { name: "n", range: [0, "x"] } }, "namespace: no name or finite range: control for all"],
    [{ experiment: "slice", code: "namespace_range", value: [0.5, 1.5] }, "namespace [0.5, 1.5): empty or outside 0..1"],
    [{ experiment: "condition", code: "invalid_condition", path: "condition.email.$regex" }, "condition invalid at email.$regex: control for all"],
    [{ experiment: "top", code: "invalid_condition", path: "condition" }, "condition invalid: control for all"],
    [{ experiment: "shipped", code: "no_shipped_variant" }, "no shipped_variant: control"],
    [{ experiment: "gone", code: "unknown_shipped_variant", value: "gone" }, "shipped_variant gone: unknown, control"],
    [{ experiment: "status", code: "unknown_status", value: "live" }, "status live: control for all"],
    [{ experiment: "coverage", code: "coverage_clamped", value: 1.5 }, "coverage 1.5: using 1"],
    [{ experiment: "coverage_text", code: "coverage_clamped", value: "0.5" }, "coverage NaN: using 0"],
    [{ experiment: "weights", code: "weights_invalid", value: [-1, 2] }, "weights: not finite and >= 0: equal weights"],
    [{ experiment: "sum", code: "weights_sum", value: [0.9, 0.9] }, "weights: sum is not 1: equal weights"],
    [{ experiment: "sum", code: "duplicate_key" }, "duplicate key: skipped"],
    [{ experiment: "experiments[18]", code: "no_key" }, "no key: skipped"],
    [{ experiment: "", code: "no_experiments" }, "no experiments array"],
  ];
  assert.deepEqual(warnings, expected.map(([w]) => w));
  assert.deepEqual(warnings.map(describeWarning), expected.map(([, m]) => m));
  // Every code is covered.
  assert.equal(new Set(warnings.map((w) => w.code)).size, 18);
});

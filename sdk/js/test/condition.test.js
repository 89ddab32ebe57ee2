// Strict compilation and the spec's own corners of the condition language
// (SPEC.md §6), beyond GrowthBook's conformance cases. The problems in words
// come from the diagnostics entry point, imported as a tool would.
import { test } from "node:test";
import assert from "node:assert/strict";
import { compile } from "../dist/index.js";
import { compileCondition } from "@sluice/sdk/diagnostics";

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

test("compiling never throws; each problem is a warning naming its experiment", () => {
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
    { experiment: "regex", message: "condition invalid at email.$regex: control for all" },
    { experiment: "weights", message: "weights: sum is not 1: equal weights" },
    { experiment: "weights", message: "duplicate key: skipped" },
    { experiment: "ship", message: "shipped_variant gone: unknown, control" },
    { experiment: "v3", message: "hash_version 3: control for all" },
    { experiment: "experiments[5]", message: "no key: skipped" },
  ]);
  assert.deepEqual(rules.assignAll({ id: "u1" }).map((a) => [a.experiment, a.variant, a.reason]), [
    ["regex", "a", "invalid_rule"], ["weights", "b", "split"], ["ship", "a", "shipped"], ["v3", "a", "invalid_rule"],
  ]);
  assert.deepEqual(compile(null).assignAll({ id: "u1" }), []);
});

// The main entry as an app ships it: the bundle `npm run size` measures,
// loaded as is. Invalid conditions still make their rules invalid there,
// without a throw and with the JSON path of the problem, although the words
// for problems and warnings live only in @sluice/sdk/diagnostics.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { minifiedBundle } from "../bench/bundle.js";

const code = await minifiedBundle("../dist/index.js");
const dir = mkdtempSync(join(tmpdir(), "sluice-bundle-"));
writeFileSync(join(dir, "sdk.mjs"), code);
const sdk = await import(pathToFileURL(join(dir, "sdk.mjs")).href);
rmSync(dir, { recursive: true, force: true });

const variants = [{ key: "control", weight: 0.5, value: 1 }, { key: "treatment", weight: 0.5, value: 2 }];
const rule = (key, condition) => ({ key, status: "running", coverage: 1, hash_attribute: "id", seed: key, hash_version: 2, condition, variants });

test("the main bundle serves control for a rule with an invalid condition, naming where it is wrong", () => {
  const invalid = {
    lookaround: [{ email: { $regex: "(?<=x)y" } }, "email.$regex"],
    unclosed: [{ country: { $regex: "(unclosed" } }, "country.$regex"],
    operator: [{ age: { $between: [1, 2] } }, "age.$between"],
    nested: [{ $and: [{ a: 1 }, { age: { $gt: [1] } }] }, "$and[1].age.$gt"],
    member: [{ tags: { $in: ["a", ["b"]] } }, "tags.$in[1]"],
    group: [{ id: { $inGroup: "beta" } }, "id.$inGroup"],
    mixed: [{ a: { $eq: 1, b: 2 } }, "a"],
  };
  const experiments = [
    ...Object.entries(invalid).map(([key, [condition]]) => rule(key, condition)),
    rule("top", 5),
    rule("valid", { country: "CN" }),
  ];
  const rules = sdk.compile({ version: 1, experiments });
  assert.deepEqual(rules.warnings, [
    ...Object.entries(invalid).map(([key, [, at]]) => ({ experiment: key, code: "invalid_condition", path: `condition.${at}` })),
    { experiment: "top", code: "invalid_condition", path: "condition" },
  ]);
  const user = { id: "u1", email: "xy", country: "CN", age: 30, tags: ["a"], a: 1 };
  for (const a of rules.assignAll(user).slice(0, -1)) {
    assert.deepEqual(a, { experiment: a.experiment, variant: "control", value: 1, in_experiment: false, reason: "invalid_rule" });
  }
  assert.equal(rules.assign("valid", user).reason, "split");
});

test("the words for condition problems and warnings are not in the main bundle", () => {
  const text = new TextDecoder().decode(code);
  for (const words of ["expected a", "unknown group", "unknown operator", "look-around", "back-references", "mixes operators",
    "control for all", "equal weights", "condition invalid", "no experiments array", "empty or outside"]) {
    assert.ok(!text.includes(words), words);
  }
});

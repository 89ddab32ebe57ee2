// GrowthBook's cross-SDK conformance cases, the sections the Rust SDK runs
// (sdk/rust/tests/growthbook_conformance.rs): hash, getBucketRange,
// chooseVariation, getEqualWeights, inNamespace and evalCondition (lenient,
// with saved groups). The file lives in the shared directory beside the repo.
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { hash } from "../dist/hash.js";
import { chooseVariation, getBucketRanges, getEqualWeights, inNamespace } from "../dist/bucket.js";
import { compileCondition } from "@sluice/sdk/diagnostics";

const path = fileURLToPath(new URL("../../../../shared/conformance/growthbook-cases.json", import.meta.url));
const cases = existsSync(path) ? JSON.parse(readFileSync(path, "utf8")) : null;
const skip = cases ? false : `skipping: ${path} absent`;
if (skip) console.log(skip);

/** GrowthBook's tests round to a few decimals before comparing. */
const round = (x, decimals) => Math.round(x * 10 ** decimals) / 10 ** decimals;
const closeTo = (got, expected, decimals) => assert.ok(Math.abs(round(got, decimals) - expected) < 1e-6, `${got} vs ${expected}`);

test("hash", { skip }, () => {
  assert.equal(cases.hash.length, 15);
  for (const [seed, value, version, expected] of cases.hash) {
    const got = hash(seed, value, version);
    if (expected === null) assert.equal(got, null);
    else closeTo(got, expected, 5);
  }
});

test("getBucketRange", { skip }, () => {
  assert.equal(cases.getBucketRange.length, 13);
  for (const [name, [n, coverage, weights], expected] of cases.getBucketRange) {
    const got = getBucketRanges(n, coverage, weights);
    assert.equal(got.length, expected.length, name);
    got.forEach(([lo, hi], i) => {
      closeTo(lo, expected[i][0], 6);
      closeTo(hi, expected[i][1], 6);
    });
  }
});

test("chooseVariation", { skip }, () => {
  assert.equal(cases.chooseVariation.length, 13);
  for (const [name, n, ranges, expected] of cases.chooseVariation) assert.equal(chooseVariation(n, ranges), expected, name);
});

test("getEqualWeights", { skip }, () => {
  assert.equal(cases.getEqualWeights.length, 6);
  for (const [n, expected] of cases.getEqualWeights) {
    const got = getEqualWeights(n);
    assert.equal(got.length, expected.length);
    got.forEach((w, i) => closeTo(w, expected[i], 8));
  }
});

test("inNamespace", { skip }, () => {
  assert.equal(cases.inNamespace.length, 16);
  for (const [name, id, [ns, lo, hi], expected] of cases.inNamespace) assert.equal(inNamespace(ns, [lo, hi])(id), expected, name);
});

test("evalCondition", { skip }, () => {
  assert.equal(cases.evalCondition.length, 248);
  const failures = cases.evalCondition.filter(([, condition, attributes, expected, groups]) =>
    compileCondition(condition, groups ?? {}).predicate(attributes) !== expected);
  assert.deepEqual(failures.map(([name]) => name), []);
});

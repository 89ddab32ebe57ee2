// Bucket ranges, coverage and namespaces (SPEC.md §4), as GrowthBook defines them.

import { hasher } from "./hash.js";

/** A half-open range [start, end) of the hash space. */
export type BucketRange = [number, number];

/** `n` weights of 1/n each (none for n <= 0). */
export function getEqualWeights(n: number): number[] {
  return n > 0 ? new Array<number>(n).fill(1 / n) : [];
}

/** Why a set of weights cannot be used (a warning code), or null when it can. */
export function weightProblem(n: number, weights: readonly number[]): "weights_count" | "weights_invalid" | "weights_sum" | null {
  if (weights.length !== n) return "weights_count";
  if (weights.some((w) => !Number.isFinite(w) || w < 0)) return "weights_invalid";
  const total = weights.reduce((a, b) => a + b, 0);
  return total >= 0.99 && total <= 1.01 ? null : "weights_sum";
}

/** Coverage clamped to [0, 1]; NaN counts as 0. */
export function clampCoverage(coverage: number): number {
  return coverage > 0 ? Math.min(coverage, 1) : 0;
}

/** One range per variant; coverage shrinks each in place, bad weights become equal ones. */
export function getBucketRanges(n: number, coverage: number, weights?: readonly number[] | null): BucketRange[] {
  const c = clampCoverage(coverage);
  const w = weights && weightProblem(n, weights) === null ? weights : getEqualWeights(n);
  let start = 0;
  return w.map((weight) => {
    const range: BucketRange = [start, start + c * weight];
    start += weight;
    return range;
  });
}

/** The index of the first range holding `n`, or -1. */
export function chooseVariation(n: number, ranges: readonly BucketRange[]): number {
  return ranges.findIndex((r) => n >= r[0] && n < r[1]);
}

/** Whether a unit id falls in [lo, hi) of namespace `name` (hash version 1, seed "__" + name), as a test built once. */
export function inNamespace(name: string, [lo, hi]: readonly [number, number]): (unitId: string) => boolean {
  const hash = hasher("__" + name, 1);
  return (id) => {
    const n = hash(id);
    return n >= lo && n < hi;
  };
}

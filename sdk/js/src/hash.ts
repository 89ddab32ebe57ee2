// Deterministic bucketing, bit-compatible with GrowthBook and sluice-sdk
// (SPEC.md §3): 32-bit FNV-1a over the UTF-16 code units of a string.

/** FNV-1a 32 offset basis: the state before any input. */
export const FNV_OFFSET = 0x811c9dc5;
const FNV_PRIME = 0x01000193;

/** Continues an FNV-1a state with the UTF-16 code units of `s`. */
export function fnvFeed(state: number, s: string): number {
  let h = state;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), FNV_PRIME);
  return h >>> 0;
}

/** FNV-1a 32 of `s`'s UTF-16 code units, as an unsigned integer. */
export function fnv1a32(s: string): number {
  return fnvFeed(FNV_OFFSET, s);
}

/** Version 1 bucket (0..999) from the state after `id + seed`. */
export function bucketV1(state: number): number {
  return state % 1000;
}

/** Version 2 bucket (0..9999) from the state after `seed + id`. */
export function bucketV2(state: number): number {
  return fnv1a32(String(state)) % 10000;
}

/** GrowthBook's `hash(seed, value, version)`: a number in [0, 1), or null for an unknown version. */
export function hash(seed: string, value: string, version: number): number | null {
  if (version === 1) return bucketV1(fnvFeed(fnv1a32(value), seed)) / 1000;
  if (version === 2) return bucketV2(fnvFeed(fnv1a32(seed), value)) / 10000;
  return null;
}

// Deterministic bucketing, bit-compatible with GrowthBook and sluice-sdk
// (SPEC.md §3): 32-bit FNV-1a over the UTF-16 code units of a string.

const FNV_OFFSET = 0x811c9dc5;
const FNV_PRIME = 0x01000193;

/** FNV-1a 32 of `s`'s UTF-16 code units, as an unsigned integer; `h` continues an earlier hash. */
export function fnv1a32(s: string, h = FNV_OFFSET): number {
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), FNV_PRIME);
  return h >>> 0;
}

/**
 * `hash(seed, id, version)` as a function of the id, in [0, 1). Version 1
 * hashes `id + seed` (mod 1000); version 2 hashes the decimal of the hash of
 * `seed + id` (mod 10 000), with the seed's state computed once here.
 */
export function hasher(seed: string, version: 1 | 2): (id: string) => number {
  if (version === 1) return (id) => (fnv1a32(seed, fnv1a32(id)) % 1000) / 1000;
  const seeded = fnv1a32(seed);
  return (id) => (fnv1a32(String(fnv1a32(id, seeded))) % 10000) / 10000;
}

/** GrowthBook's `hash(seed, value, version)`: a number in [0, 1), or null for an unknown version. */
export function hash(seed: string, value: string, version: number): number | null {
  return version === 1 || version === 2 ? hasher(seed, version)(value) : null;
}

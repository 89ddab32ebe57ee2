//! Deterministic bucketing hashes, bit-compatible with GrowthBook.
//!
//! GrowthBook's reference (JavaScript) SDK runs 32-bit FNV-1a over the
//! UTF-16 code units of a string (`charCodeAt`), not over UTF-8 bytes; for
//! ASCII the two agree, for anything else they do not. We hash UTF-16 units
//! too, streaming them from the `&str` pieces so nothing is concatenated or
//! allocated:
//!
//! - version 1: `(fnv(value + seed) % 1000) / 1000` — the original, slightly
//!   biased scheme, kept for experiments started with it;
//! - version 2: `(fnv(String(fnv(seed + value))) % 10000) / 10000`.

/// FNV-1a 32-bit offset basis.
pub const FNV_OFFSET: u32 = 0x811c_9dc5;
/// FNV-1a 32-bit prime.
pub const FNV_PRIME: u32 = 0x0100_0193;

/// An FNV-1a 32 state that can be fed UTF-16 code units incrementally.
///
/// Feeding is associative: hashing `a` then `b` equals hashing `a + b`, which
/// lets the evaluator hash a seed once at compile time and resume from there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fnv1a32(u32);

impl Default for Fnv1a32 {
    fn default() -> Self {
        Fnv1a32(FNV_OFFSET)
    }
}

impl Fnv1a32 {
    /// A fresh state (the offset basis).
    pub const fn new() -> Self {
        Fnv1a32(FNV_OFFSET)
    }

    /// Feeds one UTF-16 code unit.
    #[inline(always)]
    pub fn unit(self, u: u16) -> Self {
        Fnv1a32((self.0 ^ u32::from(u)).wrapping_mul(FNV_PRIME))
    }

    /// Feeds the UTF-16 code units of `s`.
    #[inline]
    pub fn str(self, s: &str) -> Self {
        let bytes = s.as_bytes();
        let mut h = self.0;
        let mut i = 0;
        // ASCII bytes are their own UTF-16 code units: the common case needs
        // no decoding.
        while let Some(&b) = bytes.get(i) {
            if b >= 0x80 {
                break;
            }
            h = (h ^ u32::from(b)).wrapping_mul(FNV_PRIME);
            i += 1;
        }
        // `i` is at a char boundary: every byte before it was ASCII.
        if let Some(rest) = s.get(i..) {
            for u in rest.encode_utf16() {
                h = (h ^ u32::from(u)).wrapping_mul(FNV_PRIME);
            }
        }
        Fnv1a32(h)
    }

    /// Feeds the decimal digits of `n` (what JS's `n + ""` gives for a u32).
    #[inline]
    pub fn decimal(self, n: u32) -> Self {
        let (digits, start) = decimal_digits(n);
        let mut h = self.0;
        for &b in digits.get(start..).unwrap_or_default() {
            h = (h ^ u32::from(b)).wrapping_mul(FNV_PRIME);
        }
        Fnv1a32(h)
    }

    /// The hash value.
    pub const fn finish(self) -> u32 {
        self.0
    }
}

/// The ten decimal digits of `n` (ASCII, zero-padded) and the index of the
/// first significant one. Every digit is computed from `n` directly with a
/// constant divisor, so they come out in parallel rather than through a
/// chain of divisions; hashing can start on the leading digit at once.
#[inline]
#[allow(clippy::cast_possible_truncation)] // every value is < 10
pub(crate) fn decimal_digits(n: u32) -> ([u8; 10], usize) {
    let d = |div: u32| b'0' + ((n / div) % 10) as u8;
    let digits = [
        b'0' + (n / 1_000_000_000) as u8,
        d(100_000_000),
        d(10_000_000),
        d(1_000_000),
        d(100_000),
        d(10_000),
        d(1_000),
        d(100),
        d(10),
        b'0' + (n % 10) as u8,
    ];
    let len = 1
        + usize::from(n >= 10)
        + usize::from(n >= 100)
        + usize::from(n >= 1_000)
        + usize::from(n >= 10_000)
        + usize::from(n >= 100_000)
        + usize::from(n >= 1_000_000)
        + usize::from(n >= 10_000_000)
        + usize::from(n >= 100_000_000)
        + usize::from(n >= 1_000_000_000);
    (digits, 10 - len)
}

/// FNV-1a 32 over the UTF-16 code units of `s` (GrowthBook's `hashFnv32a`).
pub fn fnv1a32(s: &str) -> u32 {
    Fnv1a32::new().str(s).finish()
}

/// FNV-1a 32 over arbitrary UTF-16 code units (for ids that are not valid
/// Unicode, such as lone surrogates coming from a JS runtime).
pub fn fnv1a32_utf16(units: impl IntoIterator<Item = u16>) -> u32 {
    units
        .into_iter()
        .fold(Fnv1a32::new(), Fnv1a32::unit)
        .finish()
}

/// GrowthBook's `hash(seed, value, version)`: a number in `[0, 1)`, or `None`
/// for a hash version other than 1 and 2.
pub fn hash(seed: &str, value: &str, version: u32) -> Option<f64> {
    match version {
        1 => Some(finish_v1(Fnv1a32::new().str(value).str(seed))),
        2 => Some(finish_v2(Fnv1a32::new().str(seed).str(value))),
        _ => None,
    }
}

/// Buckets per hash version: the hash is `bucket / SCALE`.
pub(crate) const V1_SCALE: u32 = 1000;
/// See [`V1_SCALE`].
pub(crate) const V2_SCALE: u32 = 10000;

/// Version 1 bucket (0..1000) from the state after `value + seed`.
#[inline]
pub(crate) fn bucket_v1(state: Fnv1a32) -> u32 {
    state.finish() % V1_SCALE
}

/// Version 2 bucket (0..10000) from the state after `seed + value`.
#[inline]
pub(crate) fn bucket_v2(state: Fnv1a32) -> u32 {
    Fnv1a32::new().decimal(state.finish()).finish() % V2_SCALE
}

/// Version 1 from the state after `value + seed`.
#[inline]
pub(crate) fn finish_v1(state: Fnv1a32) -> f64 {
    f64::from(bucket_v1(state)) / f64::from(V1_SCALE)
}

/// Version 2 from the state after `seed + value`.
#[inline]
pub(crate) fn finish_v2(state: Fnv1a32) -> f64 {
    f64::from(bucket_v2(state)) / f64::from(V2_SCALE)
}

/// Number of experiments hashed together by [`buckets_v2_lanes`].
pub(crate) const LANES: usize = 8;

/// Version 2 buckets of one unit id under [`LANES`] seeds at once.
///
/// FNV is a serial chain of multiplications; hashing several seeds in
/// lock-step lets the CPU (and the vectoriser) overlap the chains, which is
/// what makes `assign_all` over many experiments cheap.
pub(crate) fn buckets_v2_lanes(seeds: &[Fnv1a32; LANES], id: &str) -> [u32; LANES] {
    let mut h = seeds.map(Fnv1a32::finish);
    let mut feed = |u: u32| {
        for x in &mut h {
            *x = (*x ^ u).wrapping_mul(FNV_PRIME);
        }
    };
    if id.is_ascii() {
        id.bytes().for_each(|b| feed(u32::from(b)));
    } else {
        id.encode_utf16().for_each(|u| feed(u32::from(u)));
    }
    // Decimal digits of every lane, most significant first, in lock-step
    // (no data-dependent branches, so the lanes overlap).
    let mut digits = [[0u32; LANES]; 10];
    let mut n = h;
    for p in (0..10).rev() {
        for l in 0..LANES {
            digits[p][l] = u32::from(b'0') + n[l] % 10;
            n[l] /= 10;
        }
    }
    // Number of digits; leading zeros are not part of JS's `n + ""`.
    let mut len = [1u32; LANES];
    for pow in [
        10u32,
        100,
        1_000,
        10_000,
        100_000,
        1_000_000,
        10_000_000,
        100_000_000,
        1_000_000_000,
    ] {
        for l in 0..LANES {
            len[l] += u32::from(h[l] >= pow);
        }
    }
    let mut out = [FNV_OFFSET; LANES];
    for (p, row) in (0u32..).zip(&digits) {
        for l in 0..LANES {
            let next = (out[l] ^ row[l]).wrapping_mul(FNV_PRIME);
            out[l] = if p + len[l] >= 10 { next } else { out[l] };
        }
    }
    out.map(|o| o % V2_SCALE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv_reference_values() {
        // Standard FNV-1a 32 test vectors (ASCII, so UTF-16 == bytes).
        assert_eq!(fnv1a32(""), 0x811c9dc5);
        assert_eq!(fnv1a32("a"), 0xe40c292c);
        assert_eq!(fnv1a32("foobar"), 0xbf9cf968);
    }

    #[test]
    fn utf16_not_utf8() {
        // "é" is one UTF-16 unit (0xE9) but two UTF-8 bytes.
        let expected = (FNV_OFFSET ^ 0xE9).wrapping_mul(FNV_PRIME);
        assert_eq!(fnv1a32("é"), expected);
        // An astral char is two units (a surrogate pair).
        assert_eq!(fnv1a32("😀"), fnv1a32_utf16([0xD83D, 0xDE00]));
    }

    #[test]
    fn decimal_matches_formatting() {
        // Both sides of every digit-count boundary.
        let mut cases = vec![0u32, 7, 123_456, u32::MAX];
        for p in (0..10).map(|e| 10u32.pow(e)) {
            cases.extend([p - 1, p, p + 1]);
        }
        for n in cases {
            assert_eq!(Fnv1a32::new().decimal(n).finish(), fnv1a32(&n.to_string()));
        }
    }

    #[test]
    fn lanes_agree_with_one_at_a_time() {
        for id in ["u1", "user-000042", "ユーザー", "😀x", ""] {
            let seeds: [Fnv1a32; LANES] =
                std::array::from_fn(|l| Fnv1a32::new().str(&format!("seed-{l}")));
            let lanes = buckets_v2_lanes(&seeds, id);
            for l in 0..LANES {
                assert_eq!(lanes[l], bucket_v2(seeds[l].str(id)), "{id} lane {l}");
            }
        }
    }

    #[test]
    fn unknown_version_is_none() {
        assert_eq!(hash("a", "b", 3), None);
        assert_eq!(hash("a", "b", 0), None);
    }
}

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
        let mut h = self.0;
        if s.is_ascii() {
            // ASCII bytes are their own UTF-16 code units.
            for &b in s.as_bytes() {
                h = (h ^ u32::from(b)).wrapping_mul(FNV_PRIME);
            }
        } else {
            for u in s.encode_utf16() {
                h = (h ^ u32::from(u)).wrapping_mul(FNV_PRIME);
            }
        }
        Fnv1a32(h)
    }

    /// Feeds the decimal digits of `n` (what JS's `n + ""` gives for a u32),
    /// formatted in a stack buffer.
    #[inline]
    pub fn decimal(self, mut n: u32) -> Self {
        let mut buf = [0u8; 10];
        let mut i = buf.len();
        loop {
            i -= 1;
            // n % 10 < 10, so the cast is lossless.
            #[allow(clippy::cast_possible_truncation)]
            let d = (n % 10) as u8;
            buf[i] = b'0' + d;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        let mut h = self.0;
        for &b in &buf[i..] {
            h = (h ^ u32::from(b)).wrapping_mul(FNV_PRIME);
        }
        Fnv1a32(h)
    }

    /// The hash value.
    pub const fn finish(self) -> u32 {
        self.0
    }
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

/// Version 1 from the state after `value + seed`.
#[inline]
pub(crate) fn finish_v1(state: Fnv1a32) -> f64 {
    f64::from(state.finish() % 1000) / 1000.0
}

/// Version 2 from the state after `seed + value`.
#[inline]
pub(crate) fn finish_v2(state: Fnv1a32) -> f64 {
    let outer = Fnv1a32::new().decimal(state.finish()).finish();
    f64::from(outer % 10000) / 10000.0
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
        for n in [0u32, 7, 10, 4_294_967_295, 123_456] {
            assert_eq!(Fnv1a32::new().decimal(n).finish(), fnv1a32(&n.to_string()));
        }
    }

    #[test]
    fn unknown_version_is_none() {
        assert_eq!(hash("a", "b", 3), None);
        assert_eq!(hash("a", "b", 0), None);
    }
}

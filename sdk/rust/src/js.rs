//! JavaScript value semantics that GrowthBook's reference SDK relies on.
//!
//! GrowthBook's condition language and hashing are defined by what its
//! JavaScript SDK does: `value + ""`, `value * 1`, `<` between mixed types,
//! `Number.prototype.toString`, and string comparison by UTF-16 code units.
//! This module reproduces exactly those conversions for JSON values, without
//! allocating in the common cases (strings and numbers), so the rest of the
//! crate can be written in plain Rust terms.

use std::cmp::Ordering;
use std::fmt::{self, Write as _};

use serde_json::{Number, Value};

/// A fixed-size stack buffer implementing `fmt::Write`, used to format
/// numbers without touching the heap. 48 bytes fit every JS number string
/// (the longest is like `-1.2345678901234567e-308`, 24 bytes).
pub(crate) struct StackStr {
    buf: [u8; 48],
    len: usize,
}

impl StackStr {
    pub(crate) const fn new() -> Self {
        StackStr {
            buf: [0; 48],
            len: 0,
        }
    }

    pub(crate) fn as_str(&self) -> &str {
        // Only whole `&str` chunks are ever appended, so the prefix is valid UTF-8.
        std::str::from_utf8(&self.buf[..self.len]).unwrap_or("")
    }
}

impl fmt::Write for StackStr {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let end = self.len + s.len();
        if end > self.buf.len() {
            return Err(fmt::Error);
        }
        self.buf[self.len..end].copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

/// Formats an `f64` exactly as JavaScript's `Number.prototype.toString()`
/// (ECMA-262 Number::toString with radix 10).
pub(crate) fn write_js_f64<W: fmt::Write>(x: f64, out: &mut W) -> fmt::Result {
    if x.is_nan() {
        return out.write_str("NaN");
    }
    if x == 0.0 {
        // Both +0 and -0 print as "0".
        return out.write_str("0");
    }
    if x.is_infinite() {
        return out.write_str(if x < 0.0 { "-Infinity" } else { "Infinity" });
    }
    // Integers below 2^53 print as integers; this is the common case.
    if x.fract() == 0.0 && x.abs() < 9_007_199_254_740_992.0 {
        // The range check above makes the cast lossless.
        #[allow(clippy::cast_possible_truncation)]
        return write!(out, "{}", x as i64);
    }
    // Rust's `{:e}` prints the shortest digits that round-trip, which is what
    // ECMA-262 asks for too; only the layout differs.
    let mut sci = StackStr::new();
    write!(sci, "{:e}", x.abs())?;
    let s = sci.as_str();
    let (mantissa, exp) = s.split_once('e').ok_or(fmt::Error)?;
    let exp: i32 = exp.parse().map_err(|_| fmt::Error)?;
    let mut digits = [0u8; 24];
    let mut k = 0usize;
    for b in mantissa.bytes().filter(u8::is_ascii_digit) {
        if k < digits.len() {
            digits[k] = b;
            k += 1;
        }
    }
    let digits = &digits[..k];
    let digit_str = std::str::from_utf8(digits).map_err(|_| fmt::Error)?;
    // value = 0.d1d2...dk * 10^n
    let n = exp + 1;
    let k = k as i32;
    if x < 0.0 {
        out.write_str("-")?;
    }
    if k <= n && n <= 21 {
        out.write_str(digit_str)?;
        for _ in 0..(n - k) {
            out.write_str("0")?;
        }
        Ok(())
    } else if 0 < n && n <= 21 {
        let (int, frac) = digit_str.split_at(n as usize);
        out.write_str(int)?;
        out.write_str(".")?;
        out.write_str(frac)
    } else if -6 < n && n <= 0 {
        out.write_str("0.")?;
        for _ in 0..(-n) {
            out.write_str("0")?;
        }
        out.write_str(digit_str)
    } else {
        let (first, rest) = digit_str.split_at(1);
        out.write_str(first)?;
        if !rest.is_empty() {
            out.write_str(".")?;
            out.write_str(rest)?;
        }
        let e = n - 1;
        write!(out, "e{}{}", if e < 0 { '-' } else { '+' }, e.abs())
    }
}

/// A JSON number as JavaScript sees it: a double.
pub(crate) fn number_f64(n: &Number) -> f64 {
    n.as_f64().unwrap_or(f64::NAN)
}

/// Formats a JSON number like JavaScript would after `JSON.parse`.
pub(crate) fn write_js_number<W: fmt::Write>(n: &Number, out: &mut W) -> fmt::Result {
    // Integers that a double holds exactly print directly; others go through
    // f64 like JS does (so 2^64-1 prints as 18446744073709552000).
    if let Some(i) = n.as_i64() {
        if i.unsigned_abs() <= 9_007_199_254_740_992 {
            return write!(out, "{i}");
        }
    } else if let Some(u) = n.as_u64() {
        if u <= 9_007_199_254_740_992 {
            return write!(out, "{u}");
        }
    }
    write_js_f64(number_f64(n), out)
}

/// `String(value)` in JavaScript, streamed into `out`.
///
/// `None` stands for a missing attribute: GrowthBook's path lookup turns a
/// missing attribute into `null`, so both print as "null".
pub(crate) fn write_js_string<W: fmt::Write>(value: Option<&Value>, out: &mut W) -> fmt::Result {
    match value {
        None | Some(Value::Null) => out.write_str("null"),
        Some(Value::Bool(b)) => out.write_str(if *b { "true" } else { "false" }),
        Some(Value::Number(n)) => write_js_number(n, out),
        Some(Value::String(s)) => out.write_str(s),
        Some(Value::Array(items)) => write_js_array_join(items, out),
        Some(Value::Object(_)) => out.write_str("[object Object]"),
    }
}

/// `Array.prototype.join(",")`: null elements become empty strings.
fn write_js_array_join<W: fmt::Write>(items: &[Value], out: &mut W) -> fmt::Result {
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.write_str(",")?;
        }
        match item {
            Value::Null => {}
            other => write_js_string(Some(other), out)?,
        }
    }
    Ok(())
}

/// `String(value)` as an owned string; for the rare paths that need a `&str`
/// of a non-string value (regex matching of numbers, lower-casing).
pub(crate) fn js_string(value: Option<&Value>) -> String {
    let mut s = String::new();
    // Writing into a String cannot fail.
    let _ = write_js_string(value, &mut s);
    s
}

/// JavaScript truthiness (`!!value`).
pub(crate) fn truthy(value: Option<&Value>) -> bool {
    match value {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(Value::Number(n)) => {
            let f = number_f64(n);
            f != 0.0 && !f.is_nan()
        }
        Some(Value::String(s)) => !s.is_empty(),
        Some(Value::Array(_)) | Some(Value::Object(_)) => true,
    }
}

/// `Number(value)` (ECMA-262 ToNumber) for a JSON value.
pub(crate) fn to_number(value: Option<&Value>) -> f64 {
    match value {
        None | Some(Value::Null) => 0.0,
        Some(Value::Bool(b)) => f64::from(u8::from(*b)),
        Some(Value::Number(n)) => number_f64(n),
        Some(Value::String(s)) => string_to_number(s),
        // ToPrimitive of an array is its join; of an object "[object Object]".
        Some(Value::Array(items)) => {
            let mut s = String::new();
            let _ = write_js_array_join(items, &mut s);
            string_to_number(&s)
        }
        Some(Value::Object(_)) => f64::NAN,
    }
}

/// JavaScript's white space and line terminators, which `Number()` trims.
fn is_js_space(c: char) -> bool {
    matches!(
        c,
        '\u{9}' | '\u{A}' | '\u{B}' | '\u{C}' | '\u{D}' | ' ' | '\u{A0}' | '\u{1680}' | '\u{2000}'
            ..='\u{200A}'
                | '\u{2028}'
                | '\u{2029}'
                | '\u{202F}'
                | '\u{205F}'
                | '\u{3000}'
                | '\u{FEFF}'
    )
}

/// ECMA-262 StringToNumber: trims white space; "" is 0; accepts decimal
/// literals, `Infinity` with an optional sign, and unsigned 0x/0o/0b integers.
pub(crate) fn string_to_number(s: &str) -> f64 {
    let t = s.trim_matches(is_js_space);
    if t.is_empty() {
        return 0.0;
    }
    let bytes = t.as_bytes();
    if bytes.len() > 2 && bytes[0] == b'0' {
        let radix = match bytes[1] {
            b'x' | b'X' => 16,
            b'o' | b'O' => 8,
            b'b' | b'B' => 2,
            _ => 0,
        };
        if radix != 0 {
            let mut acc = 0.0f64;
            for c in t[2..].chars() {
                match c.to_digit(radix) {
                    Some(d) => acc = acc * f64::from(radix) + f64::from(d),
                    None => return f64::NAN,
                }
            }
            return acc;
        }
    }
    let (sign, body) = match bytes[0] {
        b'-' => (-1.0, &t[1..]),
        b'+' => (1.0, &t[1..]),
        _ => (1.0, t),
    };
    if body == "Infinity" {
        return sign * f64::INFINITY;
    }
    if !is_decimal_literal(body.as_bytes()) {
        return f64::NAN;
    }
    // Validated above, so Rust's parser (correctly rounded) agrees with JS.
    body.parse::<f64>().map(|v| sign * v).unwrap_or(f64::NAN)
}

/// StrUnsignedDecimalLiteral: `digits [. digits] [e [+-] digits]` or
/// `. digits [e ...]`, with at least one digit in the mantissa.
fn is_decimal_literal(b: &[u8]) -> bool {
    let mut i = 0;
    let int_start = i;
    while i < b.len() && b[i].is_ascii_digit() {
        i += 1;
    }
    let mut mantissa_digits = i - int_start;
    if i < b.len() && b[i] == b'.' {
        i += 1;
        let frac_start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        mantissa_digits += i - frac_start;
    }
    if mantissa_digits == 0 {
        return false;
    }
    if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
        i += 1;
        if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
            i += 1;
        }
        let exp_start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == exp_start {
            return false;
        }
    }
    i == b.len()
}

/// Byte-order comparison (`str::cmp`) inlined for short strings: attribute
/// names and `$in` members are short, and a `memcmp` call costs more than
/// comparing a few bytes in place.
#[inline]
pub(crate) fn cmp_short(a: &str, b: &str) -> Ordering {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() > 32 || b.len() > 32 {
        return a.cmp(b);
    }
    for (x, y) in a.iter().zip(b) {
        if x != y {
            return x.cmp(y);
        }
    }
    a.len().cmp(&b.len())
}

/// The first 8 bytes of `s` as a big-endian integer, zero-padded: ordering
/// two prefixes orders the strings unless the prefixes are equal.
#[inline]
pub(crate) fn prefix8(s: &str) -> u64 {
    let b = s.as_bytes();
    let n = b.len();
    if let Some(first) = b.first_chunk::<8>() {
        return u64::from_be_bytes(*first);
    }
    if n >= 4 {
        // Two overlapping 4-byte loads cover 4..=7 bytes.
        let head = b.first_chunk::<4>().map_or(0, |w| u32::from_be_bytes(*w));
        let tail = b
            .get(n - 4..)
            .and_then(|t| t.first_chunk::<4>())
            .map_or(0, |w| u32::from_be_bytes(*w));
        return (u64::from(head) << 32) | (u64::from(tail) << (64 - 8 * n));
    }
    if n == 0 {
        return 0;
    }
    // 1..=3 bytes: first, middle and last (overlapping when n < 3).
    let at = |i: usize| u64::from(b.get(i).copied().unwrap_or(0)) << (56 - 8 * i);
    at(0) | at(n / 2) | at(n - 1)
}

/// String equality inlined for short strings (see [`cmp_short`]).
#[inline]
pub(crate) fn eq_short(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let n = a.len();
    if n != b.len() {
        return false;
    }
    // 8 to 16 bytes (experiment keys, ids): a word from each end
    // (overlapping), no loop.
    if (8..=16).contains(&n) {
        let ends = |s: &[u8]| (word(s, 0), word(s, n - 8));
        return ends(a) == ends(b);
    }
    if n > 32 {
        return a == b;
    }
    a.iter().zip(b).all(|(x, y)| x == y)
}

/// The 8 bytes of `s` at `at` (none when out of range).
#[inline(always)]
fn word(s: &[u8], at: usize) -> Option<u64> {
    let w = s.get(at..)?.first_chunk::<8>()?;
    Some(u64::from_ne_bytes(*w))
}

/// Compares two strings by UTF-16 code units, as JavaScript's `<` does.
/// (Differs from Rust's byte order only between U+E000..U+FFFF and astral
/// characters, but that is exactly where JS and Rust disagree.)
pub(crate) fn cmp_utf16(a: &str, b: &str) -> Ordering {
    // Fast path: identical byte prefixes compare the same in both orders.
    let common = a.bytes().zip(b.bytes()).take_while(|(x, y)| x == y).count();
    if common == a.len() || common == b.len() {
        return a.len().cmp(&b.len());
    }
    // Back up to a char boundary (both strings share the prefix).
    let mut start = common;
    while !a.is_char_boundary(start) {
        start -= 1;
    }
    let ca = a[start..].chars().next();
    let cb = b[start..].chars().next();
    match (ca, cb) {
        (Some(x), Some(y)) => utf16_key(x).cmp(&utf16_key(y)),
        _ => a.len().cmp(&b.len()),
    }
}

/// A sort key for one char that orders like its UTF-16 code units.
pub(crate) fn utf16_key(c: char) -> (u32, u32) {
    let c = c as u32;
    if c < 0x10000 {
        (c, 0)
    } else {
        let v = c - 0x10000;
        (0xD800 + (v >> 10), 0xDC00 + (v & 0x3FF))
    }
}

/// A `fmt::Write` sink that compares the text written to it with a target
/// string by UTF-16 code units, without buffering. It stops the writer early
/// (with `fmt::Error`) once the order is known.
pub(crate) struct CmpSink<'a> {
    rest: std::str::Chars<'a>,
    decided: Option<Ordering>,
}

impl<'a> CmpSink<'a> {
    pub(crate) fn new(target: &'a str) -> Self {
        CmpSink {
            rest: target.chars(),
            decided: None,
        }
    }

    /// The order of the written text relative to the target.
    pub(crate) fn finish(mut self) -> Ordering {
        match self.decided {
            Some(o) => o,
            None if self.rest.next().is_some() => Ordering::Less,
            None => Ordering::Equal,
        }
    }
}

impl fmt::Write for CmpSink<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        if self.decided.is_some() {
            return Err(fmt::Error);
        }
        for c in s.chars() {
            match self.rest.next() {
                None => {
                    self.decided = Some(Ordering::Greater);
                    return Err(fmt::Error);
                }
                Some(t) if t == c => {}
                Some(t) => {
                    self.decided = Some(utf16_key(c).cmp(&utf16_key(t)));
                    return Err(fmt::Error);
                }
            }
        }
        Ok(())
    }
}

/// `String(value) === target` without allocating.
#[inline]
pub(crate) fn js_string_eq(value: Option<&Value>, target: &str) -> bool {
    if let Some(Value::String(s)) = value {
        return eq_short(s, target);
    }
    let mut sink = CmpSink::new(target);
    let _ = write_js_string(value, &mut sink);
    sink.finish() == Ordering::Equal
}

/// A JavaScript primitive after ToPrimitive, for the relational operators.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Primitive<'a> {
    Str(std::borrow::Cow<'a, str>),
    Num(f64),
}

impl<'a> Primitive<'a> {
    /// ToPrimitive(value) then, for non-strings, ToNumber.
    pub(crate) fn of(value: Option<&'a Value>) -> Primitive<'a> {
        match value {
            Some(Value::String(s)) => Primitive::Str(std::borrow::Cow::Borrowed(s.as_str())),
            Some(Value::Array(_)) | Some(Value::Object(_)) => {
                Primitive::Str(std::borrow::Cow::Owned(js_string(value)))
            }
            other => Primitive::Num(to_number(other)),
        }
    }

    fn as_number(&self) -> f64 {
        match self {
            Primitive::Num(n) => *n,
            Primitive::Str(s) => string_to_number(s),
        }
    }
}

/// ECMA-262 IsLessThan(x, y): `Some(true/false)`, or `None` ("undefined")
/// when a NaN is involved.
pub(crate) fn less_than(x: &Primitive<'_>, y: &Primitive<'_>) -> Option<bool> {
    if let (Primitive::Str(a), Primitive::Str(b)) = (x, y) {
        return Some(cmp_utf16(a, b) == Ordering::Less);
    }
    let (a, b) = (x.as_number(), y.as_number());
    if a.is_nan() || b.is_nan() {
        None
    } else {
        Some(a < b)
    }
}

/// The four relational operators with JavaScript semantics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Relation {
    Lt,
    Lte,
    Gt,
    Gte,
}

/// `x < y`, `x <= y`, `x > y`, `x >= y` as JavaScript evaluates them.
pub(crate) fn relate(x: &Primitive<'_>, rel: Relation, y: &Primitive<'_>) -> bool {
    match rel {
        Relation::Lt => less_than(x, y) == Some(true),
        Relation::Gt => less_than(y, x) == Some(true),
        // a <= b is "not (b < a)", where undefined counts as false.
        Relation::Lte => less_than(y, x) == Some(false),
        Relation::Gte => less_than(x, y) == Some(false),
    }
}

/// `actual === expected` for JSON values: primitives by value, arrays and
/// objects never (they would be distinct JS objects).
pub(crate) fn strict_equals(actual: Option<&Value>, expected: &Value) -> bool {
    match (actual, expected) {
        (None | Some(Value::Null), Value::Null) => true,
        (Some(Value::Bool(a)), Value::Bool(b)) => a == b,
        (Some(Value::Number(a)), Value::Number(b)) => number_f64(a) == number_f64(b),
        (Some(Value::String(a)), Value::String(b)) => a == b,
        _ => false,
    }
}

/// Deep equality of two JSON values, numbers compared as doubles (so `1`
/// equals `1.0`, as `JSON.stringify` would print both as `1`).
pub(crate) fn deep_equals(a: Option<&Value>, b: &Value) -> bool {
    match (a, b) {
        (None | Some(Value::Null), Value::Null) => true,
        (Some(Value::Bool(x)), Value::Bool(y)) => x == y,
        (Some(Value::Number(x)), Value::Number(y)) => number_f64(x) == number_f64(y),
        (Some(Value::String(x)), Value::String(y)) => x == y,
        (Some(Value::Array(x)), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| deep_equals(Some(p), q))
        }
        (Some(Value::Object(x)), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| deep_equals(Some(v), w)))
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn eq_short_agrees_with_eq() {
        // Every length around the word-size cases, differing at every byte.
        for n in 0..40 {
            let a: String = (0..n).map(|i| char::from(b'a' + (i % 26) as u8)).collect();
            assert!(eq_short(&a, &a.clone()), "{a}");
            assert!(!eq_short(&a, &format!("{a}x")), "{a}");
            for i in 0..n {
                let mut b = a.clone().into_bytes();
                b[i] = b'#';
                let b = String::from_utf8(b).unwrap();
                assert!(!eq_short(&a, &b), "{a} {b}");
            }
        }
    }

    fn f(x: f64) -> String {
        let mut s = String::new();
        write_js_f64(x, &mut s).unwrap();
        s
    }

    #[test]
    fn numbers_print_like_javascript() {
        // Expected strings are what node's `String(x)` prints.
        assert_eq!(f(0.0), "0");
        assert_eq!(f(-0.0), "0");
        assert_eq!(f(1.0), "1");
        assert_eq!(f(-42.0), "-42");
        assert_eq!(f(0.1), "0.1");
        assert_eq!(f(1.5), "1.5");
        assert_eq!(f(123.456), "123.456");
        assert_eq!(f(1e21), "1e+21");
        assert_eq!(f(1e20), "100000000000000000000");
        assert_eq!(f(123456789012345680000.0), "123456789012345680000");
        assert_eq!(f(1e-6), "0.000001");
        assert_eq!(f(1e-7), "1e-7");
        assert_eq!(f(1.5e-7), "1.5e-7");
        assert_eq!(f(-2.5e300), "-2.5e+300");
        assert_eq!(f(9007199254740993.0), "9007199254740992");
        assert_eq!(f(f64::NAN), "NaN");
        assert_eq!(f(f64::INFINITY), "Infinity");
        let n: Number = serde_json::from_str("18446744073709551615").unwrap();
        let mut s = String::new();
        write_js_number(&n, &mut s).unwrap();
        assert_eq!(s, "18446744073709552000");
    }

    #[test]
    fn strings_convert_to_numbers_like_javascript() {
        assert_eq!(string_to_number(""), 0.0);
        assert_eq!(string_to_number("  12  "), 12.0);
        assert_eq!(string_to_number("1e3"), 1000.0);
        assert_eq!(string_to_number(".5"), 0.5);
        assert_eq!(string_to_number("5."), 5.0);
        assert_eq!(string_to_number("0x1F"), 31.0);
        assert_eq!(string_to_number("-Infinity"), f64::NEG_INFINITY);
        assert!(string_to_number("inf").is_nan());
        assert!(string_to_number("1_000").is_nan());
        assert!(string_to_number("-0x10").is_nan());
        assert!(string_to_number("abc").is_nan());
        assert!(string_to_number(".").is_nan());
    }

    #[test]
    fn string_conversion_streams() {
        assert!(js_string_eq(Some(&json!(10)), "10"));
        assert!(js_string_eq(None, "null"));
        assert!(js_string_eq(
            Some(&json!([1, null, "a", [2, 3]])),
            "1,,a,2,3"
        ));
        assert!(js_string_eq(Some(&json!({"a": 1})), "[object Object]"));
        assert!(!js_string_eq(Some(&json!(10)), "1"));
        assert!(!js_string_eq(Some(&json!(1)), "10"));
    }

    #[test]
    fn prefix_order_agrees_with_string_order() {
        let words = [
            "",
            "a",
            "abcd",
            "abcde",
            "abcdef",
            "abcdefg",
            "abd",
            "zzzzzz",
            "ab",
            "ab\0",
            "abc",
            "abcdefgh",
            "abcdefghi",
            "abcdefgi",
            "b",
            "é",
            "z",
        ];
        for x in words {
            for y in words {
                let (px, py) = (prefix8(x), prefix8(y));
                let expected_prefix = x
                    .bytes()
                    .chain(std::iter::repeat(0))
                    .take(8)
                    .fold(0u64, |w, b| (w << 8) | u64::from(b));
                assert_eq!(px, expected_prefix, "{x:?}");
                let order = if px != py {
                    px.cmp(&py)
                } else {
                    cmp_short(x, y)
                };
                assert_eq!(order, x.cmp(y), "{x:?} vs {y:?}");
            }
        }
    }

    #[test]
    fn utf16_order_differs_from_byte_order() {
        // U+FF21 (fullwidth A) is above the surrogates in code points but
        // below them in UTF-16: JS says "\u{1F600}" < "\u{FF21}".
        assert_eq!(cmp_utf16("\u{1F600}", "\u{FF21}"), Ordering::Less);
        assert_eq!(cmp_utf16("abc", "abd"), Ordering::Less);
        assert_eq!(cmp_utf16("ab", "abc"), Ordering::Less);
        assert_eq!(cmp_utf16("é", "e"), Ordering::Greater);
    }

    #[test]
    fn relational_operators_follow_javascript() {
        let s = |x: &'static str| Primitive::Str(x.into());
        let n = Primitive::Num;
        assert!(relate(&s("8"), Relation::Gt, &n(5.0)));
        assert!(relate(&s("10"), Relation::Lt, &s("9")));
        assert!(relate(&n(0.0), Relation::Gt, &n(-1.0)));
        assert!(!relate(&s("abc"), Relation::Lte, &n(1.0)));
        assert!(!relate(&s("abc"), Relation::Gte, &n(1.0)));
    }
}

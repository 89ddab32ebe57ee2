//! Version strings made comparable as plain strings (`$veq`, `$vgt`, …).
//!
//! GrowthBook's `paddedVersionString`: drop a leading `v` and any `+build`
//! suffix, split on `-` and `.`, append `~` when there are exactly three
//! parts (so `1.0.0` sorts after its pre-releases, `~` being the highest
//! printable ASCII character), left-pad numeric parts with spaces to width 5
//! (so ` 9` < `10`), and join with `-`. Comparing two padded strings by
//! UTF-16 code units then orders versions.

use std::cmp::Ordering;
use std::fmt;

use serde_json::Value;

use crate::js::{self, CmpSink, StackStr};

fn is_line_terminator(c: char) -> bool {
    matches!(c, '\n' | '\r' | '\u{2028}' | '\u{2029}')
}

/// Removes what the JS regex `(^v|\+.*$)` (global) removes.
fn strip_v_and_build(input: &str) -> &str {
    let s = input.strip_prefix('v').unwrap_or(input);
    // `\+.*$` matches at the first `+` after which no line terminator occurs
    // (`.` does not match line terminators and `$` is the end of input).
    let mut cut = None;
    for (i, c) in s.char_indices() {
        if c == '+' && cut.is_none() {
            cut = Some(i);
        } else if is_line_terminator(c) {
            cut = None;
        }
    }
    match cut {
        Some(i) => &s[..i],
        None => s,
    }
}

/// Writes the padded form of a version string into `out`.
pub(crate) fn write_padded<W: fmt::Write>(input: &str, out: &mut W) -> fmt::Result {
    let s = strip_v_and_build(input);
    let mut count = 0usize;
    for (i, part) in s.split(['-', '.']).enumerate() {
        if i > 0 {
            out.write_str("-")?;
        }
        if !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit()) {
            for _ in part.len()..5 {
                out.write_str(" ")?;
            }
        }
        out.write_str(part)?;
        count += 1;
    }
    if count == 3 {
        out.write_str("-~")?;
    }
    Ok(())
}

/// GrowthBook's `paddedVersionString` for a JSON value: numbers are turned
/// into strings first; anything else that is not a non-empty string is "0".
pub fn padded_version_string(value: &Value) -> String {
    let mut out = String::new();
    with_version_source(Some(value), |s| {
        let _ = write_padded(s, &mut out);
    });
    out
}

/// Calls `f` with the version text GrowthBook would pad for `value`.
fn with_version_source<R>(value: Option<&Value>, f: impl FnOnce(&str) -> R) -> R {
    match value {
        Some(Value::String(s)) if !s.is_empty() => f(s),
        Some(Value::Number(n)) => {
            let mut buf = StackStr::new();
            if js::write_js_number(n, &mut buf).is_ok() {
                f(buf.as_str())
            } else {
                f("0")
            }
        }
        _ => f("0"),
    }
}

/// Orders `value`'s padded version against an already padded one, without
/// allocating.
pub(crate) fn cmp_padded(value: Option<&Value>, padded: &str) -> Ordering {
    with_version_source(value, |s| {
        let mut sink = CmpSink::new(padded);
        let _ = write_padded(s, &mut sink);
        sink.finish()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn pads_like_growthbook() {
        assert_eq!(
            padded_version_string(&json!("1.2.3")),
            "    1-    2-    3-~"
        );
        assert_eq!(
            padded_version_string(&json!("v1.2.3-rc.1+build123")),
            "    1-    2-    3-rc-    1"
        );
        assert_eq!(padded_version_string(&json!("")), "    0");
        assert_eq!(padded_version_string(&json!(null)), "    0");
        assert_eq!(padded_version_string(&json!(2)), "    2");
        assert_eq!(
            padded_version_string(&json!("123456.1.0")),
            "123456-    1-    0-~"
        );
    }

    #[test]
    fn streaming_compare_agrees_with_padding() {
        for (a, b) in [
            ("1.2.3", "1.2.4"),
            ("1.0.0-beta", "1.0.0"),
            ("10.0.0", "9.0.0"),
        ] {
            let pa = padded_version_string(&json!(a));
            let pb = padded_version_string(&json!(b));
            assert_eq!(cmp_padded(Some(&json!(a)), &pb), pa.cmp(&pb), "{a} vs {b}");
        }
    }
}

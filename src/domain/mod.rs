//! The experiment and metric model: what a definition may say, how it is validated,
//! and which lifecycle moves are legal. No I/O.

pub mod audit;
pub mod environment;
pub mod event;
pub mod experiment;
pub mod key;
pub mod metric;
pub mod pseudonym;
pub mod shaped;
pub mod totals;
pub mod validation;
pub mod webhook;

pub use audit::{
    Actor, ActorKind, AuditAction, AuditEntry, AuditSubject, GuardAction, NewAuditEntry,
};
pub use environment::Environment;
pub use event::{Event, EventKind};
pub use experiment::{Experiment, ExperimentSpec, LifecycleAction, Status};
pub use key::{ApiKey, NewApiKey, Role};
pub use metric::{Metric, MetricKind};
pub use validation::{FieldProblem, ValidationError};

/// Milliseconds since the Unix epoch: the unit of every stored timestamp.
pub type Millis = i64;

/// The current wall-clock time in [`Millis`].
pub fn now_millis() -> Millis {
    let now = time::OffsetDateTime::now_utc();
    (now.unix_timestamp_nanos() / 1_000_000) as Millis
}

/// Formats [`Millis`] as an RFC 3339 UTC time, the form every API response uses.
pub fn format_millis(ms: Millis) -> String {
    let nanos = i128::from(ms) * 1_000_000;
    time::OffsetDateTime::from_unix_timestamp_nanos(nanos)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

/// Lower-case hexadecimal of `bytes`: key hashes, signatures, random tokens.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        out.push(char::from(DIGITS[usize::from(byte >> 4)]));
        out.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
    }
    out
}

/// Parses an RFC 3339 time into [`Millis`].
pub fn parse_rfc3339(text: &str) -> Option<Millis> {
    let t =
        time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).ok()?;
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).ok()
}

/// Serde for [`Millis`] fields as RFC 3339 strings: `#[serde(with = "rfc3339")]`.
pub mod rfc3339 {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(ms: &super::Millis, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&super::format_millis(*ms))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<super::Millis, D::Error> {
        let text = String::deserialize(deserializer)?;
        super::parse_rfc3339(&text)
            .ok_or_else(|| serde::de::Error::custom(format!("not an RFC 3339 time: {text:?}")))
    }
}

/// Serde for optional [`Millis`] fields: an RFC 3339 string or null.
pub mod rfc3339_option {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(
        ms: &Option<super::Millis>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match ms {
            Some(ms) => super::rfc3339::serialize(ms, serializer),
            None => serializer.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<super::Millis>, D::Error> {
        let Some(text) = Option::<String>::deserialize(deserializer)? else {
            return Ok(None);
        };
        super::parse_rfc3339(&text)
            .map(Some)
            .ok_or_else(|| serde::de::Error::custom(format!("not an RFC 3339 time: {text:?}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_round_trips_through_millis() {
        let ms = parse_rfc3339("2026-11-24T12:00:00.250+01:00").unwrap();
        assert_eq!(format_millis(ms), "2026-11-24T11:00:00.25Z");
        assert_eq!(parse_rfc3339("yesterday"), None);
    }

    #[test]
    fn hex_is_lower_case_two_digits_a_byte() {
        assert_eq!(hex(&[0x00, 0x0f, 0xa5, 0xff]), "000fa5ff");
        assert_eq!(hex(&[]), "");
    }
}

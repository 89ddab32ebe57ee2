//! Field-level validation errors, collected so that a user sees every problem at once.

use serde::Serialize;

/// One problem with one field of a request, e.g. `variants[1].weight`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldProblem {
    pub field: String,
    pub problem: String,
}

/// A definition was rejected; each problem names its field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("validation failed: {}", summary(.problems))]
pub struct ValidationError {
    pub problems: Vec<FieldProblem>,
}

/// How many problems the one-line message names; `details` lists them all.
const SUMMARIZED_PROBLEMS: usize = 5;

fn summary(problems: &[FieldProblem]) -> String {
    let named = problems
        .iter()
        .take(SUMMARIZED_PROBLEMS)
        .map(|p| format!("{}: {}", p.field, p.problem))
        .collect::<Vec<_>>()
        .join("; ");
    match problems.len().saturating_sub(SUMMARIZED_PROBLEMS) {
        0 => named,
        more => format!("{named}; and {more} more (see details)"),
    }
}

impl ValidationError {
    pub fn single(field: impl Into<String>, problem: impl Into<String>) -> Self {
        Self {
            problems: vec![FieldProblem {
                field: field.into(),
                problem: problem.into(),
            }],
        }
    }
}

/// Reads a typed value out of JSON, naming the field of a type error
/// (`variants[1].weight`).
pub fn from_json<T: serde::de::DeserializeOwned>(
    value: serde_json::Value,
) -> Result<T, ValidationError> {
    serde_path_to_error::deserialize(value).map_err(|err| {
        let path = err.path().to_string();
        let field = if path == "." { "body".to_owned() } else { path };
        ValidationError::single(field, err.inner().to_string())
    })
}

/// Like [`from_json`], and refuses fields the type does not have, naming each
/// (`cupd`, `variants[0].wieght`): a typo in an optional field would otherwise
/// create something other than what the team meant. For the management API's
/// definitions; SDK-facing bodies tolerate unknown fields so that a newer SDK
/// never loses a batch to an older server.
pub fn from_json_exact<T: serde::de::DeserializeOwned>(
    value: serde_json::Value,
) -> Result<T, ValidationError> {
    let mut unknown = Vec::new();
    let parsed = serde_path_to_error::deserialize(serde_ignored::Deserializer::new(
        value,
        &mut |path: serde_ignored::Path<'_>| unknown.push(field_of(&path)),
    ));
    let parsed = parsed.map_err(|err| {
        let path = err.path().to_string();
        let field = if path == "." { "body".to_owned() } else { path };
        ValidationError::single(field, err.inner().to_string())
    })?;
    if unknown.is_empty() {
        return Ok(parsed);
    }
    let problems = unknown
        .into_iter()
        .map(|field| FieldProblem {
            field,
            problem: "is not a field here (a typo?)".to_owned(),
        })
        .collect();
    Err(ValidationError { problems })
}

/// A field's path the way our errors name it: `variants[0].weight`.
fn field_of(path: &serde_ignored::Path<'_>) -> String {
    use serde_ignored::Path;
    match path {
        Path::Root => String::new(),
        Path::Seq { parent, index } => format!("{}[{index}]", field_of(parent)),
        Path::Map { parent, key } => match field_of(parent) {
            prefix if prefix.is_empty() => key.clone(),
            prefix => format!("{prefix}.{key}"),
        },
        Path::Some { parent }
        | Path::NewtypeStruct { parent }
        | Path::NewtypeVariant { parent } => field_of(parent),
    }
}

/// Collects problems while a validator walks a definition.
#[derive(Debug, Default)]
pub struct Problems(Vec<FieldProblem>);

impl Problems {
    pub fn add(&mut self, field: impl Into<String>, problem: impl Into<String>) {
        self.0.push(FieldProblem {
            field: field.into(),
            problem: problem.into(),
        });
    }

    /// Adds `problem` unless `ok` holds.
    pub fn check(&mut self, ok: bool, field: impl Into<String>, problem: impl Into<String>) {
        if !ok {
            self.add(field, problem);
        }
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn into_result(self) -> Result<(), ValidationError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(ValidationError { problems: self.0 })
        }
    }
}

/// The rule for every key that appears in a URL: experiments, metrics, variants.
pub const KEY_RULE: &str =
    "must be 1 to 64 characters of ASCII letters, digits, '-', '_' or '.', starting with a letter or digit";

pub fn is_valid_key(key: &str) -> bool {
    let mut chars = key.chars();
    let Some(first) = chars.next() else {
        return false;
    };
    key.len() <= 64
        && first.is_ascii_alphanumeric()
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// Checks a free-text field's length in characters, and that it can be stored.
pub fn check_text(problems: &mut Problems, field: &str, text: &str, max_chars: usize) {
    problems.check(
        text.chars().count() <= max_chars,
        field,
        format!("must be at most {max_chars} characters"),
    );
    problems.check(is_storable(text), field, NUL_RULE);
}

/// The rule for text that is stored: PostgreSQL's `text` cannot hold U+0000, and
/// both backends accept the same input.
pub const NUL_RULE: &str = "must not contain the NUL character (U+0000)";

/// Whether every backend can store `text` (see [`NUL_RULE`]).
pub fn is_storable(text: &str) -> bool {
    !text.contains('\0')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_url_safe_ascii() {
        assert!(is_valid_key("pricing-q4"));
        assert!(is_valid_key("A.b_c-9"));
        assert!(!is_valid_key(""));
        assert!(!is_valid_key("-lead"));
        assert!(!is_valid_key("'; DROP TABLE experiments; --"));
        assert!(!is_valid_key("prix-été"));
        assert!(!is_valid_key(&"k".repeat(65)));
    }

    #[test]
    fn a_batch_of_bad_events_does_not_repeat_every_problem_in_the_message() {
        let problems: Vec<FieldProblem> = (0..10_000)
            .map(|i| FieldProblem {
                field: format!("events[{i}].ts"),
                problem: "is more than 86400 s ahead of the server's clock".to_owned(),
            })
            .collect();
        let message = ValidationError { problems }.to_string();
        assert!(message.starts_with("validation failed: events[0].ts: is more"));
        assert!(message.contains("events[4].ts"));
        assert!(!message.contains("events[5].ts"));
        assert!(
            message.ends_with("; and 9995 more (see details)"),
            "{message}"
        );
    }
}

//! Environments: where an experiment is served (`production`, `staging`, …). An
//! SDK key belongs to one, and sees only the experiments served there.

use serde::{Deserialize, Serialize};

use super::validation::{check_text, is_valid_key, Problems, ValidationError, KEY_RULE};

/// The environment that always exists, and the one an SDK key gets by default.
pub const PRODUCTION: &str = "production";

/// The body of `POST /api/v1/environments`, and an environment as listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Environment {
    pub key: String,
    #[serde(default)]
    pub name: String,
}

impl Environment {
    pub fn validate(&self) -> Result<(), ValidationError> {
        let mut problems = Problems::default();
        problems.check(is_valid_key(&self.key), "key", KEY_RULE);
        check_text(&mut problems, "name", &self.name, 200);
        problems.into_result()
    }
}

/// Whether an experiment listing `served_in` is served in `environment`: an empty
/// list means everywhere.
pub fn is_served_in(served_in: &[String], environment: &str) -> bool {
    served_in.is_empty() || served_in.iter().any(|e| e == environment)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_list_serves_every_environment() {
        assert!(is_served_in(&[], "staging"));
        let staging = ["staging".to_owned()];
        assert!(is_served_in(&staging, "staging"));
        assert!(!is_served_in(&staging, PRODUCTION));
    }

    #[test]
    fn an_environment_key_follows_the_key_rule() {
        let bad = Environment {
            key: "Pre Prod".into(),
            name: String::new(),
        };
        assert_eq!(bad.validate().unwrap_err().problems[0].field, "key");
    }
}

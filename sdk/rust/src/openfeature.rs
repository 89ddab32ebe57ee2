//! An [OpenFeature](https://openfeature.dev) provider (feature
//! `openfeature`): every experiment the client serves is a flag named by
//! its key, evaluated locally through [`Client::assign`], so the ruleset
//! stays fresh and exposures are logged as with the client itself (once
//! per user and experiment, only when the user is in the experiment).
//!
//! The mapping is the one of the server's OFREP endpoints
//! (`/ofrep/v1/evaluate/flags`):
//!
//! - The context's custom fields become the user's attributes. Structs must
//!   hold a [`serde_json::Value`]; date-times become RFC 3339 UTC strings
//!   with milliseconds, as JavaScript's `Date.toJSON()` writes them.
//! - The targeting key stands for the experiment's hash attribute (`id` by
//!   default) when the context has no field of that name.
//! - The value is the assigned variant's JSON value, converted to the type
//!   asked for: `bool`, an integer fitting `i64`, any number as `f64`, a
//!   string, or an object as a struct (a `null` field is left out; a `null`
//!   in an array is a type mismatch). Any other value is
//!   [`EvaluationErrorCode::TypeMismatch`]; as on the server, the exposure
//!   was logged by then.
//! - `variant` is the variant key. `reason` is `SPLIT` in the experiment,
//!   `DEFAULT` for a running experiment the user is not in (targeting,
//!   coverage, namespace, an invalid rule: control's value), `DISABLED`
//!   when paused, rolled back, stopped or a draft, `STATIC` once shipped.
//!   `flag_metadata` carries `in_experiment` and `sluice_reason` (the
//!   [`Reason`], e.g. `coverage`).
//! - Errors: an unknown key is `FLAG_NOT_FOUND`; a running experiment with
//!   no unit id (neither the hash attribute nor a targeting key) is
//!   `TARGETING_KEY_MISSING`; a struct field holding anything but a
//!   `serde_json::Value`, or a date-time beyond year 9999 in UTC, is
//!   `INVALID_CONTEXT`.
//!
//! The provider shares the client through an `Arc`: keep a clone, and at
//! shutdown drop the provider (`OpenFeature::shutdown`) before
//! [`Arc::try_unwrap`] and [`Client::close`], so buffered events are flushed.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use open_feature::{EvaluationContext, OpenFeature};
//! use sluice_sdk::client::Client;
//! use sluice_sdk::openfeature::SluiceProvider;
//!
//! let client = Arc::new(Client::builder("http://127.0.0.1:8080", "sdk-key").build().await?);
//! let provider = SluiceProvider::new(client.clone());
//! OpenFeature::singleton_mut().await.set_provider(provider).await;
//!
//! let flags = OpenFeature::singleton().await.create_client();
//! let user = EvaluationContext::default()
//!     .with_targeting_key("u1")
//!     .with_custom_field("country", "CN");
//! let badge = flags.get_bool_value("premium-badge", Some(&user), None).await;
//! println!("premium badge: {}", badge.unwrap_or(false));
//!
//! OpenFeature::singleton_mut().await.shutdown().await; // drops the provider's clone
//! if let Ok(client) = Arc::try_unwrap(client) {
//!     client.close().await; // flushes the exposures
//! }
//! # Ok(()) }
//! ```

use std::collections::HashMap;
use std::sync::Arc;

use open_feature::provider::{FeatureProvider, ProviderMetadata, ResolutionDetails};
use open_feature::{
    EvaluationContext, EvaluationContextFieldValue, EvaluationError, EvaluationErrorCode,
    EvaluationReason, EvaluationResult, FlagMetadata, StructValue,
};
use serde_json::{Map, Value};
use time::{OffsetDateTime, UtcOffset};

use crate::client::Client;
use crate::{Attributes, CompiledRuleset, OwnedAssignment, Reason};

/// An OpenFeature provider serving Sluice experiments as flags; its
/// metadata name is `sluice`.
pub struct SluiceProvider {
    client: Arc<Client>,
    metadata: ProviderMetadata,
}

impl SluiceProvider {
    /// A provider evaluating through `client`, which stays shared: keep a
    /// clone to [`Client::close`] it once the provider is dropped.
    pub fn new(client: Arc<Client>) -> Self {
        SluiceProvider {
            client,
            metadata: ProviderMetadata::new("sluice"),
        }
    }

    /// Evaluates the flag and converts its value with `convert`, which
    /// answers `None` for a value that is not a `type_name`.
    fn resolve<T>(
        &self,
        flag_key: &str,
        context: &EvaluationContext,
        type_name: &str,
        convert: fn(Value) -> Option<T>,
    ) -> EvaluationResult<ResolutionDetails<T>> {
        let assignment = self.assign(flag_key, context)?;
        let reason = evaluation_reason(flag_key, assignment.reason)?;
        let flag_metadata = FlagMetadata::default()
            .with_value("in_experiment", assignment.in_experiment)
            .with_value("sluice_reason", assignment.reason.as_str());
        let value = convert(assignment.value).ok_or_else(|| {
            error(
                EvaluationErrorCode::TypeMismatch,
                format!(
                    "flag {flag_key}: the value of variant {:?} is not a {type_name}",
                    assignment.variant
                ),
            )
        })?;
        Ok(ResolutionDetails {
            value,
            variant: Some(assignment.variant),
            reason: Some(reason),
            flag_metadata: Some(flag_metadata),
        })
    }

    fn assign(
        &self,
        flag_key: &str,
        context: &EvaluationContext,
    ) -> EvaluationResult<OwnedAssignment> {
        let not_found = || {
            error(
                EvaluationErrorCode::FlagNotFound,
                format!("no experiment {flag_key}"),
            )
        };
        let hash_attribute =
            hash_attribute(&self.client.ruleset(), flag_key).ok_or_else(not_found)?;
        let attributes = attributes(context, &hash_attribute)?;
        // `None` only if a new ruleset dropped the key since the lookup above.
        self.client
            .assign(flag_key, &attributes)
            .ok_or_else(not_found)
    }
}

#[open_feature::async_trait]
impl FeatureProvider for SluiceProvider {
    fn metadata(&self) -> &ProviderMetadata {
        &self.metadata
    }

    async fn resolve_bool_value(
        &self,
        flag_key: &str,
        context: &EvaluationContext,
    ) -> EvaluationResult<ResolutionDetails<bool>> {
        self.resolve(flag_key, context, "bool", |v| v.as_bool())
    }

    async fn resolve_int_value(
        &self,
        flag_key: &str,
        context: &EvaluationContext,
    ) -> EvaluationResult<ResolutionDetails<i64>> {
        self.resolve(flag_key, context, "64-bit integer", |v| v.as_i64())
    }

    async fn resolve_float_value(
        &self,
        flag_key: &str,
        context: &EvaluationContext,
    ) -> EvaluationResult<ResolutionDetails<f64>> {
        self.resolve(flag_key, context, "number", |v| v.as_f64())
    }

    async fn resolve_string_value(
        &self,
        flag_key: &str,
        context: &EvaluationContext,
    ) -> EvaluationResult<ResolutionDetails<String>> {
        self.resolve(flag_key, context, "string", |v| match v {
            Value::String(s) => Some(s),
            _ => None,
        })
    }

    async fn resolve_struct_value(
        &self,
        flag_key: &str,
        context: &EvaluationContext,
    ) -> EvaluationResult<ResolutionDetails<StructValue>> {
        self.resolve(flag_key, context, "struct", |v| match v {
            Value::Object(object) => struct_value(object),
            _ => None,
        })
    }
}

fn error(code: EvaluationErrorCode, message: String) -> EvaluationError {
    EvaluationError {
        code,
        message: Some(message),
    }
}

/// The attribute the experiment hashes, as compiled (an empty one is `id`).
fn hash_attribute(rules: &CompiledRuleset, experiment: &str) -> Option<Box<str>> {
    let i = rules.index_of(experiment)?;
    rules
        .rules
        .get(i)
        .map(|r| r.experiment.hash_attribute.clone())
}

/// The user's attributes: the custom fields, plus the targeting key under
/// `hash_attribute` unless a field of that name is there.
fn attributes(context: &EvaluationContext, hash_attribute: &str) -> EvaluationResult<Attributes> {
    let mut attributes = context
        .custom_fields
        .iter()
        .map(|(name, value)| Ok((name.clone(), json_value(name, value)?)))
        .collect::<EvaluationResult<Attributes>>()?;
    if let Some(key) = &context.targeting_key {
        attributes
            .entry(hash_attribute)
            .or_insert_with(|| Value::String(key.clone()));
    }
    Ok(attributes)
}

fn json_value(name: &str, value: &EvaluationContextFieldValue) -> EvaluationResult<Value> {
    let invalid = |what: &str| {
        error(
            EvaluationErrorCode::InvalidContext,
            format!("context field {name}: {what}"),
        )
    };
    Ok(match value {
        EvaluationContextFieldValue::Bool(b) => Value::Bool(*b),
        EvaluationContextFieldValue::Int(i) => Value::from(*i),
        // A non-finite float becomes null, as in JSON.
        EvaluationContextFieldValue::Float(f) => Value::from(*f),
        EvaluationContextFieldValue::String(s) => Value::String(s.clone()),
        EvaluationContextFieldValue::DateTime(t) => {
            Value::String(utc_rfc3339(t).ok_or_else(|| invalid("date out of range in UTC"))?)
        }
        EvaluationContextFieldValue::Struct(s) => s
            .downcast_ref::<Value>()
            .cloned()
            .ok_or_else(|| invalid("a struct must hold a serde_json::Value"))?,
    })
}

/// Fixed width (always milliseconds, always `Z`), so that string
/// conditions such as `$gt` compare date-times in time order.
fn utc_rfc3339(t: &OffsetDateTime) -> Option<String> {
    let t = t.checked_to_offset(UtcOffset::UTC)?;
    Some(format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.millisecond()
    ))
}

/// The OpenFeature reason for a Sluice reason; a missing unit id is the
/// caller's error.
fn evaluation_reason(flag_key: &str, reason: Reason) -> EvaluationResult<EvaluationReason> {
    Ok(match reason {
        Reason::Split => EvaluationReason::Split,
        Reason::Condition | Reason::Namespace | Reason::Coverage | Reason::InvalidRule => {
            EvaluationReason::Default
        }
        Reason::Draft | Reason::Paused | Reason::RolledBack | Reason::Stopped => {
            EvaluationReason::Disabled
        }
        Reason::Shipped => EvaluationReason::Static,
        Reason::NoHashAttribute => {
            return Err(error(
                EvaluationErrorCode::TargetingKeyMissing,
                format!("flag {flag_key}: no targeting key and no unit id in the context"),
            ))
        }
    })
}

/// `None` when a `null` sits in an array: OpenFeature values have no null.
fn struct_value(object: Map<String, Value>) -> Option<StructValue> {
    let mut fields = HashMap::with_capacity(object.len());
    for (key, value) in object {
        if !value.is_null() {
            fields.insert(key, feature_value(value)?);
        }
    }
    Some(StructValue { fields })
}

fn feature_value(value: Value) -> Option<open_feature::Value> {
    use open_feature::Value as V;
    Some(match value {
        Value::Null => return None,
        Value::Bool(b) => V::Bool(b),
        Value::Number(n) => n
            .as_i64()
            .map(V::Int)
            .or_else(|| n.as_f64().map(V::Float))?,
        Value::String(s) => V::String(s),
        Value::Array(items) => V::Array(
            items
                .into_iter()
                .map(feature_value)
                .collect::<Option<_>>()?,
        ),
        Value::Object(object) => V::Struct(struct_value(object)?),
    })
}

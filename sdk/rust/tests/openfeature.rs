//! The `openfeature` provider through the OpenFeature API, against an
//! in-process mock of the SDK endpoints (axum on 127.0.0.1:0): values,
//! variants and reasons as the client assigns them, the targeting key,
//! context conversion, errors, and exposures.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed unwrap is a failed test

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use open_feature::{
    EvaluationContext, EvaluationContextFieldValue, EvaluationErrorCode, EvaluationReason,
    FlagMetadataValue, OpenFeature, StructValue, Value as FlagValue,
};
use serde_json::{json, Value};
use sluice_sdk::client::Client;
use sluice_sdk::openfeature::SluiceProvider;
use sluice_sdk::Attributes;

const KEY: &str = "test-sdk-key";

fn experiment(key: &str, status: &str, coverage: f64, variants: &[(&str, Value)]) -> Value {
    let weight = 1.0 / variants.len() as f64;
    let variants: Vec<Value> = variants
        .iter()
        .map(|(k, v)| json!({"key": k, "weight": weight, "value": v}))
        .collect();
    json!({
        "key": key, "status": status, "coverage": coverage, "hash_attribute": "id",
        "seed": key, "hash_version": 2, "variants": variants
    })
}

fn ruleset() -> Value {
    let mut pricing = experiment(
        "pricing",
        "running",
        1.0,
        &[
            (
                "standard",
                json!({"price": 199, "currency": "CNY", "badge": null}),
            ),
            (
                "premium",
                json!({"price": 249.5, "tiers": [1, 2], "style": {"bold": true}}),
            ),
        ],
    );
    pricing["hash_attribute"] = json!("company");
    let mut targeted = experiment(
        "targeted",
        "running",
        1.0,
        &[("off", json!(0)), ("on", json!(1))],
    );
    targeted["condition"] = json!({
        "country": "CN", "age": {"$gte": 18}, "beta": true, "plan.tier": "gold",
        // a window in UTC: the +08:00 date-time must be converted
        "signup": {"$gte": "2024-05-28T20:30:00.000Z", "$lt": "2024-05-28T21:30:00.000Z"}
    });
    let mut discount = experiment(
        "discount",
        "shipped",
        1.0,
        &[("none", json!(0)), ("ten", json!(0.1))],
    );
    discount["shipped_variant"] = json!("ten");
    json!({"version": 1, "experiments": [
        experiment("button-color", "running", 1.0, &[("grey", json!("grey")), ("blue", json!("blue"))]),
        experiment("new-checkout", "running", 0.5, &[("old", json!(false)), ("new", json!(true))]),
        experiment("max-items", "paused", 1.0, &[("ten", json!(10)), ("twenty", json!(20))]),
        experiment("banner", "rolled_back", 1.0, &[("none", json!("")), ("sale", json!("sale"))]),
        experiment("onboarding", "stopped", 1.0, &[("short", json!(1)), ("long", json!(5))]),
        experiment("holdout", "draft", 1.0, &[("in", json!(true)), ("out", json!(false))]),
        experiment("nulls", "running", 1.0, &[("a", json!({"ids": [1, null]})), ("b", json!({"ids": [null]}))]),
        pricing, targeted, discount
    ]})
}

type Events = Arc<Mutex<Vec<Value>>>;

async fn start() -> (String, Events) {
    let events = Events::default();
    let app = Router::new()
        .route("/sdk/v1/ruleset", get(|| async { Json(ruleset()) }))
        .route(
            "/sdk/v1/events",
            post(
                |State(events): State<Events>, Json(body): Json<Value>| async move {
                    let batch = body["events"].as_array().cloned().unwrap_or_default();
                    let n = batch.len();
                    events.lock().unwrap().extend(batch);
                    (
                        axum::http::StatusCode::ACCEPTED,
                        Json(json!({"accepted": n, "duplicates": 0})),
                    )
                },
            ),
        )
        .with_state(events.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}"), events)
}

async fn client(url: &str) -> Arc<Client> {
    let client = Client::builder(url, KEY)
        .stream(false)
        .flush_interval(Duration::from_secs(60))
        .build()
        .await
        .unwrap();
    Arc::new(client)
}

/// An OpenFeature client on its own API instance, so tests don't share
/// the global singleton.
async fn flags(client: &Arc<Client>) -> open_feature::Client {
    let mut api = OpenFeature::default();
    api.set_provider(SluiceProvider::new(client.clone())).await;
    api.create_client()
}

async fn setup() -> (Arc<Client>, open_feature::Client) {
    let (url, _events) = start().await;
    let client = client(&url).await;
    let flags = flags(&client).await;
    (client, flags)
}

fn user(attributes: Value) -> Attributes {
    attributes.as_object().cloned().unwrap()
}

fn keyed(targeting_key: &str) -> EvaluationContext {
    EvaluationContext::default().with_targeting_key(targeting_key)
}

/// Two unit ids that `experiment` puts in different variants.
fn ids_in_different_variants(
    client: &Client,
    experiment: &str,
    attribute: &str,
) -> (String, String) {
    let variant = |id: &str| {
        let rules = client.ruleset();
        let a = rules
            .assign(experiment, &user(json!({attribute: id})))
            .unwrap();
        a.variant.to_owned()
    };
    let first = "unit-0".to_owned();
    let other = (1..100)
        .map(|i| format!("unit-{i}"))
        .find(|id| variant(id) != variant(&first))
        .unwrap();
    (first, other)
}

#[tokio::test]
async fn split_flags_agree_with_the_client_for_500_users() {
    let (client, flags) = setup().await;
    let mut variants = HashMap::new();
    let mut reasons = HashMap::new();
    for i in 0..500 {
        let id = format!("user-{i}");
        let expected = client
            .assign("button-color", &user(json!({"id": id})))
            .unwrap();
        let got = flags
            .get_string_details("button-color", Some(&keyed(&id)), None)
            .await
            .unwrap();
        assert_eq!(Value::from(got.value.clone()), expected.value, "{id}");
        assert_eq!(got.variant.as_deref(), Some(expected.variant.as_str()));
        assert_eq!(got.reason, Some(EvaluationReason::Split));
        *variants.entry(got.variant.unwrap()).or_insert(0) += 1;

        // Half coverage: those left out get control's value, reason DEFAULT.
        let expected = client
            .assign("new-checkout", &user(json!({"id": id})))
            .unwrap();
        let got = flags
            .get_bool_details("new-checkout", Some(&keyed(&id)), None)
            .await
            .unwrap();
        assert_eq!(Value::from(got.value), expected.value, "{id}");
        assert_eq!(got.variant.as_deref(), Some(expected.variant.as_str()));
        let reason = if expected.in_experiment {
            EvaluationReason::Split
        } else {
            assert_eq!((got.value, expected.reason.as_str()), (false, "coverage"));
            EvaluationReason::Default
        };
        assert_eq!(got.reason.as_ref(), Some(&reason));
        assert_eq!(
            got.flag_metadata.values.get("in_experiment"),
            Some(&FlagMetadataValue::Bool(expected.in_experiment))
        );
        *reasons.entry(reason.to_string()).or_insert(0) += 1;
    }
    assert!(variants.values().all(|&n| n > 200), "{variants:?}");
    assert_eq!(variants.len(), 2);
    assert!(reasons.values().all(|&n| n > 200), "{reasons:?}");
    assert_eq!(reasons.len(), 2);
}

#[tokio::test]
async fn stopped_experiments_are_disabled_and_shipped_ones_static() {
    let (_client, flags) = setup().await;
    let ctx = keyed("u1");
    let paused = flags
        .get_int_details("max-items", Some(&ctx), None)
        .await
        .unwrap();
    assert_eq!((paused.value, paused.variant.as_deref()), (10, Some("ten")));
    assert_eq!(paused.reason, Some(EvaluationReason::Disabled));
    assert_eq!(
        paused.flag_metadata.values.get("sluice_reason"),
        Some(&FlagMetadataValue::String("paused".into()))
    );
    let rolled_back = flags
        .get_string_details("banner", Some(&ctx), None)
        .await
        .unwrap();
    assert_eq!(
        (rolled_back.value.as_str(), rolled_back.variant.as_deref()),
        ("", Some("none"))
    );
    assert_eq!(rolled_back.reason, Some(EvaluationReason::Disabled));
    let stopped = flags
        .get_int_details("onboarding", Some(&ctx), None)
        .await
        .unwrap();
    assert_eq!(
        (stopped.value, stopped.reason),
        (1, Some(EvaluationReason::Disabled))
    );
    let draft = flags
        .get_bool_details("holdout", Some(&ctx), None)
        .await
        .unwrap();
    assert_eq!(
        (draft.value, draft.reason),
        (true, Some(EvaluationReason::Disabled))
    );

    // Shipped: everyone gets the shipped variant, no unit id needed.
    let shipped = flags
        .get_float_details("discount", Some(&EvaluationContext::default()), None)
        .await
        .unwrap();
    assert_eq!(
        (shipped.value, shipped.variant.as_deref()),
        (0.1, Some("ten"))
    );
    assert_eq!(shipped.reason, Some(EvaluationReason::Static));
    assert_eq!(
        shipped.flag_metadata.values.get("in_experiment"),
        Some(&FlagMetadataValue::Bool(false))
    );
}

#[tokio::test]
async fn the_targeting_key_stands_for_a_missing_hash_attribute() {
    let (client, flags) = setup().await;
    let variant = |ctx: EvaluationContext, flag: &'static str| {
        let flags = &flags;
        async move {
            let details = flags.get_struct_details::<StructValue>(flag, Some(&ctx), None);
            details.await.unwrap().variant.unwrap()
        }
    };

    let (a, b) = ids_in_different_variants(&client, "pricing", "company");
    let expected = client
        .assign("pricing", &user(json!({"company": a})))
        .unwrap();
    assert_eq!(
        variant(keyed(&a), "pricing").await,
        expected.variant,
        "key for `company`"
    );
    let with_field = keyed(&b).with_custom_field("company", a.as_str());
    assert_eq!(
        variant(with_field, "pricing").await,
        expected.variant,
        "the field wins"
    );

    let (a, b) = ids_in_different_variants(&client, "button-color", "id");
    let expected = client
        .assign("button-color", &user(json!({"id": a})))
        .unwrap();
    let flag = |ctx: EvaluationContext| {
        let flags = &flags;
        async move {
            let details = flags.get_string_details("button-color", Some(&ctx), None);
            details.await.unwrap().variant.unwrap()
        }
    };
    assert_eq!(flag(keyed(&a)).await, expected.variant, "key for `id`");
    let with_field = keyed(&b).with_custom_field("id", a.as_str());
    assert_eq!(flag(with_field).await, expected.variant, "the field wins");
    let field_only = EvaluationContext::default().with_custom_field("id", a.as_str());
    assert_eq!(flag(field_only).await, expected.variant);
}

#[tokio::test]
async fn context_fields_reach_the_targeting_condition() {
    let (_client, flags) = setup().await;
    // 2024-05-29 05:00 at +08:00 is 2024-05-28T21:00:00.000Z.
    let signup = time::OffsetDateTime::from_unix_timestamp(1_716_930_000)
        .unwrap()
        .to_offset(time::UtcOffset::from_hms(8, 0, 0).unwrap());
    let eligible = keyed("u1")
        .with_custom_field("country", "CN")
        .with_custom_field("age", 18)
        .with_custom_field("beta", true)
        .with_custom_field("signup", signup)
        .with_custom_field(
            "plan",
            EvaluationContextFieldValue::new_struct(json!({"tier": "gold"})),
        );
    let reason = |ctx: EvaluationContext| {
        let flags = &flags;
        async move {
            let details = flags.get_int_details("targeted", Some(&ctx), None);
            let details = details.await.unwrap();
            let sluice = details.flag_metadata.values.get("sluice_reason").cloned();
            (details.reason.unwrap(), sluice)
        }
    };
    assert_eq!(reason(eligible.clone()).await.0, EvaluationReason::Split);

    let condition = Some(FlagMetadataValue::String("condition".into()));
    let early = time::OffsetDateTime::from_unix_timestamp(1_714_000_000).unwrap();
    for ineligible in [
        eligible.clone().with_custom_field("age", 17.5),
        eligible.clone().with_custom_field("beta", false),
        eligible.clone().with_custom_field("country", "US"),
        eligible.clone().with_custom_field("signup", early),
        eligible.clone().with_custom_field(
            "plan",
            EvaluationContextFieldValue::new_struct(json!({"tier": "silver"})),
        ),
    ] {
        let got = reason(ineligible.clone()).await;
        assert_eq!(
            got,
            (EvaluationReason::Default, condition.clone()),
            "{ineligible:?}"
        );
    }

    let opaque =
        eligible.with_custom_field("plan", EvaluationContextFieldValue::new_struct("gold"));
    let err = flags
        .get_int_value("targeted", Some(&opaque), None)
        .await
        .unwrap_err();
    assert_eq!(err.code, EvaluationErrorCode::InvalidContext);
}

#[tokio::test]
async fn an_unknown_flag_is_not_found() {
    let (_client, flags) = setup().await;
    let err = flags
        .get_bool_value("no-such-flag", Some(&keyed("u1")), None)
        .await
        .unwrap_err();
    assert_eq!(err.code, EvaluationErrorCode::FlagNotFound);
}

#[tokio::test]
async fn a_running_experiment_without_a_unit_id_needs_a_targeting_key() {
    let (_client, flags) = setup().await;
    for ctx in [
        EvaluationContext::default().with_custom_field("country", "CN"),
        keyed(""),
        EvaluationContext::default().with_custom_field("id", ""),
    ] {
        let err = flags
            .get_string_value("button-color", Some(&ctx), None)
            .await
            .unwrap_err();
        assert_eq!(
            err.code,
            EvaluationErrorCode::TargetingKeyMissing,
            "{ctx:?}"
        );
    }
    let err = flags
        .get_struct_value::<StructValue>("pricing", Some(&EvaluationContext::default()), None)
        .await
        .unwrap_err();
    assert_eq!(err.code, EvaluationErrorCode::TargetingKeyMissing);
    // A paused experiment serves control to everyone: no unit id needed.
    let anyone = EvaluationContext::default();
    let paused = flags.get_int_value("max-items", Some(&anyone), None);
    assert_eq!(paused.await.unwrap(), 10);
}

#[tokio::test]
async fn a_value_of_another_type_is_a_type_mismatch() {
    let (_client, flags) = setup().await;
    let ctx = keyed("u1");
    let mismatch =
        |err: open_feature::EvaluationError| err.code == EvaluationErrorCode::TypeMismatch;
    let flags = &flags;
    let ctx = &ctx;
    assert!(mismatch(
        flags
            .get_bool_value("button-color", Some(ctx), None)
            .await
            .unwrap_err()
    ));
    assert!(mismatch(
        flags
            .get_int_value("button-color", Some(ctx), None)
            .await
            .unwrap_err()
    ));
    assert!(mismatch(
        flags
            .get_string_value("max-items", Some(ctx), None)
            .await
            .unwrap_err()
    ));
    assert!(mismatch(
        flags
            .get_bool_value("max-items", Some(ctx), None)
            .await
            .unwrap_err()
    ));
    // 0.1 is a number but not an integer.
    assert!(mismatch(
        flags
            .get_int_value("discount", Some(ctx), None)
            .await
            .unwrap_err()
    ));
    let not_a_struct = flags.get_struct_value::<StructValue>("button-color", Some(ctx), None);
    assert!(mismatch(not_a_struct.await.unwrap_err()));
    let company = keyed("acme");
    let not_a_string = flags.get_string_value("pricing", Some(&company), None);
    assert!(mismatch(not_a_string.await.unwrap_err()));
    // OpenFeature values have no null to stand for an array element.
    let null_in_array = flags.get_struct_value::<StructValue>("nulls", Some(ctx), None);
    assert!(mismatch(null_in_array.await.unwrap_err()));

    // Any JSON number is a float.
    let items = flags
        .get_float_value("max-items", Some(ctx), None)
        .await
        .unwrap();
    assert_eq!(items, 10.0);
}

#[tokio::test]
async fn object_values_are_structs() {
    let (client, flags) = setup().await;
    let standard = StructValue::default()
        .with_field("price", 199)
        .with_field("currency", "CNY");
    let premium = StructValue::default()
        .with_field("price", 249.5)
        .with_field("tiers", FlagValue::Array(vec![1.into(), 2.into()]))
        .with_field("style", StructValue::default().with_field("bold", true));
    let (a, b) = ids_in_different_variants(&client, "pricing", "company");
    let mut seen = Vec::new();
    for company in [a, b] {
        let details = flags
            .get_struct_details::<StructValue>("pricing", Some(&keyed(&company)), None)
            .await
            .unwrap();
        let expected = match details.variant.as_deref() {
            Some("standard") => &standard, // `"badge": null` is left out
            Some("premium") => &premium,
            other => panic!("unexpected variant {other:?}"),
        };
        assert_eq!(&details.value, expected);
        assert_eq!(details.reason, Some(EvaluationReason::Split));
        seen.push(details.variant.unwrap());
    }
    seen.sort();
    assert_eq!(seen, ["premium", "standard"]);
}

/// Also the documented shutdown: the global API, then `close()` to flush.
#[tokio::test]
async fn exposures_are_logged_once_through_the_client() {
    let (url, events) = start().await;
    let client = client(&url).await;
    OpenFeature::singleton_mut()
        .await
        .set_provider(SluiceProvider::new(client.clone()))
        .await;
    assert_eq!(
        OpenFeature::singleton()
            .await
            .provider_metadata()
            .await
            .name,
        "sluice"
    );
    let flags = OpenFeature::singleton().await.create_client();

    let mut variants = HashMap::new();
    for id in ["u1", "u1", "u2", "u1"] {
        let ctx = keyed(id);
        let details = flags.get_string_details("button-color", Some(&ctx), None);
        variants.insert(id, details.await.unwrap().variant.unwrap());
        // Paused and shipped: not in an experiment, so no exposure.
        flags
            .get_int_value("max-items", Some(&ctx), None)
            .await
            .unwrap();
        flags
            .get_float_value("discount", Some(&ctx), None)
            .await
            .unwrap();
    }
    // As on the server, the assignment logs the exposure before the type is checked.
    let ctx = keyed("u3");
    flags
        .get_bool_value("button-color", Some(&ctx), None)
        .await
        .unwrap_err();
    let u3 = client
        .ruleset()
        .assign("button-color", &user(json!({"id": "u3"})))
        .unwrap()
        .variant
        .to_owned();
    variants.insert("u3", u3);

    drop(flags);
    OpenFeature::singleton_mut().await.shutdown().await;
    let client = Arc::try_unwrap(client)
        .ok()
        .expect("the provider was dropped");
    client.close().await;

    let mut exposures: Vec<(String, String, String)> = events
        .lock()
        .unwrap()
        .iter()
        .map(|e| {
            assert_eq!(e["type"], "exposure", "{e}");
            let field = |name: &str| e[name].as_str().unwrap().to_owned();
            (field("user"), field("experiment"), field("variant"))
        })
        .collect();
    exposures.sort();
    let expected: Vec<_> = ["u1", "u2", "u3"]
        .map(|id| {
            (
                id.to_owned(),
                "button-color".to_owned(),
                variants[id].clone(),
            )
        })
        .into();
    assert_eq!(exposures, expected);
}

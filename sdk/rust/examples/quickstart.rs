//! Quickstart: connect to a Sluice server, assign a user, track a purchase.
//!
//! ```text
//! SLUICE_URL=http://127.0.0.1:8080 SLUICE_SDK_KEY=... \
//!   cargo run -p sluice-sdk --features client --example quickstart -- pricing-q4 u1
//! ```

use std::time::Duration;

use serde_json::json;
use sluice_sdk::client::Client;
use sluice_sdk::Attributes;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::var("SLUICE_URL").unwrap_or_else(|_| "http://127.0.0.1:8080".into());
    let key = std::env::var("SLUICE_SDK_KEY").map_err(|_| "set SLUICE_SDK_KEY")?;
    let mut args = std::env::args().skip(1);
    let experiment = args.next().unwrap_or_else(|| "pricing-q4".into());
    let user_id = args.next().unwrap_or_else(|| "u1".into());

    // Fetches the ruleset once, then follows the server's push stream.
    let client = Client::builder(url, key)
        .flush_interval(Duration::from_secs(1))
        .build()
        .await?;
    println!("ruleset version {}", client.ruleset().version());

    let mut user = Attributes::new();
    user.insert("id".into(), json!(user_id));
    user.insert("country".into(), json!("CN"));

    // Local evaluation: no request per call. An exposure is logged the
    // first time this user is bucketed into this experiment.
    match client.assign(&experiment, &user) {
        Some(a) => println!(
            "{user_id} -> {} (value {}, in experiment: {}, reason: {})",
            a.variant, a.value, a.in_experiment, a.reason
        ),
        None => println!("no experiment named {experiment}"),
    }

    // Metric events for the analysis, batched in the background.
    client.track(&user_id, "purchase", Some(249.0));

    // Flushes buffered events before exiting.
    client.close().await;
    Ok(())
}

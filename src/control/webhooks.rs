//! Webhook delivery: a background task sends queued deliveries (queued with their
//! audit entries, see the store) as POSTs in each webhook's format (see
//! [`super::notify`]), concurrently and with a timeout, so a slow or dead receiver
//! never holds up anything else. Failures are retried with exponential backoff for
//! a bounded time, then given up; every attempt is in the delivery log.

use std::sync::Arc;
use std::time::Duration;

use futures_util::future::join_all;
use tokio::sync::watch;

use super::notify::{accepted, outgoing, Outgoing, PublicUrl};
use super::Leadership;
use crate::domain::webhook::{Delivery, DeliveryOutcome, Webhook};
use crate::domain::{now_millis, Millis};
use crate::store::Store;

const POLL_EVERY: Duration = Duration::from_millis(500);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
const BATCH: u32 = 50;
const FIRST_RETRY_MS: Millis = 1_000;
const MAX_RETRY_MS: Millis = 5 * 60 * 1_000;
/// After this long a delivery is given up.
const GIVE_UP_AFTER_MS: Millis = 60 * 60 * 1_000;

/// Delivers until `shutdown` flips; chat messages link to pages under `public_url`.
pub async fn run(
    store: Arc<dyn Store>,
    leadership: Arc<Leadership>,
    public_url: PublicUrl,
    mut shutdown: watch::Receiver<bool>,
) {
    let client = match reqwest::Client::builder().timeout(REQUEST_TIMEOUT).build() {
        Ok(client) => client,
        Err(err) => {
            tracing::error!(error = %err, "webhook client could not start");
            return;
        }
    };
    loop {
        tokio::select! {
            _ = tokio::time::sleep(POLL_EVERY) => {
                if leadership.check(store.as_ref()).await {
                    deliver_due(store.as_ref(), &client, &public_url).await;
                }
            }
            _ = crate::control::stopping(&mut shutdown) => return,
        }
    }
}

async fn deliver_due(store: &dyn Store, client: &reqwest::Client, public_url: &PublicUrl) {
    let due = match store.due_deliveries(now_millis(), BATCH).await {
        Ok(due) => due,
        Err(err) => {
            tracing::error!(error = %err, "reading due webhook deliveries failed");
            return;
        }
    };
    join_all(
        due.iter()
            .map(|(d, hook)| attempt(store, client, d, hook, public_url)),
    )
    .await;
}

async fn attempt(
    store: &dyn Store,
    client: &reqwest::Client,
    delivery: &Delivery,
    hook: &Webhook,
    public_url: &PublicUrl,
) {
    let now = now_millis();
    let outcome = match outgoing(hook, &delivery.payload, public_url, now) {
        Ok(request) => match send(client, delivery, hook, request).await {
            None => DeliveryOutcome::Delivered { at: now_millis() },
            Some(error) => retry_or_give_up(delivery, error),
        },
        // Sending it again would fail the same way.
        Err(err) => DeliveryOutcome::GaveUp {
            error: format!("the queued payload cannot be rendered: {err}"),
        },
    };
    if let Err(err) = store.record_delivery(delivery.id, &outcome).await {
        tracing::error!(error = %err, delivery = delivery.id, "recording a webhook delivery failed");
    }
}

/// Sends one request; the error, if it was not accepted.
async fn send(
    client: &reqwest::Client,
    delivery: &Delivery,
    hook: &Webhook,
    request: Outgoing,
) -> Option<String> {
    let mut builder = client
        .post(&hook.url)
        .query(&request.query)
        .header("content-type", "application/json")
        .header("x-sluice-event", &delivery.event)
        .header("x-sluice-delivery", delivery.id.to_string());
    for (name, value) in request.headers {
        builder = builder.header(name, value);
    }
    let response = match builder.body(request.body).send().await {
        Ok(response) => response,
        Err(err) => return Some(err.to_string()),
    };
    let status = response.status().as_u16();
    let body = response.text().await.unwrap_or_default();
    accepted(hook.format, status, &body).err()
}

fn retry_or_give_up(delivery: &Delivery, error: String) -> DeliveryOutcome {
    let now = now_millis();
    if now - delivery.created_at >= GIVE_UP_AFTER_MS {
        DeliveryOutcome::GaveUp { error }
    } else {
        DeliveryOutcome::Retry {
            error,
            next_attempt_at: now + backoff(delivery.attempts),
        }
    }
}

/// 1 s, 2 s, 4 s, … capped at 5 minutes.
fn backoff(attempts: i64) -> Millis {
    let doublings = attempts.clamp(0, 20) as u32;
    FIRST_RETRY_MS
        .saturating_mul(1 << doublings)
        .min(MAX_RETRY_MS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_five_minutes() {
        assert_eq!(backoff(0), 1_000);
        assert_eq!(backoff(3), 8_000);
        assert_eq!(backoff(30), MAX_RETRY_MS);
    }
}

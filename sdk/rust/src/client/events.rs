//! Exposure and track events: ids, timestamps, the bounded buffer and the
//! batching sender (`POST /sdk/v1/events`).
//!
//! The caller never waits: events go into a bounded channel with
//! `try_send`, and a full buffer drops the event and counts it. One
//! background task drains the channel into batches and retries a batch with
//! exponential backoff on connection errors, 5xx, 408 and 429; any other
//! 4xx means the server will never take it, so the batch is given up and
//! counted. Event ids make retries safe: the server stores each id once.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;
use tokio::sync::{mpsc, watch};

use super::{Inner, Stats};

/// One event as the API takes it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(crate) enum Event {
    Exposure {
        id: String,
        user: String,
        experiment: String,
        variant: String,
        ts: String,
        /// The experiment's `dimensions` among the user's attributes.
        #[serde(skip_serializing_if = "Option::is_none")]
        attributes: Option<crate::Attributes>,
    },
    Track {
        id: String,
        user: String,
        event: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        value: Option<f64>,
        ts: String,
    },
}

#[derive(Serialize)]
struct Batch<'a> {
    events: &'a [Event],
}

/// Unique event ids: a random 64-bit process key mixed with a counter
/// through SplitMix64, formatted like a UUID (version 4 bits set).
pub(crate) struct IdGenerator {
    key: u64,
    counter: AtomicU64,
}

fn splitmix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl IdGenerator {
    pub(crate) fn new() -> Self {
        // RandomState is seeded from the OS per process; hashing the time
        // with it gives a key no other process shares.
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        IdGenerator {
            key: RandomState::new().hash_one(nanos),
            counter: AtomicU64::new(0),
        }
    }

    pub(crate) fn next_id(&self) -> String {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        // The counter occupies the low half, so ids never repeat within a
        // process; the key makes them unique across processes.
        let hi = splitmix(self.key ^ splitmix(n.rotate_left(32)));
        let lo = self.key.rotate_left(17) ^ n;
        let hi = (hi & !0xf000) | 0x4000; // version 4
        let lo = (lo & !(0xc << 60)) | (0x8 << 60); // RFC 4122 variant
        format!(
            "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
            hi >> 32,
            (hi >> 16) & 0xffff,
            hi & 0xffff,
            lo >> 48,
            lo & 0xffff_ffff_ffff
        )
    }
}

/// The current time as RFC 3339 UTC with milliseconds, e.g.
/// `2025-01-31T08:15:00.123Z`.
pub(crate) fn now_rfc3339() -> String {
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO);
    rfc3339(d.as_secs(), d.subsec_millis())
}

pub(crate) fn rfc3339(secs: u64, millis: u32) -> String {
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    let rem = secs % 86_400;
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        rem / 3600,
        (rem / 60) % 60,
        rem % 60
    )
}

/// What one attempt to deliver a batch came to.
enum Outcome {
    Stored,
    Rejected,
    Retry,
}

async fn post_batch(inner: &Inner, batch: &[Event]) -> Outcome {
    let body = match serde_json::to_vec(&Batch { events: batch }) {
        Ok(b) => b,
        Err(_) => return Outcome::Rejected,
    };
    let response = inner
        .http
        .post(format!("{}/sdk/v1/events", inner.base_url))
        .bearer_auth(&inner.sdk_key)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(body)
        .timeout(inner.config.request_timeout)
        .send()
        .await;
    match response {
        Ok(r) if r.status().is_success() => Outcome::Stored,
        Ok(r) => {
            let s = r.status().as_u16();
            if (400..500).contains(&s) && s != 408 && s != 429 {
                Outcome::Rejected
            } else {
                Outcome::Retry
            }
        }
        Err(_) => Outcome::Retry,
    }
}

/// Delivers one batch, retrying with exponential backoff until it is
/// stored, rejected, or `deadline_rx` says to stop (then it counts as
/// dropped).
async fn deliver(inner: &Inner, batch: &[Event], stop: &mut watch::Receiver<bool>, closing: bool) {
    let stats: &Stats = &inner.stats;
    let n = batch.len() as u64;
    let mut delay = inner.config.retry_initial;
    loop {
        match post_batch(inner, batch).await {
            Outcome::Stored => {
                stats.batches_sent.fetch_add(1, Ordering::Relaxed);
                stats.events_sent.fetch_add(n, Ordering::Relaxed);
                return;
            }
            Outcome::Rejected => {
                stats.batches_rejected.fetch_add(1, Ordering::Relaxed);
                stats.events_rejected.fetch_add(n, Ordering::Relaxed);
                return;
            }
            Outcome::Retry => {
                stats.send_retries.fetch_add(1, Ordering::Relaxed);
            }
        }
        // While running, a stop signal ends the wait early so close() can
        // flush; while closing, the close deadline bounds us from outside.
        if closing {
            tokio::time::sleep(delay).await;
        } else {
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                _ = stop.changed() => {}
            }
        }
        delay = (delay * 2).min(inner.config.retry_max);
    }
}

/// The sender task: batches of up to `batch_size`, sent at least every
/// `flush_interval`, until shutdown; then drains and flushes what is left.
pub(crate) async fn run_sender(
    inner: std::sync::Arc<Inner>,
    mut rx: mpsc::Receiver<Event>,
    mut stop: watch::Receiver<bool>,
) {
    let batch_size = inner.config.batch_size.max(1);
    let mut batch: Vec<Event> = Vec::with_capacity(batch_size);
    loop {
        if *stop.borrow() {
            break;
        }
        let flush_at = tokio::time::Instant::now() + inner.config.flush_interval;
        while batch.len() < batch_size {
            tokio::select! {
                ev = rx.recv() => match ev {
                    Some(ev) => batch.push(ev),
                    None => break,
                },
                _ = tokio::time::sleep_until(flush_at) => break,
                _ = stop.changed() => break,
            }
        }
        if !batch.is_empty() {
            deliver(&inner, &batch, &mut stop, false).await;
            batch.clear();
        }
    }
    // Closing: everything still buffered goes out in full batches.
    rx.close();
    while let Some(ev) = rx.recv().await {
        batch.push(ev);
        if batch.len() >= batch_size {
            deliver(&inner, &batch, &mut stop, true).await;
            batch.clear();
        }
    }
    if !batch.is_empty() {
        deliver(&inner, &batch, &mut stop, true).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_formats_known_instants() {
        assert_eq!(rfc3339(0, 0), "1970-01-01T00:00:00.000Z");
        // 2024-02-29T12:34:56Z, a leap day (date -u -d @1709210096).
        assert_eq!(rfc3339(1_709_210_096, 7), "2024-02-29T12:34:56.007Z");
        // 2000-03-01T00:00:00Z (date -u -d @951868800).
        assert_eq!(rfc3339(951_868_800, 999), "2000-03-01T00:00:00.999Z");
    }

    #[test]
    fn ids_are_unique_and_uuid_shaped() {
        let g = IdGenerator::new();
        let ids: std::collections::HashSet<String> = (0..10_000).map(|_| g.next_id()).collect();
        assert_eq!(ids.len(), 10_000);
        let id = g.next_id();
        assert_eq!(id.len(), 36);
        assert_eq!(&id[14..15], "4");
    }

    #[test]
    fn events_serialize_to_the_api_shape() {
        let e = Event::Track {
            id: "i".into(),
            user: "u1".into(),
            event: "purchase".into(),
            value: Some(249.0),
            ts: "t".into(),
        };
        assert_eq!(
            serde_json::to_value(&e).unwrap_or_default(),
            serde_json::json!({"id": "i", "type": "track", "user": "u1", "event": "purchase", "value": 249.0, "ts": "t"})
        );
    }
}

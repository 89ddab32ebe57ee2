//! Exposure and track events: ids, timestamps, the bounded buffer and the
//! batching sender (`POST /sdk/v1/events`).
//!
//! The caller never waits: events go into a bounded channel with
//! `try_send`, and a full buffer drops the event and counts it. One
//! background task drains the channel into batches and retries a batch with
//! exponential backoff on connection errors, 5xx, 408 and 429. A 400 names
//! the events at fault: only those are given up, and the rest is sent again
//! at once; a 413 splits the batch. Any other 4xx means the server will never
//! take the batch, so it is given up. Events the server took without
//! counting them (`skipped`) are counted too. Event ids make retries safe:
//! the server stores each id once.

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
#[derive(Debug, PartialEq)]
enum Outcome {
    /// Stored; this many events were skipped (not counted by the server).
    Stored {
        skipped: u64,
    },
    /// A 400 naming these events (indices into the batch) as malformed.
    Refused {
        at_fault: Vec<usize>,
    },
    /// Too large: send it in halves.
    TooLarge,
    Rejected,
    Retry,
}

/// The answer's parts the client reads.
#[derive(serde::Deserialize, Default)]
struct Answer {
    #[serde(default)]
    skipped: Vec<serde::de::IgnoredAny>,
    #[serde(default)]
    error: Option<ErrorBody>,
}

#[derive(serde::Deserialize)]
struct ErrorBody {
    #[serde(default)]
    details: Vec<Detail>,
}

#[derive(serde::Deserialize)]
struct Detail {
    field: String,
}

/// The indices a 400's `details` name (`events[3].ts` → 3), in order, once each.
fn events_at_fault(error: Option<ErrorBody>, batch_len: usize) -> Vec<usize> {
    let mut at_fault: Vec<usize> = error
        .map(|e| e.details)
        .unwrap_or_default()
        .iter()
        .filter_map(|d| {
            let rest = d.field.strip_prefix("events[")?;
            rest[..rest.find(']')?].parse().ok()
        })
        .filter(|&i| i < batch_len)
        .collect();
    at_fault.sort_unstable();
    at_fault.dedup();
    at_fault
}

fn outcome_of(status: u16, body: &[u8], batch_len: usize) -> Outcome {
    let answer: Answer = serde_json::from_slice(body).unwrap_or_default();
    match status {
        200..=299 => Outcome::Stored {
            skipped: answer.skipped.len() as u64,
        },
        400 => match events_at_fault(answer.error, batch_len) {
            at_fault if at_fault.is_empty() => Outcome::Rejected,
            at_fault => Outcome::Refused { at_fault },
        },
        413 if batch_len > 1 => Outcome::TooLarge,
        408 | 429 => Outcome::Retry,
        401..=499 => Outcome::Rejected,
        _ => Outcome::Retry,
    }
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
    let Ok(response) = response else {
        return Outcome::Retry;
    };
    let status = response.status().as_u16();
    match response.bytes().await {
        Ok(body) => outcome_of(status, &body, batch.len()),
        Err(_) if (200..300).contains(&status) => Outcome::Stored { skipped: 0 },
        Err(_) => Outcome::Retry,
    }
}

/// Delivers a batch, retrying with exponential backoff until it is stored or
/// given up, or `stop` says to stop (then it counts as dropped). Events a
/// 400 names are given up alone; the others go again at once.
async fn deliver(
    inner: &Inner,
    mut batch: Vec<Event>,
    stop: &mut watch::Receiver<bool>,
    closing: bool,
) {
    let stats: &Stats = &inner.stats;
    let mut delay = inner.config.retry_initial;
    let mut pending: Vec<Vec<Event>> = Vec::new();
    loop {
        let n = batch.len() as u64;
        let next = match post_batch(inner, &batch).await {
            Outcome::Stored { skipped } => {
                stats.batches_sent.fetch_add(1, Ordering::Relaxed);
                stats
                    .events_sent
                    .fetch_add(n.saturating_sub(skipped), Ordering::Relaxed);
                stats.events_skipped.fetch_add(skipped, Ordering::Relaxed);
                None
            }
            Outcome::Refused { at_fault } => {
                stats.batches_rejected.fetch_add(1, Ordering::Relaxed);
                stats
                    .events_rejected
                    .fetch_add(at_fault.len() as u64, Ordering::Relaxed);
                let mut index = 0;
                batch.retain(|_| {
                    index += 1;
                    at_fault.binary_search(&(index - 1)).is_err()
                });
                Some(batch)
            }
            Outcome::TooLarge => {
                let second = batch.split_off(batch.len() / 2);
                pending.push(second);
                Some(batch)
            }
            Outcome::Rejected => {
                stats.batches_rejected.fetch_add(1, Ordering::Relaxed);
                stats.events_rejected.fetch_add(n, Ordering::Relaxed);
                None
            }
            Outcome::Retry => {
                stats.send_retries.fetch_add(1, Ordering::Relaxed);
                wait(delay, stop, closing).await;
                delay = (delay * 2).min(inner.config.retry_max);
                Some(batch)
            }
        };
        match next.filter(|b| !b.is_empty()).or_else(|| pending.pop()) {
            Some(again) => batch = again,
            None => return,
        }
    }
}

/// Waits before a retry. While running, a stop signal ends the wait early so
/// close() can flush; while closing, the close deadline bounds us from outside.
async fn wait(delay: Duration, stop: &mut watch::Receiver<bool>, closing: bool) {
    if closing {
        tokio::time::sleep(delay).await;
    } else {
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = stop.changed() => {}
        }
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
            let full = std::mem::replace(&mut batch, Vec::with_capacity(batch_size));
            deliver(&inner, full, &mut stop, false).await;
        }
    }
    // Closing: everything still buffered goes out in full batches.
    rx.close();
    while let Some(ev) = rx.recv().await {
        batch.push(ev);
        if batch.len() >= batch_size {
            let full = std::mem::replace(&mut batch, Vec::with_capacity(batch_size));
            deliver(&inner, full, &mut stop, true).await;
        }
    }
    if !batch.is_empty() {
        deliver(&inner, batch, &mut stop, true).await;
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
    fn a_400_gives_up_only_the_events_its_details_name() {
        let body = br#"{"error": {"code": "validation_failed", "message": "m", "details": [
            {"field": "events[3].ts", "problem": "p"}, {"field": "events[1].id", "problem": "p"},
            {"field": "events[3].user", "problem": "p"}, {"field": "events[99].id", "problem": "p"}]}}"#;
        assert_eq!(
            outcome_of(400, body, 5),
            Outcome::Refused {
                at_fault: vec![1, 3]
            }
        );
        let unnamed = br#"{"error": {"code": "validation_failed", "message": "m", "details": []}}"#;
        assert_eq!(outcome_of(400, unnamed, 5), Outcome::Rejected);
        assert_eq!(outcome_of(400, b"not json", 5), Outcome::Rejected);
    }

    #[test]
    fn skipped_events_are_counted_and_other_answers_classified() {
        let body = br#"{"accepted": 1, "duplicates": 0, "skipped": [
            {"index": 0, "problem": "unknown experiment"}, {"index": 2, "problem": "unknown variant"}]}"#;
        assert_eq!(outcome_of(202, body, 3), Outcome::Stored { skipped: 2 });
        assert_eq!(
            outcome_of(202, br#"{"accepted": 3, "duplicates": 0}"#, 3),
            Outcome::Stored { skipped: 0 }
        );
        assert_eq!(outcome_of(413, b"", 10), Outcome::TooLarge);
        assert_eq!(outcome_of(413, b"", 1), Outcome::Rejected);
        assert_eq!(outcome_of(429, b"", 3), Outcome::Retry);
        assert_eq!(outcome_of(401, b"", 3), Outcome::Rejected);
        assert_eq!(outcome_of(503, b"", 3), Outcome::Retry);
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

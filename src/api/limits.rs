//! Limits that keep one caller from taking the server from everyone else.
//!
//! Per-key rate limits: each key gets `rate` requests a second on each surface,
//! with bursts of two seconds' worth, by the generic cell rate algorithm: one
//! atomic "theoretical arrival time" per key, no lock on the hot path once the key
//! is known.
//!
//! A byte budget for event batches in flight: a batch reserves its body's size
//! before the body is read and keeps it until its events are committed (so the
//! budget covers the ingest queue too); when the budget is spent, a batch waits a
//! moment, then gets 503 with `Retry-After`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use axum::extract::FromRequestParts;
use axum::http::header::CONTENT_LENGTH;
use axum::http::request::Parts;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::error::ApiError;
use super::sdk::MAX_EVENTS_BODY_BYTES;
use super::ApiState;

/// How long a burst may run ahead of the steady rate.
const BURST: Duration = Duration::from_secs(2);

/// Requests per second per key; 0 turns a limit off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimits {
    /// `/sdk/v1/*`, GrowthBook's and OFREP's endpoints.
    pub sdk: u32,
    /// `/api/v1/*`.
    pub management: u32,
}

impl RateLimits {
    /// No limit on either surface.
    pub const OFF: Self = Self {
        sdk: 0,
        management: 0,
    };
}

impl Default for RateLimits {
    /// Far above what a busy app sends with one key to one server, far below
    /// what a loop without a pause does.
    fn default() -> Self {
        Self {
            sdk: 5_000,
            management: 100,
        }
    }
}

/// By default, how many bytes of event batches may be in flight at once.
pub const DEFAULT_EVENT_BYTES_IN_FLIGHT: usize = 256 * 1024 * 1024;
/// How long a batch waits for room before it is turned away.
const ROOM_WAIT: Duration = Duration::from_secs(1);
/// The budget's unit, so that the semaphore's permits fit in a `u32`.
const KIB: usize = 1024;

/// Bytes of event batches in flight, bounded.
pub(crate) struct EventBytes {
    room: Arc<Semaphore>,
    capacity_kib: u32,
}

impl EventBytes {
    pub(crate) fn new(bytes: usize) -> Self {
        let capacity_kib = u32::try_from(bytes.div_ceil(KIB).max(1)).unwrap_or(u32::MAX);
        Self {
            room: Arc::new(Semaphore::new(capacity_kib as usize)),
            capacity_kib,
        }
    }

    /// Reserves room for a body of `bytes` (a body larger than the whole budget
    /// waits for all of it), waiting a moment for room; `None` when there is none.
    pub(crate) async fn reserve(&self, bytes: usize) -> Option<OwnedSemaphorePermit> {
        let kib = u32::try_from(bytes.div_ceil(KIB).max(1)).unwrap_or(u32::MAX);
        let wanted = kib.min(self.capacity_kib);
        let room = self.room.clone().acquire_many_owned(wanted);
        match tokio::time::timeout(ROOM_WAIT, room).await {
            Ok(Ok(permit)) => Some(permit),
            _ => None,
        }
    }
}

/// Which limit a request counts against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Surface {
    Sdk,
    Management,
}

/// Too many requests: try again after this long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SlowDown(pub Duration);

pub(crate) struct Limiter {
    limits: RateLimits,
    epoch: Instant,
    arrivals: RwLock<HashMap<(i64, Surface), Arc<AtomicU64>>>,
}

impl Limiter {
    pub(crate) fn new(limits: RateLimits) -> Self {
        Self {
            limits,
            epoch: Instant::now(),
            arrivals: RwLock::default(),
        }
    }

    /// Counts one request of key `key_id` on `surface`.
    pub(crate) fn admit(&self, key_id: i64, surface: Surface) -> Result<(), SlowDown> {
        let rate = match surface {
            Surface::Sdk => self.limits.sdk,
            Surface::Management => self.limits.management,
        };
        if rate == 0 {
            return Ok(());
        }
        let interval = 1_000_000_000 / u64::from(rate);
        let now = u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX);
        let arrival = self.arrival_of(key_id, surface);
        gcra(&arrival, now, interval, BURST.as_nanos() as u64)
    }

    fn arrival_of(&self, key_id: i64, surface: Surface) -> Arc<AtomicU64> {
        let slot = (key_id, surface);
        if let Some(arrival) = self
            .arrivals
            .read()
            .ok()
            .and_then(|a| a.get(&slot).cloned())
        {
            return arrival;
        }
        match self.arrivals.write() {
            Ok(mut arrivals) => arrivals.entry(slot).or_default().clone(),
            Err(_) => Arc::default(),
        }
    }
}

/// One step of the generic cell rate algorithm: admits a request at `now` unless
/// the theoretical arrival time would run more than `tolerance` ahead of it.
fn gcra(arrival: &AtomicU64, now: u64, interval: u64, tolerance: u64) -> Result<(), SlowDown> {
    let mut seen = arrival.load(Ordering::Relaxed);
    loop {
        let next = seen.max(now).saturating_add(interval);
        let ahead = next - now;
        if ahead > tolerance {
            return Err(SlowDown(Duration::from_nanos(ahead - tolerance)));
        }
        match arrival.compare_exchange_weak(seen, next, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => return Ok(()),
            Err(current) => seen = current,
        }
    }
}

/// Room for an event batch's body, reserved before the body is read (its
/// `Content-Length`, or the largest body allowed when the length is not given)
/// and held until the handler is done with the batch.
pub(crate) struct BatchRoom {
    _room: OwnedSemaphorePermit,
}

impl FromRequestParts<ApiState> for BatchRoom {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &ApiState) -> Result<Self, ApiError> {
        let length = parts
            .headers
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok())
            .unwrap_or(MAX_EVENTS_BODY_BYTES)
            .min(MAX_EVENTS_BODY_BYTES);
        match state.event_bytes.reserve(length).await {
            Some(room) => Ok(BatchRoom { _room: room }),
            None => Err(ApiError::busy(
                "too many event batches are being stored; retry in a second",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: u64 = 1_000_000_000;

    #[test]
    fn a_burst_of_two_seconds_passes_then_the_steady_rate() {
        let arrival = AtomicU64::new(0);
        let interval = SECOND / 10;
        let admitted = (0..100)
            .filter(|_| gcra(&arrival, SECOND, interval, 2 * SECOND).is_ok())
            .count();
        assert_eq!(admitted, 20);
        let wait = gcra(&arrival, SECOND, interval, 2 * SECOND).unwrap_err();
        assert_eq!(wait, SlowDown(Duration::from_nanos(interval)));
        assert!(gcra(&arrival, SECOND + interval, interval, 2 * SECOND).is_ok());
        assert!(gcra(&arrival, SECOND + interval, interval, 2 * SECOND).is_err());
    }

    #[test]
    fn keys_and_surfaces_are_limited_apart_and_zero_is_unlimited() {
        let limiter = Limiter::new(RateLimits {
            sdk: 1,
            management: 0,
        });
        assert!(limiter.admit(1, Surface::Sdk).is_ok());
        assert!(limiter.admit(1, Surface::Sdk).is_ok());
        assert!(limiter.admit(1, Surface::Sdk).is_err());
        assert!(limiter.admit(2, Surface::Sdk).is_ok());
        assert!((0..1000).all(|_| limiter.admit(1, Surface::Management).is_ok()));
    }
}

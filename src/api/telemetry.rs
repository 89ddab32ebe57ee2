//! Request counters and latency histograms per route, and the Prometheus text
//! exposition of them together with the event and ruleset gauges.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;

use std::sync::Arc;

use crate::control::{ExposureLog, GuardHealth};

const LATENCY_BUCKETS_SECONDS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

#[derive(Default)]
struct RouteStats {
    by_status: BTreeMap<u16, u64>,
    bucket_counts: [u64; LATENCY_BUCKETS_SECONDS.len()],
    count: u64,
    sum_seconds: f64,
}

#[derive(Default)]
pub(crate) struct Telemetry {
    /// Keyed by "METHOD route"; looked up without allocating on every request.
    routes: Mutex<BTreeMap<String, RouteStats>>,
    pub events_accepted: AtomicU64,
    pub events_duplicate: AtomicU64,
    /// Well-formed events not counted: they named what the key is not served.
    pub events_skipped: AtomicU64,
}

impl Telemetry {
    fn observe(&self, method: &str, route: &str, status: u16, seconds: f64) {
        let Ok(mut routes) = self.routes.lock() else {
            return;
        };
        let key = format!("{method} {route}");
        let stats = match routes.get_mut(&key) {
            Some(stats) => stats,
            None => routes.entry(key).or_default(),
        };
        *stats.by_status.entry(status).or_default() += 1;
        stats.count += 1;
        stats.sum_seconds += seconds;
        for (bucket, bound) in stats.bucket_counts.iter_mut().zip(LATENCY_BUCKETS_SECONDS) {
            if seconds <= bound {
                *bucket += 1;
            }
        }
    }

    /// The Prometheus text format (version 0.0.4).
    pub(crate) fn render(
        &self,
        ruleset_version: u64,
        exposures: &ExposureLog,
        guard: &GuardHealth,
    ) -> String {
        let mut out = String::new();
        let accepted = self.events_accepted.load(Ordering::Relaxed);
        let duplicate = self.events_duplicate.load(Ordering::Relaxed);
        let _ = writeln!(out, "# HELP sluice_events_total Events received, by outcome.\n# TYPE sluice_events_total counter");
        let _ = writeln!(
            out,
            "sluice_events_total{{outcome=\"accepted\"}} {accepted}"
        );
        let _ = writeln!(
            out,
            "sluice_events_total{{outcome=\"duplicate\"}} {duplicate}"
        );
        let _ = writeln!(
            out,
            "sluice_events_total{{outcome=\"skipped\"}} {}",
            self.events_skipped.load(Ordering::Relaxed)
        );
        let _ = writeln!(out, "# HELP sluice_exposures_dropped_total Server-side exposures lost: the write queue was full, or the database refused them for good.\n# TYPE sluice_exposures_dropped_total counter");
        let _ = writeln!(
            out,
            "sluice_exposures_dropped_total {}",
            exposures.dropped()
        );
        let _ = writeln!(out, "# HELP sluice_exposures_repeats_total Server-side exposures not queued because the same one was logged recently.\n# TYPE sluice_exposures_repeats_total counter");
        let _ = writeln!(
            out,
            "sluice_exposures_repeats_total {}",
            exposures.repeats()
        );
        let _ = writeln!(out, "# HELP sluice_ruleset_version The ruleset version this server serves.\n# TYPE sluice_ruleset_version gauge");
        let _ = writeln!(out, "sluice_ruleset_version {ruleset_version}");
        let _ = writeln!(out, "# HELP sluice_guard_passes_total Completed passes of the guard loop over every watched experiment.\n# TYPE sluice_guard_passes_total counter");
        let _ = writeln!(out, "sluice_guard_passes_total {}", guard.passes());
        let _ = writeln!(out, "# HELP sluice_guard_check_failures_total Guard checks of one experiment that failed or panicked (the others still ran).\n# TYPE sluice_guard_check_failures_total counter");
        let _ = writeln!(
            out,
            "sluice_guard_check_failures_total {}",
            guard.check_failures()
        );
        let _ = writeln!(out, "# HELP sluice_guard_restarts_total Times the guard loop ended unexpectedly and was started again.\n# TYPE sluice_guard_restarts_total counter");
        let _ = writeln!(out, "sluice_guard_restarts_total {}", guard.restarts());
        let Ok(routes) = self.routes.lock() else {
            return out;
        };
        let _ = writeln!(out, "# HELP sluice_http_requests_total HTTP requests, by route and status.\n# TYPE sluice_http_requests_total counter");
        for (key, stats) in routes.iter() {
            let (method, route) = key.split_once(' ').unwrap_or((key, ""));
            for (status, count) in &stats.by_status {
                let _ = writeln!(out, "sluice_http_requests_total{{method=\"{method}\",route=\"{route}\",status=\"{status}\"}} {count}");
            }
        }
        let _ = writeln!(out, "# HELP sluice_http_request_duration_seconds HTTP request latency.\n# TYPE sluice_http_request_duration_seconds histogram");
        for (key, stats) in routes.iter() {
            let (method, route) = key.split_once(' ').unwrap_or((key, ""));
            let labels = format!("method=\"{method}\",route=\"{route}\"");
            for (count, bound) in stats.bucket_counts.iter().zip(LATENCY_BUCKETS_SECONDS) {
                let _ = writeln!(out, "sluice_http_request_duration_seconds_bucket{{{labels},le=\"{bound}\"}} {count}");
            }
            let _ = writeln!(
                out,
                "sluice_http_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {}",
                stats.count
            );
            let _ = writeln!(
                out,
                "sluice_http_request_duration_seconds_sum{{{labels}}} {}",
                stats.sum_seconds
            );
            let _ = writeln!(
                out,
                "sluice_http_request_duration_seconds_count{{{labels}}} {}",
                stats.count
            );
        }
        out
    }
}

/// Middleware: times each request and records it under its route template (never
/// the raw path, so keys in URLs do not explode the label set).
pub(crate) async fn record(
    State(telemetry): State<Arc<Telemetry>>,
    request: Request,
    next: Next,
) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", |p| p.as_str())
        .to_owned();
    let method = request.method().as_str().to_owned();
    let started = Instant::now();
    let response = next.run(request).await;
    let seconds = started.elapsed().as_secs_f64();
    let status = response.status().as_u16();
    tracing::debug!(%method, %route, status, latency_ms = seconds * 1e3, "request");
    telemetry.observe(&method, &route, status, seconds);
    response
}

//! Request counters and latency histograms per route, and the Prometheus text
//! exposition of them together with the event and ruleset gauges.

use std::fmt::Write;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;

use crate::control::{ExposureLog, GuardHealth};

const LATENCY_BUCKETS_SECONDS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];
/// More than the server has routes (each method of a path counts once).
const ROUTE_SLOTS: usize = 256;
/// HTTP statuses are 100 to 599.
const FIRST_STATUS: u16 = 100;
const STATUSES: usize = 500;

/// One method of one route: counters only, so recording takes no lock.
struct RouteStats {
    method: Method,
    route: Box<str>,
    by_status: Box<[AtomicU64]>,
    bucket_counts: [AtomicU64; LATENCY_BUCKETS_SECONDS.len()],
    count: AtomicU64,
    sum_nanos: AtomicU64,
}

impl RouteStats {
    fn new(method: &Method, route: &str) -> Self {
        Self {
            method: method.clone(),
            route: route.into(),
            by_status: (0..STATUSES).map(|_| AtomicU64::new(0)).collect(),
            bucket_counts: Default::default(),
            count: AtomicU64::new(0),
            sum_nanos: AtomicU64::new(0),
        }
    }

    fn is(&self, method: &Method, route: &str) -> bool {
        self.method == method && &*self.route == route
    }

    fn observe(&self, status: u16, elapsed: Duration) {
        let index = usize::from(status.saturating_sub(FIRST_STATUS)).min(STATUSES - 1);
        if let Some(count) = self.by_status.get(index) {
            count.fetch_add(1, Ordering::Relaxed);
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        let nanos = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        self.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
        let seconds = elapsed.as_secs_f64();
        for (bucket, bound) in self.bucket_counts.iter().zip(LATENCY_BUCKETS_SECONDS) {
            if seconds <= bound {
                bucket.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// The routes seen so far, in an open-addressed table of write-once slots:
/// finding a route's counters is a hash and an atomic load, with no lock and no
/// allocation once the route has been seen.
struct RouteTable {
    slots: Box<[OnceLock<RouteStats>]>,
}

impl Default for RouteTable {
    fn default() -> Self {
        Self {
            slots: (0..ROUTE_SLOTS).map(|_| OnceLock::new()).collect(),
        }
    }
}

impl RouteTable {
    /// The counters of `method route`, claiming a free slot the first time.
    fn stats(&self, method: &Method, route: &str) -> Option<&RouteStats> {
        let mut hasher = DefaultHasher::new();
        (method.as_str(), route).hash(&mut hasher);
        let start = hasher.finish() as usize;
        (0..ROUTE_SLOTS).find_map(|probe| {
            let slot = self.slots.get((start + probe) % ROUTE_SLOTS)?;
            let stats = slot.get_or_init(|| RouteStats::new(method, route));
            stats.is(method, route).then_some(stats)
        })
    }

    /// Every route seen, by path then method.
    fn seen(&self) -> Vec<&RouteStats> {
        let mut seen: Vec<&RouteStats> = self.slots.iter().filter_map(OnceLock::get).collect();
        seen.sort_by(|a, b| (&a.route, a.method.as_str()).cmp(&(&b.route, b.method.as_str())));
        seen
    }
}

#[derive(Default)]
pub(crate) struct Telemetry {
    routes: RouteTable,
    pub events_accepted: AtomicU64,
    pub events_duplicate: AtomicU64,
    /// Well-formed events not counted: they named what the key is not served.
    pub events_skipped: AtomicU64,
}

impl Telemetry {
    fn observe(&self, method: &Method, route: &str, status: u16, elapsed: Duration) {
        if let Some(stats) = self.routes.stats(method, route) {
            stats.observe(status, elapsed);
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
        let routes = self.routes.seen();
        let _ = writeln!(out, "# HELP sluice_http_requests_total HTTP requests, by route and status.\n# TYPE sluice_http_requests_total counter");
        for stats in &routes {
            let (method, route) = (stats.method.as_str(), &stats.route);
            for (status, count) in (FIRST_STATUS..).zip(stats.by_status.iter()) {
                let count = count.load(Ordering::Relaxed);
                if count > 0 {
                    let _ = writeln!(out, "sluice_http_requests_total{{method=\"{method}\",route=\"{route}\",status=\"{status}\"}} {count}");
                }
            }
        }
        let _ = writeln!(out, "# HELP sluice_http_request_duration_seconds HTTP request latency.\n# TYPE sluice_http_request_duration_seconds histogram");
        for stats in &routes {
            let labels = format!("method=\"{}\",route=\"{}\"", stats.method, stats.route);
            for (count, bound) in stats.bucket_counts.iter().zip(LATENCY_BUCKETS_SECONDS) {
                let count = count.load(Ordering::Relaxed);
                let _ = writeln!(out, "sluice_http_request_duration_seconds_bucket{{{labels},le=\"{bound}\"}} {count}");
            }
            let count = stats.count.load(Ordering::Relaxed);
            let sum_seconds = stats.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9;
            let _ = writeln!(
                out,
                "sluice_http_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {count}"
            );
            let _ = writeln!(
                out,
                "sluice_http_request_duration_seconds_sum{{{labels}}} {sum_seconds}"
            );
            let _ = writeln!(
                out,
                "sluice_http_request_duration_seconds_count{{{labels}}} {count}"
            );
        }
        out
    }
}

/// The request's method, or `OTHER` for one HTTP does not define: routes and
/// methods, and so the label set, stay bounded whatever clients send.
fn known_method(method: &Method) -> Method {
    const KNOWN: [Method; 9] = [
        Method::GET,
        Method::POST,
        Method::PUT,
        Method::PATCH,
        Method::DELETE,
        Method::HEAD,
        Method::OPTIONS,
        Method::CONNECT,
        Method::TRACE,
    ];
    if KNOWN.contains(method) {
        method.clone()
    } else {
        Method::from_bytes(b"OTHER").unwrap_or_default()
    }
}

/// Middleware: times each request and records it under its route template (never
/// the raw path, so keys in URLs do not explode the label set).
pub(crate) async fn record(
    State(telemetry): State<Arc<Telemetry>>,
    request: Request,
    next: Next,
) -> Response {
    let method = known_method(request.method());
    let route = request.extensions().get::<MatchedPath>().cloned();
    let route = route.as_ref().map_or("unmatched", MatchedPath::as_str);
    let started = Instant::now();
    let response = next.run(request).await;
    let elapsed = started.elapsed();
    let status = response.status().as_u16();
    tracing::debug!(%method, route, status, latency_ms = elapsed.as_secs_f64() * 1e3, "request");
    telemetry.observe(&method, route, status, elapsed);
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_counted_per_method_route_and_status_from_every_thread() {
        let telemetry = Arc::new(Telemetry::default());
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let telemetry = telemetry.clone();
                std::thread::spawn(move || {
                    for i in 0..1000 {
                        let status = if i % 10 == 0 { 429 } else { 200 };
                        let elapsed = Duration::from_micros(700);
                        telemetry.observe(&Method::POST, "/sdk/v1/assign", status, elapsed);
                        telemetry.observe(&Method::GET, "/sdk/v1/ruleset", 304, elapsed);
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        let stats = telemetry.routes.seen();
        assert_eq!(stats.len(), 2);
        let assign = stats
            .iter()
            .find(|s| &*s.route == "/sdk/v1/assign")
            .unwrap();
        assert_eq!(assign.count.load(Ordering::Relaxed), 4000);
        assert_eq!(assign.by_status[200 - 100].load(Ordering::Relaxed), 3600);
        assert_eq!(assign.by_status[429 - 100].load(Ordering::Relaxed), 400);
        // 0.7 ms is above the 0.5 ms bucket and within the 1 ms one.
        assert_eq!(assign.bucket_counts[0].load(Ordering::Relaxed), 0);
        assert_eq!(assign.bucket_counts[1].load(Ordering::Relaxed), 4000);
        assert!((assign.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9 - 2.8).abs() < 1e-9);
    }

    #[test]
    fn methods_http_does_not_define_share_one_label() {
        let telemetry = Telemetry::default();
        for method in ["BREW", "PROPFIND", "X-ANYTHING"] {
            let method = known_method(&Method::from_bytes(method.as_bytes()).unwrap());
            telemetry.observe(&method, "unmatched", 405, Duration::ZERO);
        }
        let stats = telemetry.routes.seen();
        assert_eq!(stats.len(), 1);
        assert_eq!(stats[0].method.as_str(), "OTHER");
        assert_eq!(stats[0].count.load(Ordering::Relaxed), 3);
    }
}

//! Store benchmarks without HTTP: folding a batch of 1000 events (one exposure and
//! three purchases per user) into SQLite, one transaction per batch.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed unwrap is a failed test

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use sluice::domain::{Event, EventKind};
use tokio::runtime::Runtime;

fn batch(number: u64) -> Vec<Event> {
    (0..1000u64)
        .map(|j| {
            let n = number * 1000 + j;
            let user = format!("user-{}", n / 4);
            let kind = if j % 4 == 0 {
                let variant = if (n / 4) % 2 == 0 {
                    "control"
                } else {
                    "treatment"
                };
                EventKind::Exposure {
                    experiment: "checkout-flow".into(),
                    variant: variant.into(),
                    dimensions: None,
                }
            } else {
                EventKind::Track {
                    event: "purchase".into(),
                    value: 19.9,
                }
            };
            Event {
                id: format!("e{n}"),
                user,
                ts: 1_700_000_000_000 + j as i64,
                kind,
            }
        })
        .collect()
}

fn ingest(c: &mut Criterion) {
    let runtime = Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("bench.db").display());
    let store = runtime.block_on(sluice::store::open(&url)).unwrap();
    let next = AtomicU64::new(0);
    let mut group = c.benchmark_group("store");
    group.throughput(Throughput::Elements(1000));
    group.sample_size(20);
    group.measurement_time(Duration::from_secs(8));
    group.bench_function("sqlite_ingest_batch_1000", |b| {
        b.to_async(&runtime).iter_custom(|iterations| {
            let batches: Vec<Vec<Event>> = (0..iterations)
                .map(|_| batch(next.fetch_add(1, Ordering::Relaxed)))
                .collect();
            let store = store.clone();
            async move {
                let started = Instant::now();
                for events in &batches {
                    store.ingest(&[events.as_slice()]).await.unwrap();
                }
                started.elapsed()
            }
        })
    });
    group.finish();
}

criterion_group!(benches, ingest);
criterion_main!(benches);

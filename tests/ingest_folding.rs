//! Property: however events are ordered, split into batches or repeated, the folded
//! per-variant totals equal a direct computation from the distinct events.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed unwrap is a failed test

mod common;

use std::collections::{BTreeMap, HashMap};

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use sluice::domain::{Event, EventKind};
use sluice::store::{ExposureSummary, UserFilter, VariantTotals};

use common::{Backend, TestDb};

const VARIANTS: [&str; 2] = ["control", "treatment"];
const EVENTS: [&str; 2] = ["purchase", "view"];

fn generate(rng: &mut StdRng) -> Vec<Event> {
    let mut events = Vec::new();
    let mut ts = 0;
    let mut next_ts = |rng: &mut StdRng| {
        ts += 1;
        ts * 10 + rng.random_range(0..5_000) * 10
    };
    for user in 0..40 {
        let home = VARIANTS[user % 2];
        for _ in 0..rng.random_range(1..=3) {
            let variant = if rng.random_bool(0.1) {
                VARIANTS[(user + 1) % 2]
            } else {
                home
            };
            events.push(Event {
                id: format!("x{}", events.len()),
                user: format!("user-{user}"),
                ts: next_ts(rng),
                kind: EventKind::Exposure {
                    experiment: "exp".into(),
                    variant: variant.into(),
                    dimensions: None,
                },
            });
        }
        for _ in 0..rng.random_range(0..6) {
            events.push(Event {
                id: format!("t{}", events.len()),
                user: format!("user-{user}"),
                ts: next_ts(rng),
                kind: EventKind::Track {
                    event: EVENTS[rng.random_range(0..2)].into(),
                    value: f64::from(rng.random_range(1..100)),
                },
            });
        }
    }
    events
}

/// The answer computed directly from the distinct events.
fn reference(events: &[Event], metric: &str) -> (ExposureSummary, Vec<VariantTotals>) {
    let mut firsts: HashMap<&str, (i64, &str, bool)> = HashMap::new();
    for event in events {
        if let EventKind::Exposure { variant, .. } = &event.kind {
            let entry = firsts
                .entry(&event.user)
                .or_insert((event.ts, variant, false));
            entry.2 |= entry.1 != variant.as_str();
            if event.ts < entry.0 {
                (entry.0, entry.1) = (event.ts, variant);
            }
        }
    }
    let mut summary = ExposureSummary::default();
    let mut totals: BTreeMap<&str, VariantTotals> = BTreeMap::new();
    let mut users_per_variant: BTreeMap<&str, u64> = BTreeMap::new();
    for (user, (first_ts, variant, multiple)) in &firsts {
        if *multiple {
            summary.multiple_exposures += 1;
            continue;
        }
        *users_per_variant.entry(variant).or_default() += 1;
        let (mut sum, mut count) = (0.0, 0.0);
        for event in events
            .iter()
            .filter(|e| e.user == *user && e.ts >= *first_ts)
        {
            if let EventKind::Track { event, value } = &event.kind {
                if event == metric {
                    sum += value;
                    count += 1.0;
                }
            }
        }
        let t = totals.entry(variant).or_insert_with(|| VariantTotals {
            variant: variant.to_string(),
            ..Default::default()
        });
        t.users += 1;
        t.converted += u64::from(count > 0.0);
        t.value_sum += sum;
        t.value_sum_squares += sum * sum;
        t.count_sum += count;
        t.count_sum_squares += count * count;
    }
    summary.users = users_per_variant
        .into_iter()
        .map(|(v, n)| (v.to_owned(), n))
        .collect();
    (summary, totals.into_values().collect())
}

async fn folding_is_independent_of_order_batching_and_repeats(backend: Backend) {
    for seed in 0..8u64 {
        let mut rng = StdRng::seed_from_u64(seed);
        let events = generate(&mut rng);
        let mut delivered = events.clone();
        // Retries: a quarter of the events arrive twice.
        let repeats: Vec<Event> = events
            .iter()
            .filter(|_| rng.random_bool(0.25))
            .cloned()
            .collect();
        delivered.extend(repeats);
        delivered.shuffle(&mut rng);

        let db = TestDb::new(backend).await;
        let store = sluice::store::open(&db.url).await.unwrap();
        let mut accepted = 0;
        let mut rest = delivered.as_slice();
        while !rest.is_empty() {
            let (first, tail) = rest.split_at(rng.random_range(1..=rest.len().min(40)));
            let (second, tail) = tail.split_at(rng.random_range(0..=tail.len().min(20)));
            let outcomes = store.ingest(&[first, second]).await.unwrap();
            accepted += outcomes.iter().map(|o| o.accepted).sum::<u64>();
            rest = tail;
        }
        assert_eq!(
            accepted,
            events.len() as u64,
            "seed {seed}: every id counted once"
        );

        for metric in EVENTS {
            let (summary, totals) = reference(&events, metric);
            assert_eq!(
                store
                    .exposure_summary("exp", &UserFilter::EVERYONE)
                    .await
                    .unwrap(),
                summary,
                "seed {seed}"
            );
            assert_eq!(
                store
                    .variant_totals("exp", metric, &UserFilter::EVERYONE)
                    .await
                    .unwrap(),
                totals,
                "seed {seed}, {metric}"
            );
        }
    }
}

/// Several writers at once (on PostgreSQL, two servers' stores) fold the same users
/// as one writer would: nothing is lost or counted twice.
async fn concurrent_writers_fold_like_one(backend: Backend) {
    const WRITERS: usize = 4;
    for seed in 0..4u64 {
        let mut rng = StdRng::seed_from_u64(100 + seed);
        let events = generate(&mut rng);
        let mut delivered = events.clone();
        delivered.extend(events.iter().filter(|_| rng.random_bool(0.25)).cloned());
        delivered.shuffle(&mut rng);

        let db = TestDb::new(backend).await;
        let servers = match backend {
            Backend::Sqlite => 1,
            Backend::Postgres => 2,
        };
        let mut stores = Vec::new();
        for _ in 0..servers {
            stores.push(sluice::store::open(&db.url).await.unwrap());
        }
        let mut shares: Vec<Vec<Vec<Event>>> = vec![Vec::new(); WRITERS];
        for (i, batch) in delivered.chunks(25).enumerate() {
            shares[i % WRITERS].push(batch.to_vec());
        }
        let writers = shares.into_iter().enumerate().map(|(i, share)| {
            let store = stores[i % servers].clone();
            tokio::spawn(async move {
                let mut accepted = 0;
                for batch in share {
                    let outcomes = store.ingest(&[batch.as_slice()]).await.unwrap();
                    accepted += outcomes[0].accepted;
                }
                accepted
            })
        });
        let mut accepted = 0;
        for writer in writers.collect::<Vec<_>>() {
            accepted += writer.await.unwrap();
        }
        assert_eq!(accepted, events.len() as u64, "seed {seed}");
        for metric in EVENTS {
            let (summary, totals) = reference(&events, metric);
            let store = &stores[0];
            assert_eq!(
                store
                    .exposure_summary("exp", &UserFilter::EVERYONE)
                    .await
                    .unwrap(),
                summary
            );
            assert_eq!(
                store
                    .variant_totals("exp", metric, &UserFilter::EVERYONE)
                    .await
                    .unwrap(),
                totals
            );
        }
    }
}

on_both_backends!(
    folding_is_independent_of_order_batching_and_repeats,
    concurrent_writers_fold_like_one,
);

//! The CPU cost of a 100-message batch before storage: `serde_json` parsing alone (the
//! ceiling), Prossimo's validation, and the full pre-commit work (validation, serialisation
//! for storage, identifier extraction).
// A benchmark harness run by a developer: a failed step ends the run with its message.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::disallowed_methods)]

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use prossimo_bench::batch_body;
use prossimo_identity::IdentityConfig;
use prossimo_model::{Limits, parse_batch};
use prossimo_store::Incoming;

fn parse(c: &mut Criterion) {
    let body = batch_body(0, 100, 1_000_000);
    let limits = Limits::default();
    let identity = IdentityConfig::default();
    let money = prossimo_model::Money::default();
    let now = chrono::Utc::now();
    let mut group = c.benchmark_group("batch_of_100");
    group.throughput(Throughput::Elements(100));
    group.bench_function("serde_json_value", |b| {
        b.iter(|| serde_json::from_slice::<serde_json::Value>(&body).unwrap())
    });
    group.bench_function("prossimo_parse_batch", |b| {
        b.iter(|| parse_batch(&body, now, &limits).unwrap())
    });
    group.bench_function("prossimo_parse_and_prepare", |b| {
        b.iter(|| {
            let payload = parse_batch(&body, now, &limits).unwrap();
            payload
                .messages
                .into_iter()
                .map(|m| Incoming::new(1, m, &identity, &money).unwrap())
                .collect::<Vec<_>>()
        })
    });
    group.finish();
}

criterion_group!(benches, parse);
criterion_main!(benches);

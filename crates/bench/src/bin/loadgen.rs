//! Load generator for the tracking API.
//!
//! `batch`: closed loop, N connections each sending 100-message batches as fast as the server
//! acknowledges them (throughput and latency of durable ingestion).
//! `rate`: open loop, single messages at a fixed rate; latency is measured from each
//! request's scheduled time, so a stalled server cannot hide its queueing (no coordinated
//! omission).
//! `paced`: open loop, batches at a fixed message rate (background load of a known size,
//! e.g. 10,000 events/s as 100 batches of 100 per second); latency from the scheduled time.
//!
//! `--payload viewed` (default) sends the one `Product Viewed` event of `lib.rs`;
//! `--payload shop` a realistic mix (views, cart adds, checkouts, orders, email opens on the
//! web, the app and in stores; `shop_message`), with `--history-days` to spread event times
//! over the past and `--traits` to carry each person's traits.
// A benchmark harness run by a developer: a failed step ends the run with its message.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::disallowed_methods)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use clap::{Parser, Subcommand};
use hdrhistogram::Histogram;
use prossimo_bench::{ShopOptions, Template, shop_batch_body};
use serde_json::json;
use tokio::sync::Mutex;

#[derive(Parser)]
struct Args {
    /// Base URL of the server, e.g. http://127.0.0.1:8080
    #[arg(long)]
    url: String,
    #[arg(long)]
    write_key: String,
    /// Distinct people the messages belong to.
    #[arg(long, default_value_t = 1_000_000)]
    people: u64,
    /// First message number (use a new range to avoid de-duplication of earlier runs).
    #[arg(long, default_value_t = 0)]
    start: u64,
    /// `viewed`: the single `Product Viewed` template; `shop`: the realistic shop mix.
    #[arg(long, default_value = "viewed")]
    payload: Payload,
    /// Shop mix: spread event times over this many days before arrival (0: live events).
    #[arg(long, default_value_t = 0)]
    history_days: u64,
    /// Shop mix: carry each person's traits in `context.traits`.
    #[arg(long)]
    traits: bool,
    #[command(subcommand)]
    mode: Mode,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Payload {
    Viewed,
    Shop,
}

/// Makes batch bodies of the chosen payload.
struct Bodies {
    template: Template,
    shop: Option<ShopOptions>,
    people: u64,
    size: u64,
}

impl Bodies {
    fn new(args: &Args, size: u64) -> Bodies {
        Bodies {
            template: Template::new(size, true),
            shop: (args.payload == Payload::Shop).then_some(ShopOptions {
                people: args.people,
                history_days: args.history_days,
                traits: args.traits,
            }),
            people: args.people,
            size,
        }
    }

    fn batch(&mut self, first: u64) -> Vec<u8> {
        match &self.shop {
            Some(opts) => shop_batch_body(first, self.size, opts),
            None => self.template.fill(first, self.people).to_vec(),
        }
    }
}

#[derive(Subcommand)]
enum Mode {
    Batch {
        #[arg(long, default_value_t = 32)]
        connections: usize,
        #[arg(long, default_value_t = 100)]
        size: u64,
        /// Seconds to run.
        #[arg(long, default_value_t = 20)]
        duration: u64,
        /// Stop after this many messages instead.
        #[arg(long)]
        total: Option<u64>,
    },
    Paced {
        /// Messages per second.
        #[arg(long, default_value_t = 10_000)]
        rate: u64,
        /// Messages per batch.
        #[arg(long, default_value_t = 100)]
        size: u64,
        #[arg(long, default_value_t = 30)]
        duration: u64,
        /// Requests in flight at most; a schedule slot that finds them all busy is sent late
        /// (and its latency, measured from the slot, shows it).
        #[arg(long, default_value_t = 256)]
        max_in_flight: usize,
    },
    Rate {
        /// Requests per second.
        #[arg(long, default_value_t = 2_000)]
        rate: u64,
        #[arg(long, default_value_t = 20)]
        duration: u64,
    },
}

/// Sends one request; true when the server acknowledged it.
async fn send(client: &reqwest::Client, url: &str, key: &str, body: Vec<u8>) -> bool {
    let sent = client
        .post(url)
        .basic_auth(key, Some(""))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await;
    matches!(sent, Ok(r) if r.status().is_success())
}

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 120_000_000, 3).expect("histogram bounds")
}

fn report(
    mode: &str,
    messages: u64,
    requests: u64,
    errors: u64,
    elapsed: Duration,
    h: &Histogram<u64>,
) {
    let secs = elapsed.as_secs_f64();
    let ms = |q: f64| h.value_at_quantile(q) as f64 / 1000.0;
    println!(
        "{mode}: {messages} messages in {requests} requests over {secs:.1} s = {:.0} messages/s, {:.0} requests/s, {errors} errors",
        messages as f64 / secs,
        requests as f64 / secs
    );
    println!(
        "latency ms: p50 {:.2}  p90 {:.2}  p99 {:.2}  p99.9 {:.2}  max {:.2}",
        ms(0.5),
        ms(0.9),
        ms(0.99),
        ms(0.999),
        h.max() as f64 / 1000.0
    );
    let line = json!({"mode": mode, "messages": messages, "requests": requests, "errors": errors, "seconds": secs,
        "messages_per_s": messages as f64 / secs, "p50_ms": ms(0.5), "p90_ms": ms(0.9), "p99_ms": ms(0.99),
        "p999_ms": ms(0.999), "max_ms": h.max() as f64 / 1000.0});
    println!("{line}");
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    if args.payload == Payload::Viewed && (args.history_days > 0 || args.traits) {
        bail!("--history-days and --traits apply to --payload shop");
    }
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(1024)
        .tcp_nodelay(true)
        .build()?;
    match args.mode {
        Mode::Batch {
            connections,
            size,
            duration,
            total,
        } => {
            let next = Arc::new(AtomicU64::new(0));
            let errors = Arc::new(AtomicU64::new(0));
            let merged = Arc::new(Mutex::new(histogram()));
            let deadline = Instant::now() + Duration::from_secs(duration);
            let started = Instant::now();
            let mut tasks = Vec::new();
            for _ in 0..connections {
                let (client, next, errors, merged) =
                    (client.clone(), next.clone(), errors.clone(), merged.clone());
                let url = format!("{}/v1/batch", args.url);
                let key = args.write_key.clone();
                let start = args.start;
                let mut bodies = Bodies::new(&args, size);
                tasks.push(tokio::spawn(async move {
                    let mut h = histogram();
                    loop {
                        let k = next.fetch_add(1, Ordering::Relaxed);
                        if Instant::now() > deadline || total.is_some_and(|t| k * size >= t) {
                            break;
                        }
                        let body = bodies.batch(start + k * size);
                        let t0 = Instant::now();
                        if send(&client, &url, &key, body).await {
                            h.saturating_record(t0.elapsed().as_micros() as u64);
                        } else {
                            errors.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    merged.lock().await.add(&h).ok();
                }));
            }
            for t in tasks {
                t.await?;
            }
            let elapsed = started.elapsed();
            let h = merged.lock().await;
            let requests = h.len();
            report(
                "batch",
                requests * size,
                requests,
                errors.load(Ordering::Relaxed),
                elapsed,
                &h,
            );
        }
        Mode::Paced {
            rate,
            size,
            duration,
            max_in_flight,
        } => {
            if rate == 0 || size == 0 {
                bail!("--rate and --size must be positive");
            }
            let errors = Arc::new(AtomicU64::new(0));
            let merged = Arc::new(Mutex::new(histogram()));
            let slots = Arc::new(tokio::sync::Semaphore::new(max_in_flight.max(1)));
            let url = format!("{}/v1/batch", args.url);
            let interval = Duration::from_secs_f64(size as f64 / rate as f64);
            let batches = (rate * duration).div_ceil(size);
            let mut bodies = Bodies::new(&args, size);
            let started = Instant::now();
            let mut tasks = Vec::with_capacity(batches as usize);
            let mut late = 0u64;
            for k in 0..batches {
                let scheduled = started + interval.mul_f64(k as f64);
                tokio::time::sleep_until(scheduled.into()).await;
                let body = bodies.batch(args.start + k * size);
                let permit = Arc::clone(&slots).acquire_owned().await?;
                if scheduled.elapsed() > interval {
                    late += 1;
                }
                let (client, url, key) = (client.clone(), url.clone(), args.write_key.clone());
                let (errors, merged) = (errors.clone(), merged.clone());
                tasks.push(tokio::spawn(async move {
                    let _permit = permit;
                    if send(&client, &url, &key, body).await {
                        let latency = scheduled.elapsed().as_micros() as u64;
                        merged.lock().await.saturating_record(latency);
                    } else {
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                }));
            }
            let sent_for = started.elapsed();
            for t in tasks {
                t.await?;
            }
            let h = merged.lock().await;
            println!(
                "paced: target {rate} messages/s in batches of {size}; sent {batches} batches in {:.1} s ({:.0} messages/s offered), {late} batches sent more than one interval late",
                sent_for.as_secs_f64(),
                (batches * size) as f64 / sent_for.as_secs_f64()
            );
            report(
                "paced",
                h.len() * size,
                h.len(),
                errors.load(Ordering::Relaxed),
                started.elapsed(),
                &h,
            );
        }
        Mode::Rate { rate, duration } => {
            if rate == 0 {
                bail!("--rate must be positive");
            }
            let errors = Arc::new(AtomicU64::new(0));
            let merged = Arc::new(Mutex::new(histogram()));
            let url = format!("{}/v1/track", args.url);
            let interval = Duration::from_secs_f64(1.0 / rate as f64);
            let total = rate * duration;
            let started = Instant::now();
            let mut tasks = Vec::with_capacity(total as usize);
            for k in 0..total {
                let scheduled = started + interval.mul_f64(k as f64);
                tokio::time::sleep_until(scheduled.into()).await;
                let mut template = Template::new(1, false);
                let body = template.fill(args.start + k, args.people).to_vec();
                let (client, url, key) = (client.clone(), url.clone(), args.write_key.clone());
                let (errors, merged) = (errors.clone(), merged.clone());
                tasks.push(tokio::spawn(async move {
                    if send(&client, &url, &key, body).await {
                        let latency = scheduled.elapsed().as_micros() as u64;
                        merged.lock().await.saturating_record(latency);
                    } else {
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                }));
            }
            for t in tasks {
                t.await?;
            }
            let elapsed = started.elapsed();
            let h = merged.lock().await;
            report(
                "rate",
                h.len(),
                h.len(),
                errors.load(Ordering::Relaxed),
                elapsed,
                &h,
            );
        }
    }
    Ok(())
}

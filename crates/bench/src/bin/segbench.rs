//! Audience benchmark (issue #4, BENCHMARKS.md "Audiences"), driven by
//! `scripts/bench-segments.sh`:
//!
//! - `define`: saves the 100 audiences of `prossimo_bench::audiences()` and the probe segment
//!   through `POST /v1/segments`, creates a `segments` destination for the probe segment
//!   pointing at the receiver, then waits until the decider has rebuilt with all of them
//!   (the probe segment, saved last, has a size row) and until sizes and the decider's
//!   `changes_written` stop moving; reports both times and the sizes.
//! - `probe`: runs a webhook receiver on 127.0.0.1 and, at a fixed rate, sends `Bench Probe`
//!   track events for fresh people (`probe-<run>-<n>`, with `context.traits.bench_probe`);
//!   each probe's person enters the probe segment, and the receiver notes when the signed
//!   `segment.entered` arrives. Latency = arrival − send, one process, one clock. Every
//!   signature is checked (Standard Webhooks: HMAC-SHA256 over `id.timestamp.body` with the
//!   destination's `whsec_` key).
//! - `recompute`: with the server stopped, times `prossimo_decide::Engine::open` on the data
//!   directory (the full rebuild: every stored event the terms read, every segment for every
//!   profile) and measures the engine's heap with a counting allocator; `--breakdown` also
//!   times the rebuild's stages apart with the same public APIs.
//!
//! Each prints human-readable lines and one JSON line (`{"bench": ...}`).
// A benchmark harness run by a developer: a failed step ends the run with its message.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::disallowed_methods)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, anyhow, bail};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use clap::{Parser, Subcommand};
use hdrhistogram::Histogram;
use hmac::{Hmac, KeyInit, Mac};
use prossimo_bench::{PROBE_DEFINITION, PROBE_EVENT, PROBE_SLUG, audiences};
use prossimo_decide::{Engine, TermScan, facts};
use prossimo_model::SystemClock;
use prossimo_segments::{Catalog, ProfileAggregates, ProfileView, SegmentSet};
use prossimo_store::{Location, Store};
use serde_json::{Value, json};
use sha2::Sha256;

/// Counts live heap bytes (and the peak), so `recompute` can say what the engine holds.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is forwarded unchanged to the system allocator; the counters are
// only statistics.
#[allow(unsafe_code)] // an allocator is unsafe by definition
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            let live = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(live, Ordering::Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            if new_size >= layout.size() {
                let grow = new_size - layout.size();
                let live = LIVE.fetch_add(grow, Ordering::Relaxed) + grow;
                PEAK.fetch_max(live, Ordering::Relaxed);
            } else {
                LIVE.fetch_sub(layout.size() - new_size, Ordering::Relaxed);
            }
        }
        p
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn mib(bytes: usize) -> f64 {
    bytes as f64 / 1_048_576.0
}

#[derive(Parser)]
#[command(
    about = "Audience benchmark: define 100 segments, probe ingest-to-webhook latency, time the full recompute"
)]
struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Save the 100 audiences, the probe segment and its destination; wait for the decider.
    Define {
        #[arg(long)]
        url: String,
        #[arg(long)]
        admin_token: String,
        /// For the sentinel event that shows when the decider has caught up.
        #[arg(long)]
        write_key: String,
        /// Where the destination sends the probe segment's changes (the `probe` receiver).
        #[arg(long)]
        receiver_url: String,
        #[arg(long, default_value = "bench-receiver")]
        destination: String,
        /// Give up waiting for the decider after this many seconds.
        #[arg(long, default_value_t = 3600)]
        timeout: u64,
    },
    /// Receive webhooks and send probes at a fixed rate; report ingest-to-webhook latency.
    Probe {
        #[arg(long)]
        url: String,
        #[arg(long)]
        write_key: String,
        #[arg(long)]
        admin_token: String,
        /// The receiver's address (the destination's URL points here, path /hook).
        #[arg(long, default_value = "127.0.0.1:18091")]
        listen: SocketAddr,
        #[arg(long, default_value = "bench-receiver")]
        destination: String,
        /// A label unique per run: probe people are `probe-<run>-<n>`.
        #[arg(long)]
        run: String,
        /// Probes per second.
        #[arg(long, default_value_t = 20.0)]
        rate: f64,
        /// Seconds of probing.
        #[arg(long, default_value_t = 30)]
        duration: u64,
        /// Seconds to wait before the first probe (the background load warms up).
        #[arg(long, default_value_t = 2)]
        warmup: u64,
        /// Seconds to wait after the last probe for late webhooks.
        #[arg(long, default_value_t = 20)]
        settle: u64,
    },
    /// Time `Engine::open` (the full rebuild) on a data directory no server is using.
    Recompute {
        #[arg(long)]
        data_dir: PathBuf,
        /// Also time the rebuild's stages apart (event scan, aggregates, evaluation).
        #[arg(long)]
        breakdown: bool,
    },
}

fn client() -> Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .tcp_nodelay(true)
        .build()?)
}

async fn admin_get(http: &reqwest::Client, url: &str, token: &str) -> Result<Value> {
    let response = http.get(url).bearer_auth(token).send().await?;
    let status = response.status();
    let text = response.text().await?;
    if !status.is_success() {
        bail!("GET {url}: {status}: {text}");
    }
    serde_json::from_str(&text).with_context(|| format!("GET {url}: not JSON"))
}

async fn admin_post(http: &reqwest::Client, url: &str, token: &str, body: &Value) -> Result<Value> {
    let response = http.post(url).bearer_auth(token).json(body).send().await?;
    let status = response.status();
    let text = response.text().await?;
    if !status.is_success() {
        bail!("POST {url}: {status}: {text}");
    }
    serde_json::from_str(&text).with_context(|| format!("POST {url}: not JSON"))
}

/// Segment sizes by slug, and the decider's status, from `GET /v1/segments`.
fn sizes_of(list: &Value) -> (HashMap<String, u64>, Value) {
    let sizes = list["segments"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| Some((s["slug"].as_str()?.to_owned(), s["size"].as_u64()?)))
                .collect()
        })
        .unwrap_or_default();
    (sizes, list["decider"].clone())
}

async fn define(
    url: &str,
    token: &str,
    write_key: &str,
    receiver_url: &str,
    destination: &str,
    timeout: u64,
) -> Result<()> {
    let http = client()?;
    let list = audiences();
    let mut all: Vec<(String, String)> = list.clone();
    all.push((PROBE_SLUG.to_owned(), PROBE_DEFINITION.to_owned()));
    let started = Instant::now();
    for (slug, definition) in &all {
        admin_post(
            &http,
            &format!("{url}/v1/segments"),
            token,
            &json!({"slug": slug, "name": slug, "definition": definition}),
        )
        .await
        .with_context(|| format!("saving segment {slug}"))?;
    }
    let saved = Instant::now();
    let save_s = (saved - started).as_secs_f64();
    eprintln!(
        "saved {} segments in {save_s:.2} s; creating destination {destination:?} -> {receiver_url}",
        all.len()
    );
    let created = admin_post(
        &http,
        &format!("{url}/v1/destinations"),
        token,
        &json!({"name": destination, "kind": "segments", "url": receiver_url, "filter": PROBE_SLUG}),
    )
    .await?;
    if !created["secret"]
        .as_str()
        .is_some_and(|s| s.starts_with("whsec_"))
    {
        bail!("the destination has no whsec_ secret: {created}");
    }

    // 1. The rebuild that includes the probe segment (saved last) writes a size row for
    //    every segment: then the full recompute is done.
    let deadline = saved + Duration::from_secs(timeout);
    let rebuilt = loop {
        let one = admin_get(&http, &format!("{url}/v1/segments/{PROBE_SLUG}"), token).await?;
        if one["sizes"].as_array().is_some_and(|s| !s.is_empty()) {
            break Instant::now();
        }
        if Instant::now() > deadline {
            bail!("the decider did not rebuild within {timeout} s");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let rebuild_s = (rebuilt - saved).as_secs_f64();
    eprintln!("decider rebuilt with every segment {rebuild_s:.1} s after the last save");

    // 2. The rebuild wrote a `Segment Entered` timeline event per membership, which the
    //    decider then reads back like any event. It has caught up with everything stored
    //    before a sentinel probe event once the probe segment counts the sentinel.
    let sentinel_sent = Instant::now();
    let response = http
        .post(format!("{url}/v1/track"))
        .basic_auth(write_key, Some(""))
        .json(
            &json!({"type": "track", "event": PROBE_EVENT, "userId": "probe-sentinel",
            "messageId": "probe-sentinel", "context": {"traits": {"bench_run": "sentinel"}}}),
        )
        .send()
        .await?;
    if !response.status().is_success() {
        bail!("sentinel event: {}", response.status());
    }
    let caught_up = loop {
        let (sizes, _) = sizes_of(&admin_get(&http, &format!("{url}/v1/segments"), token).await?);
        if sizes.get(PROBE_SLUG).is_some_and(|&n| n >= 1) {
            break Instant::now();
        }
        if Instant::now() > deadline {
            bail!("the decider did not catch up within {timeout} s");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let settled_s = (caught_up - saved).as_secs_f64();
    eprintln!(
        "decider caught up (sentinel seen {:.1} s after it was sent) {settled_s:.1} s after the last save",
        (caught_up - sentinel_sent).as_secs_f64()
    );
    let (sizes, status) = sizes_of(&admin_get(&http, &format!("{url}/v1/segments"), token).await?);

    let mut by_size: Vec<(u64, &str)> = list
        .iter()
        .map(|(slug, _)| (sizes.get(slug).copied().unwrap_or(0), slug.as_str()))
        .collect();
    by_size.sort();
    let total: u64 = by_size.iter().map(|(n, _)| n).sum();
    let empty = by_size.iter().filter(|(n, _)| *n == 0).count();
    let pct = |q: f64| by_size[((by_size.len() - 1) as f64 * q).round() as usize].0;
    println!("segment sizes (100 audiences):");
    for chunk in by_size.chunks(5) {
        let line: Vec<String> = chunk.iter().map(|(n, s)| format!("{s} {n}")).collect();
        println!("  {}", line.join(" | "));
    }
    println!(
        "memberships {total}; empty {empty}; min {} p25 {} median {} p75 {} max {}",
        pct(0.0),
        pct(0.25),
        pct(0.5),
        pct(0.75),
        pct(1.0)
    );
    println!(
        "saving 101 segments took {save_s:.2} s; decider rebuilt {rebuild_s:.1} s and caught up {settled_s:.1} s after the last save; decider status {status}"
    );
    println!(
        "| (b) full recompute in the server: last segment saved → every size written; → decider caught up with the log | {rebuild_s:.1} s; {settled_s:.1} s |"
    );
    println!(
        "| memberships after the rebuild | {total} (median segment {}, largest {}, {empty} empty) |",
        pct(0.5),
        pct(1.0)
    );
    println!(
        "{}",
        json!({"bench": "define", "save_s": save_s, "rebuild_s": rebuild_s, "settled_s": settled_s,
            "memberships": total, "empty_segments": empty, "median_size": pct(0.5), "max_size": pct(1.0),
            "sizes": by_size.iter().map(|(n, s)| json!([s, n])).collect::<Vec<_>>(), "decider": status})
    );
    Ok(())
}

/// What the receiver saw.
#[derive(Default)]
struct Received {
    /// Probe number → (arrival, decider's `data.at` in ms, arrivals).
    probes: HashMap<u64, (Instant, i64, u32)>,
    bad_signatures: u64,
    stale_timestamps: u64,
    other: u64,
    total: u64,
}

struct Receiver {
    key: Vec<u8>,
    run: String,
    seen: Mutex<Received>,
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Standard Webhooks: any of the space-separated `v1,<base64>` signatures must match.
fn signature_ok(key: &[u8], headers: &HeaderMap, body: &[u8]) -> bool {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let (Some(id), Some(ts), Some(signatures)) = (
        header("webhook-id"),
        header("webhook-timestamp"),
        header("webhook-signature"),
    ) else {
        return false;
    };
    signatures.split(' ').any(|s| {
        let Some(given) = s.strip_prefix("v1,").and_then(|b| STANDARD.decode(b).ok()) else {
            return false;
        };
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(key) else {
            return false;
        };
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(ts.as_bytes());
        mac.update(b".");
        mac.update(body);
        mac.verify_slice(&given).is_ok()
    })
}

async fn hook(State(r): State<Arc<Receiver>>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let arrived = Instant::now();
    let Ok(mut seen) = r.seen.lock() else {
        return StatusCode::INTERNAL_SERVER_ERROR;
    };
    seen.total += 1;
    if !signature_ok(&r.key, &headers, &body) {
        seen.bad_signatures += 1;
        return StatusCode::UNAUTHORIZED;
    }
    let fresh = headers
        .get("webhook-timestamp")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<i64>().ok())
        .is_some_and(|t| (t - now_ms() / 1000).abs() <= 300);
    if !fresh {
        seen.stale_timestamps += 1;
    }
    let Ok(payload) = serde_json::from_slice::<Value>(&body) else {
        seen.other += 1;
        return StatusCode::BAD_REQUEST;
    };
    let data = &payload["data"];
    let probe = data["traits"]["bench_probe"].as_u64();
    let ours = payload["type"] == "segment.entered"
        && data["segment"] == PROBE_SLUG
        && data["traits"]["bench_run"].as_str() == Some(r.run.as_str());
    match (ours, probe) {
        (true, Some(n)) => {
            let at = data["at"]
                .as_str()
                .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                .map_or(0, |t| t.timestamp_millis());
            seen.probes
                .entry(n)
                .and_modify(|e| e.2 += 1)
                .or_insert((arrived, at, 1));
        }
        _ => seen.other += 1,
    }
    StatusCode::NO_CONTENT
}

fn histogram() -> Result<Histogram<u64>> {
    Ok(Histogram::new_with_bounds(1, 600_000_000, 3)?)
}

/// p50/p90/p99/max in ms of a microsecond histogram.
fn quantiles(h: &Histogram<u64>) -> Value {
    let ms = |v: u64| (v as f64 / 10.0).round() / 100.0;
    if h.is_empty() {
        return json!(null);
    }
    json!({"p50": ms(h.value_at_quantile(0.5)), "p90": ms(h.value_at_quantile(0.9)),
        "p99": ms(h.value_at_quantile(0.99)), "max": ms(h.max()), "n": h.len()})
}

fn fmt_q(q: &Value) -> String {
    if q.is_null() {
        return "none".into();
    }
    format!(
        "p50 {} ms, p90 {} ms, p99 {} ms, max {} ms (n {})",
        q["p50"], q["p90"], q["p99"], q["max"], q["n"]
    )
}

struct Sent {
    send_wall_ms: i64,
    send: Instant,
    ack: Option<Duration>,
}

#[allow(clippy::too_many_arguments)]
async fn probe(
    url: &str,
    write_key: &str,
    token: &str,
    listen: SocketAddr,
    destination: &str,
    run: &str,
    rate: f64,
    duration: u64,
    warmup: u64,
    settle: u64,
) -> Result<()> {
    if !(rate > 0.0 && rate <= 1000.0) {
        bail!("--rate must be in (0, 1000]");
    }
    let http = client()?;
    let record = admin_get(
        &http,
        &format!("{url}/v1/destinations/{destination}"),
        token,
    )
    .await?;
    let secret = record["secret"]
        .as_str()
        .ok_or_else(|| anyhow!("destination {destination:?} has no secret"))?;
    let key = STANDARD
        .decode(secret.strip_prefix("whsec_").unwrap_or(secret))
        .context("the destination's secret is not base64 after whsec_")?;
    let receiver = Arc::new(Receiver {
        key,
        run: run.to_owned(),
        seen: Mutex::new(Received::default()),
    });
    let app = axum::Router::new()
        .route("/hook", axum::routing::post(hook))
        .with_state(Arc::clone(&receiver));
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    let before = sizes_of(&admin_get(&http, &format!("{url}/v1/segments"), token).await?).1;

    tokio::time::sleep(Duration::from_secs(warmup)).await;
    let total = (rate * duration as f64).round() as u64;
    let interval = Duration::from_secs_f64(1.0 / rate);
    let sent: Arc<Mutex<HashMap<u64, Sent>>> = Arc::new(Mutex::new(HashMap::new()));
    let errors = Arc::new(AtomicU64::new(0));
    let track = format!("{url}/v1/track");
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(total as usize);
    for n in 0..total {
        tokio::time::sleep_until((started + interval.mul_f64(n as f64)).into()).await;
        let body = json!({
            "type": "track",
            "event": PROBE_EVENT,
            "userId": format!("probe-{run}-{n}"),
            "messageId": format!("probe-{run}-{n}"),
            "properties": {"n": n},
            "context": {"library": {"name": "prossimo-bench", "version": "1"}, "channel": "server",
                "traits": {"bench_probe": n, "bench_run": run}},
        })
        .to_string();
        let (http, track, key, sent, errors) = (
            http.clone(),
            track.clone(),
            write_key.to_owned(),
            Arc::clone(&sent),
            Arc::clone(&errors),
        );
        tasks.push(tokio::spawn(async move {
            let send_wall_ms = now_ms();
            let send = Instant::now();
            let response = http
                .post(&track)
                .basic_auth(&key, Some(""))
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await;
            let ack = matches!(&response, Ok(r) if r.status().is_success()).then(|| send.elapsed());
            if ack.is_none() {
                errors.fetch_add(1, Ordering::Relaxed);
            }
            if let Ok(mut s) = sent.lock() {
                s.insert(
                    n,
                    Sent {
                        send_wall_ms,
                        send,
                        ack,
                    },
                );
            }
        }));
    }
    for t in tasks {
        t.await?;
    }
    let probing_s = started.elapsed().as_secs_f64();
    // Wait for the stragglers.
    let acked = sent
        .lock()
        .map_err(|_| anyhow!("lock"))?
        .values()
        .filter(|s| s.ack.is_some())
        .count();
    let wait_until = Instant::now() + Duration::from_secs(settle);
    while Instant::now() < wait_until {
        let got = receiver
            .seen
            .lock()
            .map_err(|_| anyhow!("lock"))?
            .probes
            .len();
        if got >= acked {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let after = sizes_of(&admin_get(&http, &format!("{url}/v1/segments"), token).await?).1;
    server.abort();

    let sent = sent.lock().map_err(|_| anyhow!("lock"))?;
    let seen = receiver.seen.lock().map_err(|_| anyhow!("lock"))?;
    let (mut e2e, mut ack_h, mut to_decider, mut decider_to_arrival) =
        (histogram()?, histogram()?, histogram()?, histogram()?);
    let mut duplicates = 0u64;
    let mut worst: Vec<(u64, u64)> = Vec::new();
    for (n, s) in sent.iter() {
        if let Some(ack) = s.ack {
            ack_h.saturating_record(ack.as_micros() as u64);
        }
        let Some(&(arrived, at, count)) = seen.probes.get(n) else {
            continue;
        };
        duplicates += u64::from(count - 1);
        let latency = arrived.saturating_duration_since(s.send).as_micros() as u64;
        e2e.saturating_record(latency);
        worst.push((latency, *n));
        if at > 0 {
            let decided = (at - s.send_wall_ms).max(0) as u64 * 1000;
            to_decider.saturating_record(decided);
            decider_to_arrival.saturating_record(latency.saturating_sub(decided));
        }
    }
    worst.sort_unstable_by(|a, b| b.cmp(a));
    let delivered = sent.keys().filter(|n| seen.probes.contains_key(n)).count();
    let result = json!({
        "bench": "probe", "run": run, "probes_sent": total, "probes_acked": acked,
        "send_errors": errors.load(Ordering::Relaxed), "probes_delivered": delivered,
        "duplicates": duplicates, "bad_signatures": seen.bad_signatures,
        "stale_timestamps": seen.stale_timestamps, "other_webhooks": seen.other,
        "webhooks_received": seen.total, "probing_s": probing_s,
        "ingest_to_webhook_ms": quantiles(&e2e), "track_ack_ms": quantiles(&ack_h),
        "send_to_decider_at_ms": quantiles(&to_decider),
        "decider_at_to_arrival_ms": quantiles(&decider_to_arrival),
        "slowest": worst.iter().take(5).map(|(l, n)| json!({"probe": n, "ms": *l as f64 / 1000.0})).collect::<Vec<_>>(),
        "decider_before": before, "decider_after": after,
    });
    println!(
        "probes: {delivered} delivered of {total} sent ({acked} acknowledged, {} send errors) over {probing_s:.1} s; {} bad signatures, {duplicates} duplicates, {} stale timestamps, {} other webhooks",
        errors.load(Ordering::Relaxed),
        seen.bad_signatures,
        seen.stale_timestamps,
        seen.other
    );
    println!(
        "ingest-to-webhook: {}",
        fmt_q(&result["ingest_to_webhook_ms"])
    );
    println!(
        "  /v1/track acknowledged: {}",
        fmt_q(&result["track_ack_ms"])
    );
    println!(
        "  send -> decider's step time (data.at): {}",
        fmt_q(&result["send_to_decider_at_ms"])
    );
    println!(
        "  data.at -> webhook arrival: {}",
        fmt_q(&result["decider_at_to_arrival_ms"])
    );
    let changes = after["changes_written"].as_u64().unwrap_or(0)
        - before["changes_written"]
            .as_u64()
            .unwrap_or(0)
            .min(after["changes_written"].as_u64().unwrap_or(0));
    println!("decider: {changes} membership changes written during the run; status {after}");
    let cell = |q: &Value| {
        if q.is_null() {
            "none".to_owned()
        } else {
            format!(
                "{} / {} / **{}** / {}",
                q["p50"], q["p90"], q["p99"], q["max"]
            )
        }
    };
    println!(
        "| (a) ingest → webhook, run {run} (p50 / p90 / p99 / max ms) | {} ; {delivered}/{total} delivered, {} bad signatures; /v1/track ack {}; send → decider step {}; decider step → arrival {}; {changes} membership changes written |",
        cell(&result["ingest_to_webhook_ms"]),
        seen.bad_signatures,
        cell(&result["track_ack_ms"]),
        cell(&result["send_to_decider_at_ms"]),
        cell(&result["decider_at_to_arrival_ms"]),
    );
    println!("{result}");
    Ok(())
}

fn rss() -> String {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<f64>().ok())
            .map_or("?".to_owned(), |kb| format!("{:.0} MiB", kb / 1024.0))
    };
    format!("RSS {}, peak RSS {}", field("VmRSS:"), field("VmHWM:"))
}

/// The rebuild's stages apart, with the APIs `Engine::rebuild` uses: scanning the events
/// its terms read, folding them into aggregates, reading every profile's facts, evaluating.
fn breakdown(store: &Store) -> Result<Value> {
    let segments = prossimo_decide::audiences::Audiences::of(store)?.segments()?;
    let catalog = Catalog::new(
        segments
            .iter()
            .map(|s| (s.slug.as_str(), s.definition.as_str())),
        &prossimo_decide::schema(),
    )?;
    let head = store.log_heads()?;
    let now = now_ms();
    // What `Engine::rebuild` reads: the terms' events and channels, back to the longest
    // window when every term has one, bodies only when a term reads properties.
    let terms = TermScan::of(&catalog, now);
    let scan = terms.scan(head.event_seq);

    let t = Instant::now();
    let mut scanned = 0u64;
    store.scan_events(&scan, &mut |_| {
        scanned += 1;
        Ok(())
    })?;
    let scan_s = t.elapsed().as_secs_f64();

    let t = Instant::now();
    let mut profiles: HashMap<i64, ProfileAggregates> = HashMap::new();
    store.scan_events(&scan, &mut |e| {
        profiles
            .entry(e.profile_id)
            .or_default()
            .observe(&catalog, &facts(&e), now);
        Ok(())
    })?;
    let observe_s = t.elapsed().as_secs_f64();

    let t = Instant::now();
    let mut roots = 0u64;
    store.for_each_profile_facts(&mut |_| {
        roots += 1;
        Ok(())
    })?;
    let facts_s = t.elapsed().as_secs_f64();

    let t = Instant::now();
    let (empty, none) = (ProfileAggregates::new(), SegmentSet::new());
    let mut members = 0u64;
    store.for_each_profile_facts(&mut |f| {
        let view = ProfileView {
            traits: &f.traits,
            computed: &f.computed,
            first_seen: f.first_seen,
            last_seen: f.last_seen,
            first_channel: f.first_channel.as_deref(),
            aggregates: profiles.get(&f.id).unwrap_or(&empty),
            memberships: &none,
        };
        let result = catalog.evaluate(&view, now, None);
        let _ = view.next_boundary(&catalog, now);
        members += result.members.iter().count() as u64;
        Ok(())
    })?;
    let evaluate_s = t.elapsed().as_secs_f64();
    Ok(json!({
        "events_scanned": scanned, "event_scan_s": scan_s,
        "event_scan_and_observe_s": observe_s, "profiles_with_aggregates": profiles.len(),
        "root_profiles": roots, "profile_facts_scan_s": facts_s,
        "facts_scan_and_evaluate_s": evaluate_s, "memberships": members,
        "terms": catalog.terms().len(), "segments": segments.len(), "reads_every_event": scan.only.is_none(),
        "since_ts": scan.since_ts, "with_properties": scan.with_properties,
    }))
}

fn recompute(data_dir: PathBuf, with_breakdown: bool) -> Result<()> {
    let store = Arc::new(
        Store::open(&Location::DataDir(data_dir), Default::default())
            .context("opening the store")?,
    );
    // Like `prossimo segment recompute`: never next to a running decider.
    let Some(_lease) = store.try_lease("decider")? else {
        bail!("a running `prossimo serve` holds the decider lease of this store; stop it first");
    };
    let before = LIVE.load(Ordering::Relaxed);
    PEAK.store(before, Ordering::Relaxed);
    let t = Instant::now();
    let engine = Engine::open(Arc::clone(&store), Arc::new(SystemClock))?;
    let open_s = t.elapsed().as_secs_f64();
    let held = LIVE.load(Ordering::Relaxed).saturating_sub(before);
    let peak = PEAK.load(Ordering::Relaxed).saturating_sub(before);
    let memberships: usize = engine.memberships().values().map(BTreeSet::len).sum();
    let tracked = engine.tracked_profiles();
    let segments = engine.catalog().segments().count();
    let terms = engine.catalog().terms().len();
    let process = rss();
    println!(
        "Engine::open (full rebuild) {open_s:.1} s: {segments} segments, {terms} terms, {tracked} profiles tracked, {memberships} memberships"
    );
    println!(
        "engine heap held {:.0} MiB ({:.0} bytes per tracked profile), peak during the rebuild {:.0} MiB; {process}",
        mib(held),
        held as f64 / tracked.max(1) as f64,
        mib(peak)
    );
    println!(
        "| (b) full recompute: `Engine::open` on the stopped server's store | {open_s:.1} s |"
    );
    println!(
        "| (c) the engine's heap after the rebuild | {:.0} MiB for {tracked} tracked profiles ({:.0} bytes each), peak {:.0} MiB |",
        mib(held),
        held as f64 / tracked.max(1) as f64,
        mib(peak)
    );
    drop(engine);
    let stages = if with_breakdown {
        let b = breakdown(&store)?;
        println!(
            "stages: scan {} events {:.1} s; + fold into aggregates {:.1} s; scan {} profiles' facts {:.1} s; + evaluate every segment {:.1} s",
            b["events_scanned"],
            b["event_scan_s"].as_f64().unwrap_or(0.0),
            b["event_scan_and_observe_s"].as_f64().unwrap_or(0.0),
            b["root_profiles"],
            b["profile_facts_scan_s"].as_f64().unwrap_or(0.0),
            b["facts_scan_and_evaluate_s"].as_f64().unwrap_or(0.0),
        );
        b
    } else {
        Value::Null
    };
    println!(
        "{}",
        json!({"bench": "recompute", "open_s": open_s, "segments": segments, "terms": terms,
            "tracked_profiles": tracked, "memberships": memberships, "heap_held_bytes": held,
            "heap_peak_bytes": peak, "process": process, "stages": stages})
    );
    Ok(())
}

fn main() -> Result<()> {
    let args = Args::parse();
    match args.command {
        Command::Recompute {
            data_dir,
            breakdown,
        } => recompute(data_dir, breakdown),
        Command::Define {
            url,
            admin_token,
            write_key,
            receiver_url,
            destination,
            timeout,
        } => tokio::runtime::Runtime::new()?.block_on(define(
            &url,
            &admin_token,
            &write_key,
            &receiver_url,
            &destination,
            timeout,
        )),
        Command::Probe {
            url,
            write_key,
            admin_token,
            listen,
            destination,
            run,
            rate,
            duration,
            warmup,
            settle,
        } => tokio::runtime::Runtime::new()?.block_on(probe(
            &url,
            &write_key,
            &admin_token,
            listen,
            &destination,
            &run,
            rate,
            duration,
            warmup,
            settle,
        )),
    }
}

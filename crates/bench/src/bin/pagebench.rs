//! Console page benchmark (BENCHMARKS.md "Console (issue #5)"): signs in to a running
//! `prossimo serve`, gives one customer `--heavy-events` events through the tracking API,
//! saves an audience, then requests every console page `--requests` times in a row and
//! prints the response-time percentiles per page. Client and server share the machine, on
//! loopback, one request at a time, so a response time is the server's render time plus a
//! loopback round trip.
// A benchmark harness run by a developer: a failed step ends the run with its message.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::disallowed_methods)]

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Parser;
use reqwest::blocking::{Client, Response};
use reqwest::header::{COOKIE, SET_COOKIE};
use serde_json::{Value, json};

#[derive(Parser)]
struct Args {
    #[arg(long, default_value = "http://127.0.0.1:18080")]
    url: String,
    #[arg(long)]
    email: String,
    #[arg(long)]
    password: String,
    #[arg(long)]
    write_key: String,
    #[arg(long)]
    admin_token: String,
    /// Events given to one customer before the pages are timed.
    #[arg(long, default_value_t = 100_000)]
    heavy_events: usize,
    /// Requests per page.
    #[arg(long, default_value_t = 50)]
    requests: usize,
}

/// The cookies a response sets, as one `Cookie` header value.
fn cookies(response: &Response) -> String {
    response
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|c| c.split(';').next())
        .collect::<Vec<_>>()
        .join("; ")
}

fn sign_in(client: &Client, args: &Args) -> Result<String> {
    let form = client.get(format!("{}/login", args.url)).send()?;
    let csrf_cookie = cookies(&form);
    let html = form.text()?;
    let start = html
        .find("name=\"csrf\" value=\"")
        .context("no csrf field on /login")?
        + 19;
    let csrf = &html[start..start + html[start..].find('"').context("csrf")?];
    let response = client
        .post(format!("{}/login", args.url))
        .header(COOKIE, csrf_cookie)
        .form(&[
            ("email", args.email.as_str()),
            ("password", args.password.as_str()),
            ("csrf", csrf),
        ])
        .send()?;
    let session = cookies(&response);
    if !session.contains("prossimo_session=") {
        bail!("sign-in failed: HTTP {}", response.status());
    }
    Ok(session)
}

/// Sends `n` events for one person through `/v1/batch`; returns their profile id.
fn heavy_customer(client: &Client, args: &Args, n: usize) -> Result<i64> {
    let user = format!("pagebench-heavy-{}", chrono::Utc::now().timestamp());
    let channels = ["web", "app", "store", "email", "call_center"];
    let start = chrono::Utc::now() - chrono::Duration::days(700);
    let mut sent = 0;
    while sent < n {
        let batch: Vec<Value> = (sent..(sent + 500).min(n))
            .map(|i| {
                let at = start + chrono::Duration::minutes(i as i64 * 10);
                json!({"type": "track", "userId": user, "event": if i % 20 == 0 { "Order Completed" } else { "Product Viewed" },
                       "messageId": format!("{user}-{i}"), "timestamp": at.to_rfc3339(),
                       "context": {"channel": channels[i % channels.len()]},
                       "properties": {"product_id": format!("SKU-{}", i % 40), "price": 49.0, "revenue": 49.0,
                                      "order_id": format!("{user}-o{i}"), "currency": "EUR", "category": "scarpe"}})
            })
            .collect();
        let response = client
            .post(format!("{}/v1/batch", args.url))
            .basic_auth(&args.write_key, Some(""))
            .json(&json!({ "batch": batch }))
            .send()?;
        if !response.status().is_success() {
            bail!(
                "batch refused: HTTP {} {}",
                response.status(),
                response.text()?
            );
        }
        sent += batch.len();
    }
    let profile: Value = client
        .get(format!("{}/v1/profiles/user_id:{user}", args.url))
        .bearer_auth(&args.admin_token)
        .send()?
        .json()?;
    profile["id"].as_i64().context("heavy profile id")
}

fn main() -> Result<()> {
    let args = Args::parse();
    let client = Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(60))
        .build()?;
    let session = sign_in(&client, &args)?;

    let started = Instant::now();
    let heavy = heavy_customer(&client, &args, args.heavy_events)?;
    println!(
        "heavy customer: #{heavy}, {} events sent in {:.1} s",
        args.heavy_events,
        started.elapsed().as_secs_f64()
    );
    let segment = json!({"slug": "pagebench-store-buyers", "name": "Store buyers (bench)",
        "definition": "count(event \"Order Completed\" where channel == \"store\" within 365d) >= 1"});
    let saved = client
        .post(format!("{}/v1/segments", args.url))
        .bearer_auth(&args.admin_token)
        .json(&segment)
        .send()?;
    if !(saved.status().is_success() || saved.status().as_u16() == 409) {
        bail!("saving the audience: HTTP {}", saved.status());
    }
    let found: Value = client
        .get(format!("{}/v1/profiles?q=user_id:c00005", args.url))
        .bearer_auth(&args.admin_token)
        .send()?
        .json()?;
    let demo_customer = found["profiles"][0]["id"]
        .as_i64()
        .or_else(|| found[0]["id"].as_i64())
        .context("demo customer c00005 (run on the demo data)")?;

    let pages = [
        ("customers (search \"ma\")", "/customers?q=ma".to_owned()),
        ("customer 360 (demo)", format!("/customers/{demo_customer}")),
        ("customer 360 (100k events)", format!("/customers/{heavy}")),
        (
            "customer 360 (100k events, store only)",
            format!("/customers/{heavy}?channel=store"),
        ),
        ("audiences", "/audiences".to_owned()),
        ("audience", "/audiences/pagebench-store-buyers".to_owned()),
        ("analytics", "/analytics".to_owned()),
        ("live events", "/live".to_owned()),
        ("settings", "/settings".to_owned()),
    ];
    println!("| page | requests | p50 ms | p90 ms | max ms | KiB |");
    println!("|---|---|---|---|---|---|");
    for (name, path) in pages {
        let mut times = Vec::with_capacity(args.requests);
        let mut bytes = 0;
        for _ in 0..args.requests {
            let t = Instant::now();
            let response = client
                .get(format!("{}{path}", args.url))
                .header(COOKIE, &session)
                .send()?;
            let status = response.status();
            let body = response.bytes()?;
            times.push(t.elapsed());
            if !status.is_success() {
                bail!("{path}: HTTP {status}");
            }
            bytes = body.len();
        }
        times.sort();
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        let pick = |q: f64| ms(times[((times.len() - 1) as f64 * q).round() as usize]);
        println!(
            "| {name} | {} | {:.1} | {:.1} | {:.1} | {:.0} |",
            times.len(),
            pick(0.5),
            pick(0.9),
            ms(*times.last().unwrap_or(&Duration::ZERO)),
            bytes as f64 / 1024.0
        );
    }
    Ok(())
}

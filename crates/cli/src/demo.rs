//! `prossimo demo`: a seeded synthetic Italian retailer (web shop, app, 20 stores, call
//! centre), sent through the real ingestion path (Segment batches → validation → identity
//! resolution → group commit), so a new user sees a living system in one command.

use anyhow::{Context, Result};
use chrono::{DateTime, Duration, Utc};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use prossimo_decide::audiences::{Audiences, SegmentInput};
use prossimo_journeys::{JourneyInput, Journeys, publish_journey, save_journey};
use prossimo_messages::{Content, MessageInput, Messages};
use prossimo_model::{format_timestamp, parse_batch};
use prossimo_store::{Incoming, IngestReport, Store};
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{RngExt, SeedableRng};
use serde_json::{Value, json};

use crate::config::Settings;

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Number of customers.
    #[arg(long, default_value_t = 10_000)]
    customers: u32,
    /// Random seed: the same seed gives the same people and events.
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// History ends at this date (YYYY-MM-DD) [default: today].
    #[arg(long)]
    until: Option<String>,
}

impl Default for DemoArgs {
    /// What `prossimo demo` does with no flags (and `prossimo serve --demo`).
    fn default() -> Self {
        DemoArgs {
            customers: 10_000,
            seed: 7,
            until: None,
        }
    }
}

const STORES: [&str; 20] = [
    "Milano", "Roma", "Torino", "Napoli", "Bologna", "Firenze", "Genova", "Palermo", "Bari",
    "Verona", "Padova", "Trieste", "Brescia", "Parma", "Modena", "Bergamo", "Catania", "Cagliari",
    "Perugia", "Pescara",
];
const FIRST_NAMES: [&str; 24] = [
    "Giulia",
    "Marco",
    "Francesca",
    "Luca",
    "Chiara",
    "Alessandro",
    "Sara",
    "Matteo",
    "Elena",
    "Andrea",
    "Martina",
    "Davide",
    "Valentina",
    "Simone",
    "Federica",
    "Lorenzo",
    "Alessia",
    "Giorgio",
    "Laura",
    "Stefano",
    "Anna",
    "Paolo",
    "Silvia",
    "Francesco",
];
const LAST_NAMES: [&str; 24] = [
    "Rossi", "Russo", "Ferrari", "Esposito", "Bianchi", "Romano", "Colombo", "Ricci", "Marino",
    "Greco", "Bruno", "Gallo", "Conti", "De Luca", "Mancini", "Costa", "Giordano", "Rizzo",
    "Lombardi", "Moretti", "Barbieri", "Fontana", "Santoro", "Mariani",
];
/// (sku, name, category, price in EUR)
const PRODUCTS: [(&str, &str, &str, f64); 20] = [
    ("SC-001", "Sneaker Corsa", "scarpe", 89.0),
    ("SC-002", "Mocassino Pelle", "scarpe", 129.0),
    ("SC-003", "Stivaletto Chelsea", "scarpe", 159.0),
    ("SC-004", "Sandalo Estate", "scarpe", 49.0),
    ("AB-001", "Giacca in Lino", "abbigliamento", 149.0),
    ("AB-002", "Camicia Oxford", "abbigliamento", 59.0),
    ("AB-003", "Maglione Merino", "abbigliamento", 79.0),
    ("AB-004", "Jeans Slim", "abbigliamento", 69.0),
    ("AB-005", "Abito Seta", "abbigliamento", 199.0),
    ("AC-001", "Borsa Tote", "accessori", 119.0),
    ("AC-002", "Cintura Cuoio", "accessori", 39.0),
    ("AC-003", "Foulard", "accessori", 29.0),
    ("AC-004", "Occhiali da Sole", "accessori", 99.0),
    ("CA-001", "Set Lenzuola", "casa", 79.0),
    ("CA-002", "Candela Profumata", "casa", 19.0),
    ("CA-003", "Tovaglia Lino", "casa", 45.0),
    ("BE-001", "Crema Viso", "bellezza", 34.0),
    ("BE-002", "Profumo Agrumi", "bellezza", 65.0),
    ("BE-003", "Olio Corpo", "bellezza", 24.0),
    ("BE-004", "Shampoo Naturale", "bellezza", 14.0),
];
const CALL_REASONS: [&str; 5] = ["stato ordine", "reso", "taglia", "reclamo", "informazioni"];

/// Messages per ingest call (one group commit).
const BATCH: usize = 2_000;

struct Generator {
    rng: StdRng,
    /// Mean items per order line of the customer being generated (spend heterogeneity).
    quantity_mean: f64,
    seed: u64,
    until: DateTime<Utc>,
    next_message: u64,
    next_order: u64,
    /// Family tablets: anonymous ids shared by several customers.
    shared_devices: Vec<String>,
    /// An identified customer with orders on several channels, to suggest looking at.
    showcase: Option<String>,
}

impl Generator {
    fn message_id(&mut self) -> String {
        self.next_message += 1;
        format!("demo-{}-{}", self.seed, self.next_message)
    }

    fn at(&self, day: f64) -> String {
        format_timestamp(&(self.until - Duration::seconds(((730.0 - day) * 86_400.0) as i64)))
    }

    /// Everything one customer does over two years.
    fn customer(&mut self, n: u32, out: &mut Vec<Value>) {
        let first = *FIRST_NAMES.choose(&mut self.rng).unwrap_or(&"Anna");
        let last = *LAST_NAMES.choose(&mut self.rng).unwrap_or(&"Rossi");
        let user_id = format!("c{n:05}");
        let email = format!(
            "{}.{}{n}@esempio.it",
            first.to_lowercase(),
            last.to_lowercase().replace(' ', "")
        );
        let home = self.rng.random_range(0..STORES.len());
        let city = STORES[home];
        let mut devices = vec![format!("dev-{}-{n}-web", self.seed)];
        let has_app = self.rng.random_bool(0.45);
        if has_app {
            devices.push(format!("dev-{}-{n}-app", self.seed));
        }
        if self.rng.random_bool(0.03) {
            if self.shared_devices.is_empty() || self.rng.random_bool(0.4) {
                self.shared_devices
                    .push(format!("tablet-{}-{n}", self.seed));
            }
            if let Some(t) = self.shared_devices.choose(&mut self.rng) {
                devices.push(t.clone());
            }
        }
        // Store-first customers are identified at the till; online ones browse anonymously
        // and identify later (late identification).
        let store_first = self.rng.random_bool(0.35);
        let start = self.rng.random_range(0.0..700.0);
        let mut day = start;
        let mut identified = false;
        let mut order_channels = std::collections::BTreeSet::new();
        // Buy-till-you-die behaviour, so the analyses find what real bases show: each
        // customer visits at a rate of their own (mean gap 3-90 days, skewed short) and
        // after every visit may stop coming for good (probability 2-40%, skewed low).
        let mean_gap_days = 3.0 + 87.0 * self.rng.random::<f64>().powi(2);
        self.quantity_mean = 1.0 + 3.0 * self.rng.random::<f64>().powi(3);
        let dropout = 0.02 + 0.38 * self.rng.random::<f64>().powi(3);
        for session in 0..60 {
            let channel = if store_first && session == 0 {
                "store"
            } else {
                *["web", "web", "app", "store", "email", "call_center"]
                    .choose(&mut self.rng)
                    .unwrap_or(&"web")
            };
            let channel = if channel == "app" && !has_app {
                "web"
            } else {
                channel
            };
            let device = match channel {
                "app" => devices.get(1).cloned(),
                "web" => devices.choose(&mut self.rng).cloned(),
                _ => None,
            };
            let identify_now = !identified
                && (channel == "store" || channel == "call_center" || self.rng.random_bool(0.4));
            let known = identified || identify_now;
            let base = json!({ "context": { "channel": channel, "locale": "it-IT" } });
            let with_ids = |m: Value, g: &mut Generator, day: f64| -> Value {
                let mut m = merge(base.clone(), m);
                m["messageId"] = json!(g.message_id());
                m["timestamp"] = json!(g.at(day));
                if known || channel == "store" || channel == "call_center" || channel == "email" {
                    m["userId"] = json!(user_id);
                }
                if let Some(d) = &device {
                    m["anonymousId"] = json!(d);
                }
                if m.get("userId").is_none() && m.get("anonymousId").is_none() {
                    m["userId"] = json!(user_id);
                }
                m
            };
            if identify_now {
                let mut traits = json!({
                    "email": email, "first_name": first, "last_name": last, "city": city,
                    "home_store": format!("{city} Centro"), "newsletter": self.rng.random_bool(0.6),
                });
                if self.rng.random_bool(0.5) {
                    traits["phone"] = json!(format!(
                        "+39 3{:02} {:07}",
                        self.rng.random_range(20..99),
                        self.rng.random_range(0..9_999_999)
                    ));
                }
                if channel == "store" {
                    traits["loyalty_card"] =
                        json!(format!("IT{:010}", n as u64 * 7919 % 10_000_000_000));
                }
                out.push(with_ids(
                    json!({"type": "identify", "traits": traits}),
                    self,
                    day,
                ));
            }
            match channel {
                "web" | "app" => {
                    let kind = if channel == "app" { "screen" } else { "page" };
                    out.push(with_ids(json!({"type": kind, "name": "Home"}), self, day));
                    let product = PRODUCTS
                        .choose(&mut self.rng)
                        .copied()
                        .unwrap_or(PRODUCTS[0]);
                    out.push(with_ids(json!({"type": "track", "event": "Product Viewed",
                        "properties": {"product_id": product.0, "name": product.1, "category": product.2, "price": product.3}}), self, day + 0.001));
                    if self.rng.random_bool(0.35) {
                        out.push(with_ids(json!({"type": "track", "event": "Product Added",
                            "properties": {"product_id": product.0, "category": product.2, "price": product.3, "quantity": 1}}), self, day + 0.002));
                        if known && self.rng.random_bool(0.55) {
                            order_channels.insert(channel);
                            let order = self.order(&[product]);
                            out.push(with_ids(order, self, day + 0.003));
                        }
                    }
                }
                "store" => {
                    let basket: Vec<_> = (0..self.rng.random_range(1..4))
                        .filter_map(|_| PRODUCTS.choose(&mut self.rng).copied())
                        .collect();
                    order_channels.insert(channel);
                    let mut order = self.order(&basket);
                    let store = if self.rng.random_bool(0.85) {
                        home
                    } else {
                        self.rng.random_range(0..STORES.len())
                    };
                    order["properties"]["store_id"] = json!(format!("store-{:02}", store + 1));
                    order["properties"]["store_city"] = json!(STORES[store]);
                    out.push(with_ids(order, self, day));
                }
                "email" => {
                    // The send (what "contacted" means in an audience), then the reaction.
                    out.push(with_ids(json!({"type": "track", "event": "Email Sent", "properties": {"campaign": "newsletter"}}), self, day - 0.1));
                    out.push(with_ids(json!({"type": "track", "event": "Email Opened", "properties": {"campaign": "newsletter"}}), self, day));
                    if self.rng.random_bool(0.3) {
                        out.push(with_ids(json!({"type": "track", "event": "Email Link Clicked", "properties": {"campaign": "newsletter"}}), self, day + 0.001));
                    }
                }
                _ => {
                    let reason = *CALL_REASONS
                        .choose(&mut self.rng)
                        .unwrap_or(&"informazioni");
                    out.push(with_ids(json!({"type": "track", "event": "Call Completed",
                        "properties": {"reason": reason, "duration_s": self.rng.random_range(60..900)}}), self, day));
                }
            }
            identified = known;
            if self.rng.random_bool(dropout) {
                break;
            }
            // Exponential gap: -ln(U) * mean, with U in (0, 1].
            day += -(1.0 - self.rng.random::<f64>()).ln() * mean_gap_days + 0.05;
            if day >= 730.0 {
                break;
            }
        }
        if self.showcase.is_none() && order_channels.len() >= 2 {
            self.showcase = Some(user_id);
        }
    }

    fn order(&mut self, basket: &[(&str, &str, &str, f64)]) -> Value {
        self.next_order += 1;
        let mut revenue = 0.0;
        let mut products = Vec::with_capacity(basket.len());
        for p in basket {
            // Big spenders buy more of each item: quantities around the customer's mean.
            let extra = -(1.0 - self.rng.random::<f64>()).ln() * (self.quantity_mean - 1.0);
            let quantity = 1 + extra.floor() as u32;
            revenue += p.3 * f64::from(quantity);
            products.push(json!({"product_id": p.0, "name": p.1, "category": p.2, "price": p.3, "quantity": quantity}));
        }
        json!({"type": "track", "event": prossimo_model::ORDER_COMPLETED, "properties": {
            "order_id": format!("ord-{}-{}", self.seed, self.next_order),
            "revenue": (revenue * 100.0).round() / 100.0, "currency": "EUR", "products": products,
        }})
    }
}

fn merge(mut base: Value, extra: Value) -> Value {
    if let (Value::Object(b), Value::Object(e)) = (&mut base, extra) {
        for (k, v) in e {
            b.insert(k, v);
        }
    }
    base
}

pub fn run(store: &Store, config: &Settings, args: DemoArgs) -> Result<()> {
    let until = match &args.until {
        Some(d) => prossimo_model::parse_timestamp(d)
            .map_err(anyhow::Error::msg)
            .context("--until")?,
        None => Utc::now(),
    };
    let source = match store.source_by_name("demo")? {
        Some(s) => s,
        None => store.create_source("demo", None)?,
    };
    let mut generator = Generator {
        rng: StdRng::seed_from_u64(args.seed),
        quantity_mean: 1.0,
        seed: args.seed,
        until,
        next_message: 0,
        next_order: 0,
        shared_devices: Vec::new(),
        showcase: None,
    };
    let bar = ProgressBar::new(u64::from(args.customers)).with_style(
        ProgressStyle::with_template(
            "{spinner} customers {pos}/{len} [{bar:30}] {per_sec} eta {eta}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    let limits = config.limits()?;
    let mut report = IngestReport::default();
    let mut pending: Vec<Value> = Vec::new();
    let send = |messages: &mut Vec<Value>, report: &mut IngestReport| -> Result<()> {
        for chunk in messages.chunks(BATCH.min(limits.max_batch_messages)) {
            // The same path as POST /v1/batch: serialise, parse, validate, resolve, commit.
            let body = json!({ "batch": chunk }).to_string();
            let payload = parse_batch(body.as_bytes(), Utc::now(), &limits)
                .map_err(|e| anyhow::anyhow!("demo data failed validation: {e}"))?;
            let batch: Vec<Incoming> = payload
                .messages
                .into_iter()
                .map(|m| Incoming::new(source.id, m, store.identity(), store.money()))
                .collect::<Result<_, _>>()?;
            report.add(store.ingest(&batch)?);
        }
        messages.clear();
        Ok(())
    };
    for n in 1..=args.customers {
        generator.customer(n, &mut pending);
        if pending.len() >= BATCH * 5 {
            send(&mut pending, &mut report)?;
        }
        bar.inc(1);
    }
    send(&mut pending, &mut report)?;
    bar.finish_and_clear();
    println!(
        "demo: {} customers, {} events stored ({} already present), {} profiles created, {} merges",
        args.customers, report.stored, report.duplicates, report.profiles_created, report.merges
    );
    let saved = save_audiences(store)?;
    if saved > 0 {
        println!("demo: {saved} example audiences saved (prossimo segment list)");
    }
    let (messages, journeys) = save_journeys(store)?;
    if messages + journeys > 0 {
        println!(
            "demo: {messages} example messages and {journeys} example journeys saved (the abandoned cart is live: prossimo journey list)"
        );
    }
    evaluate_clv(store, until)?;
    if let Some(user) = &generator.showcase {
        println!("try:  prossimo profile user_id:{user}");
    }
    Ok(())
}

/// Audiences a retailer would start with, so the console's Audiences page has something to
/// show. Each is checked like any saved definition; one already there is left alone.
const AUDIENCES: [(&str, &str, &str); 6] = [
    (
        "store-regulars",
        "Store regulars",
        "count(event \"Order Completed\" where channel == \"store\" within 365d) >= 2",
    ),
    (
        "best-active",
        "Best customers, still active",
        "rfm_segment in [\"champions\", \"loyal\"] and p_alive >= 0.5",
    ),
    (
        "at-risk-store",
        "Store regulars at risk",
        "count(event \"Order Completed\" where channel == \"store\" within 90d) >= 2\n  and p_alive < 0.4\n  and count(event \"Email Sent\" within 7d) == 0",
    ),
    (
        "abandoned-cart",
        "Abandoned cart (30 days)",
        "count(event \"Product Added\" within 30d) >= 1 and count(event \"Order Completed\" within 30d) == 0",
    ),
    (
        "high-value-lapsing",
        "High value, no order in 90 days",
        "clv_12m > 300 and last(event \"Order Completed\") before 90d",
    ),
    (
        "call-centre-contacts",
        "Called us this month",
        "count(channel \"call_center\" within 30d) > 0",
    ),
];

fn save_audiences(store: &Store) -> Result<usize> {
    let mut saved = 0;
    let audiences = Audiences::of(store)?;
    for (slug, name, definition) in AUDIENCES {
        if audiences.segment(slug)?.is_some() {
            continue;
        }
        let input = SegmentInput {
            slug: slug.into(),
            name: name.into(),
            description: "Example audience of the demo retailer".into(),
            definition: definition.into(),
        };
        prossimo_decide::save_audience(store, None, &input, None)
            .map_err(|e| anyhow::anyhow!("demo audience {slug}: {e}"))?;
        saved += 1;
    }
    Ok(saved)
}

/// The example messages (docs/messages), as `POST /v1/messages` takes them.
const MESSAGES: [&str; 3] = [
    include_str!("../../../docs/messages/cart-reminder.json"),
    include_str!("../../../docs/messages/cart-reminder-sms.json"),
    include_str!("../../../docs/messages/we-miss-you.json"),
];

/// The example journeys (docs/journeys): slug, name, definition, and whether it goes live.
/// The win-back journey starts when a customer enters an audience, which journeys do not
/// hear yet: it is saved as a draft.
const JOURNEYS: [(&str, &str, &str, bool); 2] = [
    (
        "abandoned-cart",
        "Carrello abbandonato",
        include_str!("../../../docs/journeys/abandoned-cart.json"),
        true,
    ),
    (
        "win-back",
        "Riconquista",
        include_str!("../../../docs/journeys/win-back.json"),
        false,
    ),
];

/// Saves the example messages and journeys, each checked like any other; one already
/// there is left alone. How many messages and journeys were saved.
fn save_journeys(store: &Store) -> Result<(usize, usize)> {
    let messages = Messages::of(store)?;
    let mut saved_messages = 0;
    for text in MESSAGES {
        let example: Value = serde_json::from_str(text).context("an example message")?;
        let field = |name: &str| {
            example
                .get(name)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned()
        };
        let slug = field("slug");
        if messages.get(&slug)?.is_some() {
            continue;
        }
        let content: Content = serde_json::from_value(json!({
            "channel": example.get("channel"),
            "subject": example.get("subject"),
            "body": example.get("body"),
            "format": example.get("format").cloned().unwrap_or(json!("html")),
        }))
        .with_context(|| format!("example message {slug}"))?;
        messages
            .create(&MessageInput {
                slug: slug.clone(),
                name: field("name"),
                description: field("description"),
                content,
            })
            .map_err(|e| anyhow::anyhow!("example message {slug}: {e}"))?;
        saved_messages += 1;
    }
    let journeys = Journeys::of(store)?;
    let mut saved_journeys = 0;
    for (slug, name, definition, live) in JOURNEYS {
        if journeys.get(slug)?.is_some() {
            continue;
        }
        let input = JourneyInput {
            slug: slug.into(),
            name: name.into(),
            description: "Example journey of the demo retailer".into(),
            definition: serde_json::from_str(definition)
                .with_context(|| format!("example journey {slug}"))?,
        };
        save_journey(store, None, &input, false, "demo")
            .map_err(|e| anyhow::anyhow!("example journey {slug}: {e}"))?;
        if live {
            publish_journey(store, None, slug, "demo")
                .map_err(|e| anyhow::anyhow!("example journey {slug}: {e}"))?;
        }
        saved_journeys += 1;
    }
    Ok((saved_messages, saved_journeys))
}

/// Fits the CLV models on all but the last 26 weeks and compares them with what happened,
/// as `prossimo analyze clv --calibration-end` does, so the model check has data to show.
fn evaluate_clv(store: &Store, until: DateTime<Utc>) -> Result<()> {
    let mut options = prossimo_understand::Options::new(until.timestamp_millis());
    options.calibration_end_ms = Some((until - Duration::weeks(26)).timestamp_millis());
    let outcome = prossimo_understand::run(store, &[prossimo_understand::Analysis::Clv], &options)
        .context("demo: evaluating the CLV models")?;
    for problem in &outcome.problems {
        eprintln!("demo: {problem}");
    }
    Ok(())
}

//! Payloads shared by the load generator and the micro-benchmarks, so both measure the
//! same bytes.
// A benchmark harness run by a developer: a failed step ends the run with its message.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::disallowed_methods)]

use serde_json::{Value, json};

/// One realistic web event of about 600 bytes; `n` makes its message id unique and picks
/// the person (`people` distinct users).
pub fn track_message(n: u64, people: u64) -> Value {
    let user = n % people.max(1);
    json!({
        "type": "track",
        "event": "Product Viewed",
        "messageId": format!("bench-{n:012}"),
        "userId": format!("user-{user:09}"),
        "anonymousId": format!("anon-{user:09}"),
        "timestamp": "2026-11-20T10:15:00.000Z",
        "properties": {
            "product_id": "SC-001", "sku": "SC-001-42", "name": "Sneaker Corsa", "category": "scarpe",
            "brand": "Prossimo", "variant": "bianco", "price": 89.0, "currency": "EUR", "position": 3,
            "url": "https://shop.example.it/scarpe/sneaker-corsa"
        },
        "context": {
            "library": {"name": "analytics.js", "version": "5.2.0"},
            "ip": "93.45.12.7",
            "locale": "it-IT",
            "userAgent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0 Safari/537.36",
            "page": {"path": "/scarpe/sneaker-corsa", "referrer": "https://www.google.it/", "title": "Sneaker Corsa"}
        }
    })
}

/// A `/v1/batch` body of `size` messages starting at message number `first`.
pub fn batch_body(first: u64, size: u64, people: u64) -> Vec<u8> {
    let batch: Vec<Value> = (first..first + size)
        .map(|n| track_message(n, people))
        .collect();
    json!({ "batch": batch, "sentAt": "2026-11-20T10:15:01.000Z" })
        .to_string()
        .into_bytes()
}

/// A request body whose message ids and people can be rewritten in place, so the load
/// generator spends almost no CPU on payloads (it shares the machine with the server).
pub struct Template {
    pub body: Vec<u8>,
    /// Per message: offsets of the 12 message-id digits and of the two 9-digit person ids.
    slots: Vec<(usize, usize, usize)>,
}

fn offsets(body: &[u8], marker: &[u8]) -> Vec<usize> {
    body.windows(marker.len())
        .enumerate()
        .filter(|(_, w)| *w == marker)
        .map(|(i, _)| i + marker.len())
        .collect()
}

fn write_digits(dst: &mut [u8], mut value: u64) {
    for byte in dst.iter_mut().rev() {
        *byte = b'0' + (value % 10) as u8;
        value /= 10;
    }
}

impl Template {
    /// `size` messages as a batch body, or one bare message when `batch` is false.
    pub fn new(size: u64, batch: bool) -> Template {
        let body = if batch {
            batch_body(0, size, 1)
        } else {
            track_message(0, 1).to_string().into_bytes()
        };
        let ids = offsets(&body, b"\"bench-");
        let users = offsets(&body, b"\"user-");
        let anons = offsets(&body, b"\"anon-");
        let slots = ids
            .into_iter()
            .zip(users)
            .zip(anons)
            .map(|((i, u), a)| (i, u, a))
            .collect();
        Template { body, slots }
    }

    /// The body for messages `first..first + size`, people drawn from `people`.
    pub fn fill(&mut self, first: u64, people: u64) -> &[u8] {
        for (k, &(id, user, anon)) in self.slots.iter().enumerate() {
            let n = first + k as u64;
            let person = n.wrapping_mul(2_654_435_761) % people.max(1);
            write_digits(&mut self.body[id..id + 12], n);
            write_digits(&mut self.body[user..user + 9], person);
            write_digits(&mut self.body[anon..anon + 9], person);
        }
        &self.body
    }
}

/// splitmix64: a deterministic hash of a message or person number, so every run sends the
/// same events and the audiences select the same people.
pub fn mix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A uniform number in [0, 1) from a hash (the top 53 bits).
fn unit(h: u64) -> f64 {
    (h >> 11) as f64 / (1u64 << 53) as f64
}

/// Picks from `(value, weight)` with weights summing to 100.
fn pick<'a>(h: u64, table: &[(&'a str, u64)]) -> &'a str {
    let mut roll = h % 100;
    for &(value, weight) in table {
        if roll < weight {
            return value;
        }
        roll -= weight;
    }
    table.last().map_or("", |&(v, _)| v)
}

/// The person a message number belongs to (the same spread as [`Template::fill`]: message
/// numbers `0..people` reach every person exactly once).
pub fn person_of(n: u64, people: u64) -> u64 {
    n.wrapping_mul(2_654_435_761) % people.max(1)
}

/// The traits of a person (the same for every message of that person).
pub fn person_traits(person: u64) -> Value {
    let h = |k: u64| mix64(person.wrapping_mul(31).wrapping_add(k) ^ 0x5eed);
    json!({
        "plan": pick(h(1), &[("free", 70), ("plus", 20), ("pro", 8), ("enterprise", 2)]),
        "country": pick(h(2), &[("IT", 45), ("DE", 15), ("FR", 12), ("ES", 10), ("CH", 6), ("AT", 4), ("NL", 4), ("US", 4)]),
        "age": 18 + h(3) % 62,
        "newsletter": h(4) % 100 < 30,
        "loyalty_tier": pick(h(5), &[("none", 60), ("bronze", 25), ("silver", 10), ("gold", 5)]),
        "signup_source": pick(h(6), &[("google", 40), ("direct", 25), ("newsletter", 10), ("promo_ig", 15), ("friend_ig", 10)]),
    })
}

/// The fixed `sentAt` of shop batches; message timestamps are this minus their age, so the
/// server's clock-skew correction stores them at (arrival − age).
pub const SHOP_SENT_AT_MS: i64 = 1_795_169_701_000; // 2026-11-20T10:15:01.000Z

const DAY_MS: f64 = 86_400_000.0;

/// How the shop events of a run are made.
#[derive(Debug, Clone, Copy)]
pub struct ShopOptions {
    /// Distinct people.
    pub people: u64,
    /// Spread event times over this many days before arrival, denser towards today (age =
    /// days × u², so about 13% in the last week of 400 days); 0: live events, 0–2 s old.
    pub history_days: u64,
    /// Carry the person's traits in `context.traits` (a first visit that signs up).
    pub traits: bool,
}

const CATEGORIES: [(&str, u64); 6] = [
    ("scarpe", 25),
    ("borse", 15),
    ("abbigliamento", 25),
    ("accessori", 15),
    ("sport", 12),
    ("casa", 8),
];
const BRANDS: [&str; 5] = ["Prossimo", "Corsa", "Lago", "Vento", "Monte"];
const CAMPAIGNS: [&str; 4] = [
    "black-friday",
    "nuovi-arrivi",
    "saldi",
    "newsletter-settimanale",
];

/// One message of a realistic shop mix: product views, cart adds, checkouts and orders on
/// the web, the app and in stores, email opens; about 600–700 bytes, like [`track_message`].
/// Message number `n` makes it unique and picks the person ([`person_of`]) and everything else.
pub fn shop_message(n: u64, opts: &ShopOptions) -> Value {
    let person = person_of(n, opts.people);
    let h = |k: u64| mix64(n.wrapping_mul(0x100).wrapping_add(k));
    let event = pick(
        h(1),
        &[
            ("Product Viewed", 58),
            ("Product Added", 14),
            ("Checkout Started", 6),
            ("Order Completed", 12),
            ("Email Opened", 10),
        ],
    );
    let channel = match event {
        "Email Opened" => "email",
        "Order Completed" => pick(h(2), &[("web", 55), ("app", 25), ("store", 20)]),
        _ => pick(h(2), &[("web", 65), ("app", 35)]),
    };
    let category = pick(h(3), &CATEGORIES);
    let brand = BRANDS[(h(4) % BRANDS.len() as u64) as usize];
    // Log-uniform 15..400 EUR, ending in .90.
    let price = (15.0 * (400.0f64 / 15.0).powf(unit(h(5)))).floor() + 0.9;
    let quantity = 1 + h(6) % 3;
    let value = (price * quantity as f64 * 100.0).round() / 100.0;
    let product = format!("{}-{:03}", &category[..2].to_uppercase(), h(7) % 200);
    let properties = match event {
        "Product Viewed" | "Product Added" => json!({
            "product_id": product, "sku": format!("{product}-{}", 36 + h(8) % 10),
            "category": category, "brand": brand, "price": price, "currency": "EUR",
            "position": 1 + h(9) % 12, "quantity": quantity,
            "url": format!("https://shop.example.it/{category}/{}", product.to_lowercase()),
        }),
        "Checkout Started" => json!({
            "order_id": format!("ord-{n:012}"), "value": value, "currency": "EUR",
            "category": category, "products": quantity,
        }),
        "Order Completed" => json!({
            "order_id": format!("ord-{n:012}"), "revenue": value, "currency": "EUR",
            "category": category, "brand": brand, "products": quantity,
        }),
        _ => {
            json!({ "campaign": CAMPAIGNS[(h(10) % 4) as usize], "subject": "Novità della settimana" })
        }
    };
    let library = match channel {
        "app" => json!({"name": "analytics-ios", "version": "4.1.7"}),
        "store" => json!({"name": "prossimo-pos", "version": "1.2.0"}),
        "email" => json!({"name": "prossimo-email", "version": "1.0.0"}),
        _ => json!({"name": "analytics.js", "version": "5.2.0"}),
    };
    let age_ms = if opts.history_days > 0 {
        let u = unit(h(11));
        (opts.history_days as f64 * DAY_MS * u * u) as i64
    } else {
        (h(11) % 2_000) as i64
    };
    let timestamp = chrono::DateTime::from_timestamp_millis(SHOP_SENT_AT_MS - age_ms)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let mut context = json!({
        "channel": channel,
        "library": library,
        "ip": format!("93.45.{}.{}", h(12) % 256, h(13) % 256),
        "locale": "it-IT",
        "userAgent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0 Safari/537.36",
    });
    if opts.traits {
        context["traits"] = person_traits(person);
    }
    json!({
        "type": "track",
        "event": event,
        "messageId": format!("shop-{n:012}"),
        "userId": format!("user-{person:09}"),
        "anonymousId": format!("anon-{person:09}"),
        "timestamp": timestamp,
        "properties": properties,
        "context": context,
    })
}

/// A `/v1/batch` body of shop messages `first..first + size`.
pub fn shop_batch_body(first: u64, size: u64, opts: &ShopOptions) -> Vec<u8> {
    let batch: Vec<Value> = (first..first + size)
        .map(|n| shop_message(n, opts))
        .collect();
    let sent_at = chrono::DateTime::from_timestamp_millis(SHOP_SENT_AT_MS)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    json!({ "batch": batch, "sentAt": sent_at })
        .to_string()
        .into_bytes()
}

/// The segment the latency probe enters: every `Bench Probe` event makes its person a
/// member for an hour.
pub const PROBE_SLUG: &str = "bench-probe";
pub const PROBE_DEFINITION: &str = r#"count(event "Bench Probe" within 1h) >= 1"#;
/// The probe's event name.
pub const PROBE_EVENT: &str = "Bench Probe";

/// 100 audiences over the shop mix ([`shop_message`], [`person_traits`]): traits, windowed
/// counts with property filters, sums/averages/extremes of order values, channels,
/// first/last before/after, built-ins, combinations, one `any event` count and segment
/// references (last, since a reference must name a saved segment). Mostly selective (under
/// 5% of profiles), some large (a third or more). In save order.
pub fn audiences() -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    let mut add = |slug: &str, definition: String| out.push((slug.to_owned(), definition));
    // Traits (14).
    add("plan-pro", r#"traits.plan == "pro""#.into());
    add("plan-enterprise", r#"traits.plan == "enterprise""#.into());
    add(
        "plan-paid",
        r#"traits.plan in ["plus", "pro", "enterprise"]"#.into(),
    );
    add("country-it", r#"traits.country == "IT""#.into());
    add(
        "country-dach",
        r#"traits.country in ["DE", "AT", "CH"]"#.into(),
    );
    add("country-fr", r#"traits.country == "FR""#.into());
    add("country-es", r#"traits.country == "ES""#.into());
    add("age-18-24", "traits.age >= 18 and traits.age < 25".into());
    add("age-55-plus", "traits.age >= 55".into());
    add("newsletter", "traits.newsletter".into());
    add("loyalty-gold", r#"traits.loyalty_tier == "gold""#.into());
    add(
        "loyalty-silver-gold",
        r#"traits.loyalty_tier in ["silver", "gold"]"#.into(),
    );
    add(
        "from-instagram",
        r#"traits.signup_source ends_with "_ig""#.into(),
    );
    add(
        "it-young-no-loyalty",
        r#"traits.country == "IT" and traits.age < 30 and traits.loyalty_tier == "none""#.into(),
    );
    // Category interest by window (24).
    for (category, _) in CATEGORIES {
        for window in ["7d", "30d", "90d"] {
            add(
                &format!("viewed-{category}-{window}"),
                format!(
                    r#"count(event "Product Viewed" where properties.category == "{category}" within {window}) >= 1"#
                ),
            );
        }
        add(
            &format!("added-{category}-30d"),
            format!(
                r#"count(event "Product Added" where properties.category == "{category}" within 30d) >= 1"#
            ),
        );
    }
    // Intent (8).
    add(
        "viewed-twice-7d",
        r#"count(event "Product Viewed" within 7d) >= 2"#.into(),
    );
    add(
        "viewed-premium-30d",
        r#"count(event "Product Viewed" where properties.price >= 150 within 30d) >= 1"#.into(),
    );
    add(
        "cart-abandoners-7d",
        r#"count(event "Product Added" within 7d) >= 1 and count(event "Order Completed" within 7d) == 0"#.into(),
    );
    add(
        "checkout-abandoners-3d",
        r#"count(event "Checkout Started" within 3d) >= 1 and count(event "Order Completed" within 3d) == 0"#.into(),
    );
    add(
        "brand-corsa-90d",
        r#"count(event "Product Viewed" where properties.brand == "Corsa" within 90d) >= 1"#.into(),
    );
    add(
        "bargain-sport-shoes-30d",
        r#"count(event "Product Viewed" where properties.category in ["scarpe", "sport"] and properties.price < 50 within 30d) >= 1"#.into(),
    );
    add(
        "top-results-14d",
        r#"count(event "Product Viewed" where properties.position <= 3 within 14d) >= 1"#.into(),
    );
    add(
        "bulk-adders-30d",
        r#"max(event "Product Added", properties.quantity within 30d) >= 3"#.into(),
    );
    // Orders (12).
    add(
        "buyers-30d",
        r#"count(event "Order Completed" within 30d) >= 1"#.into(),
    );
    add(
        "buyers-90d",
        r#"count(event "Order Completed" within 90d) >= 1"#.into(),
    );
    add(
        "buyers-365d",
        r#"count(event "Order Completed" within 365d) >= 1"#.into(),
    );
    add(
        "spent-500-365d",
        r#"sum(event "Order Completed", properties.revenue within 365d) > 500"#.into(),
    );
    add(
        "spent-200-365d",
        r#"sum(event "Order Completed", properties.revenue within 365d) > 200"#.into(),
    );
    add(
        "spent-100-90d",
        r#"sum(event "Order Completed", properties.revenue within 90d) > 100"#.into(),
    );
    add(
        "high-basket",
        r#"avg(event "Order Completed", properties.revenue) >= 150"#.into(),
    );
    add(
        "low-basket-180d",
        r#"avg(event "Order Completed", properties.revenue within 180d) < 40"#.into(),
    );
    add(
        "big-order-52w",
        r#"max(event "Order Completed", properties.revenue within 52w) >= 600"#.into(),
    );
    add(
        "small-order-ever",
        r#"min(event "Order Completed", properties.revenue) <= 20"#.into(),
    );
    add(
        "checkout-value-300-30d",
        r#"sum(event "Checkout Started", properties.value within 30d) >= 300"#.into(),
    );
    add(
        "luxury-browsers-90d",
        r#"avg(event "Product Viewed", properties.price within 90d) >= 200"#.into(),
    );
    // Channels (8).
    add(
        "app-active-7d",
        r#"count(channel "app" within 7d) > 0"#.into(),
    );
    add(
        "app-active-30d",
        r#"count(channel "app" within 30d) > 0"#.into(),
    );
    add(
        "web-active-30d",
        r#"count(channel "web" within 30d) > 0"#.into(),
    );
    add(
        "web-active-365d",
        r#"count(channel "web" within 365d) >= 1"#.into(),
    );
    add(
        "store-visitors-90d",
        r#"count(channel "store" within 90d) >= 1"#.into(),
    );
    add(
        "store-only-365d",
        r#"count(channel "store" within 365d) >= 1 and count(channel "web" within 365d) == 0 and count(channel "app" within 365d) == 0"#.into(),
    );
    add(
        "email-engaged-14d",
        r#"count(channel "email" within 14d) > 0"#.into(),
    );
    add(
        "store-it-30d",
        r#"count(channel "store" within 30d) >= 1 and traits.country == "IT""#.into(),
    );
    // First and last, built-ins (13).
    add(
        "viewed-lapsed-60d",
        r#"last(event "Product Viewed") before 60d"#.into(),
    );
    add(
        "viewed-recently-7d",
        r#"last(event "Product Viewed") after 7d"#.into(),
    );
    add(
        "new-buyers-30d",
        r#"first(event "Order Completed") after 30d"#.into(),
    );
    add(
        "lapsed-buyers-180d",
        r#"last(event "Order Completed") before 180d"#.into(),
    );
    add(
        "buyers-90-365d-ago",
        r#"last(event "Order Completed") before 90d and last(event "Order Completed") after 365d"#
            .into(),
    );
    add("new-profiles-7d", "first_seen after 7d".into());
    add("new-profiles-1d", "first_seen after 1d".into());
    add("dormant-90d", "last_seen before 90d".into());
    add("dormant-365d", "last_seen before 365d".into());
    add(
        "active-30d-old-90d",
        "last_seen after 30d and first_seen before 90d".into(),
    );
    add("first-channel-app", r#"first_channel == "app""#.into());
    add("first-channel-store", r#"first_channel == "store""#.into());
    add(
        "email-opened-30d",
        r#"last(event "Email Opened") after 30d"#.into(),
    );
    // Traits and behaviour (12).
    add(
        "pro-browsing-30d",
        r#"traits.plan == "pro" and count(event "Product Viewed" within 30d) >= 1"#.into(),
    );
    add(
        "free-buyers-90d",
        r#"traits.plan == "free" and count(event "Order Completed" within 90d) >= 1"#.into(),
    );
    add(
        "newsletter-cold-90d",
        r#"traits.newsletter and last(event "Email Opened") before 90d"#.into(),
    );
    add(
        "newsletter-unopened-30d",
        r#"traits.newsletter and count(event "Email Opened" within 30d) == 0"#.into(),
    );
    add(
        "de-carts-30d",
        r#"traits.country == "DE" and count(event "Product Added" within 30d) >= 1"#.into(),
    );
    add(
        "gold-at-risk",
        r#"traits.loyalty_tier == "gold" and last_seen before 60d"#.into(),
    );
    add(
        "young-app-30d",
        r#"traits.age < 30 and count(channel "app" within 30d) > 0"#.into(),
    );
    add(
        "it-spent-300-365d",
        r#"traits.country == "IT" and sum(event "Order Completed", properties.revenue within 365d) > 300"#.into(),
    );
    add(
        "no-newsletter-buyers-365d",
        r#"not traits.newsletter and count(event "Order Completed" within 365d) >= 1"#.into(),
    );
    add(
        "fr-es-bags-90d",
        r#"(traits.country == "FR" or traits.country == "ES") and count(event "Product Viewed" where properties.category == "borse" within 90d) >= 1"#.into(),
    );
    add(
        "paid-inactive-30d",
        r#"traits.plan in ["pro", "enterprise"] and last_seen before 30d"#.into(),
    );
    add(
        "google-new-30d",
        r#"traits.signup_source == "google" and first_seen after 30d"#.into(),
    );
    // Any touchpoint (1), as in docs/segments.md's examples.
    add("active-any-30d", "count(any event within 30d) >= 1".into());
    // References (8).
    add(
        "vip",
        r#"segment "spent-500-365d" or segment "loyalty-gold""#.into(),
    );
    add(
        "vip-it",
        r#"segment "vip" and traits.country == "IT""#.into(),
    );
    add(
        "vip-lapsing",
        r#"segment "vip" and last_seen before 60d"#.into(),
    );
    add(
        "buyers-not-vip",
        r#"segment "buyers-365d" and not segment "vip""#.into(),
    );
    add(
        "shoe-fans-app",
        r#"segment "viewed-scarpe-30d" and segment "app-active-30d""#.into(),
    );
    add(
        "winback",
        r#"segment "lapsed-buyers-180d" and traits.newsletter"#.into(),
    );
    add(
        "cart-abandoners-paid",
        r#"segment "cart-abandoners-7d" and segment "plan-paid""#.into(),
    );
    add(
        "new-and-engaged",
        r#"segment "new-profiles-7d" and count(event "Product Viewed" within 7d) >= 2"#.into(),
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_fills_valid_unique_messages() {
        let mut t = Template::new(3, true);
        let body = t.fill(41, 1000).to_vec();
        let v: Value = serde_json::from_slice(&body).unwrap();
        let ids: Vec<&str> = v["batch"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["messageId"].as_str().unwrap())
            .collect();
        assert_eq!(
            ids,
            vec![
                "bench-000000000041",
                "bench-000000000042",
                "bench-000000000043"
            ]
        );
        assert_eq!(
            v["batch"][0]["userId"].as_str().unwrap().len(),
            "user-".len() + 9
        );
        let size = track_message(0, 1).to_string().len();
        assert!(
            (550..750).contains(&size),
            "a message is about 600 bytes: {size}"
        );
    }

    #[test]
    fn shop_messages_parse_and_spread_people() {
        let opts = ShopOptions {
            people: 1000,
            history_days: 400,
            traits: true,
        };
        let body = shop_batch_body(0, 100, &opts);
        let batch = prossimo_model::parse_batch(
            &body,
            chrono::Utc::now(),
            &prossimo_model::Limits::default(),
        )
        .expect("the shop mix is valid");
        assert_eq!(batch.messages.len(), 100);
        let channels: std::collections::BTreeSet<_> =
            batch.messages.iter().map(|m| m.channel.as_str()).collect();
        assert!(channels.len() >= 3, "{channels:?}");
        let people: std::collections::BTreeSet<u64> =
            (0..1000).map(|n| person_of(n, 1000)).collect();
        assert_eq!(
            people.len(),
            1000,
            "message numbers 0..people reach everyone once"
        );
        let sizes: Vec<usize> = (0..50)
            .map(|n| shop_message(n, &opts).to_string().len())
            .collect();
        let mean = sizes.iter().sum::<usize>() / sizes.len();
        assert!((500..900).contains(&mean), "about 600-700 bytes: {mean}");
    }

    #[test]
    fn audiences_are_a_valid_catalog_of_100() {
        let list = audiences();
        assert_eq!(list.len(), 100);
        let mut with_probe = list.clone();
        with_probe.push((PROBE_SLUG.into(), PROBE_DEFINITION.into()));
        let catalog = prossimo_segments::Catalog::new(
            with_probe.iter().map(|(s, d)| (s.as_str(), d.as_str())),
            &prossimo_segments::Schema::product_default(),
        )
        .expect("every definition checks");
        assert_eq!(catalog.segments().count(), 101);
        for (slug, _) in &list {
            prossimo_decide::audiences::check_slug(slug).expect("valid slug");
        }
    }
}

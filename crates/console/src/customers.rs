//! Customers: search by any identifier or name, and the customer 360 page.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Redirect, Response};
use prossimo_messages::{ALL_TOPICS, ConsentState, Consents, Outbox};
use prossimo_model::{Channel, MessageType};
use prossimo_store::{EventQuery, MAX_SEARCH_OFFSET, Profile360, ProfileKey, ProfileSummary};
use prossimo_understand::Reports;
use prossimo_view::CustomerView;
use serde::Deserialize;
use serde_json::Value;

use crate::ConsoleState;
use crate::auth::Signed;
use crate::i18n::{self, Lang};
use crate::page::{Chrome, PageError, blocking, path_and_query, respond};

/// Rows per timeline page.
const TIMELINE_PAGE: usize = 50;
/// Search results shown.
/// Customers per page of search results.
const PAGE_SIZE: usize = 25;

#[derive(Debug, Deserialize, Default)]
pub struct SearchQuery {
    #[serde(default)]
    q: String,
    /// 1-based; a number out of range shows the first or the deepest page.
    page: Option<String>,
    lang: Option<String>,
}

#[derive(Template)]
#[template(path = "customers.html")]
struct SearchPage {
    chrome: Chrome,
    q: String,
    total: String,
    results: Vec<SearchRow>,
    /// Positions of the first and last result shown (1-based).
    first: usize,
    last: usize,
    more: bool,
    /// Links to the neighbouring pages, when there are any.
    previous: Option<String>,
    next: Option<String>,
}

struct SearchRow {
    id: i64,
    name: String,
    email: String,
    user_id: String,
    last_seen: String,
    matched: String,
}

impl SearchRow {
    fn new(s: ProfileSummary, lang: Lang) -> SearchRow {
        SearchRow {
            id: s.id,
            name: s.name.unwrap_or_else(|| lang.texts().unnamed.to_owned()),
            email: s.email.unwrap_or_default(),
            user_id: s.user_id.unwrap_or_default(),
            last_seen: s.last_seen.as_deref().map(human_time).unwrap_or_default(),
            matched: s.matched,
        }
    }
}

pub async fn search(
    State(state): State<ConsoleState>,
    Query(query): Query<SearchQuery>,
    headers: HeaderMap,
    uri: Uri,
    signed: Signed,
) -> Result<Response, PageError> {
    let lang = Lang::choose(query.lang.as_deref(), &headers);
    let store = state.store.clone();
    let q = query.q.trim().to_owned();
    let max_page = MAX_SEARCH_OFFSET / PAGE_SIZE + 1;
    let page_number = query
        .page
        .as_deref()
        .and_then(|p| p.trim().parse::<usize>().ok())
        .unwrap_or(1)
        .clamp(1, max_page);
    let offset = (page_number - 1) * PAGE_SIZE;
    let needle = q.clone();
    let (total, found) = blocking(lang, move || {
        Ok((
            store.profile_count()?,
            store.search_page(&needle, offset, PAGE_SIZE)?,
        ))
    })
    .await?;
    let t = lang.texts();
    let link = |n: usize| format!("/customers?q={}&page={n}", url_encode(&q));
    let shown = found.profiles.len();
    let page = SearchPage {
        chrome: Chrome::signed(
            lang,
            &signed,
            t.nav_customers,
            "customers",
            &path_and_query(&uri),
        ),
        total: lang.count(total),
        first: offset + 1,
        last: offset + shown,
        more: found.more,
        previous: (page_number > 1 && (shown > 0 || offset > 0)).then(|| link(page_number - 1)),
        next: (found.more && page_number < max_page).then(|| link(page_number + 1)),
        results: found
            .profiles
            .into_iter()
            .map(|s| SearchRow::new(s, lang))
            .collect(),
        q,
    };
    respond(StatusCode::OK, &page, lang, query.lang.as_deref())
}

#[derive(Debug, Deserialize, Default)]
pub struct TimelineQuery {
    channel: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    event: Option<String>,
    cursor: Option<String>,
    lang: Option<String>,
}

#[derive(Template)]
#[template(path = "customer.html")]
struct CustomerPage {
    chrome: Chrome,
    id: i64,
    name: String,
    first_seen: String,
    last_seen: String,
    first_channel: String,
    event_count: u64,
    order_count: u64,
    revenue: String,
    traits: Vec<(String, String)>,
    identifiers: Vec<(String, String, String)>,
    identity_log: Vec<(String, String, String)>,
    merged_profiles: String,
    insights: Vec<Insight>,
    segments: Vec<SegmentRow>,
    consent: Vec<ConsentRow>,
    sends: Vec<SendRow>,
    journeys: Vec<JourneyRow>,
    channels: Vec<ChannelBar>,
    filter: Filter,
    channel_options: Vec<(String, String)>,
    type_options: Vec<String>,
    rows: Vec<TimelineRow>,
    older_href: Option<String>,
    newest_href: Option<String>,
}

struct Insight {
    title: &'static str,
    value: String,
    text: String,
}

struct SegmentRow {
    name: String,
    slug: String,
    since: String,
    left: Option<String>,
}

/// A channel and topic the customer chose, and how they chose it.
struct ConsentRow {
    channel: String,
    topic: String,
    opted_in: bool,
    source: String,
    at: String,
}

/// A send to the customer and what became of it.
struct SendRow {
    at: String,
    message: String,
    channel: String,
    status: String,
    reason: String,
}

/// A journey the customer is in or was in.
struct JourneyRow {
    slug: String,
    entered: String,
    /// `waiting at <step>`, or how it ended.
    state: String,
    waiting: bool,
}

/// The most recent journey instances the 360 shows.
const INSTANCES_SHOWN: usize = 10;

/// The most recent sends the 360 shows.
const SENDS_SHOWN: usize = 20;

struct ChannelBar {
    code: String,
    label: String,
    icon: &'static str,
    count: u64,
    percent: u32,
}

#[derive(Default)]
struct Filter {
    channel: String,
    kind: String,
    event: String,
}

struct TimelineRow {
    time: String,
    channel: String,
    channel_label: String,
    icon: &'static str,
    kind: String,
    what: String,
    details: String,
}

pub async fn customer(
    State(state): State<ConsoleState>,
    Path(raw_id): Path<String>,
    Query(query): Query<TimelineQuery>,
    headers: HeaderMap,
    uri: Uri,
    signed: Signed,
) -> Result<Response, PageError> {
    let lang = Lang::choose(query.lang.as_deref(), &headers);
    let t = lang.texts();
    let id: i64 = raw_id
        .parse()
        .map_err(|_| PageError::not_found(lang, t.customer_not_found))?;
    let filter = Filter {
        channel: query
            .channel
            .clone()
            .filter(|c| Channel::ALL.iter().any(|k| k.as_str() == c))
            .unwrap_or_default(),
        kind: query
            .kind
            .clone()
            .filter(|k| MessageType::ALL.iter().any(|m| m.as_str() == k))
            .unwrap_or_default(),
        event: query
            .event
            .clone()
            .map(|e| e.trim().to_owned())
            .unwrap_or_default(),
    };
    let events_query = EventQuery {
        kind: Some(filter.kind.clone()).filter(|k| !k.is_empty()),
        event: Some(filter.event.clone()).filter(|e| !e.is_empty()),
        channel: Some(filter.channel.clone()).filter(|c| !c.is_empty()),
        limit: TIMELINE_PAGE,
        cursor: query.cursor.clone().filter(|c| !c.is_empty()),
        ..EventQuery::default()
    };
    let store = state.store.clone();
    let loaded = blocking(lang, move || {
        let key = ProfileKey::Id(id);
        let Some(customer) = prossimo_view::customer(&store, &key)? else {
            return Ok(None);
        };
        let page = prossimo_view::timeline(&store, &key, &events_query)?;
        let consent = Consents::of(&store)?.of_profiles(&[customer.profile.id])?;
        let mut sends = Outbox::of(&store)?.of_profile(customer.profile.id)?;
        sends.truncate(SENDS_SHOWN);
        let slugs: std::collections::HashMap<i64, String> =
            prossimo_journeys::Journeys::of(&store)?
                .list()?
                .into_iter()
                .map(|j| (j.id, j.slug))
                .collect();
        let mut instances =
            prossimo_journeys::Instances::of(&store)?.of_profile(customer.profile.id)?;
        instances.truncate(INSTANCES_SHOWN);
        let journeys: Vec<JourneyRow> = instances
            .into_iter()
            .map(|i| {
                let (state, waiting) = match &i.instance.position {
                    prossimo_journeys::Position::Waiting { step, .. } => {
                        (format!("{} {step}", t.waiting_at), true)
                    }
                    prossimo_journeys::Position::Ended { reason, step, .. } => (
                        format!(
                            "{} ({}{})",
                            t.journey_ended,
                            reason.as_str().replace('_', " "),
                            step.as_deref()
                                .map(|s| format!(", {s}"))
                                .unwrap_or_default()
                        ),
                        false,
                    ),
                    prossimo_journeys::Position::Entering => (t.journey_entering.to_owned(), true),
                };
                JourneyRow {
                    slug: slugs.get(&i.journey_id).cloned().unwrap_or_default(),
                    entered: human_millis(i.instance.entered_at),
                    state,
                    waiting,
                }
            })
            .collect();
        // The customer's group in words, from the clustering report.
        let group = match customer
            .profile
            .computed
            .get("cluster")
            .and_then(Value::as_i64)
        {
            Some(cluster) => Reports::of(&store)?.get("clusters")?.and_then(|a| {
                a.result
                    .get("clusters")?
                    .as_array()?
                    .iter()
                    .find(|c| c.get("cluster").and_then(Value::as_i64) == Some(cluster))?
                    .get("distinctive_features")?
                    .as_array()
                    .cloned()
            }),
            None => None,
        };
        Ok(Some((customer, page, group, consent, (sends, journeys))))
    })
    .await?;
    let Some((CustomerView { profile, segments }, page, group, consent, (sends, journeys))) =
        loaded
    else {
        return Err(PageError::not_found(lang, t.customer_not_found));
    };
    if profile.id != id {
        // A profile merged into another: its person lives on under the surviving id.
        return Ok(Redirect::to(&format!("/customers/{}", profile.id)).into_response());
    }
    let page_events = page.map(|p| (p.events, p.next_cursor)).unwrap_or_default();
    let base_query = filter_query(&filter);
    let older_href = page_events
        .1
        .as_ref()
        .map(|cursor| format!("/customers/{id}?{base_query}cursor={}", url_encode(cursor)));
    let newest_href = query.cursor.as_ref().filter(|c| !c.is_empty()).map(|_| {
        format!("/customers/{id}?{base_query}")
            .trim_end_matches(['&', '?'])
            .to_owned()
    });
    let rows = page_events
        .0
        .iter()
        .map(|e| timeline_row(e, lang))
        .collect();
    let title = profile.name.clone().unwrap_or_else(|| format!("#{id}"));
    let page = CustomerPage {
        chrome: Chrome::signed(lang, &signed, &title, "customers", &path_and_query(&uri)),
        id,
        name: title.clone(),
        first_seen: profile
            .first_seen
            .as_deref()
            .map(human_time)
            .unwrap_or_default(),
        last_seen: profile
            .last_seen
            .as_deref()
            .map(human_time)
            .unwrap_or_default(),
        first_channel: profile
            .first_channel
            .as_deref()
            .map(|c| i18n::channel(lang, c).to_owned())
            .unwrap_or_default(),
        event_count: profile.event_count,
        order_count: profile.orders.count,
        revenue: money(lang, profile.orders.revenue, &profile.orders.currency),
        traits: traits(&profile),
        identifiers: profile
            .identifiers
            .iter()
            .map(|i| (i.kind.clone(), i.value.clone(), human_millis(i.since)))
            .collect(),
        identity_log: profile
            .identity_log
            .iter()
            .map(|l| {
                (
                    human_time(&l.at),
                    l.kind.replace('_', " "),
                    l.detail.clone(),
                )
            })
            .collect(),
        merged_profiles: profile
            .merged_profiles
            .iter()
            .map(|p| format!("#{p}"))
            .collect::<Vec<_>>()
            .join(", "),
        insights: insights(&profile, group.as_deref(), lang),
        segments: segments
            .iter()
            .map(|m| SegmentRow {
                name: m.name.clone(),
                slug: m.slug.clone(),
                since: human_millis(m.entered_at),
                left: m.exited_at.map(human_millis),
            })
            .collect(),
        consent: consent
            .into_iter()
            .map(|c| ConsentRow {
                channel: i18n::channel(lang, c.channel.touchpoint().as_str()).to_owned(),
                topic: if c.topic == ALL_TOPICS {
                    t.every_topic.to_owned()
                } else {
                    c.topic
                },
                opted_in: c.state == ConsentState::OptedIn,
                source: c.source.replace('_', " "),
                at: human_millis(c.at),
            })
            .collect(),
        sends: sends
            .into_iter()
            .map(|s| SendRow {
                at: human_millis(s.updated_at),
                message: s.template,
                channel: i18n::channel(lang, s.channel.touchpoint().as_str()).to_owned(),
                status: s.status.as_str().to_owned(),
                reason: s.reason.unwrap_or_default().replace('_', " "),
            })
            .collect(),
        journeys,
        channels: channel_bars(&profile, lang),
        channel_options: Channel::ALL
            .iter()
            .map(|c| {
                (
                    c.as_str().to_owned(),
                    i18n::channel(lang, c.as_str()).to_owned(),
                )
            })
            .collect(),
        type_options: MessageType::ALL
            .iter()
            .map(|m| m.as_str().to_owned())
            .collect(),
        filter,
        rows,
        older_href,
        newest_href,
    };
    respond(StatusCode::OK, &page, lang, query.lang.as_deref())
}

/// `channel=…&type=…&event=…&` for the set filters, to carry into paging links.
fn filter_query(filter: &Filter) -> String {
    [
        ("channel", &filter.channel),
        ("type", &filter.kind),
        ("event", &filter.event),
    ]
    .into_iter()
    .filter(|(_, v)| !v.is_empty())
    .map(|(k, v)| format!("{k}={}&", url_encode(v)))
    .collect()
}

/// Percent-encodes everything but unreserved characters (RFC 3986).
pub fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// How the console writes a time: UTC to the minute.
const MINUTE: &str = "%Y-%m-%d %H:%M";

/// `2026-03-01T10:00:00.000Z` → `2026-03-01 10:00`.
pub fn human_time(iso: &str) -> String {
    chrono::DateTime::parse_from_rfc3339(iso)
        .map(|t| t.with_timezone(&chrono::Utc).format(MINUTE).to_string())
        .unwrap_or_else(|_| iso.to_owned())
}

/// Unix milliseconds → `2026-03-01 10:00`; empty for a time out of range.
pub fn human_millis(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format(MINUTE).to_string())
        .unwrap_or_default()
}

/// An amount the way each language writes it: `€ 1,234.50` / `1.234,50 €`.
pub fn money(lang: Lang, amount: f64, currency: &str) -> String {
    let symbol = match currency {
        "EUR" => "€",
        "USD" => "$",
        "GBP" => "£",
        other => other,
    };
    if !amount.is_finite() || amount.abs() >= 1e15 {
        // Beyond any real order book: shown as it is rather than wrapped into nonsense.
        return format!("{amount:e} {symbol}");
    }
    let figure = lang.fixed(amount, 2);
    match lang {
        Lang::En => match figure.strip_prefix('-') {
            Some(positive) => format!("-{symbol} {positive}"),
            None => format!("{symbol} {figure}"),
        },
        Lang::It => format!("{figure} {symbol}"),
    }
}

fn display_value(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn traits(profile: &Profile360) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = profile
        .traits
        .iter()
        .map(|(k, v)| (k.clone(), display_value(v)))
        .collect();
    out.sort();
    out
}

/// The computed traits in words.
fn insights(profile: &Profile360, group: Option<&[Value]>, lang: Lang) -> Vec<Insight> {
    let t = lang.texts();
    let c = &profile.computed;
    let mut out = Vec::new();
    if let Some(code) = c.get("rfm_segment").and_then(Value::as_str) {
        let (label, text) = i18n::rfm_segment(lang, code).unwrap_or((code, ""));
        let score = c.get("rfm_score").and_then(Value::as_str).unwrap_or("");
        let text = if score.is_empty() {
            text.to_owned()
        } else {
            format!("{text} · RFM {score}: {}", t.rfm_score_text)
        };
        out.push(Insight {
            title: t.rfm_title,
            value: label.to_owned(),
            text,
        });
    }
    if let Some(p) = c.get("p_alive").and_then(Value::as_f64) {
        out.push(Insight {
            title: t.p_alive_title,
            value: lang.percent(p),
            text: t.p_alive_text.to_owned(),
        });
    }
    if let Some(v) = c.get("clv_12m").and_then(Value::as_f64) {
        out.push(Insight {
            title: t.clv_title,
            value: money(lang, v, &profile.orders.currency),
            text: t.clv_text.to_owned(),
        });
    }
    if let Some(n) = c.get("expected_purchases_90d").and_then(Value::as_f64) {
        let value = lang.fixed(n, 2);
        out.push(Insight {
            title: t.expected_title,
            value,
            text: t.expected_text.to_owned(),
        });
    }
    if c.get("cluster").is_some() {
        // Named by what sets the group apart, never by its index.
        out.push(Insight {
            title: t.cluster_title,
            value: i18n::cluster_name(lang, group.unwrap_or_default()),
            text: t.cluster_text.to_owned(),
        });
    }
    out
}

fn channel_bars(profile: &Profile360, lang: Lang) -> Vec<ChannelBar> {
    let total: u64 = profile.counts_by_channel.values().sum();
    let mut bars: Vec<ChannelBar> = profile
        .counts_by_channel
        .iter()
        .map(|(code, &count)| ChannelBar {
            code: code.clone(),
            label: i18n::channel(lang, code).to_owned(),
            icon: i18n::channel_icon(code),
            count,
            percent: if total == 0 {
                0
            } else {
                ((count * 100) as f64 / total as f64).round() as u32
            },
        })
        .collect();
    bars.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.code.cmp(&b.code)));
    bars
}

/// One timeline event as a row: what happened in words, and its most telling properties.
fn timeline_row(event: &Value, lang: Lang) -> TimelineRow {
    let get = |k: &str| event.get(k).and_then(Value::as_str).unwrap_or("");
    let channel = get("channel").to_owned();
    let kind = get("type").to_owned();
    let what = match kind.as_str() {
        "track" => get("event").to_owned(),
        "page" | "screen" => {
            let name = get("name");
            if name.is_empty() {
                kind.clone()
            } else {
                format!("{kind}: {name}")
            }
        }
        "group" => format!("group: {}", get("groupId")),
        "alias" => format!("alias: {}", get("previousId")),
        _ => kind.clone(),
    };
    let source = match kind.as_str() {
        "identify" | "group" => event.get("traits"),
        _ => event.get("properties"),
    };
    let details = source
        .and_then(Value::as_object)
        .map(|map| {
            map.iter()
                .take(6)
                .map(|(k, v)| {
                    let mut v = display_value(v);
                    if v.chars().count() > 60 {
                        v = v.chars().take(57).collect::<String>() + "…";
                    }
                    format!("{k}: {v}")
                })
                .collect::<Vec<_>>()
                .join(" · ")
        })
        .unwrap_or_default();
    TimelineRow {
        time: human_time(get("timestamp")),
        channel_label: i18n::channel(lang, &channel).to_owned(),
        icon: i18n::channel_icon(&channel),
        channel,
        kind,
        what,
        details,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_is_written_the_way_each_language_writes_it() {
        assert_eq!(money(Lang::En, 1234.5, "EUR"), "€ 1,234.50");
        assert_eq!(money(Lang::It, 1234.5, "EUR"), "1.234,50 €");
        assert_eq!(money(Lang::It, 1234567.891, "EUR"), "1.234.567,89 €");
        assert_eq!(money(Lang::En, 0.0, "CHF"), "CHF 0.00");
        assert_eq!(money(Lang::En, -12.0, "USD"), "-$ 12.00");
        assert_eq!(money(Lang::En, -1e300, "EUR"), "-1e300 €");
        assert_eq!(money(Lang::It, f64::NAN, "EUR"), "NaN €");
    }

    #[test]
    fn times_are_shortened_to_the_minute() {
        assert_eq!(human_time("2026-03-01T10:00:59.000Z"), "2026-03-01 10:00");
        assert_eq!(human_time("not a time"), "not a time");
        assert_eq!(human_millis(1_000 * 3_600), "1970-01-01 01:00");
    }

    #[test]
    fn timeline_rows_say_what_happened() {
        let row = timeline_row(
            &serde_json::json!({"type": "track", "event": "Order Completed", "channel": "store",
                "timestamp": "2026-03-01T10:00:00.000Z",
                "properties": {"order_id": "R-1", "revenue": 129.0}}),
            Lang::It,
        );
        assert_eq!(row.what, "Order Completed");
        assert_eq!(row.channel_label, "Negozio");
        assert_eq!(row.details, "order_id: R-1 · revenue: 129.0");
        let page = timeline_row(
            &serde_json::json!({"type": "page", "name": "Scarpe", "channel": "web", "timestamp": "x"}),
            Lang::En,
        );
        assert_eq!(page.what, "page: Scarpe");
    }

    #[test]
    fn paging_links_keep_the_filters_and_encode_values() {
        let filter = Filter {
            channel: "store".into(),
            kind: String::new(),
            event: "Order Completed".into(),
        };
        assert_eq!(
            filter_query(&filter),
            "channel=store&event=Order%20Completed&"
        );
    }

    #[test]
    fn numbers_are_written_one_way_per_language() {
        assert_eq!(Lang::En.number(1234567.0), "1,234,567");
        assert_eq!(Lang::It.number(1234567.0), "1.234.567");
        assert_eq!(Lang::En.number(1234.5), "1,234.50");
        assert_eq!(Lang::It.number(1234.5), "1.234,50");
        assert_eq!(Lang::It.number(-0.004), "0,00");
        assert_eq!(Lang::It.number(-12.5), "-12,50");
        assert_eq!(Lang::It.count(1000), "1.000");
        assert_eq!(Lang::En.percent(0.123), "12%");
        assert_eq!(money(Lang::It, -1234.5, "EUR"), "-1.234,50 €");
        assert_eq!(money(Lang::En, -1234.5, "EUR"), "-€ 1,234.50");
    }
}

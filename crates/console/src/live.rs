//! Live events: what this server's tracking API just accepted or refused, like Segment's
//! debugger. The ingest handlers write into a small ring in memory (a few hundred entries,
//! a few messages sampled per request, so a busy server pays almost nothing); the page
//! shows it and polls for newer entries. Each node shows its own traffic.

use std::collections::VecDeque;
use std::sync::Mutex;

use askama::Template;
use axum::Json;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use prossimo_model::Message;
use serde::{Deserialize, Serialize};

use crate::ConsoleState;
use crate::auth::Signed;
use crate::customers::human_time;
use crate::i18n::{self, Lang};
use crate::page::{Chrome, PageError, path_and_query, respond};

/// Entries kept.
const CAPACITY: usize = 300;
/// Messages of one request shown one by one; the rest are counted.
const LIVE_SAMPLE: usize = 10;

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct LiveEntry {
    pub seq: u64,
    /// When the request arrived, ISO-8601.
    pub at: String,
    pub source: String,
    pub accepted: bool,
    /// Accepted: the message's type, event or name, and who it is about.
    pub kind: String,
    pub what: String,
    pub who: String,
    pub channel: String,
    pub message_id: String,
    /// Accepted: further messages of the same request not shown one by one. Refused
    /// without a source: further requests refused alike right after.
    pub more: usize,
    /// Refused: the HTTP status, the error code and message, and each problem.
    pub status: u16,
    pub code: String,
    pub message: String,
    pub problems: Vec<String>,
}

/// The summary of a request's messages, taken before they go to the writer.
#[derive(Debug)]
pub struct AcceptedSample(Vec<LiveEntry>);

/// What the ingest API reports about one refused request.
pub struct Refusal<'a> {
    pub source: Option<&'a str>,
    pub status: u16,
    pub code: &'a str,
    pub message: String,
    pub problems: Vec<String>,
}

#[derive(Default)]
pub struct LiveFeed {
    ring: Mutex<Ring>,
}

#[derive(Default)]
struct Ring {
    next: u64,
    entries: VecDeque<LiveEntry>,
}

impl Ring {
    fn push(&mut self, mut entry: LiveEntry) {
        self.next += 1;
        entry.seq = self.next;
        if self.entries.len() == CAPACITY {
            self.entries.pop_front();
        }
        self.entries.push_back(entry);
    }
}

fn now() -> String {
    prossimo_model::format_millis(chrono::Utc::now().timestamp_millis()).unwrap_or_default()
}

fn blank(source: &str, accepted: bool) -> LiveEntry {
    LiveEntry {
        seq: 0,
        at: now(),
        source: source.to_owned(),
        accepted,
        kind: String::new(),
        what: String::new(),
        who: String::new(),
        channel: String::new(),
        message_id: String::new(),
        more: 0,
        status: 200,
        code: String::new(),
        message: String::new(),
        problems: Vec::new(),
    }
}

impl LiveFeed {
    /// Summarises the first ten messages of a request about to be stored (a
    /// few short strings each, nothing cloned whole: this runs on the ingest path), to be
    /// shown by [`LiveFeed::accepted`] once they are.
    pub fn sample<'a>(
        source: &str,
        messages: impl ExactSizeIterator<Item = &'a Message>,
    ) -> AcceptedSample {
        let total = messages.len();
        let mut entries: Vec<LiveEntry> = messages
            .take(LIVE_SAMPLE)
            .map(|m| LiveEntry {
                kind: m.kind.as_str().to_owned(),
                what: m
                    .event
                    .clone()
                    .or_else(|| m.name.clone())
                    .unwrap_or_default(),
                who: m
                    .user_id
                    .as_ref()
                    .map(|u| format!("user_id:{u}"))
                    .or_else(|| m.anonymous_id.as_ref().map(|a| format!("anonymous_id:{a}")))
                    .unwrap_or_default(),
                channel: m.channel.as_str().to_owned(),
                message_id: m.message_id.clone(),
                ..blank(source, true)
            })
            .collect();
        let shown = entries.len();
        if let Some(last) = entries.last_mut() {
            last.more = total - shown;
        }
        AcceptedSample(entries)
    }

    /// A request's messages were stored.
    pub fn accepted(&self, sample: AcceptedSample) {
        if let Ok(mut ring) = self.ring.lock() {
            for entry in sample.0 {
                ring.push(entry);
            }
        }
    }

    /// A request was refused; nothing of it was stored.
    pub fn refused(&self, refusal: Refusal<'_>) {
        let entry = LiveEntry {
            status: refusal.status,
            code: refusal.code.to_owned(),
            message: refusal.message,
            problems: refusal.problems,
            ..blank(refusal.source.unwrap_or(""), false)
        };
        if let Ok(mut ring) = self.ring.lock() {
            // Requests without a valid key, refused alike one after another (a misconfigured
            // client, a scan), count on one entry instead of pushing real traffic out.
            if entry.source.is_empty()
                && let Some(last) = ring.entries.back_mut()
                && !last.accepted
                && last.source.is_empty()
                && (last.status, &last.code) == (entry.status, &entry.code)
            {
                last.more += 1;
                return;
            }
            ring.push(entry);
        }
    }

    /// Entries after `after`, oldest first; every entry, and `true`, when `after` is
    /// from before a restart (beyond the newest entry), so a page left open starts over.
    pub fn newer(&self, after: u64) -> (Vec<LiveEntry>, bool) {
        let newest = self.ring.lock().map_or(0, |ring| ring.next);
        if after > newest {
            (self.since(0), true)
        } else {
            (self.since(after), false)
        }
    }

    /// Entries after `after`, oldest first.
    pub fn since(&self, after: u64) -> Vec<LiveEntry> {
        self.ring
            .lock()
            .map(|ring| {
                ring.entries
                    .iter()
                    .filter(|e| e.seq > after)
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    }
}

#[derive(Debug, Deserialize, Default)]
pub struct LiveQuery {
    #[serde(default)]
    after: u64,
    lang: Option<String>,
}

struct Row {
    seq: u64,
    time: String,
    entry: LiveEntry,
    channel_label: String,
    icon: &'static str,
}

#[derive(Template)]
#[template(path = "live.html")]
struct LivePage {
    chrome: Chrome,
    rows: Vec<Row>,
    last: u64,
}

pub async fn page(
    State(state): State<ConsoleState>,
    Query(query): Query<LiveQuery>,
    headers: HeaderMap,
    uri: Uri,
    signed: Signed,
) -> Result<Response, PageError> {
    let lang = Lang::choose(query.lang.as_deref(), &headers);
    let entries = state.live.since(0);
    let last = entries.last().map_or(0, |e| e.seq);
    let rows = entries
        .into_iter()
        .rev()
        .map(|entry| Row {
            seq: entry.seq,
            time: human_time_seconds(&entry.at),
            channel_label: i18n::channel(lang, &entry.channel).to_owned(),
            icon: i18n::channel_icon(&entry.channel),
            entry,
        })
        .collect();
    let t = lang.texts();
    let page = LivePage {
        chrome: Chrome::signed(lang, &signed, t.nav_live, "live", &path_and_query(&uri)),
        rows,
        last,
    };
    respond(StatusCode::OK, &page, lang, query.lang.as_deref())
}

/// What the live page's polling gets: entries newer than it had, and whether the feed
/// started over (the page then clears its list).
#[derive(Serialize)]
struct EntriesPage {
    entries: Vec<ShownEntry>,
    reset: bool,
}

/// An entry with what the page shows beside it, in the reader's language.
#[derive(Serialize)]
struct ShownEntry {
    #[serde(flatten)]
    entry: LiveEntry,
    time: String,
    channel_label: String,
    icon: &'static str,
}

/// `GET /live/entries?after=N`: newer entries as JSON, for the page's polling.
pub async fn entries(
    State(state): State<ConsoleState>,
    Query(query): Query<LiveQuery>,
    headers: HeaderMap,
    _signed: Signed,
) -> Response {
    let lang = Lang::choose(query.lang.as_deref(), &headers);
    let (entries, reset) = state.live.newer(query.after);
    let entries: Vec<ShownEntry> = entries
        .into_iter()
        .map(|e| ShownEntry {
            time: human_time_seconds(&e.at),
            channel_label: i18n::channel(lang, &e.channel).to_owned(),
            icon: i18n::channel_icon(&e.channel),
            entry: e,
        })
        .collect();
    let mut response = Json(EntriesPage { entries, reset }).into_response();
    response.headers_mut().insert(
        axum::http::header::CACHE_CONTROL,
        axum::http::HeaderValue::from_static("no-store"),
    );
    response
}

/// `2026-03-01T10:00:05.123Z` → `10:00:05`, or the minute-precision form for older days.
fn human_time_seconds(iso: &str) -> String {
    chrono::DateTime::parse_from_rfc3339(iso)
        .map(|t| t.with_timezone(&chrono::Utc).format("%H:%M:%S").to_string())
        .unwrap_or_else(|_| human_time(iso))
}

#[cfg(test)]
mod tests {
    use super::*;
    use prossimo_model::{Limits, parse_batch};

    #[test]
    fn the_ring_keeps_the_latest_entries_and_samples_big_requests() {
        let feed = LiveFeed::default();
        let body = serde_json::json!({"batch": (0..25).map(|i| serde_json::json!({
            "type": "track", "event": "Product Viewed", "userId": format!("u{i}")})).collect::<Vec<_>>()});
        let payload = parse_batch(
            body.to_string().as_bytes(),
            chrono::Utc::now(),
            &Limits::default(),
        )
        .unwrap();
        feed.accepted(LiveFeed::sample("web", payload.messages.iter()));
        let entries = feed.since(0);
        assert_eq!(entries.len(), LIVE_SAMPLE);
        assert_eq!(entries.last().unwrap().more, 15);
        assert_eq!(entries[0].who, "user_id:u0");
        assert_eq!(entries[0].what, "Product Viewed");
        feed.refused(Refusal {
            source: Some("web"),
            status: 400,
            code: "validation_error",
            message: "bad".into(),
            problems: vec!["[0] userId: required".into()],
        });
        let (stale, reset) = feed.newer(1_000_000);
        assert!(reset, "a position from before a restart starts over");
        assert_eq!(stale.len(), LIVE_SAMPLE + 1);
        let after = feed.since(LIVE_SAMPLE as u64);
        assert_eq!(after.len(), 1);
        assert!(!after[0].accepted);
        for _ in 0..CAPACITY {
            feed.refused(Refusal {
                source: Some("web"),
                status: 401,
                code: "unauthorized",
                message: String::new(),
                problems: Vec::new(),
            });
        }
        let all = feed.since(0);
        assert_eq!(all.len(), CAPACITY);
        let before = feed.since(0).len();
        for _ in 0..50 {
            feed.refused(Refusal {
                source: None,
                status: 401,
                code: "unauthorized",
                message: String::new(),
                problems: Vec::new(),
            });
        }
        let newest = feed.since(0);
        assert_eq!(
            newest.len(),
            before,
            "one entry for the burst, the oldest pushed out"
        );
        assert_eq!(newest.last().unwrap().more, 49);
        assert_eq!(
            all[0].seq,
            (LIVE_SAMPLE + 1 + CAPACITY - CAPACITY + 1) as u64
        );
    }
}

//! The customer 360 read side: one profile with everything known about it, its timeline,
//! and search by identifier or name.

use std::collections::{BTreeMap, BTreeSet};

use prossimo_identity::{Identifier, IdentityConfig, ProfileId, ProfileState, kinds};
use serde::Serialize;
use serde_json::Value;

use prossimo_model::{Channel, OrderEventKind, OrderRecord, fold_orders};

use crate::events::EventLog;
use crate::ingest::load_states;
use crate::sql::{Conn, Dialect, Val, placeholders};
use crate::timeline::TimelineSource;
use crate::{Store, StoreError};

/// How a profile is addressed: its id, or any identifier as `kind:value`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProfileKey {
    Id(ProfileId),
    Identifier(Identifier),
}

impl ProfileKey {
    pub fn parse(raw: &str, identity: &IdentityConfig) -> Result<ProfileKey, String> {
        let raw = raw.trim();
        if let Ok(id) = raw.parse::<ProfileId>() {
            return Ok(ProfileKey::Id(id));
        }
        Identifier::parse_key(raw, identity).map(ProfileKey::Identifier).ok_or_else(|| {
            format!("{raw:?} is neither a profile id nor an identifier like user_id:42 or email:anna@example.it")
        })
    }
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct IdentifierInfo {
    pub kind: String,
    pub value: String,
    pub since: i64,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct LogRecord {
    pub kind: String,
    pub profile_id: ProfileId,
    pub other_profile_id: Option<ProfileId>,
    #[serde(rename = "messageId")]
    pub message_id: String,
    pub at: String,
    pub detail: String,
    pub logged_at: String,
}

/// The profile's orders, net of refunds and cancellations, in the reporting currency.
#[derive(Debug, Clone, Serialize, PartialEq, Default)]
pub struct Orders {
    /// Orders that count (not cancelled, not refunded in full).
    pub count: u64,
    /// Their value net of refunds.
    pub revenue: f64,
    pub refunded: f64,
    /// Orders cancelled or refunded in full.
    pub voided: u64,
    pub currency: String,
}

/// Everything known about one person.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Profile360 {
    pub id: ProfileId,
    pub name: Option<String>,
    pub traits: serde_json::Map<String, Value>,
    pub identifiers: Vec<IdentifierInfo>,
    pub groups: BTreeSet<String>,
    /// Profiles that were merged into this one.
    pub merged_profiles: Vec<ProfileId>,
    /// Merges, refused merges and ignored identifiers that concern this profile.
    pub identity_log: Vec<LogRecord>,
    pub first_seen: Option<String>,
    pub first_channel: Option<String>,
    pub last_seen: Option<String>,
    pub event_count: u64,
    pub counts_by_type: BTreeMap<String, u64>,
    pub counts_by_event: BTreeMap<String, u64>,
    pub counts_by_channel: BTreeMap<String, u64>,
    pub orders: Orders,
    /// Traits written by analyses (`rfm_segment`, `p_alive`, `clv_12m`, `cluster`, ...).
    pub computed: serde_json::Map<String, Value>,
}

/// Timeline filters; everything optional.
#[derive(Debug, Clone, Default)]
pub struct EventQuery {
    pub kind: Option<String>,
    pub event: Option<String>,
    pub channel: Option<String>,
    /// Inclusive lower bound, ms.
    pub since: Option<i64>,
    /// Exclusive upper bound, ms.
    pub until: Option<i64>,
    pub limit: usize,
    /// Opaque cursor from the previous page.
    pub cursor: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct EventPage {
    pub events: Vec<Value>,
    /// Pass as `cursor` to get the next (older) page; absent on the last page.
    pub next_cursor: Option<String>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ProfileSummary {
    pub id: ProfileId,
    pub name: Option<String>,
    pub email: Option<String>,
    pub user_id: Option<String>,
    pub last_seen: Option<String>,
    /// The identifier or name that matched the query.
    pub matched: String,
}

/// A page of search results.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct SearchPage {
    pub profiles: Vec<ProfileSummary>,
    /// More people match after this page.
    pub more: bool,
}

/// The deepest a search can be paged: past it, the words should be more precise.
pub const MAX_SEARCH_OFFSET: usize = 1_000;

/// The words of a search text, as both name indexes split names: runs of letters and
/// digits, folded like stored names (at most five; more would not narrow anything).
fn name_words(q: &str) -> Vec<String> {
    fold_name(q)
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_owned)
        .take(5)
        .collect()
}

/// A name as it is indexed for search: lower case, accents dropped ("Nerì" → "neri"), so
/// a name typed without its accents is found on either backend.
pub(crate) fn fold_name(name: &str) -> String {
    use unicode_normalization::UnicodeNormalization;
    name.nfd()
        .filter(|c| !unicode_normalization::char::is_combining_mark(*c))
        .collect::<String>()
        .to_lowercase()
}

fn iso(ms: i64) -> String {
    prossimo_model::format_millis(ms).unwrap_or_default()
}

/// The root and every profile merged into it.
pub(crate) fn members(conn: &mut dyn Conn, root: ProfileId) -> Result<Vec<ProfileId>, StoreError> {
    let mut ids = vec![root];
    for row in conn.query(
        "SELECT id FROM profiles WHERE merged_into = $1 ORDER BY id",
        &[Val::Int(root)],
    )? {
        if let Some(id) = row[0].int() {
            ids.push(id);
        }
    }
    Ok(ids)
}

pub(crate) fn resolve(
    conn: &mut dyn Conn,
    key: &ProfileKey,
) -> Result<Option<ProfileId>, StoreError> {
    let row = match key {
        ProfileKey::Id(id) => conn.query_one(
            "SELECT COALESCE(merged_into, id) FROM profiles WHERE id = $1",
            &[Val::Int(*id)],
        )?,
        ProfileKey::Identifier(i) => conn.query_one(
            "SELECT COALESCE(p.merged_into, i.profile_id) FROM identifiers i
             LEFT JOIN profiles p ON p.id = i.profile_id WHERE i.kind = $1 AND i.value = $2",
            &[i.kind.as_str().into(), i.value.as_str().into()],
        )?,
    };
    Ok(row.and_then(|r| r[0].int()))
}

type Counts = BTreeMap<String, u64>;

/// Entries by type, by event name and by channel: the stored events' and what `sources`
/// show on the timeline.
fn counts(
    conn: &mut dyn Conn,
    events: &dyn EventLog,
    ids: &[ProfileId],
    sources: &[&dyn TimelineSource],
) -> Result<(Counts, Counts, Counts), StoreError> {
    let mut entries = events.counts(conn, ids)?;
    // What features show on the timeline counts as what it shows.
    for source in sources {
        entries.extend(source.counts(conn, ids)?);
    }
    let (mut by_type, mut by_event, mut by_channel) =
        (BTreeMap::new(), BTreeMap::new(), BTreeMap::new());
    for (entry, n) in entries {
        *by_type.entry(entry.kind).or_insert(0) += n;
        if let Some(event) = entry.event {
            *by_event.entry(event).or_insert(0) += n;
        }
        *by_channel.entry(entry.channel).or_insert(0) += n;
    }
    Ok((by_type, by_event, by_channel))
}

impl Store {
    /// The root profile a key points at, following merges.
    pub fn resolve_profile(&self, key: &ProfileKey) -> Result<Option<ProfileId>, StoreError> {
        resolve(self.conn()?.conn(), key)
    }

    /// Everything the core knows about the profile `key` names, its counts including
    /// what `sources` show on its timeline.
    pub fn profile(
        &self,
        key: &ProfileKey,
        sources: &[&dyn TimelineSource],
    ) -> Result<Option<Profile360>, StoreError> {
        let mut pooled = self.conn()?;
        let conn = pooled.conn();
        let Some(root) = resolve(conn, key)? else {
            return Ok(None);
        };
        let state: ProfileState = load_states(conn, &BTreeSet::from([root]))?
            .pop()
            .ok_or_else(|| StoreError::NotFound(format!("profile {root}")))?;
        let ids = members(conn, root)?;

        let identifiers = conn
            .query(
                "SELECT kind, value, created_at FROM identifiers WHERE profile_id = $1 ORDER BY kind, value",
                &[Val::Int(root)],
            )?
            .into_iter()
            .filter_map(|r| {
                Some(IdentifierInfo {
                    kind: r[0].text()?.to_owned(),
                    value: r[1].text()?.to_owned(),
                    since: r[2].int()?,
                })
            })
            .collect();

        let in_list = placeholders(ids.len(), 1);
        let id_params: Vec<Val> = ids.iter().map(|&i| Val::Int(i)).collect();
        let log_sql = format!(
            "SELECT kind, profile_id, other_profile_id, message_id, at, detail, logged_at FROM identity_log
             WHERE profile_id IN ({in_list}) OR other_profile_id IN ({in_list}) ORDER BY id"
        );
        let identity_log = conn
            .query(&log_sql, &id_params)?
            .into_iter()
            .filter_map(|r| {
                Some(LogRecord {
                    kind: r[0].text()?.to_owned(),
                    profile_id: r[1].int()?,
                    other_profile_id: r[2].int(),
                    message_id: r[3].text()?.to_owned(),
                    at: iso(r[4].int()?),
                    detail: r[5].text()?.to_owned(),
                    logged_at: iso(r[6].int()?),
                })
            })
            .collect();

        let (counts_by_type, counts_by_event, counts_by_channel) =
            counts(conn, self.events.as_ref(), &ids, sources)?;
        let orders_sql = format!(
            "SELECT profile_id, order_id, kind, channel, ts, value FROM order_events WHERE profile_id IN ({in_list})"
        );
        let records = conn
            .query(&orders_sql, &id_params)?
            .iter()
            .map(|r| order_record(r))
            .collect::<Result<Vec<_>, _>>()?;
        let book = fold_orders(records);
        let orders = Orders {
            count: book.orders.len() as u64,
            revenue: book.orders.iter().map(|o| o.value).sum(),
            refunded: book.orders.iter().map(|o| o.refunded).sum(),
            voided: book.voided as u64,
            currency: self.money().reporting().to_owned(),
        };

        Ok(Some(Profile360 {
            id: root,
            name: state.display_name(),
            traits: state.trait_values(),
            identifiers,
            groups: state.groups.clone(),
            merged_profiles: ids[1..].to_vec(),
            identity_log,
            first_seen: state.first_seen.as_ref().map(|s| iso(s.at)),
            first_channel: state.first_seen.as_ref().map(|s| s.channel.to_string()),
            last_seen: state.last_seen.map(iso),
            event_count: counts_by_type.values().sum(),
            counts_by_type,
            counts_by_event,
            counts_by_channel,
            orders,
            computed: self.computed_traits(root)?,
        }))
    }

    /// Profiles whose user id, e-mail, phone, anonymous id, identifying trait or name starts
    /// with `q` (case-insensitive for names and e-mails). `kind:value` looks up any
    /// identifier exactly.
    pub fn search(&self, q: &str, limit: usize) -> Result<Vec<ProfileSummary>, StoreError> {
        Ok(self.search_page(q, 0, limit)?.profiles)
    }

    /// One page of [`Store::search`]: the `limit` people after the first `offset`, and
    /// whether more follow. An exact identifier comes first, then identifiers starting
    /// with the text, then people any of whose names' words start with each word of it
    /// ("rossi" and "ann ros" both find "Anna Rossi").
    pub fn search_page(
        &self,
        q: &str,
        offset: usize,
        limit: usize,
    ) -> Result<SearchPage, StoreError> {
        let q = q.trim();
        if q.is_empty() {
            return Ok(SearchPage::default());
        }
        let limit = limit.clamp(1, 100);
        let offset = offset.min(MAX_SEARCH_OFFSET);
        // Each source is read far enough to fill this page and see one more.
        let wanted = offset + limit + 1;
        let mut pooled = self.conn()?;
        let conn = pooled.conn();
        let mut hits: Vec<(ProfileId, String)> = Vec::new();
        if let Ok(ProfileKey::Identifier(id)) = ProfileKey::parse(q, &self.identity)
            && let Some(root) = resolve(conn, &ProfileKey::Identifier(id.clone()))?
        {
            hits.push((root, id.to_string()));
        }
        // Prefix ranges are primary-key scans on both backends: kind = k AND value in
        // [q, q + U+10FFFF), for the kinds a person would search by.
        let kinds = [
            kinds::USER_ID,
            kinds::EMAIL,
            kinds::PHONE,
            kinds::ANONYMOUS_ID,
        ]
        .into_iter()
        .map(str::to_owned)
        .chain(self.identity.trait_identifiers().iter().cloned());
        for kind in kinds {
            for prefix in BTreeSet::from([q.to_owned(), q.to_lowercase()]) {
                let upper = format!("{prefix}\u{10FFFF}");
                let rows = conn.query(
                    "SELECT COALESCE(p.merged_into, i.profile_id), i.value FROM identifiers i
                     LEFT JOIN profiles p ON p.id = i.profile_id
                     WHERE i.kind = $1 AND i.value >= $2 AND i.value < $3 ORDER BY i.value LIMIT $4",
                    &[kind.as_str().into(), prefix.as_str().into(), upper.as_str().into(), Val::Int(wanted as i64)],
                )?;
                for r in rows {
                    if let (Some(id), Some(value)) = (r[0].int(), r[1].text()) {
                        hits.push((id, format!("{kind}:{value}")));
                    }
                }
            }
        }
        let words = name_words(q);
        if !words.is_empty() {
            // In id order (the index's own order), so a page ends early however common
            // the words are.
            let (sql, query) = match conn.dialect() {
                Dialect::Sqlite => (
                    "SELECT p.id, p.name_lc FROM profile_names f JOIN profiles p ON p.id = f.rowid
                     WHERE profile_names MATCH $1 AND p.merged_into IS NULL LIMIT $2",
                    words
                        .iter()
                        .map(|w| format!("\"{w}\"*"))
                        .collect::<Vec<_>>()
                        .join(" "),
                ),
                Dialect::Postgres => (
                    "SELECT id, name_lc FROM profiles
                     WHERE to_tsvector('simple', name_lc) @@ to_tsquery('simple', $1)
                       AND merged_into IS NULL AND name_lc IS NOT NULL ORDER BY id LIMIT $2",
                    words
                        .iter()
                        .map(|w| format!("{w}:*"))
                        .collect::<Vec<_>>()
                        .join(" & "),
                ),
            };
            for r in conn.query(sql, &[query.as_str().into(), Val::Int(wanted as i64)])? {
                if let (Some(id), Some(name)) = (r[0].int(), r[1].text()) {
                    hits.push((id, format!("name:{name}")));
                }
            }
        }
        let mut seen = BTreeSet::new();
        hits.retain(|(id, _)| seen.insert(*id));
        let more = hits.len() > offset + limit;
        let hits: Vec<(ProfileId, String)> = hits.into_iter().skip(offset).take(limit).collect();

        let roots: BTreeSet<ProfileId> = hits.iter().map(|(id, _)| *id).collect();
        let states: BTreeMap<ProfileId, ProfileState> = load_states(conn, &roots)?
            .into_iter()
            .map(|s| (s.id, s))
            .collect();
        let mut out = Vec::with_capacity(hits.len());
        for (id, matched) in hits {
            let Some(state) = states.get(&id) else {
                continue;
            };
            out.push(ProfileSummary {
                id,
                name: state.display_name(),
                email: None,
                user_id: None,
                last_seen: state.last_seen.map(iso),
                matched,
            });
        }
        for summary in &mut out {
            summary.email = first_value(conn, summary.id, "email")?;
            summary.user_id = first_value(conn, summary.id, "user_id")?;
        }
        Ok(SearchPage {
            profiles: out,
            more,
        })
    }

    /// A profile's display name (from its traits), for lists of people.
    pub fn profile_name(&self, id: ProfileId) -> Result<Option<String>, StoreError> {
        let mut pooled = self.conn()?;
        Ok(load_states(pooled.conn(), &BTreeSet::from([id]))?
            .pop()
            .and_then(|s| s.display_name()))
    }

    /// Number of stored events (all profiles).
    pub fn event_count(&self) -> Result<u64, StoreError> {
        self.events.count(self.conn()?.conn())
    }

    /// How many times each of these message ids is stored for a source (0, or 1: never more).
    pub fn message_counts(
        &self,
        source_id: i64,
        ids: &[String],
    ) -> Result<BTreeMap<String, u64>, StoreError> {
        let mut out: BTreeMap<String, u64> = ids.iter().map(|i| (i.clone(), 0)).collect();
        let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
        for id in self.events.stored(self.conn()?.conn(), source_id, &ids)? {
            *out.entry(id).or_insert(0) += 1;
        }
        Ok(out)
    }

    /// Number of root (unmerged) profiles.
    pub fn profile_count(&self) -> Result<u64, StoreError> {
        Ok(self
            .conn()?
            .conn()
            .query_one(COUNT_ROOTS, &[])?
            .and_then(|r| r[0].int())
            .unwrap_or(0) as u64)
    }
}

/// Reads the `profiles_roots` index, not the table (migration V7).
const COUNT_ROOTS: &str = "SELECT COUNT(*) FROM profiles WHERE merged_into IS NULL";

fn first_value(
    conn: &mut dyn Conn,
    profile: ProfileId,
    kind: &str,
) -> Result<Option<String>, StoreError> {
    Ok(conn
        .query_one(
            "SELECT value FROM identifiers WHERE profile_id = $1 AND kind = $2 ORDER BY created_at, value LIMIT 1",
            &[Val::Int(profile), kind.into()],
        )?
        .and_then(|r| r.into_iter().next()?.into_text()))
}

/// A row of `profile_id, order_id, kind, channel, ts, value` from `order_events`.
pub(crate) fn order_record(r: &[Val]) -> Result<OrderRecord, StoreError> {
    let kind = r[2].text().and_then(OrderEventKind::parse);
    let channel = r[3].text().and_then(|c| c.parse::<Channel>().ok());
    match (r[0].int(), r[1].text(), kind, channel, r[4].int()) {
        (Some(profile_id), Some(order_id), Some(kind), Some(channel), Some(ts)) => {
            Ok(OrderRecord {
                profile_id,
                order_id: order_id.to_owned(),
                kind,
                channel,
                ts,
                value: r[5].real(),
            })
        }
        _ => Err(StoreError::Corrupt(format!("order event row {r:?}"))),
    }
}

#[cfg(test)]
mod tests {
    use crate::testsuite::Fixture;

    /// The Customers page counts roots on every search: the count must read the small
    /// index of roots, not every profile's row.
    #[test]
    fn counting_root_profiles_reads_their_index_only() {
        let fixture = Fixture::sqlite();
        let mut pooled = fixture.store.conn().unwrap();
        let plan: Vec<String> = pooled
            .conn()
            .query(&format!("EXPLAIN QUERY PLAN {}", super::COUNT_ROOTS), &[])
            .unwrap()
            .into_iter()
            .filter_map(|row| row.last().and_then(|v| v.text()).map(str::to_owned))
            .collect();
        assert_eq!(plan, ["SCAN profiles USING INDEX profiles_roots"]);
    }
}

//! Suppression lists: addresses and numbers that get nothing on a channel, transactional
//! or not, whoever they belong to now (a list imported from the old tool, a role address,
//! a number that bounced for good). Kept by address: a customer's new profile with a
//! bounced address is spared too. Hard bounces and complaints add to it.

use std::collections::HashSet;

use prossimo_store::sql::{Conn, Row, Val};
use prossimo_store::{Store, StoreError, WriteDomain};
use serde::Serialize;

use crate::stored::SCHEMA;
use crate::template::Channel;

/// The most entries one request may add.
pub const MAX_SUPPRESSIONS_PER_CALL: usize = 10_000;

/// Where a send to a person goes on `channel`, as the suppression list keys it: their
/// `email` trait lowercased, their `phone` trait in E.164 (national numbers read in
/// `default_country`); none for a webhook (it goes to a destination) or when they have
/// none.
pub fn address_of(
    channel: Channel,
    traits: &serde_json::Map<String, serde_json::Value>,
    default_country: Option<phonenumber::country::Id>,
) -> Option<String> {
    let text = |key: &str| traits.get(key).and_then(serde_json::Value::as_str);
    match channel {
        Channel::Email => text("email").map(|a| suppression_key(channel, a)),
        Channel::Sms => crate::sms::normalize_phone(text("phone")?, default_country).ok(),
        Channel::Webhook => None,
    }
}

/// An address as the list keys it: an e-mail lowercased, a number in E.164 as given.
pub fn suppression_key(channel: Channel, address: &str) -> String {
    match channel {
        Channel::Email => address.trim().to_lowercase(),
        Channel::Sms | Channel::Webhook => address.trim().to_owned(),
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Suppression {
    pub channel: Channel,
    pub address: String,
    /// `manual`, `import`, `hard_bounce`, `complaint`, …
    pub reason: String,
    pub detail: Option<String>,
    pub created_at: i64,
}

fn suppression_from(row: &Row) -> Result<Suppression, StoreError> {
    let corrupt = || StoreError::Corrupt("suppression row".into());
    Ok(Suppression {
        channel: row[0].text().and_then(Channel::parse).ok_or_else(corrupt)?,
        address: row[1].text().ok_or_else(corrupt)?.to_owned(),
        reason: row[2].text().ok_or_else(corrupt)?.to_owned(),
        detail: row[3].text().map(str::to_owned),
        created_at: row[4].int().ok_or_else(corrupt)?,
    })
}

/// Adds `address` to `channel`'s list inside the caller's transaction; an address already
/// there keeps its first reason. True when it was new.
pub fn suppress(
    conn: &mut dyn Conn,
    channel: Channel,
    address: &str,
    reason: &str,
    detail: Option<&str>,
    now: i64,
) -> Result<bool, StoreError> {
    let key = suppression_key(channel, address);
    if key.is_empty() {
        return Ok(false);
    }
    let added = conn.execute(
        "INSERT INTO message_suppressions (channel, address, reason, detail, created_at)
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (channel, address) DO NOTHING",
        &[
            Val::from(channel.as_str()),
            Val::from(key.as_str()),
            Val::from(reason),
            Val::from(detail),
            Val::Int(now),
        ],
    )?;
    Ok(added > 0)
}

/// A store's suppression lists.
pub struct Suppressions<'a> {
    store: &'a Store,
}

impl<'a> Suppressions<'a> {
    pub fn of(store: &'a Store) -> Result<Suppressions<'a>, StoreError> {
        store.migrate(&SCHEMA)?;
        Ok(Suppressions { store })
    }

    /// Adds every `(channel, address)`; how many were new.
    pub fn add(
        &self,
        entries: &[(Channel, String)],
        reason: &str,
        detail: Option<&str>,
    ) -> Result<usize, StoreError> {
        let now = self.store.now_ms();
        self.store
            .write_transaction(WriteDomain::Decisions, |conn| {
                let mut added = 0;
                for (channel, address) in entries {
                    added += usize::from(suppress(conn, *channel, address, reason, detail, now)?);
                }
                Ok(added)
            })
    }

    /// Takes `address` off `channel`'s list; false when it was not there.
    pub fn remove(&self, channel: Channel, address: &str) -> Result<bool, StoreError> {
        let key = suppression_key(channel, address);
        self.store
            .write_transaction(WriteDomain::Decisions, |conn| {
                conn.execute(
                    "DELETE FROM message_suppressions WHERE channel = $1 AND address = $2",
                    &[Val::from(channel.as_str()), Val::from(key.as_str())],
                )
            })
            .map(|n| n > 0)
    }

    /// A page of a channel's list (or every channel's), by address after `after`.
    pub fn list(
        &self,
        channel: Option<Channel>,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Suppression>, StoreError> {
        self.store
            .read(|conn| {
                conn.query(
                    "SELECT channel, address, reason, detail, created_at FROM message_suppressions
                     WHERE ($1 = '' OR channel = $1) AND address > $2
                     ORDER BY address, channel LIMIT $3",
                    &[
                        Val::from(channel.map_or("", Channel::as_str)),
                        Val::from(after.unwrap_or("")),
                        Val::Int(i64::try_from(limit).unwrap_or(i64::MAX)),
                    ],
                )
            })?
            .iter()
            .map(suppression_from)
            .collect()
    }

    /// Which of `wanted` are on their channel's list.
    pub fn suppressed(
        &self,
        wanted: &[(Channel, String)],
    ) -> Result<HashSet<(Channel, String)>, StoreError> {
        let mut found = HashSet::new();
        for chunk in wanted.chunks(200) {
            let mut sql = String::from(
                "SELECT channel, address FROM message_suppressions WHERE (channel, address) IN (",
            );
            let mut params = Vec::with_capacity(chunk.len() * 2);
            for (i, (channel, address)) in chunk.iter().enumerate() {
                if i > 0 {
                    sql.push_str(", ");
                }
                sql.push_str(&format!("(${}, ${})", 2 * i + 1, 2 * i + 2));
                params.push(Val::from(channel.as_str()));
                params.push(Val::Text(suppression_key(*channel, address)));
            }
            sql.push(')');
            for row in self.store.read(|conn| conn.query(&sql, &params))? {
                if let (Some(channel), Some(address)) =
                    (row[0].text().and_then(Channel::parse), row[1].text())
                {
                    found.insert((channel, address.to_owned()));
                }
            }
        }
        Ok(found)
    }
}

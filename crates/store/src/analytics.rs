//! What analyses read from the store (orders, touchpoints, each resolved to its root
//! profile) and what they write back onto profiles (computed traits). Reads stream rows;
//! writes go in bounded transactions so that ingestion waits at most one chunk for the
//! write lock.

use prossimo_identity::ProfileId;
use prossimo_model::{Channel, NetOrder, OrderBook, fold_orders};
use serde_json::{Map, Value};

use crate::read::order_record;
use crate::sql::{Conn, Val};
use crate::{Store, StoreError, WriteDomain};

/// Computed-trait rows per write transaction.
const TRAIT_ROWS_PER_TRANSACTION: usize = 20_000;

/// One touchpoint resolved to its root profile.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Touchpoint {
    pub profile_id: ProfileId,
    pub ts: i64,
    pub channel: Channel,
    /// An `Order Completed|Refunded|Cancelled` event (analyses count its net order instead).
    pub is_order_event: bool,
}

impl Store {
    /// Every order net of refunds and cancellations, attributed to its root profile.
    pub fn order_book(&self) -> Result<OrderBook, StoreError> {
        let mut pooled = self.conn()?;
        let mut records = Vec::new();
        pooled.conn().for_each_row(
            "SELECT COALESCE(p.merged_into, o.profile_id), o.order_id, o.kind, o.channel, o.ts, o.value
             FROM order_events o JOIN profiles p ON p.id = o.profile_id",
            &[],
            &mut |row| {
                records.push(order_record(&row)?);
                Ok(())
            },
        )?;
        Ok(fold_orders(records))
    }

    /// The net orders of a profile and of every profile merged into it, attributed to the
    /// root. (A refund recorded on another person's profile is not seen here; the full
    /// order book of [`Store::order_book`] sees it.)
    pub fn orders_of(&self, profile: ProfileId) -> Result<Vec<NetOrder>, StoreError> {
        let mut pooled = self.conn()?;
        let conn = pooled.conn();
        let Some(root) = conn
            .query_one(
                "SELECT COALESCE(merged_into, id) FROM profiles WHERE id = $1",
                &[Val::Int(profile)],
            )?
            .and_then(|r| r[0].int())
        else {
            return Ok(Vec::new());
        };
        let mut records = Vec::new();
        conn.for_each_row(
            "SELECT $1, o.order_id, o.kind, o.channel, o.ts, o.value
             FROM order_events o JOIN profiles p ON p.id = o.profile_id
             WHERE p.id = $1 OR p.merged_into = $1",
            &[Val::Int(root)],
            &mut |row| {
                records.push(order_record(&row)?);
                Ok(())
            },
        )?;
        Ok(fold_orders(records).orders)
    }

    /// Every stored event as (root profile, time, channel), streamed into `each`.
    pub fn for_each_touchpoint(&self, each: &mut dyn FnMut(Touchpoint)) -> Result<(), StoreError> {
        self.events.touchpoints(self.conn()?.conn(), each)
    }

    /// Replaces the named computed traits of each profile, keeping its other computed
    /// traits (an RFM run does not erase the cluster a clustering run wrote).
    pub fn write_computed_traits(
        &self,
        rows: &[(ProfileId, Map<String, Value>)],
    ) -> Result<(), StoreError> {
        let now = self.now_ms();
        for chunk in rows.chunks(TRAIT_ROWS_PER_TRANSACTION) {
            self.write_transaction(WriteDomain::Customers, |conn| {
                write_trait_chunk(conn, chunk, now)
            })?;
        }
        Ok(())
    }

    /// The computed traits of a profile (of its root when it was merged).
    pub fn computed_traits(&self, profile: ProfileId) -> Result<Map<String, Value>, StoreError> {
        let mut pooled = self.conn()?;
        let row = pooled.conn().query_one(
            "SELECT traits FROM computed_traits WHERE profile_id = $1",
            &[Val::Int(profile)],
        )?;
        match row.as_ref().and_then(|r| r[0].text()) {
            Some(text) => Ok(serde_json::from_str(text)?),
            None => Ok(Map::new()),
        }
    }
}

fn write_trait_chunk(
    conn: &mut dyn Conn,
    chunk: &[(ProfileId, Map<String, Value>)],
    now: i64,
) -> Result<(), StoreError> {
    for (profile, traits) in chunk {
        let existing = conn.query_one(
            "SELECT traits FROM computed_traits WHERE profile_id = $1",
            &[Val::Int(*profile)],
        )?;
        let mut merged: Map<String, Value> = match existing.as_ref().and_then(|r| r[0].text()) {
            Some(text) => serde_json::from_str(text)?,
            None => Map::new(),
        };
        merged.extend(traits.iter().map(|(k, v)| (k.clone(), v.clone())));
        conn.execute(
            "INSERT INTO computed_traits (profile_id, traits, computed_at) VALUES ($1, $2, $3)
             ON CONFLICT (profile_id) DO UPDATE SET traits = excluded.traits, computed_at = excluded.computed_at",
            &[
                Val::Int(*profile),
                Val::Text(serde_json::to_string(&merged)?),
                Val::Int(now),
            ],
        )?;
    }
    Ok(())
}

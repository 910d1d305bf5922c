//! The analyses' stored reports: the latest result of each analysis under its name
//! (`rfm`, `clv`, …, and [`crate::LAST_RUN`]), with the table and migrations of their own.

use prossimo_store::sql::Val;
use prossimo_store::{Store, StoreError, WriteDomain};
use serde_json::Value;

prossimo_store::feature_schema! {
    /// The stored reports; in the customer file on SQLite, beside what they were
    /// computed from.
    pub const SCHEMA = ("reports", WriteDomain::Customers);
}

/// The latest stored result of an analysis.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredAnalysis {
    pub result: Value,
    /// Unix milliseconds.
    pub computed_at: i64,
}

/// The stored reports of a store.
pub struct Reports<'a> {
    store: &'a Store,
}

impl<'a> Reports<'a> {
    /// The reports of `store`, their table brought up to date first.
    pub fn of(store: &'a Store) -> Result<Reports<'a>, StoreError> {
        store.migrate(&SCHEMA)?;
        Ok(Reports { store })
    }

    /// Replaces the report `name`, stamped with the store's clock.
    pub fn save(&self, name: &str, result: &Value) -> Result<(), StoreError> {
        let result = serde_json::to_string(result)?;
        self.store
            .write_transaction(WriteDomain::Customers, |conn| {
                conn.execute(
                    "INSERT INTO analyses (name, result, computed_at) VALUES ($1, $2, $3)
                     ON CONFLICT (name) DO UPDATE SET result = excluded.result, computed_at = excluded.computed_at",
                    &[
                        Val::from(name),
                        Val::Text(result.clone()),
                        Val::Int(self.store.now_ms()),
                    ],
                )?;
                Ok(())
            })
    }

    pub fn get(&self, name: &str) -> Result<Option<StoredAnalysis>, StoreError> {
        let row = self.store.read(|conn| {
            conn.query_one(
                "SELECT result, computed_at FROM analyses WHERE name = $1",
                &[Val::from(name)],
            )
        })?;
        let Some(row) = row else { return Ok(None) };
        match (row[0].text(), row[1].int()) {
            (Some(text), Some(computed_at)) => Ok(Some(StoredAnalysis {
                result: serde_json::from_str(text)?,
                computed_at,
            })),
            _ => Err(StoreError::Corrupt(format!("analysis {name}"))),
        }
    }
}

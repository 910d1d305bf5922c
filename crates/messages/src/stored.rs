//! Messages in the store (this crate's tables, created by `migrations/`): the messages
//! marketers write, by slug. A message is checked ([`Template::compile`]) before it is
//! saved, so a saved message always compiles.

use prossimo_segments::{Language, SlugKind, check_slug_of};
use prossimo_store::sql::{Conn, Row, Val};
use prossimo_store::{
    MAX_DESCRIPTION_BYTES, MAX_NAME_BYTES, Store, StoreError, WriteDomain, bounded,
};
use serde::Serialize;

use crate::template::{Content, Problem, Template};

prossimo_store::feature_schema! {
    /// Messages and the outbox of sends; in the decisions file on SQLite.
    pub const SCHEMA = ("messages", WriteDomain::Decisions);
}

/// The longest message body, in bytes (a rich e-mail's MJML is a few tens of KiB).
pub const MAX_BODY_BYTES: usize = 256 * 1024;

/// A message as a person saves it.
#[derive(Debug, Clone, PartialEq)]
pub struct MessageInput {
    pub slug: String,
    pub name: String,
    pub description: String,
    pub content: Content,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MessageRecord {
    pub id: i64,
    pub slug: String,
    pub name: String,
    pub description: String,
    pub content: Content,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum MessageError {
    /// The message does not compile: every problem, with its field.
    #[error("the message has {} problem(s): {}", .0.len(), .0.iter().map(|p| format!("{}: {}", p.field, p.reason)).collect::<Vec<_>>().join("; "))]
    Problems(Vec<Problem>),
    #[error(transparent)]
    Store(#[from] StoreError),
}

const COLUMNS: &str = "id, slug, name, description, content, created_at, updated_at";

fn message_from(row: &Row) -> Result<MessageRecord, StoreError> {
    let corrupt = || StoreError::Corrupt("message row".into());
    let text = |i: usize| row[i].text().map(str::to_owned).ok_or_else(corrupt);
    Ok(MessageRecord {
        id: row[0].int().ok_or_else(corrupt)?,
        slug: text(1)?,
        name: text(2)?,
        description: text(3)?,
        content: serde_json::from_str(&text(4)?)?,
        created_at: row[5].int().ok_or_else(corrupt)?,
        updated_at: row[6].int().ok_or_else(corrupt)?,
    })
}

fn message_by_slug(conn: &mut dyn Conn, slug: &str) -> Result<Option<MessageRecord>, StoreError> {
    conn.query_one(
        &format!("SELECT {COLUMNS} FROM message_templates WHERE slug = $1"),
        &[Val::from(slug)],
    )?
    .map(|row| message_from(&row))
    .transpose()
}

/// Checks what a person typed: the slug, the lengths, and that the content compiles.
fn check_input(input: &MessageInput) -> Result<String, MessageError> {
    check_slug_of(SlugKind::MESSAGE, &input.slug)
        .map_err(|e| StoreError::Invalid(e.get(Language::English).to_owned()))?;
    bounded("name", &input.name, MAX_NAME_BYTES)?;
    if input.name.trim().is_empty() {
        return Err(StoreError::Invalid("name: a message needs a name".into()).into());
    }
    bounded("description", &input.description, MAX_DESCRIPTION_BYTES)?;
    bounded("body", &input.content.body, MAX_BODY_BYTES)?;
    Template::compile(&input.content).map_err(MessageError::Problems)?;
    Ok(serde_json::to_string(&input.content).map_err(StoreError::from)?)
}

/// The messages of a store.
pub struct Messages<'a> {
    store: &'a Store,
}

impl<'a> Messages<'a> {
    /// The messages of `store`, their tables brought up to date first.
    pub fn of(store: &'a Store) -> Result<Messages<'a>, StoreError> {
        store.migrate(&SCHEMA)?;
        Ok(Messages { store })
    }

    pub fn list(&self) -> Result<Vec<MessageRecord>, StoreError> {
        self.store
            .read(|conn| {
                conn.query(
                    &format!("SELECT {COLUMNS} FROM message_templates ORDER BY slug"),
                    &[],
                )
            })?
            .iter()
            .map(message_from)
            .collect()
    }

    pub fn get(&self, slug: &str) -> Result<Option<MessageRecord>, StoreError> {
        self.store.read(|conn| message_by_slug(conn, slug))
    }

    /// Saves a new message; a conflict when the slug is taken.
    pub fn create(&self, input: &MessageInput) -> Result<MessageRecord, MessageError> {
        let content = check_input(input)?;
        let now = self.store.now_ms();
        Ok(self.store.write_transaction(WriteDomain::Decisions, |conn| {
            if message_by_slug(conn, &input.slug)?.is_some() {
                return Err(StoreError::Conflict(format!(
                    "a message with slug {:?} already exists",
                    input.slug
                )));
            }
            conn.execute(
                "INSERT INTO message_templates (slug, name, description, channel, content, created_at, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $6)",
                &[
                    Val::from(input.slug.as_str()),
                    Val::from(input.name.as_str()),
                    Val::from(input.description.as_str()),
                    Val::from(input.content.channel.as_str()),
                    Val::Text(content),
                    Val::Int(now),
                ],
            )?;
            message_by_slug(conn, &input.slug)?
                .ok_or_else(|| StoreError::NotFound(format!("message {:?}", input.slug)))
        })?)
    }

    /// Replaces a message's name, description and content. Sends owed already render the
    /// message as it is when they go.
    pub fn update(&self, input: &MessageInput) -> Result<MessageRecord, MessageError> {
        let content = check_input(input)?;
        let now = self.store.now_ms();
        Ok(self.store.write_transaction(WriteDomain::Decisions, |conn| {
            let changed = conn.execute(
                "UPDATE message_templates SET name = $1, description = $2, channel = $3, content = $4, updated_at = $5 WHERE slug = $6",
                &[
                    Val::from(input.name.as_str()),
                    Val::from(input.description.as_str()),
                    Val::from(input.content.channel.as_str()),
                    Val::Text(content),
                    Val::Int(now),
                    Val::from(input.slug.as_str()),
                ],
            )?;
            if changed == 0 {
                return Err(StoreError::NotFound(format!("message {:?}", input.slug)));
            }
            message_by_slug(conn, &input.slug)?
                .ok_or_else(|| StoreError::NotFound(format!("message {:?}", input.slug)))
        })?)
    }

    /// Deletes a message; whether it existed. Sends still owed for it are then skipped
    /// (`message_missing`).
    pub fn delete(&self, slug: &str) -> Result<bool, StoreError> {
        self.store
            .write_transaction(WriteDomain::Decisions, |conn| {
                Ok(conn.execute(
                    "DELETE FROM message_templates WHERE slug = $1",
                    &[Val::from(slug)],
                )? > 0)
            })
    }
}

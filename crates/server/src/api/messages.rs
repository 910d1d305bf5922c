//! Messages over HTTP: the e-mails and SMS journeys send (Liquid subject and body),
//! checked when saved, previewed for a chosen customer, and test-sent to one. Behind an
//! admin token.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use prossimo_bus::{Definitions, Happened};
use prossimo_messages::{
    Consents, Content, MessageError, MessageInput, MessageRecord, Messages, NewSend, Origin,
    Outbox, Rendered, Template, owe, render_context,
};
use prossimo_store::{ProfileKey, WriteDomain};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;
use utoipa_axum::routes;

use crate::api::Area;
use crate::api::doc::ErrorBody;
use crate::api::segments::{json_body, saved_slug};
use crate::extract::Admin;
use crate::{ApiError, AppState};

impl From<MessageError> for ApiError {
    fn from(e: MessageError) -> ApiError {
        match e {
            MessageError::Problems(problems) => ApiError::Message(problems),
            MessageError::Store(e) => e.into(),
        }
    }
}

/// A message: its channel and content. Times in milliseconds since the epoch.
#[derive(Serialize, ToSchema)]
pub struct Message {
    id: i64,
    slug: String,
    name: String,
    description: String,
    /// email, sms or webhook.
    channel: String,
    /// E-mail only (Liquid).
    subject: Option<String>,
    /// Liquid over `profile`, `computed` and `event` (docs/messages.md).
    body: String,
    /// mjml, html or text (e-mail).
    format: String,
    /// Webhook only: the destination (of kind `messages`) that receives it.
    #[serde(skip_serializing_if = "Option::is_none")]
    destination: Option<String>,
    created_at: i64,
    updated_at: i64,
}

impl From<MessageRecord> for Message {
    fn from(r: MessageRecord) -> Message {
        let format = serde_json::to_value(r.content.format)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        Message {
            id: r.id,
            slug: r.slug,
            name: r.name,
            description: r.description,
            channel: r.content.channel.as_str().to_owned(),
            subject: r.content.subject,
            body: r.content.body,
            format,
            destination: r.content.destination,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct MessageList {
    messages: Vec<Message>,
}

/// A message as saved: `slug` (on create; on update it must match the path's, or be left
/// out), `name` (the slug when absent), `description`, and its content.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MessageBody {
    slug: Option<String>,
    name: Option<String>,
    #[serde(default)]
    description: String,
    /// email, sms or webhook.
    #[schema(value_type = String)]
    channel: prossimo_messages::Channel,
    subject: Option<String>,
    body: String,
    /// mjml, html (the default) or text.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    format: prossimo_messages::Format,
    /// Webhook only: the destination (of kind `messages`) that receives it.
    destination: Option<String>,
}

/// Every message.
#[utoipa::path(get, path = "/v1/messages", tag = "messages", security(("adminToken" = [])),
    responses((status = 200, description = "The messages", body = MessageList)))]
pub async fn list(
    State(state): State<AppState>,
    _admin: Admin,
) -> Result<Json<MessageList>, ApiError> {
    let store = state.store.clone();
    let all = tokio::task::spawn_blocking(move || Messages::of(&store)?.list()).await??;
    Ok(Json(MessageList {
        messages: all.into_iter().map(Message::from).collect(),
    }))
}

async fn save(
    state: AppState,
    body: Bytes,
    existing: Option<String>,
) -> Result<(StatusCode, Json<Message>), ApiError> {
    let body: MessageBody = json_body(&body)?;
    let slug = saved_slug(existing.as_deref(), body.slug, "message")?;
    let status = if existing.is_some() {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    let input = MessageInput {
        name: body
            .name
            .filter(|n| !n.trim().is_empty())
            .unwrap_or_else(|| slug.clone()),
        slug,
        description: body.description,
        content: Content {
            channel: body.channel,
            subject: body.subject,
            body: body.body,
            format: body.format,
            destination: body.destination,
        },
    };
    let store = state.store.clone();
    let record = tokio::task::spawn_blocking(move || {
        let messages = Messages::of(&store)?;
        if existing.is_some() {
            messages.update(&input)
        } else {
            messages.create(&input)
        }
    })
    .await??;
    state
        .bus
        .publish(Happened::DefinitionsChanged(Definitions::Messages));
    Ok((status, Json(record.into())))
}

/// Saves a new message, checked whole (Liquid, MJML).
#[utoipa::path(post, path = "/v1/messages", tag = "messages", security(("adminToken" = [])),
    request_body = MessageBody,
    responses(
        (status = 201, description = "Saved", body = Message),
        (status = 400, description = "Every problem (code invalid_definition, details [{field, reason, line, column}]), a bad slug, a field too long", body = ErrorBody),
        (status = 409, description = "The slug is taken", body = ErrorBody),
    ))]
pub async fn create(
    State(state): State<AppState>,
    _admin: Admin,
    body: Bytes,
) -> Result<(StatusCode, Json<Message>), ApiError> {
    save(state, body, None).await
}

/// Replaces a message; sends still owed render it as it is when they go.
#[utoipa::path(put, path = "/v1/messages/{slug}", tag = "messages", security(("adminToken" = [])),
    params(("slug" = String, Path)),
    request_body = MessageBody,
    responses(
        (status = 200, description = "Saved", body = Message),
        (status = 400, description = "Every problem, or a slug other than the path's", body = ErrorBody),
        (status = 404, description = "No such message", body = ErrorBody),
    ))]
pub async fn update(
    State(state): State<AppState>,
    _admin: Admin,
    Path(slug): Path<String>,
    body: Bytes,
) -> Result<(StatusCode, Json<Message>), ApiError> {
    save(state, body, Some(slug)).await
}

/// One message.
#[utoipa::path(get, path = "/v1/messages/{slug}", tag = "messages", security(("adminToken" = [])),
    params(("slug" = String, Path)),
    responses(
        (status = 200, description = "The message", body = Message),
        (status = 404, description = "No such message", body = ErrorBody),
    ))]
pub async fn get_one(
    State(state): State<AppState>,
    _admin: Admin,
    Path(slug): Path<String>,
) -> Result<Json<Message>, ApiError> {
    let store = state.store.clone();
    let record = tokio::task::spawn_blocking(move || {
        Messages::of(&store)?
            .get(&slug)?
            .ok_or_else(|| ApiError::NotFound(format!("no message {slug:?}")))
    })
    .await??;
    Ok(Json(record.into()))
}

/// Deletes a message; sends still owed for it are skipped (`message_missing`).
#[utoipa::path(delete, path = "/v1/messages/{slug}", tag = "messages", security(("adminToken" = [])),
    params(("slug" = String, Path)),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such message", body = ErrorBody),
    ))]
pub async fn delete(
    State(state): State<AppState>,
    _admin: Admin,
    Path(slug): Path<String>,
) -> Result<StatusCode, ApiError> {
    let store = state.store.clone();
    let missing = slug.clone();
    let deleted =
        tokio::task::spawn_blocking(move || Messages::of(&store)?.delete(&slug)).await??;
    if !deleted {
        return Err(ApiError::NotFound(format!("no message {missing:?}")));
    }
    state
        .bus
        .publish(Happened::DefinitionsChanged(Definitions::Messages));
    Ok(StatusCode::NO_CONTENT)
}

/// Whom to render or send a message for: a profile's key (`42`, `user_id:anna`,
/// `email:anna@example.it`), and for a preview what triggered it (`event`).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ForProfile {
    profile: String,
    /// What `{{ event.… }}` reads (an event's `properties`, `event`, …).
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    event: serde_json::Value,
}

/// A message rendered for one customer.
#[derive(Serialize, ToSchema)]
pub struct Preview {
    subject: Option<String>,
    html: Option<String>,
    text: String,
}

impl From<Rendered> for Preview {
    fn from(r: Rendered) -> Preview {
        Preview {
            subject: r.subject,
            html: r.html,
            text: r.text,
        }
    }
}

fn profile_of(state: &AppState, raw: &str) -> Result<i64, ApiError> {
    let key = ProfileKey::parse(raw, state.store.identity()).map_err(|reason| ApiError::Field {
        field: "profile",
        reason,
    })?;
    let id = state
        .store
        .resolve_profile(&key)?
        .ok_or_else(|| ApiError::NotFound(format!("no customer {raw:?}")))?;
    Ok(state.store.root_of(id)?)
}

/// Renders a message for a customer, as it would go to them now.
#[utoipa::path(post, path = "/v1/messages/{slug}/preview", tag = "messages", security(("adminToken" = [])),
    params(("slug" = String, Path)),
    request_body = ForProfile,
    responses(
        (status = 200, description = "The message as they would get it", body = Preview),
        (status = 400, description = "Not a profile key, or the message does not render for them (code invalid_definition)", body = ErrorBody),
        (status = 404, description = "No such message or customer", body = ErrorBody),
    ))]
pub async fn preview(
    State(state): State<AppState>,
    _admin: Admin,
    Path(slug): Path<String>,
    body: Bytes,
) -> Result<Json<Preview>, ApiError> {
    let body: ForProfile = json_body(&body)?;
    let rendered = tokio::task::spawn_blocking(move || {
        let record = Messages::of(&state.store)?
            .get(&slug)?
            .ok_or_else(|| ApiError::NotFound(format!("no message {slug:?}")))?;
        let profile = profile_of(&state, &body.profile)?;
        let facts = state
            .store
            .profile_facts(&[profile])?
            .pop()
            .ok_or_else(|| ApiError::NotFound(format!("no customer {:?}", body.profile)))?;
        let template = Template::compile(&record.content).map_err(ApiError::Message)?;
        template
            .render(&render_context(&facts, &json!({ "event": body.event })))
            .map_err(|problem| ApiError::Message(vec![problem]))
    })
    .await??;
    Ok(Json(rendered.into()))
}

/// A test send, owed at once.
#[derive(Serialize, ToSchema)]
pub struct TestSend {
    /// Its idempotency key: `GET` the customer's sends to follow it.
    send: String,
}

/// Sends a message to a customer now, as a test (it goes through the same outbox and
/// channels as a journey's, and shows on their timeline).
#[utoipa::path(post, path = "/v1/messages/{slug}/test", tag = "messages", security(("adminToken" = [])),
    params(("slug" = String, Path)),
    request_body = ForProfile,
    responses(
        (status = 202, description = "Owed; the sender hands it over at once", body = TestSend),
        (status = 400, description = "Not a profile key", body = ErrorBody),
        (status = 404, description = "No such message or customer", body = ErrorBody),
    ))]
pub async fn test_send(
    State(state): State<AppState>,
    _admin: Admin,
    Path(slug): Path<String>,
    body: Bytes,
) -> Result<(StatusCode, Json<TestSend>), ApiError> {
    let body: ForProfile = json_body(&body)?;
    let bus = state.bus.clone();
    let key = tokio::task::spawn_blocking(move || {
        let record = Messages::of(&state.store)?
            .get(&slug)?
            .ok_or_else(|| ApiError::NotFound(format!("no message {slug:?}")))?;
        let profile = profile_of(&state, &body.profile)?;
        Outbox::of(&state.store)?;
        let now = state.store.now_ms();
        let key = format!("test/{}/{profile}/{now}", record.slug);
        let send = NewSend {
            idempotency_key: key.clone(),
            profile_id: profile,
            origin: Origin::Test,
            channel: record.content.channel,
            template: record.slug,
            topic: None,
            transactional: true,
            in_quiet_hours: prossimo_messages::InQuietHours::Wait,
            context: json!({ "event": body.event }),
        };
        state
            .store
            .write_transaction(WriteDomain::Decisions, |conn| owe(conn, &send, now))?;
        Ok::<_, ApiError>(key)
    })
    .await??;
    bus.publish(Happened::MessagesOwed);
    Ok((StatusCode::ACCEPTED, Json(TestSend { send: key })))
}

/// A send to the customer and what became of it: the audit trail of "why did (or didn't)
/// they get this message".
#[derive(Serialize, ToSchema)]
pub struct SendItem {
    /// Its idempotency key (a journey's instance and step).
    send: String,
    /// The message's slug.
    message: String,
    channel: String,
    topic: Option<String>,
    transactional: bool,
    /// owed, sending, sent, skipped, failed or uncertain.
    status: String,
    /// Why it was skipped or failed (`unsubscribed`, `no_address`, `refused`, …).
    reason: Option<String>,
    detail: Option<String>,
    attempts: u32,
    recipient: Option<String>,
    message_id: Option<String>,
    /// The journey and step that owed it, if any.
    journey_id: Option<i64>,
    step: Option<String>,
    created_at: i64,
    updated_at: i64,
}

/// A customer's consent for a channel and topic, or a change of it.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct Consent {
    /// email, sms or webhook.
    channel: String,
    /// A subscription topic (`offers`, `newsletter`), or `*` for every topic.
    topic: String,
    /// opted_in or opted_out.
    state: String,
    /// Who or what set it (`api`, `unsubscribe_link`, `one_click`, `console`, …).
    source: String,
    detail: Option<String>,
    at: i64,
}

impl From<prossimo_messages::ConsentRecord> for Consent {
    fn from(r: prossimo_messages::ConsentRecord) -> Consent {
        Consent {
            channel: r.channel.as_str().to_owned(),
            topic: r.topic,
            state: r.state.as_str().to_owned(),
            source: r.source,
            detail: r.detail,
            at: r.at,
        }
    }
}

/// A customer's messages and consent.
#[derive(Serialize, ToSchema)]
pub struct CustomerMessages {
    /// Newest first.
    sends: Vec<SendItem>,
    /// As it stands, by channel and topic.
    consent: Vec<Consent>,
    /// Every change, newest first.
    consent_history: Vec<Consent>,
}

fn customer_messages(state: &AppState, profile: i64) -> Result<CustomerMessages, ApiError> {
    let sends = Outbox::of(&state.store)?
        .of_profile(profile)?
        .into_iter()
        .map(|s| {
            let (journey_id, step) = match s.origin {
                Origin::Journey { journey_id, step } => (Some(journey_id), Some(step)),
                Origin::Test | Origin::Broadcast { .. } => (None, None),
            };
            SendItem {
                send: s.idempotency_key,
                message: s.template,
                channel: s.channel.as_str().to_owned(),
                topic: s.topic,
                transactional: s.transactional,
                status: s.status.as_str().to_owned(),
                reason: s.reason,
                detail: s.detail,
                attempts: s.attempts,
                recipient: s.recipient,
                message_id: s.message_id,
                journey_id,
                step,
                created_at: s.created_at,
                updated_at: s.updated_at,
            }
        })
        .collect();
    let consents = Consents::of(&state.store)?;
    Ok(CustomerMessages {
        sends,
        consent: consents
            .of_profiles(&[profile])?
            .into_iter()
            .map(Consent::from)
            .collect(),
        consent_history: consents
            .history(profile)?
            .into_iter()
            .map(Consent::from)
            .collect(),
    })
}

/// A customer's messages (every send and what became of it) and consent (as it stands and
/// its history).
#[utoipa::path(get, path = "/v1/profiles/{key}/messages", tag = "messages", security(("adminToken" = [])),
    params(("key" = String, Path, description = "A profile id or an identifier such as user_id:anna")),
    responses(
        (status = 200, description = "Their messages and consent", body = CustomerMessages),
        (status = 400, description = "Not a profile key", body = ErrorBody),
        (status = 404, description = "No such customer", body = ErrorBody),
    ))]
pub async fn of_customer(
    State(state): State<AppState>,
    _admin: Admin,
    Path(key): Path<String>,
) -> Result<Json<CustomerMessages>, ApiError> {
    let answer = tokio::task::spawn_blocking(move || {
        let profile = profile_key(&state, &key)?;
        customer_messages(&state, profile)
    })
    .await??;
    Ok(Json(answer))
}

/// A consent change: `channel`, `topic` (`*` for every topic of the channel) and `state`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConsentChange {
    #[schema(value_type = String)]
    channel: prossimo_messages::Channel,
    topic: String,
    #[schema(value_type = String)]
    state: prossimo_messages::ConsentState,
    /// Who or what decided (a form, a till, a call): recorded in the history; `api` when
    /// absent.
    source: Option<String>,
}

/// Records a customer's choice (a sign-up form, a till, a call centre).
#[utoipa::path(put, path = "/v1/profiles/{key}/consent", tag = "messages", security(("adminToken" = [])),
    params(("key" = String, Path, description = "A profile id or an identifier such as user_id:anna")),
    request_body = ConsentChange,
    responses(
        (status = 200, description = "Their messages and consent, the change included", body = CustomerMessages),
        (status = 400, description = "Not a profile key, a channel, a topic or a state", body = ErrorBody),
        (status = 404, description = "No such customer", body = ErrorBody),
    ))]
pub async fn set_consent(
    State(state): State<AppState>,
    _admin: Admin,
    Path(key): Path<String>,
    body: Bytes,
) -> Result<Json<CustomerMessages>, ApiError> {
    let change: ConsentChange = json_body(&body)?;
    prossimo_messages::check_topic(&change.topic).map_err(|reason| ApiError::Field {
        field: "topic",
        reason,
    })?;
    let source = change.source.unwrap_or_else(|| "api".into());
    if source.trim().is_empty() || source.len() > 100 {
        return Err(ApiError::Field {
            field: "source",
            reason: "1 to 100 bytes".into(),
        });
    }
    let answer = tokio::task::spawn_blocking(move || {
        let profile = profile_key(&state, &key)?;
        Consents::of(&state.store)?.set(
            profile,
            &prossimo_messages::ConsentRecord {
                channel: change.channel,
                topic: change.topic,
                state: change.state,
                source,
                detail: None,
                at: state.store.now_ms(),
            },
        )?;
        customer_messages(&state, profile)
    })
    .await??;
    Ok(Json(answer))
}

/// A profile key in a path: 400 when it is not one, 404 when nobody has it.
fn profile_key(state: &AppState, raw: &str) -> Result<i64, ApiError> {
    let key = ProfileKey::parse(raw, state.store.identity()).map_err(ApiError::BadRequest)?;
    let id = state
        .store
        .resolve_profile(&key)?
        .ok_or_else(|| ApiError::NotFound(format!("no customer {raw:?}")))?;
    Ok(state.store.root_of(id)?)
}

pub(crate) fn routes() -> Area {
    Area::new()
        .routes(routes!(list, create))
        .routes(routes!(get_one, update, delete))
        .routes(routes!(preview))
        .routes(routes!(test_send))
        .routes(routes!(of_customer))
        .routes(routes!(set_consent))
}

//! Messages: the list, and an editor that checks a message (every problem with its field,
//! line and column) and previews it for a chosen customer and triggering event, as it
//! would go to them: the subject, the text part, and the HTML in a frame of its own
//! (served with a sandboxing policy that lets the e-mail's inline styles through and
//! nothing else). Marketers and admins save; everyone can preview.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Redirect, Response};
use prossimo_messages::{
    Channel, Content, Format, MessageError, MessageInput, Messages, Problem, Template,
    render_context,
};
use prossimo_store::{ProfileKey, StoreError};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::ConsoleState;
use crate::auth::{Signed, random_token};
use crate::customers::human_millis;
use crate::i18n::Lang;
use crate::page::{Chrome, PageError, blocking, editor_rights, path_and_query, render, respond};
use crate::users::Role;

/// Rendered previews kept for their frames, newest last.
const FRAMES_KEPT: usize = 32;
const FRAME_LIFETIME: Duration = Duration::from_secs(600);

/// The HTML of recent previews, by a random id, for the frame that shows each (per node,
/// in memory: a preview is looked at right away).
#[derive(Default)]
pub struct PreviewFrames(Mutex<VecDeque<(String, Instant, String)>>);

impl PreviewFrames {
    fn keep(&self, html: String) -> String {
        let id = random_token();
        if let Ok(mut frames) = self.0.lock() {
            frames.retain(|(_, at, _)| at.elapsed() < FRAME_LIFETIME);
            while frames.len() >= FRAMES_KEPT {
                frames.pop_front();
            }
            frames.push_back((id.clone(), Instant::now(), html));
        }
        id
    }

    fn get(&self, id: &str) -> Option<String> {
        let frames = self.0.lock().ok()?;
        frames
            .iter()
            .find(|(kept, at, _)| kept == id && at.elapsed() < FRAME_LIFETIME)
            .map(|(_, _, html)| html.clone())
    }
}

#[derive(Debug, Deserialize, Default)]
pub struct LangQuery {
    lang: Option<String>,
}

struct MessageRow {
    slug: String,
    name: String,
    channel: &'static str,
    summary: String,
    updated: String,
}

#[derive(askama::Template)]
#[template(path = "messages.html")]
struct ListPage {
    chrome: Chrome,
    rows: Vec<MessageRow>,
    can_edit: bool,
}

pub async fn list(
    State(state): State<ConsoleState>,
    Query(query): Query<LangQuery>,
    headers: HeaderMap,
    uri: Uri,
    signed: Signed,
) -> Result<Response, PageError> {
    let lang = Lang::choose(query.lang.as_deref(), &headers);
    let t = lang.texts();
    let store = state.store.clone();
    let messages = blocking(lang, move || Messages::of(&store)?.list()).await?;
    let rows = messages
        .into_iter()
        .map(|m| MessageRow {
            channel: m.content.channel.as_str(),
            summary: m
                .content
                .subject
                .clone()
                .or(m.content.destination.clone())
                .unwrap_or_else(|| m.content.body.chars().take(60).collect()),
            updated: human_millis(m.updated_at),
            slug: m.slug,
            name: m.name,
        })
        .collect();
    let page = ListPage {
        chrome: Chrome::signed(
            lang,
            &signed,
            t.nav_messages,
            "messages",
            &path_and_query(&uri),
        ),
        rows,
        can_edit: signed.role().allows(Role::Marketer),
    };
    respond(StatusCode::OK, &page, lang, query.lang.as_deref())
}

#[derive(Debug, Deserialize, Default)]
pub struct EditorForm {
    #[serde(default)]
    slug: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    channel: String,
    #[serde(default)]
    subject: String,
    #[serde(default)]
    format: String,
    #[serde(default)]
    destination: String,
    #[serde(default)]
    body: String,
    /// Whom to preview for (`user_id:anna`, a profile id).
    #[serde(default)]
    profile: String,
    /// What triggered the send, as JSON (`{"properties": {"products": […]}}`).
    #[serde(default)]
    event: String,
    #[serde(default)]
    action: String,
    #[serde(default)]
    csrf: String,
}

impl EditorForm {
    fn content(&self) -> Result<Content, Problem> {
        let channel = Channel::parse(self.channel.trim()).ok_or_else(|| Problem {
            field: "channel".into(),
            reason: "email, sms or webhook".into(),
            line: None,
            column: None,
        })?;
        let format = match self.format.trim() {
            "mjml" => Format::Mjml,
            "text" => Format::Text,
            _ => Format::Html,
        };
        let filled = |text: &str| Some(text.trim().to_owned()).filter(|t| !t.is_empty());
        Ok(Content {
            channel,
            subject: if channel == Channel::Email {
                filled(&self.subject)
            } else {
                None
            },
            body: self.body.clone(),
            format: if channel == Channel::Email {
                format
            } else {
                Format::Html
            },
            destination: if channel == Channel::Webhook {
                filled(&self.destination)
            } else {
                None
            },
        })
    }
}

/// A message rendered for the preview.
struct Shown {
    subject: Option<String>,
    text: String,
    /// The frame's id, when there is HTML.
    frame: Option<String>,
    /// A webhook's JSON, pretty.
    payload: Option<String>,
    customer: String,
}

#[derive(askama::Template)]
#[template(path = "message_editor.html")]
struct EditorPage {
    chrome: Chrome,
    editing: Option<String>,
    form: EditorForm,
    problems: Vec<Problem>,
    refusal: Option<String>,
    shown: Option<Shown>,
    can_save: bool,
}

/// A new message starts from this: the cart reminder of the docs.
const STARTER: &str = r#"<mjml><mj-body><mj-section><mj-column>
  <mj-text>Ciao {{ profile.first_name | default: "cliente" }}, nel carrello hai lasciato:</mj-text>
  {% for p in event.properties.products %}<mj-text>{{ p.name }} a € {{ p.price }}</mj-text>{% endfor %}
  <mj-button href="https://negozio.example/carrello">Completa l'ordine</mj-button>
  <mj-text><a href="{{ unsubscribe_url }}">Disiscriviti</a></mj-text>
</mj-column></mj-section></mj-body></mjml>"#;

const STARTER_EVENT: &str = r#"{"properties": {"cart_id": "c-1", "products": [{"name": "Borsa in pelle", "price": 89.5}]}}"#;

pub async fn new_form(
    Query(query): Query<LangQuery>,
    headers: HeaderMap,
    uri: Uri,
    signed: Signed,
) -> Result<Response, PageError> {
    let lang = Lang::choose(query.lang.as_deref(), &headers);
    let t = lang.texts();
    let page = EditorPage {
        chrome: Chrome::signed(
            lang,
            &signed,
            t.new_message,
            "messages",
            &path_and_query(&uri),
        ),
        editing: None,
        form: EditorForm {
            channel: "email".into(),
            format: "mjml".into(),
            subject: "{{ profile.first_name | default: 'Ciao' }}, il tuo carrello ti aspetta"
                .into(),
            body: STARTER.into(),
            event: STARTER_EVENT.into(),
            ..EditorForm::default()
        },
        problems: Vec::new(),
        refusal: None,
        shown: None,
        can_save: signed.role().allows(Role::Marketer),
    };
    respond(StatusCode::OK, &page, lang, query.lang.as_deref())
}

pub async fn edit_form(
    State(state): State<ConsoleState>,
    Path(slug): Path<String>,
    Query(query): Query<LangQuery>,
    headers: HeaderMap,
    uri: Uri,
    signed: Signed,
) -> Result<Response, PageError> {
    let lang = Lang::choose(query.lang.as_deref(), &headers);
    let t = lang.texts();
    let store = state.store.clone();
    let wanted = slug.clone();
    let Some(record) = blocking(lang, move || Messages::of(&store)?.get(&wanted)).await? else {
        return Err(PageError::not_found(lang, t.message_not_found));
    };
    let c = &record.content;
    let form = EditorForm {
        channel: c.channel.as_str().into(),
        format: match c.format {
            Format::Mjml => "mjml",
            Format::Html => "html",
            Format::Text => "text",
        }
        .into(),
        subject: c.subject.clone().unwrap_or_default(),
        destination: c.destination.clone().unwrap_or_default(),
        body: c.body.clone(),
        event: STARTER_EVENT.into(),
        slug: record.slug.clone(),
        name: record.name.clone(),
        description: record.description.clone(),
        ..EditorForm::default()
    };
    let page = EditorPage {
        chrome: Chrome::signed(
            lang,
            &signed,
            &record.name,
            "messages",
            &path_and_query(&uri),
        ),
        editing: Some(slug),
        form,
        problems: Vec::new(),
        refusal: None,
        shown: None,
        can_save: signed.role().allows(Role::Marketer),
    };
    respond(StatusCode::OK, &page, lang, query.lang.as_deref())
}

/// `POST` of the editor: a new one (no slug in the path) or the one the path names.
pub async fn submit_form(
    State(state): State<ConsoleState>,
    slug: Option<Path<String>>,
    headers: HeaderMap,
    signed: Signed,
    form: axum::Form<EditorForm>,
) -> Result<Response, PageError> {
    submit(state, headers, signed, form.0, slug.map(|Path(slug)| slug)).await
}

enum Outcome {
    Saved(String),
    Shown(Vec<Problem>, Option<Shown>, Option<String>),
}

/// Preview or save, and show the editor again with the outcome (or, after a save, the
/// list).
async fn submit(
    state: ConsoleState,
    headers: HeaderMap,
    signed: Signed,
    mut form: EditorForm,
    editing: Option<String>,
) -> Result<Response, PageError> {
    let lang = Lang::choose(None, &headers);
    let t = lang.texts();
    let saving = form.action == "save";
    let can_save = editor_rights(&signed, &form.csrf, saving, lang)?;
    if let Some(slug) = &editing {
        form.slug = slug.clone();
    }
    form.slug = form.slug.trim().to_owned();
    let content = form.content();
    let (slug, name, description) = (
        form.slug.clone(),
        form.name.trim().to_owned(),
        form.description.trim().to_owned(),
    );
    let (profile, event) = (form.profile.trim().to_owned(), form.event.clone());
    let store = state.store.clone();
    let frames = state.previews.clone();
    let existing = editing.is_some();
    let outcome = blocking(lang, move || {
        let content = match content {
            Ok(content) => content,
            Err(problem) => return Ok(Outcome::Shown(vec![problem], None, None)),
        };
        let template = match Template::compile(&content) {
            Ok(template) => template,
            Err(problems) => return Ok(Outcome::Shown(problems, None, None)),
        };
        if saving {
            let input = MessageInput {
                name: if name.is_empty() { slug.clone() } else { name },
                slug,
                description,
                content,
            };
            let messages = Messages::of(&store)?;
            let saved = if existing {
                messages.update(&input)
            } else {
                messages.create(&input)
            };
            return match saved {
                Ok(record) => Ok(Outcome::Saved(record.slug)),
                Err(MessageError::Problems(problems)) => Ok(Outcome::Shown(problems, None, None)),
                Err(MessageError::Store(
                    e @ (StoreError::Conflict(_)
                    | StoreError::Invalid(_)
                    | StoreError::NotFound(_)
                    | StoreError::TooLong { .. }),
                )) => Ok(Outcome::Shown(Vec::new(), None, Some(e.to_string()))),
                Err(MessageError::Store(e)) => Err(e),
            };
        }
        // A preview: for the customer named, over the event given.
        let event: Value = if event.trim().is_empty() {
            json!({})
        } else {
            match serde_json::from_str(&event) {
                Ok(event) => event,
                Err(e) => {
                    return Ok(Outcome::Shown(
                        vec![Problem {
                            field: "event".into(),
                            reason: format!("not JSON: {e}"),
                            line: u32::try_from(e.line()).ok(),
                            column: u32::try_from(e.column()).ok(),
                        }],
                        None,
                        None,
                    ));
                }
            }
        };
        let facts = if profile.is_empty() {
            None
        } else {
            let key = match ProfileKey::parse(&profile, store.identity()) {
                Ok(key) => key,
                Err(reason) => {
                    return Ok(Outcome::Shown(
                        Vec::new(),
                        None,
                        Some(format!("{profile:?}: {reason}")),
                    ));
                }
            };
            match store.resolve_profile(&key)? {
                Some(id) => store.profile_facts(&[id])?.pop(),
                None => None,
            }
        };
        let Some(facts) = facts else {
            return Ok(Outcome::Shown(
                Vec::new(),
                None,
                Some(format!("{}: {profile:?}", t.no_such_customer)),
            ));
        };
        let context =
            json!({"event": event, "unsubscribe_url": "https://example.invalid/u/preview"});
        match template.render(&render_context(&facts, &context)) {
            Ok(rendered) => Ok(Outcome::Shown(
                Vec::new(),
                Some(Shown {
                    subject: rendered.subject,
                    frame: rendered.html.map(|html| frames.keep(html)),
                    payload: rendered
                        .payload
                        .map(|p| serde_json::to_string_pretty(&p).unwrap_or_default()),
                    text: rendered.text,
                    customer: facts
                        .traits
                        .get("name")
                        .or(facts.traits.get("email"))
                        .and_then(Value::as_str)
                        .map_or_else(|| format!("#{}", facts.id), str::to_owned),
                }),
                None,
            )),
            Err(problem) => Ok(Outcome::Shown(vec![problem], None, None)),
        }
    })
    .await?;
    let (problems, shown, refusal) = match outcome {
        Outcome::Saved(slug) => {
            tracing::info!(user = %signed.email(), %slug, "message saved in the console");
            return Ok(Redirect::to("/messages").into_response());
        }
        Outcome::Shown(problems, shown, refusal) => (problems, shown, refusal),
    };
    let status = if problems.is_empty() && refusal.is_none() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    let title = editing.clone().unwrap_or_else(|| t.new_message.to_owned());
    let path = match &editing {
        Some(slug) => format!("/messages/{slug}/edit"),
        None => "/messages/new".to_owned(),
    };
    let page = EditorPage {
        chrome: Chrome::signed(lang, &signed, &title, "messages", &path),
        editing,
        form,
        problems,
        refusal,
        shown,
        can_save,
    };
    render(status, &page, lang)
}

/// `GET /messages/frame/{id}`: a preview's HTML, for the editor's frame. Sandboxed: no
/// script runs, nothing is sent anywhere, and only this console may frame it.
pub async fn frame(
    State(state): State<ConsoleState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    _signed: Signed,
) -> Result<Response, PageError> {
    let lang = Lang::choose(None, &headers);
    let Some(html) = state.previews.get(&id) else {
        return Err(PageError::not_found(lang, lang.texts().preview_gone));
    };
    let mut response = (StatusCode::OK, html).into_response();
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        "content-security-policy",
        HeaderValue::from_static(
            "sandbox; default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'self'",
        ),
    );
    h.insert("x-frame-options", HeaderValue::from_static("SAMEORIGIN"));
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    Ok(response)
}

//! Audiences: the list with sizes and their trend, an editor for the segment language that
//! checks as you type (and without JavaScript on every submit), preview, save, members and
//! history. Marketers and admins save; everyone can check and preview.

use std::time::Instant;

use askama::Template;
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Redirect, Response};
use prossimo_decide::audiences::{Audiences, SegmentInput};
use prossimo_decide::{
    AudienceError, DRAFT_SLUG, DecideError, check_catalog, delete_audience, preview, save_audience,
};
use prossimo_messages::{BroadcastInput, Broadcasts, InQuietHours, MessageError, Messages};
use prossimo_segments::{format, parse};
use prossimo_store::{ProfileKey, Store, StoreError};

use crate::users::Role;
use serde::{Deserialize, Serialize};

use crate::ConsoleState;
use crate::auth::Signed;
use crate::charts::{Series, Sparkline};
use crate::customers::human_millis;
use crate::i18n::Lang;
use crate::page::{Chrome, PageError, blocking, editor_rights, path_and_query, render, respond};

const MEMBERS_PAGE: usize = 50;
/// Days of size history in the list's trend and on an audience's chart.
const TREND_DAYS: i64 = 7;
const CHART_DAYS: i64 = 30;
const DAY_MS: i64 = 86_400_000;

/// Hourly sizes as chart points.
fn size_points(sizes: &[(i64, u64)]) -> Vec<(i64, f64)> {
    sizes.iter().map(|&(hour, n)| (hour, n as f64)).collect()
}
const PREVIEW_SAMPLE: usize = 10;

#[derive(Debug, Deserialize, Default)]
pub struct ListQuery {
    lang: Option<String>,
}

struct AudienceRow {
    slug: String,
    name: String,
    description: String,
    size: u64,
    trend: Sparkline,
    updated: String,
}

#[derive(Template)]
#[template(path = "audiences.html")]
struct ListPage {
    chrome: Chrome,
    rows: Vec<AudienceRow>,
    can_edit: bool,
    status: String,
}

/// What the decider is doing, in words, for the pages that show sizes.
fn decider_status(state: &ConsoleState, lang: Lang) -> String {
    let t = lang.texts();
    match &state.decider {
        None => t.audiences_not_live.to_owned(),
        Some(d) => {
            let s = d.status();
            if s.standby {
                t.audiences_standby.to_owned()
            } else if s.rebuilding || !s.ready {
                t.audiences_rebuilding.to_owned()
            } else {
                String::new()
            }
        }
    }
}

pub async fn list(
    State(state): State<ConsoleState>,
    Query(query): Query<ListQuery>,
    headers: HeaderMap,
    uri: Uri,
    signed: Signed,
) -> Result<Response, PageError> {
    let lang = Lang::choose(query.lang.as_deref(), &headers);
    let store = state.store.clone();
    let now = store.now_ms();
    let rows = blocking(lang, move || {
        let mut rows = Vec::new();
        let audiences = Audiences::of(&store)?;
        for s in audiences.segments()? {
            let sizes = audiences.segment_sizes_since(s.id, now - TREND_DAYS * DAY_MS)?;
            rows.push(AudienceRow {
                size: sizes.last().map_or(0, |&(_, n)| n),
                trend: Sparkline::steps(&size_points(&sizes), now - TREND_DAYS * DAY_MS, now),
                slug: s.slug,
                name: s.name,
                description: s.description,
                updated: human_millis(s.updated_at),
            });
        }
        Ok(rows)
    })
    .await?;
    let t = lang.texts();
    let page = ListPage {
        chrome: Chrome::signed(
            lang,
            &signed,
            t.nav_audiences,
            "audiences",
            &path_and_query(&uri),
        ),
        rows,
        can_edit: signed.role().allows(Role::Marketer),
        status: decider_status(&state, lang),
    };
    respond(StatusCode::OK, &page, lang, query.lang.as_deref())
}

/// A definition problem where the editor can point at it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DefinitionProblem {
    pub message: String,
    pub line: u32,
    pub column: u32,
    /// The line of the definition with a caret under the column.
    pub excerpt: String,
}

/// The editor's verdict on a definition: its canonical form, or what is wrong.
fn check(
    store: &Store,
    slug: &str,
    definition: &str,
    lang: Lang,
) -> Result<Result<String, EditorError>, StoreError> {
    match check_catalog(store, slug, Some(definition)) {
        Ok(_) => Ok(parse(definition)
            .map(|expr| format(&expr))
            .map_err(|e| EditorError::Definition(problem(&e, definition, lang)))),
        Err(DecideError::Store(e)) => Err(e),
        Err(e) => Ok(Err(match e.definition_error(slug) {
            Some(error) => EditorError::Definition(problem(error, definition, lang)),
            None => EditorError::Other(decide_refusal(&e, lang)),
        })),
    }
}

/// Why the audiences refused something, in the page's language.
fn refusal(e: &AudienceError, lang: Lang) -> String {
    match (e, lang) {
        (AudienceError::Definition(e), _) => decide_refusal(e, lang),
        (AudienceError::InUse { slug, user, reason }, Lang::It) => format!(
            "il segmento \"{user}\" fa riferimento a \"{slug}\" ({}): modificalo prima",
            reason.message_in(lang.segments())
        ),
        (AudienceError::Store(e), Lang::It) => store_refusal_it(e),
        (e, _) => e.to_string(),
    }
}

fn decide_refusal(e: &DecideError, lang: Lang) -> String {
    match (e, lang) {
        (DecideError::Catalog(e), _) => e.message_in(lang.segments()),
        (DecideError::Store(e), Lang::It) => store_refusal_it(e),
        (e, _) => e.to_string(),
    }
}

/// What the store refused when saving an audience, in Italian.
fn store_refusal_it(e: &StoreError) -> String {
    match e {
        StoreError::Conflict(_) => "esiste già un segmento con questo slug".to_owned(),
        StoreError::TooLong { field, bytes, max } => {
            format!("{field}: {bytes} byte, al massimo {max}")
        }
        other => other.to_string(),
    }
}

fn problem(error: &prossimo_segments::Error, definition: &str, lang: Lang) -> DefinitionProblem {
    let line = definition
        .split('\n')
        .nth((error.line() as usize).saturating_sub(1))
        .unwrap_or("")
        .trim_end_matches('\r');
    let pad: String = line
        .chars()
        .take((error.column() as usize).saturating_sub(1))
        .map(|c| if c == '\t' { '\t' } else { ' ' })
        .collect();
    DefinitionProblem {
        message: error.message_in(lang.segments()).to_owned(),
        line: error.line(),
        column: error.column(),
        excerpt: format!("{line}\n{pad}^"),
    }
}

#[derive(Debug, Clone)]
enum EditorError {
    Definition(DefinitionProblem),
    /// A problem that is not in the text: a taken slug, a cycle through another segment.
    Other(String),
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
    definition: String,
    #[serde(default)]
    action: String,
    #[serde(default)]
    csrf: String,
}

struct SampleRow {
    id: i64,
    name: String,
    email: String,
}

#[derive(Template)]
#[template(path = "audience_editor.html")]
struct EditorPage {
    chrome: Chrome,
    /// `None` for a new audience.
    editing: Option<String>,
    form: EditorForm,
    problem: Option<DefinitionProblem>,
    other_error: Option<String>,
    canonical: Option<String>,
    preview_count: Option<u64>,
    preview_ms: u64,
    sample: Vec<SampleRow>,
    can_save: bool,
}

impl EditorPage {
    fn new(
        chrome: Chrome,
        editing: Option<String>,
        form: EditorForm,
        can_save: bool,
    ) -> EditorPage {
        EditorPage {
            chrome,
            editing,
            form,
            problem: None,
            other_error: None,
            canonical: None,
            preview_count: None,
            preview_ms: 0,
            sample: Vec::new(),
            can_save,
        }
    }
}

pub async fn new_form(
    Query(query): Query<ListQuery>,
    headers: HeaderMap,
    uri: Uri,
    signed: Signed,
) -> Result<Response, PageError> {
    let lang = Lang::choose(query.lang.as_deref(), &headers);
    let t = lang.texts();
    let chrome = Chrome::signed(
        lang,
        &signed,
        t.new_audience,
        "audiences",
        &path_and_query(&uri),
    );
    let can_save = signed.role().allows(Role::Marketer);
    let page = EditorPage::new(chrome, None, EditorForm::default(), can_save);
    respond(StatusCode::OK, &page, lang, query.lang.as_deref())
}

pub async fn edit_form(
    State(state): State<ConsoleState>,
    Path(slug): Path<String>,
    Query(query): Query<ListQuery>,
    headers: HeaderMap,
    uri: Uri,
    signed: Signed,
) -> Result<Response, PageError> {
    let lang = Lang::choose(query.lang.as_deref(), &headers);
    let t = lang.texts();
    let store = state.store.clone();
    let wanted = slug.clone();
    let Some(record) = blocking(lang, move || Audiences::of(&store)?.segment(&wanted)).await?
    else {
        return Err(PageError::not_found(lang, t.audience_not_found));
    };
    let chrome = Chrome::signed(
        lang,
        &signed,
        &record.name,
        "audiences",
        &path_and_query(&uri),
    );
    let form = EditorForm {
        slug: record.slug,
        name: record.name,
        description: record.description,
        definition: record.definition,
        ..EditorForm::default()
    };
    let page = EditorPage::new(
        chrome,
        Some(slug),
        form,
        signed.role().allows(Role::Marketer),
    );
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

/// Check, preview or save, and show the editor again with the outcome (or, after a save,
/// the audience's page).
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
    let slug_for_check = if saving || editing.is_some() {
        form.slug.clone()
    } else {
        DRAFT_SLUG.to_owned()
    };
    let title = editing.clone().unwrap_or_else(|| t.new_audience.to_owned());
    let path = match &editing {
        Some(slug) => format!("/audiences/{slug}/edit"),
        None => "/audiences/new".to_owned(),
    };
    let chrome = Chrome::signed(lang, &signed, &title, "audiences", &path);
    let definition = form.definition.clone();
    let action = form.action.clone();
    let input = SegmentInput {
        slug: form.slug.clone(),
        name: if form.name.trim().is_empty() {
            form.slug.clone()
        } else {
            form.name.trim().to_owned()
        },
        description: form.description.trim().to_owned(),
        definition: form.definition.clone(),
    };
    let (store, bus) = (state.store.clone(), state.bus.clone());
    let existing = editing.clone();
    let started = Instant::now();
    let outcome = blocking(lang, move || {
        if action == "save"
            && let Err(why) = prossimo_segments::check_slug(&input.slug)
        {
            return Ok(Outcome::Refused(why.get(lang.segments()).to_owned()));
        }
        let canonical = match check(&store, &slug_for_check, &definition, lang)? {
            Ok(canonical) => canonical,
            Err(e) => return Ok(Outcome::Invalid(e)),
        };
        match action.as_str() {
            "save" => match save_audience(&store, Some(&bus), &input, existing.as_deref()) {
                Ok(record) => Ok(Outcome::Saved(record.slug)),
                Err(AudienceError::NotFound(_)) => Ok(Outcome::Missing),
                Err(
                    e @ AudienceError::Store(
                        StoreError::Conflict(_)
                        | StoreError::Invalid(_)
                        | StoreError::TooLong { .. },
                    ),
                ) => Ok(Outcome::Refused(refusal(&e, lang))),
                Err(AudienceError::Store(e)) => Err(e),
                Err(e) => Ok(Outcome::Refused(refusal(&e, lang))),
            },
            "preview" => {
                let now = store.now_ms();
                let result = match preview(&store, &definition, now, PREVIEW_SAMPLE) {
                    Ok(result) => result,
                    Err(DecideError::Store(e)) => return Err(e),
                    Err(e) => return Ok(Outcome::Refused(decide_refusal(&e, lang))),
                };
                let mut sample = Vec::new();
                for id in result.sample {
                    if let Some(p) = store.profile(&ProfileKey::Id(id), &[])? {
                        sample.push(SampleRow {
                            id: p.id,
                            name: p.name.unwrap_or_default(),
                            email: p
                                .traits
                                .get("email")
                                .and_then(|v| v.as_str())
                                .unwrap_or_default()
                                .to_owned(),
                        });
                    }
                }
                Ok(Outcome::Previewed {
                    canonical,
                    count: result.count,
                    sample,
                })
            }
            _ => Ok(Outcome::Valid(canonical)),
        }
    })
    .await?;
    let mut page = EditorPage::new(chrome, editing, form, can_save);
    let status = match outcome {
        Outcome::Saved(slug) => {
            tracing::info!(user = %signed.email(), %slug, "audience saved in the console");
            return Ok(Redirect::to(&format!("/audiences/{slug}")).into_response());
        }
        Outcome::Missing => return Err(PageError::not_found(lang, t.audience_not_found)),
        Outcome::Valid(canonical) => {
            page.canonical = Some(canonical);
            StatusCode::OK
        }
        Outcome::Previewed {
            canonical,
            count,
            sample,
        } => {
            page.canonical = Some(canonical);
            page.preview_count = Some(count);
            page.preview_ms = started.elapsed().as_millis() as u64;
            page.sample = sample;
            StatusCode::OK
        }
        Outcome::Invalid(EditorError::Definition(problem)) => {
            page.problem = Some(problem);
            StatusCode::UNPROCESSABLE_ENTITY
        }
        Outcome::Invalid(EditorError::Other(message)) | Outcome::Refused(message) => {
            page.other_error = Some(message);
            StatusCode::UNPROCESSABLE_ENTITY
        }
    };
    render(status, &page, lang)
}

enum Outcome {
    Saved(String),
    /// The audience being edited is gone.
    Missing,
    Valid(String),
    Previewed {
        canonical: String,
        count: u64,
        sample: Vec<SampleRow>,
    },
    Invalid(EditorError),
    Refused(String),
}

#[derive(Debug, Deserialize)]
pub struct CheckBody {
    definition: String,
    #[serde(default)]
    slug: Option<String>,
}

/// `POST /audiences/check` (JSON, `x-csrf-token` header): the editor's check as you type.
pub async fn check_json(
    State(state): State<ConsoleState>,
    headers: HeaderMap,
    signed: Signed,
    body: Json<CheckBody>,
) -> Result<Response, PageError> {
    let lang = Lang::choose(None, &headers);
    let token = headers
        .get("x-csrf-token")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !signed.csrf_ok(token) {
        return Err(PageError::forbidden(lang));
    }
    let store = state.store.clone();
    let body = body.0;
    let slug = body
        .slug
        .filter(|s| !s.trim().is_empty())
        .unwrap_or_else(|| DRAFT_SLUG.to_owned());
    let verdict = blocking(lang, move || check(&store, &slug, &body.definition, lang)).await?;
    Ok(Json(match verdict {
        Ok(canonical) => Verdict {
            valid: true,
            canonical: Some(canonical),
            ..Verdict::default()
        },
        Err(EditorError::Definition(problem)) => Verdict {
            problem: Some(problem),
            ..Verdict::default()
        },
        Err(EditorError::Other(message)) => Verdict {
            message: Some(message),
            ..Verdict::default()
        },
    })
    .into_response())
}

/// The editor's check as you type: the canonical form of a valid definition, or where it
/// goes wrong (`problem`), or why it cannot be saved (`message`), in the reader's language.
#[derive(Serialize, Default)]
struct Verdict {
    valid: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    canonical: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    problem: Option<DefinitionProblem>,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<String>,
}

#[derive(Debug, Deserialize, Default)]
pub struct ShowQuery {
    after: Option<i64>,
    lang: Option<String>,
}

struct MemberRow {
    id: i64,
    name: String,
    since: String,
}

struct HistoryRow {
    id: i64,
    name: String,
    entered: String,
    exited: String,
}

struct BroadcastRow {
    id: i64,
    name: String,
    owed: u64,
    /// `sent 5 · skipped 1`.
    outcomes: String,
    created: String,
    by: String,
}

#[derive(Template)]
#[template(path = "audience.html")]
struct ShowPage {
    chrome: Chrome,
    slug: String,
    name: String,
    description: String,
    definition: String,
    size: u64,
    sizes: Series,
    members: Vec<MemberRow>,
    next_members: Option<String>,
    history: Vec<HistoryRow>,
    can_edit: bool,
    status: String,
    /// The messages a broadcast may send: (slug, "name (channel)").
    message_choices: Vec<(String, String)>,
    broadcasts: Vec<BroadcastRow>,
}

pub async fn show(
    State(state): State<ConsoleState>,
    Path(slug): Path<String>,
    Query(query): Query<ShowQuery>,
    headers: HeaderMap,
    uri: Uri,
    signed: Signed,
) -> Result<Response, PageError> {
    let lang = Lang::choose(query.lang.as_deref(), &headers);
    let t = lang.texts();
    let store = state.store.clone();
    let wanted = slug.clone();
    let after = query.after;
    let now = store.now_ms();
    let loaded = blocking(lang, move || {
        let audiences = Audiences::of(&store)?;
        let Some(record) = audiences.segment(&wanted)? else {
            return Ok(None);
        };
        let sizes = audiences.segment_sizes_since(record.id, now - CHART_DAYS * DAY_MS)?;
        // One more than shown says whether there is a next page.
        let mut members = audiences.segment_members(record.id, after, MEMBERS_PAGE + 1)?;
        let more = members.len() > MEMBERS_PAGE;
        members.truncate(MEMBERS_PAGE);
        let next_after = more.then(|| members.last().map(|m| m.position)).flatten();
        let mut member_rows = Vec::with_capacity(members.len());
        for m in &members {
            let name = store
                .profile_name(m.profile_id)?
                .unwrap_or_else(|| format!("#{}", m.profile_id));
            member_rows.push(MemberRow {
                id: m.profile_id,
                name,
                since: human_millis(m.entered_at),
            });
        }
        let (history, _) = audiences.segment_history(record.id, None, 20)?;
        let mut names = Vec::with_capacity(history.len());
        for h in &history {
            names.push(
                store
                    .profile_name(h.profile_id)?
                    .unwrap_or_else(|| format!("#{}", h.profile_id)),
            );
        }
        let messages = Messages::of(&store)?
            .list()?
            .into_iter()
            .map(|m| {
                let label = format!("{} ({})", m.name, m.content.channel.as_str());
                (m.slug, label)
            })
            .collect::<Vec<_>>();
        let broadcasts = Broadcasts::of(&store)?;
        let mut sent = Vec::new();
        for b in broadcasts.list(Some(&record.slug), 10)? {
            let outcomes = broadcasts
                .outcomes(b.id)?
                .iter()
                .map(|(status, n)| format!("{status} {n}"))
                .collect::<Vec<_>>()
                .join(" · ");
            sent.push(BroadcastRow {
                id: b.id,
                name: b.name,
                owed: b.owed,
                outcomes,
                created: human_millis(b.created_at),
                by: b.created_by,
            });
        }
        Ok(Some((
            record,
            sizes,
            (member_rows, next_after),
            history.into_iter().zip(names).collect::<Vec<_>>(),
            (messages, sent),
        )))
    })
    .await?;
    let Some((record, sizes, (members, next_after), history, (message_choices, broadcasts))) =
        loaded
    else {
        return Err(PageError::not_found(lang, t.audience_not_found));
    };
    let next_members = next_after.map(|after| format!("/audiences/{slug}?after={after}"));
    let page = ShowPage {
        chrome: Chrome::signed(
            lang,
            &signed,
            &record.name,
            "audiences",
            &path_and_query(&uri),
        ),
        size: sizes.last().map_or(0, |&(_, n)| n),
        sizes: Series::steps(&size_points(&sizes), now - CHART_DAYS * DAY_MS, now, &|v| {
            lang.number(v)
        }),
        slug: record.slug,
        name: record.name,
        description: record.description,
        definition: record.definition,
        members,
        next_members,
        history: history
            .iter()
            .map(|(h, name)| HistoryRow {
                id: h.profile_id,
                name: name.clone(),
                entered: human_millis(h.entered_at),
                exited: h.exited_at.map(human_millis).unwrap_or_default(),
            })
            .collect(),
        can_edit: signed.role().allows(Role::Marketer),
        status: decider_status(&state, lang),
        message_choices,
        broadcasts,
    };
    respond(StatusCode::OK, &page, lang, query.lang.as_deref())
}

#[derive(Debug, Deserialize)]
pub struct BroadcastForm {
    #[serde(default)]
    message: String,
    #[serde(default)]
    topic: String,
    #[serde(default)]
    csrf: String,
}

/// `POST /audiences/{slug}/broadcast`: sends a message to the audience's members.
pub async fn broadcast(
    State(state): State<ConsoleState>,
    Path(slug): Path<String>,
    headers: HeaderMap,
    signed: Signed,
    form: axum::Form<BroadcastForm>,
) -> Result<Response, PageError> {
    let lang = Lang::choose(None, &headers);
    if !signed.csrf_ok(&form.csrf) || !signed.role().allows(Role::Marketer) {
        return Err(PageError::forbidden(lang));
    }
    let topic = Some(form.topic.trim().to_owned()).filter(|t| !t.is_empty());
    let input = BroadcastInput {
        name: String::new(),
        audience: slug.clone(),
        message: form.message.trim().to_owned(),
        topic,
        transactional: false,
        in_quiet_hours: InQuietHours::Wait,
        created_by: signed.email().to_owned(),
    };
    let store = state.store.clone();
    let created = blocking(lang, move || match Broadcasts::of(&store)?.create(&input) {
        Ok(record) => Ok(Ok(record)),
        Err(MessageError::Store(e)) => Err(e),
        Err(MessageError::Problems(problems)) => Ok(Err(problems
            .iter()
            .map(|p| format!("{}: {}", p.field, p.reason))
            .collect::<Vec<_>>()
            .join("; "))),
    })
    .await?;
    match created {
        Ok(record) => {
            state.bus.publish(prossimo_bus::Happened::MessagesOwed);
            tracing::info!(user = %signed.email(), audience = %slug, broadcast = record.id, "broadcast started in the console");
            Ok(Redirect::to(&format!("/audiences/{slug}#broadcasts")).into_response())
        }
        Err(message) => Err(PageError::conflict(lang, message)),
    }
}

#[derive(Debug, Deserialize)]
pub struct DeleteForm {
    #[serde(default)]
    csrf: String,
}

pub async fn delete(
    State(state): State<ConsoleState>,
    Path(slug): Path<String>,
    headers: HeaderMap,
    signed: Signed,
    form: axum::Form<DeleteForm>,
) -> Result<Response, PageError> {
    let lang = Lang::choose(None, &headers);
    if !signed.csrf_ok(&form.csrf) || !signed.role().allows(Role::Marketer) {
        return Err(PageError::forbidden(lang));
    }
    let store = state.store.clone();
    let target = slug.clone();
    let bus = state.bus.clone();
    let refused = blocking(lang, move || {
        match delete_audience(&store, Some(&bus), &target) {
            Ok(()) => Ok(None),
            Err(AudienceError::NotFound(_)) => Ok(Some(None)),
            Err(AudienceError::Store(e)) => Err(e),
            Err(e) => Ok(Some(Some(refusal(&e, lang)))),
        }
    })
    .await?;
    match refused {
        Some(None) => return Err(PageError::not_found(lang, lang.texts().audience_not_found)),
        Some(Some(message)) => return Err(PageError::conflict(lang, message)),
        None => {}
    }
    tracing::info!(user = %signed.email(), %slug, "audience deleted in the console");
    Ok(Redirect::to("/audiences").into_response())
}

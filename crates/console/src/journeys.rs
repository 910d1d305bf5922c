//! Journeys: the list with how many entered, are under way and converted; a journey's
//! page with its steps drawn as a graph, the counts on every step and arrow refreshed as
//! customers flow through, how instances ended, its versions and history, and the
//! buttons to publish, pause, resume and archive; an editor for the JSON that checks as
//! you type (and without JavaScript on every submit). Marketers and admins save and
//! change; everyone can look and check.

use std::collections::BTreeMap;

use askama::Template;
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Redirect, Response};
use prossimo_journeys::{
    Definition, DryRun, Instances, JourneyError, JourneyInput, JourneyState, JourneyTotals,
    Journeys, LifecycleAction, Problem, change_journey_state, check_definition, layout,
    publish_journey, save_journey,
};
use prossimo_store::{Store, StoreError};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::ConsoleState;
use crate::auth::Signed;
use crate::customers::human_millis;
use crate::i18n::{Lang, Texts};
use crate::page::{Chrome, PageError, blocking, editor_rights, path_and_query, render, respond};
use crate::users::Role;

#[derive(Debug, Deserialize, Default)]
pub struct LangQuery {
    lang: Option<String>,
    /// The audience to dry-run the draft over (the journey's page).
    dry_run: Option<String>,
    /// A new journey started from an audience's page: triggered by entering it.
    audience: Option<String>,
}

fn state_name(state: JourneyState, t: &Texts) -> &'static str {
    match state {
        JourneyState::Draft => t.state_draft,
        JourneyState::Published => t.state_published,
        JourneyState::Paused => t.state_paused,
        JourneyState::Archived => t.state_archived,
    }
}

struct JourneyRow {
    slug: String,
    name: String,
    description: String,
    state: &'static str,
    state_class: &'static str,
    version: String,
    entered: u64,
    active: u64,
    converted: u64,
    rate: String,
    updated: String,
}

#[derive(Template)]
#[template(path = "journeys.html")]
struct ListPage {
    chrome: Chrome,
    rows: Vec<JourneyRow>,
    can_edit: bool,
}

/// Converted out of entered, as a percentage with one decimal.
fn rate(totals: &JourneyTotals) -> String {
    if totals.entered == 0 {
        return "–".into();
    }
    format!(
        "{:.1}%",
        totals.converted() as f64 * 100.0 / totals.entered as f64
    )
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
    let (journeys, totals) = blocking(lang, move || {
        Ok((
            Journeys::of(&store)?.list()?,
            Instances::of(&store)?.totals()?,
        ))
    })
    .await?;
    let rows = journeys
        .into_iter()
        .map(|j| {
            let totals = totals.get(&j.id).cloned().unwrap_or_default();
            JourneyRow {
                state: state_name(j.state, t),
                state_class: j.state.as_str(),
                version: j.live_version.map(|v| format!("v{v}")).unwrap_or_default(),
                entered: totals.entered,
                active: totals.active,
                converted: totals.converted(),
                rate: rate(&totals),
                updated: human_millis(j.updated_at),
                slug: j.slug,
                name: j.name,
                description: j.description,
            }
        })
        .collect();
    let page = ListPage {
        chrome: Chrome::signed(
            lang,
            &signed,
            t.nav_journeys,
            "journeys",
            &path_and_query(&uri),
        ),
        rows,
        can_edit: signed.role().allows(Role::Marketer),
    };
    respond(StatusCode::OK, &page, lang, query.lang.as_deref())
}

/// Geometry of the drawing, in SVG units.
const NODE_W: usize = 220;
const NODE_H: usize = 64;
const GAP_X: usize = 36;
const GAP_Y: usize = 64;
const MARGIN: usize = 16;

struct NodeBox {
    id: String,
    kind: &'static str,
    summary: String,
    x: usize,
    y: usize,
    waiting: u64,
    passed: u64,
}

struct Arrow {
    /// `from|outcome`, what the live counts are keyed by.
    key: String,
    path: String,
    label_x: usize,
    label_y: usize,
    outcome: String,
    count: u64,
}

struct Drawing {
    width: usize,
    height: usize,
    nodes: Vec<NodeBox>,
    arrows: Vec<Arrow>,
}

/// `definition` drawn, with each step's and arrow's counts.
fn draw(definition: &Definition, counts: &Counts) -> Drawing {
    let graph = layout(definition);
    let column = NODE_W + GAP_X;
    let mut per_layer: BTreeMap<usize, usize> = BTreeMap::new();
    for node in &graph.nodes {
        *per_layer.entry(node.layer).or_default() += 1;
    }
    let place = |layer: usize, slot: usize| {
        let in_layer = per_layer.get(&layer).copied().unwrap_or(1);
        let offset = (graph.widest.saturating_sub(in_layer)) * column / 2;
        (
            MARGIN + offset + slot * column,
            MARGIN + layer * (NODE_H + GAP_Y),
        )
    };
    let nodes: Vec<NodeBox> = graph
        .nodes
        .iter()
        .map(|n| {
            let (x, y) = place(n.layer, n.slot);
            let step = counts.steps.get(&n.id);
            NodeBox {
                id: n.id.clone(),
                kind: n.kind,
                summary: n.summary.chars().take(34).collect(),
                x,
                y,
                waiting: step.map_or(0, |s| s.waiting),
                passed: step.map_or(0, |s| s.outcomes.values().sum()),
            }
        })
        .collect();
    let arrows = graph
        .edges
        .iter()
        .filter_map(|e| {
            let (from, to) = (nodes.get(e.from)?, nodes.get(e.to)?);
            let (x1, y1) = (from.x + NODE_W / 2, from.y + NODE_H);
            let (x2, y2) = (to.x + NODE_W / 2, to.y);
            let bend = (y2.saturating_sub(y1) / 2).max(20);
            Some(Arrow {
                key: format!("{}|{}", from.id, e.outcome),
                path: format!(
                    "M {x1} {y1} C {x1} {} {x2} {} {x2} {}",
                    y1 + bend,
                    y2.saturating_sub(bend),
                    y2.saturating_sub(2)
                ),
                label_x: (x1 + x2) / 2 + 6,
                label_y: (y1 + y2) / 2,
                count: counts
                    .steps
                    .get(&from.id)
                    .and_then(|s| s.outcomes.get(&e.outcome))
                    .copied()
                    .unwrap_or(0),
                outcome: e.outcome.clone(),
            })
        })
        .collect();
    Drawing {
        width: 2 * MARGIN + graph.widest.max(1) * column - GAP_X,
        height: 2 * MARGIN + graph.layers.max(1) * (NODE_H + GAP_Y) - GAP_Y,
        nodes,
        arrows,
    }
}

/// A journey's counts now: per step, who waits there and how many left by each outcome;
/// in all, entered, under way and how they ended. What the page polls.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Counts {
    steps: BTreeMap<String, StepCounts>,
    entered: u64,
    active: u64,
    exits: BTreeMap<String, u64>,
}

#[derive(Debug, Clone, Default, Serialize)]
struct StepCounts {
    waiting: u64,
    outcomes: BTreeMap<String, u64>,
}

fn counts(store: &Store, journey_id: i64) -> Result<Counts, StoreError> {
    let instances = Instances::of(store)?;
    let mut steps: BTreeMap<String, StepCounts> = BTreeMap::new();
    for (step, outcomes) in instances.step_counts(journey_id)? {
        steps.entry(step).or_default().outcomes = outcomes;
    }
    for (step, waiting) in instances.waiting_by_step(journey_id)? {
        steps.entry(step).or_default().waiting = waiting;
    }
    let totals = instances.totals()?.remove(&journey_id).unwrap_or_default();
    Ok(Counts {
        steps,
        entered: totals.entered,
        active: totals.active,
        exits: totals.exits,
    })
}

struct VersionRow {
    version: i64,
    published: String,
    live: bool,
}

struct ChangeRow {
    action: String,
    version: String,
    actor: String,
    at: String,
}

#[derive(Template)]
#[template(path = "journey.html")]
struct ShowPage {
    chrome: Chrome,
    slug: String,
    name: String,
    description: String,
    state: &'static str,
    state_class: &'static str,
    /// What is drawn: the live version, or the draft when never published.
    drawn: String,
    draft_differs: bool,
    drawing: Option<Drawing>,
    counts: Counts,
    converted: u64,
    rate: String,
    versions: Vec<VersionRow>,
    history: Vec<ChangeRow>,
    can_edit: bool,
    /// The lifecycle buttons this state allows: (action, label).
    actions: Vec<(&'static str, &'static str)>,
    /// The audiences a dry run may go over.
    audiences: Vec<String>,
    /// The dry run asked for: its audience and report, or why it could not run.
    dry_run: Option<(String, Result<DryRun, String>)>,
}

pub async fn show(
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
    let asked = query.dry_run.clone().filter(|a| !a.trim().is_empty());
    let (zone, require_opt_in) = (state.zone, state.require_opt_in);
    let loaded = blocking(lang, move || {
        let journeys = Journeys::of(&store)?;
        let Some(journey) = journeys.get(&slug)? else {
            return Ok(None);
        };
        let versions = journeys.versions(journey.id)?;
        let history = journeys.history(journey.id)?;
        let counts = counts(&store, journey.id)?;
        let audiences: Vec<String> = prossimo_decide::audiences::Audiences::of(&store)?
            .segments()?
            .into_iter()
            .map(|s| s.slug)
            .collect();
        let dry_run = match asked {
            None => None,
            Some(audience) => {
                let report = prossimo_journeys::dry_run(
                    &store,
                    &slug,
                    &audience,
                    store.now_ms(),
                    zone,
                    require_opt_in,
                );
                Some((
                    audience,
                    match report {
                        Ok(report) => Ok(report),
                        Err(JourneyError::Store(
                            e @ (StoreError::NotFound(_) | StoreError::Invalid(_)),
                        )) => Err(e.to_string()),
                        Err(JourneyError::Store(e)) => return Err(e),
                        Err(e) => Err(e.to_string()),
                    },
                ))
            }
        };
        Ok(Some((
            journey,
            versions,
            history,
            counts,
            (audiences, dry_run),
        )))
    })
    .await?;
    let Some((journey, versions, history, counts, (audiences, dry_run))) = loaded else {
        return Err(PageError::not_found(lang, t.journey_not_found));
    };
    let live = journey
        .live_version
        .and_then(|v| versions.iter().find(|r| r.version == v));
    let (drawn, definition) = match live {
        Some(version) => (
            format!("{} v{}", t.drawing_version, version.version),
            &version.definition,
        ),
        None => (t.drawing_draft.to_owned(), &journey.draft),
    };
    let drawing = serde_json::from_value::<Definition>(definition.clone())
        .ok()
        .map(|d| draw(&d, &counts));
    let totals = JourneyTotals {
        entered: counts.entered,
        active: counts.active,
        exits: counts.exits.clone(),
    };
    let can_edit = signed.role().allows(Role::Marketer);
    let draft_differs = live.is_some_and(|v| v.definition != journey.draft);
    // Publishing again only when there is something new to publish.
    let publish = (live.is_none() || draft_differs).then_some(("publish", t.publish));
    let actions: Vec<(&'static str, &'static str)> = match journey.state {
        JourneyState::Draft => [publish, Some(("archive", t.archive))]
            .into_iter()
            .flatten()
            .collect(),
        JourneyState::Published => [
            publish,
            Some(("pause", t.journey_pause)),
            Some(("archive", t.archive)),
        ]
        .into_iter()
        .flatten()
        .collect(),
        JourneyState::Paused => [
            Some(("resume", t.journey_resume)),
            publish,
            Some(("archive", t.archive)),
        ]
        .into_iter()
        .flatten()
        .collect(),
        JourneyState::Archived => Vec::new(),
    };
    let page = ShowPage {
        chrome: Chrome::signed(
            lang,
            &signed,
            &journey.name,
            "journeys",
            &path_and_query(&uri),
        ),
        draft_differs,
        drawn,
        drawing,
        converted: totals.converted(),
        rate: rate(&totals),
        counts,
        versions: versions
            .iter()
            .rev()
            .map(|v| VersionRow {
                version: v.version,
                published: human_millis(v.published_at),
                live: journey.live_version == Some(v.version),
            })
            .collect(),
        history: history
            .iter()
            .rev()
            .map(|c| ChangeRow {
                action: c.action.clone(),
                version: c.version.map(|v| format!("v{v}")).unwrap_or_default(),
                actor: c.actor.clone(),
                at: human_millis(c.at),
            })
            .collect(),
        state: state_name(journey.state, t),
        state_class: journey.state.as_str(),
        slug: journey.slug,
        name: journey.name,
        description: journey.description,
        can_edit,
        actions: if can_edit { actions } else { Vec::new() },
        audiences,
        dry_run,
    };
    respond(StatusCode::OK, &page, lang, query.lang.as_deref())
}

/// `GET /journeys/{slug}/counts`: the live counts the journey's page polls.
pub async fn live_counts(
    State(state): State<ConsoleState>,
    Path(slug): Path<String>,
    headers: HeaderMap,
    _signed: Signed,
) -> Result<Response, PageError> {
    let lang = Lang::choose(None, &headers);
    let store = state.store.clone();
    let found = blocking(lang, move || {
        let Some(journey) = Journeys::of(&store)?.get(&slug)? else {
            return Ok(None);
        };
        Ok(Some(counts(&store, journey.id)?))
    })
    .await?;
    match found {
        Some(counts) => Ok(Json(counts).into_response()),
        None => Err(PageError::not_found(lang, lang.texts().journey_not_found)),
    }
}

#[derive(Debug, Deserialize)]
pub struct StateForm {
    #[serde(default)]
    action: String,
    #[serde(default)]
    csrf: String,
}

/// `POST /journeys/{slug}/state`: publish, pause, resume or archive.
pub async fn change_state(
    State(state): State<ConsoleState>,
    Path(slug): Path<String>,
    headers: HeaderMap,
    signed: Signed,
    form: axum::Form<StateForm>,
) -> Result<Response, PageError> {
    let lang = Lang::choose(None, &headers);
    if !signed.csrf_ok(&form.csrf) || !signed.role().allows(Role::Marketer) {
        return Err(PageError::forbidden(lang));
    }
    let action = match form.action.as_str() {
        "publish" => None,
        "pause" => Some(LifecycleAction::Pause),
        "resume" => Some(LifecycleAction::Resume),
        "archive" => Some(LifecycleAction::Archive),
        _ => return Err(PageError::bad_request(lang)),
    };
    let (store, bus, actor, target) = (
        state.store.clone(),
        state.bus.clone(),
        signed.email().to_owned(),
        slug.clone(),
    );
    let refused = blocking(lang, move || {
        let done = match action {
            None => publish_journey(&store, Some(&bus), &target, &actor).map(|_| ()),
            Some(action) => {
                change_journey_state(&store, Some(&bus), &target, action, &actor).map(|_| ())
            }
        };
        match done {
            Ok(()) => Ok(None),
            Err(JourneyError::Store(StoreError::NotFound(_))) => Ok(Some(None)),
            Err(JourneyError::Store(e @ (StoreError::Conflict(_) | StoreError::Invalid(_)))) => {
                Ok(Some(Some(e.to_string())))
            }
            Err(JourneyError::Store(e)) => Err(e),
            Err(e) => Ok(Some(Some(e.to_string()))),
        }
    })
    .await?;
    match refused {
        Some(None) => Err(PageError::not_found(lang, lang.texts().journey_not_found)),
        Some(Some(message)) => Err(PageError::conflict(lang, message)),
        None => {
            tracing::info!(user = %signed.email(), %slug, action = %form.action, "journey changed in the console");
            Ok(Redirect::to(&format!("/journeys/{slug}")).into_response())
        }
    }
}

/// What is wrong with a definition, for the editor: every problem with its step and
/// field, or where the JSON itself breaks.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Verdict {
    valid: bool,
    steps: usize,
    problems: Vec<Problem>,
}

fn verdict(store: &Store, text: &str) -> Result<Verdict, StoreError> {
    let value: Value = match serde_json::from_str(text) {
        Ok(value) => value,
        Err(e) => {
            return Ok(Verdict {
                problems: vec![Problem {
                    step: None,
                    field: "definition".into(),
                    reason: format!("not JSON: {e}"),
                    line: u32::try_from(e.line()).ok(),
                    column: u32::try_from(e.column()).ok(),
                }],
                ..Verdict::default()
            });
        }
    };
    match check_definition(store, &value) {
        Ok(journey) => Ok(Verdict {
            valid: true,
            steps: journey.definition.steps.len(),
            problems: Vec::new(),
        }),
        Err(JourneyError::Shape(reason)) => Ok(Verdict {
            problems: vec![Problem {
                step: None,
                field: "definition".into(),
                reason,
                line: None,
                column: None,
            }],
            ..Verdict::default()
        }),
        Err(JourneyError::Problems(problems)) => Ok(Verdict {
            problems,
            ..Verdict::default()
        }),
        Err(JourneyError::Store(e)) => Err(e),
    }
}

#[derive(Debug, Deserialize)]
pub struct CheckBody {
    definition: String,
}

/// `POST /journeys/check` (JSON, `x-csrf-token` header): the editor's check as you type.
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
    let definition = body.0.definition;
    let checked = blocking(lang, move || verdict(&store, &definition)).await?;
    Ok(Json(checked).into_response())
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

#[derive(Template)]
#[template(path = "journey_editor.html")]
struct EditorPage {
    chrome: Chrome,
    editing: Option<String>,
    form: EditorForm,
    verdict: Option<Verdict>,
    refusal: Option<String>,
    can_save: bool,
}

/// A new journey starts from this: an abandoned cart.
const STARTER: &str = r#"{
  "trigger": {"event": {"name": "Checkout Started"}},
  "entry": {"instance_key": "properties.cart_id", "reentry": "always"},
  "goal": {"event": {"name": "Order Completed", "same_instance": true}},
  "steps": [
    {"id": "wait-order", "type": "wait", "until": {"event": {"name": "Order Completed", "same_instance": true}},
     "timeout": "1h", "on_timeout": "reminder"},
    {"id": "reminder", "type": "send", "channel": "email", "message": "cart-reminder", "topic": "offers"}
  ]
}"#;

/// A new journey for the people who enter `audience`: an e-mail two days later, in the
/// daytime.
fn from_audience(audience: &str) -> String {
    let definition = serde_json::json!({
        "trigger": {"audience_entered": audience},
        "steps": [
            {"id": "two-days", "type": "delay", "for": "2d",
             "window": {"from": "09:00", "to": "19:00"}, "next": "email"},
            {"id": "email", "type": "send", "channel": "email", "message": "MESSAGE-SLUG", "topic": "offers"}
        ]
    });
    serde_json::to_string_pretty(&definition).unwrap_or_default()
}

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
            t.new_journey,
            "journeys",
            &path_and_query(&uri),
        ),
        editing: None,
        form: EditorForm {
            definition: match query.audience.as_deref().map(str::trim) {
                Some(audience) if !audience.is_empty() => from_audience(audience),
                _ => STARTER.into(),
            },
            ..EditorForm::default()
        },
        verdict: None,
        refusal: None,
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
    let Some(journey) = blocking(lang, move || Journeys::of(&store)?.get(&wanted)).await? else {
        return Err(PageError::not_found(lang, t.journey_not_found));
    };
    let page = EditorPage {
        chrome: Chrome::signed(
            lang,
            &signed,
            &journey.name,
            "journeys",
            &path_and_query(&uri),
        ),
        editing: Some(slug),
        form: EditorForm {
            definition: serde_json::to_string_pretty(&journey.draft).unwrap_or_default(),
            slug: journey.slug,
            name: journey.name,
            description: journey.description,
            ..EditorForm::default()
        },
        verdict: None,
        refusal: None,
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

/// Check or save (a draft), and show the editor again with the outcome (or, after a
/// save, the journey's page). A draft may be saved with problems; only publishing needs
/// none.
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
    let (store, bus, actor) = (
        state.store.clone(),
        state.bus.clone(),
        signed.email().to_owned(),
    );
    let (text, slug, name, description) = (
        form.definition.clone(),
        form.slug.clone(),
        form.name.trim().to_owned(),
        form.description.trim().to_owned(),
    );
    let existing = editing.is_some();
    let outcome = blocking(lang, move || {
        let checked = verdict(&store, &text)?;
        if !saving {
            return Ok(Err((Some(checked), None)));
        }
        let Ok(definition) = serde_json::from_str::<Value>(&text) else {
            return Ok(Err((Some(checked), None)));
        };
        let input = JourneyInput {
            name: if name.is_empty() { slug.clone() } else { name },
            slug,
            description,
            definition,
        };
        match save_journey(&store, Some(&bus), &input, existing, &actor) {
            Ok(record) => Ok(Ok(record.slug)),
            Err(JourneyError::Store(
                e @ (StoreError::Conflict(_)
                | StoreError::Invalid(_)
                | StoreError::NotFound(_)
                | StoreError::TooLong { .. }),
            )) => Ok(Err((Some(checked), Some(e.to_string())))),
            Err(JourneyError::Store(e)) => Err(e),
            Err(e) => Ok(Err((Some(checked), Some(e.to_string())))),
        }
    })
    .await?;
    let (verdict, refusal) = match outcome {
        Ok(slug) => {
            tracing::info!(user = %signed.email(), %slug, "journey saved in the console");
            return Ok(Redirect::to(&format!("/journeys/{slug}")).into_response());
        }
        Err(shown) => shown,
    };
    let status = if refusal.is_some() || verdict.as_ref().is_some_and(|v| !v.valid) {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    let title = editing.clone().unwrap_or_else(|| t.new_journey.to_owned());
    let path = match &editing {
        Some(slug) => format!("/journeys/{slug}/edit"),
        None => "/journeys/new".to_owned(),
    };
    let page = EditorPage {
        chrome: Chrome::signed(lang, &signed, &title, "journeys", &path),
        editing,
        form,
        verdict,
        refusal,
        can_save,
    };
    render(status, &page, lang)
}

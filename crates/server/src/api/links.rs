//! The links in messages, signed by the store's secret; no sign-in, the token is the key.
//!
//! - `/u/{token}`: the one-click unsubscribe (RFC 8058), in the `List-Unsubscribe` header
//!   and the body. A GET shows the page and its button (a link opened by a scanner or a
//!   prefetching proxy changes nothing); a POST, from the button or from the mail
//!   client's one-click, unsubscribes.
//! - `/o/{token}`: the open pixel.
//! - `/c/{token}?u=…`: a tracked link, redirected to its target when the token signs it.

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use prossimo_messages::{Consents, Fetch, Links, Tracking, Unsubscribed};
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::routes;

use crate::api::Area;
use crate::{ApiError, AppState};

/// What the mail client sends for a one-click unsubscribe (RFC 8058).
const ONE_CLICK: &[u8] = b"List-Unsubscribe=One-Click";

fn page(title: &str, body: &str) -> String {
    format!(
        "<!doctype html><html lang=\"it\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width\">\
         <title>{title}</title><style>body{{font-family:system-ui,sans-serif;max-width:32rem;margin:4rem auto;padding:0 1rem;color:#222}}\
         button{{font-size:1rem;padding:.6rem 1.2rem;border-radius:.4rem;border:1px solid #444;background:#222;color:#fff;cursor:pointer}}\
         p.en{{color:#666}}</style></head><body>{body}</body></html>"
    )
}

fn not_ours() -> (StatusCode, Html<String>) {
    (
        StatusCode::NOT_FOUND,
        Html(page(
            "Link non valido",
            "<h1>Link non valido</h1><p>Questo link di disiscrizione non è valido o è scaduto.</p>\
             <p class=\"en\">This unsubscribe link is not valid.</p>",
        )),
    )
}

/// The unsubscribe page: what leaving means, and the button.
#[utoipa::path(get, path = "/u/{token}", tag = "messages",
    params(("token" = String, Path, description = "The signed token of a send's unsubscribe link")),
    responses(
        (status = 200, description = "The page with its button (nothing changes yet)", content_type = "text/html", body = String),
        (status = 404, description = "Not one of our links", content_type = "text/html", body = String),
    ))]
pub async fn show(
    State(state): State<AppState>,
    Path(token): Path<String>,
) -> Result<(StatusCode, Html<String>), ApiError> {
    let store = state.store.clone();
    let send = tokio::task::spawn_blocking(move || {
        let Some(id) = Links::of(&store)?.verify_unsubscribe(&token) else {
            return Ok(None);
        };
        prossimo_messages::Outbox::of(&store)?.by_id(id)
    })
    .await??;
    let Some(send) = send else {
        return Ok(not_ours());
    };
    let what = send.topic.as_deref().map_or_else(
        || "tutte le nostre comunicazioni".to_owned(),
        |t| format!("le comunicazioni «{}»", html_escape(t)),
    );
    Ok((
        StatusCode::OK,
        Html(page(
            "Disiscrizione",
            &format!(
                "<h1>Vuoi disiscriverti?</h1><p>Non riceverai più {what} via {channel}.</p>\
                 <p class=\"en\">You will no longer receive these messages.</p>\
                 <form method=\"post\"><button type=\"submit\">Disiscrivimi / Unsubscribe</button></form>",
                channel = if send.channel.as_str() == "email" {
                    "e-mail"
                } else {
                    send.channel.as_str()
                },
            ),
        )),
    ))
}

/// Unsubscribes: the person who got the send leaves its topic (or the whole channel when
/// it had none), with the change in their consent history and a `Message Unsubscribed`
/// event on their timeline. Doing it again changes nothing.
#[utoipa::path(post, path = "/u/{token}", tag = "messages",
    params(("token" = String, Path, description = "The signed token of a send's unsubscribe link")),
    request_body(content = String, content_type = "application/x-www-form-urlencoded", description = "List-Unsubscribe=One-Click from a mail client, or the page's button"),
    responses(
        (status = 200, description = "Unsubscribed", content_type = "text/html", body = String),
        (status = 404, description = "Not one of our links", content_type = "text/html", body = String),
    ))]
pub async fn unsubscribe(
    State(state): State<AppState>,
    Path(token): Path<String>,
    body: Bytes,
) -> Result<(StatusCode, Html<String>), ApiError> {
    let source = if body.windows(ONE_CLICK.len()).any(|w| w == ONE_CLICK) {
        "one_click"
    } else {
        "unsubscribe_link"
    };
    let store = state.store.clone();
    let done: Option<Unsubscribed> = tokio::task::spawn_blocking(move || {
        let links = Links::of(&store)?;
        Consents::of(&store)?.unsubscribe(&links, &token, source)
    })
    .await??;
    if done.is_none() {
        return Ok(not_ours());
    }
    state.bus.publish(prossimo_bus::Happened::EventsCommitted {
        buyers: std::sync::Arc::from([]),
    });
    Ok((
        StatusCode::OK,
        Html(page(
            "Disiscrizione completata",
            "<h1>Fatto</h1><p>Sei stato disiscritto.</p><p class=\"en\">You have been unsubscribed.</p>",
        )),
    ))
}

/// A transparent 1×1 GIF.
const PIXEL: &[u8] = &[
    0x47, 0x49, 0x46, 0x38, 0x39, 0x61, 0x01, 0x00, 0x01, 0x00, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00,
    0xff, 0xff, 0xff, 0x21, 0xf9, 0x04, 0x01, 0x00, 0x00, 0x00, 0x00, 0x2c, 0x00, 0x00, 0x00, 0x00,
    0x01, 0x00, 0x01, 0x00, 0x00, 0x02, 0x02, 0x44, 0x01, 0x00, 0x3b,
];

fn fetch(state: &AppState, headers: &HeaderMap) -> Fetch {
    Fetch {
        user_agent: headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        at: state.store.now_ms(),
    }
}

/// The open pixel: records `Message Opened` (with `machine`) and answers the image.
#[utoipa::path(get, path = "/o/{token}", tag = "messages",
    params(("token" = String, Path, description = "The signed token of a send's open pixel")),
    responses(
        (status = 200, description = "A transparent 1×1 GIF (also for a token that is not ours, recording nothing)", content_type = "image/gif", body = Vec<u8>),
    ))]
pub async fn open(
    State(state): State<AppState>,
    Path(token): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let fetch = fetch(&state, &headers);
    let store = state.store.clone();
    let recorded =
        tokio::task::spawn_blocking(move || Tracking::of(&store)?.open(&token, &fetch)).await??;
    if recorded {
        state.bus.publish(prossimo_bus::Happened::EventsCommitted {
            buyers: std::sync::Arc::from([]),
        });
    }
    Ok((
        [
            (header::CONTENT_TYPE, "image/gif"),
            (header::CACHE_CONTROL, "no-store, max-age=0"),
        ],
        PIXEL,
    )
        .into_response())
}

/// Where a tracked link leads.
#[derive(Deserialize, IntoParams)]
pub struct ClickQuery {
    /// The link's target, as the message had it.
    u: String,
}

/// A tracked link: records `Message Clicked` (with the URL and `machine`) and redirects to
/// the target, only when the token signs that very target.
#[utoipa::path(get, path = "/c/{token}", tag = "messages",
    params(("token" = String, Path, description = "The signed token of a send's link"), ClickQuery),
    responses(
        (status = 302, description = "Redirected to the link's target"),
        (status = 404, description = "Not one of our links", content_type = "text/html", body = String),
    ))]
pub async fn click(
    State(state): State<AppState>,
    Path(token): Path<String>,
    Query(query): Query<ClickQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let fetch = fetch(&state, &headers);
    let store = state.store.clone();
    let target =
        tokio::task::spawn_blocking(move || Tracking::of(&store)?.click(&token, &query.u, &fetch))
            .await??;
    let Some(target) = target else {
        return Ok(not_ours().into_response());
    };
    state.bus.publish(prossimo_bus::Happened::EventsCommitted {
        buyers: std::sync::Arc::from([]),
    });
    Ok((StatusCode::FOUND, [(header::LOCATION, target)]).into_response())
}

fn html_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

pub(crate) fn routes() -> Area {
    Area::new()
        .routes(routes!(show, unsubscribe))
        .routes(routes!(open))
        .routes(routes!(click))
}

//! The one-click unsubscribe of a message (RFC 8058): the link in its `List-Unsubscribe`
//! header and in its body. A GET shows the page and its button (a link opened by a
//! scanner or a prefetching proxy changes nothing); a POST, from the button or from the
//! mail client's one-click, unsubscribes. No sign-in: the signed token is the key.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Html;
use prossimo_messages::{Consents, Links, Unsubscribed};
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

fn html_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

pub(crate) fn routes() -> Area {
    Area::new().routes(routes!(show, unsubscribe))
}

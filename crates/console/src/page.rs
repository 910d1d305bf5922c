//! What every page shares: the frame around it (language, the signed-in person, the
//! sign-out form with its CSRF token), the session check, and error pages.

use askama::Template;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use prossimo_store::StoreError;

use crate::ConsoleState;
use crate::auth::{self, Signed};
use crate::i18n::{LANG_COOKIE, Lang, Texts};

/// The frame of a page.
pub struct Chrome {
    pub lang: Lang,
    pub t: &'static Texts,
    pub title: String,
    /// `None` on the sign-in page.
    pub user: Option<(String, String)>,
    pub csrf: String,
    /// Which top-level section is open, for `aria-current`.
    pub section: &'static str,
    /// This page in the other language.
    pub switch_href: String,
}

impl Chrome {
    pub fn anonymous(lang: Lang, title: &str, path: &str) -> Chrome {
        Chrome {
            lang,
            t: lang.texts(),
            title: title.to_owned(),
            user: None,
            csrf: String::new(),
            section: "",
            switch_href: switch_href(path, lang),
        }
    }

    pub fn signed(
        lang: Lang,
        signed: &Signed,
        title: &str,
        section: &'static str,
        path: &str,
    ) -> Chrome {
        Chrome {
            lang,
            t: lang.texts(),
            title: title.to_owned(),
            user: Some((signed.email().to_owned(), signed.role().to_string())),
            csrf: signed.csrf().to_owned(),
            section,
            switch_href: switch_href(path, lang),
        }
    }

    pub fn other_lang(&self) -> Lang {
        self.lang.other()
    }
}

/// `path` (which may carry a query) with `lang` set to the other language.
fn switch_href(path: &str, lang: Lang) -> String {
    let (base, query) = path.split_once('?').unwrap_or((path, ""));
    let mut pairs: Vec<&str> = query
        .split('&')
        .filter(|p| !p.is_empty() && !p.starts_with("lang="))
        .collect();
    let lang_pair = format!("lang={}", lang.other().code());
    pairs.push(&lang_pair);
    format!("{base}?{}", pairs.join("&"))
}

/// The request's path with its query, to link to the same page in the other language.
pub fn path_and_query(uri: &axum::http::Uri) -> String {
    uri.path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| uri.path().to_owned())
}

/// Renders a template as an HTML response.
pub fn render(status: StatusCode, page: &impl Template, lang: Lang) -> Result<Response, PageError> {
    let html = page.render().map_err(|e| {
        tracing::error!(error = %e, "console template failed");
        PageError::internal(lang)
    })?;
    let mut response = (status, Html(html)).into_response();
    protect(response.headers_mut());
    Ok(response)
}

/// A page rendered in `lang`, with the language chosen by `?lang=` remembered.
pub fn respond(
    status: StatusCode,
    page: &impl Template,
    lang: Lang,
    chosen: Option<&str>,
) -> Result<Response, PageError> {
    Ok(remember_lang(render(status, page, lang)?, chosen))
}

/// What an editor's form may do: its CSRF token must hold, and saving needs a marketer
/// or an admin. Whether the person may save.
pub fn editor_rights(
    signed: &crate::auth::Signed,
    csrf: &str,
    saving: bool,
    lang: Lang,
) -> Result<bool, PageError> {
    if !signed.csrf_ok(csrf) {
        return Err(PageError::forbidden(lang));
    }
    let can_save = signed.role().allows(crate::users::Role::Marketer);
    if saving && !can_save {
        return Err(PageError::forbidden(lang));
    }
    Ok(can_save)
}

/// Remembers a language chosen with `?lang=` in a cookie.
pub fn remember_lang(mut response: Response, chosen: Option<&str>) -> Response {
    if let Some(lang) = chosen.and_then(Lang::parse) {
        let cookie = format!(
            "{LANG_COOKIE}={}; Path=/; Max-Age=31536000; SameSite=Lax",
            lang.code()
        );
        if let Ok(value) = HeaderValue::from_str(&cookie) {
            response.headers_mut().append(header::SET_COOKIE, value);
        }
    }
    response
}

/// Runs store work off the async workers; a store error becomes the matching page.
pub async fn blocking<T: Send + 'static>(
    lang: Lang,
    work: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, PageError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|_| PageError::internal(lang))?
        .map_err(|e| PageError::store(lang, e))
}

/// The session behind the request's cookie, if it is live.
pub async fn signed_in(
    state: &ConsoleState,
    headers: &HeaderMap,
    lang: Lang,
) -> Result<Option<Signed>, PageError> {
    let Some(token) = auth::cookie(headers, auth::SESSION_COOKIE)
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
    else {
        return Ok(None);
    };
    let store = state.store.clone();
    let session = blocking(lang, move || {
        crate::users::Users::of(&store)?.session(&token)
    })
    .await?;
    Ok(session.map(|session| Signed { session }))
}

impl FromRequestParts<ConsoleState> for Signed {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &ConsoleState,
    ) -> Result<Signed, Response> {
        let lang = Lang::choose(None, &parts.headers);
        match signed_in(state, &parts.headers, lang).await {
            Ok(Some(signed)) => Ok(signed),
            // The page's scripts ask for JSON: a redirect to the sign-in page would look
            // like success to them.
            Ok(None) if wants_json(&parts.headers) => Err((
                StatusCode::UNAUTHORIZED,
                axum::Json(prossimo_model::ErrorBody::<()>::new(
                    prossimo_model::ErrorCode::Unauthorized,
                    "signed out",
                    Vec::new(),
                )),
            )
                .into_response()),
            Ok(None) => Err(Redirect::to("/login").into_response()),
            Err(e) => Err(e.into_response()),
        }
    }
}

fn wants_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("application/json"))
}

/// Headers every console page carries: pages show personal data, so they are never
/// cached by shared caches, never framed elsewhere, and load only the server's assets.
fn protect(headers: &mut HeaderMap) {
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert("x-frame-options", HeaderValue::from_static("DENY"));
    headers.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        "content-security-policy",
        HeaderValue::from_static(
            "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; form-action 'self'; frame-ancestors 'none'",
        ),
    );
}

/// A page that could not be shown, rendered in the person's language.
#[derive(Debug)]
pub struct PageError {
    status: StatusCode,
    lang: Lang,
    message: std::borrow::Cow<'static, str>,
}

impl PageError {
    pub fn not_found(lang: Lang, message: &'static str) -> PageError {
        PageError {
            status: StatusCode::NOT_FOUND,
            lang,
            message: message.into(),
        }
    }

    /// The change clashes with what is stored; `message` says how.
    pub fn conflict(lang: Lang, message: String) -> PageError {
        PageError {
            status: StatusCode::CONFLICT,
            lang,
            message: message.into(),
        }
    }

    pub fn forbidden(lang: Lang) -> PageError {
        PageError {
            status: StatusCode::FORBIDDEN,
            lang,
            message: lang.texts().forbidden.into(),
        }
    }

    pub fn bad_request(lang: Lang) -> PageError {
        PageError {
            status: StatusCode::BAD_REQUEST,
            lang,
            message: lang.texts().bad_request.into(),
        }
    }

    pub fn internal(lang: Lang) -> PageError {
        PageError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            lang,
            message: lang.texts().error_text.into(),
        }
    }

    /// A store error as a page, with the status the API would answer it with
    /// ([`StoreError::code`]).
    pub fn store(lang: Lang, e: StoreError) -> PageError {
        use prossimo_model::ErrorCode;
        let code = e.code();
        match code {
            ErrorCode::BadRequest | ErrorCode::InvalidField => PageError::bad_request(lang),
            ErrorCode::NotFound => PageError::not_found(lang, lang.texts().not_found),
            ErrorCode::Conflict => PageError {
                status: StatusCode::CONFLICT,
                lang,
                message: lang.texts().conflict.into(),
            },
            ErrorCode::Unavailable => {
                tracing::warn!(error = %e, "console: storage unavailable");
                PageError {
                    status: StatusCode::SERVICE_UNAVAILABLE,
                    ..PageError::internal(lang)
                }
            }
            _ => {
                tracing::error!(error = %e, "console: storage error");
                PageError::internal(lang)
            }
        }
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage {
    chrome: Chrome,
    message: String,
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let t = self.lang.texts();
        let title = match self.status {
            StatusCode::NOT_FOUND => t.not_found,
            _ => t.error_title,
        };
        let page = ErrorPage {
            chrome: Chrome::anonymous(self.lang, title, "/"),
            message: self.message.into_owned(),
        };
        let mut response = match page.render() {
            Ok(html) => (self.status, Html(html)).into_response(),
            Err(_) => (self.status, page.message).into_response(),
        };
        protect(response.headers_mut());
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_language_switch_keeps_the_query() {
        assert_eq!(switch_href("/customers", Lang::En), "/customers?lang=it");
        assert_eq!(
            switch_href("/customers?q=anna&lang=en", Lang::En),
            "/customers?q=anna&lang=it"
        );
        assert_eq!(
            switch_href("/customers/7?channel=web", Lang::It),
            "/customers/7?channel=web&lang=en"
        );
    }
}

//! What providers report back, signed by them: an SMS provider's status callbacks
//! (`/hooks/sms/{token}`, Twilio's shape, `X-Twilio-Signature`). No sign-in: the token
//! names the send, the signature proves the provider sent it.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use prossimo_messages::{Deliveries, sms_report, verify_signature};
use prossimo_store::StoreError;
use utoipa_axum::routes;

use crate::api::Area;
use crate::api::doc::ErrorBody;
use crate::{ApiError, AppState};

/// What checks an SMS provider's status callbacks.
#[derive(Clone)]
pub struct SmsCallbacks {
    /// The provider's auth token: the key of its signatures.
    pub auth_token: String,
    /// The base the callbacks were given under (`https://crm.negozio.it`), as signed.
    pub base: String,
}

impl std::fmt::Debug for SmsCallbacks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmsCallbacks")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

/// An SMS provider reports what became of a text: `delivered` is recorded as `Message
/// Delivered`, `undelivered` and `failed` as `Message Bounced` (hard for an unknown or
/// landline number, which also opts the person out of SMS); the steps on the way are
/// acknowledged and not recorded. Each once, however often the provider reports it.
#[utoipa::path(post, path = "/hooks/sms/{token}", tag = "messages",
    params(
        ("token" = String, Path, description = "The signed token of the send, from its StatusCallback URL"),
        ("X-Twilio-Signature" = String, Header, description = "The provider's signature of the URL and form"),
    ),
    request_body(content = String, content_type = "application/x-www-form-urlencoded",
        description = "Twilio's status callback: MessageSid, MessageStatus, ErrorCode, …"),
    responses(
        (status = 204, description = "Recorded (or a step on the way, acknowledged)"),
        (status = 401, description = "Not signed by the provider", body = ErrorBody),
        (status = 404, description = "No SMS provider is configured, or not one of our sends", body = ErrorBody),
    ))]
pub async fn sms_status(
    State(state): State<AppState>,
    Path(token): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    let Some(callbacks) = state.sms_callbacks.clone() else {
        return Err(ApiError::NotFound("no SMS provider is configured".into()));
    };
    let fields: Vec<(String, String)> = url::form_urlencoded::parse(&body)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let url = format!("{}/hooks/sms/{token}", callbacks.base.trim_end_matches('/'));
    let signed = headers
        .get("x-twilio-signature")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|claimed| verify_signature(&callbacks.auth_token, &url, &fields, claimed));
    if !signed {
        return Err(ApiError::Unauthorized(
            "X-Twilio-Signature does not sign this callback".into(),
        ));
    }
    let field = |name: &str| {
        fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    let report = sms_report(
        field("MessageStatus").as_deref().unwrap_or_default(),
        field("ErrorCode").as_deref(),
    );
    let store = state.store.clone();
    let recorded = tokio::task::spawn_blocking(move || -> Result<Option<bool>, StoreError> {
        let deliveries = Deliveries::of(&store)?;
        let Some(send) = deliveries.sms_send(&token)? else {
            return Ok(None);
        };
        match report {
            Some(report) => Ok(Some(deliveries.record(&send, &report, store.now_ms())?)),
            None => Ok(Some(false)),
        }
    })
    .await??;
    match recorded {
        None => Err(ApiError::NotFound("not one of our sends".into())),
        Some(new) => {
            if new {
                state.bus.publish(prossimo_bus::Happened::EventsCommitted {
                    buyers: std::sync::Arc::from([]),
                });
            }
            Ok(StatusCode::NO_CONTENT)
        }
    }
}

pub(crate) fn routes() -> Area {
    Area::new().routes(routes!(sms_status))
}

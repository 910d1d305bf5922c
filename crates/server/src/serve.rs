//! The server loop: HTTP/1 connections with the limits a public endpoint needs, and a
//! graceful stop.
//!
//! `axum::serve` sets no timeouts, so a half-sent request header or an idle keep-alive
//! connection stayed open for minutes (slowloris), and enough of them exhausted the file
//! limit. Here every connection has:
//! - a header-read timeout, which also bounds how long a keep-alive connection may idle
//!   (hyper starts it whenever it waits for the next request's head);
//! - a deadline for reading the request body, counted from its head;
//! - a place among at most `max_connections`: past that the server stops accepting until
//!   one closes, and the rest wait in the kernel's backlog.
//!
//! On shutdown the listener is closed first (new connections are refused), idle
//! connections close, requests in flight finish and get their answers, for at most
//! `shutdown_grace`.

use std::error::Error as StdError;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::ConnectInfo;
use axum::extract::Request;
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use hyper::body::{Frame, Incoming, SizeHint};
use hyper_util::rt::{TokioIo, TokioTimer};
use prossimo_model::ErrorCode;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tokio::time::Sleep;
use tower::ServiceExt;

use crate::ApiError;

/// The connection limits and the stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServeConfig {
    /// Longest wait for a request's head, and so for the next request on an idle
    /// keep-alive connection.
    pub header_read_timeout: Duration,
    /// Longest time to receive a request's body, from its head.
    pub body_read_timeout: Duration,
    /// Connections served at once.
    pub max_connections: usize,
    /// On shutdown, how long requests in flight may take to finish.
    pub shutdown_grace: Duration,
}

impl Default for ServeConfig {
    fn default() -> Self {
        ServeConfig {
            header_read_timeout: Duration::from_secs(30),
            body_read_timeout: Duration::from_secs(60),
            max_connections: 4_096,
            shutdown_grace: Duration::from_secs(25),
        }
    }
}

/// The longest request target (path and query) answered; longer is a JSON 414.
pub const MAX_URI_BYTES: usize = 8 * 1024;
/// The most header bytes (names and values) a request may carry; more is a JSON 431.
pub const MAX_HEADER_BYTES: usize = 32 * 1024;
/// The most headers a request may carry; more is a JSON 431.
pub const MAX_HEADERS: usize = 100;
/// hyper's own limits sit above ours, so a request over ours still reaches the router and
/// gets the catalogue's JSON; only one beyond these gets hyper's bare 431 or 414.
const HYPER_MAX_BUF: usize = 256 * 1024;
const HYPER_MAX_HEADERS: usize = 2 * MAX_HEADERS;

/// Serves `router` on `listener` until `shutdown` resolves, then stops gracefully.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    config: ServeConfig,
    shutdown: impl Future<Output = ()>,
) {
    let places = Arc::new(Semaphore::new(config.max_connections.max(1)));
    let (closing, closing_rx) = watch::channel(false);
    let mut connections = JoinSet::new();
    let mut shutdown = pin!(shutdown);
    loop {
        while connections.try_join_next().is_some() {}
        let place = tokio::select! {
            () = &mut shutdown => break,
            place = places.clone().acquire_owned() => match place {
                Ok(place) => place,
                Err(_) => break,
            },
        };
        let (stream, peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors, or a connection reset before it was taken:
                    // wait a moment rather than spin.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let router = router.clone();
        let closing = closing_rx.clone();
        connections.spawn(async move {
            connection(stream, peer, router, config, closing).await;
            drop(place);
        });
    }
    drop(listener);
    let open = connections.len();
    tracing::info!(open, "stopped accepting; finishing requests in flight");
    let _ = closing.send(true);
    let drained = tokio::time::timeout(config.shutdown_grace, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            still_open = connections.len(),
            grace_seconds = config.shutdown_grace.as_secs_f64(),
            "requests still running after the grace period were cut off"
        );
        connections.abort_all();
    }
}

async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    router: Router,
    config: ServeConfig,
    mut closing: watch::Receiver<bool>,
) {
    let _ = stream.set_nodelay(true);
    let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
        let mut request =
            request.map(|body| Body::new(Deadline::new(body, config.body_read_timeout)));
        // The console limits failed sign-ins per client address.
        request.extensions_mut().insert(ConnectInfo(peer));
        router.clone().oneshot(request)
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(config.header_read_timeout)
        .max_buf_size(HYPER_MAX_BUF)
        .max_headers(HYPER_MAX_HEADERS);
    let mut conn = pin!(builder.serve_connection(TokioIo::new(stream), service));
    let mut asked_to_close = *closing.borrow();
    if asked_to_close {
        conn.as_mut().graceful_shutdown();
    }
    loop {
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(%peer, error = %e, "connection ended");
                }
                return;
            }
            changed = closing.changed(), if !asked_to_close => {
                asked_to_close = true;
                if changed.is_ok() {
                    conn.as_mut().graceful_shutdown();
                }
            }
        }
    }
}

/// A request body that fails once its deadline has passed.
struct Deadline {
    inner: Incoming,
    expires: Pin<Box<Sleep>>,
}

impl Deadline {
    fn new(inner: Incoming, after: Duration) -> Deadline {
        Deadline {
            inner,
            expires: Box::pin(tokio::time::sleep(after)),
        }
    }
}

/// The request body did not arrive in time.
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive in time")]
pub struct BodyTimeout;

impl http_body::Body for Deadline {
    type Data = Bytes;
    type Error = Box<dyn StdError + Send + Sync>;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        if this.expires.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Some(Err(Box::new(BodyTimeout))));
        }
        Pin::new(&mut this.inner)
            .poll_frame(cx)
            .map_err(|e| Box::new(e) as Self::Error)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Whether `error` (or what caused it) is a body that missed its deadline.
pub fn is_body_timeout(error: &(dyn StdError + 'static)) -> bool {
    let mut current = Some(error);
    while let Some(e) = current {
        if e.is::<BodyTimeout>() {
            return true;
        }
        current = e.source();
    }
    false
}

/// Middleware: a request target or header block over the limits is refused with the
/// catalogue's JSON before any handler runs.
pub async fn request_limits(request: Request, next: Next) -> Response {
    let uri_bytes = request
        .uri()
        .path_and_query()
        .map_or(0, |pq| pq.as_str().len());
    if uri_bytes > MAX_URI_BYTES {
        return ApiError::Http {
            code: ErrorCode::UriTooLong,
            message: format!("the request target is {uri_bytes} bytes; at most {MAX_URI_BYTES}"),
        }
        .into_response();
    }
    let headers = request.headers();
    let header_bytes: usize = headers
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len())
        .sum();
    if headers.len() > MAX_HEADERS || header_bytes > MAX_HEADER_BYTES {
        return ApiError::Http {
            code: ErrorCode::HeadersTooLarge,
            message: format!(
                "{} headers of {header_bytes} bytes; at most {MAX_HEADERS} headers and {MAX_HEADER_BYTES} bytes",
                headers.len()
            ),
        }
        .into_response();
    }
    next.run(request).await
}

/// Middleware: an error answered by something other than our handlers (axum's rejections
/// of a path or query, a body limit) is rewritten as the catalogue's JSON with the same
/// status. The console's HTML pages and our own JSON pass untouched.
pub async fn json_errors(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let content_type = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if content_type.starts_with("application/json") || content_type.starts_with("text/html") {
        return response;
    }
    let (parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, 4 * 1024)
        .await
        .unwrap_or_default();
    let text = String::from_utf8_lossy(&text).trim().to_owned();
    let message = if text.is_empty() {
        status.canonical_reason().unwrap_or("error").to_owned()
    } else {
        text
    };
    let code = ErrorCode::for_status(status.as_u16());
    let mut json = ApiError::Http { code, message }.into_response();
    for name in [header::ALLOW, header::RETRY_AFTER] {
        if let Some(value) = parts.headers.get(&name) {
            json.headers_mut().insert(name, value.clone());
        }
    }
    json
}

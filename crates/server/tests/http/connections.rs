//! The server loop over real sockets: timeouts, the connection bound, the graceful stop.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use prossimo_server::{ServeConfig, serve};

use crate::harness::*;

struct Live {
    addr: std::net::SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    done: tokio::task::JoinHandle<()>,
    app: TestApp,
}

const SHORT: Duration = Duration::from_millis(300);

async fn live(max_connections: usize) -> Live {
    let app = TestApp::new();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let config = ServeConfig {
        header_read_timeout: SHORT,
        body_read_timeout: SHORT,
        max_connections,
        shutdown_grace: Duration::from_secs(10),
    };
    let router = app.router.clone();
    let done = tokio::spawn(serve(listener, router, config, async {
        let _ = stopped.await;
    }));
    Live {
        addr,
        stop: Some(stop),
        done,
        app,
    }
}

/// Reads until the server closes the connection (at most 10 s); what it sent.
async fn until_closed(stream: &mut TcpStream) -> String {
    let mut all = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut all)).await;
    assert!(read.is_ok(), "the server kept the connection open");
    String::from_utf8_lossy(&all).into_owned()
}

fn track_request(key: &str, body: &str, declared_length: usize) -> String {
    format!(
        "POST /v1/track HTTP/1.1\r\nHost: x\r\nAuthorization: {}\r\nContent-Type: application/json\r\nContent-Length: {declared_length}\r\n\r\n{body}",
        basic(&format!("{key}:"))
    )
}

#[tokio::test]
async fn half_sent_headers_idle_connections_and_slow_bodies_are_closed() {
    let live = live(16).await;
    // Slowloris: a request head that never ends.
    let mut slow_head = TcpStream::connect(live.addr).await.unwrap();
    slow_head
        .write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    until_closed(&mut slow_head).await;

    // An idle keep-alive connection after one answered request.
    let mut idle = TcpStream::connect(live.addr).await.unwrap();
    idle.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let answered = until_closed(&mut idle).await;
    assert!(answered.starts_with("HTTP/1.1 200"), "{answered}");

    // A body that stops arriving: 408 with the catalogue's JSON, and nothing stored.
    let body = r#"{"userId": "slow", "event": "E"}"#;
    let mut slow_body = TcpStream::connect(live.addr).await.unwrap();
    let request = track_request(&live.app.write_key, &body[..10], body.len());
    slow_body.write_all(request.as_bytes()).await.unwrap();
    let answer = until_closed(&mut slow_body).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains(r#""code":"request_timeout""#), "{answer}");
    assert_eq!(live.app.store.event_count().unwrap(), 0);
}

#[tokio::test]
async fn no_more_than_max_connections_are_served_at_once() {
    let live = live(1).await;
    let mut first = TcpStream::connect(live.addr).await.unwrap();
    first
        .write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut answer = [0u8; 12];
    first.read_exact(&mut answer).await.unwrap();
    assert_eq!(&answer, b"HTTP/1.1 200");
    // The only place is taken by the first (kept alive): the second waits in the
    // backlog, unanswered, until the first closes.
    let mut second = TcpStream::connect(live.addr).await.unwrap();
    second
        .write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut byte = [0u8; 1];
    let early = tokio::time::timeout(SHORT / 3, second.read(&mut byte)).await;
    assert!(early.is_err(), "answered while the only place was taken");
    drop(first);
    let rest = until_closed(&mut second).await;
    assert!(rest.contains("200 OK"), "{rest}");
}

#[tokio::test]
async fn a_stop_finishes_requests_in_flight_then_refuses_new_connections() {
    let mut live = live(16).await;
    let body = r#"{"userId": "in-flight", "event": "Stopped Gracefully"}"#;
    let mut in_flight = TcpStream::connect(live.addr).await.unwrap();
    let request = track_request(&live.app.write_key, &body[..20], body.len());
    in_flight.write_all(request.as_bytes()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    live.stop.take().unwrap().send(()).unwrap();
    // The rest of the body arrives after the stop: the request is still answered.
    tokio::time::sleep(Duration::from_millis(50)).await;
    in_flight.write_all(&body.as_bytes()[20..]).await.unwrap();
    let answer = until_closed(&mut in_flight).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    tokio::time::timeout(Duration::from_secs(10), &mut live.done)
        .await
        .expect("serve returned")
        .unwrap();
    assert!(
        TcpStream::connect(live.addr).await.is_err(),
        "still accepting"
    );
    assert_eq!(live.app.store.event_count().unwrap(), 1);
}

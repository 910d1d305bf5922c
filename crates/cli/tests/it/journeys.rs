//! `prossimo journey` on a real store: the documented examples, problems named by file,
//! step and field, and a journey's life.

use std::path::PathBuf;

use crate::common::{prossimo, text};

fn example(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("../../docs/journeys/{name}.json"))
}

#[test]
fn journey_command_checks_saves_publishes_and_pauses() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let cart = example("abandoned-cart");
    let out = prossimo(data, &["journey", "validate", cart.to_str().unwrap()]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(stdout.contains("a valid journey of 6 step(s)"), "{stdout}");

    // The win-back example names audiences this store does not have: each problem with
    // the file, the field and, inside a condition, where.
    let win_back = example("win-back");
    let out = prossimo(data, &["journey", "validate", win_back.to_str().unwrap()]);
    let (_, stderr) = text(&out);
    assert!(!out.status.success());
    assert!(
        stderr
            .contains("win-back.json: trigger.audience_entered: there is no audience \"lapsing\""),
        "{stderr}"
    );
    assert!(
        stderr.contains(
            "exit_when.condition: there is no audience \"complained\" (line 1, column 9)"
        ),
        "{stderr}"
    );
    assert!(
        stderr.contains("step \"still-away\", until.condition: there is no audience \"lapsing\""),
        "{stderr}"
    );

    // Not a journey's shape: the file, its line and column, and the field.
    let typo = dir.path().join("typo.json");
    std::fs::write(&typo, "{\n  \"trigger\": \"api\",\n  \"stepz\": []\n}\n").unwrap();
    let out = prossimo(data, &["journey", "save", "typo", typo.to_str().unwrap()]);
    let (_, stderr) = text(&out);
    assert!(!out.status.success());
    assert!(stderr.contains("typo.json:3:"), "{stderr}");
    assert!(stderr.contains("stepz"), "{stderr}");

    let out = prossimo(
        data,
        &[
            "journey",
            "save",
            "abandoned-cart",
            cart.to_str().unwrap(),
            "--name",
            "Carrello abbandonato",
        ],
    );
    assert!(out.status.success(), "{}", text(&out).1);
    let out = prossimo(data, &["journey", "publish", "abandoned-cart"]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stdout.contains("published abandoned-cart v1 (published)"),
        "{stdout}"
    );
    let out = prossimo(data, &["journey", "pause", "abandoned-cart"]);
    assert!(out.status.success(), "{}", text(&out).1);
    let out = prossimo(data, &["journey", "pause", "abandoned-cart"]);
    let (_, stderr) = text(&out);
    assert!(!out.status.success());
    assert!(
        stderr.contains("a paused journey cannot be paused"),
        "{stderr}"
    );

    let out = prossimo(data, &["journey", "list"]);
    let (stdout, _) = text(&out);
    assert!(
        stdout.contains("abandoned-cart") && stdout.contains("paused") && stdout.contains("v1"),
        "{stdout}"
    );
    let out = prossimo(data, &["journey", "show", "abandoned-cart"]);
    let (stdout, _) = text(&out);
    assert!(stdout.contains("Carrello abbandonato"), "{stdout}");
    assert!(stdout.contains("\"give-them-an-hour\""), "{stdout}");
    assert!(stdout.contains("publish v1 by cli"), "{stdout}");
}

/// `kill -9` twice while customers flow through a journey (once while their timers wait,
/// once as they come due and their e-mails start to go out): after the restarts every
/// timer has fired and every customer's e-mail was handed over once (a send caught
/// mid-handover would be `uncertain`, never sent again), none lost.
#[test]
fn kill_9_loses_no_timer_and_sends_nothing_twice() {
    use std::time::{Duration, Instant};

    use serde_json::{Value, json};

    use crate::common::{ADMIN_TOKEN, Server, WRITE_KEY, client};

    const CUSTOMERS: usize = 150;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let http = client();
    let admin = |server: &Server, method: reqwest::Method, path: &str, body: Option<Value>| {
        let mut request = http
            .request(method, server.url(path))
            .bearer_auth(ADMIN_TOKEN);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().unwrap();
        let status = response.status();
        let text = response.text().unwrap();
        assert!(status.is_success(), "{path}: {status} {text}");
        serde_json::from_str::<Value>(&text).unwrap_or(Value::Null)
    };

    let server = Server::start(data);
    admin(
        &server,
        reqwest::Method::POST,
        "/v1/messages",
        Some(json!({
        "slug": "promemoria", "name": "Promemoria", "channel": "email", "format": "text",
        "subject": "Il tuo carrello", "body": "Ciao {{ profile.first_name }}"})),
    );
    admin(
        &server,
        reqwest::Method::POST,
        "/v1/journeys",
        Some(json!({
        "slug": "promemoria", "name": "Promemoria",
        "definition": {
            "trigger": {"event": {"name": "Checkout Started"}},
            "entry": {"instance_key": "properties.cart_id", "reentry": "always"},
            "steps": [
                {"id": "pause", "type": "delay", "until_trait": "remind_at", "next": "mail"},
                {"id": "mail", "type": "send", "channel": "email", "message": "promemoria", "topic": "offers"}
            ]
        }})),
    );
    admin(
        &server,
        reqwest::Method::POST,
        "/v1/journeys/promemoria/publish",
        None,
    );
    // The runner starts at the log's head: the checkouts come once it is running.
    std::thread::sleep(Duration::from_millis(1500));
    // Durations start at a minute: each customer's timer is a date trait three seconds on.
    let now_ms = i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap();
    let remind_at = prossimo_model::format_millis(now_ms + 3_000).unwrap();
    let people: Vec<Value> = (0..CUSTOMERS)
        .map(|i| json!({"type": "identify", "userId": format!("c{i}"), "traits": {"email": format!("c{i}@example.it"), "first_name": format!("C{i}"), "remind_at": remind_at}}))
        .collect();
    let checkouts: Vec<Value> = (0..CUSTOMERS)
        .map(|i| json!({"type": "track", "userId": format!("c{i}"), "event": "Checkout Started", "properties": {"cart_id": format!("cart-{i}")}}))
        .collect();
    for batch in [people, checkouts] {
        let response = http
            .post(server.url("/v1/batch"))
            .basic_auth(WRITE_KEY, Some(""))
            .json(&json!({"batch": batch}))
            .send()
            .unwrap();
        assert!(response.status().is_success());
    }
    let started = Instant::now();
    // While the timers wait.
    std::thread::sleep(Duration::from_millis(1500));
    server.kill();
    let server = Server::start(data);
    // While the e-mails go out: the timers are due three seconds after the traits.
    let due = Duration::from_millis(3000);
    if let Some(left) = due.checked_sub(started.elapsed()) {
        std::thread::sleep(left);
    }
    std::thread::sleep(Duration::from_millis(150));
    server.kill();
    let server = Server::start(data);

    let deadline = Instant::now() + Duration::from_secs(60);
    let (mut sent, mut uncertain) = (0, 0);
    for i in 0..CUSTOMERS {
        let sends = loop {
            let answer = admin(
                &server,
                reqwest::Method::GET,
                &format!("/v1/profiles/user_id:c{i}/messages"),
                None,
            );
            let sends = answer["sends"].as_array().cloned().unwrap_or_default();
            let settled = sends.len() == 1
                && matches!(sends[0]["status"].as_str(), Some("sent" | "uncertain"));
            if settled {
                break sends;
            }
            assert!(
                Instant::now() < deadline,
                "customer c{i}'s timer never fired or its e-mail never settled: {sends:?}"
            );
            std::thread::sleep(Duration::from_millis(100));
        };
        assert!(
            sends[0]["attempts"].as_u64() == Some(1),
            "c{i}'s e-mail was handed over more than once: {}",
            sends[0]
        );
        match sends[0]["status"].as_str() {
            Some("sent") => sent += 1,
            _ => uncertain += 1,
        }
    }
    let files = std::fs::read_dir(data.join("mail"))
        .unwrap()
        .filter(|f| {
            f.as_ref()
                .is_ok_and(|f| f.path().extension().is_some_and(|e| e == "eml"))
        })
        .count();
    assert!(
        (sent..=sent + uncertain).contains(&files),
        "{files} e-mails written for {sent} sent and {uncertain} uncertain"
    );
    assert_eq!(sent + uncertain, CUSTOMERS);
    eprintln!(
        "kill -9 twice: {sent} sent, {uncertain} uncertain (caught mid-handover), {files} files"
    );
    server.terminate(Duration::from_secs(10));
}

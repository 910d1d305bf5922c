//! The live events page.

use serde_json::json;

use prossimo_console::Refusal;

use prossimo_console::LiveFeed;

use crate::harness::*;

#[tokio::test]
async fn live_events_show_what_was_accepted_and_refused() {
    let c = TestApp::new().with_console_users();
    assert_eq!(c.page("/live/entries", "").await.location(), "/login");
    let session = c.session("viewer@example.it").await;
    let empty = c.page("/live", &session).await;
    assert!(
        empty
            .body
            .contains("Nothing received since this server started.")
    );
    let payload = prossimo_model::parse_batch(
        json!({"batch": [{"type": "track", "event": "Order Completed", "userId": "42", "messageId": "m-live"}]})
            .to_string()
            .as_bytes(),
        chrono::Utc::now(),
        &prossimo_model::Limits::default(),
    )
    .unwrap();
    c.live
        .accepted(LiveFeed::sample("web", payload.messages.iter()));
    c.live.refused(Refusal {
        source: Some("till"),
        status: 400,
        code: "validation_error",
        message: "1 message is invalid".into(),
        problems: vec!["[0] userId: either userId or anonymousId is required".into()],
    });
    let page = c.page("/live", &session).await;
    assert!(page.body.contains("m-live"));
    assert!(
        page.body
            .contains("[0] userId: either userId or anonymousId is required")
    );
    assert!(page.body.contains("data-last=\"2\""));
    let newer = c.page("/live/entries?after=1", &session).await;
    let newer: serde_json::Value = serde_json::from_str(&newer.body).unwrap();
    assert_eq!(newer["entries"].as_array().unwrap().len(), 1);
    assert_eq!(newer["entries"][0]["source"], "till");
    assert_eq!(newer["entries"][0]["accepted"], false);
    assert_answer!("console_live_entries", newer, { ".entries[].time" => "[now]" });
}

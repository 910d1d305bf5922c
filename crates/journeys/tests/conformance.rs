//! Journeys in the store, on both backends.
// Tests: a failing unwrap is the report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use prossimo_journeys::{
    JourneyError, JourneyInput, JourneyState, Journeys, LifecycleAction, MAX_JOURNEY_BYTES,
    publish_journey, save_journey,
};
use prossimo_store::{Store, StoreError};
use serde_json::{Value, json};

prossimo_store::conformance_cases!(
    a_journey_is_drafted_published_paused_resumed_and_archived,
    published_versions_never_change,
    publishing_checks_the_draft_whole_and_publishes_nothing_wrong,
    slugs_names_and_sizes_are_checked,
);

fn welcome() -> Value {
    json!({
        "trigger": {"event": {"name": "Signed Up"}},
        "steps": [{"id": "hello", "type": "send", "channel": "email", "message": "welcome"}]
    })
}

fn input(slug: &str, definition: Value) -> JourneyInput {
    JourneyInput {
        slug: slug.into(),
        name: "Welcome".into(),
        description: String::new(),
        definition,
    }
}

fn a_journey_is_drafted_published_paused_resumed_and_archived(store: &Store) {
    let journeys = Journeys::of(store).unwrap();
    let draft = journeys
        .create(&input("welcome", welcome()), "anna@example.it")
        .unwrap();
    assert_eq!(
        (draft.state, draft.live_version),
        (JourneyState::Draft, None)
    );
    assert!(matches!(
        journeys.change_state("welcome", LifecycleAction::Pause, "anna@example.it"),
        Err(StoreError::Conflict(_))
    ));
    let (published, version) = publish_journey(store, None, "welcome", "anna@example.it").unwrap();
    assert_eq!(
        (published.state, published.live_version, version),
        (JourneyState::Published, Some(1), 1)
    );
    let paused = journeys
        .change_state("welcome", LifecycleAction::Pause, "cli")
        .unwrap();
    assert_eq!(paused.state, JourneyState::Paused);
    // Publishing a paused journey makes the new version live and leaves it paused.
    let (still_paused, version) = publish_journey(store, None, "welcome", "cli").unwrap();
    assert_eq!((still_paused.state, version), (JourneyState::Paused, 2));
    let resumed = journeys
        .change_state("welcome", LifecycleAction::Resume, "cli")
        .unwrap();
    assert_eq!(resumed.state, JourneyState::Published);
    let archived = journeys
        .change_state("welcome", LifecycleAction::Archive, "cli")
        .unwrap();
    assert_eq!(archived.state, JourneyState::Archived);
    for refused in [
        journeys
            .edit(&input("welcome", welcome()), "cli")
            .map(|_| ()),
        journeys
            .change_state("welcome", LifecycleAction::Resume, "cli")
            .map(|_| ()),
        publish_journey(store, None, "welcome", "cli")
            .map(|_| ())
            .map_err(|e| match e {
                JourneyError::Store(e) => e,
                other => panic!("{other}"),
            }),
    ] {
        assert!(
            matches!(refused, Err(StoreError::Conflict(_))),
            "{refused:?}"
        );
    }
    let history: Vec<(String, Option<i64>, String)> = journeys
        .history(draft.id)
        .unwrap()
        .into_iter()
        .map(|c| (c.action, c.version, c.actor))
        .collect();
    let expected = [
        ("create", None, "anna@example.it"),
        ("publish", Some(1), "anna@example.it"),
        ("pause", None, "cli"),
        ("publish", Some(2), "cli"),
        ("resume", None, "cli"),
        ("archive", None, "cli"),
    ]
    .map(|(a, v, who)| (a.to_owned(), v, who.to_owned()));
    assert_eq!(history, expected);
}

fn published_versions_never_change(store: &Store) {
    let journeys = Journeys::of(store).unwrap();
    let first = journeys
        .create(&input("welcome", welcome()), "cli")
        .unwrap();
    publish_journey(store, None, "welcome", "cli").unwrap();
    let mut second = welcome();
    second["steps"][0]["message"] = json!("welcome-v2");
    let edited = save_journey(store, None, &input("welcome", second.clone()), true, "cli").unwrap();
    assert_eq!(edited.draft, second);
    assert_eq!(
        edited.live_version,
        Some(1),
        "an edit is not live until published"
    );
    assert_eq!(
        journeys.version(first.id, 1).unwrap().unwrap().definition,
        welcome()
    );
    publish_journey(store, None, "welcome", "cli").unwrap();
    let versions: Vec<(i64, Value)> = journeys
        .versions(first.id)
        .unwrap()
        .into_iter()
        .map(|v| (v.version, v.definition))
        .collect();
    assert_eq!(versions, vec![(2, second), (1, welcome())]);
    // A stale check cannot publish a draft edited since.
    let current = journeys.get("welcome").unwrap().unwrap();
    assert!(matches!(
        journeys.publish("welcome", &json!({"stale": true}), "cli"),
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(journeys.get("welcome").unwrap().unwrap(), current);
}

fn publishing_checks_the_draft_whole_and_publishes_nothing_wrong(store: &Store) {
    let broken = json!({
        "trigger": {"audience_entered": "nobody"},
        "steps": [{"id": "wait", "type": "delay", "for": "soon"}]
    });
    let saved = save_journey(store, None, &input("broken", broken), false, "cli").unwrap();
    let Err(JourneyError::Problems(problems)) = publish_journey(store, None, "broken", "cli")
    else {
        panic!("published with problems");
    };
    let fields: Vec<&str> = problems.iter().map(|p| p.field.as_str()).collect();
    assert_eq!(fields, ["trigger.audience_entered", "for"], "{problems:#?}");
    let journeys = Journeys::of(store).unwrap();
    assert_eq!(journeys.get("broken").unwrap().unwrap(), saved);
    assert!(journeys.versions(saved.id).unwrap().is_empty());
    // Not a journey at all: refused before it is saved, naming the field.
    let Err(JourneyError::Shape(message)) = save_journey(
        store,
        None,
        &input("shapeless", json!({"trigger": "api", "stepz": []})),
        false,
        "cli",
    ) else {
        panic!("saved a shapeless journey");
    };
    assert!(message.contains("stepz"), "{message}");
    assert!(journeys.get("shapeless").unwrap().is_none());
}

fn slugs_names_and_sizes_are_checked(store: &Store) {
    let journeys = Journeys::of(store).unwrap();
    journeys
        .create(&input("welcome", welcome()), "cli")
        .unwrap();
    assert!(matches!(
        journeys.create(&input("welcome", welcome()), "cli"),
        Err(StoreError::Conflict(_))
    ));
    assert!(matches!(
        journeys.create(&input("Not A Slug", welcome()), "cli"),
        Err(StoreError::Invalid(_))
    ));
    let mut long = input("long", welcome());
    long.name = "n".repeat(1_000);
    assert!(matches!(
        journeys.create(&long, "cli"),
        Err(StoreError::TooLong { field: "name", .. })
    ));
    let huge = json!({"trigger": "api", "steps": [], "padding": "x".repeat(MAX_JOURNEY_BYTES)});
    assert!(matches!(
        journeys.create(&input("huge", huge), "cli"),
        Err(StoreError::TooLong {
            field: "definition",
            ..
        })
    ));
    assert!(matches!(
        journeys.edit(&input("missing", welcome()), "cli"),
        Err(StoreError::NotFound(_))
    ));
    assert_eq!(journeys.list().unwrap().len(), 1);
}

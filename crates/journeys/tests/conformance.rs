//! Journeys in the store, on both backends.
// Tests: a failing unwrap is the report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use prossimo_journeys::{
    Entrant, EntryRefusal, EventSeen, Facts, Input, Instances, JourneyError, JourneyInput,
    JourneyState, Journeys, LifecycleAction, MAX_JOURNEY_BYTES, Position, advance,
    check_definition, enter, publish_journey, record, save_journey,
};
use prossimo_store::{Store, StoreError, WriteDomain};
use serde_json::{Value, json};

prossimo_store::conformance_cases!(
    a_journey_is_drafted_published_paused_resumed_and_archived,
    published_versions_never_change,
    publishing_checks_the_draft_whole_and_publishes_nothing_wrong,
    slugs_names_and_sizes_are_checked,
    instances_wait_fire_in_order_and_never_send_twice,
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

/// A person for whom no condition holds, in Rome.
struct Nobody;

impl Facts for Nobody {
    fn holds(&self, _: &str) -> bool {
        false
    }
    fn passes(&self, _: &str, _: &EventSeen) -> bool {
        true
    }
    fn zone(&self) -> chrono_tz::Tz {
        chrono_tz::Europe::Rome
    }
    fn date_trait(&self, _: &str) -> Option<i64> {
        None
    }
}

fn instances_wait_fire_in_order_and_never_send_twice(store: &Store) {
    let definition = json!({
        "trigger": {"event": {"name": "Checkout Started"}},
        "entry": {"instance_key": "properties.cart_id", "reentry": "always"},
        "steps": [
            {"id": "an-hour", "type": "wait", "timeout": "1h", "on_timeout": "mail",
             "until": {"event": {"name": "Order Completed", "same_instance": true}}},
            {"id": "mail", "type": "send", "channel": "email", "message": "cart-reminder", "topic": "offers"}
        ]
    });
    save_journey(
        store,
        None,
        &input("cart", definition.clone()),
        false,
        "cli",
    )
    .unwrap();
    let (record_of, version) = publish_journey(store, None, "cart", "cli").unwrap();
    let journey = check_definition(store, &definition).unwrap();
    let hour = 3_600_000;
    let t0 = 1_800_000_000_000;
    let start = |profile: i64, key: &str, at: i64| {
        store
            .write_transaction(WriteDomain::Decisions, |conn| {
                let trigger =
                    serde_json::json!({"event": "Checkout Started", "properties": {"cart_id": key}});
                let entrant = Entrant {
                    journey_id: record_of.id,
                    version,
                    profile_id: profile,
                    key: Some(key),
                    trigger: &trigger,
                };
                let entered = enter(conn, &journey, &entrant, at)?;
                let Ok(mut stored) = entered else {
                    return Ok(entered.map(|_| Vec::new()));
                };
                let actions = advance(&journey, &mut stored.instance, Input::Enter, at, &Nobody);
                record(conn, &stored, &actions, at)?;
                Ok(Ok(actions))
            })
            .unwrap()
    };
    assert!(start(1, "c1", t0).is_ok());
    assert_eq!(start(1, "c1", t0 + 1), Err(EntryRefusal::AlreadyIn));
    assert!(start(1, "c2", t0 + 2).is_ok());
    assert!(start(2, "c9", t0 - 10).is_ok());

    let instances = Instances::of(store).unwrap();
    assert_eq!(instances.next_due().unwrap(), Some(t0 - 10 + hour));
    assert!(instances.due(t0 + hour - 11, 10).unwrap().is_empty());
    let due = instances.due(t0 + hour + 2, 10).unwrap();
    let order: Vec<(i64, Option<String>)> = due
        .iter()
        .map(|d| (d.profile_id, d.instance.key.clone()))
        .collect();
    assert_eq!(
        order,
        vec![
            (2, Some("c9".into())),
            (1, Some("c1".into())),
            (1, Some("c2".into()))
        ],
        "earliest first"
    );

    // Firing one timer sends once; the same input again (a restart before the position
    // was known to be saved) sends nothing more.
    let mut first = due[0].clone();
    let now = t0 + hour + 2;
    let actions = advance(&journey, &mut first.instance, Input::Due, now, &Nobody);
    let owed = store
        .write_transaction(WriteDomain::Decisions, |conn| {
            record(conn, &first, &actions, now)
        })
        .unwrap();
    assert_eq!(owed, 1);
    let outbox = prossimo_messages::Outbox::of(store).unwrap();
    let send = outbox
        .by_key(&format!("{}/mail", first.instance.id))
        .unwrap()
        .expect("owed under the instance and step");
    assert_eq!(send.context["event"]["properties"]["cart_id"], "c9");
    let again = store
        .write_transaction(WriteDomain::Decisions, |conn| {
            record(conn, &first, &actions, now)
        })
        .unwrap();
    assert_eq!(again, 0, "owed twice");
    assert_eq!(outbox.of_profile(2).unwrap().len(), 1);

    let stored = instances.of_profile(2).unwrap();
    assert!(matches!(
        stored[0].instance.position,
        Position::Ended { .. }
    ));
    let steps: Vec<(String, String)> = instances
        .steps(stored[0].row)
        .unwrap()
        .into_iter()
        .map(|s| (s.step, s.outcome))
        .collect();
    assert_eq!(
        steps,
        [("an-hour", "timeout"), ("mail", "sent")].map(|(a, b)| (a.to_owned(), b.to_owned()))
    );
    assert_eq!(instances.running_for(1).unwrap().len(), 2);
    assert_eq!(instances.running_for(2).unwrap().len(), 0);
    let counts = instances.step_counts(record_of.id).unwrap();
    assert_eq!(counts["an-hour"]["timeout"], 1);
    assert_eq!(counts["mail"]["sent"], 1);

    // Archiving the journey ends whoever is still on the way, where they waited.
    Journeys::of(store)
        .unwrap()
        .change_state("cart", LifecycleAction::Archive, "test")
        .unwrap();
    assert!(instances.running_for(1).unwrap().is_empty());
    for stored in instances.of_profile(1).unwrap() {
        assert!(
            matches!(
                &stored.instance.position,
                Position::Ended { reason: prossimo_journeys::ExitReason::Archived, step: Some(step), .. } if step == "an-hour"
            ),
            "{:?}",
            stored.instance.position
        );
    }
}

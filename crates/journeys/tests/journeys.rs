//! Journeys checked and run through their state machine, with the documented examples.
// Tests: a failing unwrap is the report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::cell::RefCell;
use std::collections::{BTreeSet, HashMap, HashSet};

use chrono::{TimeZone, Utc};
use chrono_tz::Europe::Rome;
use chrono_tz::Tz;
use prossimo_journeys::{
    Action, CheckContext, Definition, EarlierInstance, EntryRefusal, EventSeen, ExitReason, Facts,
    Input, Instance, Journey, LocalWindow, Position, Problem, advance, check, instance_key,
    may_enter, next_allowed,
};
use prossimo_segments::Schema;
use serde_json::{Value, json};

const HOUR: i64 = 3_600_000;
const DAY: i64 = 24 * HOUR;

fn audiences() -> BTreeSet<String> {
    ["lapsing", "complained"].map(String::from).into()
}

fn checked(definition: &Value) -> Result<Journey, Vec<Problem>> {
    let definition: Definition = serde_json::from_value(definition.clone()).expect("parses");
    check(
        &definition,
        &CheckContext {
            schema: &Schema::product_default(),
            audiences: &audiences(),
        },
    )
}

fn example(name: &str) -> Value {
    let path = format!(
        "{}/../../docs/journeys/{name}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_str(&std::fs::read_to_string(&path).expect("the example")).expect("JSON")
}

/// The person as the tests set them up: conditions that hold, filters that pass (by the
/// event's name), their zone and date traits.
struct Person {
    holding: RefCell<HashSet<String>>,
    passing: HashSet<(String, String)>,
    zone: Tz,
    dates: HashMap<String, i64>,
}

impl Person {
    fn new() -> Person {
        Person {
            holding: RefCell::default(),
            passing: HashSet::new(),
            zone: Rome,
            dates: HashMap::new(),
        }
    }
}

impl Facts for Person {
    fn holds(&self, condition: &str) -> bool {
        self.holding.borrow().contains(condition)
    }
    fn passes(&self, filter: &str, event: &EventSeen) -> bool {
        self.passing
            .contains(&(filter.to_owned(), event.name.to_owned()))
    }
    fn zone(&self) -> Tz {
        self.zone
    }
    fn date_trait(&self, name: &str) -> Option<i64> {
        self.dates.get(name).copied()
    }
}

fn instance(id: &str, key: Option<&str>, at: i64) -> Instance {
    Instance {
        id: id.to_owned(),
        key: key.map(str::to_owned),
        entered_at: at,
        position: Position::Entering,
    }
}

fn ms(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> i64 {
    Utc.with_ymd_and_hms(y, mo, d, h, mi, 0)
        .unwrap()
        .timestamp_millis()
}

fn sends(actions: &[Action]) -> Vec<(String, String)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Send {
                message,
                idempotency_key,
                ..
            } => Some((message.clone(), idempotency_key.clone())),
            _ => None,
        })
        .collect()
}

#[test]
fn every_documented_example_checks_and_reads_back_the_same() {
    let dir = format!("{}/../../docs/journeys", env!("CARGO_MANIFEST_DIR"));
    let mut seen = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        let value: Value = serde_json::from_str(&text).unwrap();
        let journey = checked(&value).unwrap_or_else(|p| panic!("{path:?}: {p:#?}"));
        let written = serde_json::to_value(&journey.definition).unwrap();
        let again: Definition = serde_json::from_value(written).unwrap();
        assert_eq!(again, journey.definition, "{path:?}");
        seen += 1;
    }
    assert!(seen >= 3, "{seen} examples");
}

#[test]
fn problems_name_their_step_and_field() {
    let problems = checked(&json!({
        "trigger": {"audience_entered": "nobody-made-this"},
        "steps": [
            {"id": "wait", "type": "wait", "until": {"event": {"name": "Order Completed", "same_instance": true}},
             "timeout": "1 hour", "next": "mail", "on_timeout": "nowhere"},
            {"id": "mail", "type": "send", "channel": "email", "message": "", "next": "pick"},
            {"id": "pick", "type": "branch", "branches": [{"condition": "p_alive <", "next": "split"}]},
            {"id": "split", "type": "split", "arms": [
                {"name": "a", "weight": 0, "holdout": true, "next": "mail"},
                {"name": "a", "weight": 0}
            ]},
            {"id": "lonely", "type": "exit"},
            {"id": "lonely", "type": "exit"}
        ]
    }))
    .unwrap_err();
    let found: Vec<(Option<&str>, &str)> = problems
        .iter()
        .map(|p| (p.step.as_deref(), p.field.as_str()))
        .collect();
    for expected in [
        (Some("lonely"), "steps[5].id"),
        (None, "trigger.audience_entered"),
        (Some("wait"), "until.event.same_instance"),
        (Some("wait"), "timeout"),
        (Some("wait"), "on_timeout"),
        (Some("mail"), "message"),
        (Some("pick"), "branches[0].condition"),
        (Some("split"), "arms"),
        (Some("split"), "arms[1].name"),
        (Some("split"), "arms[0].next"),
        (Some("split"), "arms[0].next"),
    ] {
        assert!(
            found.contains(&expected),
            "{expected:?} not in {problems:#?}"
        );
    }
    let condition = problems
        .iter()
        .find(|p| p.field == "branches[0].condition")
        .unwrap();
    assert_eq!((condition.line, condition.column), (Some(1), Some(10)));
    let duration = problems.iter().find(|p| p.field == "timeout").unwrap();
    assert!(duration.reason.contains("duration"), "{duration}");
}

#[test]
fn a_journey_cannot_loop() {
    let problems = checked(&json!({
        "trigger": "api",
        "steps": [
            {"id": "mail", "type": "send", "channel": "email", "message": "hello", "next": "pause"},
            {"id": "pause", "type": "delay", "for": "1d", "next": "pick"},
            {"id": "pick", "type": "branch", "branches": [{"condition": "p_alive < 0.5", "next": "mail"}]}
        ]
    }))
    .unwrap_err();
    assert_eq!(problems.len(), 1, "{problems:#?}");
    assert_eq!(problems[0].step.as_deref(), Some("pick"));
    assert_eq!(problems[0].field, "branches[0].next");
    assert!(
        problems[0].reason.contains("cannot loop"),
        "{}",
        problems[0]
    );
}

#[test]
fn unreachable_steps_and_bad_filters_are_named() {
    let problems = checked(&json!({
        "trigger": {"event": {"name": "Signed Up", "where": "properties.plan ==\n  == \"pro\""}},
        "steps": [
            {"id": "hello", "type": "send", "channel": "email", "message": "welcome"},
            {"id": "orphan", "type": "exit"}
        ]
    }))
    .unwrap_err();
    let filter = problems
        .iter()
        .find(|p| p.field == "trigger.event.where")
        .unwrap();
    assert_eq!(filter.line, Some(2), "{filter:?}");
    assert!(
        problems
            .iter()
            .any(|p| p.step.as_deref() == Some("orphan") && p.reason.contains("no step leads")),
        "{problems:#?}"
    );
}

#[test]
fn a_misspelt_field_is_an_error_not_a_default() {
    let error = serde_json::from_value::<Definition>(json!({
        "trigger": "api",
        "steps": [{"id": "a", "type": "delay", "for": "1h", "nxt": "b"}]
    }))
    .unwrap_err();
    assert!(error.to_string().contains("nxt"), "{error}");
    let error = serde_json::from_value::<Definition>(json!({
        "trigger": "api", "steps": [], "goals": []
    }))
    .unwrap_err();
    assert!(error.to_string().contains("goals"), "{error}");
}

/// The abandoned cart of docs/journeys.md: an hour to buy, else (90%) an e-mail; a day to
/// open it, else an SMS in the daytime; buying that cart ends it whenever it happens.
#[test]
fn the_abandoned_cart_runs_as_documented() {
    let journey = checked(&example("abandoned-cart")).unwrap();
    let person = Person::new();
    // Tuesday 2026-12-08 10:00 in Rome.
    let start = ms(2026, 12, 8, 9, 0);
    // An instance id that draws the "remind" arm (90% do; see the split test).
    let id = (0..)
        .map(|i| format!("42/abandoned-cart/c{i}"))
        .find(|id| {
            let mut probe = instance(id, Some("c1"), start);
            let mut actions = advance(&journey, &mut probe, Input::Enter, start, &person);
            actions.extend(advance(
                &journey,
                &mut probe,
                Input::Due,
                start + HOUR,
                &person,
            ));
            !sends(&actions).is_empty()
        })
        .unwrap();
    let mut cart = instance(&id, Some("c1"), start);

    let actions = advance(&journey, &mut cart, Input::Enter, start, &person);
    assert_eq!(actions, vec![Action::Schedule { due: start + HOUR }]);

    // Another cart's order does not end this one; a timer before its time does nothing.
    let other = json!({"properties": {"cart_id": "c2"}});
    let order = |key, message| EventSeen {
        name: "Order Completed",
        instance_key: key,
        message,
    };
    assert!(
        advance(
            &journey,
            &mut cart,
            Input::Event(order(Some("c2"), &other)),
            start + 60_000,
            &person
        )
        .is_empty()
    );
    assert!(advance(&journey, &mut cart, Input::Due, start + HOUR - 1, &person).is_empty());

    let actions = advance(&journey, &mut cart, Input::Due, start + HOUR, &person);
    let mail = sends(&actions);
    assert_eq!(
        mail,
        vec![("cart-reminder".to_owned(), format!("{id}/cart-email"))]
    );
    assert_eq!(
        cart.position,
        Position::Waiting {
            step: "wait-for-open".into(),
            due: start + HOUR + DAY
        }
    );
    // Not opened within the day: the SMS waits for the daytime window (it is 11:00 on
    // Wednesday in Rome, inside it) and goes at once.
    let actions = advance(&journey, &mut cart, Input::Due, start + HOUR + DAY, &person);
    assert_eq!(
        sends(&actions),
        vec![("cart-reminder-sms".to_owned(), format!("{id}/cart-sms"))]
    );
    assert!(matches!(
        cart.position,
        Position::Ended {
            reason: ExitReason::Completed,
            ..
        }
    ));
    // Ended is ended: the same timer again sends nothing twice.
    assert!(advance(&journey, &mut cart, Input::Due, start + HOUR + DAY, &person).is_empty());
}

#[test]
fn buying_the_same_cart_ends_the_instance_at_once_even_mid_wait() {
    let journey = checked(&example("abandoned-cart")).unwrap();
    let person = Person::new();
    let start = ms(2026, 12, 8, 9, 0);
    let mut cart = instance("42/abandoned-cart/1", Some("c1"), start);
    advance(&journey, &mut cart, Input::Enter, start, &person);
    let message = json!({"properties": {"cart_id": "c1"}});
    let actions = advance(
        &journey,
        &mut cart,
        Input::Event(EventSeen {
            name: "Order Completed",
            instance_key: Some("c1"),
            message: &message,
        }),
        start + 10 * 60_000,
        &person,
    );
    assert_eq!(
        actions,
        vec![Action::Ended {
            reason: ExitReason::Goal,
            step: Some("give-them-an-hour".into())
        }]
    );
    // The exit criterion, a condition, ends another instance the moment it holds.
    let mut other = instance("42/abandoned-cart/2", Some("c9"), start);
    advance(&journey, &mut other, Input::Enter, start, &person);
    person
        .holding
        .borrow_mut()
        .insert("traits.do_not_contact == true".into());
    let actions = advance(&journey, &mut other, Input::Changed, start + 1, &person);
    assert_eq!(
        actions,
        vec![Action::Ended {
            reason: ExitReason::ExitCriterion,
            step: Some("give-them-an-hour".into())
        }]
    );
}

#[test]
fn the_holdout_gets_its_share_and_each_instance_always_draws_the_same_arm() {
    let journey = checked(&example("abandoned-cart")).unwrap();
    let person = Person::new();
    let start = ms(2026, 12, 8, 9, 0);
    let run = |id: &str| {
        let mut cart = instance(id, Some("c"), start);
        advance(&journey, &mut cart, Input::Enter, start, &person);
        advance(&journey, &mut cart, Input::Due, start + HOUR, &person);
        cart.position
    };
    let held = (0..20_000)
        .filter(|i| {
            matches!(
                run(&format!("{i}/abandoned-cart/x")),
                Position::Ended {
                    reason: ExitReason::Holdout,
                    ..
                }
            )
        })
        .count();
    assert!((1_800..=2_200).contains(&held), "{held} of 20,000 held out");
    assert_eq!(run("7/abandoned-cart/x"), run("7/abandoned-cart/x"));
}

#[test]
fn a_condition_wait_branches_and_a_window_waits_for_its_weekday() {
    let journey = checked(&example("win-back")).unwrap();
    let person = Person::new();
    // Friday 2026-12-11 15:00 in Rome; two days later is Sunday: the window opens on
    // Tuesday 10:00.
    let start = ms(2026, 12, 11, 14, 0);
    let mut lapsing = instance("9/win-back/1", None, start);
    let actions = advance(&journey, &mut lapsing, Input::Enter, start, &person);
    let tuesday_ten = ms(2026, 12, 15, 9, 0);
    assert_eq!(actions, vec![Action::Schedule { due: tuesday_ten }]);
    let actions = advance(&journey, &mut lapsing, Input::Due, tuesday_ten, &person);
    assert_eq!(sends(&actions).len(), 1);
    // Coming back (leaving "lapsing") ends at the exit step, with nothing more sent.
    person
        .holding
        .borrow_mut()
        .insert("not segment \"lapsing\"".into());
    let actions = advance(
        &journey,
        &mut lapsing,
        Input::Changed,
        tuesday_ten + DAY,
        &person,
    );
    assert_eq!(
        actions.last(),
        Some(&Action::Ended {
            reason: ExitReason::Completed,
            step: Some("thanks".into())
        })
    );
    assert!(sends(&actions).is_empty());
}

#[test]
fn branches_take_the_first_condition_that_holds() {
    let journey = checked(&example("birthday")).unwrap();
    let person = Person::new();
    let now = ms(2026, 5, 4, 7, 0);
    let mut plain = instance("1/birthday/2026", None, now);
    let actions = advance(&journey, &mut plain, Input::Enter, now, &person);
    assert_eq!(sends(&actions)[0].0, "birthday-wishes");
    person
        .holding
        .borrow_mut()
        .insert("clv_12m > 500 or rfm_segment == \"champions\"".into());
    let mut best = instance("2/birthday/2026", None, now);
    let actions = advance(&journey, &mut best, Input::Enter, now, &person);
    assert_eq!(sends(&actions)[0].0, "birthday-gift");
    assert!(
        actions
            .iter()
            .any(|a| matches!(a, Action::SetTrait { name, .. } if name == "last_birthday_gift"))
    );
}

#[test]
fn windows_keep_their_local_hours_across_the_change_to_summer_time() {
    let window = LocalWindow::parse(
        &["mon", "tue", "wed", "thu", "fri"].map(String::from),
        "09:00",
        "20:00",
    )
    .unwrap();
    // Saturday 2026-03-28 21:00 CET; clocks go forward on Sunday the 29th; Monday 09:00
    // is CEST, 07:00 UTC.
    assert_eq!(
        next_allowed(ms(2026, 3, 28, 20, 0), Rome, &window),
        ms(2026, 3, 30, 7, 0)
    );
    // Inside the window: at once.
    let inside = ms(2026, 3, 30, 10, 0);
    assert_eq!(next_allowed(inside, Rome, &window), inside);
    // After the window on Friday: Monday.
    assert_eq!(
        next_allowed(ms(2026, 10, 23, 19, 30), Rome, &window),
        ms(2026, 10, 26, 8, 0),
        "Friday 21:30 CEST; Monday 09:00 is CET again"
    );
    // A window opening inside the hour that does not exist starts when it exists.
    let night = LocalWindow::parse(&[], "02:30", "04:00").unwrap();
    assert_eq!(
        next_allowed(ms(2026, 3, 28, 23, 0), Rome, &night),
        ms(2026, 3, 29, 1, 0),
        "03:00 CEST"
    );
}

#[test]
fn reentry_follows_the_policy_per_instance_key() {
    let cart = checked(&example("abandoned-cart")).unwrap();
    let now = 100 * DAY;
    let running = EarlierInstance {
        key: Some("c1".into()),
        entered_at: now - HOUR,
        active: true,
    };
    assert_eq!(
        may_enter(&cart, Some("c1"), std::slice::from_ref(&running), now),
        Err(EntryRefusal::AlreadyIn)
    );
    assert_eq!(may_enter(&cart, Some("c2"), &[running], now), Ok(()));

    let birthday = checked(&example("birthday")).unwrap();
    let last_year = EarlierInstance {
        key: None,
        entered_at: now - 200 * DAY,
        active: false,
    };
    assert_eq!(
        may_enter(&birthday, None, std::slice::from_ref(&last_year), now),
        Err(EntryRefusal::CoolingDown {
            until: now + 100 * DAY
        })
    );
    assert_eq!(
        may_enter(&birthday, None, &[last_year], now + 100 * DAY),
        Ok(())
    );

    let once = checked(&json!({"trigger": "api", "steps": [{"id": "x", "type": "exit"}]})).unwrap();
    let before = EarlierInstance {
        key: None,
        entered_at: 0,
        active: false,
    };
    assert_eq!(
        may_enter(&once, None, &[before], now),
        Err(EntryRefusal::EnteredBefore)
    );
}

#[test]
fn an_instance_key_is_the_text_at_its_path() {
    let event = json!({"properties": {"cart_id": "c-1", "n": 42, "empty": "", "list": [1]}});
    assert_eq!(
        instance_key("properties.cart_id", &event).as_deref(),
        Some("c-1")
    );
    assert_eq!(instance_key("properties.n", &event).as_deref(), Some("42"));
    assert_eq!(instance_key("properties.empty", &event), None);
    assert_eq!(instance_key("properties.list", &event), None);
    assert_eq!(instance_key("properties.missing", &event), None);
    assert_eq!(instance_key("properties..x", &event), None);
}

//! The backend conformance suite: every test here runs against SQLite and PostgreSQL
//! (see [`conformance_cases!`](crate::conformance_cases)). PostgreSQL tests read
//! `PROSSIMO_TEST_DATABASE_URL`; each test gets a schema of its own.

use std::collections::BTreeSet;
use std::sync::Arc;

use chrono::Utc;
use prossimo_identity::IdentityConfig;
use prossimo_model::{Limits, Money, parse_batch};
use serde_json::{Value, json};

use crate::{EventQuery, Incoming, Location, ProfileKey, Store};

/// A fresh store of the given backend, kept alive by the returned guard.
pub struct Fixture {
    pub store: Arc<Store>,
    pub location: Location,
    _dir: Option<tempfile::TempDir>,
}

impl Fixture {
    pub fn sqlite() -> Fixture {
        let dir = tempfile::tempdir().expect("temp dir");
        let location = Location::DataDir(dir.path().join("data"));
        let store = Store::open(&location, IdentityConfig::default()).expect("open sqlite store");
        Fixture {
            store: Arc::new(store),
            location,
            _dir: Some(dir),
        }
    }

    /// `None` when `PROSSIMO_TEST_DATABASE_URL` is unset (a developer without PostgreSQL);
    /// CI always sets it, and an unreachable server fails the test.
    pub fn postgres() -> Option<Fixture> {
        let url = std::env::var("PROSSIMO_TEST_DATABASE_URL").ok()?;
        let schema = format!("t_{}", uuid::Uuid::new_v4().simple());
        let location = Location::Postgres {
            url,
            schema: Some(schema),
        };
        let store = Store::open(&location, IdentityConfig::default())
            .unwrap_or_else(|e| panic!("PROSSIMO_TEST_DATABASE_URL is set but unusable: {e}"));
        Some(Fixture {
            store: Arc::new(store),
            location,
            _dir: None,
        })
    }

    /// A second store handle on the same database, like a second `prossimo` node.
    pub fn second_node(&self) -> Store {
        Store::open(&self.location, IdentityConfig::default()).expect("second handle")
    }

    /// A second handle that gives up on a held write lock after 200 ms.
    pub fn impatient_handle(&self) -> Store {
        Store::open_with(
            &self.location,
            self.store.identity().clone(),
            crate::StoreOptions {
                lock_wait: std::time::Duration::from_millis(200),
            },
        )
        .expect("second handle")
    }
}

/// Parses a batch body and prepares it for the store, as the HTTP edge does.
pub fn incoming(store: &Store, source_id: i64, messages: Vec<Value>) -> Vec<Incoming> {
    let body = json!({ "batch": messages }).to_string();
    parse_batch(body.as_bytes(), Utc::now(), &Limits::default())
        .expect("valid test batch")
        .messages
        .into_iter()
        .map(|m| {
            Incoming::new(source_id, m, store.identity(), store.money()).expect("serialisable")
        })
        .collect()
}

/// One of the store's write locks held by another connection (as another process would
/// hold it) until dropped.
pub struct WriteLockHeld(crate::sql::Pooled);

impl Drop for WriteLockHeld {
    fn drop(&mut self) {
        let _ = self.0.conn().batch("ROLLBACK");
    }
}

pub fn hold_write_lock(store: &Store, domain: crate::WriteDomain) -> WriteLockHeld {
    let mut pooled = store.conn().expect("a connection");
    pooled
        .conn()
        .begin_write(domain, crate::Commit::Durable)
        .expect("the write lock");
    WriteLockHeld(pooled)
}

/// Every entry of a timeline with `sources`, following the cursor from page to page of
/// `page` entries.
pub fn whole_timeline(
    store: &Store,
    k: &ProfileKey,
    page: usize,
    sources: &[&dyn crate::TimelineSource],
) -> Vec<Value> {
    let mut events = Vec::new();
    let mut cursor = None;
    loop {
        let next = store
            .timeline(
                k,
                &EventQuery {
                    limit: page,
                    cursor: cursor.take(),
                    ..EventQuery::default()
                },
                sources,
            )
            .unwrap()
            .unwrap();
        events.extend(next.events);
        match next.next_cursor {
            Some(c) => cursor = Some(c),
            None => return events,
        }
    }
}

pub fn key(store: &Store, raw: &str) -> ProfileKey {
    ProfileKey::parse(raw, store.identity()).expect("valid key")
}

pub fn ingest_and_read_back(store: &Store) {
    let source = store.bootstrap(None, None).unwrap().source;
    let report = store
        .ingest(&incoming(store, source.id, vec![
            json!({"type": "identify", "userId": "42", "messageId": "m1", "timestamp": "2026-03-01T10:00:00Z",
                   "traits": {"email": "Anna.Rossi@Example.it", "name": "Anna Rossi", "city": "Torino"},
                   "context": {"library": {"name": "analytics.js"}}}),
            json!({"type": "track", "userId": "42", "messageId": "m2", "event": "Order Completed", "timestamp": "2026-03-02T10:00:00Z",
                   "properties": {"order_id": "o1", "revenue": 59.9, "currency": "eur", "channel": "store"}}),
            json!({"type": "track", "userId": "42", "messageId": "m3", "event": "Order Completed", "timestamp": "2026-03-03T10:00:00Z",
                   "properties": {"order_id": "o2", "total": "40.1", "currency": "EUR"}}),
            json!({"type": "page", "userId": "42", "messageId": "m4", "name": "Home", "timestamp": "2026-03-04T10:00:00Z"}),
        ]))
        .unwrap();
    assert_eq!(report.stored, 4);
    assert_eq!(report.profiles_created, 1);

    let p = store
        .profile(&key(store, "email:anna.rossi@example.it"), &[])
        .unwrap()
        .expect("profile");
    assert_eq!(
        Some(p.id),
        store.resolve_profile(&key(store, "user_id:42")).unwrap()
    );
    assert_eq!(p.traits["city"], "Torino");
    assert_eq!(p.name.as_deref(), Some("Anna Rossi"));
    assert_eq!(p.event_count, 4);
    assert_eq!(p.counts_by_type["track"], 2);
    assert_eq!(p.counts_by_event["Order Completed"], 2);
    assert_eq!(p.counts_by_channel["store"], 1);
    assert_eq!(p.counts_by_channel["web"], 1);
    assert_eq!(p.counts_by_channel["other"], 2);
    assert_eq!(p.orders.count, 2);
    assert!((p.orders.revenue - 100.0).abs() < 1e-9);
    assert_eq!(p.orders.currency, "EUR");
    assert_eq!(p.first_seen.as_deref(), Some("2026-03-01T10:00:00.000Z"));
    assert_eq!(p.first_channel.as_deref(), Some("web"));
    assert_eq!(p.last_seen.as_deref(), Some("2026-03-04T10:00:00.000Z"));
    let ids: Vec<String> = p
        .identifiers
        .iter()
        .map(|i| format!("{}:{}", i.kind, i.value))
        .collect();
    assert_eq!(ids, vec!["email:anna.rossi@example.it", "user_id:42"]);
    assert!(
        store
            .profile(&key(store, "user_id:nobody"), &[])
            .unwrap()
            .is_none()
    );
}

pub fn duplicates_are_stored_once(store: &Store) {
    let source = store.bootstrap(None, None).unwrap().source;
    let batch = incoming(
        store,
        source.id,
        vec![
            json!({"type": "track", "userId": "u", "messageId": "dup-1", "event": "A"}),
            json!({"type": "track", "userId": "u", "messageId": "dup-1", "event": "A"}),
            json!({"type": "track", "userId": "u", "messageId": "dup-2", "event": "B"}),
        ],
    );
    let first = store.ingest(&batch).unwrap();
    assert_eq!((first.stored, first.duplicates), (2, 1));
    let again = store.ingest(&batch).unwrap();
    assert_eq!((again.stored, again.duplicates), (0, 3));
    assert_eq!(store.event_count().unwrap(), 2);
    // The same message id from another source is another message.
    let other = store.create_source("till", None).unwrap();
    let report = store
        .ingest(&incoming(
            store,
            other.id,
            vec![json!({"type": "track", "userId": "u", "messageId": "dup-1", "event": "A"})],
        ))
        .unwrap();
    assert_eq!(report.stored, 1);
    let counts = store
        .message_counts(source.id, &["dup-1".into(), "dup-2".into(), "dup-3".into()])
        .unwrap();
    assert_eq!(counts.values().copied().collect::<Vec<_>>(), vec![1, 1, 0]);
}

pub fn merges_join_timelines_and_are_logged(store: &Store) {
    let source = store.bootstrap(None, None).unwrap().source;
    store
        .ingest(&incoming(store, source.id, vec![
            json!({"type": "page", "anonymousId": "dev-1", "messageId": "a1", "name": "Home", "timestamp": "2026-01-01T09:00:00Z",
                   "context": {"library": {"name": "analytics-ios"}}}),
        ]))
        .unwrap();
    store
        .ingest(&incoming(store, source.id, vec![
            json!({"type": "identify", "userId": "mario", "messageId": "a2", "timestamp": "2026-01-02T09:00:00Z", "traits": {"email": "mario@x.it"}}),
        ]))
        .unwrap();
    let anonymous = store
        .resolve_profile(&key(store, "anonymous_id:dev-1"))
        .unwrap()
        .unwrap();
    let known = store
        .resolve_profile(&key(store, "user_id:mario"))
        .unwrap()
        .unwrap();
    assert_ne!(anonymous, known);
    let report = store
        .ingest(&incoming(store, source.id, vec![
            json!({"type": "track", "userId": "mario", "anonymousId": "dev-1", "messageId": "a3", "event": "Login", "timestamp": "2026-01-03T09:00:00Z"}),
        ]))
        .unwrap();
    assert_eq!(report.merges, 1);
    let p = store
        .profile(&key(store, "anonymous_id:dev-1"), &[])
        .unwrap()
        .unwrap();
    assert_eq!(p.id, anonymous.min(known));
    assert_eq!(p.merged_profiles, vec![anonymous.max(known)]);
    assert_eq!(p.event_count, 3);
    assert_eq!(p.first_channel.as_deref(), Some("app"));
    let merge = p
        .identity_log
        .iter()
        .find(|l| l.kind == "merge")
        .expect("merge logged");
    assert_eq!(merge.message_id, "a3");
    let page = store
        .timeline(
            &ProfileKey::Id(known),
            &EventQuery {
                limit: 10,
                ..EventQuery::default()
            },
            &[],
        )
        .unwrap()
        .unwrap();
    let order: Vec<&str> = page
        .events
        .iter()
        .map(|e| e["messageId"].as_str().unwrap())
        .collect();
    assert_eq!(order, vec!["a3", "a2", "a1"]);
    assert!(
        page.events.iter().all(|e| e["profileId"] == p.id),
        "events report the surviving profile"
    );
}

pub fn refused_merges_keep_the_event(store: &Store) {
    let source = store.bootstrap(None, None).unwrap().source;
    store
        .ingest(&incoming(store, source.id, vec![
            json!({"type": "identify", "userId": "mario", "anonymousId": "tablet", "messageId": "r1"}),
            json!({"type": "identify", "userId": "giulia", "anonymousId": "tablet", "messageId": "r2", "traits": {"email": "null"}}),
        ]))
        .unwrap();
    let giulia = store
        .profile(&key(store, "user_id:giulia"), &[])
        .unwrap()
        .unwrap();
    let mario = store
        .profile(&key(store, "user_id:mario"), &[])
        .unwrap()
        .unwrap();
    assert_ne!(giulia.id, mario.id);
    assert_eq!(giulia.event_count, 1);
    assert!(
        giulia
            .identity_log
            .iter()
            .any(|l| l.kind == "refused" && l.message_id == "r2")
    );
    assert!(
        giulia
            .identity_log
            .iter()
            .any(|l| l.kind == "ignored" && l.detail.contains("placeholder"))
    );
    assert_eq!(
        store
            .resolve_profile(&key(store, "anonymous_id:tablet"))
            .unwrap(),
        Some(mario.id)
    );
}

pub fn timeline_pages_and_filters(store: &Store) {
    let source = store.bootstrap(None, None).unwrap().source;
    let messages: Vec<Value> = (0..25)
        .map(|i| {
            json!({"type": if i % 5 == 0 { "page" } else { "track" }, "userId": "pager", "messageId": format!("p{i:02}"),
                   "event": "Viewed", "name": "P", "timestamp": format!("2026-02-01T00:{i:02}:00Z"),
                   "context": {"channel": if i % 2 == 0 { "web" } else { "app" }}})
        })
        .collect();
    store.ingest(&incoming(store, source.id, messages)).unwrap();
    let k = key(store, "user_id:pager");
    let seen: Vec<String> = whole_timeline(store, &k, 10, &[])
        .iter()
        .map(|e| e["messageId"].as_str().unwrap().to_owned())
        .collect();
    let expected: Vec<String> = (0..25).rev().map(|i| format!("p{i:02}")).collect();
    assert_eq!(seen, expected);

    let pages = store
        .timeline(
            &k,
            &EventQuery {
                kind: Some("page".into()),
                limit: 100,
                ..EventQuery::default()
            },
            &[],
        )
        .unwrap()
        .unwrap();
    assert_eq!(pages.events.len(), 5);
    let app = store
        .timeline(
            &k,
            &EventQuery {
                channel: Some("app".into()),
                limit: 100,
                ..EventQuery::default()
            },
            &[],
        )
        .unwrap()
        .unwrap();
    assert_eq!(app.events.len(), 12);
    let since = prossimo_model::parse_timestamp("2026-02-01T00:20:00Z")
        .unwrap()
        .timestamp_millis();
    let recent = store
        .timeline(
            &k,
            &EventQuery {
                since: Some(since),
                limit: 100,
                ..EventQuery::default()
            },
            &[],
        )
        .unwrap()
        .unwrap();
    assert_eq!(recent.events.len(), 5);
    // Not a cursor, or one naming a timeline source this read does not have.
    for cursor in ["garbage", "1769904000000.m5", "1769904000000."] {
        let refused = store.timeline(
            &k,
            &EventQuery {
                cursor: Some(cursor.into()),
                limit: 5,
                ..EventQuery::default()
            },
            &[],
        );
        assert!(
            matches!(refused, Err(crate::StoreError::Invalid(_))),
            "{cursor}: {refused:?}"
        );
    }
}

pub fn search_by_identifier_and_name(store: &Store) {
    let source = store.bootstrap(None, None).unwrap().source;
    store
        .ingest(&incoming(store, source.id, vec![
            json!({"type": "identify", "userId": "c-100", "traits": {"email": "giulia.bianchi@example.it", "first_name": "Giulia", "last_name": "Bianchi"}}),
            json!({"type": "identify", "userId": "c-200", "traits": {"email": "marco.verdi@example.it", "name": "Marco Verdi"}}),
        ]))
        .unwrap();
    let by_email = store.search("giulia.b", 10).unwrap();
    assert_eq!(by_email.len(), 1);
    assert_eq!(
        by_email[0].email.as_deref(),
        Some("giulia.bianchi@example.it")
    );
    assert_eq!(by_email[0].user_id.as_deref(), Some("c-100"));
    let by_name = store.search("Marco", 10).unwrap();
    assert_eq!(by_name.len(), 1);
    assert_eq!(by_name[0].name.as_deref(), Some("Marco Verdi"));
    let exact = store.search("user_id:c-100", 10).unwrap();
    assert_eq!(exact[0].name.as_deref(), Some("Giulia Bianchi"));
    assert_eq!(store.search("c-", 10).unwrap().len(), 2);
    assert!(store.search("zzz", 10).unwrap().is_empty());

    // Any word of a name, surname first or a piece of each, accents and case aside.
    let name_of = |q: &str| -> Vec<Option<String>> {
        store
            .search(q, 10)
            .unwrap()
            .into_iter()
            .map(|p| p.name)
            .collect()
    };
    assert_eq!(name_of("verdi"), [Some("Marco Verdi".to_owned())]);
    assert_eq!(name_of("Bianchi"), [Some("Giulia Bianchi".to_owned())]);
    assert_eq!(name_of("bian giu"), [Some("Giulia Bianchi".to_owned())]);
    assert!(name_of("verdi giulia").is_empty(), "every word must match");
    assert!(name_of("\"*) OR (").is_empty(), "query syntax is only text");
    // A renamed customer is found by the new name only; merged-away profiles not at all.
    store
        .ingest(&incoming(
            store,
            source.id,
            vec![
                json!({"type": "identify", "userId": "c-200", "traits": {"name": "Marco Nerì"},
                   "timestamp": "2099-01-01T00:00:00Z"}),
            ],
        ))
        .unwrap();
    assert!(name_of("verdi").is_empty());
    assert_eq!(
        name_of("neri"),
        [Some("Marco Nerì".to_owned())],
        "accents folded"
    );
    assert_eq!(name_of("NERÌ"), [Some("Marco Nerì".to_owned())]);
    // Paging: 25 people named Rossi, by pages of 10.
    let rossi: Vec<Value> = (0..25)
        .map(|i| json!({"type": "identify", "userId": format!("r-{i:02}"), "traits": {"name": format!("Persona{i:02} Rossi")}}))
        .collect();
    store.ingest(&incoming(store, source.id, rossi)).unwrap();
    let mut seen = BTreeSet::new();
    for (page, more) in [(0, true), (1, true), (2, false)] {
        let found = store.search_page("rossi", page * 10, 10).unwrap();
        assert_eq!(found.more, more, "page {page}");
        assert_eq!(found.profiles.len(), if more { 10 } else { 5 });
        seen.extend(found.profiles.into_iter().map(|p| p.id));
    }
    assert_eq!(seen.len(), 25, "pages do not overlap");
}

pub fn sources_keep_the_pages_allowed_to_send(store: &Store) {
    let web = store.create_source("web", None).unwrap();
    assert_eq!(web.allowed_origins, None, "any page by default");
    assert!(web.allows_origin("https://anything.example"));
    let set = store
        .set_source_origins(
            "web",
            Some(&[
                "https://Shop.Example.it/".to_owned(),
                "http://localhost:3000".to_owned(),
                "https://shop.example.it".to_owned(),
            ]),
        )
        .unwrap();
    assert_eq!(
        set.allowed_origins.as_deref(),
        Some(
            [
                "http://localhost:3000".to_owned(),
                "https://shop.example.it".to_owned()
            ]
            .as_slice()
        )
    );
    let read = store.source_by_write_key(&web.write_key).unwrap().unwrap();
    assert_eq!(read, set);
    assert!(read.allows_origin("https://shop.example.it"));
    assert!(read.allows_origin("HTTPS://SHOP.EXAMPLE.IT"));
    assert!(!read.allows_origin("https://evil.example"));
    assert!(!read.allows_origin("null"));
    for bad in [
        "shop.example.it",
        "ftp://x.it",
        "https://x.it/path",
        "https://",
    ] {
        let err = store
            .set_source_origins("web", Some(&[bad.to_owned()]))
            .expect_err(bad);
        assert!(matches!(err, crate::StoreError::Invalid(_)), "{bad}: {err}");
    }
    assert_eq!(
        store.source_by_name("web").unwrap().unwrap(),
        read,
        "a refused list changes nothing"
    );
    let any = store.set_source_origins("web", None).unwrap();
    assert_eq!(any.allowed_origins, None);
    assert!(matches!(
        store.set_source_origins("nope", None),
        Err(crate::StoreError::NotFound(_))
    ));
}

pub fn keys_bootstrap_and_revoke(store: &Store) {
    let first = store.bootstrap(None, None).unwrap();
    assert!(first.new_admin_token.is_some());
    let token = first.new_admin_token.unwrap();
    assert!(store.verify_admin_token(&token).unwrap());
    let again = store.bootstrap(None, None).unwrap();
    assert_eq!(again.source, first.source);
    assert!(
        again.new_admin_token.is_none(),
        "the token is shown only once"
    );

    let chosen = store
        .bootstrap(
            Some("wk_chosen_by_script"),
            Some("pat_chosen_by_script_123"),
        )
        .unwrap();
    assert_eq!(chosen.source.write_key, "wk_chosen_by_script");
    assert!(
        store
            .verify_admin_token("pat_chosen_by_script_123")
            .unwrap()
    );
    assert!(!store.verify_admin_token("pat_wrong").unwrap());
    assert!(
        store.create_source("default", None).is_err(),
        "names are unique"
    );

    let till = store.create_source("till", None).unwrap();
    assert_eq!(
        store
            .source_by_write_key(&till.write_key)
            .unwrap()
            .map(|s| s.id),
        Some(till.id)
    );
    store.revoke_source("till").unwrap();
    assert!(
        store
            .source_by_write_key(&till.write_key)
            .unwrap()
            .unwrap()
            .revoked
    );
    let tokens = store.admin_tokens().unwrap();
    store.revoke_admin_token(tokens[0].id).unwrap();
    assert!(!store.verify_admin_token(&token).unwrap());
}

/// Two handles (two nodes) ingest overlapping batches concurrently: every message exactly
/// once, one profile per person.
pub fn orders_net_refunds_follow_merges_and_refuse_unknown_currencies(store: &Store) {
    let store = Store::open(store.location(), IdentityConfig::default())
        .unwrap()
        .with_money(Money::new("EUR", [("USD".to_owned(), 0.5)]).unwrap());
    let store = &store;
    let source = store.bootstrap(None, None).unwrap().source;
    let order = |mid: &str, who: Value, event: &str, props: Value| {
        let mut m = json!({"type": "track", "messageId": mid, "event": event,
                           "timestamp": "2026-05-01T10:00:00Z", "properties": props});
        m.as_object_mut()
            .unwrap()
            .extend(who.as_object().unwrap().clone());
        m
    };
    let batch = incoming(
        store,
        source.id,
        vec![
            order(
                "o1",
                json!({"userId": "7"}),
                "Order Completed",
                json!({"order_id": "A", "revenue": 100, "currency": "EUR"}),
            ),
            order(
                "o2",
                json!({"userId": "7"}),
                "Order Completed",
                json!({"order_id": "B", "revenue": 40, "currency": "USD"}),
            ),
            order(
                "o3",
                json!({"userId": "7"}),
                "Order Refunded",
                json!({"order_id": "A", "revenue": 30}),
            ),
            order(
                "o4",
                json!({"anonymousId": "tab-1"}),
                "Order Completed",
                json!({"order_id": "C", "revenue": 10}),
            ),
            order(
                "o5",
                json!({"userId": "7"}),
                "Order Cancelled",
                json!({"order_id": "C"}),
            ),
            order(
                "o6",
                json!({"anonymousId": "tab-2"}),
                "Order Completed",
                json!({"order_id": "D", "revenue": 5}),
            ),
        ],
    );
    assert!(batch.iter().all(|m| m.refusal().is_none()));
    store.ingest(&batch).unwrap();
    let p = store
        .profile(&key(store, "user_id:7"), &[])
        .unwrap()
        .expect("profile");
    assert_eq!(p.orders.count, 2, "A (partly refunded) and B (dollars)");
    assert!(
        (p.orders.revenue - (70.0 + 20.0)).abs() < 1e-9,
        "{:?}",
        p.orders
    );
    assert!((p.orders.refunded - 30.0).abs() < 1e-9);
    assert_eq!(p.orders.voided, 0, "C belongs to tab-1's profile");

    // tab-2 turns out to be user 7: its order D follows it into the merged profile.
    store
        .ingest(&incoming(
            store,
            source.id,
            vec![json!({"type": "identify", "messageId": "o7",
            "userId": "7", "anonymousId": "tab-2", "timestamp": "2026-05-02T10:00:00Z"})],
        ))
        .unwrap();
    let book = store.order_book().unwrap();
    let root = store
        .resolve_profile(&key(store, "user_id:7"))
        .unwrap()
        .unwrap();
    let mine: Vec<(&str, f64)> = book
        .orders
        .iter()
        .filter(|o| o.profile_id == root)
        .map(|o| (o.order_id.as_str(), o.value))
        .collect();
    assert_eq!(mine, [("A", 70.0), ("B", 20.0), ("D", 5.0)]);
    assert_eq!(book.voided, 1, "C was cancelled");

    let refused = incoming(
        store,
        source.id,
        vec![order(
            "o8",
            json!({"userId": "8"}),
            "Order Completed",
            json!({"order_id": "E", "revenue": 9, "currency": "GBP"}),
        )],
    );
    let (field, reason) = refused[0].refusal().expect("GBP has no rate");
    assert_eq!(field, "properties.currency");
    assert!(reason.contains("unknown currency GBP"), "{reason}");
    assert!(store.ingest(&refused).is_err(), "the writer refuses it too");
    assert!(
        store
            .resolve_profile(&key(store, "user_id:8"))
            .unwrap()
            .is_none()
    );
}

pub fn computed_traits_merge_key_by_key(store: &Store) {
    let source = store.bootstrap(None, None).unwrap().source;
    store
        .ingest(&incoming(
            store,
            source.id,
            vec![json!({"type": "identify", "messageId": "c1",
            "userId": "1", "timestamp": "2026-05-02T10:00:00Z"})],
        ))
        .unwrap();
    let id = store
        .resolve_profile(&key(store, "user_id:1"))
        .unwrap()
        .unwrap();
    let traits = |v: Value| v.as_object().unwrap().clone();
    store
        .write_computed_traits(&[(
            id,
            traits(json!({"rfm_segment": "champions", "p_alive": 0.9})),
        )])
        .unwrap();
    store
        .write_computed_traits(&[(id, traits(json!({"cluster": 2, "p_alive": 0.8})))])
        .unwrap();
    let p = store
        .profile(&key(store, "user_id:1"), &[])
        .unwrap()
        .unwrap();
    assert_eq!(
        Value::Object(p.computed),
        json!({"rfm_segment": "champions", "p_alive": 0.8, "cluster": 2})
    );
}

pub fn concurrent_nodes_deduplicate_exactly(fixture: &Fixture) {
    let store = &fixture.store;
    let source = store.bootstrap(None, None).unwrap().source;
    let second = Arc::new(fixture.second_node());
    let mut handles = Vec::new();
    for (node, handle) in [store.clone(), second.clone(), store.clone(), second]
        .into_iter()
        .enumerate()
    {
        let source = source.id;
        handles.push(std::thread::spawn(move || {
            for round in 0..20 {
                // Every node sends the same 50 messages per round, in a different order.
                let mut messages: Vec<Value> = (0..50)
                    .map(|i| json!({"type": "track", "userId": format!("user-{}", i % 7), "anonymousId": format!("anon-{i}"),
                                    "messageId": format!("r{round}-m{i}"), "event": "Tick"}))
                    .collect();
                messages.rotate_left((node * 13) % 50);
                handle.ingest(&incoming(&handle, source, messages)).expect("ingest");
            }
        }));
    }
    for h in handles {
        h.join().expect("node thread");
    }
    assert_eq!(store.event_count().unwrap(), 20 * 50);
    assert_eq!(store.profile_count().unwrap(), 7);
    let p = store
        .profile(&key(store, "user_id:user-3"), &[])
        .unwrap()
        .unwrap();
    let anon: BTreeSet<&str> = p
        .identifiers
        .iter()
        .filter(|i| i.kind == "anonymous_id")
        .map(|i| i.value.as_str())
        .collect();
    assert_eq!(anon.len(), 7, "{anon:?}");
    // user-3 sends messages 3, 10, 17, 24, 31, 38 and 45 of each round.
    assert_eq!(p.event_count, 20 * 7);
}

/// A write that finds another writer holding the store's write lock for longer than
/// `lock_wait` fails with a transient error (503 at the HTTP edge) and stores nothing; once
/// the lock is let go, the same write succeeds.
pub fn a_locked_store_fails_transiently_and_stores_nothing(fixture: &Fixture) {
    let impatient = fixture.impatient_handle();
    let source = fixture.store.bootstrap(None, None).unwrap().source;
    let batch = incoming(
        &impatient,
        source.id,
        vec![
            json!({"type": "track", "userId": "locked-out", "messageId": "l1", "event": "Product Viewed"}),
        ],
    );
    let holder = hold_write_lock(&fixture.store, crate::WriteDomain::Customers);
    let refused = impatient
        .ingest(&batch)
        .expect_err("the write lock is held elsewhere");
    assert!(refused.is_transient(), "not transient: {refused}");
    drop(holder);
    assert_eq!(fixture.store.event_count().unwrap(), 0, "nothing stored");
    assert_eq!(
        impatient.ingest(&batch).unwrap().stored,
        1,
        "stored on retry"
    );
    assert!(
        impatient
            .resolve_profile(&key(&impatient, "user_id:locked-out"))
            .unwrap()
            .is_some()
    );
}

/// Ingestion and the decider write under separate locks (two files on SQLite, two advisory
/// locks on PostgreSQL): either one held elsewhere leaves the other free, and still stops
/// writers of its own kind.
pub fn customer_and_decision_writes_never_wait_for_each_other(fixture: &Fixture) {
    use crate::WriteDomain;
    let impatient = fixture.impatient_handle();
    let source = fixture.store.bootstrap(None, None).unwrap().source;
    let event = |id: &str| {
        incoming(
            &impatient,
            source.id,
            vec![json!({"type": "track", "userId": "u", "messageId": id, "event": "Viewed"})],
        )
    };
    // A decision's write: the lock of its domain and nothing else.
    let decide = || impatient.write_transaction(WriteDomain::Decisions, |_| Ok(()));

    let customers = hold_write_lock(&fixture.store, WriteDomain::Customers);
    decide().expect("decisions are free while customers are locked");
    let refused = impatient
        .ingest(&event("c1"))
        .expect_err("customers locked");
    assert!(refused.is_transient(), "not transient: {refused}");
    drop(customers);

    let decisions = hold_write_lock(&fixture.store, WriteDomain::Decisions);
    assert_eq!(
        impatient.ingest(&event("d1")).unwrap().stored,
        1,
        "customers are free while decisions are locked"
    );
    let refused = decide().expect_err("decisions locked");
    assert!(refused.is_transient(), "not transient: {refused}");
    drop(decisions);

    assert_eq!(fixture.store.event_count().unwrap(), 1);
}

/// A role's lease is exclusive across handles (processes) on one store, and passes on when
/// its holder lets go.
pub fn leases_are_exclusive(fixture: &Fixture) {
    let second = fixture.second_node();
    let held = fixture
        .store
        .try_lease("decider")
        .unwrap()
        .expect("free at first");
    assert!(second.try_lease("decider").unwrap().is_none(), "taken");
    assert!(
        second.try_lease("dispatcher").unwrap().is_some(),
        "roles are separate"
    );
    drop(held);
    assert!(second.try_lease("decider").unwrap().is_some(), "handed on");
}

/// The decider's deferred commits skip their own sync and nothing else: the next
/// transaction on the same writer (an acknowledged change to a segment, say) is synced
/// again.
pub fn a_deferred_commit_defers_only_itself(store: &Store) {
    use crate::sql::{Commit, Conn, Dialect};
    use crate::{StoreError, WriteDomain};

    let setting = |conn: &mut dyn Conn, domain: WriteDomain| -> Result<String, StoreError> {
        let sql = match conn.dialect() {
            Dialect::Sqlite => format!("PRAGMA {}.synchronous", domain.schema()),
            Dialect::Postgres => "SHOW synchronous_commit".to_owned(),
        };
        let row = conn.query_one(&sql, &[])?.expect("a setting");
        Ok(match &row[0] {
            crate::sql::Val::Int(level) => level.to_string(),
            other => other.text().expect("a setting").to_owned(),
        })
    };
    let sqlite = store.conn().expect("a connection").conn().dialect() == Dialect::Sqlite;
    // SQLite's NORMAL is 1 and FULL 2.
    let (deferred, durable) = if sqlite { ("1", "2") } else { ("off", "on") };
    for domain in WriteDomain::ALL {
        for _ in 0..2 {
            let seen = store
                .write_transaction_with(domain, Commit::Deferred, |c| setting(c, domain))
                .unwrap();
            assert_eq!(seen, deferred, "{domain:?}");
            let seen = store
                .write_transaction(domain, |c| setting(c, domain))
                .unwrap();
            assert_eq!(seen, durable, "{domain:?}: the next commit is synced again");
        }
    }
}

/// Two people saving a source under the same name at the same moment: one is saved, the
/// other gets a clear error (the check and the insert are one write transaction), never a
/// database error.
pub fn names_taken_at_the_same_moment_conflict_cleanly(store: &Store) {
    use crate::StoreError;

    saved_once_when_raced(
        "source",
        &|| store.create_source("till", None),
        |e| matches!(e, StoreError::Invalid(m) if m.contains("already exists")),
    );
}

/// Six saves of one thing at the same moment: exactly one is saved, and each of the
/// others fails with an error `conflict` accepts (never a database error).
pub fn saved_once_when_raced<T: Send>(
    what: &str,
    save: &(dyn Fn() -> Result<T, crate::StoreError> + Sync),
    conflict: fn(&crate::StoreError) -> bool,
) {
    let results: Vec<Result<T, crate::StoreError>> = std::thread::scope(|s| {
        let tries: Vec<_> = (0..6).map(|_| s.spawn(save)).collect();
        tries
            .into_iter()
            .map(|t| t.join().expect("no panic"))
            .collect()
    });
    let saved = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(saved, 1, "{what}: saved once");
    for r in results.iter().filter_map(|r| r.as_ref().err()) {
        assert!(conflict(r), "{what}: {r}");
    }
}

/// Runs conformance cases in scope against both backends, each in a fresh store: cases
/// taking a `&Store`, then (after `;`) cases taking the whole `&Fixture` (a second node, an
/// impatient handle). PostgreSQL cases are skipped, saying so, when
/// `PROSSIMO_TEST_DATABASE_URL` is unset:
/// `prossimo_store::conformance_cases!(users_and_sessions, …; leases_are_exclusive);`.
#[macro_export]
macro_rules! conformance_cases {
    ($($name:ident),* $(,)? $(; $($whole:ident),* $(,)?)?) => {
        $crate::conformance_cases!(@backend sqlite, Some($crate::testsuite::Fixture::sqlite());
            [$($name),*]; [$($($whole),*)?]);
        $crate::conformance_cases!(@backend postgres, $crate::testsuite::Fixture::postgres();
            [$($name),*]; [$($($whole),*)?]);
    };
    (@backend $backend:ident, $fixture:expr; [$($name:ident),*]; [$($whole:ident),*]) => {
        mod $backend {
            fn fixture() -> Option<$crate::testsuite::Fixture> {
                $fixture
            }
            $(
                #[test]
                fn $name() {
                    match fixture() {
                        Some(f) => super::$name(&f.store),
                        None => eprintln!("skipped: PROSSIMO_TEST_DATABASE_URL is not set"),
                    }
                }
            )*
            $(
                #[test]
                fn $whole() {
                    match fixture() {
                        Some(f) => super::$whole(&f),
                        None => eprintln!("skipped: PROSSIMO_TEST_DATABASE_URL is not set"),
                    }
                }
            )*
        }
    };
}

/// Lays out in `dir` a SQLite store as the core's migrations up to `version` left it: an
/// install from before later migrations (and before features owned their tables), for
/// upgrade tests.
pub fn sqlite_store_at_version(dir: &std::path::Path, version: i32) {
    let mut conn = crate::sql::open_sqlite(
        &dir.join(crate::DATABASE_FILE),
        std::time::Duration::from_secs(5),
    )
    .expect("open");
    crate::migrations::sqlite::migrations::runner()
        .set_target(refinery::Target::Version(version))
        .run(&mut conn)
        .expect("migrate to the old version");
}

/// Every table and index of a SQLite store (both files) as the database would create it
/// now, as `file kind name: sql` by file and name; migration history tables left out.
pub fn sqlite_schema(store: &Store) -> Vec<String> {
    let rows = store
        .read(|conn| {
            conn.query(
                "SELECT 'main', type, name, COALESCE(sql, '') FROM main.sqlite_master
                 UNION ALL
                 SELECT 'decisions', type, name, COALESCE(sql, '') FROM decisions.sqlite_master
                 ORDER BY 1, 3",
                &[],
            )
        })
        .expect("the schema");
    schema_lines(&rows)
}

/// What a feature's SQLite migrations create when run alone on an empty database, in the
/// form of [`sqlite_schema`] (under the file of the feature's write domain).
pub fn sqlite_schema_of(schema: &crate::Schema) -> Vec<String> {
    let mut conn = rusqlite::Connection::open_in_memory().expect("an empty database");
    let mut runner = (schema.sqlite)();
    runner.set_migration_table_name(schema.history_table());
    runner.run(&mut conn).expect("the feature's migrations");
    let file = match schema.domain {
        crate::WriteDomain::Customers => "main",
        crate::WriteDomain::Decisions => "decisions",
    };
    let mut statement = conn
        .prepare("SELECT type, name, COALESCE(sql, '') FROM sqlite_master ORDER BY name")
        .expect("prepare");
    let rows: Vec<Vec<crate::sql::Val>> = statement
        .query_map([], |row| {
            Ok(vec![
                crate::sql::Val::from(file),
                crate::sql::Val::Text(row.get(0)?),
                crate::sql::Val::Text(row.get(1)?),
                crate::sql::Val::Text(row.get(2)?),
            ])
        })
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows");
    schema_lines(&rows)
}

/// `file kind name: sql`, whitespace folded and `IF NOT EXISTS` dropped (a feature's
/// first migration adopts with it what the core once created without it).
fn schema_lines(rows: &[Vec<crate::sql::Val>]) -> Vec<String> {
    rows.iter()
        .filter_map(|row| {
            let texts: Vec<&str> = row.iter().filter_map(|v| v.text()).collect();
            let [file, kind, name, sql] = texts[..] else {
                return None;
            };
            let history = name.ends_with("_migrations") || name.starts_with("refinery_");
            (!history && !name.starts_with("sqlite_")).then(|| {
                let sql = sql
                    .split_whitespace()
                    .collect::<Vec<_>>()
                    .join(" ")
                    .replace(" IF NOT EXISTS", "");
                format!("{file} {kind} {name}: {sql}")
            })
        })
        .collect()
}

/// A schema of its own on the test database (`PROSSIMO_TEST_DATABASE_URL`), not yet created;
/// `None` when the variable is unset.
pub fn postgres_location() -> Option<Location> {
    let url = std::env::var("PROSSIMO_TEST_DATABASE_URL").ok()?;
    Some(Location::Postgres {
        url,
        schema: Some(format!("t_{}", uuid::Uuid::new_v4().simple())),
    })
}

/// A client whose search path is `location`'s schema, created if need be.
fn postgres_client(location: &Location) -> (postgres::Client, String) {
    let Location::Postgres {
        url,
        schema: Some(schema),
    } = location
    else {
        panic!("a PostgreSQL location with a schema of its own");
    };
    let mut admin = postgres::Client::connect(url, postgres::NoTls).expect("connect");
    admin
        .batch_execute(&format!("CREATE SCHEMA IF NOT EXISTS {schema}"))
        .expect("the schema");
    let mut config: postgres::Config = url.parse().expect("a URL");
    config.options(&format!("-c search_path={schema}"));
    (
        config.connect(postgres::NoTls).expect("connect"),
        schema.clone(),
    )
}

/// Lays out at `location` a PostgreSQL store as the core's migrations up to `version`
/// left it, for upgrade tests (see [`sqlite_store_at_version`]).
pub fn postgres_store_at_version(location: &Location, version: i32) {
    let (mut client, _) = postgres_client(location);
    crate::migrations::postgres::migrations::runner()
        .set_target(refinery::Target::Version(version))
        .run(&mut client)
        .expect("migrate to the old version");
}

/// Every column, index and check or foreign-key constraint of the PostgreSQL store at
/// `location`, as `kind table name: definition` sorted; migration history tables left out.
/// Columns are compared by name, so one added later by `ALTER TABLE` matches one created
/// with its table.
pub fn postgres_schema(location: &Location) -> Vec<String> {
    let (mut client, schema) = postgres_client(location);
    let rows = client
        .query(
            "SELECT 'column', c.table_name, c.column_name,
                    c.data_type || CASE WHEN c.is_nullable = 'NO' THEN ' not null' ELSE '' END
                      || COALESCE(' default ' || c.column_default, '')
               FROM information_schema.columns c WHERE c.table_schema = current_schema()
             UNION ALL
             SELECT 'index', tablename, indexname, indexdef
               FROM pg_indexes WHERE schemaname = current_schema()
             UNION ALL
             SELECT 'constraint', conrelid::regclass::text, conname, pg_get_constraintdef(oid)
               FROM pg_constraint
              WHERE connamespace = current_schema()::regnamespace AND contype IN ('c', 'f')",
            &[],
        )
        .expect("the schema");
    let qualified = format!("{schema}.");
    let mut lines: Vec<String> = rows
        .iter()
        .filter_map(|row| {
            let (kind, table, name, definition): (String, String, String, String) =
                (row.get(0), row.get(1), row.get(2), row.get(3));
            let history = table.ends_with("_migrations") || table.starts_with("refinery_");
            (!history).then(|| {
                format!(
                    "{kind} {table} {name}: {}",
                    definition.replace(&qualified, "")
                )
            })
        })
        .collect();
    lines.sort();
    lines
}

/// What a feature's PostgreSQL migrations create when run alone in an empty schema, in the
/// form of [`postgres_schema`]; `None` when `PROSSIMO_TEST_DATABASE_URL` is unset.
pub fn postgres_schema_of(schema: &crate::Schema) -> Option<Vec<String>> {
    let location = postgres_location()?;
    let (mut client, _) = postgres_client(&location);
    let mut runner = (schema.postgres)();
    runner.set_migration_table_name(schema.history_table());
    runner.run(&mut client).expect("the feature's migrations");
    Some(postgres_schema(&location))
}

//! The destinations' tables on both backends (PostgreSQL when
//! `PROSSIMO_TEST_DATABASE_URL` is set, see `scripts/postgres.sh`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use prossimo_act::destinations::{
    AttemptRecord, DeliveryOutcome, DeliveryStatus, DestinationInput, DestinationKind,
    Destinations, NewDelivery, enqueue,
};
use prossimo_store::testsuite::saved_once_when_raced;
use prossimo_store::{Store, StoreError, WriteDomain};
use serde_json::json;

/// A segments destination named "crm" that nothing listens to.
fn crm_destination() -> DestinationInput {
    DestinationInput {
        name: "crm".into(),
        kind: DestinationKind::Segments,
        url: "http://127.0.0.1:9/hook".into(),
        filter: None,
        secret: None,
        enabled: true,
    }
}

/// The outbox hands out a profile's deliveries one at a time and in order, while another
/// profile's go ahead (a retry holds back only its profile); dead ones leave the queue
/// and come back when replayed.
fn deliveries_keep_each_profile_in_order(store: &Store) {
    let destinations = Destinations::of(store).unwrap();
    let destination = destinations.create(&crm_destination()).unwrap();
    let owed = |profile: i64, n: u32| NewDelivery {
        destination_id: destination.id,
        profile_id: profile,
        webhook_id: format!("msg_{profile}_{n}"),
        payload: json!({"n": n}),
    };
    store
        .write_transaction(WriteDomain::Decisions, |conn| {
            enqueue(conn, &[owed(1, 1), owed(1, 2), owed(2, 1)], store.now_ms())
        })
        .unwrap();
    let far = i64::MAX / 2;
    let due: Vec<String> = destinations
        .due_deliveries(destination.id, far, 10)
        .unwrap()
        .into_iter()
        .map(|d| d.webhook_id)
        .collect();
    assert_eq!(due, ["msg_1_1", "msg_2_1"], "one per profile, oldest first");

    let first = destinations
        .due_deliveries(destination.id, far, 10)
        .unwrap()[0]
        .id;
    // Deliveries are due from when they were written (now); the retry a minute later.
    let retry = store.now_ms() + 60_000;
    let failed = AttemptRecord {
        at: 1_000,
        status_code: Some(500),
        error: Some("HTTP 500".into()),
        duration_ms: 3,
    };
    destinations
        .record_attempts(&[(first, failed.clone(), DeliveryOutcome::RetryAt(retry))])
        .unwrap();
    let at = |now: i64| -> Vec<String> {
        destinations
            .due_deliveries(destination.id, now, 10)
            .unwrap()
            .into_iter()
            .map(|d| d.webhook_id)
            .collect()
    };
    assert_eq!(at(retry - 1), ["msg_2_1"], "profile 1 waits for its retry");
    assert_eq!(at(retry), ["msg_1_1", "msg_2_1"]);

    destinations
        .record_attempts(&[(first, failed, DeliveryOutcome::Dead)])
        .unwrap();
    assert_eq!(
        at(far),
        ["msg_1_2", "msg_2_1"],
        "a dead letter no longer blocks"
    );
    let dead = destinations
        .deliveries(destination.id, Some(DeliveryStatus::Dead), None, 10)
        .unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].attempts, 2);
    let counts = destinations.delivery_counts(destination.id).unwrap();
    assert_eq!((counts["dead"], counts["pending"]), (1, 2));
    assert_eq!(destinations.delivery_attempts(first).unwrap().len(), 2);
    assert_eq!(destinations.replay_dead(destination.id, None).unwrap(), 1);
    assert_eq!(
        at(far),
        ["msg_1_1", "msg_2_1"],
        "replayed: first in line again"
    );
}

/// Two people saving a destination under one name at the same moment: one is saved, the
/// other gets a clear conflict.
fn one_destination_per_name_when_raced(store: &Store) {
    let destinations = Destinations::of(store).unwrap();
    saved_once_when_raced(
        "destination",
        &|| destinations.create(&crm_destination()),
        |e| matches!(e, StoreError::Conflict(_)),
    );
}

prossimo_store::conformance_cases!(
    deliveries_keep_each_profile_in_order,
    one_destination_per_name_when_raced
);

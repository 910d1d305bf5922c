//! The console's tables on both backends (PostgreSQL when `PROSSIMO_TEST_DATABASE_URL`
//! is set, see `scripts/postgres.sh`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use prossimo_console::users::{Role, Users};
use prossimo_model::ManualClock;
use prossimo_store::testsuite::saved_once_when_raced;
use prossimo_store::{Store, StoreError};

/// Unique e-mails (normalised), sessions found by token only while live, ended by
/// sign-out, a password change or disabling the user.
fn users_and_sessions(store: &Store) {
    let users = Users::of(store).unwrap();
    let anna = users
        .create(
            " Anna@Example.it ",
            Some("Anna"),
            Role::Marketer,
            "$argon2id$x",
        )
        .unwrap();
    assert_eq!(anna.email, "anna@example.it");
    assert!(matches!(
        users.create("anna@example.it", None, Role::Viewer, "h"),
        Err(StoreError::Conflict(_))
    ));
    assert!(matches!(
        users.create("not an email", None, Role::Viewer, "h"),
        Err(StoreError::Invalid(_))
    ));
    assert!(matches!(
        "owner".parse::<Role>(),
        Err(StoreError::Invalid(_))
    ));
    assert!(Role::Admin.allows(Role::Marketer) && !Role::Viewer.allows(Role::Marketer));

    let session = users.create_session(anna.id, 60_000).unwrap();
    let found = users
        .session(&session.token)
        .unwrap()
        .expect("live session");
    assert_eq!(found.user, anna);
    assert_eq!(found.csrf, session.csrf);
    assert!(users.session("ps_guess").unwrap().is_none());
    let expired = users.create_session(anna.id, -1).unwrap();
    assert!(users.session(&expired.token).unwrap().is_none(), "expired");

    users.end_session(&session.token).unwrap();
    assert!(
        users.session(&session.token).unwrap().is_none(),
        "signed out"
    );

    let again = users.create_session(anna.id, 60_000).unwrap();
    let updated = users
        .update(
            "ANNA@example.it",
            Some(Role::Admin),
            Some("$argon2id$y"),
            None,
        )
        .unwrap();
    assert_eq!(
        (updated.role, updated.password_hash.as_str()),
        (Role::Admin, "$argon2id$y")
    );
    assert!(
        users.session(&again.token).unwrap().is_none(),
        "a new password signs out"
    );

    let last = users.create_session(anna.id, 60_000).unwrap();
    assert!(
        users
            .update("anna@example.it", None, None, Some(true))
            .unwrap()
            .disabled
    );
    assert!(users.session(&last.token).unwrap().is_none(), "disabled");
    assert_eq!(users.list().unwrap().len(), 1);
    assert!(matches!(
        users.update("nobody@example.it", None, None, Some(true)),
        Err(StoreError::NotFound(_))
    ));
}

/// Two admins adding the same person at the same moment: one user, one clear conflict.
fn one_user_per_email_when_raced(store: &Store) {
    let users = Users::of(store).unwrap();
    saved_once_when_raced(
        "user",
        &|| users.create("Anna@Example.it", None, Role::Viewer, "hash"),
        |e| matches!(e, StoreError::Conflict(_)),
    );
}

/// A session lasts its time by the store's clock, the one every feature reads.
fn sessions_expire_by_the_stores_clock(store: &Store) {
    let clock = Arc::new(ManualClock::at(1_800_000_000_000));
    let timed = Store::open(store.location(), store.identity().clone())
        .unwrap()
        .with_clock(clock.clone());
    let users = Users::of(&timed).unwrap();
    let bruno = users
        .create("bruno@example.it", None, Role::Viewer, "h")
        .unwrap();
    assert_eq!(bruno.created_at, 1_800_000_000_000);
    let session = users.create_session(bruno.id, 60_000).unwrap();
    clock.advance(59_999);
    assert!(users.session(&session.token).unwrap().is_some());
    clock.advance(1);
    assert!(users.session(&session.token).unwrap().is_none(), "expired");
}

prossimo_store::conformance_cases!(
    users_and_sessions,
    one_user_per_email_when_raced,
    sessions_expire_by_the_stores_clock
);

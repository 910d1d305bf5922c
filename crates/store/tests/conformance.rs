//! The backend conformance suite, once per backend.
// Tests: a failing unwrap is the report, and a test thread may sleep.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::disallowed_methods)]

use prossimo_store::conformance_suite;

conformance_suite!(sqlite, Some(Fixture::sqlite()));
conformance_suite!(postgres, Fixture::postgres());

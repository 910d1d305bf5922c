//! End-to-end tests of the real `prossimo` binary. One test binary (link time); one module
//! per area.
// Tests: a failing unwrap is the report, and a test thread may sleep.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::disallowed_methods)]

mod common;
mod durability;
mod import;
mod journeys;
mod segments;
mod serve;

//! Every HTTP test of Prossimo in one binary: the API and the console, served by the real
//! router over a real store (`harness`), grouped by area as the handlers are.
// Tests: a failing unwrap is the report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod analytics;
mod audiences;
mod browser;
mod connections;
mod console;
mod edge;
mod harness;
mod journeys;
mod messages;
mod profiles;
mod tracking;

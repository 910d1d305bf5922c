//! The console as a browser uses it.

mod analytics;
mod audiences;
mod auth;
mod broadcasts;
mod customers;
mod journeys;
mod live;
mod messages;
mod settings;

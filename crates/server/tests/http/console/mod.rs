//! The console as a browser uses it.

mod analytics;
mod audiences;
mod auth;
mod customers;
mod live;
mod settings;

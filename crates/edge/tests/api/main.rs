//! Integration tests over real HTTP against a real database, each on SQLite and PostgreSQL.
//! They all live in this one binary: each extra test file would be another binary to link.
// Test helpers outside #[test] functions may panic: a failed expectation is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod helpers;

/// `both_backends!(case, ...)` runs each `async fn case(app: TestApp)` on both stores.
pub(crate) use domain::both_backends;

mod activity;
mod admin;
mod auth;
mod browser;
mod cli;
mod concurrency;
mod discovery;
mod errors;
mod fairness;
mod filters;
mod groups;
mod limits;
mod linking;
mod memberships;
mod oauth;
mod observability;
mod openapi;
mod patch;
mod portal;
mod replay;
mod users;
mod webhooks;

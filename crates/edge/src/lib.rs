//! The scimgate HTTP edge: SCIM routes under `/scim/v2/{org}`, the admin API under `/admin/v1`,
//! authentication and rate limits, error mapping, health, configuration and the command line.
#![forbid(unsafe_code)]

pub mod activity;
pub mod admin;
pub mod auth;
pub mod cli;
pub mod config;
pub mod error;
pub mod health;
pub mod issuing;
pub mod jwks;
pub mod memory;
pub mod metrics;
pub mod oauth;
pub mod refusal;
pub mod retention;
pub mod route_table;
pub mod scim;
pub mod setup_links;
pub mod share;
pub mod shutdown;
pub mod startup;
pub mod state;
pub mod telemetry;
pub mod usage;
pub mod web;
pub mod webhooks;

pub use config::Settings;
pub use startup::Application;

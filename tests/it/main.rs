//! Integration tests, in one binary so they link once. Each test gets its own database: an
//! SQLite file in a temporary directory, and — when `LAPOR_TEST_PG_URL` is set — a fresh
//! PostgreSQL database created for it and dropped afterwards.

#![expect(
    clippy::unwrap_used,
    clippy::panic,
    reason = "test helpers fail the test loudly on any unexpected error"
)]

mod agencies;
mod api;
mod api_rules;
mod bin;
mod browser;
mod cli;
mod codes;
mod crashes;
mod db_resilience;
mod docs;
mod escalation;
mod federation;
mod fixtures;
mod fold_props;
mod hardening;
mod helpers;
mod hub_api;
mod hub_health;
mod hub_processes;
mod hub_props;
mod kannel;
mod links;
mod linksim;
mod migrations;
mod nodes;
mod operator_walk;
mod operators;
mod outage;
mod packaging;
mod protocol;
mod queries;
mod refusals;
mod restore;
mod return_flow;
mod roster;
mod rotation;
mod signed_log;
mod sms;
mod store;
mod throttles;
mod web;
mod web_dashboard;
mod web_officers;

/// A report used by several test modules.
pub fn api_report() -> lapor_node::tickets::NewReport {
    store::report()
}

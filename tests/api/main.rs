//! Integration tests: each starts the real server on port 0 with a fresh
//! database (SQLite by default, PostgreSQL with
//! `OKR_PULSE_TEST_DATABASE=postgres`) and talks HTTP to it.

mod auth;
mod batching;
mod bounds;
mod budget;
mod caching;
mod check_in;
mod connections;
mod data_sources;
mod edge;
mod faults;
mod fuzz;
mod google;
mod health;
mod helpers;
mod isolation;
mod key_results;
mod objectives;
mod organization;
mod replicas;
mod subscriptions;
mod web;
mod websocket;

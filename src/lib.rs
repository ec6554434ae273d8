//! okr-pulse: a GraphQL server for OKRs whose progress updates itself from
//! Google BigQuery.
//!
//! # Layout
//!
//! Data flows one way: [`graphql`] parses inputs into [`domain`] values and
//! calls [`service`], which writes through [`store`] or [`sync`] and then
//! publishes what was committed on [`events`].
//!
//! - [`config`]: every setting, grouped, as flags and environment variables.
//! - [`startup`]: the [`startup::Application`]: connect, migrate, bind, serve.
//! - [`shutdown`]: one cancellation signal and task tracker for everything.
//! - [`telemetry`]: the tracing subscriber.
//! - [`error`]: [`error::AppError`] and the GraphQL extension codes.
//! - [`auth`]: bearer tokens and the one [`auth::Authenticator`].
//! - [`domain`]: pure rules and parsed inputs; the objective-or-key-result [`domain::Node`].
//! - [`service`]: the write paths; the only place events are published.
//! - [`store`]: sea-orm reads and writes, scoped to one organization.
//! - [`bigquery`]: the only code that knows BigQuery.
//! - [`sync`]: running queries and recording their outcomes; the scheduler.
//! - [`events`]: progress and sync events, across replicas on PostgreSQL.
//! - [`graphql`]: the schema: roots per feature, output types, loaders.
//! - [`http`]: the axum router and the edge limits: `/graphql`, `/healthz`, `/readyz`.
//! - [`serve`]: accepting connections, with a header read timeout.
//! - [`web`]: the dashboard and GraphiQL, embedded from `web/dist/`.
//! - [`ws`]: WebSocket serving and the protocol guard in front of async-graphql.

#![recursion_limit = "256"]

pub mod auth;
pub mod bigquery;
pub mod config;
pub mod domain;
pub mod error;
pub mod events;
pub mod graphql;
pub mod http;
pub mod metrics;
pub mod serve;
pub mod service;
pub mod shutdown;
pub mod startup;
pub mod store;
pub mod sync;
pub mod telemetry;
pub mod web;
pub mod ws;

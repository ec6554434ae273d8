//! okr-pulse: a GraphQL server for OKRs whose progress updates itself from
//! Google BigQuery.
//!
//! # Layout
//!
//! - [`config`]: every setting, as a flag and an environment variable.
//! - [`startup`]: the [`startup::Application`]: connect, migrate, bind, serve.
//! - [`telemetry`]: the tracing subscriber.
//! - [`error`]: [`error::AppError`] and the GraphQL extension codes.
//! - [`auth`]: bearer tokens and the [`auth::Principal`] of a request.
//! - [`domain`]: pure rules: progress, expected progress, status, input checks.
//! - [`store`]: sea-orm reads and writes, scoped to one organization.
//! - [`bigquery`]: the only code that knows BigQuery.
//! - [`sync`]: linking, refreshing and testing against BigQuery.
//! - [`events`]: progress and sync events, across replicas on PostgreSQL.
//! - [`graphql`]: the schema: roots per feature, output types, loaders.
//! - [`http`]: the axum router: `/graphql`, `/healthz`, `/readyz`.
//! - [`ws`]: the WebSocket protocol guard in front of async-graphql.

pub mod auth;
pub mod bigquery;
pub mod config;
pub mod domain;
pub mod error;
pub mod events;
pub mod graphql;
pub mod http;
pub mod startup;
pub mod store;
pub mod sync;
pub mod telemetry;
pub mod ws;

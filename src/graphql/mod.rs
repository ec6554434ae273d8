//! The GraphQL schema: feature roots merged into one Query and Mutation,
//! output types that are not database models, and per-request loaders.

pub mod admit;
pub mod budget;
mod connections;
mod context;
pub mod cost;
mod data_sources;
mod events;
mod loaders;
mod okrs;
mod org;
mod scalars;
mod types;

use async_graphql::{MergedObject, MergedSubscription, Schema, SchemaBuilder};

use crate::error::AppError;

pub use context::{RequestAuth, RequestContext, RequestTime, request_data};
pub use loaders::Loaders;
pub use scalars::Int64;

/// Every query field, by feature.
#[derive(MergedObject, Default)]
pub struct Query(
    org::OrgQuery,
    okrs::OkrQuery,
    connections::ConnectionQuery,
    data_sources::DataSourceQuery,
);

/// Every mutation field, by feature.
#[derive(MergedObject, Default)]
pub struct Mutation(
    org::OrgMutation,
    okrs::OkrMutation,
    connections::ConnectionMutation,
    data_sources::DataSourceMutation,
);

/// Every subscription field, by feature.
#[derive(MergedSubscription, Default)]
pub struct Subscription(events::EventSubscription);

/// A list size asked for: 1 to `max`, else `BAD_USER_INPUT` naming the argument.
pub fn list_limit(argument: &'static str, asked: i32, max: u64) -> Result<u64, AppError> {
    match u64::try_from(asked) {
        Ok(n) if (1..=max).contains(&n) => Ok(n),
        _ => Err(AppError::bad_input(
            argument,
            format!(
                "{argument} must be between 1 and {max} (got {asked}); page through longer lists."
            ),
        )),
    }
}

/// The okr-pulse schema.
pub type AppSchema = Schema<Query, Mutation, Subscription>;

/// Query depth beyond which a request is refused before it runs.
const MAX_DEPTH: usize = 32;

/// The schema without its server-wide data (enough to export the SDL).
pub fn schema_builder() -> SchemaBuilder<Query, Mutation, Subscription> {
    Schema::build(
        Query::default(),
        Mutation::default(),
        Subscription::default(),
    )
    .limit_depth(MAX_DEPTH)
    .extension(budget::BudgetExtension)
}

/// The SDL as checked in at `schema.graphql`.
pub fn sdl() -> String {
    use async_graphql::SDLExportOptions;
    schema_builder()
        .finish()
        .sdl_with_options(SDLExportOptions::new().sorted_fields().sorted_enum_items())
}

#[cfg(test)]
mod tests {
    #[test]
    fn schema_graphql_matches_the_code() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/schema.graphql");
        let current = super::sdl();
        if std::env::var_os("UPDATE_SCHEMA").is_some() {
            std::fs::write(path, &current).unwrap();
        }
        let checked_in = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            checked_in == current,
            "schema.graphql is stale; regenerate it with:\n  UPDATE_SCHEMA=1 cargo test --lib schema_graphql_matches_the_code"
        );
    }
}

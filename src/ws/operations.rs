//! How one WebSocket connection runs its operations: each is admitted like
//! an HTTP request (parsed and measured), and gets its own instant and its
//! own loaders, so a long-lived socket never reads stale data.
//! Subscriptions that ask the same thing in one organization share one
//! execution ([`Feeds`]).

use std::sync::Arc;

use async_graphql::{
    Data, Executor, Request, Response, ServerError,
    parser::types::{DocumentOperations, ExecutableDocument, OperationType},
};
use futures::{StreamExt, stream::BoxStream};
use sea_orm::DatabaseConnection;

use super::feeds::{FeedKey, Feeds};
use crate::{
    graphql::{
        AppSchema, Loaders, RequestTime,
        admit::{Admission, cap_errors, code_errors},
    },
    store,
};

/// The executor async-graphql's WebSocket calls for every operation.
#[derive(Clone)]
pub struct Operations {
    pub schema: AppSchema,
    pub reads: DatabaseConnection,
    /// The connection's organization, for its loaders and shared feeds.
    pub org_id: String,
    pub admission: Arc<Admission>,
    /// Shared executions of subscriptions.
    pub feeds: Feeds,
    /// Largest `variables` one operation may carry, as JSON text: a
    /// subscription keeps its variables for as long as it lives.
    pub max_variables_bytes: usize,
}

impl Operations {
    /// The request with its own instant and loaders, and whether it is a
    /// subscription; or the refusal.
    fn prepare(&self, mut request: Request) -> Result<(Request, bool), ServerError> {
        let variables = serde_json::to_vec(&request.variables).map_or(0, |text| text.len());
        if variables > self.max_variables_bytes {
            let mut err = ServerError::new(
                format!(
                    "The operation's variables are {variables} bytes; at most {} are allowed (WS_MAX_VARIABLES_BYTES).",
                    self.max_variables_bytes
                ),
                None,
            );
            let mut extensions = async_graphql::ErrorExtensionValues::default();
            extensions.set("code", "QUERY_TOO_COMPLEX");
            extensions.set("limitName", "variables");
            extensions.set("measured", variables as u64);
            extensions.set("limit", self.max_variables_bytes as u64);
            err.extensions = Some(extensions);
            return Err(err);
        }
        let operation_name = request.operation_name.clone();
        let doc = self.admission.check(&mut request)?;
        let subscription = is_subscription(doc, operation_name.as_deref());
        let request = request
            .data(RequestTime(store::now()))
            .data(Loaders::new(self.reads.clone(), self.org_id.clone()));
        Ok((request, subscription))
    }
}

/// Whether the operation a request runs is a subscription.
fn is_subscription(doc: &ExecutableDocument, operation_name: Option<&str>) -> bool {
    let operation = match (&doc.operations, operation_name) {
        (DocumentOperations::Single(operation), _) => Some(operation),
        (DocumentOperations::Multiple(operations), Some(name)) => operations.get(name),
        (DocumentOperations::Multiple(operations), None) if operations.len() == 1 => {
            operations.values().next()
        }
        (DocumentOperations::Multiple(_), None) => None,
    };
    operation.is_some_and(|o| o.node.ty == OperationType::Subscription)
}

/// Codes every error of a response like the HTTP path does.
fn coded(mut response: Response) -> Response {
    cap_errors(&mut response.errors);
    code_errors(&mut response.errors);
    response
}

impl Executor for Operations {
    async fn execute(&self, request: Request) -> Response {
        match self.prepare(request) {
            Ok((request, _)) => coded(self.schema.execute(request).await),
            Err(refused) => Response::from_errors(vec![refused]),
        }
    }

    fn execute_stream(
        &self,
        request: Request,
        session_data: Option<Arc<Data>>,
    ) -> BoxStream<'static, Response> {
        let key = |request: &Request| FeedKey {
            org_id: self.org_id.clone(),
            query: request.query.clone(),
            operation_name: request.operation_name.clone(),
            variables: serde_json::to_string(&request.variables).unwrap_or_default(),
        };
        match self.prepare(request) {
            Ok((request, true)) => {
                let schema = self.schema.clone();
                self.feeds.subscribe(key(&request), move || {
                    schema
                        .execute_stream_with_session_data(request, session_data.unwrap_or_default())
                        .map(coded)
                        .boxed()
                })
            }
            Ok((request, false)) => self
                .schema
                .execute_stream_with_session_data(request, session_data.unwrap_or_default())
                .map(coded)
                .boxed(),
            Err(refused) => {
                futures::stream::once(async move { Response::from_errors(vec![refused]) }).boxed()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(query: &str) -> ExecutableDocument {
        async_graphql::parser::parse_query(query).unwrap()
    }

    #[test]
    fn subscriptions_are_told_from_other_operations() {
        assert!(is_subscription(&parsed("subscription { a }"), None));
        assert!(!is_subscription(&parsed("{ a }"), None));
        let both = parsed("query Q { a } subscription S { a }");
        assert!(is_subscription(&both, Some("S")));
        assert!(!is_subscription(&both, Some("Q")));
        assert!(!is_subscription(&both, None));
        assert!(!is_subscription(&both, Some("missing")));
    }
}

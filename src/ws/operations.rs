//! How one WebSocket connection runs its operations: each is admitted like
//! an HTTP request (parsed and measured), and gets its own instant and its
//! own loaders, so a long-lived socket never reads stale data.

use std::sync::Arc;

use async_graphql::{Data, Executor, Request, Response, ServerError};
use futures::{StreamExt, stream::BoxStream};
use sea_orm::DatabaseConnection;

use crate::{
    graphql::{
        AppSchema, Loaders, RequestTime,
        admit::{Admission, code_errors},
    },
    store,
};

/// The executor async-graphql's WebSocket calls for every operation.
#[derive(Clone)]
pub struct Operations {
    pub schema: AppSchema,
    pub db: DatabaseConnection,
    /// The connection's organization, for its loaders.
    pub org_id: String,
    pub admission: Arc<Admission>,
}

impl Operations {
    /// The request with its own instant and loaders, or the refusal.
    fn prepare(&self, mut request: Request) -> Result<Request, ServerError> {
        self.admission.check(&mut request)?;
        Ok(request
            .data(RequestTime(store::now()))
            .data(Loaders::new(self.db.clone(), self.org_id.clone())))
    }
}

/// Codes every error of a response like the HTTP path does.
fn coded(mut response: Response) -> Response {
    code_errors(&mut response.errors);
    response
}

impl Executor for Operations {
    async fn execute(&self, request: Request) -> Response {
        match self.prepare(request) {
            Ok(request) => coded(self.schema.execute(request).await),
            Err(refused) => Response::from_errors(vec![refused]),
        }
    }

    fn execute_stream(
        &self,
        request: Request,
        session_data: Option<Arc<Data>>,
    ) -> BoxStream<'static, Response> {
        match self.prepare(request) {
            Ok(request) => self
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

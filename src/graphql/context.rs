//! What every resolver needs from the request: the caller, the clock and
//! the database.

use async_graphql::Context;
use chrono::{DateTime, Utc};
use sea_orm::DatabaseConnection;

use crate::{domain::progress::Scoring, error::AppError, service::Service, store::Principal};

use super::Loaders;

/// The authentication outcome of a request, put into its data by the HTTP layer.
pub enum RequestAuth {
    Ok(Box<Principal>),
    Failed(AppError),
}

/// Builds the request data for one GraphQL request.
pub fn request_data(
    request: async_graphql::Request,
    db: &DatabaseConnection,
    auth: Result<Principal, AppError>,
) -> async_graphql::Request {
    let request = request.data(RequestTime(crate::store::now()));
    match auth {
        Ok(principal) => request
            .data(Loaders::new(db.clone(), principal.org.id.clone()))
            .data(RequestAuth::Ok(Box::new(principal))),
        Err(err) => request.data(RequestAuth::Failed(err)),
    }
}

/// One instant per request, so every status in a response is for the same moment.
pub struct RequestTime(pub DateTime<Utc>);

/// Accessors resolvers use.
pub trait RequestContext {
    /// The caller, or `UNAUTHENTICATED`.
    fn principal(&self) -> Result<&Principal, AppError>;
    /// The pool reads go to; it sees every committed write.
    fn db(&self) -> &DatabaseConnection;
    /// The pool writes go to.
    fn writes(&self) -> &DatabaseConnection;
    /// The request's instant.
    fn now(&self) -> DateTime<Utc>;
    /// The caller's organization scoring rules.
    fn scoring(&self) -> Result<Scoring, AppError>;
    /// The per-request loaders.
    fn loaders(&self) -> Result<&Loaders, AppError>;
    /// The write paths.
    fn service(&self) -> &Service;
}

impl RequestContext for Context<'_> {
    fn principal(&self) -> Result<&Principal, AppError> {
        match self.data_opt::<RequestAuth>() {
            Some(RequestAuth::Ok(p)) => Ok(p),
            Some(RequestAuth::Failed(err)) => Err(err.clone()),
            None => Err(AppError::Unauthenticated(
                "Send an 'Authorization: Bearer <token>' header.".to_owned(),
            )),
        }
    }

    fn db(&self) -> &DatabaseConnection {
        self.data_unchecked::<DatabaseConnection>()
    }

    fn writes(&self) -> &DatabaseConnection {
        self.service().db()
    }

    fn now(&self) -> DateTime<Utc> {
        self.data_opt::<RequestTime>()
            .map(|t| t.0)
            .unwrap_or_else(crate::store::now)
    }

    fn scoring(&self) -> Result<Scoring, AppError> {
        Ok(self.principal()?.scoring())
    }

    fn loaders(&self) -> Result<&Loaders, AppError> {
        self.principal()?;
        self.data_opt::<Loaders>()
            .ok_or_else(|| AppError::internal(anyhow::anyhow!("request has no loaders")))
    }

    fn service(&self) -> &Service {
        self.data_unchecked::<Service>()
    }
}

//! One error type for the whole server and its GraphQL extension codes.

use std::sync::Arc;

use async_graphql::ErrorExtensions;

use crate::domain::validate::Invalid;

/// Everything a request can fail with.
///
/// It deliberately does not implement `Display`: async-graphql converts any
/// `Display` type into an error carrying that text, which would let database
/// details reach clients. Without it, the only way into a GraphQL error is
/// the `From` impl below, which hides `Internal` details and logs them.
///
/// It clones cheaply (the one large variant holds an `Arc`), so a failure
/// shared by several waiters is handed to each of them as it is.
#[derive(Debug, Clone)]
pub enum AppError {
    /// No token, or one that does not verify.
    Unauthenticated(String),
    /// Authenticated, but not allowed to do this.
    Forbidden(String),
    /// The id does not name anything in the caller's organization.
    NotFound { what: &'static str, id: String },
    /// Input that breaks a rule; `field` names the input field.
    BadUserInput {
        field: &'static str,
        message: String,
    },
    /// The change clashes with existing data.
    Conflict(String),
    /// No connection to link through: the caller may use none.
    NoConnection(String),
    /// Too many requests of this kind; try again later.
    RateLimited(String),
    /// BigQuery refused or failed the query (`QUERY_NOT_SELECT`,
    /// `QUERY_SHAPE` or `BIGQUERY_ERROR`).
    Warehouse {
        code: &'static str,
        message: String,
        reason: Option<String>,
        transient: bool,
    },
    /// Anything unexpected; the detail is logged, never sent.
    Internal(Arc<anyhow::Error>),
}

impl AppError {
    /// The `extensions.code` clients branch on.
    pub fn extension_code(&self) -> &'static str {
        match self {
            AppError::Unauthenticated(_) => "UNAUTHENTICATED",
            AppError::Forbidden(_) => "FORBIDDEN",
            AppError::NotFound { .. } => "NOT_FOUND",
            AppError::BadUserInput { .. } => "BAD_USER_INPUT",
            AppError::Conflict(_) => "CONFLICT",
            AppError::NoConnection(_) => "NO_CONNECTION",
            AppError::RateLimited(_) => "RATE_LIMITED",
            AppError::Warehouse { code, .. } => code,
            AppError::Internal(_) => "INTERNAL",
        }
    }

    /// The message a client sees.
    pub fn message(&self) -> String {
        match self {
            AppError::Unauthenticated(m)
            | AppError::Forbidden(m)
            | AppError::Conflict(m)
            | AppError::NoConnection(m)
            | AppError::RateLimited(m) => m.clone(),
            AppError::Warehouse { message, .. } => message.clone(),
            AppError::NotFound { what, id } => {
                format!(
                    "No {what} with id '{}' exists in your organization.",
                    shortened(id)
                )
            }
            AppError::BadUserInput { message, .. } => message.clone(),
            AppError::Internal(_) => "Internal error; it has been logged.".to_owned(),
        }
    }

    /// Wraps an unexpected failure.
    pub fn internal(err: impl Into<anyhow::Error>) -> Self {
        AppError::Internal(Arc::new(err.into()))
    }

    /// A refusal of one input field.
    pub fn bad_input(field: &'static str, message: impl Into<String>) -> Self {
        AppError::BadUserInput {
            field,
            message: message.into(),
        }
    }

    /// Nothing called `what` with this id in the caller's organization.
    pub fn not_found(what: &'static str, id: impl Into<String>) -> Self {
        AppError::NotFound {
            what,
            id: id.into(),
        }
    }
}

/// Longest piece of a client's id echoed back in a message.
const MAX_ECHOED_ID_CHARS: usize = 64;

/// An id as echoed in a message: cut, so a megabyte id is not sent back.
fn shortened(id: &str) -> String {
    match id.char_indices().nth(MAX_ECHOED_ID_CHARS) {
        Some((at, _)) => format!("{}…", &id[..at]),
        None => id.to_owned(),
    }
}

impl From<sea_orm::DbErr> for AppError {
    fn from(err: sea_orm::DbErr) -> Self {
        AppError::internal(err)
    }
}

impl From<sea_orm::TransactionError<AppError>> for AppError {
    fn from(err: sea_orm::TransactionError<AppError>) -> Self {
        match err {
            sea_orm::TransactionError::Connection(db) => db.into(),
            sea_orm::TransactionError::Transaction(app) => app,
        }
    }
}

impl From<crate::bigquery::WarehouseError> for AppError {
    fn from(err: crate::bigquery::WarehouseError) -> Self {
        AppError::Warehouse {
            code: err.code(),
            message: err.message(),
            reason: err.reason().map(str::to_owned),
            transient: err.is_transient(),
        }
    }
}

impl From<Invalid> for AppError {
    fn from(invalid: Invalid) -> Self {
        AppError::BadUserInput {
            field: invalid.field,
            message: invalid.message,
        }
    }
}

impl From<AppError> for async_graphql::Error {
    fn from(err: AppError) -> Self {
        let code = err.extension_code();
        let mut gql = async_graphql::Error::new(err.message());
        gql = gql.extend_with(|_, ext| ext.set("code", code));
        if let AppError::Internal(detail) = &err {
            // The id in the log line and in the answer tie a report to its cause.
            let request_id = uuid::Uuid::now_v7().to_string();
            tracing::error!(%request_id, error = ?detail, "request failed");
            gql = gql.extend_with(|_, ext| ext.set("requestId", request_id.as_str()));
        }
        if let AppError::BadUserInput { field, .. } = &err {
            let field = *field;
            gql = gql.extend_with(|_, ext| ext.set("field", field));
        }
        if let AppError::Warehouse {
            reason, transient, ..
        } = &err
        {
            let transient = *transient;
            if let Some(reason) = reason.clone() {
                gql = gql.extend_with(|_, ext| ext.set("reason", reason));
            }
            gql = gql.extend_with(|_, ext| ext.set("transient", transient));
        }
        gql
    }
}

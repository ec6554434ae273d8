//! GraphQL over HTTP: `POST /graphql` and `GET /graphql?query=…`. Before a
//! request runs, its body is read within the size limit (counted on the
//! wire, chunked bodies too), uploads are refused, and its query is
//! parsed once and measured against the cost limits. Every error that
//! leaves here carries an `extensions.code`.

use async_graphql::{
    BatchRequest, BatchResponse, Request, Response as GqlResponse, ServerError,
    parser::types::{DocumentOperations, ExecutableDocument, OperationType},
};
use axum::{
    body::{Body, Bytes},
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde::Deserialize;
use serde_json::json;

use crate::{
    auth::Principal,
    error::AppError,
    graphql::{
        self,
        admit::{cap_errors, code_errors},
        budget::Budget,
    },
};

use super::AppState;

/// Most operations in one batched request.
const MAX_BATCH: usize = 10;

/// A JSON error body `{"errors": [{message, extensions: {code}}]}`.
pub fn error_response(status: StatusCode, code: &str, message: &str) -> Response {
    let body = json!({ "errors": [{ "message": message, "extensions": { "code": code } }] });
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

/// `POST /graphql`.
pub async fn post(
    axum::extract::State(state): axum::extract::State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_ascii_lowercase();
    if content_type.starts_with("multipart/") {
        return error_response(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "UNSUPPORTED_MEDIA_TYPE",
            "okr-pulse takes no uploads; send the request as application/json.",
        );
    }
    let bytes = match read_body(&headers, body, state.limits.max_body_bytes).await {
        Ok(bytes) => bytes,
        Err(response) => return response,
    };
    let batch = match serde_json::from_slice::<BatchRequest>(&bytes) {
        Ok(batch) => batch,
        Err(err) => {
            return error_response(
                StatusCode::BAD_REQUEST,
                "BAD_REQUEST",
                &format!(
                    "The body is not a GraphQL request ({err}); send {{\"query\": \"…\"}} as JSON."
                ),
            );
        }
    };
    if let BatchRequest::Batch(requests) = &batch
        && requests.len() > MAX_BATCH
    {
        return error_response(
            StatusCode::BAD_REQUEST,
            "BAD_REQUEST",
            &format!(
                "A batch may hold at most {MAX_BATCH} operations; this one holds {}.",
                requests.len()
            ),
        );
    }
    // Every operation is measured before anything touches the database,
    // the caller's authentication included.
    let (single, requests) = match batch {
        BatchRequest::Single(request) => (true, vec![request]),
        BatchRequest::Batch(requests) => (false, requests),
    };
    let mut complexity = 0u64;
    let mut prepared: Vec<Result<Request, ServerError>> = requests
        .into_iter()
        .map(|mut request| match state.admission.measure(&mut request) {
            Ok((_, cost)) => {
                complexity = complexity.saturating_add(cost);
                Ok(request)
            }
            Err(err) => Err(err),
        })
        .collect();
    // A batch over the limit is refused whole: no operation runs.
    if let Err(refused) = state.admission.check_batch(complexity) {
        for request in &mut prepared {
            *request = Err(refused.clone());
        }
    }
    let mut auth: Option<Result<Principal, AppError>> = None;
    let mut responses = Vec::with_capacity(prepared.len());
    // One budget for the whole batch: ten operations may not produce ten
    // times what one may.
    let budget = Budget::new(state.limits.budget);
    for request in prepared {
        responses.push(match request {
            Err(err) => GqlResponse::from_errors(vec![err]),
            Ok(request) => {
                let caller = match auth.take() {
                    Some(caller) => caller,
                    None => authenticate(&state, &headers).await,
                };
                let response = run(&state, &caller, request.data(budget.clone())).await;
                auth = Some(caller);
                response
            }
        });
    }
    let response = if single {
        BatchResponse::Single(responses.remove(0))
    } else {
        BatchResponse::Batch(responses)
    };
    json_response(&response)
}

/// The parameters of `GET /graphql?query=…`.
#[derive(Deserialize)]
struct GetParams {
    query: String,
    #[serde(rename = "operationName")]
    operation_name: Option<String>,
    /// JSON text.
    variables: Option<String>,
}

/// `GET /graphql?query=…`: queries only; a mutation gets 405.
pub async fn get(state: AppState, headers: HeaderMap, raw_query: &str) -> Response {
    if raw_query.len() > state.limits.max_body_bytes {
        return error_response(
            StatusCode::URI_TOO_LONG,
            "BAD_REQUEST",
            "The URL is too long; POST the request instead.",
        );
    }
    let params: GetParams = match serde_urlencoded::from_str(raw_query) {
        Ok(params) => params,
        Err(err) => {
            return error_response(
                StatusCode::BAD_REQUEST,
                "BAD_REQUEST",
                &format!("GET /graphql needs a `query` parameter ({err})."),
            );
        }
    };
    let mut request = Request::new(params.query);
    request.operation_name = params.operation_name;
    if let Some(variables) = params.variables.filter(|v| !v.trim().is_empty()) {
        match serde_json::from_str(&variables) {
            Ok(variables) => request.variables = variables,
            Err(err) => {
                return error_response(
                    StatusCode::BAD_REQUEST,
                    "BAD_REQUEST",
                    &format!("`variables` must be a JSON object ({err})."),
                );
            }
        }
    }
    // Only queries run over GET: a link a browser follows must not change anything.
    let name = request.operation_name.clone();
    let operation = prepare(&state, &mut request).map(|doc| operation_type(doc, name.as_deref()));
    if let Ok(Some(ty)) = operation
        && ty != OperationType::Query
    {
        let mut response = error_response(
            StatusCode::METHOD_NOT_ALLOWED,
            "METHOD_NOT_ALLOWED",
            "Only queries run over GET; send mutations with POST (and subscriptions over WebSocket).",
        );
        response
            .headers_mut()
            .insert(header::ALLOW, header::HeaderValue::from_static("POST"));
        return response;
    }
    if let Err(err) = operation {
        return json_response(&BatchResponse::Single(GqlResponse::from_errors(vec![err])));
    }
    let auth = authenticate(&state, &headers).await;
    let response = run(
        &state,
        &auth,
        request.data(Budget::new(state.limits.budget)),
    )
    .await;
    json_response(&BatchResponse::Single(response))
}

/// The caller named by the `Authorization` header.
async fn authenticate(state: &AppState, headers: &HeaderMap) -> Result<Principal, AppError> {
    let header = headers
        .get(header::AUTHORIZATION)
        .map(|v| v.to_str().unwrap_or_default());
    state.auth.authenticate(header).await
}

/// Reads the body up to `limit` bytes: a declared length above it is
/// refused before anything is read, and a chunked body is cut off as soon
/// as it passes the limit.
async fn read_body(headers: &HeaderMap, body: Body, limit: usize) -> Result<Bytes, Response> {
    let too_large = || {
        error_response(
            StatusCode::PAYLOAD_TOO_LARGE,
            "PAYLOAD_TOO_LARGE",
            &format!("The request body is larger than {limit} bytes."),
        )
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|length| length > limit as u64) {
        return Err(too_large());
    }
    axum::body::to_bytes(body, limit).await.map_err(|err| {
        let over = std::error::Error::source(&err)
            .is_some_and(|source| source.is::<http_body_util::LengthLimitError>())
            || err.to_string().contains("length limit");
        if over {
            too_large()
        } else {
            error_response(
                StatusCode::BAD_REQUEST,
                "BAD_REQUEST",
                "The request body could not be read.",
            )
        }
    })
}

/// Parses the query once (async-graphql reuses the parse) and measures it.
fn prepare<'a>(
    state: &AppState,
    request: &'a mut Request,
) -> Result<&'a ExecutableDocument, ServerError> {
    state.admission.check(request)
}

/// The type of the operation that runs, if the document names one.
fn operation_type(doc: &ExecutableDocument, name: Option<&str>) -> Option<OperationType> {
    match (&doc.operations, name) {
        (DocumentOperations::Single(op), _) => Some(op.node.ty),
        (DocumentOperations::Multiple(ops), Some(name)) => ops.get(name).map(|op| op.node.ty),
        (DocumentOperations::Multiple(_), None) => None,
    }
}

/// Runs one request that passed [`prepare`], and codes every error.
async fn run(
    state: &AppState,
    auth: &Result<Principal, AppError>,
    request: Request,
) -> GqlResponse {
    let request = graphql::request_data(request, &state.reads, auth.clone());
    let mut response = state.schema.execute(request).await;
    cap_errors(&mut response.errors);
    code_errors(&mut response.errors);
    response
}

/// A GraphQL response as `application/json`.
fn json_response(response: &BatchResponse) -> Response {
    match serde_json::to_vec(response) {
        Ok(body) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json")],
            body,
        )
            .into_response(),
        Err(err) => {
            tracing::error!(error = %err, "could not serialise a response");
            error_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                "INTERNAL",
                "Internal error; it has been logged.",
            )
        }
    }
}

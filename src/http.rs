//! The HTTP surface: `/graphql` (POST queries and mutations, GET GraphiQL
//! or a WebSocket upgrade for subscriptions), `/healthz` and `/readyz`.

use async_graphql::http::{ALL_WEBSOCKET_PROTOCOLS, WebSocketProtocols};
use async_graphql_axum::{GraphQLRequest, GraphQLResponse};
use axum::{
    Router,
    extract::{State, WebSocketUpgrade, ws::rejection::WebSocketUpgradeRejection},
    http::{
        HeaderMap, StatusCode,
        header::{AUTHORIZATION, SEC_WEBSOCKET_PROTOCOL},
    },
    response::{IntoResponse, Response},
    routing::get,
};
use sea_orm::DatabaseConnection;
use tower_http::trace::TraceLayer;

use crate::{
    auth::Authenticator,
    graphql::{self, AppSchema},
    store, web,
    ws::{self, WsContext},
};

/// Largest request body accepted, in bytes.
const MAX_BODY_BYTES: usize = 1024 * 1024;

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    pub schema: AppSchema,
    pub db: DatabaseConnection,
    pub auth: Authenticator,
    /// What WebSocket connections share.
    pub ws: WsContext,
}

/// The router with every route and layer.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/graphql", get(graphql_get).post(graphql_handler))
        .route("/", get(web::dashboard))
        .route("/assets/{*path}", get(web::asset))
        .route("/favicon.svg", get(web::favicon))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

async fn graphql_handler(
    State(state): State<AppState>,
    headers: HeaderMap,
    request: GraphQLRequest,
) -> GraphQLResponse {
    let header = headers
        .get(AUTHORIZATION)
        .map(|v| v.to_str().unwrap_or_default());
    let auth = state.auth.authenticate(header).await;
    let request = graphql::request_data(request.into_inner(), &state.db, auth);
    state.schema.execute(request).await.into()
}

/// `GET /graphql`: a WebSocket upgrade for subscriptions, else GraphiQL.
async fn graphql_get(
    State(state): State<AppState>,
    headers: HeaderMap,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    let protocol = headers
        .get(SEC_WEBSOCKET_PROTOCOL)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.split(',')
                .find_map(|p| p.trim().parse::<WebSocketProtocols>().ok())
        });
    let (Ok(upgrade), Some(protocol)) = (upgrade, protocol) else {
        return web::graphiql();
    };
    let Ok(permit) = state.ws.connections.clone().try_acquire_owned() else {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "Too many WebSocket connections; try again later.",
        )
            .into_response();
    };
    let ws = state.ws;
    let tracked = ws.shutdown.clone();
    upgrade
        .protocols(ALL_WEBSOCKET_PROTOCOLS)
        .on_upgrade(move |socket| tracked.track(ws::serve(socket, protocol, ws, permit)))
}

async fn healthz() -> &'static str {
    "ok"
}

async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    match store::db::ready(&state.db).await {
        Ok(()) => (StatusCode::OK, "ready".to_owned()),
        Err(err) => {
            tracing::warn!(error = %err, "not ready");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "database unavailable".to_owned(),
            )
        }
    }
}

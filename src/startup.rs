//! The application: connect and migrate, bind, serve until told to stop.

use std::future::Future;

use anyhow::Context as _;
use tokio::net::TcpListener;

use crate::{
    auth::{self, TokenKeys},
    bigquery::{BackoffPolicy, IdentitySource, Warehouse, WarehouseConfig},
    config::Config,
    graphql,
    http::{self, AppState},
    store::db::{self, StatementCounter},
    sync::Syncer,
};

/// A built server, bound and migrated, not yet serving.
pub struct Application {
    listener: TcpListener,
    state: AppState,
    statements: StatementCounter,
}

impl Application {
    /// Connects to the database, applies migrations and binds the listener.
    pub async fn build(config: &Config) -> anyhow::Result<Application> {
        let secret = auth::load_or_create_secret(config)?;
        let url = config.database_url();
        if db::is_sqlite(&url) && config.database_url.is_none() {
            std::fs::create_dir_all(&config.data_dir).with_context(|| {
                format!("creating the data folder {}", config.data_dir.display())
            })?;
        }
        let (db, statements) = db::connect(&url, config.database_max_connections).await?;
        let listener = TcpListener::bind(config.listen_addr)
            .await
            .with_context(|| format!("listening on {}", config.listen_addr))?;
        let warehouse = Warehouse::new(WarehouseConfig {
            emulator_host: config.bigquery_emulator_host.clone(),
            maximum_bytes_billed: config.bigquery_max_bytes_billed,
            job_timeout: config.bigquery_job_timeout.into(),
            backoff: BackoffPolicy {
                initial_delay: config.bigquery_retry_initial_delay.into(),
                max_attempts: config.bigquery_retry_max_attempts.max(1),
                max_elapsed: config.bigquery_retry_budget.into(),
                ..BackoffPolicy::default()
            },
            identity: IdentitySource {
                key_file: config.google_application_credentials.clone(),
                metadata_host: config.gce_metadata_host.clone(),
            },
        });
        let default_interval =
            i64::try_from(config.sync_interval.as_secs()).context("SYNC_INTERVAL is too long")?;
        crate::domain::validate::sync_interval(default_interval)
            .map_err(|e| anyhow::anyhow!("SYNC_INTERVAL: {}", e.message))?;
        let syncer = Syncer::new(db.clone(), warehouse, default_interval);
        let schema = graphql::schema_builder()
            .data(db.clone())
            .data(syncer)
            .finish();
        let state = AppState {
            schema,
            db,
            keys: TokenKeys::from_secret(&secret),
        };
        Ok(Application {
            listener,
            state,
            statements,
        })
    }

    /// The bound port (useful with port 0).
    pub fn port(&self) -> u16 {
        self.listener
            .local_addr()
            .map(|a| a.port())
            .unwrap_or_default()
    }

    /// The token keys in force.
    pub fn keys(&self) -> TokenKeys {
        self.state.keys.clone()
    }

    /// The database pool (tests seed and inspect through it).
    pub fn db(&self) -> sea_orm::DatabaseConnection {
        self.state.db.clone()
    }

    /// Counter of SQL statements executed since start.
    pub fn statements(&self) -> StatementCounter {
        self.statements.clone()
    }

    /// Serves until `shutdown` completes, then finishes in-flight requests.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let app = http::router(self.state);
        axum::serve(self.listener, app)
            .with_graceful_shutdown(shutdown)
            .await
            .context("serving HTTP")
    }
}

/// Completes on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down");
}

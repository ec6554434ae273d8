//! The application: connect and migrate, bind, serve until told to stop.

use std::{future::Future, sync::Arc, time::Duration};

use anyhow::Context as _;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::{
    auth::{self, TokenKeys},
    bigquery::{BackoffPolicy, IdentitySource, Warehouse, WarehouseConfig},
    config::Config,
    events::EventBus,
    graphql,
    http::{self, AppState},
    store::db::{self, StatementCounter},
    sync::{
        SyncSettings, Syncer,
        scheduler::{Scheduler, SchedulerSettings},
    },
    ws::WsSettings,
};

/// A built server, bound and migrated, not yet serving.
pub struct Application {
    listener: TcpListener,
    state: AppState,
    statements: StatementCounter,
    syncer: Syncer,
    scheduler: Option<Arc<Scheduler>>,
    /// Where the event listener connects, on PostgreSQL.
    listen_url: Option<String>,
    shutdown_timeout: Duration,
}

/// A name for this replica on the leases it holds: host, process and a nonce.
fn replica_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "host".to_owned());
    format!(
        "{host}-{}-{:04x}",
        std::process::id(),
        rand::random::<u16>()
    )
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
        let events = EventBus::new(db.clone());
        let syncer = Syncer::new(
            db.clone(),
            warehouse,
            events,
            SyncSettings {
                default_interval_seconds: default_interval,
                lease: config.sync_lease.into(),
                refresh_min_interval: config.refresh_min_interval.into(),
                replica: replica_name(),
            },
        );
        let scheduler = config.scheduler_enabled.then(|| {
            Scheduler::new(
                syncer.clone(),
                SchedulerSettings {
                    tick: config.sync_tick.into(),
                    concurrency: config.sync_concurrency.max(1),
                    per_connection: config.sync_concurrency_per_connection.max(1),
                    drain_timeout: config.shutdown_timeout.into(),
                },
            )
        });
        let schema = graphql::schema_builder()
            .data(db.clone())
            .data(syncer.clone())
            .finish();
        let state = AppState {
            schema,
            db,
            keys: TokenKeys::from_secret(&secret),
            ws: WsSettings {
                max_connections: config.ws_max_connections,
                max_subscriptions: config.ws_max_subscriptions.max(1),
                init_timeout: config.ws_init_timeout.into(),
                keep_alive: config.ws_keep_alive.into(),
            },
            ws_connections: Arc::new(tokio::sync::Semaphore::new(
                config.ws_max_connections.max(1),
            )),
            shutdown: CancellationToken::new(),
        };
        Ok(Application {
            listener,
            state,
            statements,
            syncer,
            scheduler,
            listen_url: (!db::is_sqlite(&url)).then_some(url),
            shutdown_timeout: config.shutdown_timeout.into(),
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

    /// Serves until `shutdown` completes. Then it stops claiming syncs,
    /// closes WebSockets with a close frame, lets running syncs and requests
    /// finish (bounded by the shutdown timeout) and returns.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let stop = self.state.shutdown.clone();
        let mut background = tokio::task::JoinSet::new();
        if let Some(url) = self.listen_url.clone() {
            background.spawn(self.syncer.events().clone().listen(url, stop.clone()));
        }
        if let Some(scheduler) = self.scheduler.clone() {
            background.spawn(scheduler.run(stop.clone()));
        }
        let sockets = self.state.ws_connections.clone();
        let socket_slots = u32::try_from(self.state.ws.max_connections.max(1)).unwrap_or(u32::MAX);
        let app = http::router(self.state);
        let signal_stop = stop.clone();
        let serve = axum::serve(self.listener, app).with_graceful_shutdown(async move {
            shutdown.await;
            signal_stop.cancel();
        });
        let served = serve.await.context("serving HTTP");
        stop.cancel();
        // Upgraded WebSockets outlive the HTTP server: wait until each has
        // sent its close frame (each holds a slot until it is done).
        if tokio::time::timeout(Duration::from_secs(5), sockets.acquire_many(socket_slots))
            .await
            .is_err()
        {
            tracing::warn!("some WebSockets did not close in time");
        }
        let drained = tokio::time::timeout(self.shutdown_timeout, async {
            while background.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            tracing::warn!("background tasks did not stop in time");
        }
        tracing::info!("stopped");
        served
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

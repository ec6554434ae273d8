//! The application: connect and migrate, bind, serve until told to stop.

use std::{future::Future, sync::Arc};

use anyhow::Context as _;
use tokio::net::TcpListener;

use crate::{
    auth::{self, Authenticator, TokenKeys},
    bigquery::{self, BackoffPolicy, CredentialSettings, Warehouse, WarehouseConfig},
    config::Config,
    domain::bounds::TreeBounds,
    events::EventBus,
    graphql::{self, admit::Admission, cost},
    http::{self, AppState, EdgeLimits},
    service::{DataSourceWork, Service},
    shutdown::Shutdown,
    store::db::{self, StatementCounter},
    sync::{
        SyncSettings, Syncer,
        scheduler::{Scheduler, SchedulerSettings},
    },
    ws::{PendingByAddress, WsContext, WsSettings},
};

/// A built server, bound and migrated, not yet serving.
pub struct Application {
    listener: TcpListener,
    state: AppState,
    statements: StatementCounter,
    events: EventBus,
    scheduler: Option<Arc<Scheduler<DataSourceWork>>>,
    /// Where the event listener connects, on PostgreSQL.
    listen_url: Option<String>,
    shutdown: Shutdown,
    shutdown_timeout: std::time::Duration,
    /// How long a client may take to send request headers.
    header_timeout: std::time::Duration,
    /// Whether the server signs with a secret it generated itself.
    first_run: bool,
}

/// How to reach BigQuery, from the settings; refuses what must not start.
fn warehouse_config(config: &Config) -> anyhow::Result<WarehouseConfig> {
    let bq = &config.bigquery;
    let endpoint = bigquery::endpoint::choose(
        bq.emulator_host.as_deref(),
        bq.endpoint.as_deref(),
        bq.insecure_emulator,
    )
    .map_err(anyhow::Error::msg)?;
    let iam_endpoint = bigquery::endpoint::checked_url(
        &bq.iam_credentials_endpoint,
        "GOOGLE_IAM_CREDENTIALS_ENDPOINT",
    )
    .map_err(anyhow::Error::msg)?;
    if let Some(template) = &bq.org_service_account
        && (!template.contains("{org}") || !template.contains('@'))
    {
        anyhow::bail!(
            "BIGQUERY_ORG_SERVICE_ACCOUNT={template} must be an email template with {{org}}, e.g. okr-{{org}}@vendor-project.iam.gserviceaccount.com"
        );
    }
    Ok(WarehouseConfig {
        credentials: CredentialSettings {
            key_file: bq.google_application_credentials.clone(),
            gcloud_file: CredentialSettings::find_gcloud_file(bq.cloudsdk_config.as_deref()),
            metadata_host: bq.gce_metadata_host.clone(),
            emulator: endpoint.emulator,
        },
        emulator_host: endpoint.emulator.then(|| endpoint.url.clone()),
        endpoint: endpoint.url,
        iam_endpoint,
        org_service_account: bq.org_service_account.clone(),
        maximum_bytes_billed: bq.max_bytes_billed,
        job_timeout: bq.job_timeout,
        backoff: BackoffPolicy {
            initial_delay: bq.retry_initial_delay,
            max_attempts: bq.retry_max_attempts,
            max_elapsed: bq.retry_budget,
            ..BackoffPolicy::default()
        },
    })
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
        if db::is_sqlite(&url) && config.database.url.is_none() {
            std::fs::create_dir_all(&config.server.data_dir).with_context(|| {
                format!(
                    "creating the data folder {}",
                    config.server.data_dir.display()
                )
            })?;
        }
        let db::Pools {
            write: db,
            read: reads,
            statements,
        } = db::connect(&url, config.database.max_connections).await?;
        let listener = TcpListener::bind(config.server.listen_addr)
            .await
            .with_context(|| format!("listening on {}", config.server.listen_addr))?;
        let warehouse = Warehouse::new(warehouse_config(config)?);
        let described = warehouse.describe(None).await;
        match &described.problem {
            Some(problem) => tracing::warn!(
                problem = problem.as_str(),
                "no usable Google credentials; BigQuery calls will fail until this is fixed"
            ),
            None => tracing::info!(
                credential_source = described.source.as_str(),
                account = described.email.as_deref().unwrap_or("(none named)"),
                org_accounts = config
                    .bigquery
                    .org_service_account
                    .as_deref()
                    .unwrap_or("(off)"),
                "BigQuery credentials"
            ),
        }
        let shutdown = Shutdown::new();
        let events = EventBus::new(reads.clone());
        let syncer = Syncer::new(
            db.clone(),
            warehouse,
            SyncSettings {
                default_interval: config.sync.interval,
                lease: config.sync.lease,
                refresh_min_interval: config.sync.refresh_min_interval,
                replica: replica_name(),
            },
        );
        let service = Service::new(db.clone(), events.clone(), syncer, shutdown.clone())
            .with_bounds(TreeBounds {
                key_results_per_objective: config.tree.max_key_results_per_objective,
                children_per_objective: config.tree.max_children_per_objective,
                depth: config.tree.max_tree_depth,
            });
        let sync_runs = service.runs().clone();
        let scheduler = config.sync.scheduler_enabled.then(|| {
            Scheduler::new(
                DataSourceWork(service.clone()),
                SchedulerSettings {
                    tick: config.sync.tick,
                    concurrency: config.sync.concurrency as usize,
                    per_connection: config.sync.concurrency_per_connection as usize,
                },
                shutdown.clone(),
            )
        });
        let auth = Authenticator::new(
            TokenKeys::from_secret(&secret.value).with_max_lifetime(config.auth.max_token_lifetime),
            db.clone(),
            config.auth.cache_ttl,
        );
        let schema = graphql::schema_builder()
            .data(reads.clone())
            .data(service)
            .data(auth.clone())
            .finish();
        let types = cost::TypeInfo::from_sdl(&graphql::sdl())
            .map_err(|err| anyhow::anyhow!("reading the schema's own SDL: {err}"))?
            .with_list_size(
                "Objective",
                "keyResults",
                config.tree.max_key_results_per_objective,
            )
            .with_list_size(
                "Objective",
                "children",
                config.tree.max_children_per_objective,
            );
        let edge = &config.http;
        let admission = Arc::new(Admission {
            types,
            limits: cost::Limits {
                max_bytes: edge.max_query_bytes as usize,
                max_depth: edge.max_depth as usize,
                max_fields: edge.max_fields,
                max_aliases: edge.max_aliases,
                max_complexity: edge.max_complexity,
            },
        });
        let limits = EdgeLimits {
            max_body_bytes: usize::try_from(edge.max_body_bytes).unwrap_or(usize::MAX),
            request_timeout: edge.request_timeout,
            cors_allowed_origins: edge.cors_allowed_origins.clone(),
            budget: crate::graphql::budget::BudgetLimits {
                max_bytes: edge.max_response_bytes,
                max_objects: edge.max_resolved_objects,
            },
        };
        let websockets: crate::ws::ConnectionLimit = Arc::new(tokio::sync::Semaphore::new(
            config.ws.max_connections as usize,
        ));
        let feeds = crate::ws::Feeds::new(events.clone());
        let metrics = crate::metrics::Metrics {
            statements: statements.clone(),
            events: events.clone(),
            sync_runs,
            websockets: websockets.clone(),
            max_websockets: config.ws.max_connections as usize,
            feeds: feeds.clone(),
            token: config.server.metrics_token.clone(),
        };
        let state = AppState {
            ws: WsContext {
                schema: schema.clone(),
                reads: reads.clone(),
                auth: auth.clone(),
                settings: WsSettings {
                    max_subscriptions: config.ws.max_subscriptions as usize,
                    init_timeout: config.ws.init_timeout,
                    keep_alive: config.ws.keep_alive,
                    max_message_bytes: config.ws.max_message_bytes as usize,
                    max_pending_per_address: config.ws.max_pending_per_address as usize,
                    max_variables_bytes: config.ws.max_variables_bytes as usize,
                    max_per_user: config.ws.max_connections_per_user as usize,
                    max_per_org: config.ws.max_connections_per_org as usize,
                },
                admission: admission.clone(),
                pending: PendingByAddress::default(),
                occupancy: crate::ws::Occupancy::default(),
                connections: websockets,
                shutdown: shutdown.clone(),
                feeds,
            },
            schema,
            reads,
            db,
            auth,
            limits: Arc::new(limits),
            metrics,
            admission,
        };
        Ok(Application {
            listener,
            state,
            statements,
            events,
            scheduler,
            listen_url: (!db::is_sqlite(&url)).then_some(url),
            shutdown,
            shutdown_timeout: config.server.shutdown_timeout,
            header_timeout: config.http.header_timeout,
            first_run: secret.generated,
        })
    }

    /// The bound port (useful with port 0).
    pub fn port(&self) -> u16 {
        self.listener
            .local_addr()
            .map(|a| a.port())
            .unwrap_or_default()
    }

    /// Whether the server signs tokens with a secret it generated itself
    /// (no `AUTH_JWT_SECRET`): then, and only then, it prints an admin token.
    pub fn first_run(&self) -> bool {
        self.first_run
    }

    /// The token keys in force.
    pub fn keys(&self) -> TokenKeys {
        self.state.auth.keys().clone()
    }

    /// The database pool writes go to (tests seed and inspect through it).
    pub fn db(&self) -> sea_orm::DatabaseConnection {
        self.state.db.clone()
    }

    /// Counter of SQL statements executed since start.
    pub fn statements(&self) -> StatementCounter {
        self.statements.clone()
    }

    /// The event bus (tests wait on its subscriber count).
    pub fn events(&self) -> EventBus {
        self.events.clone()
    }

    /// Serves until `signal` completes. Then it stops claiming syncs and
    /// accepting requests, closes WebSockets with a close frame, and lets
    /// running requests, WebSockets and syncs finish, all within one
    /// shutdown timeout.
    pub async fn run_until_stopped(
        self,
        signal: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let shutdown = self.shutdown.clone();
        if let Some(url) = self.listen_url.clone() {
            self.events.start_from_now().await;
            shutdown.spawn(self.events.clone().listen(url, shutdown.token()));
        }
        if let Some(scheduler) = self.scheduler.clone() {
            shutdown.spawn(scheduler.run());
        }
        let app = http::router(self.state);
        let trigger = shutdown.clone();
        tokio::spawn(async move {
            signal.await;
            trigger.trigger();
        });
        let mut serve = shutdown.spawn(crate::serve::serve(
            self.listener,
            app,
            self.header_timeout,
            shutdown.clone(),
        ));
        let mut served = None;
        tokio::select! {
            () = shutdown.started() => {}
            // The server stopped by itself; stop everything else too.
            finished = &mut serve => {
                served = Some(finished);
                shutdown.trigger();
            }
        }
        if !shutdown.drain(self.shutdown_timeout).await {
            tracing::warn!(
                still_running = shutdown.running(),
                "shutdown timeout reached; stopping what is still running"
            );
        }
        tracing::info!("stopped");
        match served {
            Some(finished) => finished.context("the HTTP server task"),
            None => Ok(()),
        }
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

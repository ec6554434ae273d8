//! The write paths the API and the scheduler call. Each commits one change
//! through [`store`](crate::store) or [`sync`](crate::sync) and then
//! publishes what it committed on the [`EventBus`], after the commit and
//! only here, so a resolver is "authorize, call, map" and never publishes.

mod data_sources;
mod okrs;

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use futures::future::Shared;
use sea_orm::DatabaseConnection;

use crate::{
    domain::bounds::TreeBounds,
    error::AppError,
    events::EventBus,
    metrics::SyncRunCounter,
    shutdown::Shutdown,
    store::{Notice, runs::Recorded},
    sync::Syncer,
};

pub use data_sources::DataSourceWork;

/// A run in flight that later callers join.
type SharedRun = Shared<futures::future::BoxFuture<'static, Result<Arc<Recorded>, AppError>>>;

/// Writes that publish their events after they commit.
#[derive(Clone)]
pub struct Service {
    db: DatabaseConnection,
    events: EventBus,
    syncer: Syncer,
    shutdown: Shutdown,
    /// Runs in flight in this process, by data source id: a second request
    /// for the same data source joins the first instead of starting a job.
    in_flight: Arc<Mutex<HashMap<String, SharedRun>>>,
    /// Runs recorded, for `/metrics`.
    runs: SyncRunCounter,
    /// How large the OKR tree may grow.
    bounds: TreeBounds,
}

impl Service {
    /// The write paths over this database, event bus and syncer; runs in
    /// flight are tracked by `shutdown`.
    pub fn new(
        db: DatabaseConnection,
        events: EventBus,
        syncer: Syncer,
        shutdown: Shutdown,
    ) -> Self {
        Service {
            db,
            events,
            syncer,
            shutdown,
            in_flight: Arc::new(Mutex::new(HashMap::new())),
            runs: SyncRunCounter::default(),
            bounds: TreeBounds::default(),
        }
    }

    /// The same write paths, keeping the OKR tree within `bounds`.
    pub fn with_bounds(mut self, bounds: TreeBounds) -> Self {
        self.bounds = bounds;
        self
    }

    /// How large the OKR tree may grow.
    pub fn bounds(&self) -> TreeBounds {
        self.bounds
    }

    /// The pool writes go to.
    pub fn db(&self) -> &DatabaseConnection {
        &self.db
    }

    /// Runs recorded by this process.
    pub fn runs(&self) -> &SyncRunCounter {
        &self.runs
    }

    /// The event bus subscribers listen on.
    pub fn events(&self) -> &EventBus {
        &self.events
    }

    /// The syncer (BigQuery identity, connection tests).
    pub fn syncer(&self) -> &Syncer {
        &self.syncer
    }

    /// Publishes what a write committed and hands back its result.
    async fn published<T>(&self, (value, notice): (T, Notice)) -> T {
        self.events.committed(notice).await;
        value
    }
}

//! The scheduler: every tick it claims the data sources that are due and
//! runs them, at most `concurrency` at once overall and `per_connection` at
//! once per BigQuery connection.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use chrono::Utc;
use tokio::{sync::Semaphore, task::JoinSet};
use tokio_util::sync::CancellationToken;

use crate::{
    error::AppError,
    store::data_sources::{self, Trigger},
};

use super::Syncer;

/// How the scheduler paces itself.
#[derive(Debug, Clone)]
pub struct SchedulerSettings {
    /// How often due data sources are looked for.
    pub tick: Duration,
    /// Most BigQuery jobs at once from this replica.
    pub concurrency: usize,
    /// Most BigQuery jobs at once per connection from this replica.
    pub per_connection: usize,
    /// How long shutdown waits for running syncs.
    pub drain_timeout: Duration,
}

/// Claims due data sources and runs them.
pub struct Scheduler {
    syncer: Syncer,
    settings: SchedulerSettings,
    global: Arc<Semaphore>,
    per_connection: Mutex<HashMap<String, Arc<Semaphore>>>,
    running: tokio::sync::Mutex<JoinSet<()>>,
}

impl Scheduler {
    /// A scheduler for this syncer.
    pub fn new(syncer: Syncer, settings: SchedulerSettings) -> Arc<Scheduler> {
        Arc::new(Scheduler {
            global: Arc::new(Semaphore::new(settings.concurrency.max(1))),
            syncer,
            settings,
            per_connection: Mutex::new(HashMap::new()),
            running: tokio::sync::Mutex::new(JoinSet::new()),
        })
    }

    fn connection_limit(&self, connection_id: &str) -> Arc<Semaphore> {
        let mut map = match self.per_connection.lock() {
            Ok(map) => map,
            Err(poisoned) => poisoned.into_inner(),
        };
        map.entry(connection_id.to_owned())
            .or_insert_with(|| Arc::new(Semaphore::new(self.settings.per_connection.max(1))))
            .clone()
    }

    /// One step: claims as many due data sources as there are free slots and
    /// starts them. Returns how many were started.
    pub async fn tick(&self) -> Result<usize, AppError> {
        let free = self.global.available_permits();
        if free == 0 {
            return Ok(0);
        }
        let settings = self.syncer.settings();
        let now = Utc::now();
        let lease = chrono::Duration::from_std(settings.lease).unwrap_or_default();
        let claimed = data_sources::claim_due(
            self.syncer.db(),
            &settings.replica,
            now,
            now + lease,
            free as u64,
        )
        .await?;
        let started = claimed.len();
        let mut running = self.running.lock().await;
        // Forget finished tasks.
        while running.try_join_next().is_some() {}
        for ds in claimed {
            let Ok(slot) = self.global.clone().try_acquire_owned() else {
                data_sources::release(self.syncer.db(), &ds.id, &settings.replica).await?;
                continue;
            };
            let per_connection = self.connection_limit(&ds.connection_id);
            let syncer = self.syncer.clone();
            running.spawn(async move {
                let _slot = slot;
                let Ok(_connection_slot) = per_connection.acquire_owned().await else {
                    return;
                };
                let id = ds.id.clone();
                let outcome = match syncer.org_of(&ds).await {
                    Ok(org) => syncer.run_once(org, ds, Trigger::Sync).await.map(|_| ()),
                    Err(err) => Err(err),
                };
                if let Err(err) = outcome {
                    tracing::error!(data_source_id = %id, error = ?err, "scheduled sync failed");
                }
            });
        }
        Ok(started)
    }

    /// Ticks until `stop`, then lets running syncs finish (bounded by the
    /// drain timeout; a run cut off leaves a lease that lapses by itself).
    pub async fn run(self: Arc<Self>, stop: CancellationToken) {
        let mut ticker = tokio::time::interval(self.settings.tick);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = ticker.tick() => {
                    if let Err(err) = self.tick().await {
                        tracing::error!(error = ?err, "scheduler tick failed");
                    }
                }
                () = stop.cancelled() => break,
            }
        }
        let mut running = self.running.lock().await;
        let pending = running.len();
        if pending > 0 {
            tracing::info!(pending, "waiting for running syncs to finish");
        }
        let drained = tokio::time::timeout(self.settings.drain_timeout, async {
            while running.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            tracing::warn!("running syncs did not finish in time; their leases will lapse");
            running.abort_all();
        }
    }
}

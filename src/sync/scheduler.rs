//! The scheduler: every tick, and whenever a run ends and frees a slot, it
//! claims the data sources that are due and runs them, at most
//! `concurrency` at once overall and `per_connection` at once per BigQuery
//! connection. Claiming again as soon as a slot frees keeps every slot busy
//! through a backlog, instead of leaving it idle until the next tick.
//!
//! The loop only knows [`Work`]: something that claims due jobs and runs
//! one. Production work is [`crate::service::DataSourceWork`] (claims in the
//! database, runs through the service); tests drive the same loop on a
//! paused tokio clock. Running jobs are tracked by the server's
//! [`Shutdown`], which bounds how long they may finish after a stop.

use std::{
    collections::HashMap,
    future::Future,
    sync::{Arc, Mutex},
    time::Duration,
};

use tokio::sync::{Notify, Semaphore};

use crate::{error::AppError, shutdown::Shutdown};

/// How the scheduler paces itself.
#[derive(Debug, Clone)]
pub struct SchedulerSettings {
    /// How often due data sources are looked for.
    pub tick: Duration,
    /// Most BigQuery jobs at once from this replica.
    pub concurrency: usize,
    /// Most BigQuery jobs at once per connection from this replica.
    pub per_connection: usize,
}

/// What the scheduler claims and runs.
pub trait Work: Send + Sync + 'static {
    /// One claimed job.
    type Job: Send + 'static;
    /// Claims up to `limit` due jobs; claimed jobs belong to this replica.
    fn claim(&self, limit: usize) -> impl Future<Output = Result<Vec<Self::Job>, AppError>> + Send;
    /// The connection a job runs through, for the per-connection limit.
    fn connection_of(job: &Self::Job) -> String;
    /// Runs one job to its recorded end.
    fn run(&self, job: Self::Job) -> impl Future<Output = ()> + Send;
    /// Gives back a claimed job that will not run now.
    fn release(&self, job: Self::Job) -> impl Future<Output = ()> + Send;
}

/// Claims due work and runs it.
pub struct Scheduler<W: Work> {
    work: Arc<W>,
    settings: SchedulerSettings,
    global: Arc<Semaphore>,
    per_connection: Mutex<HashMap<String, Arc<Semaphore>>>,
    /// Signalled when a run ends, so the loop claims again at once.
    freed: Arc<Notify>,
    /// Tracks running jobs and says when to stop claiming.
    shutdown: Shutdown,
}

impl<W: Work> Scheduler<W> {
    /// A scheduler of `work` whose jobs `shutdown` tracks.
    pub fn new(work: W, settings: SchedulerSettings, shutdown: Shutdown) -> Arc<Self> {
        Arc::new(Scheduler {
            global: Arc::new(Semaphore::new(settings.concurrency.max(1))),
            work: Arc::new(work),
            settings,
            per_connection: Mutex::new(HashMap::new()),
            freed: Arc::new(Notify::new()),
            shutdown,
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

    /// One step: claims as many due jobs as there are free slots and starts
    /// them. Returns how many were started.
    pub async fn tick(&self) -> Result<usize, AppError> {
        let free = self.global.available_permits();
        if free == 0 {
            return Ok(0);
        }
        let claimed = self.work.claim(free).await?;
        let mut started = 0;
        for job in claimed {
            let Ok(slot) = self.global.clone().try_acquire_owned() else {
                self.work.release(job).await;
                continue;
            };
            let per_connection = self.connection_limit(&W::connection_of(&job));
            let work = self.work.clone();
            let freed = self.freed.clone();
            started += 1;
            self.shutdown.spawn(async move {
                if let Ok(_connection_slot) = per_connection.acquire_owned().await {
                    work.run(job).await;
                }
                drop(slot);
                freed.notify_one();
            });
        }
        Ok(started)
    }

    /// Ticks, and claims again whenever a run ends, until shutdown starts.
    /// Jobs already running go on; the
    /// server's drain bounds them (a run cut off leaves a lease that lapses
    /// by itself).
    pub async fn run(self: Arc<Self>) {
        let mut ticker = tokio::time::interval(self.settings.tick);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = ticker.tick() => {}
                () = self.freed.notified() => {}
                () = self.shutdown.started() => break,
            }
            if let Err(err) = self.tick().await {
                tracing::error!(error = ?err, "scheduler tick failed");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;

    use tokio::time::Instant;

    use super::*;

    /// Jobs that become due at given offsets and take a given time to run,
    /// with a record of what ran when.
    struct FakeWork {
        start: Instant,
        /// (due after, connection, run time)
        queue: Mutex<VecDeque<(Duration, &'static str, Duration)>>,
        log: Mutex<Vec<(Duration, Duration, &'static str)>>,
        live: Mutex<HashMap<&'static str, usize>>,
        peak: Mutex<(usize, HashMap<&'static str, usize>)>,
    }

    impl FakeWork {
        fn new(jobs: Vec<(Duration, &'static str, Duration)>) -> FakeWork {
            FakeWork {
                start: Instant::now(),
                queue: Mutex::new(jobs.into()),
                log: Mutex::new(Vec::new()),
                live: Mutex::new(HashMap::new()),
                peak: Mutex::new((0, HashMap::new())),
            }
        }
    }

    impl Work for Arc<FakeWork> {
        type Job = (&'static str, Duration);

        async fn claim(&self, limit: usize) -> Result<Vec<Self::Job>, AppError> {
            let now = self.start.elapsed();
            let mut queue = self.queue.lock().unwrap();
            let mut due = Vec::new();
            while due.len() < limit && queue.front().is_some_and(|(at, _, _)| *at <= now) {
                let (_, conn, took) = queue.pop_front().unwrap();
                due.push((conn, took));
            }
            Ok(due)
        }

        fn connection_of(job: &Self::Job) -> String {
            job.0.to_owned()
        }

        async fn run(&self, (conn, took): Self::Job) {
            let began = self.start.elapsed();
            {
                let mut live = self.live.lock().unwrap();
                *live.entry(conn).or_default() += 1;
                let total: usize = live.values().sum();
                let mut peak = self.peak.lock().unwrap();
                peak.0 = peak.0.max(total);
                let per = peak.1.entry(conn).or_default();
                *per = (*per).max(live[conn]);
            }
            tokio::time::sleep(took).await;
            *self.live.lock().unwrap().get_mut(conn).unwrap() -= 1;
            self.log
                .lock()
                .unwrap()
                .push((began, self.start.elapsed(), conn));
        }

        async fn release(&self, _job: Self::Job) {}
    }

    fn settings(concurrency: usize, per_connection: usize) -> SchedulerSettings {
        SchedulerSettings {
            tick: Duration::from_secs(1),
            concurrency,
            per_connection,
        }
    }

    const S: fn(u64) -> Duration = Duration::from_secs;

    #[tokio::test(start_paused = true)]
    async fn due_work_starts_at_the_next_tick_after_it_falls_due() {
        let fake = Arc::new(FakeWork::new(vec![
            (S(0), "a", S(1)),
            (Duration::from_millis(2500), "a", S(1)),
            (S(10), "b", S(1)),
        ]));
        let shutdown = Shutdown::new();
        let scheduler = Scheduler::new(fake.clone(), settings(4, 2), shutdown.clone());
        let loop_task = tokio::spawn(scheduler.run());
        tokio::time::sleep(S(15)).await;
        shutdown.trigger();
        loop_task.await.unwrap();
        let starts: Vec<Duration> = fake
            .log
            .lock()
            .unwrap()
            .iter()
            .map(|(b, _, _)| *b)
            .collect();
        assert_eq!(starts, vec![S(0), S(3), S(10)]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_slot_freed_between_ticks_starts_the_next_due_job_at_once() {
        let jobs = (0..5)
            .map(|_| (S(0), "a", Duration::from_millis(100)))
            .collect();
        let fake = Arc::new(FakeWork::new(jobs));
        let shutdown = Shutdown::new();
        let scheduler = Scheduler::new(fake.clone(), settings(1, 1), shutdown.clone());
        let loop_task = tokio::spawn(scheduler.run());
        tokio::time::sleep(S(3)).await;
        shutdown.trigger();
        loop_task.await.unwrap();
        let log = fake.log.lock().unwrap().clone();
        let starts: Vec<Duration> = log.iter().map(|(b, _, _)| *b).collect();
        let ms = Duration::from_millis;
        assert_eq!(starts, vec![ms(0), ms(100), ms(200), ms(300), ms(400)]);
    }

    #[tokio::test(start_paused = true)]
    async fn never_more_run_at_once_than_the_global_and_per_connection_limits() {
        let jobs = (0..12)
            .map(|i| (S(0), if i % 3 == 0 { "a" } else { "b" }, S(5)))
            .collect();
        let fake = Arc::new(FakeWork::new(jobs));
        let shutdown = Shutdown::new();
        let scheduler = Scheduler::new(fake.clone(), settings(3, 2), shutdown.clone());
        let loop_task = tokio::spawn(scheduler.run());
        tokio::time::sleep(S(60)).await;
        shutdown.trigger();
        loop_task.await.unwrap();
        let (peak, per) = fake.peak.lock().unwrap().clone();
        assert_eq!(fake.log.lock().unwrap().len(), 12, "everything ran");
        assert_eq!(peak, 3, "global limit reached, never exceeded");
        assert!(per.values().all(|&n| n <= 2), "{per:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn stopping_lets_running_work_finish_within_the_drain_timeout() {
        let fake = Arc::new(FakeWork::new(vec![(S(0), "a", S(8)), (S(0), "b", S(60))]));
        let shutdown = Shutdown::new();
        let scheduler = Scheduler::new(fake.clone(), settings(4, 2), shutdown.clone());
        let loop_task = tokio::spawn(scheduler.run());
        tokio::time::sleep(S(2)).await;
        let stopped_at = Instant::now();
        shutdown.trigger();
        loop_task.await.unwrap();
        assert!(!shutdown.drain(S(10)).await);
        assert_eq!(
            stopped_at.elapsed(),
            S(10),
            "waited for the drain timeout, no longer"
        );
        let log = fake.log.lock().unwrap().clone();
        assert_eq!(
            log.len(),
            1,
            "the short job finished, the long one was cut off"
        );
        assert_eq!(log[0].2, "a");
    }
}

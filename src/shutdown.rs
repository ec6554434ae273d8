//! One shutdown for the whole server: a cancellation token that every
//! long-lived task watches (HTTP, WebSockets, the scheduler, the event
//! listener) and a tracker of every task that should finish before the
//! process exits (WebSocket connections, the scheduler, the listener, syncs
//! in flight). Draining is bounded by one timeout.

use std::{future::Future, time::Duration};

use tokio::task::JoinHandle;
use tokio_util::{
    sync::CancellationToken,
    task::{TaskTracker, task_tracker::TrackedFuture},
};

/// The server's shutdown signal and its tracked tasks.
#[derive(Clone, Default)]
pub struct Shutdown {
    token: CancellationToken,
    tracker: TaskTracker,
}

impl Shutdown {
    /// A signal nobody has given yet.
    pub fn new() -> Self {
        Shutdown::default()
    }

    /// Starts shutting down: every task watching the signal stops.
    pub fn trigger(&self) {
        self.token.cancel();
    }

    /// Completes once shutdown has started.
    pub async fn started(&self) {
        self.token.cancelled().await;
    }

    /// Whether shutdown has started.
    pub fn is_started(&self) -> bool {
        self.token.is_cancelled()
    }

    /// The signal as a token, for APIs that take one.
    pub fn token(&self) -> CancellationToken {
        self.token.clone()
    }

    /// Spawns a task that shutdown waits for.
    pub fn spawn<F>(&self, task: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.tracker.spawn(task)
    }

    /// Wraps a future (a WebSocket connection) so that shutdown waits for it.
    pub fn track<F: Future>(&self, task: F) -> TrackedFuture<F> {
        self.tracker.track_future(task)
    }

    /// Waits until every tracked task has finished, or `timeout` passed.
    /// Returns whether everything finished. New tasks may still be tracked
    /// while draining (a sync that a stopping scheduler had already started).
    pub async fn drain(&self, timeout: Duration) -> bool {
        self.tracker.close();
        tokio::time::timeout(timeout, self.tracker.wait())
            .await
            .is_ok()
    }

    /// How many tracked tasks are still running.
    pub fn running(&self) -> usize {
        self.tracker.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn draining_waits_for_tracked_work_up_to_the_timeout_and_no_longer() {
        let shutdown = Shutdown::new();
        let short = shutdown.spawn(tokio::time::sleep(Duration::from_secs(8)));
        let _long = shutdown.spawn(tokio::time::sleep(Duration::from_secs(60)));
        shutdown.trigger();
        let began = tokio::time::Instant::now();
        assert!(!shutdown.drain(Duration::from_secs(10)).await);
        assert_eq!(began.elapsed(), Duration::from_secs(10));
        assert!(short.is_finished(), "the short task finished");
        assert_eq!(shutdown.running(), 1, "the long one was cut off");
    }

    #[tokio::test(start_paused = true)]
    async fn draining_returns_as_soon_as_everything_finished() {
        let shutdown = Shutdown::new();
        let stop = shutdown.clone();
        shutdown.spawn(async move { stop.started().await });
        shutdown.trigger();
        assert!(shutdown.drain(Duration::from_secs(30)).await);
    }
}

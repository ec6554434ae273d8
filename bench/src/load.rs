//! Load loops bounded in both time and count, and what they measured:
//! latency percentiles and requests per second.

use std::{
    future::Future,
    sync::atomic::{AtomicU64, Ordering},
    time::{Duration, Instant},
};

use anyhow::Context as _;

/// How much load to offer: `concurrency` clients, each sending one request
/// after another, until `duration` has passed or `max_requests` have
/// started, whichever comes first.
#[derive(Debug, Clone, Copy)]
pub struct Bounds {
    pub concurrency: usize,
    pub duration: Duration,
    pub max_requests: u64,
}

/// The shared allowance of a load run: a deadline and a number of requests.
pub struct Budget {
    deadline: Instant,
    started: AtomicU64,
    max: u64,
}

impl Budget {
    /// Takes one request from the budget; false once time or count ran out.
    pub fn take(&self) -> bool {
        Instant::now() < self.deadline && self.started.fetch_add(1, Ordering::Relaxed) < self.max
    }
}

/// Latencies of every request of a run, sorted, and its wall time.
#[derive(Debug, Clone)]
pub struct LoadResult {
    latencies: Vec<Duration>,
    elapsed: Duration,
}

impl LoadResult {
    /// A result from single timings (not a load run): wall time is their sum.
    pub fn from_timings(mut latencies: Vec<Duration>) -> LoadResult {
        latencies.sort_unstable();
        let elapsed = latencies.iter().sum();
        LoadResult { latencies, elapsed }
    }

    pub fn count(&self) -> usize {
        self.latencies.len()
    }

    /// The `q`-quantile (0.5 for the median) by nearest rank, in milliseconds.
    pub fn quantile_ms(&self, q: f64) -> Option<f64> {
        quantile(&self.latencies, q).map(ms)
    }

    pub fn max_ms(&self) -> Option<f64> {
        self.latencies.last().copied().map(ms)
    }

    /// Completed requests per second of wall time.
    pub fn per_second(&self) -> Option<f64> {
        (self.count() > 0 && !self.elapsed.is_zero())
            .then(|| self.count() as f64 / self.elapsed.as_secs_f64())
    }
}

/// A duration in milliseconds.
pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// The `q`-quantile of sorted values by nearest rank.
pub fn quantile<T: Copy>(sorted: &[T], q: f64) -> Option<T> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

/// Runs `bounds.concurrency` workers at once and gathers their timings.
/// Each worker gets its index and the shared budget, takes a request from
/// the budget before each one, and returns the latency of every request it
/// made. The first worker error ends the run with that error.
pub async fn run<F, Fut>(bounds: Bounds, worker: F) -> anyhow::Result<LoadResult>
where
    F: Fn(usize, std::sync::Arc<Budget>) -> Fut,
    Fut: Future<Output = anyhow::Result<Vec<Duration>>> + Send + 'static,
{
    let started = Instant::now();
    let budget = std::sync::Arc::new(Budget {
        deadline: started + bounds.duration,
        started: AtomicU64::new(0),
        max: bounds.max_requests,
    });
    let tasks: Vec<_> = (0..bounds.concurrency.max(1))
        .map(|i| tokio::spawn(worker(i, budget.clone())))
        .collect();
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await.context("a load worker panicked")??);
    }
    let elapsed = started.elapsed();
    latencies.sort_unstable();
    Ok(LoadResult { latencies, elapsed })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_take_the_nearest_rank() {
        let values: Vec<u32> = (1..=100).collect();
        assert_eq!(quantile(&values, 0.5), Some(50));
        assert_eq!(quantile(&values, 0.99), Some(99));
        assert_eq!(quantile(&values, 1.0), Some(100));
        assert_eq!(quantile(&[7], 0.99), Some(7));
        assert_eq!(quantile::<u32>(&[], 0.5), None);
    }
}

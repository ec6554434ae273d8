//! Scenario `http`: the cost of the HTTP and GraphQL stack. Requests per
//! second of `/healthz`, of an anonymous `{ __typename }` (the GraphQL stack
//! without auth, the baseline) and of an authenticated `{ me { id } }`, each
//! from keep-alive connections, one per worker.

use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use bytes::Bytes;
use clap::Parser;
use http_body_util::Full;

use crate::{
    client::Http1,
    load::{self, Bounds, LoadResult},
    report::{self, Figure, Goal, RatioStyle, Report, Unit},
    server::{self, Launcher, Server},
};

/// How much load to offer.
#[derive(Debug, Clone, Parser)]
pub struct HttpArgs {
    /// Workers, each with its own keep-alive connection.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// How long each of the three runs lasts at most.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    duration: Duration,
    /// How many requests each run makes at most.
    #[arg(long, default_value_t = 2_000_000)]
    max_requests: u64,
    /// Warm `me` requests over which SQL statements are counted.
    #[arg(long, default_value_t = 1000)]
    statement_requests: u64,
}

impl Default for HttpArgs {
    fn default() -> Self {
        HttpArgs::parse_from(["http"])
    }
}

/// One kind of request the workers repeat.
#[derive(Clone)]
struct Probe {
    method: hyper::Method,
    path: &'static str,
    body: Option<Bytes>,
    authorization: Option<String>,
}

impl Probe {
    fn request(&self, address: &str) -> anyhow::Result<hyper::Request<Full<Bytes>>> {
        let mut builder = hyper::Request::builder()
            .method(self.method.clone())
            .uri(self.path)
            .header("host", address);
        if self.body.is_some() {
            builder = builder.header("content-type", "application/json");
        }
        if let Some(authorization) = &self.authorization {
            builder = builder.header("authorization", authorization);
        }
        builder
            .body(Full::new(self.body.clone().unwrap_or_default()))
            .context("building a request")
    }

    /// Sends one request and fails on any status but 200 or a GraphQL error.
    async fn send(&self, connection: &mut Http1, address: &str) -> anyhow::Result<()> {
        let (status, body) = connection.send(self.request(address)?).await?;
        if status != hyper::StatusCode::OK || memchr::memmem::find(&body, b"\"errors\"").is_some() {
            bail!(
                "{} {} answered {status}: {}",
                self.method,
                self.path,
                String::from_utf8_lossy(&body[..body.len().min(1000)])
            );
        }
        Ok(())
    }
}

pub async fn run(launcher: &Launcher, args: HttpArgs) -> anyhow::Result<Report> {
    let server = launcher.start(&[]).await?;
    let outcome = measure(&server, &args).await;
    server.finish().await?;
    outcome
}

async fn measure(server: &Server, args: &HttpArgs) -> anyhow::Result<Report> {
    let mut report = Report::new("http");
    report.parameter(
        "load",
        format!(
            "{} workers with a keep-alive connection each, each run at most {} and {} requests",
            args.concurrency,
            humantime::format_duration(args.duration),
            args.max_requests
        ),
    );
    report.parameter("server settings", report::settings(&[]));
    let token = server
        .token("bench-http", "member@bench.example", "member")
        .await?;
    let graphql = |query: &str, authorization: Option<String>| Probe {
        method: hyper::Method::POST,
        path: "/graphql",
        body: Some(Bytes::from(
            serde_json::json!({ "query": query }).to_string(),
        )),
        authorization,
    };
    let health = Probe {
        method: hyper::Method::GET,
        path: "/healthz",
        body: None,
        authorization: None,
    };
    let anonymous = graphql("{ __typename }", None);
    let me = graphql("{ me { id } }", Some(format!("Bearer {token}")));

    // Warm: the first request provisions the organization and the user.
    let mut warm = Http1::connect(&server.address).await?;
    me.send(&mut warm, &server.address).await?;
    drop(warm);

    let bounds = Bounds {
        concurrency: args.concurrency,
        duration: args.duration,
        max_requests: args.max_requests,
    };
    let health_run = hammer(&server.address, &health, bounds).await?;
    let anonymous_run = hammer(&server.address, &anonymous, bounds).await?;
    let me_run = hammer(&server.address, &me, bounds).await?;

    push_run(&mut report, "GET /healthz", &health_run, None);
    push_run(
        &mut report,
        "anonymous { __typename }",
        &anonymous_run,
        None,
    );
    push_run(
        &mut report,
        "{ me { id } } with a token",
        &me_run,
        Some(&anonymous_run),
    );

    // A fresh connection: the server closes idle ones after its header
    // timeout, which the runs above may have outlasted.
    let mut connection = Http1::connect(&server.address).await?;
    me.send(&mut connection, &server.address).await?;
    let before = server.metrics().await?;
    for _ in 0..args.statement_requests {
        me.send(&mut connection, &server.address).await?;
    }
    let after = server.metrics().await?;
    let total = server::delta(&before, &after, server::SQL_STATEMENTS);
    let per_request = total.map(|d| d / args.statement_requests.max(1) as f64);
    report.push(
        Figure::new(
            format!(
                "SQL statements per warm me request ({} over {})",
                total.map_or_else(|| "n/a".to_owned(), |t| format!("{t:.0}")),
                args.statement_requests
            ),
            Unit::Number,
            per_request,
        )
        // A warm caller costs no statement; the cache refreshes each
        // caller once per AUTH_CACHE_TTL (5 s), whatever the request rate,
        // and a run that outlasts the time to live counts that refresh.
        .goal(Goal::at_most(
            "none per request (≤ 0.01: one refresh per time to live)",
            0.01,
            per_request,
        )),
    );
    report.note("baseline of the `me` rows: the anonymous `{ __typename }` run of the same server (the GraphQL stack without auth)");
    Ok(report)
}

/// Runs `probe` from `bounds.concurrency` workers, each on its own connection.
async fn hammer(address: &str, probe: &Probe, bounds: Bounds) -> anyhow::Result<LoadResult> {
    load::run(bounds, |_, budget| {
        let (address, probe) = (address.to_owned(), probe.clone());
        async move {
            let mut connection = Http1::connect(&address).await?;
            let mut timings = Vec::new();
            while budget.take() {
                let started = Instant::now();
                probe.send(&mut connection, &address).await?;
                timings.push(started.elapsed());
            }
            Ok(timings)
        }
    })
    .await
}

/// Requests per second, p50 and p99 of one run; with a baseline run, its
/// figures and the ratios (the throughput goal is ≥ 50 % of the baseline).
fn push_run(report: &mut Report, name: &str, run: &LoadResult, baseline: Option<&LoadResult>) {
    let ratio = |a: Option<f64>, b: Option<f64>| Some(a? / b?);
    let rps = run.per_second();
    let base_rps = baseline.and_then(LoadResult::per_second);
    let mut figure = Figure::new(
        format!("{name}: requests/s ({} requests)", run.count()),
        Unit::PerSecond,
        rps,
    );
    if baseline.is_some() {
        let share = ratio(rps, base_rps);
        figure = figure
            .baseline(base_rps)
            .ratio(share, RatioStyle::Percent)
            .goal(Goal::at_least("≥ 50 %", 0.5, share));
    }
    report.push(figure);
    for (label, q) in [("p50", 0.5), ("p99", 0.99)] {
        let value = run.quantile_ms(q);
        let base = baseline.and_then(|b| b.quantile_ms(q));
        let mut figure = Figure::new(
            format!("{name}: {label} latency"),
            Unit::Milliseconds,
            value,
        );
        if baseline.is_some() {
            figure = figure
                .baseline(base)
                .ratio(ratio(value, base), RatioStyle::Times);
        }
        report.push(figure);
    }
}

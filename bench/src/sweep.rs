//! Scenario `sweep`: N data sources fall due at once against a BigQuery
//! endpoint that answers each request after a fixed latency; how long the
//! scheduler takes to run them all, against the ideal N × (one sync's
//! latency) / concurrency, and how many SQL writes each sync costs.
//!
//! One key result is linked through the API; the other N − 1 get copies of
//! its data source row by direct SQL (linking thousands through BigQuery
//! would take far longer than the sweep itself), with the same value on
//! their key results, so a sync finds the value unchanged unless
//! `--changed` moves the warehouse's number first.

use std::{
    path::PathBuf,
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};
use clap::Parser;
use serde_json::json;

use crate::{
    client::{Gql, literal},
    db::{Bind, Db},
    emulator::{Emulator, LatencyProxy, PROJECT, find_emulator},
    load::LoadResult,
    report::{self, Figure, Goal, RatioStyle, Report, Unit},
    server::{self, Launcher, Server},
};

/// Sizes of the sweep and of the scheduler.
#[derive(Debug, Clone, Parser)]
pub struct SweepArgs {
    /// Data sources that fall due at once.
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u32).range(1..))]
    sources: u32,
    /// Delay the proxy adds to every BigQuery request.
    #[arg(long, default_value = "200ms", value_parser = humantime::parse_duration)]
    latency: Duration,
    /// The server's SYNC_CONCURRENCY.
    #[arg(long, default_value_t = 4)]
    concurrency: u32,
    /// The server's SYNC_CONCURRENCY_PER_CONNECTION (all sources share one connection).
    #[arg(long, default_value_t = 4)]
    per_connection: u32,
    /// The bqemulator binary; else OKR_PULSE_BQEMULATOR, else the cached install.
    #[arg(long)]
    emulator: Option<PathBuf>,
    /// Change the warehouse's number before the sweep, so that every sync
    /// records a new value (history point and roll-up) instead of finding
    /// it unchanged.
    #[arg(long)]
    changed: bool,
    /// Single refreshes timed through the proxy to find one sync's latency.
    #[arg(long, default_value_t = 5)]
    refreshes: u32,
}

impl Default for SweepArgs {
    fn default() -> Self {
        SweepArgs::parse_from(["sweep"])
    }
}

/// The organization of the data sources.
const ORG: &str = "bench-sweep";
/// Key results per objective, so roll-ups stay the size of a real objective.
const KEY_RESULTS_PER_OBJECTIVE: u32 = 100;
/// The query every data source runs.
const SQL: &str = "SELECT SUM(n) AS n FROM bench.metric";

pub async fn run(launcher: &Launcher, args: SweepArgs) -> anyhow::Result<Report> {
    let emulator = Emulator::start(&find_emulator(args.emulator.as_deref())?).await?;
    emulator.create_dataset("bench").await?;
    emulator
        .execute("CREATE TABLE bench.metric AS SELECT 120 AS n")
        .await?;
    let proxy = LatencyProxy::start(&emulator.url, args.latency).await?;
    let env = vec![
        ("BIGQUERY_EMULATOR_HOST", proxy.address.clone()),
        ("SCHEDULER_ENABLED", "true".to_owned()),
        ("SYNC_CONCURRENCY", args.concurrency.to_string()),
        (
            "SYNC_CONCURRENCY_PER_CONNECTION",
            args.per_connection.to_string(),
        ),
        // Nothing falls due by itself during the run: the sweep makes them due.
        ("SYNC_INTERVAL", "24h".to_owned()),
    ];
    let server = launcher.start(&env).await?;
    let outcome = measure(&server, &emulator, &proxy, &args, &env).await;
    server.finish().await?;
    outcome
}

async fn measure(
    server: &Server,
    emulator: &Emulator,
    proxy: &LatencyProxy,
    args: &SweepArgs,
    env: &[(&str, String)],
) -> anyhow::Result<Report> {
    let mut report = Report::new("sweep");
    let effective = args.concurrency.min(args.per_connection).max(1);
    report.parameter(
        "sweep",
        format!(
            "{} due data sources on one connection, `{SQL}`, {} added to every BigQuery request, {} at once (SYNC_CONCURRENCY {}, per connection {}), values {}",
            args.sources,
            humantime::format_duration(args.latency),
            effective,
            args.concurrency,
            args.per_connection,
            if args.changed { "changed" } else { "unchanged" }
        ),
    );
    report.parameter("server settings", report::settings(env));

    let token = server.token(ORG, "owner@bench.example", "admin").await?;
    let gql = Gql::new(&server.base, Some(&token));
    let setup = Instant::now();
    let linked = set_up(server, &gql, args.sources).await?;
    eprintln!(
        "sweep: {} data sources set up in {:.1} s",
        args.sources,
        setup.elapsed().as_secs_f64()
    );

    proxy.delay(true);
    let single = time_refreshes(&gql, &linked.data_source, args.refreshes).await?;
    let single_ms = single.quantile_ms(0.5).context("no refresh timed")?;
    if args.changed {
        emulator
            .execute("INSERT INTO bench.metric VALUES (1)")
            .await?;
    }
    let ideal = Duration::from_secs_f64(
        f64::from(args.sources) * single_ms / 1000.0 / f64::from(effective),
    );

    let db = Db::connect(&server.database_url(), 1, false).await?;
    let outcome = sweep(server, proxy, &db, &linked, args.sources, ideal).await;
    proxy.delay(false);
    db.close().await;
    let swept = outcome?;

    let elapsed = swept.elapsed.as_secs_f64();
    let n = f64::from(args.sources);
    let ratio = elapsed / ideal.as_secs_f64();
    report.push(Figure::new(
        format!(
            "one sync through the proxy (refreshDataSource p50 of {})",
            single.count()
        ),
        Unit::Milliseconds,
        Some(single_ms),
    ));
    report.push(
        Figure::new(
            "sweep: all due data sources synced in",
            Unit::Seconds,
            Some(elapsed),
        )
        .baseline(Some(ideal.as_secs_f64()))
        .ratio(Some(ratio), RatioStyle::Times)
        .goal(Goal::at_most("≤ 1.1× ideal", 1.1, Some(ratio))),
    );
    report.push(
        Figure::new(
            "sweep: syncs per second",
            Unit::PerSecond,
            Some(n / elapsed),
        )
        .baseline(Some(n / ideal.as_secs_f64()))
        .ratio(Some(ideal.as_secs_f64() / elapsed), RatioStyle::Times),
    );
    let per_sync = |d: Option<f64>| d.map(|d| d / n);
    let writes = per_sync(server::delta(
        &swept.before,
        &swept.after,
        server::SQL_WRITES,
    ));
    report.push(
        Figure::new("SQL writes per sync", Unit::Number, writes)
            .goal(Goal::at_most("≤ 3", 3.0, writes)),
    );
    report.push(Figure::new(
        "SQL statements per sync",
        Unit::Number,
        per_sync(server::delta(
            &swept.before,
            &swept.after,
            server::SQL_STATEMENTS,
        )),
    ));
    report.push(Figure::new(
        "BigQuery requests per sync",
        Unit::Number,
        Some(swept.bigquery_requests as f64 / n),
    ));
    report.push(Figure::new(
        "sync runs counted by the server",
        Unit::Count,
        server::delta(&swept.before, &swept.after, server::SYNC_RUNS),
    ));
    report.note(format!(
        "ideal = {} sources × {single_ms:.1} ms / {effective} at once; outcomes of the sweep's runs: {}",
        args.sources, swept.outcomes
    ));
    Ok(report)
}

/// The linked data source and its organization.
struct Linked {
    data_source: String,
    org_id: String,
}

/// Creates the key results through the API, links the first one, and
/// gives the others copies of its data source by direct SQL.
async fn set_up(server: &Server, gql: &Gql, sources: u32) -> anyhow::Result<Linked> {
    let ids = gql.data("{ organization { id } }", json!({})).await?;
    let org_id = ids["organization"]["id"]
        .as_str()
        .context("no organization id")?
        .to_owned();
    let connection = gql
        .data(
            "mutation($p: String!) { createConnection(input: { name: \"Bench\", projectId: $p }) { id } }",
            json!({ "p": PROJECT }),
        )
        .await?;
    let connection = connection["createConnection"]["id"]
        .as_str()
        .context("no connection id")?
        .to_owned();

    let today = chrono::Utc::now().date_naive();
    let (start, end) = (today - chrono::Days::new(30), today + chrono::Days::new(60));
    let objectives_n = sources.div_ceil(KEY_RESULTS_PER_OBJECTIVE);
    let fields: Vec<String> = (0..objectives_n)
        .map(|i| format!("createObjective(input: {{ title: \"Synced {i}\", periodStart: \"{start}\", periodEnd: \"{end}\" }}) {{ id }}"))
        .collect();
    let objectives = gql.mutate_many(&fields, 4).await?;
    let fields: Vec<String> = (0..sources)
        .map(|i| {
            let objective = objectives[(i / KEY_RESULTS_PER_OBJECTIVE) as usize]["id"]
                .as_str()
                .unwrap_or_default();
            format!(
                "createKeyResult(input: {{ objectiveId: {}, title: \"Synced KR {i}\", kind: METRIC, startValue: 0, targetValue: 1000 }}) {{ id }}",
                literal(objective)
            )
        })
        .collect();
    let key_results = gql.mutate_many(&fields, 4).await?;
    let first = key_results
        .first()
        .and_then(|k| k["id"].as_str())
        .context("no key result created")?
        .to_owned();
    let link = gql
        .data(
            "mutation($k: ID!, $c: ID!, $sql: String!) { linkDataSource(input: { keyResultId: $k, connectionId: $c, sql: $sql }) { id state } }",
            json!({ "k": first, "c": connection, "sql": SQL }),
        )
        .await?;
    let data_source = link["linkDataSource"]["id"]
        .as_str()
        .context("no data source id")?
        .to_owned();

    let db = Db::connect(&server.database_url(), 1, false).await?;
    let copied = copy_data_source(&db, &data_source, &first, &org_id).await;
    db.close().await;
    let copied = copied?;
    if copied != u64::from(sources - 1) {
        bail!(
            "copied the data source to {copied} key results, not {}",
            sources - 1
        );
    }
    Ok(Linked {
        data_source,
        org_id,
    })
}

/// Copies the data source row to every other key result of the
/// organization (new ids, the same SQL, connection and schedule) and gives
/// those key results the linked one's value. Columns are read from the
/// table, so columns added later are copied as well.
async fn copy_data_source(
    db: &Db,
    data_source: &str,
    key_result: &str,
    org_id: &str,
) -> anyhow::Result<u64> {
    let columns = db.columns("data_sources").await?;
    let values: Vec<String> = columns
        .iter()
        .map(|c| match c.as_str() {
            "id" => "'ds-' || k.id".to_owned(),
            "key_result_id" => "k.id".to_owned(),
            "objective_id" | "lease_owner" | "lease_expires_at" => "NULL".to_owned(),
            other => format!("d.\"{other}\""),
        })
        .collect();
    let names: Vec<String> = columns.iter().map(|c| format!("\"{c}\"")).collect();
    let insert = format!(
        "INSERT INTO data_sources ({}) SELECT {} FROM data_sources d JOIN key_results k ON k.org_id = d.org_id AND k.id <> d.key_result_id WHERE d.id = $1",
        names.join(", "),
        values.join(", ")
    );
    let copied = db
        .execute(&insert, &[Bind::Text(data_source.to_owned())])
        .await?;
    let (value, progress): (Option<f64>, Option<f64>) = db
        .fetch_one(
            "SELECT current_value, progress FROM key_results WHERE id = $1",
            &[Bind::Text(key_result.to_owned())],
        )
        .await?;
    let value = value.context("the linked key result has no value")?;
    db.execute(
        "UPDATE key_results SET current_value = $1, progress = $2 WHERE org_id = $3 AND id <> $4",
        &[
            Bind::Float(value),
            Bind::Float(progress.unwrap_or_default()),
            Bind::Text(org_id.to_owned()),
            Bind::Text(key_result.to_owned()),
        ],
    )
    .await?;
    Ok(copied)
}

/// Times single refreshes of the linked data source through the proxy.
async fn time_refreshes(gql: &Gql, data_source: &str, n: u32) -> anyhow::Result<LoadResult> {
    let mut timings = Vec::new();
    for _ in 0..n.max(1) {
        let started = Instant::now();
        let data = gql
            .data(
                "mutation($id: ID!) { refreshDataSource(id: $id) { state lastError { code message } } }",
                json!({ "id": data_source }),
            )
            .await?;
        timings.push(started.elapsed());
        let state = &data["refreshDataSource"]["state"];
        if state != "OK" {
            bail!("a refresh through the proxy ended {state}: {data}");
        }
    }
    Ok(LoadResult::from_timings(timings))
}

/// What the sweep measured.
struct Swept {
    elapsed: Duration,
    before: Option<server::Metrics>,
    after: Option<server::Metrics>,
    bigquery_requests: u64,
    outcomes: String,
}

/// Makes every data source due and waits until each has a new sync run.
async fn sweep(
    server: &Server,
    proxy: &LatencyProxy,
    db: &Db,
    linked: &Linked,
    sources: u32,
    ideal: Duration,
) -> anyhow::Result<Swept> {
    let (last_run,): (i64,) = db
        .fetch_one("SELECT COALESCE(MAX(id), 0) FROM sync_runs", &[])
        .await?;
    let before = server.metrics().await?;
    let requests_before = proxy.requests();
    let timeout = ideal * 3 + Duration::from_secs(60);
    let started = Instant::now();
    db.execute(
        "UPDATE data_sources SET next_sync_at = $1 WHERE org_id = $2",
        &[
            Bind::Time(chrono::Utc::now() - chrono::Duration::minutes(1)),
            Bind::Text(linked.org_id.clone()),
        ],
    )
    .await?;
    let mut last_progress = Instant::now();
    let elapsed = loop {
        let (done,): (i64,) = db
            .fetch_one(
                "SELECT COUNT(DISTINCT data_source_id) FROM sync_runs WHERE id > $1",
                &[Bind::Int(last_run)],
            )
            .await?;
        if done >= i64::from(sources) {
            break started.elapsed();
        }
        if started.elapsed() > timeout {
            bail!(
                "only {done} of {sources} data sources synced within {} (3 × the ideal {} + 60 s)",
                humantime::format_duration(Duration::from_secs(timeout.as_secs())),
                humantime::format_duration(Duration::from_secs(ideal.as_secs()))
            );
        }
        if last_progress.elapsed() >= Duration::from_secs(10) {
            eprintln!(
                "sweep: {done} of {sources} synced after {:.0} s (ideal {:.0} s)",
                started.elapsed().as_secs_f64(),
                ideal.as_secs_f64()
            );
            last_progress = Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let bigquery_requests = proxy.requests() - requests_before;
    let after = server.metrics().await?;
    let outcomes: Vec<(String, i64)> = db
        .fetch_all(
            "SELECT outcome, COUNT(*) FROM sync_runs WHERE id > $1 GROUP BY outcome ORDER BY outcome",
            &[Bind::Int(last_run)],
        )
        .await?;
    if outcomes.iter().any(|(o, _)| o == "ERROR") {
        let (code, message): (Option<String>, Option<String>) = db
            .fetch_one(
                "SELECT error_code, error_message FROM sync_runs WHERE id > $1 AND outcome = 'ERROR' ORDER BY id LIMIT 1",
                &[Bind::Int(last_run)],
            )
            .await?;
        bail!(
            "syncs failed during the sweep ({outcomes:?}); the first: {} {}",
            code.unwrap_or_default(),
            message.unwrap_or_default()
        );
    }
    let outcomes: Vec<String> = outcomes.iter().map(|(o, n)| format!("{o} {n}")).collect();
    Ok(Swept {
        elapsed,
        before,
        after,
        bigquery_requests,
        outcomes: outcomes.join(", "),
    })
}

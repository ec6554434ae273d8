//! Scenario `tree`: the dashboard's whole-tree query with the history of
//! every node, against the same rows fetched with hand-written SQL and
//! assembled into the same JSON in this process. The tree is seeded through
//! the API, so history and roll-up points are the server's own.

use std::{
    collections::HashMap,
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail, ensure};
use bytes::Bytes;
use chrono::{DateTime, Days, NaiveDate, Utc};
use clap::Parser;
use serde_json::{Value, json};

use crate::{
    client::{Gql, literal},
    db::{Bind, Db},
    load::{self, Bounds, LoadResult},
    report::{self, Figure, Goal, RatioStyle, Report, Unit},
    server::{self, Launcher, Server},
};

/// Sizes of the tree and of the load.
#[derive(Debug, Clone, Parser)]
pub struct TreeArgs {
    /// Objectives in the tree (a tenth are roots, the rest their children); at most 5000.
    #[arg(long, default_value_t = 2000, value_parser = clap::value_parser!(u32).range(1..=5000))]
    objectives: u32,
    /// Key results per objective.
    #[arg(long, default_value_t = 5)]
    key_results: u32,
    /// Check-ins per key result, each with a new value.
    #[arg(long, default_value_t = 2)]
    points: u32,
    /// Concurrent clients, one run per value.
    #[arg(long, value_delimiter = ',', default_values_t = [1, 8, 32])]
    concurrency: Vec<usize>,
    /// How long each run lasts at most.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    duration: Duration,
    /// How many requests each run makes at most.
    #[arg(long, default_value_t = 10_000)]
    max_requests: u64,
}

impl Default for TreeArgs {
    fn default() -> Self {
        TreeArgs::parse_from(["tree"])
    }
}

/// The measured query: every objective with owner, parent, children,
/// latest point, history, and its key results with theirs.
const TREE: &str = "query Tree($limit: Int!, $history: Int!) { objectives(limit: $limit) { id title progress expectedProgress status owner { name } parent { id } children { id } latestPoint { value progress } history(limit: $history) { at value progress } keyResults { id title progress status latestPoint { value } history(limit: $history) { at value progress } } } }";

/// The longest `history` list the API allows; the counts check proves no
/// node has more.
const HISTORY_LIMIT: u32 = 10_000;

/// The organization the tree lives in.
const ORG: &str = "bench-tree";

/// Server settings this scenario changes, and why.
fn server_env() -> Vec<(&'static str, String)> {
    vec![
        // The query cost check multiplies each list by its limit: 5,000
        // objectives × history(limit: 10,000) is far above the default,
        // though the real answer is what the seeding made.
        ("GRAPHQL_MAX_COMPLEXITY", "1000000000000".to_owned()),
        // The runtime budget counts what one answer resolves; the whole tree
        // with its histories is measured here, not refused.
        ("GRAPHQL_MAX_RESOLVED_OBJECTS", "1000000000".to_owned()),
        ("GRAPHQL_MAX_RESPONSE_BYTES", "17179869184".to_owned()),
        // At high concurrency one answer may take longer than the default 30 s.
        ("HTTP_REQUEST_TIMEOUT", "10m".to_owned()),
        // One connection per client at the highest concurrency, as an
        // operator expecting that many would size the pool: with fewer,
        // queued requests wait beyond the pool's 5 s acquire timeout.
        ("DATABASE_MAX_CONNECTIONS", "32".to_owned()),
    ]
}

pub async fn run(launcher: &Launcher, args: TreeArgs) -> anyhow::Result<Report> {
    let env = server_env();
    let server = launcher.start(&env).await?;
    let outcome = measure(&server, &args, &env).await;
    server.finish().await?;
    outcome
}

async fn measure(
    server: &Server,
    args: &TreeArgs,
    env: &[(&str, String)],
) -> anyhow::Result<Report> {
    let mut report = Report::new("tree");
    report.parameter(
        "tree",
        format!(
            "{} objectives ({} roots), {} key results each, {} check-ins per key result",
            args.objectives,
            roots(args.objectives),
            args.key_results,
            args.points
        ),
    );
    report.parameter(
        "load",
        format!(
            "concurrency {:?}, each run at most {} and {} requests",
            args.concurrency,
            humantime::format_duration(args.duration),
            args.max_requests
        ),
    );
    report.parameter("server settings", report::settings(env));

    let token = server.token(ORG, "owner@bench.example", "admin").await?;
    let gql = Gql::new(&server.base, Some(&token));
    let ids = gql
        .data("{ me { id } organization { id } }", json!({}))
        .await?;
    let org_id = ids["organization"]["id"]
        .as_str()
        .context("no organization id")?
        .to_owned();

    let seeding = Instant::now();
    seed(&gql, args).await?;
    let seeding = seeding.elapsed();
    report.push(Figure::new(
        "seeding through the API",
        Unit::Seconds,
        Some(seeding.as_secs_f64()),
    ));

    let body = Bytes::from(
        json!({ "query": TREE, "variables": { "limit": args.objectives, "history": HISTORY_LIMIT } })
            .to_string(),
    );
    let baseline = Baseline {
        org_id: org_id.clone(),
        limit: args.objectives,
    };
    let db_url = server.database_url();
    let size = check_answers(&gql, &body, &baseline, &db_url, args).await?;
    report.push(
        Figure::new(
            "answer size",
            Unit::MiB,
            Some(size.0 as f64 / 1024.0 / 1024.0),
        )
        .baseline(Some(size.1 as f64 / 1024.0 / 1024.0)),
    );
    statements(server, &gql, &body, args, &mut report).await?;

    let mut throughput = Vec::new();
    for &c in &args.concurrency {
        let bounds = Bounds {
            concurrency: c,
            duration: args.duration,
            max_requests: args.max_requests,
        };
        let ours = load_server(&gql, &body, bounds).await?;
        let theirs = load_baseline(&baseline, &db_url, bounds).await?;
        push_level(&mut report, c, &ours, &theirs);
        throughput.push((c, ours.per_second(), theirs.per_second()));
    }
    if let (Some(first), Some(last)) = (throughput.first(), throughput.last())
        && throughput.len() > 1
    {
        let scaling = |a: Option<f64>, b: Option<f64>| Some(b? / a?);
        let ours = scaling(first.1, last.1);
        report.push(
            Figure::new(
                format!("requests/s at c={} ÷ at c={}", last.0, first.0),
                Unit::Number,
                ours,
            )
            .baseline(scaling(first.2, last.2))
            .goal(Goal::judged("scales (> 1)", ours.map(|s| s > 1.0))),
        );
    }
    report.note("the baseline reads the same database directly with 4 statements (organization thresholds, objectives with their owners, key results, history points), computes expected progress and status (in UTC rather than the organization's time zone) and serialises the same JSON");
    Ok(report)
}

/// How many of `n` objectives are roots.
fn roots(n: u32) -> u32 {
    (n / 10).max(1)
}

/// Seeds the tree through the API: roots, then children spread over the
/// roots, then key results, then one round of check-ins per point (every
/// key result once per round, so each round's values are in order).
async fn seed(gql: &Gql, args: &TreeArgs) -> anyhow::Result<()> {
    let today = Utc::now().date_naive();
    let start = today.checked_sub_days(Days::new(50)).context("a date")?;
    let end = today.checked_add_days(Days::new(49)).context("a date")?;
    let objective = |i: u32, parent: Option<&str>| {
        let parent = parent
            .map(|p| format!(", parentId: {}", literal(p)))
            .unwrap_or_default();
        format!(
            "createObjective(input: {{ title: \"Objective {i}\", periodStart: \"{start}\", periodEnd: \"{end}\"{parent} }}) {{ id }}"
        )
    };
    let roots_n = roots(args.objectives);
    let fields: Vec<String> = (0..roots_n).map(|i| objective(i, None)).collect();
    let roots = ids_of(gql.mutate_many(&fields, 4).await?)?;
    let fields: Vec<String> = (roots_n..args.objectives)
        .map(|i| objective(i, Some(&roots[(i % roots_n) as usize])))
        .collect();
    let children = ids_of(gql.mutate_many(&fields, 4).await?)?;
    let objectives: Vec<String> = roots.into_iter().chain(children).collect();

    let fields: Vec<String> = objectives
        .iter()
        .flat_map(|o| {
            (0..args.key_results).map(move |k| {
                format!(
                    "createKeyResult(input: {{ objectiveId: {}, title: \"KR {k}\", kind: METRIC, startValue: 0, targetValue: 100 }}) {{ id }}",
                    literal(o)
                )
            })
        })
        .collect();
    let key_results = ids_of(gql.mutate_many(&fields, 4).await?)?;

    for round in 0..args.points {
        let value = f64::from(round + 1) * 100.0 / f64::from(args.points + 1);
        let fields: Vec<String> = key_results
            .iter()
            .map(|kr| {
                format!(
                    "checkIn(input: {{ keyResultId: {}, value: {value} }}) {{ id }}",
                    literal(kr)
                )
            })
            .collect();
        gql.mutate_many(&fields, 4).await?;
    }
    Ok(())
}

/// The `id` of each mutation result.
fn ids_of(results: Vec<Value>) -> anyhow::Result<Vec<String>> {
    results
        .into_iter()
        .map(|r| {
            r["id"]
                .as_str()
                .map(str::to_owned)
                .with_context(|| format!("a mutation result without id: {r}"))
        })
        .collect()
}

/// Checks once that the server's answer has no errors and holds every
/// objective, key result and history point the baseline finds, and that
/// each key result has one history point per check-in. Returns the sizes
/// of both answers in bytes.
async fn check_answers(
    gql: &Gql,
    body: &Bytes,
    baseline: &Baseline,
    db_url: &str,
    args: &TreeArgs,
) -> anyhow::Result<(usize, usize)> {
    let bytes = gql.post(body.clone()).await?;
    let answer: Value = serde_json::from_slice(&bytes).context("the tree answer is not JSON")?;
    let data = crate::client::data_of(answer, TREE)?;
    let ours = Counts::of(&data)?;
    let db = Db::connect(db_url, 1, true).await?;
    let text = baseline.fetch(&db).await?;
    db.close().await;
    let theirs = Counts::of(&serde_json::from_str::<Value>(&text)?["data"])?;
    ensure!(
        ours.objectives == args.objectives as usize,
        "the tree query returned {} objectives, not {}",
        ours.objectives,
        args.objectives
    );
    ensure!(
        ours.key_results == (args.objectives * args.key_results) as usize,
        "the tree query returned {} key results, not {}",
        ours.key_results,
        args.objectives * args.key_results
    );
    ensure!(
        ours.key_result_points == ours.key_results * args.points as usize,
        "the key results have {} history points in all, not {} per key result",
        ours.key_result_points,
        args.points
    );
    ensure!(
        ours == theirs,
        "okr-pulse and the baseline disagree: {ours:?} vs {theirs:?}"
    );
    Ok((bytes.len(), text.len()))
}

/// What a tree answer holds, to compare two answers.
#[derive(Debug, PartialEq, Eq)]
struct Counts {
    objectives: usize,
    key_results: usize,
    objective_points: usize,
    key_result_points: usize,
    children: usize,
}

impl Counts {
    fn of(data: &Value) -> anyhow::Result<Counts> {
        let objectives = data["objectives"]
            .as_array()
            .context("no objectives list")?;
        let len = |v: &Value| v.as_array().map_or(0, Vec::len);
        let key_results = objectives.iter().flat_map(|o| {
            o["keyResults"]
                .as_array()
                .map(|a| a.as_slice())
                .unwrap_or_default()
        });
        Ok(Counts {
            objectives: objectives.len(),
            key_results: objectives.iter().map(|o| len(&o["keyResults"])).sum(),
            objective_points: objectives.iter().map(|o| len(&o["history"])).sum(),
            key_result_points: key_results.map(|k| len(&k["history"])).sum(),
            children: objectives.iter().map(|o| len(&o["children"])).sum(),
        })
    }
}

/// SQL statements of one tree request, over all objectives and over the
/// first tenth of them: no more for all when no list costs a statement
/// per item.
async fn statements(
    server: &Server,
    gql: &Gql,
    body: &Bytes,
    args: &TreeArgs,
    report: &mut Report,
) -> anyhow::Result<()> {
    let small = (args.objectives / 10).max(1);
    let small_body = Bytes::from(
        json!({ "query": TREE, "variables": { "limit": small, "history": HISTORY_LIMIT } })
            .to_string(),
    );
    let mut counted = Vec::new();
    for body in [body, &small_body] {
        // Both counts with the caller's principal freshly cached, so that
        // neither includes authentication's statements and the other not.
        gql.data("{ me { id } }", json!({})).await?;
        let before = server.metrics().await?;
        gql.post(body.clone()).await?;
        let after = server.metrics().await?;
        counted.push(server::delta(&before, &after, server::SQL_STATEMENTS));
    }
    let (all, tenth) = (counted[0], counted[1]);
    report.push(
        Figure::new(
            format!(
                "SQL statements per request ({} objectives, caller cached)",
                args.objectives
            ),
            Unit::Count,
            all,
        )
        .baseline(Some(Baseline::STATEMENTS))
        // The first tenth is a page of the organization, read by its
        // listed ids; the whole tree takes its children from the
        // objectives it read, one statement fewer.
        .goal(Goal::judged(
            format!("constant (≤ at {small})"),
            all.zip(tenth).map(|(a, b)| a <= b),
        )),
    );
    report.push(Figure::new(
        format!("SQL statements per request ({small} objectives, caller cached)"),
        Unit::Count,
        tenth,
    ));
    Ok(())
}

/// Runs the tree query from `bounds.concurrency` clients; any error fails.
async fn load_server(gql: &Gql, body: &Bytes, bounds: Bounds) -> anyhow::Result<LoadResult> {
    load::run(bounds, |_, budget| {
        let (gql, body) = (gql.clone(), body.clone());
        async move {
            let mut timings = Vec::new();
            while budget.take() {
                let started = Instant::now();
                let answer = gql.post(body.clone()).await?;
                timings.push(started.elapsed());
                // The first answer was checked in full; later ones are
                // searched for an errors key without parsing them.
                if memchr::memmem::find(&answer, b"\"errors\"").is_some() {
                    let shown = String::from_utf8_lossy(&answer[..answer.len().min(2000)]);
                    bail!("the tree query answered with errors: {shown}");
                }
            }
            Ok(timings)
        }
    })
    .await
}

/// Runs the baseline from `bounds.concurrency` clients on a pool of as many
/// connections.
async fn load_baseline(
    baseline: &Baseline,
    db_url: &str,
    bounds: Bounds,
) -> anyhow::Result<LoadResult> {
    let db = Db::connect(db_url, bounds.concurrency.max(1) as u32, true).await?;
    let baseline = Arc::new(baseline.clone());
    let result = load::run(bounds, |_, budget| {
        let (db, baseline) = (db.clone(), baseline.clone());
        async move {
            let mut timings = Vec::new();
            while budget.take() {
                let started = Instant::now();
                let text = baseline.fetch(&db).await?;
                timings.push(started.elapsed());
                ensure!(!text.is_empty(), "the baseline built nothing");
            }
            Ok(timings)
        }
    })
    .await;
    db.close().await;
    result
}

/// The rows of one concurrency level.
fn push_level(report: &mut Report, c: usize, ours: &LoadResult, theirs: &LoadResult) {
    let ratio = |a: Option<f64>, b: Option<f64>| Some(a? / b?);
    let p50 = (ours.quantile_ms(0.5), theirs.quantile_ms(0.5));
    let p99 = (ours.quantile_ms(0.99), theirs.quantile_ms(0.99));
    let rps = (ours.per_second(), theirs.per_second());
    report.push(
        Figure::new(format!("c={c} p50 latency"), Unit::Milliseconds, p50.0)
            .baseline(p50.1)
            .ratio(ratio(p50.0, p50.1), RatioStyle::Times)
            .goal(Goal::at_most("≤ 1.5×", 1.5, ratio(p50.0, p50.1))),
    );
    report.push(
        Figure::new(format!("c={c} p99 latency"), Unit::Milliseconds, p99.0)
            .baseline(p99.1)
            .ratio(ratio(p99.0, p99.1), RatioStyle::Times),
    );
    report.push(
        Figure::new(
            format!(
                "c={c} requests/s ({} and {} requests)",
                ours.count(),
                theirs.count()
            ),
            Unit::PerSecond,
            rps.0,
        )
        .baseline(rps.1)
        .ratio(ratio(rps.0, rps.1), RatioStyle::Times),
    );
}

/// The hand-written version of the tree query.
#[derive(Debug, Clone)]
struct Baseline {
    org_id: String,
    limit: u32,
}

/// An objective row: id, parent, owner's name, title, period, progress.
type ObjectiveRow = (
    String,
    Option<String>,
    Option<String>,
    String,
    NaiveDate,
    NaiveDate,
    Option<f64>,
);
/// A key result row: id, objective, title, kind, progress.
type KeyResultRow = (String, String, String, String, Option<f64>);
/// A history point: objective or key result, time, value, progress.
type PointRow = (
    Option<String>,
    Option<String>,
    DateTime<Utc>,
    Option<f64>,
    Option<f64>,
);

impl Baseline {
    /// The statements [`Baseline::fetch`] runs.
    const STATEMENTS: f64 = 4.0;

    /// Fetches the rows with four statements and serialises the tree.
    async fn fetch(&self, db: &Db) -> anyhow::Result<String> {
        let org = [Bind::Text(self.org_id.clone())];
        let (behind, at_risk): (f64, f64) = db
            .fetch_one(
                "SELECT behind_threshold, at_risk_threshold FROM organizations WHERE id = $1",
                &org,
            )
            .await?;
        let objectives: Vec<ObjectiveRow> = db
            .fetch_all(
                "SELECT o.id, o.parent_id, u.name, o.title, o.period_start, o.period_end, o.progress FROM objectives o LEFT JOIN users u ON u.id = o.owner_id WHERE o.org_id = $1 ORDER BY o.created_at, o.id LIMIT $2",
                &[Bind::Text(self.org_id.clone()), Bind::Int(i64::from(self.limit))],
            )
            .await?;
        let key_results: Vec<KeyResultRow> = db
            .fetch_all(
                "SELECT id, objective_id, title, kind, progress FROM key_results WHERE org_id = $1 ORDER BY created_at, id",
                &org,
            )
            .await?;
        let points: Vec<PointRow> = db
            .fetch_all(
                "SELECT objective_id, key_result_id, at, value, progress FROM progress_points WHERE org_id = $1 ORDER BY at, id",
                &org,
            )
            .await?;
        let tree = assemble(
            &objectives,
            &key_results,
            &points,
            Thresholds { behind, at_risk },
            Utc::now(),
        );
        Ok(serde_json::to_string(&tree)?)
    }
}

/// Shortfalls (percentage points) up to which an OKR is on track, behind.
#[derive(Debug, Clone, Copy)]
struct Thresholds {
    behind: f64,
    at_risk: f64,
}

/// The share of the period elapsed at `now`, in percent (UTC days).
fn expected_progress(start: NaiveDate, end: NaiveDate, now: DateTime<Utc>) -> f64 {
    let from = start.and_hms_opt(0, 0, 0).map(|t| t.and_utc());
    let to = end
        .succ_opt()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc());
    match (from, to) {
        (Some(from), Some(to)) if to > from => {
            let elapsed = (now - from).num_milliseconds() as f64;
            let total = (to - from).num_milliseconds() as f64;
            (elapsed / total).clamp(0.0, 1.0) * 100.0
        }
        _ => 0.0,
    }
}

/// The status word for a progress against the expected progress.
fn status(progress: Option<f64>, expected: f64, t: Thresholds) -> &'static str {
    let Some(progress) = progress else {
        return "NOT_STARTED";
    };
    let shortfall = expected - progress.clamp(0.0, 100.0);
    if shortfall <= t.behind {
        "ON_TRACK"
    } else if shortfall <= t.at_risk {
        "BEHIND"
    } else {
        "AT_RISK"
    }
}

/// A key result's status: a KPI is on track when met, at risk when not.
fn key_result_status(
    kind: &str,
    progress: Option<f64>,
    expected: f64,
    t: Thresholds,
) -> &'static str {
    match (kind, progress) {
        ("KPI", Some(p)) if p >= 100.0 => "ON_TRACK",
        ("KPI", Some(_)) => "AT_RISK",
        _ => status(progress, expected, t),
    }
}

/// Builds `{"data": {"objectives": [...]}}` shaped like the GraphQL answer.
fn assemble(
    objectives: &[ObjectiveRow],
    key_results: &[KeyResultRow],
    points: &[PointRow],
    thresholds: Thresholds,
    now: DateTime<Utc>,
) -> Value {
    let mut history: HashMap<&str, Vec<&PointRow>> = HashMap::new();
    for point in points {
        if let Some(node) = point.1.as_deref().or(point.0.as_deref()) {
            history.entry(node).or_default().push(point);
        }
    }
    let mut children: HashMap<&str, Vec<Value>> = HashMap::new();
    for o in objectives {
        if let Some(parent) = o.1.as_deref() {
            children
                .entry(parent)
                .or_default()
                .push(json!({ "id": o.0 }));
        }
    }
    let mut krs: HashMap<&str, Vec<&KeyResultRow>> = HashMap::new();
    for kr in key_results {
        krs.entry(kr.1.as_str()).or_default().push(kr);
    }
    let points_of = |node: &str| -> (Vec<Value>, Option<&PointRow>) {
        let list = history.get(node).map(Vec::as_slice).unwrap_or_default();
        let json = list
            .iter()
            .map(|p| {
                json!({
                    "at": p.2.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
                    "value": p.3,
                    "progress": p.4,
                })
            })
            .collect();
        (json, list.last().copied())
    };
    let list: Vec<Value> = objectives
        .iter()
        .map(|(id, parent, owner, title, start, end, progress)| {
            let expected = expected_progress(*start, *end, now);
            let (history, latest) = points_of(id);
            let key_results: Vec<Value> = krs
                .get(id.as_str())
                .map(Vec::as_slice)
                .unwrap_or_default()
                .iter()
                .map(|(kr_id, _, kr_title, kind, kr_progress)| {
                    let (history, latest) = points_of(kr_id);
                    json!({
                        "id": kr_id,
                        "title": kr_title,
                        "progress": kr_progress,
                        "status": key_result_status(kind, *kr_progress, expected, thresholds),
                        "latestPoint": latest.map(|p| json!({ "value": p.3 })),
                        "history": history,
                    })
                })
                .collect();
            json!({
                "id": id,
                "title": title,
                "progress": progress,
                "expectedProgress": expected,
                "status": status(*progress, expected, thresholds),
                "owner": owner.as_ref().map(|name| json!({ "name": name })),
                "parent": parent.as_ref().map(|p| json!({ "id": p })),
                "children": children.get(id.as_str()).cloned().unwrap_or_default(),
                "latestPoint": latest.map(|p| json!({ "value": p.3, "progress": p.4 })),
                "history": history,
                "keyResults": key_results,
            })
        })
        .collect();
    json!({ "data": { "objectives": list } })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_follows_the_shortfall() {
        let t = Thresholds {
            behind: 0.0,
            at_risk: 25.0,
        };
        assert_eq!(status(None, 50.0, t), "NOT_STARTED");
        assert_eq!(status(Some(60.0), 50.0, t), "ON_TRACK");
        assert_eq!(status(Some(30.0), 50.0, t), "BEHIND");
        assert_eq!(status(Some(10.0), 50.0, t), "AT_RISK");
    }

    #[test]
    fn the_baseline_nests_children_key_results_and_history() {
        let day = NaiveDate::from_ymd_opt(2026, 1, 1).unwrap();
        let now = Utc::now();
        let objectives = vec![
            (
                "a".to_owned(),
                None,
                Some("Ana".to_owned()),
                "A".to_owned(),
                day,
                day,
                Some(10.0),
            ),
            (
                "b".to_owned(),
                Some("a".to_owned()),
                None,
                "B".to_owned(),
                day,
                day,
                None,
            ),
        ];
        let krs = vec![(
            "k".to_owned(),
            "b".to_owned(),
            "K".to_owned(),
            "METRIC".to_owned(),
            Some(5.0),
        )];
        let points = vec![
            (None, Some("k".to_owned()), now, Some(5.0), Some(5.0)),
            (Some("b".to_owned()), None, now, None, Some(5.0)),
        ];
        let t = Thresholds {
            behind: 0.0,
            at_risk: 25.0,
        };
        let tree = assemble(&objectives, &krs, &points, t, now);
        let list = &tree["data"]["objectives"];
        assert_eq!(list[0]["children"][0]["id"], "b");
        assert_eq!(list[1]["parent"]["id"], "a");
        assert_eq!(
            list[1]["keyResults"][0]["history"]
                .as_array()
                .unwrap()
                .len(),
            1
        );
        assert_eq!(list[1]["history"].as_array().unwrap().len(), 1);
        assert_eq!(list[1]["latestPoint"]["progress"], 5.0);
    }
}

//! Scenario `startup`: time from spawning the binary to its first 200 on
//! `/readyz`, on a fresh data folder (cold: the database is created and
//! migrated) and again on the same data after a clean stop (warm), and the
//! resident memory two seconds after ready with no traffic.

use std::time::Duration;

use clap::Parser;

use crate::{
    load::LoadResult,
    report::{self, Figure, Goal, Report, Unit},
    server::{Launcher, Server},
};

/// How often to start the server.
#[derive(Debug, Clone, Parser)]
pub struct StartupArgs {
    /// Cold and warm starts, each.
    #[arg(long, default_value_t = 5)]
    repeat: u32,
}

impl Default for StartupArgs {
    fn default() -> Self {
        StartupArgs::parse_from(["startup"])
    }
}

/// How often `/readyz` is asked while starting.
const POLL: Duration = Duration::from_millis(5);
/// How long a start may take before the scenario gives up.
const GIVE_UP: Duration = Duration::from_secs(60);
/// Quiet time before the idle memory is read.
const SETTLE: Duration = Duration::from_secs(2);

pub async fn run(launcher: &Launcher, args: StartupArgs) -> anyhow::Result<Report> {
    let mut report = Report::new("startup");
    report.parameter(
        "starts",
        format!(
            "{} cold (fresh data folder{}) and {} warm (same data, after SIGTERM), /readyz polled every {} ms",
            args.repeat,
            match launcher.database() {
                crate::server::DatabaseKind::Sqlite => "",
                crate::server::DatabaseKind::Postgres => " and empty database",
            },
            args.repeat,
            POLL.as_millis()
        ),
    );
    report.parameter("server settings", report::settings(&[]));
    let (mut cold, mut warm, mut cold_rss, mut warm_rss) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for _ in 0..args.repeat.max(1) {
        let home = launcher.fresh_home().await?;
        let mut server = Server::spawn(launcher, home, &[])?;
        cold.push(server.wait_for("/readyz", POLL, GIVE_UP).await?);
        tokio::time::sleep(SETTLE).await;
        cold_rss.push(server.rss_bytes()?);
        let home = server.stop().await?;

        let mut server = Server::spawn(launcher, home, &[])?;
        warm.push(server.wait_for("/readyz", POLL, GIVE_UP).await?);
        tokio::time::sleep(SETTLE).await;
        warm_rss.push(server.rss_bytes()?);
        server.finish().await?;
    }
    push_times(&mut report, "cold start to ready", cold);
    push_times(&mut report, "warm start to ready", warm);
    push_memory(&mut report, "idle RSS after a cold start", cold_rss);
    push_memory(&mut report, "idle RSS after a warm start", warm_rss);
    Ok(report)
}

/// Median and worst of some start times; the goal is 1 s.
fn push_times(report: &mut Report, name: &str, times: Vec<Duration>) {
    let times = LoadResult::from_timings(times);
    let median = times.quantile_ms(0.5);
    let worst = times.max_ms();
    report.push(
        Figure::new(format!("{name}: median"), Unit::Milliseconds, median).goal(Goal::at_most(
            "≤ 1000 ms",
            1000.0,
            median,
        )),
    );
    report.push(
        Figure::new(
            format!("{name}: worst of {}", times.count()),
            Unit::Milliseconds,
            worst,
        )
        .goal(Goal::at_most("≤ 1000 ms", 1000.0, worst)),
    );
}

/// Median and worst of some memory readings; the goal is 40 MB.
fn push_memory(report: &mut Report, name: &str, bytes: Vec<u64>) {
    let mut mib: Vec<f64> = bytes.iter().map(|b| *b as f64 / 1024.0 / 1024.0).collect();
    mib.sort_by(f64::total_cmp);
    let median = crate::load::quantile(&mib, 0.5);
    let worst = mib.last().copied();
    // 40 MB = 38.1 MiB.
    let limit = 40.0e6 / 1024.0 / 1024.0;
    report.push(
        Figure::new(format!("{name}: median"), Unit::MiB, median).goal(Goal::at_most(
            "≤ 40 MB",
            limit,
            median,
        )),
    );
    report.push(
        Figure::new(format!("{name}: worst of {}", mib.len()), Unit::MiB, worst)
            .goal(Goal::at_most("≤ 40 MB", limit, worst)),
    );
}

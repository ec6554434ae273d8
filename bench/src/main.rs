//! okr-bench: measures the real `okr-pulse` binary from the outside, as a
//! client on loopback would, and prints each figure next to its baseline and
//! the goal of the performance contract. Every scenario starts its own
//! server process with a fresh database and stops it at the end.
//!
//! `okr-bench [--json] [--database sqlite|postgres] [--server PATH] <scenario>`
//! with the scenarios `tree`, `http`, `fanout`, `sweep`, `startup` and `all`.

mod client;
mod db;
mod emulator;
mod fanout;
mod http;
mod load;
mod report;
mod server;
mod startup;
mod sweep;
mod tree;

use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Parser, Subcommand};

use report::{Header, Report};
use server::{DatabaseKind, Launcher};

/// Benchmarks of okr-pulse: the tree query, the HTTP stack, subscription
/// fan-out, the sync sweep and start-up.
#[derive(Debug, Parser)]
#[command(name = "okr-bench", version, about)]
struct Cli {
    /// Print one JSON object per scenario instead of tables.
    #[arg(long, global = true)]
    json: bool,

    /// Database the server runs on.
    #[arg(long, global = true, value_enum, default_value_t = DatabaseKind::Sqlite)]
    database: DatabaseKind,

    /// The okr-pulse binary; by default the one next to okr-bench.
    #[arg(long, global = true)]
    server: Option<PathBuf>,

    /// PostgreSQL server (without a database name) that `--database
    /// postgres` creates its throw-away databases on.
    #[arg(
        long,
        global = true,
        default_value = "postgres://postgres@127.0.0.1:5432"
    )]
    postgres_url: String,

    #[command(subcommand)]
    scenario: Scenario,
}

/// What to measure.
#[derive(Debug, Subcommand)]
enum Scenario {
    /// The whole OKR tree with history, against hand-written SQL.
    Tree(tree::TreeArgs),
    /// `/healthz`, an anonymous and an authenticated trivial query.
    Http(http::HttpArgs),
    /// One event delivered to thousands of WebSocket subscribers.
    Fanout(fanout::FanoutArgs),
    /// Thousands of due data sources against a slow BigQuery endpoint.
    Sweep(sweep::SweepArgs),
    /// Cold and warm start to ready, and idle memory.
    Startup(startup::StartupArgs),
    /// Every scenario in turn, each with its default sizes.
    All,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    raise_open_file_limit();
    // One worker per core, shared with the server process: the figures are
    // those of a client on the same machine.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async {
        tokio::select! {
            result = run(cli) => result,
            // Dropping the run kills its servers and drops their databases.
            _ = tokio::signal::ctrl_c() => anyhow::bail!("interrupted"),
        }
    })
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let binary = server::find_binary(cli.server.as_deref())?;
    let launcher = Launcher::new(binary, cli.database, cli.postgres_url.clone());
    let header = Header::collect(&launcher);
    if !cli.json {
        print!("{}", header.render());
    }
    let scenarios: Vec<Scenario> = match cli.scenario {
        Scenario::All => vec![
            Scenario::Tree(tree::TreeArgs::default()),
            Scenario::Http(http::HttpArgs::default()),
            Scenario::Fanout(fanout::FanoutArgs::default()),
            Scenario::Sweep(sweep::SweepArgs::default()),
            Scenario::Startup(startup::StartupArgs::default()),
        ],
        one => vec![one],
    };
    for scenario in scenarios {
        let report = run_one(&launcher, scenario).await?;
        if cli.json {
            println!("{}", report.to_json(&header));
        } else {
            print!("{}", report.render());
        }
    }
    Ok(())
}

/// Runs one scenario and names it in any error it returns.
async fn run_one(launcher: &Launcher, scenario: Scenario) -> anyhow::Result<Report> {
    match scenario {
        Scenario::Tree(args) => tree::run(launcher, args).await.context("scenario tree"),
        Scenario::Http(args) => http::run(launcher, args).await.context("scenario http"),
        Scenario::Fanout(args) => fanout::run(launcher, args).await.context("scenario fanout"),
        Scenario::Sweep(args) => sweep::run(launcher, args).await.context("scenario sweep"),
        Scenario::Startup(args) => startup::run(launcher, args)
            .await
            .context("scenario startup"),
        Scenario::All => anyhow::bail!("`all` cannot be nested"),
    }
}

/// Raises the soft limit of open files to the hard limit, so that 10,000
/// WebSockets fit in this process; the server, a child, inherits it.
fn raise_open_file_limit() {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit only read and write the struct given.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 && limit.rlim_cur < limit.rlim_max
        {
            limit.rlim_cur = limit.rlim_max;
            if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 {
                eprintln!("okr-bench: could not raise the open-file limit; fan-out may run short");
            }
        }
    }
}

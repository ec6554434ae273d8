use clap::Parser;
use okr_pulse::{
    auth::{self, TokenKeys},
    config::{Command, Config, RoleArg, TokenArgs},
    startup::{Application, shutdown_signal},
    telemetry,
};

/// jemalloc serves Rust and SQLite alike. Its background thread hands
/// freed memory back to the system within about a second, even when the
/// process has gone idle, so the process shrinks again after a burst of
/// connections or a large query.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's settings, read when it starts: purge freed pages after one
/// second, in a background thread.
#[unsafe(export_name = "malloc_conf")]
pub static MALLOC_CONF: &[u8; 60] =
    b"background_thread:true,dirty_decay_ms:1000,muzzy_decay_ms:0\0";

/// SQLite counts every allocation it makes under one process-wide lock.
/// Reading a row copies each of its values out on the connection's thread,
/// and the request's task frees them on another, so big reads contend for
/// that lock on every column. The server never reads those counts, so
/// they are turned off before the first connection opens.
fn sqlite_without_allocation_counts() {
    // SAFETY: sqlite3_config must not run while any other thread uses
    // SQLite; it runs first thing in `main`, before any thread that could.
    let rc = unsafe { libsqlite3_sys::sqlite3_config(libsqlite3_sys::SQLITE_CONFIG_MEMSTATUS, 0) };
    debug_assert_eq!(rc, libsqlite3_sys::SQLITE_OK);
}

fn main() -> anyhow::Result<()> {
    sqlite_without_allocation_counts();
    let config = Config::parse();
    // google-cloud-auth reads GCE_METADATA_HOST itself, ahead of the
    // endpoint it is given: make the variable say what the setting says,
    // so a --gce-metadata-host flag is the host tokens come from too.
    // SAFETY: no other thread exists yet to read the environment.
    unsafe { std::env::set_var("GCE_METADATA_HOST", &config.bigquery.gce_metadata_host) };
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(run(config))
}

async fn run(config: Config) -> anyhow::Result<()> {
    telemetry::init(config.server.log_format);
    match &config.command {
        Some(Command::Token(args)) => {
            let keys = TokenKeys::from_secret(&auth::load_or_create_secret(&config)?.value)
                .with_max_lifetime(config.auth.max_token_lifetime);
            println!("{}", keys.mint_for(args)?);
            Ok(())
        }
        None | Some(Command::Serve) => serve(config).await,
    }
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let app = Application::build(&config).await?;
    let host = match config.server.listen_addr.ip() {
        ip if ip.is_unspecified() => "127.0.0.1".to_owned(),
        ip => ip.to_string(),
    };
    let base = format!("http://{host}:{}", app.port());
    tracing::info!(url = %base, "okr-pulse is listening");
    if app.first_run() {
        let admin = TokenArgs {
            org: config.server.default_org.clone(),
            email: format!("admin@{}.local", config.server.default_org),
            name: Some("Admin".to_owned()),
            sub: Some("admin".to_owned()),
            role: RoleArg::Admin,
            ttl: std::time::Duration::from_secs(30 * 24 * 3600),
        };
        let token = app.keys().mint_for(&admin)?;
        println!(
            "\nokr-pulse is ready.\n  Dashboard: {base}/#token={token}\n  GraphiQL:  {base}/graphql\n  Admin token for org '{}' (valid 30 days), as a request header:\n  {{\"Authorization\": \"Bearer {token}\"}}\n",
            config.server.default_org
        );
    } else {
        println!(
            "\nokr-pulse is ready.\n  Dashboard: {base}/\n  GraphiQL:  {base}/graphql\n  Tokens: `okr-pulse token --org ORG --email EMAIL --role admin` (signed with AUTH_JWT_SECRET)\n"
        );
    }
    app.run_until_stopped(shutdown_signal()).await
}

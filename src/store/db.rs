//! Connecting to SQLite or PostgreSQL and applying migrations.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use anyhow::Context as _;
use migration::{Migrator, MigratorTrait};
use sea_orm::{ConnectOptions, Database, DatabaseConnection};

/// Counts SQL statements sent to the database, and which of them write;
/// tests use it to prove batching and `/metrics` reports it.
#[derive(Clone, Default, Debug)]
pub struct StatementCounter(Arc<Counts>);

#[derive(Default, Debug)]
struct Counts {
    statements: AtomicU64,
    writes: AtomicU64,
}

impl StatementCounter {
    /// Statements executed since start.
    pub fn get(&self) -> u64 {
        self.0.statements.load(Ordering::Relaxed)
    }

    /// Statements that changed rows (`INSERT`, `UPDATE`, `DELETE`) since start.
    pub fn writes(&self) -> u64 {
        self.0.writes.load(Ordering::Relaxed)
    }

    /// Counts every statement `db` runs.
    fn watch(&self, db: &mut DatabaseConnection) {
        let counts = self.0.clone();
        db.set_metric_callback(move |info| {
            counts.statements.fetch_add(1, Ordering::Relaxed);
            if is_write(&info.statement.sql) {
                counts.writes.fetch_add(1, Ordering::Relaxed);
            }
        });
    }
}

/// Whether a statement changes rows.
fn is_write(sql: &str) -> bool {
    let verb = sql.split_whitespace().next().unwrap_or_default();
    ["INSERT", "UPDATE", "DELETE"]
        .iter()
        .any(|w| verb.eq_ignore_ascii_case(w))
}

/// The server's database pools. Writes go to `write`; reads that need not
/// see their own transaction go to `read`. On PostgreSQL both are the same
/// pool; on a SQLite file `read` is a pool of read-only connections beside
/// the one writer, which WAL mode lets read while the writer writes.
#[derive(Clone, Debug)]
pub struct Pools {
    pub write: DatabaseConnection,
    pub read: DatabaseConnection,
    pub statements: StatementCounter,
}

/// How long a request waits for a database connection before failing with
/// `INTERNAL`, instead of piling up behind an outage.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

/// The file a SQLite URL names, if it names one.
fn sqlite_file(url: &str) -> Option<std::path::PathBuf> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or_default();
    (!path.is_empty() && !path.starts_with(":memory:")).then(|| path.into())
}

/// Creates a SQLite database file readable by its owner only (SQLite gives
/// its journal files the same mode), unless it exists.
fn create_private_file(path: &std::path::Path) -> anyhow::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    match options.open(path) {
        Ok(_) => Ok(()),
        Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(err) => Err(err).with_context(|| format!("creating {}", path.display())),
    }
}

/// Opens the pools for `url` and applies pending migrations.
///
/// SQLite allows one writer at a time, and a transaction that reads before
/// writing can fail outright when another connection commits in between.
/// One writing connection, in WAL mode, serializes writes instead, and up
/// to `max_connections` read-only connections read beside it; PostgreSQL
/// gets one pool of `max_connections` for both.
pub async fn connect(url: &str, max_connections: u32) -> anyhow::Result<Pools> {
    let statements = StatementCounter::default();
    let mut options = base_options(url);
    let file = sqlite_file(url);
    if is_sqlite(url) {
        if let Some(file) = &file {
            create_private_file(file)?;
        }
        options
            .max_connections(1)
            .min_connections(1)
            .map_sqlx_sqlite_opts(|o| {
                o.journal_mode(sea_orm::sqlx::sqlite::SqliteJournalMode::Wal)
                    .busy_timeout(Duration::from_secs(10))
                    .foreign_keys(true)
            });
    } else {
        options.max_connections(max_connections.max(1));
    }
    let mut write = open(options, url).await?;
    statements.watch(&mut write);
    Migrator::up(&write, None)
        .await
        .context("applying database migrations")?;
    let read = match file {
        // Readers open after the writer has created the file, switched it
        // to WAL and migrated it; they never write.
        Some(_) => {
            let mut options = base_options(url);
            options
                .max_connections(max_connections.max(1))
                .min_connections(1)
                .map_sqlx_sqlite_opts(|o| {
                    o.read_only(true)
                        .busy_timeout(Duration::from_secs(10))
                        .foreign_keys(true)
                });
            let mut read = open(options, url).await?;
            statements.watch(&mut read);
            read
        }
        // PostgreSQL, or SQLite in memory, which another connection could not see.
        None => write.clone(),
    };
    Ok(Pools {
        write,
        read,
        statements,
    })
}

/// What every pool shares: no per-statement log lines, and a bounded
/// wait for a connection.
fn base_options(url: &str) -> ConnectOptions {
    let mut options = ConnectOptions::new(url.to_owned());
    options.sqlx_logging(false).acquire_timeout(ACQUIRE_TIMEOUT);
    options
}

async fn open(options: ConnectOptions, url: &str) -> anyhow::Result<DatabaseConnection> {
    Database::connect(options)
        .await
        .with_context(|| format!("connecting to the database at {}", redact(url)))
}

/// Whether the database is reachable and every migration is applied.
pub async fn ready(db: &DatabaseConnection) -> anyhow::Result<()> {
    db.ping().await.context("pinging the database")?;
    let pending = Migrator::get_pending_migrations(db)
        .await
        .context("reading applied migrations")?;
    anyhow::ensure!(
        pending.is_empty(),
        "{} migrations are pending",
        pending.len()
    );
    Ok(())
}

/// Whether a database URL names SQLite.
pub fn is_sqlite(url: &str) -> bool {
    url.starts_with("sqlite:")
}

/// The URL without its password, for log lines.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let credentials = &url[scheme + 3..at];
            match credentials.find(':') {
                Some(colon) => format!(
                    "{}{}:***{}",
                    &url[..scheme + 3],
                    &credentials[..colon],
                    &url[at..]
                ),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_sqlite_file_is_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.db");
        let url = format!("sqlite://{}?mode=rwc", path.display());
        create_private_file(&sqlite_file(&url).unwrap()).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(sqlite_file("sqlite::memory:"), None);
    }

    #[test]
    fn writes_are_told_from_reads() {
        assert!(is_write("INSERT INTO x VALUES (1)"));
        assert!(is_write("  update x SET a = 1"));
        assert!(is_write("DELETE FROM x"));
        assert!(!is_write("SELECT pg_notify($1, $2)"));
        assert!(!is_write("SELECT * FROM updates"));
        assert!(!is_write(""));
    }

    #[test]
    fn passwords_are_hidden_in_logged_urls() {
        assert_eq!(
            redact("postgres://app:s3cret@db:5432/okr"),
            "postgres://app:***@db:5432/okr"
        );
        assert_eq!(redact("postgres://app@db/okr"), "postgres://app@db/okr");
        assert_eq!(redact("sqlite://./data/x.db"), "sqlite://./data/x.db");
    }
}

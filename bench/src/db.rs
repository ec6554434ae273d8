//! Direct access to the server's database, for the hand-written baseline of
//! the tree scenario and the set-up of the sweep. SQLite and PostgreSQL take
//! the same SQL here: parameters are written `$1`, `$2` …, which both accept.

use std::{str::FromStr, time::Duration};

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use sqlx::{
    AssertSqlSafe, FromRow,
    postgres::{PgPoolOptions, PgRow},
    sqlite::{SqliteConnectOptions, SqlitePoolOptions, SqliteRow},
};

/// A value bound to a `$n` parameter.
#[derive(Debug, Clone)]
pub enum Bind {
    Text(String),
    Int(i64),
    Float(f64),
    Time(DateTime<Utc>),
}

/// A pool on the server's database.
#[derive(Clone)]
pub enum Db {
    Sqlite(sqlx::SqlitePool),
    Postgres(sqlx::PgPool),
}

/// Binds every value of `binds` to a query of either database.
macro_rules! bind_all {
    ($query:expr, $binds:expr) => {{
        let mut query = $query;
        for bind in $binds {
            query = match bind {
                Bind::Text(v) => query.bind(v.clone()),
                Bind::Int(v) => query.bind(*v),
                Bind::Float(v) => query.bind(*v),
                Bind::Time(v) => query.bind(*v),
            };
        }
        query
    }};
}

impl Db {
    /// A pool of `connections` on `url` (`sqlite://…` or `postgres://…`).
    /// SQLite is opened read-only when `read_only`, as the baseline only
    /// reads; writers wait up to 30 s for the server's write lock.
    pub async fn connect(url: &str, connections: u32, read_only: bool) -> anyhow::Result<Db> {
        if url.starts_with("sqlite:") {
            let options = SqliteConnectOptions::from_str(url)
                .with_context(|| format!("parsing the SQLite URL {url}"))?
                .read_only(read_only)
                .create_if_missing(false)
                .busy_timeout(Duration::from_secs(30));
            let pool = SqlitePoolOptions::new()
                .max_connections(connections)
                .min_connections(connections)
                .connect_with(options)
                .await
                .with_context(|| format!("opening {url}"))?;
            Ok(Db::Sqlite(pool))
        } else {
            let pool = PgPoolOptions::new()
                .max_connections(connections)
                .min_connections(connections)
                .connect(url)
                .await
                .context("connecting to the server's PostgreSQL database")?;
            Ok(Db::Postgres(pool))
        }
    }

    /// Every row of `sql` as `T` (a tuple of column types).
    pub async fn fetch_all<T>(&self, sql: &str, binds: &[Bind]) -> anyhow::Result<Vec<T>>
    where
        T: for<'r> FromRow<'r, SqliteRow> + for<'r> FromRow<'r, PgRow> + Send + Unpin,
    {
        // The SQL texts are the benchmark's own; values always go through binds.
        let text = AssertSqlSafe(sql.to_owned());
        let rows = match self {
            Db::Sqlite(pool) => {
                bind_all!(sqlx::query_as::<_, T>(text), binds)
                    .fetch_all(pool)
                    .await
            }
            Db::Postgres(pool) => {
                bind_all!(sqlx::query_as::<_, T>(text), binds)
                    .fetch_all(pool)
                    .await
            }
        };
        rows.with_context(|| format!("running {}", first_line(sql)))
    }

    /// The one row of `sql`.
    pub async fn fetch_one<T>(&self, sql: &str, binds: &[Bind]) -> anyhow::Result<T>
    where
        T: for<'r> FromRow<'r, SqliteRow> + for<'r> FromRow<'r, PgRow> + Send + Unpin,
    {
        self.fetch_all(sql, binds)
            .await?
            .into_iter()
            .next()
            .with_context(|| format!("no row from {}", first_line(sql)))
    }

    /// Runs a statement and returns the number of rows it touched.
    pub async fn execute(&self, sql: &str, binds: &[Bind]) -> anyhow::Result<u64> {
        let text = AssertSqlSafe(sql.to_owned());
        let affected = match self {
            Db::Sqlite(pool) => bind_all!(sqlx::query(text), binds)
                .execute(pool)
                .await
                .map(|r| r.rows_affected()),
            Db::Postgres(pool) => bind_all!(sqlx::query(text), binds)
                .execute(pool)
                .await
                .map(|r| r.rows_affected()),
        };
        affected.with_context(|| format!("running {}", first_line(sql)))
    }

    /// The column names of `table`, in order.
    pub async fn columns(&self, table: &str) -> anyhow::Result<Vec<String>> {
        let names: Vec<(String,)> = match self {
            Db::Sqlite(_) => {
                self.fetch_all(
                    "SELECT name FROM pragma_table_info($1) ORDER BY cid",
                    &[Bind::Text(table.to_owned())],
                )
                .await?
            }
            Db::Postgres(_) => {
                self.fetch_all(
                    "SELECT column_name::text FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = $1 ORDER BY ordinal_position",
                    &[Bind::Text(table.to_owned())],
                )
                .await?
            }
        };
        anyhow::ensure!(!names.is_empty(), "the table {table} has no columns");
        Ok(names.into_iter().map(|(n,)| n).collect())
    }

    pub async fn close(&self) {
        match self {
            Db::Sqlite(pool) => pool.close().await,
            Db::Postgres(pool) => pool.close().await,
        }
    }
}

/// The first line of a statement, for error messages.
fn first_line(sql: &str) -> &str {
    let line = sql.trim_start().lines().next().unwrap_or(sql);
    line.char_indices()
        .nth(120)
        .map_or(line, |(at, _)| &line[..at])
}

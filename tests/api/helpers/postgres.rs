//! A throw-away PostgreSQL database per test, when the suite runs on PostgreSQL.

use sea_orm::{ConnectionTrait, Database};

/// Base URL of the PostgreSQL server used when the suite runs on PostgreSQL.
fn postgres_base() -> String {
    std::env::var("OKR_PULSE_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".to_owned())
}

/// A throw-away PostgreSQL database, dropped when the test ends.
pub struct PostgresDatabase {
    name: String,
}

impl PostgresDatabase {
    pub async fn create() -> (PostgresDatabase, String) {
        let name = format!("okr_test_{}", uuid::Uuid::now_v7().simple());
        let admin = Database::connect(format!("{}/postgres", postgres_base()))
            .await
            .expect("connect to PostgreSQL to create a test database");
        admin
            .execute_unprepared(&format!("CREATE DATABASE {name}"))
            .await
            .expect("create the test database");
        let url = format!("{}/{name}", postgres_base());
        (PostgresDatabase { name }, url)
    }
}

impl Drop for PostgresDatabase {
    fn drop(&mut self) {
        let name = self.name.clone();
        // The test's runtime is shutting down; drop on a runtime of our own.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime for dropping the test database");
            rt.block_on(async move {
                if let Ok(admin) = Database::connect(format!("{}/postgres", postgres_base())).await
                {
                    let _ = admin
                        .execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                        .await;
                }
            });
        })
        .join();
    }
}

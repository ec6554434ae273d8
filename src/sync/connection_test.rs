//! Testing a connection: a dry run in its project, its outcome stored.

use entity::connection;

use crate::{
    error::AppError,
    store::{Principal, connections},
};

use super::{Syncer, target_of};

impl Syncer {
    /// Dry-runs in the connection's project and stores the outcome.
    pub async fn test_connection(
        &self,
        principal: &Principal,
        id: &str,
    ) -> Result<connection::Model, AppError> {
        let conn = connections::require_managed(&self.db, principal, id).await?;
        let (ok, message) = match self
            .warehouse
            .test(&target_of(&conn, &principal.org.slug))
            .await
        {
            Ok(()) => (
                true,
                format!(
                    "The server can run queries in project '{}'.",
                    conn.project_id
                ),
            ),
            Err(err) => (false, err.message()),
        };
        connections::record_test(&self.db, conn, ok, message).await
    }
}

//! BigQuery connections and who may use or manage them.
//!
//! Admins manage every connection of their organization. Members create
//! their own when the organization allows it, manage only those, and use
//! their own plus those shared with everyone or with them. Everyone in the
//! organization may read a connection's name and project (it shows on the
//! data sources that use it).

use std::collections::HashSet;

use entity::{connection, connection_share, data_source, user};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, DbBackend, EntityTrait,
    QueryFilter, QueryOrder, Set, SqlErr, TransactionTrait, sea_query::Condition,
};

use entity::enums::Role;

use crate::{
    domain::inputs::{ConnectionPatch, NewConnection},
    error::AppError,
};

use super::{Principal, new_id, now};

/// Whether the caller may change, share, test or delete the connection.
pub fn can_manage(principal: &Principal, conn: &connection::Model) -> bool {
    conn.org_id == principal.org.id
        && (principal.role == Role::Admin || conn.owner_id == principal.user.id)
}

/// Whether the caller may link data sources through the connection.
pub async fn can_use(
    db: &impl ConnectionTrait,
    principal: &Principal,
    conn: &connection::Model,
) -> Result<bool, AppError> {
    if can_manage(principal, conn) || (conn.org_id == principal.org.id && conn.shared_with_everyone)
    {
        return Ok(true);
    }
    if conn.org_id != principal.org.id {
        return Ok(false);
    }
    Ok(connection_share::Entity::find()
        .filter(connection_share::Column::ConnectionId.eq(&conn.id))
        .filter(connection_share::Column::UserId.eq(&principal.user.id))
        .one(db)
        .await?
        .is_some())
}

/// A connection of the organization.
pub async fn get(
    db: &impl ConnectionTrait,
    org_id: &str,
    id: &str,
) -> Result<Option<connection::Model>, AppError> {
    Ok(connection::Entity::find_by_id(id.to_owned())
        .filter(connection::Column::OrgId.eq(org_id))
        .one(db)
        .await?)
}

async fn require(
    db: &impl ConnectionTrait,
    org_id: &str,
    id: &str,
) -> Result<connection::Model, AppError> {
    get(db, org_id, id)
        .await?
        .ok_or_else(|| AppError::not_found("connection", id))
}

fn refuse_manage(conn: &connection::Model) -> AppError {
    AppError::Forbidden(format!(
        "Only an admin or the owner of connection '{}' may change it.",
        conn.name
    ))
}

/// A connection the caller may manage, or `FORBIDDEN`.
pub async fn require_managed(
    db: &impl ConnectionTrait,
    principal: &Principal,
    id: &str,
) -> Result<connection::Model, AppError> {
    let conn = require(db, &principal.org.id, id).await?;
    if !can_manage(principal, &conn) {
        return Err(refuse_manage(&conn));
    }
    Ok(conn)
}

/// A connection the caller may use, or `FORBIDDEN`.
pub async fn require_usable(
    db: &impl ConnectionTrait,
    principal: &Principal,
    id: &str,
) -> Result<connection::Model, AppError> {
    let conn = require(db, &principal.org.id, id).await?;
    if !can_use(db, principal, &conn).await? {
        return Err(AppError::Forbidden(format!(
            "Connection '{}' is not shared with you; ask its owner or an admin to share it.",
            conn.name
        )));
    }
    Ok(conn)
}

/// The connection of a data source, if the caller may use it: changing,
/// pausing, refreshing or unlinking a data source needs the right to use
/// its connection (admins always have it); reading it does not.
pub async fn require_usable_for(
    db: &impl ConnectionTrait,
    principal: &Principal,
    ds: &data_source::Model,
) -> Result<connection::Model, AppError> {
    let conn = require(db, &principal.org.id, &ds.connection_id).await?;
    if !can_use(db, principal, &conn).await? {
        return Err(AppError::Forbidden(format!(
            "Connection '{}' is not shared with you; only people who may use it can change, pause, refresh or unlink its data sources.",
            conn.name
        )));
    }
    Ok(conn)
}

/// Connections the caller may use or manage, by name.
pub async fn list_for(
    db: &impl ConnectionTrait,
    principal: &Principal,
) -> Result<Vec<connection::Model>, AppError> {
    let mut query =
        connection::Entity::find().filter(connection::Column::OrgId.eq(&principal.org.id));
    if principal.role != Role::Admin {
        let shared: Vec<String> = connection_share::Entity::find()
            .filter(connection_share::Column::UserId.eq(&principal.user.id))
            .all(db)
            .await?
            .into_iter()
            .map(|s| s.connection_id)
            .collect();
        query = query.filter(
            Condition::any()
                .add(connection::Column::OwnerId.eq(&principal.user.id))
                .add(connection::Column::SharedWithEveryone.eq(true))
                .add(connection::Column::Id.is_in(shared)),
        );
    }
    Ok(query.order_by_asc(connection::Column::Name).all(db).await?)
}

/// Connections of the organization with these ids, in one statement.
pub async fn by_ids(
    db: &impl ConnectionTrait,
    org_id: &str,
    ids: &[String],
) -> Result<Vec<connection::Model>, sea_orm::DbErr> {
    connection::Entity::find()
        .filter(connection::Column::OrgId.eq(org_id))
        .filter(connection::Column::Id.is_in(ids.iter().cloned()))
        .all(db)
        .await
}

/// The users a connection is shared with by name.
pub async fn shared_with(
    db: &impl ConnectionTrait,
    connection_id: &str,
) -> Result<Vec<user::Model>, AppError> {
    let ids: Vec<String> = connection_share::Entity::find()
        .filter(connection_share::Column::ConnectionId.eq(connection_id))
        .all(db)
        .await?
        .into_iter()
        .map(|s| s.user_id)
        .collect();
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    Ok(user::Entity::find()
        .filter(user::Column::Id.is_in(ids))
        .order_by_asc(user::Column::Email)
        .all(db)
        .await?)
}

fn name_taken(name: &str) -> AppError {
    AppError::Conflict(format!(
        "A connection named '{name}' already exists in your organization; pick another name."
    ))
}

/// Maps a unique-name violation to `CONFLICT`.
fn unique_name(err: sea_orm::DbErr, name: &str) -> AppError {
    match err.sql_err() {
        Some(SqlErr::UniqueConstraintViolation(_)) => name_taken(name),
        _ => err.into(),
    }
}

/// Creates a connection owned by the caller.
pub async fn create(
    db: &DatabaseConnection,
    principal: &Principal,
    input: NewConnection,
    tenancy: Tenancy<'_>,
) -> Result<connection::Model, AppError> {
    if principal.role != Role::Admin && !principal.org.members_can_create_connections {
        return Err(AppError::Forbidden(
            "Your organization lets only admins create connections; ask an admin to create one and share it with you.".to_owned(),
        ));
    }
    if input.readable_projects.is_some() {
        principal.require_admin("list the other projects a connection may read")?;
    }
    let txn = db.begin().await?;
    match tenancy {
        Tenancy::Unchecked => {}
        Tenancy::PerOrgAccounts(template) => {
            crate::domain::warehouse::org_service_account(template, &principal.org.slug)
                .map_err(AppError::Forbidden)?;
        }
        Tenancy::OneOrg => {
            // Two orgs creating their first connection at once must not both
            // pass: on PostgreSQL they queue on one lock (SQLite has one writer).
            if txn.get_database_backend() == DbBackend::Postgres {
                txn.execute_unprepared("SELECT pg_advisory_xact_lock(7340012)")
                    .await?;
            }
            let elsewhere = connection::Entity::find()
                .filter(connection::Column::OrgId.ne(principal.org.id.as_str()))
                .one(&txn)
                .await?;
            if elsewhere.is_some() {
                return Err(AppError::Forbidden(
                    "This server queries BigQuery as one service account, which already serves another organization; sharing it would let each organization name the other's projects. Ask the operator to set BIGQUERY_ORG_SERVICE_ACCOUNT so that every organization queries as its own account.".to_owned(),
                ));
            }
        }
    }
    let name = input.name.into_inner();
    let at = now();
    let row = connection::ActiveModel {
        id: Set(new_id()),
        org_id: Set(principal.org.id.clone()),
        name: Set(name.clone()),
        project_id: Set(input.project_id.into_inner()),
        location: Set(input.location.map(|l| l.into_inner())),
        owner_id: Set(principal.user.id.clone()),
        shared_with_everyone: Set(false),
        maximum_bytes_billed: Set(input.maximum_bytes_billed.map(|c| c.get())),
        readable_projects: Set(join_projects(input.readable_projects.unwrap_or_default())),
        last_test_ok: Set(None),
        last_test_message: Set(None),
        last_tested_at: Set(None),
        created_at: Set(at),
        updated_at: Set(at),
    };
    let model = row.insert(&txn).await.map_err(|e| unique_name(e, &name))?;
    txn.commit().await?;
    Ok(model)
}

/// Which organizations may hold connections, by how the server reaches BigQuery.
#[derive(Debug, Clone, Copy)]
pub enum Tenancy<'a> {
    /// Each org queries as its own service account (this template): any
    /// org whose slug makes a valid account id.
    PerOrgAccounts(&'a str),
    /// One shared service account: one organization only, the first to
    /// create a connection.
    OneOrg,
    /// An emulator, for one trusted user: no rule.
    Unchecked,
}

/// Project ids as stored: comma-separated, without repeats.
fn join_projects(projects: Vec<crate::domain::warehouse::ProjectId>) -> String {
    let mut ids: Vec<String> = projects.into_iter().map(|p| p.into_inner()).collect();
    ids.sort();
    ids.dedup();
    ids.join(",")
}

/// The other projects a stored connection may read.
pub fn readable_projects(conn: &connection::Model) -> Vec<String> {
    conn.readable_projects
        .split(',')
        .filter(|p| !p.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Changes a connection (admins, or its owner).
pub async fn update(
    db: &DatabaseConnection,
    principal: &Principal,
    id: &str,
    patch: ConnectionPatch,
) -> Result<connection::Model, AppError> {
    let conn = require_managed(db, principal, id).await?;
    let mut name = conn.name.clone();
    let mut active: connection::ActiveModel = conn.into();
    if let Some(n) = patch.name {
        name = n.into_inner();
        active.name = Set(name.clone());
    }
    if let Some(p) = patch.project_id {
        active.project_id = Set(p.into_inner());
        // A new project invalidates the last test.
        active.last_test_ok = Set(None);
        active.last_test_message = Set(None);
        active.last_tested_at = Set(None);
    }
    if let Some(location) = patch.location {
        active.location = Set(location.map(|l| l.into_inner()));
    }
    if let Some(cap) = patch.maximum_bytes_billed {
        active.maximum_bytes_billed = Set(cap.map(|c| c.get()));
    }
    if let Some(projects) = patch.readable_projects {
        principal.require_admin("change the other projects a connection may read")?;
        active.readable_projects = Set(join_projects(projects));
    }
    active.updated_at = Set(now());
    active.update(db).await.map_err(|e| unique_name(e, &name))
}

/// Deletes a connection; `CONFLICT` naming the data sources while any use it.
pub async fn delete(
    db: &DatabaseConnection,
    principal: &Principal,
    id: &str,
) -> Result<(), AppError> {
    let txn = db.begin().await?;
    let conn = require_managed(&txn, principal, id).await?;
    let users = data_source::Entity::find()
        .filter(data_source::Column::ConnectionId.eq(id))
        .all(&txn)
        .await?;
    if !users.is_empty() {
        let names = super::data_sources::describe_targets(&txn, &users).await?;
        return Err(AppError::Conflict(format!(
            "Connection '{}' is used by {} data source(s): {}. Unlink them or move them to another connection first.",
            conn.name,
            users.len(),
            names.join(", ")
        )));
    }
    connection::Entity::delete_by_id(id.to_owned())
        .exec(&txn)
        .await?;
    txn.commit().await?;
    Ok(())
}

/// Sets who may use a connection: `everyone` toggles sharing with the whole
/// organization; `user_ids`, when given, replaces the list of users.
pub async fn share(
    db: &DatabaseConnection,
    principal: &Principal,
    id: &str,
    everyone: Option<bool>,
    user_ids: Option<Vec<String>>,
) -> Result<connection::Model, AppError> {
    let txn = db.begin().await?;
    let conn = require_managed(&txn, principal, id).await?;
    if let Some(ids) = user_ids {
        let wanted: HashSet<String> = ids.into_iter().collect();
        let found: HashSet<String> = super::orgs::users_by_ids(
            &txn,
            &principal.org.id,
            &wanted.iter().cloned().collect::<Vec<_>>(),
        )
        .await?
        .into_iter()
        .map(|u| u.id)
        .collect();
        if let Some(missing) = wanted.difference(&found).next() {
            return Err(AppError::not_found("user", missing));
        }
        connection_share::Entity::delete_many()
            .filter(connection_share::Column::ConnectionId.eq(id))
            .exec(&txn)
            .await?;
        if !found.is_empty() {
            connection_share::Entity::insert_many(found.into_iter().map(|user_id| {
                connection_share::ActiveModel {
                    connection_id: Set(id.to_owned()),
                    user_id: Set(user_id),
                }
            }))
            .exec_without_returning(&txn)
            .await?;
        }
    }
    let mut active: connection::ActiveModel = conn.into();
    if let Some(everyone) = everyone {
        active.shared_with_everyone = Set(everyone);
    }
    active.updated_at = Set(now());
    let updated = active.update(&txn).await?;
    txn.commit().await?;
    Ok(updated)
}

/// Stores the outcome of a connection test.
pub async fn record_test(
    db: &impl ConnectionTrait,
    conn: connection::Model,
    ok: bool,
    message: String,
) -> Result<connection::Model, AppError> {
    let mut active: connection::ActiveModel = conn.into();
    active.last_test_ok = Set(Some(ok));
    active.last_test_message = Set(Some(message));
    active.last_tested_at = Set(Some(now()));
    Ok(active.update(db).await?)
}

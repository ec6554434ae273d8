//! Leases: which replica runs a data source now. A claim writes the
//! replica's name and an expiry on the row; a replica that dies mid-sync
//! leaves a lease that lapses by itself.

use chrono::{DateTime, Utc};
use entity::{data_source, enums::DataSourceState};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter};

use crate::error::AppError;

/// Claims up to `limit` due data sources for `owner` until `lease_until`:
/// due (`next_sync_at <= now`), not paused, and not leased by a live lease.
/// On PostgreSQL the candidates are locked with `FOR UPDATE SKIP LOCKED`, so
/// replicas claiming at the same moment never get the same row.
pub async fn claim_due(
    db: &impl ConnectionTrait,
    owner: &str,
    now: DateTime<Utc>,
    lease_until: DateTime<Utc>,
    limit: u64,
) -> Result<Vec<data_source::Model>, AppError> {
    use data_source::Column as C;
    use sea_orm::sea_query::{LockBehavior, LockType, Query};
    if limit == 0 {
        return Ok(Vec::new());
    }
    let mut candidates = Query::select();
    candidates
        .column(C::Id)
        .from(data_source::Entity)
        .cond_where(
            sea_orm::Condition::all()
                .add(C::NextSyncAt.lte(now))
                .add(C::State.ne(DataSourceState::Paused))
                .add(
                    sea_orm::Condition::any()
                        .add(C::LeaseExpiresAt.is_null())
                        .add(C::LeaseExpiresAt.lt(now)),
                ),
        )
        .order_by(C::NextSyncAt, sea_orm::Order::Asc)
        .limit(limit);
    if db.get_database_backend() == sea_orm::DatabaseBackend::Postgres {
        candidates.lock_with_behavior(LockType::Update, LockBehavior::SkipLocked);
    }
    let update = Query::update()
        .table(data_source::Entity)
        .value(C::LeaseOwner, owner)
        .value(C::LeaseExpiresAt, lease_until)
        .and_where(C::Id.in_subquery(candidates.to_owned()))
        .returning_all()
        .to_owned();
    let builder = db.get_database_backend();
    let rows = db.query_all_raw(builder.build(&update)).await?;
    let mut claimed = Vec::with_capacity(rows.len());
    for row in rows {
        use sea_orm::FromQueryResult;
        claimed.push(data_source::Model::from_query_result(&row, "")?);
    }
    Ok(claimed)
}

/// Claims one data source whatever its due time, unless a live lease holds it.
pub async fn claim_one(
    db: &impl ConnectionTrait,
    id: &str,
    owner: &str,
    now: DateTime<Utc>,
    lease_until: DateTime<Utc>,
) -> Result<bool, AppError> {
    use data_source::Column as C;
    let result = data_source::Entity::update_many()
        .col_expr(C::LeaseOwner, owner.into())
        .col_expr(C::LeaseExpiresAt, lease_until.into())
        .filter(C::Id.eq(id))
        .filter(
            sea_orm::Condition::any()
                .add(C::LeaseExpiresAt.is_null())
                .add(C::LeaseExpiresAt.lt(now)),
        )
        .exec(db)
        .await?;
    Ok(result.rows_affected == 1)
}

/// Gives a lease back without recording a run (the run was not made).
pub async fn release(db: &impl ConnectionTrait, id: &str, owner: &str) -> Result<(), AppError> {
    use data_source::Column as C;
    data_source::Entity::update_many()
        .col_expr(C::LeaseOwner, Option::<String>::None.into())
        .col_expr(C::LeaseExpiresAt, Option::<DateTime<Utc>>::None.into())
        .filter(C::Id.eq(id))
        .filter(C::LeaseOwner.eq(owner))
        .exec(db)
        .await?;
    Ok(())
}

//! Reading history: points oldest first, and the newest point of many
//! nodes at once.

use chrono::{DateTime, Utc};
use entity::progress_point;
use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    sea_query::Query,
};

use crate::{
    domain::{Node, node::split},
    error::AppError,
};

/// History points of one node oldest first, optionally within `[from, to]`,
/// at most `limit` of them.
pub async fn history(
    db: &impl ConnectionTrait,
    org_id: &str,
    of: &Node,
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
    limit: u64,
) -> Result<Vec<progress_point::Model>, AppError> {
    use progress_point::Column as C;
    let mut query = progress_point::Entity::find().filter(C::OrgId.eq(org_id));
    query = match of {
        Node::Objective(id) => query.filter(C::ObjectiveId.eq(id.as_str())),
        Node::KeyResult(id) => query.filter(C::KeyResultId.eq(id.as_str())),
    };
    if let Some(from) = from {
        query = query.filter(C::At.gte(from));
    }
    if let Some(to) = to {
        query = query.filter(C::At.lte(to));
    }
    Ok(query
        .order_by_asc(C::At)
        .order_by_asc(C::Id)
        .limit(limit)
        .all(db)
        .await?)
}

/// The newest point of each of these nodes, in at most two statements
/// whatever their number.
pub async fn latest_points(
    db: &impl ConnectionTrait,
    org_id: &str,
    nodes: &[Node],
) -> Result<Vec<progress_point::Model>, sea_orm::DbErr> {
    use progress_point::Column as C;
    let (objective_ids, key_result_ids) = split(nodes);
    let mut points = Vec::new();
    for (column, ids) in [
        (C::ObjectiveId, objective_ids),
        (C::KeyResultId, key_result_ids),
    ] {
        if ids.is_empty() {
            continue;
        }
        let newest = Query::select()
            .expr(C::Id.max())
            .from(progress_point::Entity)
            .and_where(C::OrgId.eq(org_id))
            .and_where(column.is_in(ids))
            .group_by_col(column)
            .to_owned();
        points.extend(
            progress_point::Entity::find()
                .filter(C::Id.in_subquery(newest))
                .all(db)
                .await?,
        );
    }
    Ok(points)
}

/// The point written just before `point_id` for the same node, if any.
pub async fn previous_point(
    db: &impl ConnectionTrait,
    node: &Node,
    point_id: i64,
) -> Result<Option<progress_point::Model>, sea_orm::DbErr> {
    use progress_point::Column as C;
    let query = match node {
        Node::Objective(id) => {
            progress_point::Entity::find().filter(C::ObjectiveId.eq(id.as_str()))
        }
        Node::KeyResult(id) => {
            progress_point::Entity::find().filter(C::KeyResultId.eq(id.as_str()))
        }
    };
    query
        .filter(C::Id.lt(point_id))
        .order_by_desc(C::Id)
        .limit(1)
        .one(db)
        .await
}

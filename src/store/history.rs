//! Reading history: the points of many nodes at once, oldest first, and
//! the newest point of many nodes at once.

use chrono::{DateTime, Utc};
use entity::progress_point;
use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, FromQueryResult, Order, QueryFilter, QueryOrder,
    QuerySelect,
    sea_query::{Alias, Asterisk, Expr, ExprTrait, Query, WindowStatement},
};

use crate::domain::{Node, node::split};

/// Which points a `history` list asks for: those within `[from, to]`, at
/// most `limit` of them, oldest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Window {
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    pub limit: u64,
}

impl Window {
    /// Whether the window covers all time.
    pub fn is_unbounded(&self) -> bool {
        self.from.is_none() && self.to.is_none()
    }

    /// Whether `len` points read in this window are all the points in it,
    /// rather than the first `limit` of more.
    pub fn holds_all(&self, len: usize) -> bool {
        (len as u64) < self.limit
    }
}

/// The history of many nodes in one window: a constant number of
/// statements per kind of node whatever their number, each node's points
/// oldest first and at most `window.limit` of them.
///
/// Most nodes hold fewer points than the limit, and for them a plain read
/// in index order is the cheapest there is. A first statement, answered
/// from the `(node, at)` index alone, finds the nodes with more; only those
/// are numbered by the database, so that a node with a long history costs
/// no more than its limit.
pub async fn histories(
    db: &impl ConnectionTrait,
    org_id: &str,
    nodes: &[Node],
    window: Window,
) -> Result<Vec<progress_point::Model>, sea_orm::DbErr> {
    let mut points = Vec::new();
    for (column, ids) in by_column(nodes) {
        if !ids.is_empty() {
            points.extend(of_kind(db, org_id, column, Some(ids), window).await?);
        }
    }
    Ok(ordered(points))
}

/// The history of every node of the organization with points under
/// `column` (every objective, or every key result) in one window, as
/// [`histories`] gives it for listed nodes. A whole tree is read this way,
/// without sending its thousands of ids.
pub async fn histories_of_org(
    db: &impl ConnectionTrait,
    org_id: &str,
    column: progress_point::Column,
    window: Window,
) -> Result<Vec<progress_point::Model>, sea_orm::DbErr> {
    Ok(ordered(of_kind(db, org_id, column, None, window).await?))
}

/// Objective ids under the objective column, key result ids under the
/// key result column.
fn by_column(nodes: &[Node]) -> [(progress_point::Column, Vec<String>); 2] {
    let (objective_ids, key_result_ids) = split(nodes);
    [
        (progress_point::Column::ObjectiveId, objective_ids),
        (progress_point::Column::KeyResultId, key_result_ids),
    ]
}

/// The points of the nodes `ids` lists (every node of the organization
/// with points under `column` when `None`), at most `window.limit` each.
async fn of_kind(
    db: &impl ConnectionTrait,
    org_id: &str,
    column: progress_point::Column,
    ids: Option<Vec<String>>,
    window: Window,
) -> Result<Vec<progress_point::Model>, sea_orm::DbErr> {
    use progress_point::Column as C;
    let long = longer_than_limit(db, org_id, column, ids.as_deref(), window).await?;
    // The nodes within their limit, read plainly.
    let plain = match ids {
        Some(ids) => {
            let short: Vec<String> = ids.into_iter().filter(|id| !long.contains(id)).collect();
            (!short.is_empty()).then(|| within(column, Some(short), window))
        }
        None => {
            let mut query = within(column, None, window);
            if !long.is_empty() {
                query.and_where(column.is_not_in(long.iter().cloned()));
            }
            Some(query)
        }
    };
    let mut points = Vec::new();
    if let Some(mut plain) = plain {
        let query = plain
            .column(Asterisk)
            .from(progress_point::Entity)
            .and_where(C::OrgId.eq(org_id))
            .to_owned();
        points = read(db, &query).await?;
    }
    if !long.is_empty() {
        points.extend(first_points(db, org_id, column, long.into_iter().collect(), window).await?);
    }
    Ok(points)
}

/// Points in node order, each node's oldest first. Ordered here rather
/// than by the database, which would sort every column of every point (on
/// disk, for a big tree on PostgreSQL).
fn ordered(mut points: Vec<progress_point::Model>) -> Vec<progress_point::Model> {
    points.sort_unstable_by(|a, b| {
        (&a.objective_id, &a.key_result_id, a.at, a.id).cmp(&(
            &b.objective_id,
            &b.key_result_id,
            b.at,
            b.id,
        ))
    });
    points
}

/// A query's conditions for the points of these nodes (of every node with
/// points under `column` when `None`) within the window.
fn within(
    column: progress_point::Column,
    ids: Option<Vec<String>>,
    window: Window,
) -> sea_orm::sea_query::SelectStatement {
    use progress_point::Column as C;
    let mut query = Query::select();
    match ids {
        Some(ids) => query.and_where(column.is_in(ids)),
        None => query.and_where(column.is_not_null()),
    };
    if let Some(from) = window.from {
        query.and_where(C::At.gte(from));
    }
    if let Some(to) = window.to {
        query.and_where(C::At.lte(to));
    }
    query
}

/// The nodes with more points in the window than its limit. For listed
/// nodes the count is answered from the `(node, at)` index alone: node ids
/// are unique across organizations and the caller's come from its own, so
/// it needs no organization condition (which the index lacks).
async fn longer_than_limit(
    db: &impl ConnectionTrait,
    org_id: &str,
    column: progress_point::Column,
    ids: Option<&[String]>,
    window: Window,
) -> Result<std::collections::HashSet<String>, sea_orm::DbErr> {
    let limit = i64::try_from(window.limit).unwrap_or(i64::MAX);
    let mut query = within(column, ids.map(<[String]>::to_vec), window);
    if ids.is_none() {
        query.and_where(progress_point::Column::OrgId.eq(org_id));
    }
    let query = query
        .column(column)
        .from(progress_point::Entity)
        .group_by_col(column)
        .and_having(Expr::col(column).count().gt(limit))
        .to_owned();
    let rows = db.query_all(&query).await?;
    rows.iter()
        .map(|row| row.try_get_by_index::<String>(0))
        .collect()
}

/// The first `window.limit` points of each of these nodes, numbered per
/// node by the database.
async fn first_points(
    db: &impl ConnectionTrait,
    org_id: &str,
    column: progress_point::Column,
    ids: Vec<String>,
    window: Window,
) -> Result<Vec<progress_point::Model>, sea_orm::DbErr> {
    use progress_point::Column as C;
    let rank = Alias::new("rank_in_node");
    let ranked = within(column, Some(ids), window)
        .column(Asterisk)
        .expr_window_as(
            Expr::cust("ROW_NUMBER()"),
            WindowStatement::partition_by(column)
                .order_by(C::At, Order::Asc)
                .order_by(C::Id, Order::Asc)
                .to_owned(),
            rank.clone(),
        )
        .from(progress_point::Entity)
        .and_where(C::OrgId.eq(org_id))
        .to_owned();
    let query = Query::select()
        .column(Asterisk)
        .from_subquery(ranked, Alias::new("ranked"))
        .and_where(Expr::col(rank).lte(i64::try_from(window.limit).unwrap_or(i64::MAX)))
        .to_owned();
    read(db, &query).await
}

/// Runs a query for whole points (extra columns are ignored).
async fn read(
    db: &impl ConnectionTrait,
    query: &sea_orm::sea_query::SelectStatement,
) -> Result<Vec<progress_point::Model>, sea_orm::DbErr> {
    let statement = db.get_database_backend().build(query);
    progress_point::Model::find_by_statement(statement)
        .all(db)
        .await
}

/// The newest point of each of these nodes, in at most two statements
/// whatever their number.
pub async fn latest_points(
    db: &impl ConnectionTrait,
    org_id: &str,
    nodes: &[Node],
) -> Result<Vec<progress_point::Model>, sea_orm::DbErr> {
    use progress_point::Column as C;
    let mut points = Vec::new();
    for (column, ids) in by_column(nodes) {
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

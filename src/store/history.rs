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

/// The history of many nodes in one window: one statement per kind of node
/// whatever their number, each node's points oldest first and at most
/// `window.limit` of them (numbered per node by the database, so a node
/// with a long history costs no more than its limit).
pub async fn histories(
    db: &impl ConnectionTrait,
    org_id: &str,
    nodes: &[Node],
    window: Window,
) -> Result<Vec<progress_point::Model>, sea_orm::DbErr> {
    use progress_point::Column as C;
    let (objective_ids, key_result_ids) = split(nodes);
    let rank = Alias::new("rank_in_node");
    let mut points = Vec::new();
    for (column, ids) in [
        (C::ObjectiveId, objective_ids),
        (C::KeyResultId, key_result_ids),
    ] {
        if ids.is_empty() {
            continue;
        }
        let mut ranked = Query::select();
        ranked
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
            .and_where(column.is_in(ids));
        if let Some(from) = window.from {
            ranked.and_where(C::At.gte(from));
        }
        if let Some(to) = window.to {
            ranked.and_where(C::At.lte(to));
        }
        let query = Query::select()
            .column(Asterisk)
            .from_subquery(ranked, Alias::new("ranked"))
            .and_where(Expr::col(rank.clone()).lte(i64::try_from(window.limit).unwrap_or(i64::MAX)))
            .order_by(C::At, Order::Asc)
            .order_by(C::Id, Order::Asc)
            .to_owned();
        let statement = db.get_database_backend().build(&query);
        points.extend(
            progress_point::Model::find_by_statement(statement)
                .all(db)
                .await?,
        );
    }
    Ok(points)
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

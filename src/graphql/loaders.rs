//! DataLoaders: a tree of any size costs a fixed number of statements.
//!
//! Each loader is per request and bound to the caller's organization, so
//! batching never mixes tenants and nothing is cached across requests.

use std::{collections::HashMap, sync::Arc};

use chrono::{DateTime, Utc};

use async_graphql::dataloader::{DataLoader, HashMapCache, Loader};
use entity::{connection, data_source, key_result, objective, progress_point, user};
use sea_orm::{DatabaseConnection, DbBackend, DbErr, sqlx};

use crate::{
    domain::Node,
    error::AppError,
    store::{
        connections, data_sources,
        history::{self, Window},
        key_results, objectives, orgs,
    },
};

use super::types::{HISTORY_DEFAULT_LIMIT, ProgressPoint, history_window};

/// Keys are capped so one `IN (…)` list stays well inside every database's
/// parameter limit (32,766 on SQLite, 65,535 on PostgreSQL), while a tree
/// of 10,000 key results still loads each field in one statement.
const MAX_BATCH: usize = 10_000;

/// Loaders' caches: keys are the server's own ids, hashed with a fast
/// randomly seeded hash.
type Cache = HashMapCache<foldhash::fast::RandomState>;

/// All loaders of one request.
///
/// They cache for the life of the request, so a value primed for a whole
/// list is not loaded again by each item.
pub struct Loaders {
    scope: Scope,
    pub users: DataLoader<UserLoader, Cache>,
    pub objectives: DataLoader<ObjectiveLoader, Cache>,
    pub children: DataLoader<ChildrenLoader, Cache>,
    pub key_results: DataLoader<KeyResultsLoader, Cache>,
    pub latest_points: DataLoader<LatestPointLoader, Cache>,
    pub histories: DataLoader<HistoryLoader, Cache>,
    pub data_sources: DataLoader<DataSourceLoader, Cache>,
    pub connections: DataLoader<ConnectionLoader, Cache>,
}

impl Loaders {
    /// Loaders for one organization.
    pub fn new(db: DatabaseConnection, org_id: String) -> Self {
        let scope = Scope {
            db,
            org_id: Arc::from(org_id),
        };
        fn make<T>(loader: T) -> DataLoader<T, Cache> {
            DataLoader::with_cache(loader, tokio::spawn, Cache::new()).max_batch_size(MAX_BATCH)
        }
        Loaders {
            scope: scope.clone(),
            users: make(UserLoader(scope.clone())),
            objectives: make(ObjectiveLoader(scope.clone())),
            children: make(ChildrenLoader(scope.clone())),
            key_results: make(KeyResultsLoader(scope.clone())),
            latest_points: make(LatestPointLoader(scope.clone())),
            histories: make(HistoryLoader(scope.clone())),
            data_sources: make(DataSourceLoader(scope.clone())),
            connections: make(ConnectionLoader(scope.clone())),
        }
    }
}

impl Loaders {
    /// Loads, in one batch per field, what a query selects below a list of
    /// objectives, so the statement count does not depend on how the list's
    /// resolvers happen to interleave with the loaders' batching delay.
    ///
    /// `whole` says that `rows` are every objective of the organization:
    /// then what lies below them is read for the organization as a whole,
    /// without sending their ids (tens of thousands for a big tree).
    pub async fn prime_objectives(
        &self,
        selection: &async_graphql::Lookahead<'_>,
        rows: &[objective::Model],
        whole: bool,
    ) -> Result<(), LoadError> {
        if rows.is_empty() {
            return Ok(());
        }
        let ids: Vec<String> = rows.iter().map(|o| o.id.clone()).collect();
        self.objectives
            .feed_many(rows.iter().map(|o| (o.id.clone(), o.clone())))
            .await;
        let own = self.prime_objective_fields(selection, rows, &ids, whole);
        let below = self.prime_key_results(selection, &ids, whole);
        // Each branch runs one statement after another. They run side by
        // side only while the pool has connections to spare: under load a
        // request holds one connection at a time, so concurrent trees queue
        // fairly for the pool instead of each waiting for a second one.
        if spare_connections(&self.scope.db) >= 2 {
            futures::try_join!(own, below)?;
        } else {
            own.await?;
            below.await?;
        }
        Ok(())
    }

    /// Loads what the query selects on these objectives themselves.
    async fn prime_objective_fields(
        &self,
        selection: &async_graphql::Lookahead<'_>,
        rows: &[objective::Model],
        ids: &[String],
        whole: bool,
    ) -> Result<(), LoadError> {
        let nodes = || ids.iter().cloned().map(Node::Objective);
        if selection.field("owner").exists() {
            let owners: std::collections::HashSet<String> =
                rows.iter().map(|o| o.owner_id.clone()).collect();
            self.users.load_many(owners).await?;
        }
        if selection.field("children").exists() {
            if whole {
                // Every child is among the rows, which are oldest first.
                let mut children: HashMap<String, Vec<objective::Model>> =
                    ids.iter().map(|id| (id.clone(), Vec::new())).collect();
                for row in rows {
                    if let Some(list) = row.parent_id.as_ref().and_then(|p| children.get_mut(p)) {
                        list.push(row.clone());
                    }
                }
                self.children.feed_many(shared(children)).await;
            } else {
                self.children.load_many(ids.iter().cloned()).await?;
            }
        }
        if selection.field("dataSource").exists() {
            self.data_sources.load_many(nodes()).await?;
        }
        let whole = whole.then_some(progress_point::Column::ObjectiveId);
        let histories = self.prime_histories(selection, nodes(), whole).await?;
        if selection.field("latestPoint").exists() {
            self.prime_latest_points(nodes(), &histories).await?;
        }
        Ok(())
    }

    /// Loads the key results of these objectives and what the query
    /// selects below them.
    async fn prime_key_results(
        &self,
        selection: &async_graphql::Lookahead<'_>,
        objective_ids: &[String],
        whole: bool,
    ) -> Result<(), LoadError> {
        let key_results = selection.field("keyResults");
        if !key_results.exists() {
            return Ok(());
        }
        let krs = if whole {
            let rows = key_results::of_org(&self.scope.db, &self.scope.org_id).await?;
            let mut map: HashMap<String, Vec<key_result::Model>> = objective_ids
                .iter()
                .map(|id| (id.clone(), Vec::new()))
                .collect();
            for kr in rows {
                if let Some(list) = map.get_mut(&kr.objective_id) {
                    list.push(kr);
                }
            }
            let krs = shared(map);
            self.key_results.feed_many(krs.clone()).await;
            krs
        } else {
            self.key_results
                .load_many(objective_ids.iter().cloned())
                .await?
        };
        let nodes = || {
            krs.values()
                .flat_map(|list| list.iter())
                .map(|kr| Node::KeyResult(kr.id.clone()))
        };
        if key_results.field("dataSource").exists() {
            self.data_sources.load_many(nodes()).await?;
        }
        let whole = whole.then_some(progress_point::Column::KeyResultId);
        let histories = self.prime_histories(&key_results, nodes(), whole).await?;
        if key_results.field("latestPoint").exists() {
            self.prime_latest_points(nodes(), &histories).await?;
        }
        Ok(())
    }

    /// Loads the histories the `history` fields below `selection` ask for
    /// (each alias its own window), in one batch per window. A field whose
    /// arguments do not parse is left to its resolver, which reports why.
    ///
    /// `whole_org` names the column (objective or key result) when `nodes`
    /// are every node of that kind in the organization, whose histories are
    /// then read without listing them.
    async fn prime_histories(
        &self,
        selection: &async_graphql::Lookahead<'_>,
        nodes: impl Iterator<Item = Node> + Clone,
        whole_org: Option<progress_point::Column>,
    ) -> Result<Histories, LoadError> {
        let mut loaded = Histories::new();
        for field in selection.field("history").selection_fields() {
            let Some(window) = window_of(&field) else {
                continue;
            };
            let lists = match whole_org {
                Some(column) => {
                    let points = history::histories_of_org(
                        &self.scope.db,
                        &self.scope.org_id,
                        column,
                        window,
                    )
                    .await?;
                    let lists = by_node(points, nodes.clone(), window);
                    self.histories.feed_many(lists.clone()).await;
                    lists
                }
                None => {
                    self.histories
                        .load_many(nodes.clone().map(|node| (node, window)))
                        .await?
                }
            };
            loaded.extend(lists);
        }
        Ok(loaded)
    }

    /// Loads the newest point of these nodes. A node whose whole history
    /// was just read (a window without bounds that came back shorter than
    /// its limit) has it among those points, so only the others are read.
    async fn prime_latest_points(
        &self,
        nodes: impl Iterator<Item = Node>,
        histories: &Histories,
    ) -> Result<(), LoadError> {
        let whole: HashMap<&Node, &Arc<[progress_point::Model]>> = histories
            .iter()
            .filter(|((_, window), points)| window.is_unbounded() && window.holds_all(points.len()))
            .map(|((node, _), points)| (node, points))
            .collect();
        let (mut known, mut unknown) = (Vec::new(), Vec::new());
        for node in nodes {
            match whole.get(&node) {
                Some(points) => {
                    let latest = ProgressPoint::newest_of(points);
                    known.push((node, latest));
                }
                None => unknown.push(node),
            }
        }
        self.latest_points.feed_many(known).await;
        if !unknown.is_empty() {
            self.latest_points.load_many(unknown).await?;
        }
        Ok(())
    }
}

/// Connections the pool could hand out at once without waiting: idle
/// ones, and those it may still open.
fn spare_connections(db: &DatabaseConnection) -> usize {
    fn spare<DB: sqlx::Database>(pool: &sqlx::Pool<DB>) -> usize {
        let unopened = pool
            .options()
            .get_max_connections()
            .saturating_sub(pool.size());
        pool.num_idle() + unopened as usize
    }
    match db.get_database_backend() {
        DbBackend::Postgres => spare(db.get_postgres_connection_pool()),
        DbBackend::Sqlite => spare(db.get_sqlite_connection_pool()),
        _ => 0,
    }
}

/// Histories read while priming, by node and window.
type Histories = HashMap<(Node, Window), Arc<[progress_point::Model]>>;

/// The window of one selected `history` field, read from its arguments
/// (variables substituted) the way its resolver reads them.
fn window_of(field: &async_graphql::SelectionField<'_>) -> Option<Window> {
    use async_graphql::{ScalarType, Value};
    let (mut from, mut to, mut limit) = (None, None, HISTORY_DEFAULT_LIMIT);
    for (name, value) in field.arguments().ok()? {
        match (name.as_str(), value) {
            (_, Value::Null) => {}
            ("from", value) => from = Some(<DateTime<Utc> as ScalarType>::parse(value).ok()?),
            ("to", value) => to = Some(<DateTime<Utc> as ScalarType>::parse(value).ok()?),
            ("limit", Value::Number(n)) => limit = i32::try_from(n.as_i64()?).ok()?,
            _ => return None,
        }
    }
    history_window(from, to, limit).ok()
}

/// A loader's error: cloneable, turned into `INTERNAL` at the resolver.
#[derive(Clone, Debug)]
pub struct LoadError(Arc<DbErr>);

impl From<DbErr> for LoadError {
    fn from(err: DbErr) -> Self {
        LoadError(Arc::new(err))
    }
}

impl From<LoadError> for AppError {
    fn from(err: LoadError) -> Self {
        AppError::internal(anyhow::anyhow!("batch load failed: {}", err.0))
    }
}

#[derive(Clone)]
struct Scope {
    db: DatabaseConnection,
    org_id: Arc<str>,
}

/// Users by id.
pub struct UserLoader(Scope);

impl Loader<String> for UserLoader {
    type Value = user::Model;
    type Error = LoadError;

    async fn load(&self, keys: &[String]) -> Result<HashMap<String, Self::Value>, Self::Error> {
        let rows = orgs::users_by_ids(&self.0.db, &self.0.org_id, keys).await?;
        Ok(rows.into_iter().map(|u| (u.id.clone(), u)).collect())
    }
}

/// Objectives by id.
pub struct ObjectiveLoader(Scope);

impl Loader<String> for ObjectiveLoader {
    type Value = objective::Model;
    type Error = LoadError;

    async fn load(&self, keys: &[String]) -> Result<HashMap<String, Self::Value>, Self::Error> {
        let rows = objectives::by_ids(&self.0.db, &self.0.org_id, keys).await?;
        Ok(rows.into_iter().map(|o| (o.id.clone(), o)).collect())
    }
}

/// Child objectives by parent id.
pub struct ChildrenLoader(Scope);

impl Loader<String> for ChildrenLoader {
    type Value = Arc<[objective::Model]>;
    type Error = LoadError;

    async fn load(&self, keys: &[String]) -> Result<HashMap<String, Self::Value>, Self::Error> {
        let rows = objectives::children_of(&self.0.db, &self.0.org_id, keys).await?;
        let mut map: HashMap<String, Vec<objective::Model>> =
            keys.iter().map(|k| (k.clone(), Vec::new())).collect();
        for o in rows {
            if let Some(parent) = &o.parent_id {
                map.entry(parent.clone()).or_default().push(o);
            }
        }
        Ok(shared(map))
    }
}

/// The points of one window handed out per node: every one of `nodes`
/// gets its own points (an empty list when it has none).
fn by_node(
    points: Vec<progress_point::Model>,
    nodes: impl Iterator<Item = Node>,
    window: Window,
) -> HashMap<(Node, Window), Arc<[progress_point::Model]>> {
    let mut map: HashMap<(Node, Window), Vec<progress_point::Model>> =
        nodes.map(|node| ((node, window), Vec::new())).collect();
    for point in points {
        if let Some(node) = Node::of_row(
            point.objective_id.as_deref(),
            point.key_result_id.as_deref(),
        ) && let Some(list) = map.get_mut(&(node, window))
        {
            list.push(point);
        }
    }
    shared(map)
}

/// Lists as shared slices: a cached list is handed out without a copy.
fn shared<K: Eq + std::hash::Hash, T>(map: HashMap<K, Vec<T>>) -> HashMap<K, Arc<[T]>> {
    map.into_iter().map(|(k, v)| (k, Arc::from(v))).collect()
}

/// Key results by objective id.
pub struct KeyResultsLoader(Scope);

impl Loader<String> for KeyResultsLoader {
    type Value = Arc<[key_result::Model]>;
    type Error = LoadError;

    async fn load(&self, keys: &[String]) -> Result<HashMap<String, Self::Value>, Self::Error> {
        let rows = key_results::of_objectives(&self.0.db, &self.0.org_id, keys).await?;
        let mut map: HashMap<String, Vec<key_result::Model>> =
            keys.iter().map(|k| (k.clone(), Vec::new())).collect();
        for kr in rows {
            map.entry(kr.objective_id.clone()).or_default().push(kr);
        }
        Ok(shared(map))
    }
}

/// The newest history point of objectives and key results; `None` for one
/// without history, so that it is cached as known-empty.
pub struct LatestPointLoader(Scope);

impl Loader<Node> for LatestPointLoader {
    type Value = Option<ProgressPoint>;
    type Error = LoadError;

    async fn load(&self, keys: &[Node]) -> Result<HashMap<Node, Self::Value>, Self::Error> {
        let rows = history::latest_points(&self.0.db, &self.0.org_id, keys).await?;
        let mut map: HashMap<Node, Self::Value> = keys.iter().map(|k| (k.clone(), None)).collect();
        for p in rows {
            if let Some(node) = Node::of_row(p.objective_id.as_deref(), p.key_result_id.as_deref())
            {
                map.insert(node, Some(ProgressPoint::from(p)));
            }
        }
        Ok(map)
    }
}

/// History points of objectives and key results in a window, oldest
/// first; an empty list for one without points in it.
pub struct HistoryLoader(Scope);

impl Loader<(Node, Window)> for HistoryLoader {
    type Value = Arc<[progress_point::Model]>;
    type Error = LoadError;

    async fn load(
        &self,
        keys: &[(Node, Window)],
    ) -> Result<HashMap<(Node, Window), Self::Value>, Self::Error> {
        let mut windows: HashMap<Window, Vec<Node>> = HashMap::new();
        for (node, window) in keys {
            windows.entry(*window).or_default().push(node.clone());
        }
        let mut map = HashMap::new();
        for (window, nodes) in windows {
            let points = history::histories(&self.0.db, &self.0.org_id, &nodes, window).await?;
            map.extend(by_node(points, nodes.into_iter(), window));
        }
        Ok(map)
    }
}

/// The data source of objectives and key results; `None` for those without.
pub struct DataSourceLoader(Scope);

impl Loader<Node> for DataSourceLoader {
    type Value = Option<data_source::Model>;
    type Error = LoadError;

    async fn load(&self, keys: &[Node]) -> Result<HashMap<Node, Self::Value>, Self::Error> {
        let rows = data_sources::of_nodes(&self.0.db, &self.0.org_id, keys).await?;
        let mut map: HashMap<Node, Self::Value> = keys.iter().map(|k| (k.clone(), None)).collect();
        for ds in rows {
            if let Some(node) =
                Node::of_row(ds.objective_id.as_deref(), ds.key_result_id.as_deref())
            {
                map.insert(node, Some(ds));
            }
        }
        Ok(map)
    }
}

/// Connections by id.
pub struct ConnectionLoader(Scope);

impl Loader<String> for ConnectionLoader {
    type Value = connection::Model;
    type Error = LoadError;

    async fn load(&self, keys: &[String]) -> Result<HashMap<String, Self::Value>, Self::Error> {
        let rows = connections::by_ids(&self.0.db, &self.0.org_id, keys).await?;
        Ok(rows.into_iter().map(|c| (c.id.clone(), c)).collect())
    }
}

//! DataLoaders: a tree of any size costs a fixed number of statements.
//!
//! Each loader is per request and bound to the caller's organization, so
//! batching never mixes tenants and nothing is cached across requests.

use std::{collections::HashMap, sync::Arc};

use async_graphql::dataloader::{DataLoader, HashMapCache, Loader};
use entity::{connection, data_source, key_result, objective, progress_point, user};
use sea_orm::{DatabaseConnection, DbErr};

use crate::{
    domain::Node,
    error::AppError,
    store::{connections, data_sources, history, key_results, objectives, orgs},
};

/// Keys are capped so one `IN (…)` list stays well inside every database's
/// parameter limit.
const MAX_BATCH: usize = 1000;

/// All loaders of one request.
///
/// They cache for the life of the request, so a value primed for a whole
/// list is not loaded again by each item.
pub struct Loaders {
    pub users: DataLoader<UserLoader, HashMapCache>,
    pub objectives: DataLoader<ObjectiveLoader, HashMapCache>,
    pub children: DataLoader<ChildrenLoader, HashMapCache>,
    pub key_results: DataLoader<KeyResultsLoader, HashMapCache>,
    pub latest_points: DataLoader<LatestPointLoader, HashMapCache>,
    pub data_sources: DataLoader<DataSourceLoader, HashMapCache>,
    pub connections: DataLoader<ConnectionLoader, HashMapCache>,
}

impl Loaders {
    /// Loaders for one organization.
    pub fn new(db: DatabaseConnection, org_id: String) -> Self {
        let scope = Scope {
            db,
            org_id: Arc::from(org_id),
        };
        fn make<T>(loader: T) -> DataLoader<T, HashMapCache> {
            DataLoader::with_cache(loader, tokio::spawn, HashMapCache::default())
                .max_batch_size(MAX_BATCH)
        }
        Loaders {
            users: make(UserLoader(scope.clone())),
            objectives: make(ObjectiveLoader(scope.clone())),
            children: make(ChildrenLoader(scope.clone())),
            key_results: make(KeyResultsLoader(scope.clone())),
            latest_points: make(LatestPointLoader(scope.clone())),
            data_sources: make(DataSourceLoader(scope.clone())),
            connections: make(ConnectionLoader(scope)),
        }
    }
}

impl Loaders {
    /// Loads, in one batch per field, what a query selects below a list of
    /// objectives, so the statement count does not depend on how the list's
    /// resolvers happen to interleave with the loaders' batching delay.
    pub async fn prime_objectives(
        &self,
        selection: &async_graphql::Lookahead<'_>,
        rows: &[objective::Model],
    ) -> Result<(), LoadError> {
        if rows.is_empty() {
            return Ok(());
        }
        let ids: Vec<String> = rows.iter().map(|o| o.id.clone()).collect();
        self.objectives
            .feed_many(rows.iter().map(|o| (o.id.clone(), o.clone())))
            .await;
        if selection.field("owner").exists() {
            let owners: std::collections::HashSet<String> =
                rows.iter().map(|o| o.owner_id.clone()).collect();
            self.users.load_many(owners).await?;
        }
        if selection.field("children").exists() {
            self.children.load_many(ids.iter().cloned()).await?;
        }
        if selection.field("latestPoint").exists() {
            self.latest_points
                .load_many(ids.iter().cloned().map(Node::Objective))
                .await?;
        }
        if selection.field("dataSource").exists() {
            self.data_sources
                .load_many(ids.iter().cloned().map(Node::Objective))
                .await?;
        }
        let key_results = selection.field("keyResults");
        if key_results.exists() {
            let krs = self.key_results.load_many(ids.iter().cloned()).await?;
            if key_results.field("latestPoint").exists() {
                let kr_ids = krs
                    .values()
                    .flatten()
                    .map(|kr| Node::KeyResult(kr.id.clone()));
                self.latest_points.load_many(kr_ids).await?;
            }
            if key_results.field("dataSource").exists() {
                let kr_ids = krs
                    .values()
                    .flatten()
                    .map(|kr| Node::KeyResult(kr.id.clone()));
                self.data_sources.load_many(kr_ids).await?;
            }
        }
        Ok(())
    }
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
    type Value = Vec<objective::Model>;
    type Error = LoadError;

    async fn load(&self, keys: &[String]) -> Result<HashMap<String, Self::Value>, Self::Error> {
        let rows = objectives::children_of(&self.0.db, &self.0.org_id, keys).await?;
        let mut map: HashMap<String, Self::Value> =
            keys.iter().map(|k| (k.clone(), Vec::new())).collect();
        for o in rows {
            if let Some(parent) = &o.parent_id {
                map.entry(parent.clone()).or_default().push(o);
            }
        }
        Ok(map)
    }
}

/// Key results by objective id.
pub struct KeyResultsLoader(Scope);

impl Loader<String> for KeyResultsLoader {
    type Value = Vec<key_result::Model>;
    type Error = LoadError;

    async fn load(&self, keys: &[String]) -> Result<HashMap<String, Self::Value>, Self::Error> {
        let rows = key_results::of_objectives(&self.0.db, &self.0.org_id, keys).await?;
        let mut map: HashMap<String, Self::Value> =
            keys.iter().map(|k| (k.clone(), Vec::new())).collect();
        for kr in rows {
            map.entry(kr.objective_id.clone()).or_default().push(kr);
        }
        Ok(map)
    }
}

/// The newest history point of objectives and key results; `None` for one
/// without history, so that it is cached as known-empty.
pub struct LatestPointLoader(Scope);

impl Loader<Node> for LatestPointLoader {
    type Value = Option<progress_point::Model>;
    type Error = LoadError;

    async fn load(&self, keys: &[Node]) -> Result<HashMap<Node, Self::Value>, Self::Error> {
        let rows = history::latest_points(&self.0.db, &self.0.org_id, keys).await?;
        let mut map: HashMap<Node, Self::Value> = keys.iter().map(|k| (k.clone(), None)).collect();
        for p in rows {
            if let Some(node) = Node::of_row(p.objective_id.as_deref(), p.key_result_id.as_deref())
            {
                map.insert(node, Some(p));
            }
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

//! DataLoaders: a tree of any size costs a fixed number of statements.
//!
//! Each loader is per request and bound to the caller's organization, so
//! batching never mixes tenants and nothing is cached across requests.

use std::{collections::HashMap, sync::Arc};

use async_graphql::dataloader::{DataLoader, Loader};
use entity::{key_result, objective, progress_point, user};
use sea_orm::{DatabaseConnection, DbErr};

use crate::{
    error::AppError,
    store::{key_results, objectives, orgs, progress},
};

/// Keys are capped so one `IN (…)` list stays well inside every database's
/// parameter limit.
const MAX_BATCH: usize = 1000;

/// All loaders of one request.
pub struct Loaders {
    pub users: DataLoader<UserLoader>,
    pub objectives: DataLoader<ObjectiveLoader>,
    pub children: DataLoader<ChildrenLoader>,
    pub key_results: DataLoader<KeyResultsLoader>,
    pub latest_points: DataLoader<LatestPointLoader>,
}

impl Loaders {
    /// Loaders for one organization.
    pub fn new(db: DatabaseConnection, org_id: String) -> Self {
        let scope = Scope {
            db,
            org_id: Arc::from(org_id),
        };
        fn make<T: Loader<String> + Send + Sync + 'static>(loader: T) -> DataLoader<T>
        where
            T: Loader<String>,
        {
            DataLoader::new(loader, tokio::spawn).max_batch_size(MAX_BATCH)
        }
        Loaders {
            users: make(UserLoader(scope.clone())),
            objectives: make(ObjectiveLoader(scope.clone())),
            children: make(ChildrenLoader(scope.clone())),
            key_results: make(KeyResultsLoader(scope.clone())),
            latest_points: DataLoader::new(LatestPointLoader(scope), tokio::spawn)
                .max_batch_size(MAX_BATCH),
        }
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

/// Whose newest history point to load.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum PointOwnerKey {
    Objective(String),
    KeyResult(String),
}

/// The newest history point of objectives and key results.
pub struct LatestPointLoader(Scope);

impl Loader<PointOwnerKey> for LatestPointLoader {
    type Value = progress_point::Model;
    type Error = LoadError;

    async fn load(
        &self,
        keys: &[PointOwnerKey],
    ) -> Result<HashMap<PointOwnerKey, Self::Value>, Self::Error> {
        let mut objective_ids = Vec::new();
        let mut key_result_ids = Vec::new();
        for key in keys {
            match key {
                PointOwnerKey::Objective(id) => objective_ids.push(id.clone()),
                PointOwnerKey::KeyResult(id) => key_result_ids.push(id.clone()),
            }
        }
        let rows =
            progress::latest_points(&self.0.db, &self.0.org_id, &objective_ids, &key_result_ids)
                .await?;
        let mut map = HashMap::new();
        for p in rows {
            let key = match (&p.objective_id, &p.key_result_id) {
                (Some(o), None) => PointOwnerKey::Objective(o.clone()),
                (_, Some(kr)) => PointOwnerKey::KeyResult(kr.clone()),
                (None, None) => continue,
            };
            map.insert(key, p);
        }
        Ok(map)
    }
}

//! Objectives, key results and check-ins.

use entity::{key_result, objective, progress_point};

use crate::{
    domain::inputs::{CheckIn, KeyResultPatch, NewKeyResult, NewObjective, ObjectivePatch},
    error::AppError,
    store::{Principal, key_results, objectives, record},
};

use super::Service;

impl Service {
    /// Creates an objective; its parent's roll-up includes it at once.
    pub async fn create_objective(
        &self,
        principal: &Principal,
        input: NewObjective,
    ) -> Result<objective::Model, AppError> {
        let committed = objectives::create(&self.db, principal, input, self.bounds).await?;
        Ok(self.published(committed).await)
    }

    /// Changes an objective and re-rolls every affected ancestor.
    pub async fn update_objective(
        &self,
        principal: &Principal,
        id: &str,
        patch: ObjectivePatch,
    ) -> Result<objective::Model, AppError> {
        let committed = objectives::update(&self.db, principal, id, patch, self.bounds).await?;
        Ok(self.published(committed).await)
    }

    /// Deletes an objective; its children move up to its parent.
    pub async fn delete_objective(&self, principal: &Principal, id: &str) -> Result<(), AppError> {
        let notice = objectives::delete(&self.db, principal, id, self.bounds).await?;
        self.published(((), notice)).await;
        Ok(())
    }

    /// Adds a key result to an objective.
    pub async fn create_key_result(
        &self,
        principal: &Principal,
        input: NewKeyResult,
    ) -> Result<key_result::Model, AppError> {
        let committed = key_results::create(&self.db, principal, input, self.bounds).await?;
        Ok(self.published(committed).await)
    }

    /// Changes a key result; its progress is recomputed from its value.
    pub async fn update_key_result(
        &self,
        principal: &Principal,
        id: &str,
        patch: KeyResultPatch,
    ) -> Result<key_result::Model, AppError> {
        let committed = key_results::update(&self.db, principal, id, patch).await?;
        Ok(self.published(committed).await)
    }

    /// Deletes a key result with its data source and history.
    pub async fn delete_key_result(&self, principal: &Principal, id: &str) -> Result<(), AppError> {
        let notice = key_results::delete(&self.db, principal, id).await?;
        self.published(((), notice)).await;
        Ok(())
    }

    /// Records a value by hand and re-rolls every ancestor.
    pub async fn check_in(
        &self,
        principal: &Principal,
        input: CheckIn,
    ) -> Result<progress_point::Model, AppError> {
        let committed = record::check_in(&self.db, principal, input).await?;
        Ok(self.published(committed).await)
    }
}

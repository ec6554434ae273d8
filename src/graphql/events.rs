//! Subscriptions: live progress and sync events of the caller's organization.

use async_graphql::{Context, ID, Result, Subscription};
use futures::{Stream, StreamExt};
use tokio_stream::wrappers::BroadcastStream;

use crate::events::Event;

use super::{
    RequestContext,
    types::{ProgressEvent, SyncEvent},
};

/// Live events.
#[derive(Default)]
pub struct EventSubscription;

#[Subscription]
impl EventSubscription {
    /// Progress changes in the caller's organization. With `objectiveId`:
    /// that objective, its key results and every descendant. With
    /// `keyResultId`: that key result. With neither: everything.
    async fn progress_changed(
        &self,
        ctx: &Context<'_>,
        objective_id: Option<ID>,
        key_result_id: Option<ID>,
    ) -> Result<impl Stream<Item = ProgressEvent> + use<>> {
        let org_id = ctx.principal()?.org.id.clone();
        let receiver = ctx.service().events().subscribe();
        Ok(BroadcastStream::new(receiver).filter_map(move |item| {
            let keep = match &item {
                // A subscriber that fell behind skips to the newest events.
                Ok(Event::Progress(e)) => {
                    e.org_id == org_id
                        && objective_id
                            .as_ref()
                            .is_none_or(|o| e.lineage.contains(&o.0))
                        && key_result_id
                            .as_ref()
                            .is_none_or(|k| e.key_result_id.as_deref() == Some(k.0.as_str()))
                }
                _ => false,
            };
            let out = match (keep, item) {
                (true, Ok(Event::Progress(e))) => Some(ProgressEvent::from(e.as_ref())),
                _ => None,
            };
            async move { out }
        }))
    }

    /// Sync outcomes in the caller's organization, of one data source or all.
    async fn data_source_synced(
        &self,
        ctx: &Context<'_>,
        data_source_id: Option<ID>,
    ) -> Result<impl Stream<Item = SyncEvent> + use<>> {
        let org_id = ctx.principal()?.org.id.clone();
        let receiver = ctx.service().events().subscribe();
        Ok(BroadcastStream::new(receiver).filter_map(move |item| {
            let out = match item {
                Ok(Event::Sync(e))
                    if e.org_id == org_id
                        && data_source_id
                            .as_ref()
                            .is_none_or(|d| d.0 == e.data_source_id) =>
                {
                    Some(SyncEvent::from(e.as_ref()))
                }
                _ => None,
            };
            async move { out }
        }))
    }
}

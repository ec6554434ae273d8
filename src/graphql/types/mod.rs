//! Output types. They wrap database rows but expose only API fields; the
//! enums are the stored ones (`entity::enums`).

mod data_sources;
mod events;
mod okrs;

use async_graphql::{ID, SimpleObject};
use entity::{enums::Role, organization, user};

pub use data_sources::{BigQuerySetup, Connection, ConnectionTest, DataSource, DataSourcePreview};
pub use events::{ProgressEvent, SyncEvent};
pub use okrs::{HISTORY_DEFAULT_LIMIT, KeyResult, Objective, ProgressPoint, history_window};

/// A person in the organization.
#[derive(SimpleObject)]
pub struct User {
    pub id: ID,
    pub email: String,
    pub name: String,
    pub role: Role,
}

impl From<user::Model> for User {
    fn from(u: user::Model) -> Self {
        User {
            id: u.id.into(),
            email: u.email,
            name: u.name,
            role: u.role,
        }
    }
}

/// The caller's organization and its settings.
#[derive(SimpleObject)]
pub struct Organization {
    pub id: ID,
    /// The `org` claim of its tokens.
    pub slug: String,
    pub name: String,
    /// IANA time zone in which periods start and end.
    pub time_zone: String,
    /// Shortfall in percentage points up to which an OKR is on track.
    pub behind_threshold: f64,
    /// Shortfall in percentage points above which an OKR is at risk.
    pub at_risk_threshold: f64,
    /// Whether members may create BigQuery connections of their own.
    pub members_can_create_connections: bool,
}

impl From<organization::Model> for Organization {
    fn from(o: organization::Model) -> Self {
        Organization {
            id: o.id.into(),
            slug: o.slug,
            name: o.name,
            time_zone: o.time_zone,
            behind_threshold: o.behind_threshold,
            at_risk_threshold: o.at_risk_threshold,
            members_can_create_connections: o.members_can_create_connections,
        }
    }
}

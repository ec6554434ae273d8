//! Organizations and users: provisioning from token claims, org settings.

use chrono_tz::Tz;
use entity::{enums::Role, organization, user};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, Set,
    sea_query::OnConflict,
};

use crate::{
    domain::{
        inputs::OrgSettingsPatch,
        progress::{Scoring, Thresholds},
        validate,
    },
    error::AppError,
};

use super::{new_id, now};

/// The authenticated caller of one request.
#[derive(Debug, Clone)]
pub struct Principal {
    pub org: organization::Model,
    pub user: user::Model,
    pub role: Role,
}

impl Principal {
    /// Refuses anyone but an admin of the organization.
    pub fn require_admin(&self, action: &str) -> Result<(), AppError> {
        if self.role == Role::Admin {
            Ok(())
        } else {
            Err(AppError::Forbidden(format!(
                "Only an admin of this organization may {action}."
            )))
        }
    }

    /// The caller's organization's scoring rules.
    pub fn scoring(&self) -> Scoring {
        scoring(&self.org)
    }
}

/// The scoring rules of an organization.
pub fn scoring(org: &organization::Model) -> Scoring {
    Scoring {
        tz: org.time_zone.parse().unwrap_or(Tz::UTC),
        thresholds: Thresholds {
            behind: org.behind_threshold,
            at_risk: org.at_risk_threshold,
        },
    }
}

/// Who a verified token says its bearer is.
#[derive(Debug, Clone, Copy)]
pub struct Identity<'a> {
    /// Organization slug.
    pub org: &'a str,
    /// The user's id at the identity provider.
    pub subject: &'a str,
    pub email: &'a str,
    /// Display name; the email when blank.
    pub name: &'a str,
    pub role: Role,
}

/// Finds or creates the organization and user a token names, refreshing the
/// user's email, name and role from the token.
pub async fn provision(
    db: &impl ConnectionTrait,
    identity: Identity<'_>,
) -> Result<Principal, AppError> {
    let Identity {
        org,
        subject,
        email,
        name,
        role,
    } = identity;
    let org = find_or_create_org(db, org).await?;
    let name = if name.trim().is_empty() {
        email.to_owned()
    } else {
        name.to_owned()
    };
    let existing = user::Entity::find()
        .filter(user::Column::OrgId.eq(&org.id))
        .filter(user::Column::Subject.eq(subject))
        .one(db)
        .await?;
    let user = match existing {
        Some(u) if u.email == email && u.name == name && u.role == role => u,
        Some(u) => {
            let mut active: user::ActiveModel = u.into();
            active.email = Set(email.to_owned());
            active.name = Set(name);
            active.role = Set(role);
            active.updated_at = Set(now());
            active.update(db).await?
        }
        None => {
            let at = now();
            let row = user::ActiveModel {
                id: Set(new_id()),
                org_id: Set(org.id.clone()),
                subject: Set(subject.to_owned()),
                email: Set(email.to_owned()),
                name: Set(name),
                role: Set(role),
                created_at: Set(at),
                updated_at: Set(at),
            };
            // Two first requests of one user may race; the loser re-reads.
            user::Entity::insert(row)
                .on_conflict(
                    OnConflict::columns([user::Column::OrgId, user::Column::Subject])
                        .do_nothing()
                        .to_owned(),
                )
                .exec_without_returning(db)
                .await?;
            user::Entity::find()
                .filter(user::Column::OrgId.eq(&org.id))
                .filter(user::Column::Subject.eq(subject))
                .one(db)
                .await?
                .ok_or_else(|| AppError::internal(anyhow::anyhow!("user vanished after insert")))?
        }
    };
    Ok(Principal { org, user, role })
}

async fn find_or_create_org(
    db: &impl ConnectionTrait,
    slug: &str,
) -> Result<organization::Model, AppError> {
    if let Some(org) = organization::Entity::find()
        .filter(organization::Column::Slug.eq(slug))
        .one(db)
        .await?
    {
        return Ok(org);
    }
    let at = now();
    let defaults = Thresholds::default();
    let row = organization::ActiveModel {
        id: Set(new_id()),
        slug: Set(slug.to_owned()),
        name: Set(slug.to_owned()),
        behind_threshold: Set(defaults.behind),
        at_risk_threshold: Set(defaults.at_risk),
        time_zone: Set("UTC".to_owned()),
        members_can_create_connections: Set(false),
        created_at: Set(at),
        updated_at: Set(at),
    };
    organization::Entity::insert(row)
        .on_conflict(
            OnConflict::column(organization::Column::Slug)
                .do_nothing()
                .to_owned(),
        )
        .exec_without_returning(db)
        .await?;
    organization::Entity::find()
        .filter(organization::Column::Slug.eq(slug))
        .one(db)
        .await?
        .ok_or_else(|| AppError::internal(anyhow::anyhow!("organization vanished after insert")))
}

/// Applies a settings change (admins only).
pub async fn update_settings(
    db: &impl ConnectionTrait,
    principal: &Principal,
    patch: OrgSettingsPatch,
) -> Result<organization::Model, AppError> {
    principal.require_admin("change organization settings")?;
    let org = &principal.org;
    let behind = patch.behind_threshold.unwrap_or(org.behind_threshold);
    let at_risk = patch.at_risk_threshold.unwrap_or(org.at_risk_threshold);
    validate::thresholds(behind, at_risk)?;
    let mut active: organization::ActiveModel = org.clone().into();
    if let Some(name) = patch.name {
        active.name = Set(name);
    }
    if let Some(tz) = patch.time_zone {
        active.time_zone = Set(tz.name().to_owned());
    }
    if let Some(members) = patch.members_can_create_connections {
        active.members_can_create_connections = Set(members);
    }
    active.behind_threshold = Set(behind);
    active.at_risk_threshold = Set(at_risk);
    active.updated_at = Set(now());
    Ok(active.update(db).await?)
}

/// A user of the organization by id.
pub async fn user_in_org(
    db: &impl ConnectionTrait,
    org_id: &str,
    user_id: &str,
) -> Result<Option<user::Model>, AppError> {
    Ok(user::Entity::find_by_id(user_id.to_owned())
        .filter(user::Column::OrgId.eq(org_id))
        .one(db)
        .await?)
}

/// Every user of the organization, by name.
pub async fn users(db: &impl ConnectionTrait, org_id: &str) -> Result<Vec<user::Model>, AppError> {
    Ok(user::Entity::find()
        .filter(user::Column::OrgId.eq(org_id))
        .order_by_asc(user::Column::Name)
        .order_by_asc(user::Column::Id)
        .all(db)
        .await?)
}

/// Users of the organization with these ids, in one statement.
pub async fn users_by_ids(
    db: &impl ConnectionTrait,
    org_id: &str,
    ids: &[String],
) -> Result<Vec<user::Model>, sea_orm::DbErr> {
    user::Entity::find()
        .filter(user::Column::OrgId.eq(org_id))
        .filter(user::Column::Id.is_in(ids.iter().cloned()))
        .order_by_asc(user::Column::Id)
        .all(db)
        .await
}

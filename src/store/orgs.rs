//! Organizations and users: provisioning from token claims, org settings.

use chrono_tz::Tz;
use entity::{organization, user};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, Set,
    sea_query::OnConflict,
};

use crate::{
    auth::{Claims, Principal, Role},
    domain::{progress::Thresholds, validate},
    error::AppError,
};

use super::{new_id, now};

/// The organization-wide inputs of every status: time zone and thresholds.
#[derive(Debug, Clone, Copy)]
pub struct Scoring {
    pub tz: Tz,
    pub thresholds: Thresholds,
}

impl Scoring {
    /// The scoring rules of an organization.
    pub fn of(org: &organization::Model) -> Scoring {
        Scoring {
            tz: org.time_zone.parse().unwrap_or(Tz::UTC),
            thresholds: Thresholds {
                behind: org.behind_threshold,
                at_risk: org.at_risk_threshold,
            },
        }
    }
}

/// Finds or creates the organization and user a token names, refreshing the
/// user's email, name and role from the token.
pub async fn provision(
    db: &impl ConnectionTrait,
    claims: &Claims,
    role: Role,
) -> Result<Principal, AppError> {
    let org = find_or_create_org(db, &claims.org).await?;
    let name = if claims.name.trim().is_empty() {
        claims.email.clone()
    } else {
        claims.name.clone()
    };
    let existing = user::Entity::find()
        .filter(user::Column::OrgId.eq(&org.id))
        .filter(user::Column::Subject.eq(&claims.sub))
        .one(db)
        .await?;
    let user = match existing {
        Some(u) if u.email == claims.email && u.name == name && u.role == role.as_str() => u,
        Some(u) => {
            let mut active: user::ActiveModel = u.into();
            active.email = Set(claims.email.clone());
            active.name = Set(name);
            active.role = Set(role.as_str().to_owned());
            active.updated_at = Set(now());
            active.update(db).await?
        }
        None => {
            let at = now();
            let row = user::ActiveModel {
                id: Set(new_id()),
                org_id: Set(org.id.clone()),
                subject: Set(claims.sub.clone()),
                email: Set(claims.email.clone()),
                name: Set(name),
                role: Set(role.as_str().to_owned()),
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
                .filter(user::Column::Subject.eq(&claims.sub))
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
        members_can_create_connections: Set(true),
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

/// Changes to an organization's settings; `None` leaves a setting as it is.
#[derive(Debug, Default)]
pub struct SettingsPatch {
    pub name: Option<String>,
    pub time_zone: Option<String>,
    pub behind_threshold: Option<f64>,
    pub at_risk_threshold: Option<f64>,
    pub members_can_create_connections: Option<bool>,
}

/// Applies a settings change (admins only).
pub async fn update_settings(
    db: &impl ConnectionTrait,
    principal: &Principal,
    patch: SettingsPatch,
) -> Result<organization::Model, AppError> {
    principal.require_admin("change organization settings")?;
    let org = &principal.org;
    let behind = patch.behind_threshold.unwrap_or(org.behind_threshold);
    let at_risk = patch.at_risk_threshold.unwrap_or(org.at_risk_threshold);
    validate::thresholds(behind, at_risk)?;
    let mut active: organization::ActiveModel = org.clone().into();
    if let Some(name) = patch.name {
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 200 {
            return Err(AppError::bad_input(
                "name",
                "The organization name must be 1 to 200 characters.",
            ));
        }
        active.name = Set(name.to_owned());
    }
    if let Some(tz) = patch.time_zone {
        let parsed = validate::time_zone(&tz)?;
        active.time_zone = Set(parsed.name().to_owned());
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

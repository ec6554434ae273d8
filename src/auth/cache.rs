//! Callers resolved lately, so a warm request costs no database round trip.
//!
//! An entry is keyed by everything a token says about its bearer (org,
//! subject, email, name, role): a token with a new role or name is a miss
//! and provisions again at once. What the token does not carry, the
//! organization's settings, is forgotten on this replica when it changes,
//! and on other replicas within the time to live.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use entity::enums::Role;

use crate::store::{Principal, orgs::Identity};

/// Most callers kept; beyond it, expired entries go first, then all.
const MAX_ENTRIES: usize = 10_000;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    org: String,
    subject: String,
    email: String,
    name: String,
    role: Role,
}

impl From<&Identity<'_>> for Key {
    fn from(identity: &Identity<'_>) -> Self {
        Key {
            org: identity.org.to_owned(),
            subject: identity.subject.to_owned(),
            email: identity.email.to_owned(),
            name: identity.name.to_owned(),
            role: identity.role,
        }
    }
}

/// A short-lived map from identities to the principals they resolved to.
#[derive(Clone)]
pub struct PrincipalCache {
    ttl: Duration,
    entries: Arc<Mutex<HashMap<Key, (Instant, Principal)>>>,
}

impl PrincipalCache {
    /// A cache keeping each principal for `ttl`; zero keeps nothing.
    pub fn new(ttl: Duration) -> Self {
        PrincipalCache {
            ttl,
            entries: Arc::default(),
        }
    }

    /// The principal `identity` resolved to within the time to live.
    pub fn get(&self, identity: &Identity<'_>) -> Option<Principal> {
        if self.ttl.is_zero() {
            return None;
        }
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        match entries.get(&Key::from(identity)) {
            Some((stored, principal)) if stored.elapsed() < self.ttl => Some(principal.clone()),
            _ => None,
        }
    }

    /// Remembers what `identity` resolved to.
    pub fn put(&self, identity: &Identity<'_>, principal: &Principal) {
        if self.ttl.is_zero() {
            return;
        }
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if entries.len() >= MAX_ENTRIES {
            let ttl = self.ttl;
            entries.retain(|_, (stored, _)| stored.elapsed() < ttl);
            if entries.len() >= MAX_ENTRIES {
                entries.clear();
            }
        }
        entries.insert(Key::from(identity), (Instant::now(), principal.clone()));
    }

    /// Forgets every caller of an organization, after its settings changed.
    pub fn forget_org(&self, org_id: &str) {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries.retain(|_, (_, principal)| principal.org.id != org_id);
    }
}

#[cfg(test)]
mod tests {
    use chrono::Utc;
    use entity::{organization, user};

    use super::*;

    fn principal(org_id: &str, role: Role) -> Principal {
        let at = Utc::now();
        Principal {
            org: organization::Model {
                id: org_id.to_owned(),
                slug: "acme".to_owned(),
                name: "Acme".to_owned(),
                time_zone: "UTC".to_owned(),
                behind_threshold: 0.15,
                at_risk_threshold: 0.3,
                members_can_create_connections: true,
                created_at: at,
                updated_at: at,
            },
            user: user::Model {
                id: "u1".to_owned(),
                org_id: org_id.to_owned(),
                subject: "sub".to_owned(),
                email: "a@acme.test".to_owned(),
                name: "A".to_owned(),
                role,
                created_at: at,
                updated_at: at,
            },
            role,
        }
    }

    fn identity(role: Role) -> Identity<'static> {
        Identity {
            org: "acme",
            subject: "sub",
            email: "a@acme.test",
            name: "A",
            role,
        }
    }

    #[test]
    fn a_cached_caller_is_returned_until_it_expires() {
        let cache = PrincipalCache::new(Duration::from_millis(50));
        assert!(cache.get(&identity(Role::Admin)).is_none());
        cache.put(&identity(Role::Admin), &principal("o1", Role::Admin));
        assert_eq!(
            cache.get(&identity(Role::Admin)).map(|p| p.org.id),
            Some("o1".to_owned())
        );
        std::thread::sleep(Duration::from_millis(60));
        assert!(cache.get(&identity(Role::Admin)).is_none());
    }

    #[test]
    fn a_token_with_another_role_is_a_miss() {
        let cache = PrincipalCache::new(Duration::from_secs(60));
        cache.put(&identity(Role::Admin), &principal("o1", Role::Admin));
        assert!(cache.get(&identity(Role::Member)).is_none());
    }

    #[test]
    fn an_organization_change_forgets_its_callers_only() {
        let cache = PrincipalCache::new(Duration::from_secs(60));
        let other = Identity {
            org: "globex",
            ..identity(Role::Admin)
        };
        cache.put(&identity(Role::Admin), &principal("o1", Role::Admin));
        cache.put(&other, &principal("o2", Role::Admin));
        cache.forget_org("o1");
        assert!(cache.get(&identity(Role::Admin)).is_none());
        assert!(cache.get(&other).is_some());
    }

    #[test]
    fn a_zero_time_to_live_keeps_nothing() {
        let cache = PrincipalCache::new(Duration::ZERO);
        cache.put(&identity(Role::Admin), &principal("o1", Role::Admin));
        assert!(cache.get(&identity(Role::Admin)).is_none());
    }

    #[test]
    fn a_full_cache_makes_room() {
        let cache = PrincipalCache::new(Duration::from_secs(60));
        let subjects: Vec<String> = (0..=MAX_ENTRIES).map(|i| format!("s{i}")).collect();
        for subject in &subjects {
            let id = Identity {
                subject,
                ..identity(Role::Admin)
            };
            cache.put(&id, &principal("o1", Role::Admin));
        }
        let len = cache.entries.lock().unwrap().len();
        assert!(len <= MAX_ENTRIES, "{len} entries");
        let last = Identity {
            subject: &subjects[MAX_ENTRIES],
            ..identity(Role::Admin)
        };
        assert!(cache.get(&last).is_some());
    }
}

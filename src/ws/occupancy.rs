//! How many WebSockets each user and each organization holds on this
//! replica, so that one member cannot take every slot of the server and
//! one organization cannot starve the others.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

/// Open authenticated WebSockets per user and per organization.
#[derive(Clone, Default)]
pub struct Occupancy(Arc<Mutex<HashMap<Holder, usize>>>);

/// Who holds sockets.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Holder {
    User(String),
    Org(String),
}

/// Which cap a connection went past.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Full {
    /// `WS_MAX_CONNECTIONS_PER_USER`.
    User,
    /// `WS_MAX_CONNECTIONS_PER_ORG`.
    Org,
}

impl Full {
    /// The close reason a client sees (at most 123 bytes).
    pub fn reason(self) -> &'static str {
        match self {
            Full::User => "Too many connections for this user (WS_MAX_CONNECTIONS_PER_USER)",
            Full::Org => "Too many connections for this organization (WS_MAX_CONNECTIONS_PER_ORG)",
        }
    }
}

impl Occupancy {
    /// Places for one more socket of `user` in `org`, or which cap is full.
    pub fn enter(
        &self,
        user: &str,
        org: &str,
        max_per_user: usize,
        max_per_org: usize,
    ) -> Result<OccupancySlot, Full> {
        let user = Holder::User(user.to_owned());
        let org = Holder::Org(org.to_owned());
        let mut counts = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if counts.get(&user).copied().unwrap_or_default() >= max_per_user {
            return Err(Full::User);
        }
        if counts.get(&org).copied().unwrap_or_default() >= max_per_org {
            return Err(Full::Org);
        }
        *counts.entry(user.clone()).or_default() += 1;
        *counts.entry(org.clone()).or_default() += 1;
        Ok(OccupancySlot {
            occupancy: self.clone(),
            holders: [user, org],
        })
    }
}

/// A socket's places; given back when dropped, however the socket ends.
pub struct OccupancySlot {
    occupancy: Occupancy,
    holders: [Holder; 2],
}

impl Drop for OccupancySlot {
    fn drop(&mut self) {
        let mut counts = self.occupancy.0.lock().unwrap_or_else(|p| p.into_inner());
        for holder in &self.holders {
            if let Some(count) = counts.get_mut(holder) {
                *count = count.saturating_sub(1);
                if *count == 0 {
                    counts.remove(holder);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_user_and_an_org_hold_at_most_their_caps_and_leaving_frees_a_place() {
        let occupancy = Occupancy::default();
        let a = occupancy.enter("ana", "acme", 2, 3).unwrap();
        let _b = occupancy.enter("ana", "acme", 2, 3).unwrap();
        assert_eq!(occupancy.enter("ana", "acme", 2, 3).err(), Some(Full::User));
        let _c = occupancy.enter("bo", "acme", 2, 3).unwrap();
        assert_eq!(occupancy.enter("cy", "acme", 2, 3).err(), Some(Full::Org));
        assert!(occupancy.enter("dee", "globex", 2, 3).is_ok());
        drop(a);
        assert!(occupancy.enter("ana", "acme", 2, 3).is_ok());
        assert!(Full::Org.reason().len() <= 123);
    }
}

//! Who may see and do what: the one place that decides it.
//!
//! Functions, tasks and task groups belong to the user who made them; endpoints to the user who
//! registered them, who may share one with other users or with everyone. A user sees their own
//! functions and tasks, the endpoints they own or that are shared with them, and every task on an
//! endpoint they own (its arguments and results only where they submitted it). Admin sees
//! everything. What a caller may not see does not exist for them: `404`, never `403`.

use std::collections::{HashMap, HashSet};
use std::sync::RwLock;

use lifeline_model::EndpointId;

use crate::users::{Caller, UserId};

/// Who owns an endpoint and who else may use it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EndpointAccess {
    pub owner: Option<UserId>,
    pub public: bool,
    pub shared: HashSet<UserId>,
}

/// Every endpoint's access, in memory for the event stream's per-event checks. A std lock:
/// never held across an await.
#[derive(Debug, Default)]
pub struct Directory(RwLock<HashMap<EndpointId, EndpointAccess>>);

impl Directory {
    pub fn set(&self, endpoint: EndpointId, access: EndpointAccess) {
        self.0
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(endpoint, access);
    }

    pub fn update(&self, endpoint: EndpointId, change: impl FnOnce(&mut EndpointAccess)) {
        let mut map = self.0.write().unwrap_or_else(|e| e.into_inner());
        change(map.entry(endpoint).or_default());
    }

    pub fn remove(&self, endpoint: EndpointId) {
        self.0
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&endpoint);
    }

    fn with<T>(&self, endpoint: EndpointId, f: impl FnOnce(Option<&EndpointAccess>) -> T) -> T {
        f(self
            .0
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&endpoint))
    }

    /// (owner, public, shared with), for showing.
    pub fn describe(&self, endpoint: EndpointId) -> (Option<UserId>, bool, HashSet<UserId>) {
        self.with(endpoint, |a| {
            a.map(|a| (a.owner, a.public, a.shared.clone()))
                .unwrap_or_default()
        })
    }

    /// Whether `caller` may see the endpoint and submit to it.
    pub fn may_use(&self, caller: &Caller, endpoint: EndpointId) -> bool {
        caller.admin
            || self.with(endpoint, |a| {
                a.is_some_and(|a| {
                    a.owner == Some(caller.id) || a.public || a.shared.contains(&caller.id)
                })
            })
    }

    /// Whether `caller` owns the endpoint (admin owns them all).
    pub fn owns(&self, caller: &Caller, endpoint: EndpointId) -> bool {
        caller.admin || self.with(endpoint, |a| a.is_some_and(|a| a.owner == Some(caller.id)))
    }

    /// Whether `caller` may see a task of `owner` on `endpoint`.
    pub fn may_see_task(&self, caller: &Caller, owner: UserId, endpoint: EndpointId) -> bool {
        owner == caller.id || self.owns(caller, endpoint)
    }

    /// The endpoints `caller` owns (none listed for admin, who owns all).
    pub fn owned_by(&self, caller: &Caller) -> Vec<EndpointId> {
        self.0
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .filter(|(_, a)| a.owner == Some(caller.id))
            .map(|(id, _)| *id)
            .collect()
    }
}

/// Which tasks a request reads: everything (admin), what a user may see, or only their own
/// (`mine=true`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Scope {
    All,
    /// The user's own tasks and every task on the endpoints they own.
    Visible {
        user: UserId,
        owned: Vec<EndpointId>,
    },
    Mine(UserId),
}

impl Scope {
    pub fn of(directory: &Directory, caller: &Caller, mine: bool) -> Scope {
        match (mine, caller.admin) {
            (true, _) => Scope::Mine(caller.id),
            (false, true) => Scope::All,
            (false, false) => Scope::Visible {
                user: caller.id,
                owned: directory.owned_by(caller),
            },
        }
    }

    /// Whether a task of `owner` on `endpoint` is in the scope.
    pub fn sees(&self, owner: UserId, endpoint: EndpointId) -> bool {
        match self {
            Scope::All => true,
            Scope::Visible { user, owned } => owner == *user || owned.contains(&endpoint),
            Scope::Mine(user) => owner == *user,
        }
    }
}

/// Whether `caller` may read a task's arguments and result: only its submitter (and admin).
pub fn may_read_payload(caller: &Caller, owner: UserId) -> bool {
    caller.admin || owner == caller.id
}

/// Whether `caller` may use a function of `owner`.
pub fn may_use_function(caller: &Caller, owner: UserId) -> bool {
    caller.admin || owner == caller.id
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(id: i64, admin: bool) -> Caller {
        Caller {
            id: UserId(id),
            name: format!("u{id}"),
            admin,
            token_id: "t".into(),
        }
    }

    #[test]
    fn owners_sharers_strangers_and_admin() {
        let dir = Directory::default();
        let ep = EndpointId::from_u128(7);
        let (owner, friend, stranger, admin) = (
            user(2, false),
            user(3, false),
            user(4, false),
            user(1, true),
        );
        dir.set(
            ep,
            EndpointAccess {
                owner: Some(owner.id),
                public: false,
                shared: [friend.id].into(),
            },
        );
        assert!(dir.may_use(&owner, ep) && dir.may_use(&friend, ep) && dir.may_use(&admin, ep));
        assert!(!dir.may_use(&stranger, ep));
        assert!(
            dir.may_see_task(&owner, friend.id, ep),
            "the owner sees tasks on it"
        );
        assert!(
            !may_read_payload(&owner, friend.id),
            "but not their payload"
        );
        assert!(
            !dir.may_see_task(&friend, owner.id, ep),
            "a sharer sees only their own"
        );
        assert!(dir.may_see_task(&friend, friend.id, ep));
        dir.update(ep, |a| a.public = true);
        assert!(dir.may_use(&stranger, ep));
        assert!(
            !dir.may_use(&stranger, EndpointId::from_u128(8)),
            "unknown endpoints"
        );
        assert_eq!(dir.owned_by(&owner), vec![ep]);
    }
}

//! The endpoint list: fetched from `/v1/endpoints` when signing in, then kept current by the
//! event stream, whose endpoint events say when an endpoint comes online or goes offline.
//!
//! The stream carries no heartbeat ages or executor reports between those changes, so the
//! endpoints page, which shows them, asks for the list again while it is open. An endpoint the
//! list does not know yet (registered since, and now named by an event) is fetched once.

use std::collections::HashSet;

use leptos::prelude::*;
use leptos::task::spawn_local;
use lifeline_model::{EndpointId, EndpointStatus, EndpointSummary, Presence};

use super::Auth;

/// Applies an endpoint's status change to the list. Returns `false` when the list does not
/// hold the endpoint (it must be fetched again).
pub fn apply_status(list: &mut [EndpointSummary], status: &EndpointStatus) -> bool {
    let Some(endpoint) = list
        .iter_mut()
        .find(|e| e.endpoint_id == status.endpoint_id)
    else {
        return false;
    };
    endpoint.name.clone_from(&status.name);
    endpoint.online = status.online;
    endpoint.status = if status.online {
        Presence::Online
    } else {
        Presence::Offline
    };
    if status.last_heartbeat.is_some() {
        endpoint.last_heartbeat = status.last_heartbeat;
    }
    if status.report.is_some() {
        endpoint.report.clone_from(&status.report);
    }
    true
}

/// The endpoint list, shared by the header's filter, the task list, the task detail and the
/// endpoints page.
#[derive(Copy, Clone, Debug)]
pub struct Endpoints {
    list: RwSignal<Vec<EndpointSummary>>,
    auth: Auth,
    /// A fetch is under way: another is not started.
    fetching: StoredValue<bool>,
    /// Endpoints events named that the list did not know, each fetched for once.
    asked: StoredValue<HashSet<EndpointId>>,
}

impl Endpoints {
    pub(super) fn new(auth: Auth) -> Self {
        Self {
            list: RwSignal::new(Vec::new()),
            auth,
            fetching: StoredValue::new(false),
            asked: StoredValue::new(HashSet::new()),
        }
    }

    /// Reads the list, and runs again when it changes.
    pub fn with<R>(&self, f: impl FnOnce(&[EndpointSummary]) -> R) -> R {
        self.list.with(|list| f(list))
    }

    /// An endpoint's name, if the list knows it.
    pub fn name(&self, id: EndpointId) -> Option<String> {
        self.list.with(|list| {
            list.iter()
                .find(|e| e.endpoint_id == id)
                .map(|e| e.name.clone())
        })
    }

    /// The names of these endpoints (ids the list does not know are left out).
    pub fn name_list(&self, ids: &[EndpointId]) -> Vec<String> {
        ids.iter().filter_map(|id| self.name(*id)).collect()
    }

    /// Fetches the list again (names, heartbeats, executor reports).
    pub fn refresh(&self) {
        let Some(api) = self.auth.api.get_untracked() else {
            return;
        };
        if self.fetching.get_value() {
            return;
        }
        self.fetching.set_value(true);
        let this = *self;
        spawn_local(async move {
            let answer = api.endpoints().await;
            if this.fetching.try_set_value(false).is_some() {
                return; // Signed out and gone meanwhile.
            }
            match answer {
                Ok(list) => this.list.set(list),
                Err(error) => this.auth.fail(&error),
            }
        });
    }

    /// Takes the endpoint changes of a batch of events, and the endpoints its transitions named.
    pub(super) fn apply(&self, statuses: &[EndpointStatus], named: &HashSet<EndpointId>) {
        let mut unknown: Vec<EndpointId> = Vec::new();
        if !statuses.is_empty() {
            self.list.update(|list| {
                for status in statuses {
                    if !apply_status(list, status) {
                        unknown.push(status.endpoint_id);
                    }
                }
            });
        }
        self.list.with_untracked(|list| {
            unknown.extend(
                named
                    .iter()
                    .filter(|id| !list.iter().any(|e| e.endpoint_id == **id)),
            )
        });
        let fresh = self.asked.try_update_value(|asked| {
            unknown
                .into_iter()
                .fold(false, |fresh, id| asked.insert(id) | fresh)
        });
        if fresh == Some(true) {
            self.refresh();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lifeline_model::{EndpointReport, Timestamp};

    fn summary(n: u128, online: bool) -> EndpointSummary {
        EndpointSummary {
            endpoint_id: EndpointId::from_u128(n),
            name: format!("e{n}"),
            status: if online {
                Presence::Online
            } else {
                Presence::Offline
            },
            online,
            last_heartbeat: None,
            report: None,
            created_at: Timestamp::from_micros(1),
            owner: None,
            public: false,
        }
    }

    #[test]
    fn a_status_change_from_the_stream_updates_the_endpoint() {
        let mut list = vec![summary(1, false), summary(2, true)];
        let status = EndpointStatus {
            endpoint_id: EndpointId::from_u128(1),
            name: "e1".into(),
            online: true,
            last_heartbeat: Some(Timestamp::from_micros(5_000_000)),
            report: Some(EndpointReport::default()),
        };
        assert!(apply_status(&mut list, &status));
        assert!(list[0].online);
        assert_eq!(list[0].status, Presence::Online);
        assert_eq!(list[0].last_heartbeat, status.last_heartbeat);
        assert!(list[0].report.is_some());
        assert!(list[1].online, "other endpoints are left alone");

        // Going offline keeps the last heartbeat and report it had.
        let offline = EndpointStatus {
            online: false,
            last_heartbeat: None,
            report: None,
            ..status.clone()
        };
        assert!(apply_status(&mut list, &offline));
        assert!(!list[0].online);
        assert_eq!(list[0].status, Presence::Offline);
        assert_eq!(list[0].last_heartbeat, status.last_heartbeat);
        assert!(list[0].report.is_some());

        let stranger = EndpointStatus {
            endpoint_id: EndpointId::from_u128(3),
            ..status
        };
        assert!(
            !apply_status(&mut list, &stranger),
            "unknown: fetch the list"
        );
    }
}

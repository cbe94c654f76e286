//! Liveness: which endpoints are online, when a silent one is lost, and the monitor that acts
//! on it (declaring endpoints offline, retrying what they held, sweeping unacknowledged
//! dispatches, dispatching waiting tasks).

use std::collections::HashSet;
use std::time::{Duration, Instant};

use lifeline_model::{EndpointId, EndpointReport, EndpointStatus, Timestamp};
use tokio::sync::watch;

use super::{Forwarder, Inner};
use crate::now;
use crate::store::StoreResult;

/// What the forwarder knows of an endpoint's health.
#[derive(Clone, Debug)]
pub struct Liveness {
    pub name: String,
    pub online: bool,
    pub last_heartbeat: Option<Timestamp>,
    pub report: Option<EndpointReport>,
    /// When the endpoint is lost if nothing is heard from it.
    pub(super) deadline: Instant,
    /// Whether its unfinished tasks were already retried since it was last heard from.
    pub(super) swept: bool,
}

impl Forwarder {
    /// A newly registered endpoint: offline until it connects.
    pub fn register(&self, endpoint: EndpointId, name: String) {
        let l = Liveness {
            name,
            online: false,
            last_heartbeat: None,
            report: None,
            deadline: Instant::now(),
            swept: true,
        };
        self.lock().live.insert(endpoint, l);
    }

    /// A deleted endpoint: its connection is closed and it is forgotten.
    pub fn forget(&self, endpoint: EndpointId) {
        let mut inner = self.lock();
        inner.conns.remove(&endpoint);
        inner.live.remove(&endpoint);
    }

    /// Marks the endpoint heard from now; returns its status if it just came online.
    pub(super) fn heard_from(
        &self,
        endpoint: EndpointId,
        report: Option<EndpointReport>,
    ) -> Option<EndpointStatus> {
        let mut inner = self.lock();
        let live = inner.live.get_mut(&endpoint)?;
        live.deadline = Instant::now() + self.timings.heartbeat_threshold;
        live.swept = false;
        live.last_heartbeat = Some(now());
        if report.is_some() {
            live.report = report;
        }
        if live.online {
            return None;
        }
        live.online = true;
        Some(status_of(endpoint, live))
    }

    /// The endpoint closed its connection cleanly: it is offline now, not after the heartbeat
    /// threshold, and the monitor's next tick requeues what it held (unless it reconnects
    /// first and says it still holds it). Returns its status if it was online.
    pub(super) fn closed(&self, endpoint: EndpointId) -> Option<EndpointStatus> {
        let mut inner = self.lock();
        if inner.conns.contains_key(&endpoint) {
            // A newer connection replaced this one.
            return None;
        }
        let live = inner.live.get_mut(&endpoint)?;
        live.deadline = Instant::now();
        if !live.online {
            return None;
        }
        live.online = false;
        Some(status_of(endpoint, live))
    }

    pub(super) async fn announce(&self, status: EndpointStatus) {
        let at = status.last_heartbeat.unwrap_or_else(now);
        if let Err(error) = self
            .store
            .write(move |ctx| ctx.endpoint_event(status, at))
            .await
        {
            tracing::warn!(%error, "could not record an endpoint status change");
        }
    }

    /// Runs until `shutdown` changes: see the module documentation.
    pub async fn monitor(&self, mut shutdown: watch::Receiver<bool>) {
        let tick = (self.timings.heartbeat_period / 4)
            .clamp(Duration::from_millis(50), Duration::from_secs(1));
        let mut interval = tokio::time::interval(tick);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = interval.tick() => {}
                _ = shutdown.changed() => return,
            }
            if let Err(error) = self.tick().await {
                tracing::warn!(%error, "forwarder monitor tick failed");
            }
        }
    }

    async fn tick(&self) -> StoreResult<()> {
        let now_instant = Instant::now();
        let threshold = self.timings.heartbeat_threshold.as_secs_f64();
        let (lost, connected) = {
            let mut inner = self.lock();
            let mut lost = Vec::new();
            let Inner { conns, live, .. } = &mut *inner;
            for (id, l) in live.iter_mut() {
                if now_instant >= l.deadline && !l.swept {
                    l.swept = true;
                    let went_offline = l.online.then(|| {
                        l.online = false;
                        status_of(*id, l)
                    });
                    // Closing the session: a silent endpoint must reconnect.
                    conns.remove(id);
                    lost.push((*id, went_offline));
                }
            }
            (lost, conns.keys().copied().collect::<Vec<_>>())
        };
        for (endpoint, status) in lost {
            if let Some(status) = status {
                tracing::info!(%endpoint, "endpoint lost: no heartbeat within the threshold");
                self.announce(status).await;
            }
            let reason = format!("endpoint lost: no heartbeat for {threshold} s");
            self.retry_in_flight(endpoint, HashSet::new(), reason)
                .await?;
        }
        self.sweep_unacknowledged().await?;
        for endpoint in connected {
            self.dispatch_waiting(endpoint).await?;
        }
        Ok(())
    }
}

fn status_of(endpoint: EndpointId, l: &Liveness) -> EndpointStatus {
    EndpointStatus {
        endpoint_id: endpoint,
        name: l.name.clone(),
        online: l.online,
        last_heartbeat: l.last_heartbeat,
        report: l.report.clone(),
    }
}

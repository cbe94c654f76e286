//! What the endpoint tells the service about itself: the hello that opens a connection and the
//! per-executor heartbeat reports.

use std::collections::HashSet;

use lifeline_model::{EndpointReport, ExecutorReport, StateCounts, TaskId};
use lifeline_protocol::FromEndpoint;

use super::Interchange;

impl Interchange {
    /// The hello for a new connection: every task held, and every task whose end waits in
    /// the outbox.
    pub(super) fn hello(&self) -> anyhow::Result<String> {
        let mut tasks: HashSet<TaskId> = self.tasks.keys().copied().collect();
        tasks.extend(self.outbox.finishing());
        Ok(serde_json::to_string(&FromEndpoint::Hello {
            tasks: tasks.into_iter().collect(),
            window: Some(self.window),
        })?)
    }

    pub(super) fn send_heartbeat(&self) {
        let Some(to_service) = &self.to_service else {
            return;
        };
        let report = EndpointReport {
            at: crate::now(),
            executors: self.reports(),
            rejected_connections: self.rejected_connections,
        };
        if let Ok(text) = serde_json::to_string(&FromEndpoint::Heartbeat { report }) {
            let _ = to_service.send(text);
        }
    }

    /// One report per executor.
    pub(super) fn reports(&self) -> Vec<ExecutorReport> {
        let mut reports: Vec<ExecutorReport> = self
            .executors
            .iter()
            .enumerate()
            .map(|(i, e)| ExecutorReport {
                label: e.config.label.clone(),
                provider: e.provider.name().into(),
                blocks: self.block_reports(i),
                provider_error: e.provider_error.clone(),
                ..ExecutorReport::default()
            })
            .collect();
        for m in self.managers.values() {
            let r = &mut reports[m.executor];
            r.managers += 1;
            r.total_workers += m.workers as u32;
            r.busy_workers += m.busy;
        }
        let mut counts: Vec<StateCounts> = vec![StateCounts::default(); self.executors.len()];
        for t in self.tasks.values() {
            counts[t.executor].add(t.view.state, 1);
        }
        for (r, c) in reports.iter_mut().zip(counts) {
            r.idle_workers = r.total_workers.saturating_sub(r.busy_workers);
            r.tasks = c;
        }
        reports
    }
}

//! Reports: what an endpoint says its tasks did, checked by the model in the store and
//! acknowledged with what was refused. Refusals are counted, and logged only so many times per
//! endpoint per interval.
//!
//! A refusal is final for the agent: it stops working on the task's attempt and forgets it. A
//! task the endpoint had acknowledged would then wait at the endpoint for reports that never
//! come, and nothing else would move it while the endpoint stays connected; so the refusal also
//! sends it back to the forwarder by the model's system-failure rule, to be dispatched again. (A
//! task still `dispatched-to-ep` needs nothing more: the acknowledgement timeout retries it.)

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use lifeline_model::{EndpointId, State};
use lifeline_protocol::{Rejection, Reported, ToEndpoint};

use super::Forwarder;
use super::retry::retry_or_fail;
use crate::log_limit::Verdict;
use crate::store::{Outcome, Proposal, StoreResult};

/// Refused reports logged per endpoint per [`REPORT_LOG_INTERVAL`]; the rest are summarised.
pub(super) const REPORT_LOG_LINES: u32 = 20;
pub(super) const REPORT_LOG_INTERVAL: Duration = Duration::from_secs(60);

impl Forwarder {
    /// Stores a report batch and answers it with an acknowledgement listing what was refused.
    #[tracing::instrument(skip_all, fields(endpoint_id = %endpoint, batch, transitions = transitions.len()))]
    pub(super) async fn report(
        &self,
        endpoint: EndpointId,
        batch: u64,
        transitions: Vec<Reported>,
    ) -> StoreResult<ToEndpoint> {
        let limit = self.timings.max_result_bytes;
        let rejected = self
            .store
            .write(move |ctx| {
                let mut rejected = Vec::new();
                for r in transitions {
                    let (task_id, state, attempt) = (r.task_id, r.state, r.attempt);
                    let proposal = reported_proposal(endpoint, r, limit);
                    let message = match ctx.transition(proposal)? {
                        Outcome::Applied { .. } | Outcome::Duplicate => continue,
                        Outcome::Illegal(error) => {
                            let message = error.to_string();
                            if ctx.task(task_id)?.is_some_and(|row| {
                                row.task.state.at_endpoint()
                                    && row.task.state != State::DispatchedToEp
                            }) {
                                let reason = format!(
                                    "system failure: the endpoint dropped the task when its report was refused ({message})"
                                );
                                retry_or_fail(ctx, task_id, crate::now(), &reason)?;
                            }
                            message
                        }
                        Outcome::Forbidden => "the task belongs to another endpoint".to_owned(),
                        Outcome::Unknown => "unknown task".to_owned(),
                    };
                    rejected.push(Rejection {
                        task_id,
                        state,
                        attempt,
                        message,
                    });
                }
                Ok(rejected)
            })
            .await?;
        if !rejected.is_empty() {
            self.illegal_reports
                .fetch_add(rejected.len() as u64, Ordering::Relaxed);
            let mut log = self.report_log.lock().unwrap_or_else(|e| e.into_inner());
            let now = Instant::now();
            for r in &rejected {
                match log.check(endpoint, now) {
                    Verdict::Log { suppressed } => {
                        if suppressed > 0 {
                            tracing::warn!(%endpoint, suppressed, "left out of the log: more rejected transitions from this endpoint");
                        }
                        tracing::warn!(%endpoint, task = %r.task_id, state = %r.state, message = %r.message, "rejected a reported transition");
                    }
                    Verdict::Suppress => {}
                }
            }
        }
        Ok(ToEndpoint::Ack { batch, rejected })
    }
}

/// A transition the endpoint reported, as a proposal; an oversized result fails the task.
fn reported_proposal(endpoint: EndpointId, r: Reported, limit: usize) -> Proposal {
    let mut p = Proposal {
        task_id: r.task_id,
        to: r.state,
        actor: r.actor,
        attempt: Some(r.attempt),
        at: r.at,
        reason: r.reason,
        result: r.result.map(|raw| raw.get().to_owned()),
        reporter: Some(endpoint),
    };
    if let Some(result) = p.result.as_ref().filter(|r| r.len() > limit) {
        p.reason = Some(format!(
            "MaxResultSizeExceeded: the result is {} bytes, more than the limit of {limit} bytes",
            result.len()
        ));
        p.to = State::Failed;
        p.result = None;
    }
    p
}

//! Retries: the model's one system-failure rule applied to whatever a lost endpoint, a
//! reconnected agent or an unacknowledged dispatch interrupted.

use std::collections::HashSet;

use lifeline_model::{Actor, EndpointId, State, TaskId, Timestamp, system_failure};

use super::{Forwarder, PAGE, forwarder_move};
use crate::now;
use crate::store::{self, Ctx, Outcome, StoreResult};

impl Forwarder {
    /// Retries (or, with no retries left, fails) every unfinished task the endpoint held,
    /// except those in `keep`: after it was lost, nothing is kept; after its agent reconnected,
    /// what the agent still holds.
    #[tracing::instrument(skip_all, fields(endpoint_id = %endpoint, %reason))]
    pub(super) async fn retry_in_flight(
        &self,
        endpoint: EndpointId,
        keep: HashSet<TaskId>,
        reason: String,
    ) -> StoreResult<()> {
        let mut after = 0;
        loop {
            let rows = self
                .store
                .read(move |c| store::tasks_in_states(c, endpoint, &at_endpoint(), after, PAGE))
                .await?;
            let Some(last) = rows.last() else {
                return Ok(());
            };
            after = last.seq;
            let lost: Vec<TaskId> = rows
                .iter()
                .map(|r| r.task.task_id)
                .filter(|id| !keep.contains(id))
                .collect();
            if lost.is_empty() {
                continue;
            }
            let reason = reason.clone();
            let at = now();
            self.store
                .write(move |ctx| {
                    for id in lost {
                        retry_or_fail(ctx, id, at, &reason)?;
                    }
                    Ok(())
                })
                .await?;
        }
    }

    /// Retries dispatches not acknowledged within the timeout.
    pub(super) async fn sweep_unacknowledged(&self) -> StoreResult<()> {
        let timeout = self.timings.ack_timeout;
        let cutoff = Timestamp::from_micros(now().as_micros() - timeout.as_micros() as i64);
        let ids = self
            .store
            .read(move |c| store::tasks_since(c, State::DispatchedToEp, cutoff, PAGE))
            .await?;
        if ids.is_empty() {
            return Ok(());
        }
        let reason = format!(
            "dispatch not acknowledged by the endpoint within {} s",
            timeout.as_secs_f64()
        );
        let at = now();
        self.store
            .write(move |ctx| {
                for id in ids {
                    retry_or_fail(ctx, id, at, &reason)?;
                }
                Ok(())
            })
            .await
    }
}

/// A system failure at the forwarder, decided by the model's one rule: the task waits for the
/// endpoint again (requeued, or retried if it was running), or fails with no retry left.
pub(super) fn retry_or_fail(
    ctx: &mut Ctx<'_>,
    task: TaskId,
    at: Timestamp,
    reason: &str,
) -> StoreResult<Outcome> {
    let Some(row) = ctx.task(task)? else {
        return Ok(Outcome::Unknown);
    };
    let t = &row.task;
    match system_failure(
        t.state,
        State::WaitingForEp,
        Actor::Forwarder,
        t.attempt,
        t.max_retries,
        reason,
    ) {
        Ok(recovery) => {
            ctx.transition(forwarder_move(task, recovery.to, at, Some(recovery.reason)))
        }
        Err(error) => Ok(Outcome::Illegal(error)),
    }
}

/// The states in which a task is in its endpoint's hands.
fn at_endpoint() -> Vec<State> {
    State::ALL.into_iter().filter(|s| s.at_endpoint()).collect()
}

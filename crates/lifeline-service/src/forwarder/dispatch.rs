//! Dispatch: tasks leave `waiting-for-ep` for a connected endpoint, with the definitions of
//! the functions that connection has not been sent yet.

use std::collections::HashSet;

use lifeline_model::{EndpointId, FunctionId, State, TaskId};
use lifeline_protocol::{Assignment, FunctionDef, ToEndpoint};
use serde_json::value::RawValue;

use super::{Forwarder, Inner, PAGE, forwarder_move};
use crate::now;
use crate::store::{self, Ctx, Outcome, StoreResult, TaskRow, registry};

impl Forwarder {
    /// Sends tasks already moved to `dispatched-to-ep` to the endpoint, with the definitions of
    /// functions it has not been sent on this connection.
    async fn send_tasks(&self, endpoint: EndpointId, tasks: Vec<Assignment>) -> StoreResult<()> {
        if tasks.is_empty() {
            return Ok(());
        }
        let wanted: HashSet<FunctionId> = tasks.iter().map(|t| t.function_id).collect();
        let missing: Vec<FunctionId> = {
            let inner = self.lock();
            wanted
                .iter()
                .filter(|f| !inner.functions.contains_key(f))
                .copied()
                .collect()
        };
        for id in missing {
            if let Some(row) = self.store.read(move |c| registry::function(c, id)).await? {
                self.lock().functions.insert(id, row.spec);
            }
        }
        let mut inner = self.lock();
        let Inner {
            conns, functions, ..
        } = &mut *inner;
        let Some(conn) = conns.get_mut(&endpoint) else {
            // Gone meanwhile: the tasks stay dispatched until the acknowledgement timeout retries them.
            return Ok(());
        };
        let functions: Vec<FunctionDef> = wanted
            .into_iter()
            .filter(|f| conn.sent_functions.insert(*f))
            .filter_map(|f| {
                functions.get(&f).map(|spec| FunctionDef {
                    function_id: f,
                    spec: spec.clone(),
                })
            })
            .collect();
        let message = ToEndpoint::Tasks { functions, tasks };
        if let Ok(text) = serde_json::to_string(&message) {
            let _ = conn.tx.send(text);
        }
        Ok(())
    }

    /// Sends tasks just stored for a connected endpoint.
    pub async fn dispatch(&self, endpoint: EndpointId, tasks: Vec<Assignment>) {
        if let Err(error) = self.send_tasks(endpoint, tasks).await {
            tracing::warn!(%error, %endpoint, "could not dispatch tasks");
        }
    }

    /// Dispatches every task of a connected endpoint waiting in `waiting-for-ep`.
    #[tracing::instrument(skip_all, fields(endpoint_id = %endpoint))]
    pub async fn dispatch_waiting(&self, endpoint: EndpointId) -> StoreResult<()> {
        let mut after = 0;
        while self.is_connected(endpoint) {
            let rows = self
                .store
                .read(move |c| {
                    store::tasks_in_states(c, endpoint, &[State::WaitingForEp], after, PAGE)
                })
                .await?;
            let Some(last) = rows.last() else { break };
            after = last.seq;
            let at = now();
            let assignments = self
                .store
                .write(move |ctx| {
                    let mut out = Vec::new();
                    for row in rows {
                        let outcome = ctx.transition(forwarder_move(
                            row.task.task_id,
                            State::DispatchedToEp,
                            at,
                            None,
                        ))?;
                        if let Outcome::Applied { attempt, .. } = outcome {
                            out.push(assignment(ctx, &row, attempt)?);
                        }
                    }
                    Ok(out)
                })
                .await?;
            self.send_tasks(endpoint, assignments).await?;
        }
        Ok(())
    }

    /// Asks the endpoint to stop these tasks, if it is connected.
    pub fn cancel(&self, endpoint: EndpointId, task_ids: Vec<TaskId>) {
        if let Some(conn) = self.lock().conns.get(&endpoint)
            && let Ok(text) = serde_json::to_string(&ToEndpoint::Cancel { task_ids })
        {
            let _ = conn.tx.send(text);
        }
    }
}

/// The message that sends a stored task on `attempt`.
pub(crate) fn assignment(ctx: &Ctx<'_>, row: &TaskRow, attempt: u32) -> StoreResult<Assignment> {
    let (args, kwargs) = store::task_payload(ctx.conn(), row.seq)?;
    let raw = |text: String| {
        RawValue::from_string(text).map_err(|e| {
            store::StoreError::Db(rusqlite::Error::FromSqlConversionFailure(
                0,
                rusqlite::types::Type::Text,
                e.into(),
            ))
        })
    };
    Ok(Assignment {
        task_id: row.task.task_id,
        function_id: row.task.function_id,
        attempt,
        max_retries: row.task.max_retries,
        args: raw(args)?,
        kwargs: raw(kwargs)?,
    })
}

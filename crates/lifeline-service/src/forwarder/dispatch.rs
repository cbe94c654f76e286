//! Dispatch: tasks leave `waiting-for-ep` for a connected endpoint, with the definitions of
//! the functions that connection has not been sent yet.
//!
//! An endpoint takes at most its window of tasks at once (sent and not finished, as the
//! statistics count them); the rest wait at the service, oldest first, and go as earlier ones
//! finish, a quarter window at a time, by one call per endpoint at a time. Whoever is about to
//! dispatch takes room in the window with a [`Reservation`] before its write, and gives it back
//! once the write is committed, when the statistics count the tasks as held: concurrent
//! dispatches do not overfill a window. (A reconnection starts its window afresh while a
//! dispatch of the old connection may still be finishing, and a cancelled task leaves the window
//! at once: either may overfill it for a moment, by at most one reservation.)

use std::collections::HashSet;

use lifeline_model::{EndpointId, FunctionId, State, TaskId};
use lifeline_protocol::{Assignment, FunctionDef, ToEndpoint};
use serde_json::value::RawValue;

use super::{Forwarder, Inner, PAGE, forwarder_move};
use crate::now;
use crate::store::{self, Ctx, Outcome, StoreResult, TaskRow, registry};

/// Room taken in an endpoint's window for tasks about to be dispatched; given back when dropped.
#[derive(Debug)]
pub(crate) struct Reservation<'a> {
    forwarder: &'a Forwarder,
    endpoint: EndpointId,
    conn_id: u64,
    /// How many tasks may be dispatched.
    pub room: usize,
    /// The endpoint's window, if it has one.
    pub window: Option<u64>,
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        let room = self.room as u64;
        self.forwarder
            .with_conn(self.endpoint, self.conn_id, |conn| {
                conn.reserved = conn.reserved.saturating_sub(room);
            });
    }
}

/// The right to dispatch an endpoint's waiting tasks, held by one call at a time; given up when
/// dropped (an error, or the connection gone).
#[derive(Debug)]
struct Turn<'a> {
    forwarder: &'a Forwarder,
    endpoint: EndpointId,
    conn_id: u64,
    done: bool,
}

impl Turn<'_> {
    /// Ends a pass: `true` if another call asked for one more meanwhile (the turn is kept),
    /// `false` when the turn is given up.
    fn finish(&mut self) -> bool {
        let again = self
            .forwarder
            .with_conn(self.endpoint, self.conn_id, |conn| {
                let again = std::mem::take(&mut conn.look_again);
                conn.dispatching = again;
                again
            })
            .unwrap_or(false);
        self.done = !again;
        again
    }
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.forwarder
                .with_conn(self.endpoint, self.conn_id, |conn| conn.dispatching = false);
        }
    }
}

/// Whether a reservation may go ahead of tasks already waiting.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) enum Queue {
    /// New tasks: none is dispatched while older ones wait.
    Behind,
    /// The waiting tasks themselves, oldest first.
    Head,
}

impl Forwarder {
    /// Takes room for up to `wanted` tasks in the endpoint's window; `None` if it is not
    /// connected.
    pub(crate) fn reserve(
        &self,
        endpoint: EndpointId,
        wanted: usize,
        queue: Queue,
    ) -> Option<Reservation<'_>> {
        let mut inner = self.lock();
        let conn = inner.conns.get_mut(&endpoint)?;
        // Lock order: the forwarder's books, then the statistics (nobody takes them the other
        // way round).
        let (_, counts) = self.store.with_stats(|book| book.counts_of(endpoint));
        let waiting = counts.get(State::WaitingForEp);
        let room = match queue {
            Queue::Behind if waiting > 0 => 0,
            Queue::Head if waiting == 0 => 0,
            _ => match conn.window {
                None => wanted,
                Some(window) => {
                    let held: u64 = State::ALL
                        .into_iter()
                        .filter(|s| s.at_endpoint())
                        .map(|s| counts.get(s))
                        .sum();
                    let free = window.saturating_sub(held + conn.reserved);
                    // Waiting tasks go in batches of a quarter window at least: one message of
                    // many tasks costs both sides far less than many messages of a few.
                    if queue == Queue::Head && free < (window / 4).max(1) {
                        0
                    } else {
                        wanted.min(usize::try_from(free).unwrap_or(usize::MAX))
                    }
                }
            },
        };
        conn.reserved += room as u64;
        Some(Reservation {
            forwarder: self,
            endpoint,
            conn_id: conn.id,
            room,
            window: conn.window,
        })
    }

    /// Sends tasks already moved to `dispatched-to-ep` to the endpoint, with the definitions of
    /// functions it has not been sent on this connection.
    async fn send_tasks(&self, endpoint: EndpointId, tasks: Vec<Assignment>) -> StoreResult<()> {
        let Some(tasks) = self.send_now(endpoint, tasks) else {
            return Ok(());
        };
        let missing: HashSet<FunctionId> = {
            let inner = self.lock();
            tasks
                .iter()
                .map(|t| t.function_id)
                .filter(|f| !inner.functions.contains_key(f))
                .collect()
        };
        for id in missing {
            if let Some(row) = self.store.read(move |c| registry::function(c, id)).await? {
                self.lock().functions.insert(id, row.spec);
            }
        }
        send_locked(&mut self.lock(), endpoint, tasks);
        Ok(())
    }

    /// Sends tasks already moved to `dispatched-to-ep` if the forwarder holds the definitions of
    /// all their functions (it does once a function has been dispatched); otherwise hands them
    /// back, for [`Forwarder::dispatch`] to look the definitions up first. Never waits.
    pub fn send_now(
        &self,
        endpoint: EndpointId,
        tasks: Vec<Assignment>,
    ) -> Option<Vec<Assignment>> {
        if tasks.is_empty() {
            return None;
        }
        let mut inner = self.lock();
        if tasks
            .iter()
            .any(|t| !inner.functions.contains_key(&t.function_id))
        {
            return Some(tasks);
        }
        send_locked(&mut inner, endpoint, tasks);
        None
    }

    /// Sends tasks just stored for a connected endpoint.
    pub async fn dispatch(&self, endpoint: EndpointId, tasks: Vec<Assignment>) {
        if let Err(error) = self.send_tasks(endpoint, tasks).await {
            tracing::warn!(%error, %endpoint, "could not dispatch tasks");
        }
    }

    /// Dispatches the tasks of a connected endpoint waiting in `waiting-for-ep`, oldest first,
    /// as many as its window has room for. One call at a time works for an endpoint: a call
    /// meanwhile only asks the working one to look again once it is done.
    #[tracing::instrument(skip_all, fields(endpoint_id = %endpoint))]
    pub async fn dispatch_waiting(&self, endpoint: EndpointId) -> StoreResult<()> {
        let Some(mut turn) = self.dispatch_turn(endpoint) else {
            return Ok(());
        };
        loop {
            self.dispatch_pages(endpoint).await?;
            if !turn.finish() {
                return Ok(());
            }
        }
    }

    /// Takes the endpoint's dispatching turn, or asks its holder to look again.
    fn dispatch_turn(&self, endpoint: EndpointId) -> Option<Turn<'_>> {
        let mut inner = self.lock();
        let conn = inner.conns.get_mut(&endpoint)?;
        if conn.dispatching {
            conn.look_again = true;
            return None;
        }
        conn.dispatching = true;
        conn.look_again = false;
        Some(Turn {
            forwarder: self,
            endpoint,
            conn_id: conn.id,
            done: false,
        })
    }

    /// One pass over the waiting tasks, while the window has room.
    async fn dispatch_pages(&self, endpoint: EndpointId) -> StoreResult<()> {
        let mut after = 0;
        loop {
            let Some(reservation) = self.reserve(endpoint, PAGE, Queue::Head) else {
                break;
            };
            let room = reservation.room;
            if room == 0 {
                break;
            }
            let rows = self
                .store
                .read(move |c| {
                    store::tasks_in_states(c, endpoint, &[State::WaitingForEp], after, room)
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
            drop(reservation);
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

/// Sends tasks to the endpoint's connection, with the definitions of their functions it has not
/// been sent yet.
fn send_locked(inner: &mut Inner, endpoint: EndpointId, tasks: Vec<Assignment>) {
    let Inner {
        conns, functions, ..
    } = inner;
    let Some(conn) = conns.get_mut(&endpoint) else {
        // Gone meanwhile: the tasks stay dispatched until the acknowledgement timeout retries them.
        return;
    };
    let functions: Vec<FunctionDef> = tasks
        .iter()
        .filter(|t| conn.sent_functions.insert(t.function_id))
        .filter_map(|t| {
            functions.get(&t.function_id).map(|spec| FunctionDef {
                function_id: t.function_id,
                spec: spec.clone(),
            })
        })
        .collect();
    let message = ToEndpoint::Tasks { functions, tasks };
    if let Ok(text) = serde_json::to_string(&message) {
        let _ = conn.tx.send(text);
    }
}

/// The message that sends a stored task on `attempt`.
pub(crate) fn assignment(ctx: &Ctx<'_>, row: &TaskRow, attempt: u32) -> StoreResult<Assignment> {
    let (args, kwargs) = ctx.payload(row)?;
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

//! The task list's window over the service's listing: the few hundred rows around what is on
//! screen, fetched page by page from `GET /v1/tasks`, instead of a copy of every task. Kept
//! without any DOM so that it can be tested natively.
//!
//! The listing is newest first, and a page is asked for with a cursor: "tasks stored before
//! this sequence number". The window remembers a few anchors (a position in the list and the
//! cursor that starts there) from the pages it fetched, and finds the cursor for a position it
//! has not seen by interpolating between them; with the total from the counts as the last
//! anchor, a jump to any position (the end of a million tasks included) is one request. Where
//! stored tasks are dense in sequence numbers (the unfiltered list) the position is exact;
//! elsewhere it is close, and rows are always in the service's order.
//!
//! Searching ids, sorting by state or by time in state and the edge filter need the rows side
//! by side: they cover the newest [`SCAN`] tasks of the listing, held at once (a bounded set).
//!
//! Streamed transitions change the rows in the window (once the counts accepted them); a new
//! task enters it when the window is at the top, and otherwise moves the window down by one.
//! What the window cannot place (a task entering a filtered state, a task crossing the filtered
//! edge) marks it stale, and the session fetches it again.

use std::collections::{HashMap, HashSet};

use lifeline_model::{
    FunctionId, State, StateCounts, TaskGroupId, TaskId, TaskPage, TaskView, TransitionEvent,
    TransitionRecord,
};

use crate::live::TaskRow;

/// Rows in a window of the paged list: some screens' worth around the visible rows.
pub const PAGE: usize = 300;
/// Rows held for searching, sorting by state or time in state, and the edge filter: the
/// newest of the listing (also the most the service answers in one page).
pub const SCAN: usize = 10_000;
/// Anchors kept (the most recent ones).
const ANCHORS: usize = 32;

/// What the list asks the service for, beyond the session's endpoints and scope.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Query {
    /// Any of these states; empty for all.
    pub states: Vec<State>,
    pub function: Option<FunctionId>,
    /// Only tasks that took this edge (newest crossing first).
    pub edge: Option<(State, State)>,
    /// Hold the newest [`SCAN`] rows at once instead of a window that follows the screen.
    pub scan: bool,
    /// The list as it was right after this event (a replayed moment): streamed transitions
    /// do not move it.
    pub at_seq: Option<u64>,
    /// Only tasks that failed or were retried for this cause (a key from `/v1/failures`).
    pub failure: Option<String>,
    /// Only the tasks of this submission.
    pub group: Option<TaskGroupId>,
}

impl Query {
    /// Whether a task in `state`, a call of `function`, is listed.
    fn lists(&self, state: State, function: FunctionId) -> bool {
        (self.states.is_empty() || self.states.contains(&state))
            && self.function.is_none_or(|f| f == function)
    }

    /// How many tasks the listing holds, when the counts say: without a function, edge, failure
    /// or group filter, the count of its states.
    pub fn total(&self, counts: &StateCounts) -> Option<usize> {
        if self.function.is_some()
            || self.edge.is_some()
            || self.failure.is_some()
            || self.group.is_some()
        {
            return None;
        }
        let n = if self.states.is_empty() {
            counts.total()
        } else {
            self.states.iter().map(|&s| counts.get(s)).sum()
        };
        Some(n as usize)
    }

    /// Rows held at once.
    pub fn capacity(&self) -> usize {
        if self.scan { SCAN } else { PAGE }
    }
}

/// One request for a page: where it goes in the list and how to ask for it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fetch {
    pub query: Query,
    /// The list position of the page's first row.
    pub at: usize,
    /// `None` for the newest page.
    pub cursor: Option<i64>,
    pub limit: usize,
}

/// The rows held, where they sit in the list, and what is known of the rest.
#[derive(Clone, Debug, Default)]
pub struct Window {
    query: Query,
    /// The list position of `rows[0]`.
    start: usize,
    /// Newest first.
    rows: Vec<TaskRow>,
    index: HashMap<TaskId, usize>,
    /// The state each row left last, when the dashboard saw it move.
    came_from: HashMap<TaskId, State>,
    /// Rows that took a streamed transition since they were fetched, so are known current.
    synced: HashSet<TaskId>,
    /// Where the listing was seen to end.
    end: Option<usize>,
    /// (position, cursor): the row at `position` is the newest stored before `cursor`.
    anchors: Vec<(usize, i64)>,
    /// The last page asked for, so that an answer that cannot cover the screen is not asked
    /// for again and again.
    last: Option<Fetch>,
    loaded: bool,
    stale: bool,
    /// Streamed transitions of the task whose detail is open, counted.
    watched: Option<(TaskId, u64)>,
}

impl Window {
    pub fn new(query: Query) -> Self {
        Self {
            query,
            ..Self::default()
        }
    }

    pub fn query(&self) -> &Query {
        &self.query
    }

    /// Whether a first page has arrived.
    pub fn loaded(&self) -> bool {
        self.loaded
    }

    /// The list position of the first row held.
    pub fn start(&self) -> usize {
        self.start
    }

    /// The rows held, newest first.
    pub fn rows(&self) -> &[TaskRow] {
        &self.rows
    }

    /// A row held, by id.
    pub fn task(&self, id: TaskId) -> Option<&TaskRow> {
        self.index.get(&id).map(|&i| &self.rows[i])
    }

    /// The state a held row left last, if the dashboard saw it move.
    pub fn came_from(&self, id: TaskId) -> Option<State> {
        self.came_from.get(&id).copied()
    }

    /// Where the listing ends, once a page reached it.
    pub fn end(&self) -> Option<usize> {
        self.end
    }

    /// Whether the listing has rows beyond those held.
    pub fn more(&self) -> bool {
        self.end.is_none_or(|e| e > self.start + self.rows.len())
    }

    /// How many tasks the list holds: `total` when the counts say, otherwise what the pages
    /// showed (and one page more while the end is not seen, so that scrolling goes on).
    pub fn size(&self, total: Option<usize>) -> usize {
        match (total, self.end) {
            (Some(t), _) => t,
            (None, Some(e)) => e,
            (None, None) => self.start + self.rows.len() + self.query.capacity(),
        }
    }

    /// The page to fetch so that positions `first..=last` are held, if they are not. `total`
    /// is the list's length when the counts say it.
    pub fn fetch_for(&self, first: usize, last: usize, total: Option<usize>) -> Option<Fetch> {
        let fetch = if self.query.scan {
            self.head()
        } else {
            if self.loaded && self.covers(first, last) {
                return None;
            }
            let capacity = self.query.capacity();
            let at = first.saturating_sub(capacity / 4);
            if at <= capacity / 4 {
                self.head()
            } else {
                Fetch {
                    query: self.query.clone(),
                    at,
                    cursor: Some(self.cursor_at(at, total)),
                    limit: capacity,
                }
            }
        };
        (!self.loaded || (self.last.as_ref() != Some(&fetch) && !self.query.scan)).then_some(fetch)
    }

    /// The page that fetches the held rows again (after [`Window::mark_stale`]), if any.
    pub fn refetch(&self) -> Option<Fetch> {
        if !self.stale || !self.loaded {
            return None;
        }
        if self.start == 0 {
            return Some(self.head());
        }
        let cursor = self
            .anchors
            .iter()
            .find(|(p, _)| *p == self.start)
            .map(|(_, c)| *c)?;
        Some(Fetch {
            query: self.query.clone(),
            at: self.start,
            cursor: Some(cursor),
            limit: self.query.capacity(),
        })
    }

    fn head(&self) -> Fetch {
        Fetch {
            query: self.query.clone(),
            at: 0,
            cursor: None,
            limit: self.query.capacity(),
        }
    }

    fn covers(&self, first: usize, last: usize) -> bool {
        let held_end = self.start + self.rows.len();
        first >= self.start && (last < held_end || self.end.is_some_and(|e| e <= held_end))
    }

    /// The cursor that starts at list position `at`: between the nearest anchors around it
    /// (the end of the list, at `total`, is "before sequence number 1"), in proportion.
    fn cursor_at(&self, at: usize, total: Option<usize>) -> i64 {
        let mut anchors = self.anchors.clone();
        if let Some(t) = total.filter(|&t| t > at) {
            anchors.push((t, 1));
        }
        let below = anchors.iter().filter(|a| a.0 <= at).max_by_key(|a| a.0);
        let above = anchors.iter().filter(|a| a.0 > at).min_by_key(|a| a.0);
        let cursor = match (below, above) {
            (Some(&(pa, ca)), Some(&(pb, cb))) => {
                let share = (at - pa) as f64 / (pb - pa) as f64;
                ca - ((ca - cb) as f64 * share).round() as i64
            }
            // Past every anchor: as if every sequence number were a listed task.
            (Some(&(pa, ca)), None) => ca - (at - pa) as i64,
            (None, Some(&(pb, cb))) => cb + (pb - at) as i64,
            (None, None) => 1,
        };
        cursor.max(1)
    }

    /// Places the service's answer to `fetch`. A page that ends the listing before `total`
    /// (the interpolation overshot) is moved to end where the list ends.
    pub fn place(&mut self, fetch: Fetch, page: TaskPage, total: Option<usize>) {
        if fetch.query != self.query {
            return; // Asked for another filter.
        }
        let len = page.tasks.len();
        let next = page.next_cursor.and_then(|c| c.parse::<i64>().ok());
        let mut at = fetch.at;
        match next {
            Some(n) => self.anchor(at + len, n),
            None => {
                if let Some(t) = total.filter(|&t| at > 0 && at + len != t) {
                    at = t.saturating_sub(len);
                }
                self.end = Some(at + len);
            }
        }
        if let Some(c) = fetch.cursor {
            self.anchor(at, c);
        }
        self.start = at;
        self.rows = page.tasks;
        self.reindex();
        let index = &self.index;
        self.came_from.retain(|id, _| index.contains_key(id));
        self.synced.clear();
        self.loaded = true;
        self.stale = false;
        self.last = Some(fetch);
    }

    fn anchor(&mut self, position: usize, cursor: i64) {
        self.anchors.retain(|a| a.0 != position);
        self.anchors.push((position, cursor));
        if self.anchors.len() > ANCHORS {
            self.anchors.remove(0);
        }
    }

    fn reindex(&mut self) {
        self.index = self
            .rows
            .iter()
            .enumerate()
            .map(|(i, t)| (t.task_id, i))
            .collect();
    }

    /// Asks for the held rows again (polling brought news the window cannot place).
    pub fn mark_stale(&mut self) {
        self.stale = true;
    }

    /// Counts the streamed transitions of `task` from now on (the open task's detail).
    pub fn watch(&mut self, task: Option<TaskId>) {
        if self.watched.map(|w| w.0) != task {
            self.watched = task.map(|t| (t, 0));
        }
    }

    /// How many transitions of the watched task were streamed since it was watched.
    pub fn watched_moves(&self, task: TaskId) -> u64 {
        self.watched.filter(|w| w.0 == task).map_or(0, |w| w.1)
    }

    /// Applies a streamed transition the counts accepted. Fails with a message when it
    /// contradicts a row the stream already brought up to date.
    pub fn apply(&mut self, t: &TransitionEvent) -> Result<(), String> {
        if self.query.at_seq.is_some() {
            return Ok(()); // The past does not move.
        }
        if let Some((task, moves)) = &mut self.watched
            && *task == t.task_id
        {
            *moves += 1;
        }
        let crossed = self.query.edge == t.from.map(|from| (from, t.to)) && t.from.is_some();
        // A failure or a retry may join the cause's list.
        let failed = self.query.failure.is_some() && t.reason.is_some();
        if crossed || failed {
            self.stale = true;
        }
        match self.index.get(&t.task_id).copied() {
            Some(i) => self.move_row(i, t),
            None if t.from.is_none() => {
                self.arrive(t);
                Ok(())
            }
            None => {
                if !self.query.states.is_empty() && self.query.lists(t.to, t.function_id) {
                    self.stale = true;
                }
                Ok(())
            }
        }
    }

    fn move_row(&mut self, i: usize, t: &TransitionEvent) -> Result<(), String> {
        let row = &mut self.rows[i];
        if (row.state == t.to && row.attempt == t.attempt) || t.at < row.since {
            return Ok(()); // The row was fetched after this event.
        }
        let first_since_fetched = self.synced.insert(t.task_id);
        let left = row.state;
        if Some(left) == t.from {
            let mut view = TaskView {
                state: row.state,
                attempt: row.attempt,
                max_retries: row.max_retries,
                since: row.since,
            };
            let record = TransitionRecord {
                state: t.to,
                actor: t.actor,
                attempt: t.attempt,
                at: t.at,
                reason: None,
            };
            view.apply(&record).map_err(|e| e.to_string())?;
            row.state = view.state;
            row.attempt = view.attempt;
            row.since = view.since;
        } else if first_since_fetched {
            // Read before its last moves: the stream is newer (the counts checked the edge).
            row.state = t.to;
            row.attempt = t.attempt;
            row.since = t.at;
        } else {
            return Err(format!(
                "out of order: the task is {} (attempt {}) but the event moves it from {}",
                row.state,
                row.attempt,
                t.from.map_or("nothing", State::wire)
            ));
        }
        let (state, function) = (row.state, row.function_id);
        self.came_from.insert(t.task_id, t.from.unwrap_or(left));
        if !self.query.lists(state, function) && self.query.edge.is_none() {
            self.rows.remove(i);
            self.reindex();
            if let Some(e) = &mut self.end {
                *e = e.saturating_sub(1);
            }
        }
        Ok(())
    }

    /// A new task: at the top of the list, so in the window when it shows the top, and one
    /// position further down for everything else.
    fn arrive(&mut self, t: &TransitionEvent) {
        let Some(task_group_id) = t.task_group_id else {
            return; // Without its submission there is no row to show.
        };
        // A new task took no edge yet, failed for no cause yet, and may be of another submission.
        let elsewhere = self.query.group.is_some_and(|g| g != task_group_id);
        if self.query.edge.is_some()
            || self.query.failure.is_some()
            || elsewhere
            || !self.query.lists(t.to, t.function_id)
        {
            return;
        }
        for a in &mut self.anchors {
            a.0 += 1;
        }
        if let Some(e) = &mut self.end {
            *e += 1;
        }
        if self.start > 0 || !self.loaded {
            self.start += 1;
            return;
        }
        self.rows.insert(
            0,
            TaskRow {
                task_id: t.task_id,
                task_group_id,
                endpoint_id: t.endpoint_id,
                function_id: t.function_id,
                state: t.to,
                attempt: t.attempt,
                max_retries: t.max_retries,
                created_at: t.at,
                since: t.at,
            },
        );
        self.synced.insert(t.task_id);
        if self.rows.len() > self.query.capacity()
            && let Some(gone) = self.rows.pop()
        {
            self.came_from.remove(&gone.task_id);
            self.synced.remove(&gone.task_id);
        }
        self.reindex();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lifeline_model::{Actor, EndpointId, TaskGroupId, Timestamp};

    fn row(n: u128, state: State) -> TaskRow {
        TaskRow {
            task_id: TaskId::from_u128(n),
            task_group_id: TaskGroupId::from_u128(1),
            endpoint_id: EndpointId::from_u128(7),
            function_id: FunctionId::from_u128(9),
            state,
            attempt: 1,
            max_retries: 1,
            created_at: Timestamp::from_micros(n as i64),
            since: Timestamp::from_micros(n as i64),
        }
    }

    /// The page a service holding tasks 1..=stored (all listed, sequence number = id) answers.
    fn page(fetch: &Fetch, stored: i64) -> TaskPage {
        let top = fetch.cursor.map_or(stored, |c| c - 1);
        let bottom = (top - fetch.limit as i64 + 1).max(1);
        TaskPage {
            tasks: (bottom..=top)
                .rev()
                .map(|n| row(n as u128, State::Received))
                .collect(),
            next_cursor: (bottom > 1).then(|| bottom.to_string()),
        }
    }

    fn transition(task: u128, from: Option<State>, to: State, at: i64) -> TransitionEvent {
        TransitionEvent {
            task_id: TaskId::from_u128(task),
            task_group_id: from.is_none().then(|| TaskGroupId::from_u128(1)),
            endpoint_id: EndpointId::from_u128(7),
            function_id: FunctionId::from_u128(9),
            from,
            to,
            actor: Actor::Forwarder,
            attempt: 1,
            max_retries: 1,
            at: Timestamp::from_micros(at),
            reason: None,
        }
    }

    fn load(window: &mut Window, first: usize, stored: i64) {
        let total = Some(stored as usize);
        let fetch = window
            .fetch_for(first, first + 20, total)
            .expect("a page to fetch");
        let answer = page(&fetch, stored);
        window.place(fetch, answer, total);
    }

    #[test]
    fn a_jump_anywhere_is_one_request_and_lands_on_the_right_rows() {
        let stored = 1_000_000;
        let mut window = Window::new(Query::default());
        load(&mut window, 0, stored);
        assert_eq!(window.start(), 0);
        assert_eq!(window.rows()[0].task_id, TaskId::from_u128(1_000_000));
        assert!(window.fetch_for(0, 20, Some(1_000_000)).is_none(), "held");

        load(&mut window, 500_000, stored);
        let at = 500_000 - window.start();
        // Position p of a dense list newest first is task stored - p.
        assert_eq!(window.rows()[at].task_id, TaskId::from_u128(500_000));

        load(&mut window, 999_980, stored);
        assert_eq!(window.end(), Some(1_000_000));
        assert_eq!(
            window.rows().last().map(|t| t.task_id),
            Some(TaskId::from_u128(1))
        );
        assert!(window.rows().len() <= PAGE, "a window, not a copy");
    }

    #[test]
    fn a_page_that_ends_early_is_moved_to_the_end_of_the_list() {
        let mut window = Window::new(Query::default());
        load(&mut window, 0, 1000);
        // The counts say more than the listing holds (say, a task was let go meanwhile).
        let fetch = window.fetch_for(990, 1010, Some(1010)).expect("a page");
        let answer = page(&fetch, 1000);
        window.place(fetch.clone(), answer, Some(1010));
        assert_eq!(window.end(), Some(1010));
        assert_eq!(window.start() + window.rows().len(), 1010);
        assert!(
            window.fetch_for(990, 1010, Some(1010)).is_none(),
            "not asked again"
        );
    }

    #[test]
    fn new_tasks_enter_at_the_top_or_move_the_window_down() {
        let mut window = Window::new(Query::default());
        load(&mut window, 0, 1000);
        window
            .apply(&transition(1001, None, State::Received, 2000))
            .expect("applies");
        assert_eq!(window.rows()[0].task_id, TaskId::from_u128(1001));
        assert_eq!(window.rows().len(), PAGE, "still a window");

        load(&mut window, 600, 1001);
        let start = window.start();
        window
            .apply(&transition(1002, None, State::Received, 2001))
            .expect("applies");
        assert_eq!(window.start(), start + 1, "the same rows, one further down");
    }

    #[test]
    fn rows_move_and_leave_a_state_filter_and_newcomers_mark_it_stale() {
        let query = Query {
            states: vec![State::Received],
            ..Query::default()
        };
        let mut window = Window::new(query);
        load(&mut window, 0, 10);
        window
            .apply(&transition(
                10,
                Some(State::Received),
                State::DispatchedToEp,
                100,
            ))
            .expect("applies");
        assert!(
            window.task(TaskId::from_u128(10)).is_none(),
            "left the filter"
        );
        assert_eq!(window.end(), Some(9));
        assert!(window.refetch().is_none());
        window.mark_stale();
        assert_eq!(window.refetch().map(|f| f.at), Some(0));
    }

    #[test]
    fn a_row_fetched_late_follows_the_stream_then_warns_of_contradictions() {
        let mut window = Window::new(Query::default());
        load(&mut window, 0, 3);
        // The row says received; the stream already moved it on before the page was read.
        window
            .apply(&transition(
                3,
                Some(State::DispatchedToEp),
                State::WaitingForEp,
                10,
            ))
            .expect("the stream is newer");
        let row = window.task(TaskId::from_u128(3)).expect("held");
        assert_eq!(row.state, State::WaitingForEp);
        let error = window
            .apply(&transition(3, Some(State::Running), State::Success, 20))
            .expect_err("contradicts a current row");
        assert!(error.starts_with("out of order"), "{error}");
    }

    #[test]
    fn a_replayed_moment_holds_still_while_the_stream_goes_on() {
        let query = Query {
            at_seq: Some(40),
            ..Query::default()
        };
        let mut window = Window::new(query);
        load(&mut window, 0, 3);
        window
            .apply(&transition(
                1,
                Some(State::Received),
                State::DispatchedToEp,
                10,
            ))
            .expect("ignored");
        window
            .apply(&transition(99, None, State::Received, 20))
            .expect("ignored");
        let row = window.task(TaskId::from_u128(1)).expect("held");
        assert_eq!(row.state, State::Received, "as it was at the moment");
        assert!(window.task(TaskId::from_u128(99)).is_none());
        assert_eq!(window.rows().len(), 3);
    }

    #[test]
    fn a_new_task_enters_a_group_s_list_only_if_it_is_of_that_group() {
        let of = |group| Query {
            group: Some(TaskGroupId::from_u128(group)),
            ..Query::default()
        };
        for (group, enters) in [(1, true), (2, false)] {
            let mut window = Window::new(of(group));
            load(&mut window, 0, 3);
            window
                .apply(&transition(99, None, State::Received, 20))
                .expect("applies");
            assert_eq!(window.task(TaskId::from_u128(99)).is_some(), enters);
        }
        assert_eq!(of(1).total(&StateCounts::default()), None);
    }

    #[test]
    fn a_move_the_row_cannot_take_is_refused() {
        let mut window = Window::new(Query::default());
        load(&mut window, 0, 1);
        window
            .apply(&transition(
                1,
                Some(State::Received),
                State::DispatchedToEp,
                10,
            ))
            .expect("applies");
        // A requeue keeps the attempt: the row (attempt 1) cannot take one to attempt 2.
        let mut requeue = transition(1, Some(State::DispatchedToEp), State::WaitingForEp, 20);
        requeue.attempt = 2;
        assert!(window.apply(&requeue).is_err());
        let row = window.task(TaskId::from_u128(1)).expect("held");
        assert_eq!((row.state, row.attempt), (State::DispatchedToEp, 1));
    }

    #[test]
    fn scans_hold_the_newest_rows_and_the_edge_filter_refetches_on_crossings() {
        let query = Query {
            edge: Some((State::Received, State::DispatchedToEp)),
            scan: true,
            ..Query::default()
        };
        let mut window = Window::new(query);
        let fetch = window.fetch_for(0, 10, None).expect("a scan");
        assert_eq!(fetch.limit, SCAN);
        let answer = page(&fetch, 5);
        window.place(fetch, answer, None);
        assert!(window.fetch_for(0, 10, None).is_none());
        window
            .apply(&transition(
                9,
                Some(State::Received),
                State::DispatchedToEp,
                10,
            ))
            .expect("applies");
        assert!(window.refetch().is_some(), "asks which tasks took the edge");
    }
}

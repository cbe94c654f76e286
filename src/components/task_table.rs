//! The task list: virtualized (only the visible rows exist in the page) over a window of the
//! service's listing ([`crate::window`]), so that it stays smooth and small with a million tasks
//! stored. Each row carries `data-task-id` and a lifeline strip.
//!
//! It is an ARIA grid: the scrolling element is the grid, its column headers stay at its top,
//! and each row is a `row` of `gridcell`s. On a phone each row takes two lines (the style
//! sheet's grid areas), so row heights follow the window's width.

use leptos::prelude::*;
use lifeline_model::{State, TaskId};

use crate::live::TaskRow;
use crate::session::{
    Clock, Endpoints, Exceptions, FunctionNames, Replay, TaskList, short, use_shown_counts,
};
use crate::url_state::{Sort, SortKey, ViewState};
use crate::window::{Query, Window};

/// Row height in pixels on a wide screen, and on a phone, where each row takes two lines (kept
/// in step with `.task-row` in the style sheet, which the rows' own `height` overrides).
const ROW: f64 = 30.0;
const ROW_NARROW: f64 = 48.0;
/// Height of the column headers, which stay at the top of the scrolling grid.
const HEAD: f64 = 30.0;
const HEAD_NARROW: f64 = 44.0;
/// Height of the scrolling grid in pixels.
const HEIGHT: f64 = 420.0;
/// Rows drawn beyond the visible ones on each side.
const OVERSCAN: usize = 8;

/// The grid's element id, for returning focus to it.
pub const GRID_ID: &str = "task-grid";

/// A row's element id, for `aria-activedescendant`.
fn row_id(id: TaskId) -> String {
    format!("task-row-{id}")
}

/// Where a key moves the cursor in a list of `len` rows from `at` (`None`: no row yet), `page`
/// rows at a time for Page Up and Page Down. `None` for keys that do not move it.
pub fn cursor_move(key: &str, at: Option<usize>, len: usize, page: usize) -> Option<usize> {
    if len == 0 {
        return None;
    }
    let last = len - 1;
    let next = match (key, at) {
        ("Home", _) => 0,
        ("End", _) => last,
        ("ArrowDown" | "ArrowUp" | "PageDown" | "PageUp", None) => 0,
        ("ArrowDown", Some(i)) => (i + 1).min(last),
        ("ArrowUp", Some(i)) => i.saturating_sub(1),
        ("PageDown", Some(i)) => (i + page).min(last),
        ("PageUp", Some(i)) => i.saturating_sub(page),
        _ => return None,
    };
    Some(next)
}

/// Whether every way through the life cycle to `target` passes through `through`: then a task
/// in `target` certainly visited `through`. Worked out from the model's transition table, so the
/// strip never claims a visit the table does not force (a task cancelled while received never
/// waited for nodes; one dispatched at once never waited for its endpoint).
pub fn always_visited(through: State, target: State) -> bool {
    if through == target || through == State::Received {
        return true;
    }
    let mut seen = [false; State::ALL.len()];
    let mut queue = vec![State::Received];
    seen[State::Received.index()] = true;
    while let Some(state) = queue.pop() {
        if state == target {
            return false;
        }
        for edge in lifeline_model::edges_from(state) {
            if edge.to != through && !seen[edge.to.index()] {
                seen[edge.to.index()] = true;
                queue.push(edge.to);
            }
        }
    }
    true
}

/// A compact picture of the life cycle: one cell per unfinished state, in the model's order,
/// and one for the outcome. The task's state is marked, and the states it must have passed
/// through to get there are filled.
#[component]
pub fn Strip(state: State) -> impl IntoView {
    let forward = State::ALL.into_iter().filter(|s| !s.is_terminal());
    let cells = forward
        .map(|cell| {
            if cell == state {
                format!("cell current state-{}", state.wire())
            } else if always_visited(cell, state) {
                "cell done".to_owned()
            } else {
                "cell".to_owned()
            }
        })
        .chain(std::iter::once(if state.is_terminal() {
            format!("cell current state-{}", state.wire())
        } else {
            "cell".to_owned()
        }))
        .map(|class| view! { <span class=class></span> })
        .collect_view();
    view! { <span class="strip" aria-hidden="true">{cells}</span> }
}

/// A duration for a glance: `42s`, `2m 10s`, `3h 5m`, `1.5d`. Rounded to whole seconds first,
/// so that 59.7 s reads `1m 0s`, never `0m 60s`.
pub fn age(seconds: f64) -> String {
    // The cast saturates; `max` turns NaN into 0.
    let s = seconds.max(0.0).round() as u64;
    match s {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m {}s", s / 60, s % 60),
        s if s < 86_400 => format!("{}h {}m", s / 3600, s % 3600 / 60),
        s => format!("{:.1}d", s as f64 / 86_400.0),
    }
}

/// Whether a row's id or its submission's contains the search text (the other filters are the
/// service's).
fn found(t: &TaskRow, needle: &str) -> bool {
    needle.is_empty()
        || t.task_id.to_string().contains(needle)
        || t.task_group_id.to_string().contains(needle)
}

/// What the list asks the service for. Searching, sorting by state or time in state and the
/// edge filter need rows side by side: they scan the newest rows (see [`crate::window`]). So
/// does oldest first when the counts cannot say how long the list is (a function filter).
/// `at_seq` is a replayed moment: the list as it was then, except for the edge and failure
/// filters, which list every task that took the edge or failed so (the service lists no moment
/// of those).
pub fn list_query(view: &ViewState, at_seq: Option<u64>) -> Query {
    let oldest_first = view.sort.key == SortKey::Age && view.sort.descending;
    Query {
        at_seq: at_seq.filter(|_| view.edge.is_none() && view.failure.is_none()),
        failure: view.failure.clone(),
        group: view.group,
        states: view.states.clone(),
        function: view.function,
        edge: view.edge,
        scan: view.edge.is_some()
            || !view.search.trim().is_empty()
            || view.sort.key != SortKey::Age
            || (oldest_first && view.function.is_some()),
    }
}

/// The task count, in words: exact when the counts or the end of the listing say, a lower
/// bound otherwise; a scan says when it covered only the newest tasks.
pub fn count_text(shown: usize, known: bool, scanned_all: bool) -> String {
    match (known, scanned_all) {
        (true, true) => tasks_text(shown),
        (false, _) => format!("more than {}", tasks_text(shown)),
        (true, false) => format!(
            "{} among the newest {}",
            tasks_text(shown),
            tasks_text(crate::window::SCAN)
        ),
    }
}

/// Puts `rows` (newest first, as the window holds them) in the list's order.
/// Sorting is stable, so rows that compare equal stay newest first.
pub fn sort_rows(rows: &mut [u32], sort: Sort, row: impl Fn(u32) -> Option<TaskRow>) {
    let default = Sort::default();
    if sort == default {
        return;
    }
    if sort.key == SortKey::Age {
        // Newest first is the order they come in; the other way is its reverse.
        rows.reverse();
        return;
    }
    let mut keyed: Vec<(i64, u32)> = rows
        .iter()
        .map(|&i| {
            let key = row(i).map_or(i64::MAX, |t| match sort.key {
                SortKey::State => t.state.index() as i64,
                // Entered its state earliest = longest in it.
                SortKey::InState => t.since.as_micros(),
                SortKey::Age => 0,
            });
            (key, i)
        })
        .collect();
    // "In state" ascending is the shortest stay first: the latest `since` first.
    let latest_first = (sort.key == SortKey::InState) != sort.descending;
    let flip = sort.key == SortKey::State && sort.descending;
    keyed.sort_by(|a, b| {
        if latest_first || flip {
            b.0.cmp(&a.0)
        } else {
            a.0.cmp(&b.0)
        }
    });
    for (slot, (_, i)) in rows.iter_mut().zip(keyed) {
        *slot = i;
    }
}

/// Whether the list is narrowed by anything but the endpoint chips.
pub fn has_filters(view: &ViewState) -> bool {
    !view.states.is_empty()
        || view.edge.is_some()
        || view.function.is_some()
        || !view.search.is_empty()
        || view.failure.is_some()
        || view.group.is_some()
}

/// Clears the list's own filters (the endpoint chips are the header's).
pub fn clear_filters(view: &mut ViewState) {
    view.states.clear();
    view.edge = None;
    view.function = None;
    view.search.clear();
    view.failure = None;
    view.group = None;
}

/// Why the list is empty, in a sentence: which filters leave nothing.
pub fn empty_reason(view: &ViewState, endpoint_names: Vec<String>) -> String {
    let mut what = match view.edge {
        Some((from, to)) => format!("No task took {from} → {to}"),
        None if view.states.len() == 1 => format!("No task is {}", view.states[0]),
        None if !view.states.is_empty() => "No task is in the chosen states".to_owned(),
        None => "No task".to_owned(),
    };
    if view.function.is_some() {
        what.push_str(" with the chosen function");
    }
    if view.failure.is_some() {
        what.push_str(" failed for the chosen cause");
    }
    if view.group.is_some() {
        what.push_str(" of the chosen submission");
    }
    if !view.search.is_empty() {
        what.push_str(&format!(" whose id contains \"{}\"", view.search.trim()));
    }
    if !endpoint_names.is_empty() {
        what.push_str(&format!(" on {}", endpoint_names.join(", ")));
    }
    if has_filters(view) {
        what.push('.');
    } else {
        what.push_str(" yet: tasks appear here as they are submitted.");
    }
    what
}

/// "1 task", "2 tasks".
pub fn tasks_text(n: usize) -> String {
    if n == 1 {
        "1 task".to_owned()
    } else {
        format!("{n} tasks")
    }
}

/// The task grid. One tab stop: the arrow keys, Page Up/Down, Home and End move a cursor
/// through the rows (announced through `aria-activedescendant`), Enter or Space opens the task
/// under it, and a click opens the task clicked.
#[component]
pub fn TaskTable() -> impl IntoView {
    let list = expect_context::<TaskList>();
    let view_state = expect_context::<RwSignal<ViewState>>();
    let functions = expect_context::<FunctionNames>();
    let endpoints = expect_context::<Endpoints>();
    let clock = expect_context::<Clock>();
    let narrow = use_narrow();
    let row_height = move || if narrow.get() { ROW_NARROW } else { ROW };
    let head_height = move || if narrow.get() { HEAD_NARROW } else { HEAD };
    let scroll = RwSignal::new(0.0_f64);
    let grid = NodeRef::<leptos::html::Div>::new();
    // The row under the keyboard's cursor; opening a task moves the cursor to it too.
    let cursor = RwSignal::new(None::<TaskId>);
    // A position the keyboard moved to before its row was fetched.
    let cursor_at = RwSignal::new(None::<usize>);
    let replay = expect_context::<Replay>();
    let query = Memo::new(move |_| {
        let at_seq = replay.seq();
        view_state.with(|v| list_query(v, at_seq))
    });
    // The listing's length when the counts (of now, or of the replayed moment) say it.
    let counts = use_shown_counts();
    let listed = Memo::new(move |_| {
        let q = query.get();
        counts.with(|c| c.as_ref().and_then(|c| q.total(c)))
    });
    // A scan's rows, filtered by the search and sorted, as indices into the window's rows.
    let scanned = Memo::new(move |_| {
        let (needle, sort) = view_state.with(|v| (v.search.trim().to_ascii_lowercase(), v.sort));
        if !query.with(|q| q.scan) {
            return Vec::new();
        }
        list.with(|w| {
            let rows = w.rows();
            let mut keep: Vec<u32> = (0..rows.len() as u32)
                .filter(|&i| found(&rows[i as usize], &needle))
                .collect();
            sort_rows(&mut keep, sort, |i| rows.get(i as usize).cloned());
            keep
        })
    });
    // Rows in the list, and whether that is exact.
    let size = move || {
        if query.with(|q| q.scan) {
            return (scanned.with(Vec::len), true);
        }
        let total = listed.get();
        let size = list.with(|w| w.size(total));
        (size, total.is_some() || list.with(|w| w.end().is_some()))
    };
    let total = move || size().0;
    // Oldest first: the listing (newest first) read from its end.
    let reversed = move || {
        view_state.with(|v| v.sort.key == SortKey::Age && v.sort.descending)
            && !query.with(|q| q.scan)
    };
    let listing_pos = move |pos: usize| {
        if reversed() {
            total().checked_sub(pos + 1)
        } else {
            Some(pos)
        }
    };
    // The row at a position of the list, if it is held.
    let row_at = move |pos: usize| -> Option<TaskRow> {
        if query.with(|q| q.scan) {
            return scanned.with(|s| {
                list.with(|w| s.get(pos).and_then(|&i| w.rows().get(i as usize).cloned()))
            });
        }
        let at = listing_pos(pos)?;
        list.with(|w| {
            at.checked_sub(w.start())
                .and_then(|i| w.rows().get(i).cloned())
        })
    };
    let first_visible = move || {
        let top = (scroll.get() - head_height()).max(0.0);
        ((top / row_height()).floor() as usize).saturating_sub(OVERSCAN)
    };
    let visible_count = move || (HEIGHT / row_height()).ceil() as usize + 2 * OVERSCAN;
    // The window follows what is on screen, and is asked for again when it starts over.
    Effect::new(move |_| {
        list.track();
        let first = first_visible();
        let count = visible_count();
        let last = (first + count).min(total().max(1) - 1);
        let (a, b) = match (listing_pos(first), listing_pos(last)) {
            (Some(a), Some(b)) => (a.min(b), a.max(b)),
            _ => (0, count),
        };
        list.show(query.get(), a, b, listed.get());
    });

    let exceptions = expect_context::<Exceptions>();
    let visible = move || {
        let first = first_visible();
        let rows: Vec<(usize, TaskRow)> = (first..(first + visible_count()).min(total()))
            .filter_map(|pos| row_at(pos).map(|t| (pos, t)))
            .collect();
        functions.want(rows.iter().map(|(_, t)| t.function_id).collect());
        exceptions.want(
            rows.iter()
                .filter(|(_, t)| t.state == State::Failed)
                .map(|(_, t)| t.task_id)
                .collect(),
        );
        rows
    };

    // Where `id` is in the list, if its row is held.
    let position_of = move |id: Option<TaskId>| {
        let id = id?;
        if query.with_untracked(|q| q.scan) {
            return scanned.with_untracked(|s| {
                list.with_untracked(|w| {
                    s.iter()
                        .position(|&i| w.rows().get(i as usize).is_some_and(|t| t.task_id == id))
                })
            });
        }
        let at = list.with_untracked(|w| {
            w.rows()
                .iter()
                .position(|t| t.task_id == id)
                .map(|i| w.start() + i)
        })?;
        if untrack(reversed) {
            untrack(total).checked_sub(at + 1)
        } else {
            Some(at)
        }
    };
    let id_at = move |pos: usize| untrack(|| row_at(pos)).map(|t| t.task_id);
    // Scrolls just enough to show the row at `pos` below the column headers.
    let reveal = move |pos: usize| {
        let Some(el) = grid.get_untracked() else {
            return;
        };
        let row = row_height();
        let head = head_height();
        let top = head + pos as f64 * row;
        let current = f64::from(el.scroll_top());
        let view_height = f64::from(el.client_height());
        if top - head < current {
            el.set_scroll_top((top - head) as i32);
        } else if top + row > current + view_height {
            el.set_scroll_top((top + row - view_height) as i32);
        }
    };
    let open = move |id: TaskId| {
        cursor.set(Some(id));
        view_state.update(|v| v.task = Some(id));
    };

    let on_key = move |ev: leptos::ev::KeyboardEvent| {
        let key = ev.key();
        if key == "Enter" || key == " " {
            if let Some(id) = cursor.get_untracked() {
                ev.prevent_default();
                open(id);
                focus_detail_soon();
            }
            return;
        }
        let page = (HEIGHT / row_height()).floor().max(1.0) as usize;
        let at = cursor_at
            .get_untracked()
            .or_else(|| position_of(cursor.get_untracked()));
        let Some(next) = cursor_move(&key, at, untrack(total), page) else {
            return;
        };
        ev.prevent_default();
        reveal(next);
        match id_at(next) {
            Some(id) => {
                cursor_at.set(None);
                cursor.set(Some(id));
            }
            // Not fetched yet: the cursor lands there when it is.
            None => cursor_at.set(Some(next)),
        }
    };
    Effect::new(move |_| {
        if let Some(pos) = cursor_at.get()
            && let Some(t) = row_at(pos)
        {
            cursor_at.set(None);
            cursor.set(Some(t.task_id));
        }
    });
    // The grid takes focus with the cursor on the open task, or on the first row.
    let on_focus = move |_| {
        if cursor.get_untracked().is_none() {
            let start = view_state.with_untracked(|v| v.task).or_else(|| id_at(0));
            cursor.set(start);
        }
    };
    // A task opened from elsewhere (a link, Back) brings the list to its row, once: as soon as
    // the row is listed, not again with every batch of events, so that the list can be
    // scrolled away from it.
    let revealed = StoredValue::new(None::<TaskId>);
    Effect::new(move |_| {
        let task = view_state.with(|v| v.task);
        list.track();
        scanned.track();
        if task.is_none() {
            revealed.set_value(None);
            return;
        }
        if revealed.get_value() == task {
            return;
        }
        if let Some(pos) = position_of(task) {
            revealed.set_value(task);
            if cursor.get_untracked() != task {
                cursor.set(task);
            }
            reveal(pos);
        }
    });
    let edge_loading = move || view_state.with(|v| v.edge.is_some()) && !list.with(|w| w.loaded());
    let loaded = move || list.with(|w| w.loaded());

    let endpoint_name = move |id: lifeline_model::EndpointId| {
        endpoints.name(id).unwrap_or_else(|| short(&id.to_string()))
    };
    let active = move || cursor.get().map(row_id);

    view! {
        <div class="task-table" role="grid" id=GRID_ID node_ref=grid tabindex="0"
            aria-label="Tasks: arrow keys move, Enter opens"
            aria-rowcount=move || (total() + 1).to_string()
            aria-activedescendant=active
            style=format!("height: {HEIGHT}px")
            on:scroll=move |ev| {
                let target = event_target::<web_sys::HtmlElement>(&ev);
                scroll.set(f64::from(target.scroll_top()));
            }
            on:keydown=on_key
            on:focus=on_focus>
            <div class="task-head" role="row" aria-rowindex="1" style=move || format!("height: {}px", head_height())>
                <span class="c-id" role="columnheader">"Task"</span>
                <span class="c-fn" role="columnheader">"Function"</span>
                <span class="c-ep" role="columnheader">"Endpoint"</span>
                {sort_header(view_state, SortKey::State, "c-state", "State")}
                <span class="c-att num" role="columnheader">"Attempt"</span>
                {sort_header(view_state, SortKey::Age, "c-age num", "Age")}
                {sort_header(view_state, SortKey::InState, "c-ins num", "In state")}
                <span class="c-strip" role="columnheader">"Life cycle"</span>
            </div>
            <div class="task-space" style=move || format!("height: {}px", total() as f64 * row_height())
                on:click=move |ev| {
                    if let Some(id) = clicked_task(&ev) {
                        open(id);
                        if narrow.get_untracked() {
                            focus_detail_soon();
                        }
                    }
                }>
                // The rows are drawn anew with every change, and hold no reactive parts of their
                // own: a row's effects would stay subscribed to the signals they read long after
                // the row is gone, so the page's memory would grow with every batch of events.
                {move || {
                    // Ages count to the replayed moment while one is shown.
                    let now = replay.time().unwrap_or_else(|| clock.get());
                    let row = row_height();
                    let open_task = view_state.with(|v| v.task);
                    let under_cursor = cursor.get();
                    visible()
                        .into_iter()
                        .map(|(pos, t)| {
                            let id = t.task_id;
                            let selected = open_task == Some(id);
                            let function = functions.with(|f| f.get(&t.function_id).cloned()).unwrap_or_default();
                            view! {
                                <div class="task-row" role="row" id=row_id(id) data-task-id=id.to_string() data-state=t.state.wire()
                                    aria-rowindex=(pos + 2).to_string()
                                    class:selected=selected class:cursor=under_cursor == Some(id)
                                    aria-selected=selected.to_string()
                                    style=format!("top: {}px; height: {row}px", pos as f64 * row)>
                                    <span class="c-id mono" role="gridcell" title=id.to_string()>{short(&id.to_string())}</span>
                                    <span class="c-fn" role="gridcell">{function}</span>
                                    <span class="c-ep" role="gridcell">{endpoint_name(t.endpoint_id)}</span>
                                    <span class="c-state" role="gridcell">
                                        <span class=format!("state-label state-{}", t.state.wire())>{t.state.label()}</span>
                                        {(t.state == State::Failed).then(|| view! {
                                            <span class="exception-line" data-exception-line="">
                                                {exceptions.line(id).map(|line| format!(" · {line}"))}
                                            </span>
                                        })}
                                    </span>
                                    <span class="c-att num" role="gridcell">{format!("{}/{}", t.attempt, t.max_retries + 1)}</span>
                                    <span class="c-age num" role="gridcell">{age(now - t.created_at.as_secs_f64())}</span>
                                    <span class="c-ins num" role="gridcell">{age(now - t.since.as_secs_f64())}</span>
                                    <span class="c-strip" role="gridcell"><Strip state=t.state/></span>
                                </div>
                            }
                        })
                        .collect_view()
                }}
            </div>
        </div>
        <p class="task-count" data-testid="task-count" aria-live="polite">{move || {
            let (shown, known) = size();
            let scanned_all = !query.with(|q| q.scan) || !list.with(Window::more);
            count_text(shown, known, scanned_all)
        }}</p>
        <Show when=move || total() == 0 && (loaded() || edge_loading())>
            <div class="empty-list" data-testid="empty-list" role="status">
                <p>{move || {
                    if edge_loading() {
                        "Asking the service which tasks took this edge…".to_owned()
                    } else if list.failed() {
                        "The service could not list the tasks; it is asked again every second.".to_owned()
                    } else {
                        view_state.with(|v| empty_reason(v, endpoints.name_list(&v.endpoints)))
                    }
                }}</p>
                <Show when=move || view_state.with(has_filters)>
                    <button on:click=move |_| view_state.update(clear_filters)>"Show all tasks"</button>
                </Show>
            </div>
        </Show>
    }
}

/// A column header that sorts the list by `key` when clicked, saying how it is sorted.
fn sort_header(
    view_state: RwSignal<ViewState>,
    key: SortKey,
    class: &'static str,
    label: &'static str,
) -> impl IntoView {
    let sort = move || view_state.with(|v| v.sort);
    let aria_sort = move || {
        let s = sort();
        match (s.key == key, s.descending) {
            (false, _) => "none",
            (true, false) => "ascending",
            (true, true) => "descending",
        }
    };
    let arrow = move || match aria_sort() {
        "ascending" => "▲",
        "descending" => "▼",
        _ => "",
    };
    view! {
        <span class=class role="columnheader" aria-sort=aria_sort data-sort=key.wire()>
            <button class="sort" title=format!("Sort by {}", label.to_ascii_lowercase())
                on:click=move |_| view_state.update(|v| v.sort = v.sort.toggled(key))>
                {label}<span class="sort-arrow" aria-hidden="true">{arrow}</span>
            </button>
        </span>
    }
}

/// The task whose row a click landed in. The list listens once, on the rows' container, rather
/// than on every row: rows are drawn anew with every batch of events, and a listener per drawn
/// row is memory the page would keep for as long as it is open.
fn clicked_task(ev: &leptos::ev::MouseEvent) -> Option<TaskId> {
    let target = ev.target()?;
    let element = wasm_bindgen::JsCast::dyn_ref::<web_sys::Element>(&target)?;
    element
        .closest("[data-task-id]")
        .ok()??
        .get_attribute("data-task-id")?
        .parse()
        .ok()
}

/// Moves focus to the open task's detail once it is drawn, so that a keyboard or phone user
/// lands where it opened.
pub fn focus_detail_soon() {
    request_animation_frame(|| {
        if let Some(el) = document().get_element_by_id(crate::components::task_detail::TITLE_ID)
            && let Ok(el) = wasm_bindgen::JsCast::dyn_into::<web_sys::HtmlElement>(el)
        {
            let _ = el.focus();
        }
    });
}

/// Whether the window is phone-narrow (the style sheet's `max-width: 700px`), following
/// resizes.
pub fn use_narrow() -> Signal<bool> {
    fn narrow_now() -> bool {
        window()
            .inner_width()
            .ok()
            .and_then(|w| w.as_f64())
            .is_some_and(|w| w <= 700.0)
    }
    let narrow = RwSignal::new(narrow_now());
    let listener = window_event_listener(leptos::ev::resize, move |_| {
        let now = narrow_now();
        if narrow.get_untracked() != now {
            narrow.set(now);
        }
    });
    on_cleanup(move || listener.remove());
    narrow.into()
}

#[cfg(test)]
mod tests {
    use super::{age, cursor_move, tasks_text};

    #[test]
    fn the_cursor_moves_within_the_list() {
        assert_eq!(cursor_move("ArrowDown", None, 5, 3), Some(0));
        assert_eq!(cursor_move("ArrowDown", Some(4), 5, 3), Some(4));
        assert_eq!(cursor_move("ArrowUp", Some(0), 5, 3), Some(0));
        assert_eq!(cursor_move("PageDown", Some(1), 5, 3), Some(4));
        assert_eq!(cursor_move("PageUp", Some(4), 5, 3), Some(1));
        assert_eq!(cursor_move("Home", Some(3), 5, 3), Some(0));
        assert_eq!(cursor_move("End", None, 5, 3), Some(4));
        assert_eq!(cursor_move("ArrowDown", None, 0, 3), None);
        assert_eq!(cursor_move("x", Some(1), 5, 3), None);
    }

    #[test]
    fn the_strip_fills_only_states_every_path_passes() {
        use super::always_visited;
        use lifeline_model::State::*;
        for state in lifeline_model::State::ALL {
            assert!(always_visited(Received, state), "{state}");
        }
        // Received may go straight to dispatched-to-ep.
        assert!(!always_visited(WaitingForEp, Running));
        assert!(always_visited(DispatchedToEp, Running));
        assert!(always_visited(WaitingForLaunch, Success));
        assert!(always_visited(Running, Success));
        // A task may fail or be cancelled almost anywhere.
        assert!(!always_visited(Running, Failed));
        assert!(!always_visited(DispatchedToEp, Cancelled));
    }

    #[test]
    fn rows_sort_by_age_state_and_time_in_state() {
        use super::{TaskRow, sort_rows};
        use crate::url_state::{Sort, SortKey};
        use lifeline_model::{EndpointId, FunctionId, State, TaskGroupId, TaskId, Timestamp};
        // Newest first, as the list holds them: (state, entered it at).
        let rows: Vec<TaskRow> = [
            (State::Success, 50),
            (State::Running, 10),
            (State::Received, 40),
            (State::Running, 30),
        ]
        .into_iter()
        .enumerate()
        .map(|(i, (state, since))| TaskRow {
            task_id: TaskId::from_u128(i as u128),
            task_group_id: TaskGroupId::from_u128(1),
            endpoint_id: EndpointId::from_u128(1),
            function_id: FunctionId::from_u128(1),
            state,
            attempt: 1,
            max_retries: 0,
            created_at: Timestamp::from_micros(0),
            since: Timestamp::from_micros(since),
        })
        .collect();
        let order = |key, descending| {
            let mut list = vec![0, 1, 2, 3];
            sort_rows(&mut list, Sort { key, descending }, |i| {
                rows.get(i as usize).cloned()
            });
            list
        };
        assert_eq!(order(SortKey::Age, false), [0, 1, 2, 3], "newest first");
        assert_eq!(order(SortKey::Age, true), [3, 2, 1, 0]);
        assert_eq!(
            order(SortKey::State, false),
            [2, 1, 3, 0],
            "received, running (newest first), success"
        );
        assert_eq!(order(SortKey::State, true), [0, 1, 3, 2]);
        assert_eq!(
            order(SortKey::InState, true),
            [1, 3, 2, 0],
            "longest in its state first"
        );
        assert_eq!(order(SortKey::InState, false), [0, 2, 3, 1]);
    }

    #[test]
    fn an_empty_list_says_why() {
        use super::{empty_reason, has_filters};
        use crate::url_state::ViewState;
        use lifeline_model::State;
        let edge = ViewState {
            edge: Some((State::Running, State::Success)),
            search: "0190".into(),
            ..ViewState::default()
        };
        assert_eq!(
            empty_reason(&edge, vec!["local".into()]),
            "No task took running → success whose id contains \"0190\" on local."
        );
        assert!(has_filters(&edge));
        let none = ViewState::default();
        assert!(!has_filters(&none));
        assert_eq!(
            empty_reason(&none, vec![]),
            "No task yet: tasks appear here as they are submitted."
        );
    }

    #[test]
    fn only_the_plain_newest_first_list_is_paged() {
        use super::list_query;
        use crate::url_state::{Sort, SortKey, ViewState};
        let paged = |view: ViewState| !list_query(&view, None).scan;
        assert!(paged(ViewState::default()));
        let oldest_first = Sort {
            key: SortKey::Age,
            descending: true,
        };
        assert!(paged(ViewState {
            sort: oldest_first,
            ..ViewState::default()
        }));
        assert!(!paged(ViewState {
            sort: oldest_first,
            function: Some(lifeline_model::FunctionId::from_u128(1)),
            ..ViewState::default()
        }));
        assert!(!paged(ViewState {
            search: "ab".into(),
            ..ViewState::default()
        }));
        assert!(!paged(ViewState {
            sort: Sort {
                key: SortKey::State,
                descending: false,
            },
            ..ViewState::default()
        }));
    }

    #[test]
    fn counts_read_as_words() {
        assert_eq!(tasks_text(0), "0 tasks");
        assert_eq!(tasks_text(1), "1 task");
        assert_eq!(tasks_text(25), "25 tasks");
    }

    #[test]
    fn ages_round_to_whole_seconds_and_carry() {
        assert_eq!(age(-3.0), "0s");
        assert_eq!(age(f64::NAN), "0s");
        assert_eq!(age(59.4), "59s");
        assert_eq!(age(59.7), "1m 0s");
        assert_eq!(age(130.0), "2m 10s");
        assert_eq!(age(1199.6), "20m 0s");
        assert_eq!(age(3599.9), "1h 0m");
        assert_eq!(age(3.0 * 3600.0 + 5.0 * 60.0 + 59.0), "3h 5m");
        assert_eq!(age(1.5 * 86_400.0), "1.5d");
    }
}

//! The task list: virtualized (only the visible rows exist in the page), so that it stays smooth
//! with a hundred thousand tasks loaded. Each row carries `data-task-id` and a lifeline strip.

use leptos::prelude::*;
use lifeline_model::{State, TaskId};

use crate::live::TaskRow;
use crate::session::{Clock, Endpoints, FunctionNames, LiveTasks, short};
use crate::url_state::ViewState;

/// Row height in pixels (kept in step with `.task-row` in the style sheet).
const ROW: f64 = 30.0;
/// Height of the scrolling area in pixels.
const HEIGHT: f64 = 420.0;
/// Rows drawn beyond the visible ones on each side.
const OVERSCAN: usize = 8;

/// Where a state sits on the strip: the forward path, then one cell for the outcome.
fn strip_position(state: State) -> usize {
    match state {
        State::Received => 0,
        State::WaitingForEp => 1,
        State::DispatchedToEp => 2,
        State::WaitingForNodes => 3,
        State::WaitingForLaunch => 4,
        State::Running => 5,
        State::Success | State::Failed | State::Cancelled => 6,
    }
}

/// A compact picture of the life cycle with the task's place marked.
#[component]
pub fn Strip(state: State) -> impl IntoView {
    let at = strip_position(state);
    let cells = (0..7)
        .map(|i| {
            let class = match i.cmp(&at) {
                std::cmp::Ordering::Less => "cell done".to_owned(),
                std::cmp::Ordering::Equal => format!("cell current state-{}", state.wire()),
                std::cmp::Ordering::Greater => "cell".to_owned(),
            };
            view! { <span class=class></span> }
        })
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

/// Whether a row passes the list's filters (the endpoint filter applies when loading).
fn keep(
    view: &crate::url_state::ViewState,
    t: &TaskRow,
    came_from: Option<State>,
    needle: &str,
) -> bool {
    (view.states.is_empty() || view.states.contains(&t.state))
        && view
            .edge
            .is_none_or(|(from, to)| came_from == Some(from) && t.state == to)
        && view.function.is_none_or(|f| t.function_id == f)
        && (needle.is_empty()
            || t.task_id.to_string().contains(needle)
            || t.task_group_id.to_string().contains(needle))
}

#[component]
pub fn TaskTable() -> impl IntoView {
    let live = expect_context::<LiveTasks>();
    let view_state = expect_context::<RwSignal<ViewState>>();
    let functions = expect_context::<FunctionNames>();
    let endpoints = expect_context::<Endpoints>();
    let clock = expect_context::<Clock>();
    let scroll = RwSignal::new(0.0_f64);
    let list = NodeRef::<leptos::html::Div>::new();
    // The filtered rows, newest first, as indices into the loaded tasks.
    let filtered = Memo::new(move |_| {
        let view = view_state.get();
        let needle = view.search.trim().to_lowercase();
        live.with(|l| {
            l.map(|l| l.select(|t, came_from| keep(&view, t, came_from, &needle)))
                .unwrap_or_default()
        })
    });
    let total = move || filtered.with(Vec::len);

    let visible = move || {
        let first = ((scroll.get() / ROW).floor() as usize).saturating_sub(OVERSCAN);
        let count = (HEIGHT / ROW).ceil() as usize + 2 * OVERSCAN;
        let rows: Vec<(usize, TaskRow)> = filtered.with(|f| {
            live.with(|l| {
                let Some(l) = l else {
                    return Vec::new();
                };
                f.iter()
                    .enumerate()
                    .skip(first)
                    .take(count)
                    .filter_map(|(pos, &i)| l.newest(i as usize).map(|t| (pos, t.clone())))
                    .collect()
            })
        });
        functions.want(rows.iter().map(|(_, t)| t.function_id).collect());
        rows
    };

    let select = move |id: TaskId| view_state.update(|v| v.task = Some(id));
    // Arrow keys move the selection through the filtered list, keeping it in view.
    let on_key = move |ev: leptos::ev::KeyboardEvent| {
        let step: isize = match ev.key().as_str() {
            "ArrowDown" => 1,
            "ArrowUp" => -1,
            "PageDown" => 10,
            "PageUp" => -10,
            _ => return,
        };
        ev.prevent_default();
        let current = view_state.with_untracked(|v| v.task);
        let (ids, position) = filtered.with_untracked(|f| {
            live.with_untracked(|l| {
                let Some(l) = l else {
                    return (Vec::new(), None);
                };
                let ids: Vec<TaskId> = f
                    .iter()
                    .filter_map(|&i| l.newest(i as usize).map(|t| t.task_id))
                    .collect();
                let position = current.and_then(|c| ids.iter().position(|x| *x == c));
                (ids, position)
            })
        });
        if ids.is_empty() {
            return;
        }
        let next = match position {
            Some(p) => (p as isize + step).clamp(0, ids.len() as isize - 1) as usize,
            None => 0,
        };
        select(ids[next]);
        if let Some(el) = list.get_untracked() {
            let top = next as f64 * ROW;
            let current_top = f64::from(el.scroll_top());
            if top < current_top {
                el.set_scroll_top(top as i32);
            } else if top + ROW > current_top + HEIGHT {
                el.set_scroll_top((top + ROW - HEIGHT) as i32);
            }
        }
    };

    let endpoint_name = move |id: lifeline_model::EndpointId| {
        endpoints.name(id).unwrap_or_else(|| short(&id.to_string()))
    };

    view! {
        <div class="task-table" role="grid" aria-label="Tasks" aria-rowcount=move || total().to_string()>
            <div class="task-head" role="row">
                <span role="columnheader">"Task"</span>
                <span role="columnheader">"Function"</span>
                <span role="columnheader">"Endpoint"</span>
                <span role="columnheader">"State"</span>
                <span role="columnheader">"Attempt"</span>
                <span role="columnheader">"Age"</span>
                <span role="columnheader">"In state"</span>
                <span role="columnheader">"Life cycle"</span>
            </div>
            <div class="task-scroll" node_ref=list tabindex="0" aria-label="Task rows; arrow keys move the selection"
                style=format!("height: {HEIGHT}px")
                on:scroll=move |ev| {
                    let target = event_target::<web_sys::HtmlElement>(&ev);
                    scroll.set(f64::from(target.scroll_top()));
                }
                on:keydown=on_key>
                <div class="task-space" style=move || format!("height: {}px", total() as f64 * ROW)>
                    {move || {
                        let now = clock.get();
                        visible()
                            .into_iter()
                            .map(|(pos, t)| {
                                let id = t.task_id;
                                let selected = move || view_state.with(|v| v.task == Some(id));
                                let function = functions.with(|f| f.get(&t.function_id).cloned()).unwrap_or_default();
                                view! {
                                    <div class="task-row" role="row" data-task-id=id.to_string() data-state=t.state.wire()
                                        class:selected=selected aria-selected=move || selected().to_string()
                                        style=format!("top: {}px", pos as f64 * ROW)
                                        on:click=move |_| select(id)>
                                        <span class="mono" title=id.to_string()>{short(&id.to_string())}</span>
                                        <span>{function}</span>
                                        <span>{endpoint_name(t.endpoint_id)}</span>
                                        <span class=format!("state-label state-{}", t.state.wire())>{t.state.label()}</span>
                                        <span>{format!("{}/{}", t.attempt, t.max_retries + 1)}</span>
                                        <span>{age(now - t.created_at.as_secs_f64())}</span>
                                        <span>{age(now - t.since.as_secs_f64())}</span>
                                        <Strip state=t.state/>
                                    </div>
                                }
                            })
                            .collect_view()
                    }}
                </div>
            </div>
            <p class="task-count">{move || format!("{} tasks", total())}</p>
        </div>
    }
}

#[cfg(test)]
mod tests {
    use super::age;

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

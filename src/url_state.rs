//! What the dashboard shows, kept in the URL's query so that a link reproduces the view and a
//! reload keeps it:
//! `?view=endpoints&endpoint=ID,ID&mine=true&state=running,failed&function=ID&q=0190&task=ID&sort=-age`,
//! `at=` (an event's sequence number or an RFC 3339 time) to replay a moment of the past,
//! `failure=KEY` and `group=ID` to narrow the list to a cause of failure or a submission, and
//! `window=15m` for the comparison of endpoints.

use lifeline_model::{EndpointId, FunctionId, State, TaskGroupId, TaskId};

/// The dashboard's pages.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub enum Page {
    #[default]
    Lifecycle,
    Endpoints,
    Overview,
    /// Failed tasks and retried attempts grouped by cause.
    Failures,
    /// Submissions (task groups) and their progress.
    Groups,
    /// Endpoints side by side.
    Compare,
}

impl Page {
    pub const ALL: [Page; 6] = [
        Page::Lifecycle,
        Page::Endpoints,
        Page::Overview,
        Page::Failures,
        Page::Groups,
        Page::Compare,
    ];

    pub fn wire(self) -> &'static str {
        match self {
            Page::Lifecycle => "lifecycle",
            Page::Endpoints => "endpoints",
            Page::Overview => "overview",
            Page::Failures => "failures",
            Page::Groups => "groups",
            Page::Compare => "compare",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Page::Lifecycle => "Life cycle",
            Page::Endpoints => "Endpoints",
            Page::Overview => "Overview",
            Page::Failures => "Failures",
            Page::Groups => "Groups",
            Page::Compare => "Compare",
        }
    }
}

/// What the task list can be sorted by.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub enum SortKey {
    /// Since the task was submitted.
    #[default]
    Age,
    /// Where the task is in the life cycle, in the model's order of states.
    State,
    /// How long the task has been in its state.
    InState,
}

impl SortKey {
    pub const ALL: [SortKey; 3] = [SortKey::Age, SortKey::State, SortKey::InState];

    pub fn wire(self) -> &'static str {
        match self {
            SortKey::Age => "age",
            SortKey::State => "state",
            SortKey::InState => "in-state",
        }
    }

    /// The order a first click asks for: the newest, the earliest states, and the tasks stuck
    /// longest first.
    pub fn natural_descending(self) -> bool {
        match self {
            SortKey::Age | SortKey::State => false,
            SortKey::InState => true,
        }
    }
}

/// The task list's order: newest first unless asked otherwise.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct Sort {
    pub key: SortKey,
    pub descending: bool,
}

impl Sort {
    /// The order after clicking `key`'s header: the other direction if it is the key already,
    /// else that key in its natural direction.
    pub fn toggled(self, key: SortKey) -> Self {
        if self.key == key {
            Sort {
                key,
                descending: !self.descending,
            }
        } else {
            Sort {
                key,
                descending: key.natural_descending(),
            }
        }
    }

    fn wire(self) -> String {
        format!(
            "{}{}",
            if self.descending { "-" } else { "" },
            self.key.wire()
        )
    }

    fn parse(value: &str) -> Option<Self> {
        let (descending, name) = match value.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, value),
        };
        let key = SortKey::ALL.into_iter().find(|k| k.wire() == name)?;
        Some(Sort { key, descending })
    }
}

/// A moment of the past that the view shows instead of now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Moment {
    /// Right after the event with this sequence number.
    Seq(u64),
    /// At a time, as written in the address (RFC 3339); the browser reads it.
    Time(String),
}

impl Moment {
    /// A sequence number if the value is all digits, otherwise a time; nothing when empty.
    fn parse(value: &str) -> Option<Self> {
        let value = value.trim();
        if value.is_empty() {
            None
        } else if value.bytes().all(|b| b.is_ascii_digit()) {
            value.parse().ok().map(Moment::Seq)
        } else {
            Some(Moment::Time(value.to_owned()))
        }
    }

    fn wire(&self) -> String {
        match self {
            Moment::Seq(seq) => seq.to_string(),
            Moment::Time(time) => encode(time),
        }
    }
}

/// Every choice that shapes the view.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ViewState {
    pub page: Page,
    /// Several endpoints at once; empty: all.
    pub endpoints: Vec<EndpointId>,
    /// Only the signed-in user's own tasks (admin's switch; others see only theirs anyway).
    pub mine: bool,
    /// The task list shows tasks in these states; empty: all.
    pub states: Vec<State>,
    /// An edge clicked on the diagram: tasks that took it.
    pub edge: Option<(State, State)>,
    pub function: Option<FunctionId>,
    /// Text searched in task ids.
    pub search: String,
    pub task: Option<TaskId>,
    /// The task list's order.
    pub sort: Sort,
    /// The moment replayed; `None` is now, live.
    pub at: Option<Moment>,
    /// Only the tasks of this cause of failure (a key from `/v1/failures`).
    pub failure: Option<String>,
    /// Only the tasks of this submission.
    pub group: Option<TaskGroupId>,
    /// The window the comparison of endpoints covers.
    pub window: CompareWindow,
}

/// The windows endpoints can be compared over.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub enum CompareWindow {
    Minute,
    #[default]
    Quarter,
    Hour,
    Day,
}

impl CompareWindow {
    pub const ALL: [CompareWindow; 4] = [
        CompareWindow::Minute,
        CompareWindow::Quarter,
        CompareWindow::Hour,
        CompareWindow::Day,
    ];

    /// The service's name for it (`window=` of `/v1/stats`).
    pub fn wire(self) -> &'static str {
        match self {
            CompareWindow::Minute => "1m",
            CompareWindow::Quarter => "15m",
            CompareWindow::Hour => "1h",
            CompareWindow::Day => "24h",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            CompareWindow::Minute => "the last minute",
            CompareWindow::Quarter => "the last 15 minutes",
            CompareWindow::Hour => "the last hour",
            CompareWindow::Day => "the last 24 hours",
        }
    }
}

fn list<T: std::str::FromStr>(value: &str) -> Vec<T> {
    value
        .split(',')
        .filter_map(|v| v.trim().parse().ok())
        .collect()
}

fn encode(value: &str) -> String {
    let mut out = String::new();
    for b in value.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b',' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

fn decode(value: &str) -> String {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => match u8::from_str_radix(&value[i + 1..i + 3], 16) {
                Ok(b) => {
                    out.push(b);
                    i += 3;
                    continue;
                }
                Err(_) => out.push(b'%'),
            },
            b'+' => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl ViewState {
    /// Reads a query string (with or without its leading `?`); unknown or malformed parts are
    /// ignored.
    pub fn from_query(query: &str) -> Self {
        let mut state = Self::default();
        for pair in query
            .trim_start_matches('?')
            .split('&')
            .filter(|p| !p.is_empty())
        {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            let value = decode(value);
            match key {
                "view" => {
                    state.page = Page::ALL
                        .into_iter()
                        .find(|p| p.wire() == value)
                        .unwrap_or_default()
                }
                "endpoint" => state.endpoints = list(&value),
                "mine" => state.mine = matches!(value.as_str(), "true" | "1"),
                "state" => state.states = list(&value),
                "edge" => {
                    state.edge = value
                        .split_once('>')
                        .and_then(|(a, b)| Some((a.parse().ok()?, b.parse().ok()?)));
                }
                "function" => state.function = value.parse().ok(),
                "q" => state.search = value,
                "task" => state.task = value.parse().ok(),
                "sort" => state.sort = Sort::parse(&value).unwrap_or_default(),
                "at" => state.at = Moment::parse(&value),
                "failure" => state.failure = Some(value).filter(|v| !v.is_empty()),
                "group" => state.group = value.parse().ok(),
                "window" => {
                    state.window = CompareWindow::ALL
                        .into_iter()
                        .find(|w| w.wire() == value)
                        .unwrap_or_default()
                }
                _ => {}
            }
        }
        state
    }

    /// The query string, starting with `?` (or empty for the default view).
    pub fn to_query(&self) -> String {
        let join = |items: Vec<String>| items.join(",");
        let mut parts = Vec::new();
        if self.page != Page::Lifecycle {
            parts.push(format!("view={}", self.page.wire()));
        }
        if !self.endpoints.is_empty() {
            parts.push(format!(
                "endpoint={}",
                join(self.endpoints.iter().map(ToString::to_string).collect())
            ));
        }
        if self.mine {
            parts.push("mine=true".to_owned());
        }
        if !self.states.is_empty() {
            parts.push(format!(
                "state={}",
                join(self.states.iter().map(|s| s.wire().to_owned()).collect())
            ));
        }
        if let Some((from, to)) = self.edge {
            parts.push(format!("edge={}%3E{}", from.wire(), to.wire()));
        }
        if let Some(f) = self.function {
            parts.push(format!("function={f}"));
        }
        if !self.search.is_empty() {
            parts.push(format!("q={}", encode(&self.search)));
        }
        if let Some(t) = self.task {
            parts.push(format!("task={t}"));
        }
        if self.sort != Sort::default() {
            parts.push(format!("sort={}", self.sort.wire()));
        }
        if let Some(at) = &self.at {
            parts.push(format!("at={}", at.wire()));
        }
        if let Some(failure) = &self.failure {
            parts.push(format!("failure={}", encode(failure)));
        }
        if let Some(group) = self.group {
            parts.push(format!("group={group}"));
        }
        if self.window != CompareWindow::default() {
            parts.push(format!("window={}", self.window.wire()));
        }
        if parts.is_empty() {
            String::new()
        } else {
            format!("?{}", parts.join("&"))
        }
    }
}

/// How a change of view enters the browser's history.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum HistoryStep {
    /// A new entry, so that Back returns to the previous view.
    Push,
    /// The current entry rewritten: typing in the search box is not worth a Back each.
    Replace,
}

impl ViewState {
    /// Whether going from `self` to `next` is a step Back should undo: another page, task,
    /// filter, scope or order is, and so are starting and leaving a replay; the search text
    /// changing is not, nor is the replayed moment moving (dragged or played).
    pub fn history_step(&self, next: &ViewState) -> HistoryStep {
        let without_search = |v: &ViewState| ViewState {
            search: String::new(),
            at: v.at.as_ref().map(|_| Moment::Seq(0)),
            ..v.clone()
        };
        if without_search(self) == without_search(next) {
            HistoryStep::Replace
        } else {
            HistoryStep::Push
        }
    }
}

/// A value in a URL fragment such as `#token=abc&service=http%3A%2F%2Fhost%3A8080`.
pub fn from_fragment(fragment: &str, key: &str) -> Option<String> {
    let prefix = format!("{key}=");
    fragment
        .trim_start_matches('#')
        .split('&')
        .find_map(|p| p.strip_prefix(prefix.as_str()))
        .map(decode)
        .filter(|t| !t.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_query_round_trips() {
        let state = ViewState {
            page: Page::Overview,
            endpoints: vec![EndpointId::from_u128(1), EndpointId::from_u128(2)],
            mine: true,
            states: vec![State::Running, State::WaitingForEp],
            edge: Some((State::Running, State::WaitingForNodes)),
            function: Some(FunctionId::from_u128(3)),
            search: "01a2 x&y".into(),
            task: Some(TaskId::from_u128(4)),
            sort: Sort {
                key: SortKey::InState,
                descending: true,
            },
            at: Some(Moment::Seq(1234)),
            failure: Some("exception:ValueError: sample <n> is bad".into()),
            group: Some(TaskGroupId::from_u128(5)),
            window: CompareWindow::Hour,
        };
        let query = state.to_query();
        assert!(
            query.starts_with("?view=overview&endpoint=00000000-0000-0000-0000-000000000001,"),
            "{query}"
        );
        assert!(query.contains("state=running,waiting-for-ep"), "{query}");
        assert!(query.contains("&mine=true&"), "{query}");
        assert!(query.contains("&sort=-in-state&at=1234&failure=exception%3AValueError%3A%20sample%20%3Cn%3E%20is%20bad&group="), "{query}");
        assert!(query.ends_with("&window=1h"), "{query}");
        assert!(query.contains("q=01a2%20x%26y"), "{query}");
        assert_eq!(ViewState::from_query(&query), state);
        assert_eq!(ViewState::default().to_query(), "");
    }

    #[test]
    fn sorting_toggles_and_starts_in_each_key_s_natural_order() {
        let newest = Sort::default();
        assert_eq!(
            newest.toggled(SortKey::Age),
            Sort {
                key: SortKey::Age,
                descending: true
            }
        );
        let stuck = newest.toggled(SortKey::InState);
        assert!(stuck.descending, "longest in state first");
        assert!(!stuck.toggled(SortKey::InState).descending);
        assert_eq!(
            ViewState::from_query("?sort=-state").sort,
            Sort {
                key: SortKey::State,
                descending: true
            }
        );
        assert_eq!(
            ViewState::from_query("?sort=sideways").sort,
            Sort::default()
        );
    }

    #[test]
    fn pages_tasks_and_filters_enter_history_and_typing_does_not() {
        let start = ViewState::default();
        let typed = ViewState {
            search: "01a2".into(),
            ..start.clone()
        };
        assert_eq!(start.history_step(&typed), HistoryStep::Replace);
        for next in [
            ViewState {
                page: Page::Endpoints,
                ..start.clone()
            },
            ViewState {
                task: Some(TaskId::from_u128(1)),
                ..start.clone()
            },
            ViewState {
                states: vec![State::Failed],
                ..typed.clone()
            },
            ViewState {
                edge: Some((State::Running, State::Success)),
                ..start.clone()
            },
        ] {
            assert_eq!(start.history_step(&next), HistoryStep::Push, "{next:?}");
        }
    }

    #[test]
    fn a_moment_is_a_sequence_number_or_a_time() {
        assert_eq!(ViewState::from_query("?at=42").at, Some(Moment::Seq(42)));
        let time = "2026-12-01T07:30:00+01:00";
        let state = ViewState::from_query(&format!("?at={}", encode(time)));
        assert_eq!(state.at, Some(Moment::Time(time.into())));
        assert_eq!(ViewState::from_query(&state.to_query()), state);
        assert_eq!(ViewState::from_query("?at=").at, None);
    }

    #[test]
    fn entering_and_leaving_a_replay_enter_history_and_moving_in_it_does_not() {
        let live = ViewState::default();
        let at = |seq| ViewState {
            at: Some(Moment::Seq(seq)),
            ..ViewState::default()
        };
        assert_eq!(live.history_step(&at(5)), HistoryStep::Push);
        assert_eq!(at(5).history_step(&at(9)), HistoryStep::Replace);
        assert_eq!(at(9).history_step(&live), HistoryStep::Push);
    }

    #[test]
    fn junk_is_ignored() {
        let state = ViewState::from_query("?view=nowhere&state=running,bogus&task=42&zzz");
        assert_eq!(state.page, Page::Lifecycle);
        assert_eq!(state.states, vec![State::Running]);
        assert_eq!(state.task, None);
        assert!(!state.mine);
        assert!(ViewState::from_query("?mine=1").mine);
        assert!(!ViewState::from_query("?mine=no").mine);
    }

    #[test]
    fn the_token_and_service_come_from_the_fragment() {
        assert_eq!(
            from_fragment("#token=abc123", "token"),
            Some("abc123".into())
        );
        assert_eq!(from_fragment("#x=1&token=t", "token"), Some("t".into()));
        assert_eq!(from_fragment("#token=", "token"), None);
        assert_eq!(from_fragment("", "token"), None);
        let fragment = "#token=t&service=http%3A%2F%2F127.0.0.1%3A8080";
        assert_eq!(
            from_fragment(fragment, "service"),
            Some("http://127.0.0.1:8080".into())
        );
    }
}

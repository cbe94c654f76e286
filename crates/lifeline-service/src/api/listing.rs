//! Listing tasks (newest first, filtered, by edge, in a user's scope) and the statistics.

use axum::Json;
use axum::extract::{Query, State};
use lifeline_model::api::{
    GroupPage, GroupsQuery, StatsQuery, TaskListQuery, Timeline, TimelineQuery,
};
use lifeline_model::{
    DwellSummary, EdgeCount, EndpointId, State as TaskState, StatsSummary, Timestamp,
};

use super::AppState;
use super::auth::User;
use super::endpoints::parse_endpoint_id;
use super::error::{ApiError, ApiResult};
use crate::access::Scope;
use crate::store::{self, TaskFilter};

/// The items of a comma-separated query parameter. An empty item (`endpoint_id=`, `a,,b`) is
/// refused rather than read as "no filter".
pub(super) fn split<'a>(name: &str, list: Option<&'a str>) -> ApiResult<Vec<&'a str>> {
    let items: Vec<&str> = list
        .into_iter()
        .flat_map(|s| s.split(','))
        .map(str::trim)
        .collect();
    if items.iter().any(|s| s.is_empty()) {
        return Err(ApiError::bad(
            "invalid_query",
            format!("{name} has an empty value; leave the parameter out to mean all"),
        ));
    }
    Ok(items)
}

/// `FROM>TO` in wire names, an edge of the life cycle.
fn parse_edge(text: &str) -> ApiResult<(TaskState, TaskState)> {
    let bad = |why: String| ApiError::bad("invalid_edge", why);
    let (from, to) = text.split_once('>').ok_or_else(|| {
        bad(format!(
            "edge {text:?} is not FROM>TO, such as running>success"
        ))
    })?;
    let state = |s: &str| {
        s.parse::<TaskState>()
            .map_err(|e: lifeline_model::UnknownName| bad(e.to_string()))
    };
    let (from, to) = (state(from)?, state(to)?);
    if lifeline_model::Edge::find(from, to).is_none() {
        return Err(bad(format!("the life cycle has no edge {from}>{to}")));
    }
    Ok((from, to))
}

/// Page sizes `GET /v1/tasks` accepts.
const PAGE_SIZES: std::ops::RangeInclusive<usize> = 1..=10_000;

/// Which tasks a request about many covers: those the caller may see (all of their own with
/// `mine`), on the endpoints it names (all when it names none).
#[derive(Clone, Debug)]
pub(super) struct Coverage {
    pub(super) scope: Scope,
    pub(super) endpoints: Vec<EndpointId>,
}

impl Coverage {
    pub(super) fn of(
        state: &AppState,
        caller: &crate::users::Caller,
        endpoint_id: Option<&str>,
        mine: Option<bool>,
    ) -> ApiResult<Self> {
        Ok(Self {
            endpoints: split("endpoint_id", endpoint_id)?
                .into_iter()
                .map(parse_endpoint_id)
                .collect::<ApiResult<_>>()?,
            scope: Scope::of(state.directory(), caller, mine.unwrap_or(false)),
        })
    }

    /// Whether the tasks of `owner` on `endpoint` are covered.
    pub(super) fn keeps(&self, endpoint: EndpointId, owner: crate::users::UserId) -> bool {
        self.scope.sees(owner, endpoint)
            && (self.endpoints.is_empty() || self.endpoints.contains(&endpoint))
    }
}

/// A `failure=` filter: a group's key, judged as the caller sees exceptions.
fn failure_filter(key: String, caller: &crate::users::Caller) -> ApiResult<store::FailureFilter> {
    if key.trim().is_empty() || key.len() > 500 {
        return Err(ApiError::bad(
            "invalid_query",
            "failure must be a group's key from GET /v1/failures",
        ));
    }
    Ok(store::FailureFilter {
        key,
        reader: (!caller.admin).then_some(caller.id),
    })
}

pub(super) fn query_error(e: axum::extract::rejection::QueryRejection) -> ApiError {
    ApiError::bad("invalid_query", e.body_text())
}

#[tracing::instrument(skip_all)]
pub(super) async fn list(
    User(caller): User,
    State(state): State<AppState>,
    query: Result<Query<TaskListQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Json<lifeline_model::TaskPage>> {
    let Query(q) = query.map_err(query_error)?;
    let filter = TaskFilter {
        scope: Scope::of(state.directory(), &caller, q.mine.unwrap_or(false)),
        endpoints: split("endpoint_id", q.endpoint_id.as_deref())?
            .into_iter()
            .map(parse_endpoint_id)
            .collect::<ApiResult<_>>()?,
        states: split("state", q.state.as_deref())?
            .into_iter()
            .map(|s| {
                s.parse().map_err(|e: lifeline_model::UnknownName| {
                    ApiError::bad("invalid_state", e.to_string())
                })
            })
            .collect::<ApiResult<_>>()?,
        function: q
            .function_id
            .as_deref()
            .map(|f| {
                f.parse().map_err(|e: lifeline_model::IdError| {
                    ApiError::bad("invalid_id", e.to_string())
                })
            })
            .transpose()?,
        group: q
            .task_group_id
            .as_deref()
            .map(|g| {
                g.parse().map_err(|e: lifeline_model::IdError| {
                    ApiError::bad("invalid_id", e.to_string())
                })
            })
            .transpose()?,
        edge: q.edge.as_deref().map(parse_edge).transpose()?,
        failure: q
            .failure
            .map(|key| failure_filter(key, &caller))
            .transpose()?,
        before: q
            .cursor
            .as_deref()
            .map(|c| {
                c.parse::<i64>().ok().filter(|&n| n > 0).ok_or_else(|| {
                    ApiError::bad(
                        "invalid_cursor",
                        format!("{c:?} is not a cursor from a previous page"),
                    )
                })
            })
            .transpose()?,
        limit: match q.limit {
            None => 100,
            Some(n) if PAGE_SIZES.contains(&n) => n,
            Some(n) => {
                return Err(ApiError::bad(
                    "invalid_query",
                    format!(
                        "limit must be {} to {}, not {n}",
                        PAGE_SIZES.start(),
                        PAGE_SIZES.end()
                    ),
                ));
            }
        },
    };
    if filter.endpoints.len() * filter.states.len().max(1) > 200 {
        return Err(ApiError::bad(
            "invalid_query",
            "too many endpoint and state combinations (at most 200)",
        ));
    }
    let Some(at_seq) = q.at_seq else {
        return Ok(Json(
            state
                .store()
                .read(move |c| store::list_tasks(c, &filter))
                .await?,
        ));
    };
    if filter.edge.is_some() || filter.failure.is_some() {
        return Err(ApiError::bad(
            "invalid_query",
            "at_seq lists the tasks of a moment; it does not go with edge or failure",
        ));
    }
    let head = state.store().head();
    if at_seq > head {
        return Err(ApiError::bad(
            "invalid_query",
            format!("at_seq {at_seq} is after the last event ({head})"),
        ));
    }
    if at_seq < state.store().purged_through() {
        return Err(ApiError::Expired(
            "that moment is past the retention: its tasks are gone".into(),
        ));
    }
    Ok(Json(
        state
            .store()
            .read(move |c| store::tasks_at(c, &filter, at_seq))
            .await?,
    ))
}

/// Most points of `GET /v1/timeline`.
const MAX_POINTS: usize = 1000;

#[tracing::instrument(skip_all)]
pub(super) async fn timeline(
    User(caller): User,
    State(state): State<AppState>,
    query: Result<Query<TimelineQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Json<Timeline>> {
    let Query(q) = query.map_err(query_error)?;
    let coverage = Coverage::of(&state, &caller, q.endpoint_id.as_deref(), q.mine)?;
    let points = q.points.unwrap_or(200);
    if !(2..=MAX_POINTS).contains(&points) {
        return Err(ApiError::bad(
            "invalid_query",
            format!("points must be 2 to {MAX_POINTS}"),
        ));
    }
    let keep = move |endpoint, owner| coverage.keeps(endpoint, owner);
    let head = state.store().head();
    Ok(Json(
        state
            .store()
            .read(move |c| store::timeline(c, head, points, keep))
            .await?,
    ))
}

#[tracing::instrument(skip_all)]
pub(super) async fn stats(
    User(caller): User,
    State(state): State<AppState>,
    query: Result<Query<StatsQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Json<StatsSummary>> {
    let Query(q) = query.map_err(query_error)?;
    let coverage = Coverage::of(&state, &caller, q.endpoint_id.as_deref(), q.mine)?;
    let keep = move |endpoint, owner| coverage.keeps(endpoint, owner);
    let illegal = state
        .forwarder()
        .illegal_reports
        .load(std::sync::atomic::Ordering::Relaxed);
    let moment = Moment::of(&q)?;
    if let Some(group) = q.task_group_id.as_deref() {
        if moment != Moment::default() {
            return Err(ApiError::bad(
                "invalid_query",
                "task_group_id gives a submission's figures now: not with at_seq, at or window",
            ));
        }
        let group: lifeline_model::TaskGroupId = group
            .parse()
            .map_err(|e: lifeline_model::IdError| ApiError::bad("invalid_id", e.to_string()))?;
        let unknown = || ApiError::NotFound(format!("unknown task group {group}"));
        let figures = state
            .store()
            .read(move |c| store::group_figures(c, group))
            .await?
            .ok_or_else(unknown)?;
        if !keep(figures.endpoint, figures.owner) {
            return Err(unknown());
        }
        let mut s = crate::stats::Stats {
            tasks: figures.tasks,
            ..crate::stats::Stats::default()
        };
        for (from, to, n) in figures.edges {
            s.edges[from.index()][to.index()] = n;
        }
        return Ok(Json(summary(figures.seq, &s, illegal)));
    }
    if moment == Moment::default() {
        // Now: one read of the book, so the figures of several endpoints share one sequence
        // number.
        let (seq, s) = state.store().with_stats(|book| book.sum(keep));
        return Ok(Json(summary(seq, &s, illegal)));
    }
    let head = state.store().head();
    if let Some(seq) = moment.at_seq.filter(|seq| *seq > head) {
        return Err(ApiError::bad(
            "invalid_query",
            format!("at_seq {seq} is after the last event ({head})"),
        ));
    }
    let past = state
        .store()
        .read(move |c| moment.read(c, head, keep))
        .await?;
    let purged = state.store().purged_through();
    if past.earliest < purged {
        return Err(ApiError::Expired(format!(
            "the events up to {purged} are past the retention: the figures of that time are gone"
        )));
    }
    let mut answer = summary(past.seq, &past.stats, illegal);
    answer.at = past.at;
    answer.window_secs = moment.window.map(|w| w.as_secs_f64());
    Ok(Json(answer))
}

/// The figures of a moment in the past.
struct Past {
    seq: u64,
    at: Option<Timestamp>,
    stats: crate::stats::Stats,
    /// The earliest event they depend on (the window's start).
    earliest: u64,
}

/// The moment and window a statistics request asks for; the default is now, since the start.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
struct Moment {
    at_seq: Option<u64>,
    at: Option<Timestamp>,
    window: Option<std::time::Duration>,
}

impl Moment {
    fn of(q: &StatsQuery) -> ApiResult<Self> {
        if q.at_seq.is_some() && q.at.is_some() {
            return Err(ApiError::bad(
                "invalid_query",
                "give at_seq or at, not both",
            ));
        }
        let at = q.at;
        let window = q
            .window
            .as_deref()
            .map(|w| {
                crate::config::parse_duration(w)
                    .map_err(|e| ApiError::bad("invalid_query", format!("window: {e:#}")))
            })
            .transpose()?;
        Ok(Self {
            at_seq: q.at_seq,
            at,
            window,
        })
    }

    /// The book at the moment (minus the one at the window's start), summed over what `keep`
    /// accepts.
    fn read(
        self,
        c: &rusqlite::Connection,
        head: u64,
        keep: impl Fn(EndpointId, crate::users::UserId) -> bool,
    ) -> crate::store::StoreResult<Past> {
        let seq = match (self.at_seq, self.at) {
            (Some(seq), _) => seq,
            (None, Some(at)) => store::seq_at_time(c, at)?,
            (None, None) => head,
        };
        let at = store::time_of(c, seq)?;
        let mut book = store::book_at(c, seq)?;
        let mut earliest = seq;
        if let (Some(window), Some(end)) = (self.window, at) {
            let start = Timestamp::from_micros(end.as_micros() - window.as_micros() as i64);
            earliest = store::seq_at_time(c, start)?;
            book = book.since(&store::book_at(c, earliest)?);
        }
        Ok(Past {
            seq,
            at,
            stats: book.sum(keep),
            earliest,
        })
    }
}

fn summary(seq: u64, s: &crate::stats::Stats, illegal_reports: u64) -> StatsSummary {
    let mut edges = Vec::new();
    for from in TaskState::ALL {
        for to in TaskState::ALL {
            let count = s.edges[from.index()][to.index()];
            if count > 0 {
                edges.push(EdgeCount { from, to, count });
            }
        }
    }
    let dwell = TaskState::ALL
        .into_iter()
        .zip(&s.dwell)
        .filter(|(_, h)| h.count() > 0)
        .map(|(state, h)| DwellSummary {
            state,
            count: h.count(),
            p50: h.quantile(0.5),
            p90: h.quantile(0.9),
            p99: h.quantile(0.99),
        })
        .collect();
    StatsSummary {
        seq,
        total: s.tasks.total(),
        pending: s.tasks.pending(),
        tasks: s.tasks,
        edges,
        dwell,
        illegal_reports,
        at: None,
        window_secs: None,
    }
}

/// Most groups in one page of `GET /v1/groups`.
const MAX_GROUPS_PAGE: usize = 200;

#[tracing::instrument(skip_all)]
pub(super) async fn groups(
    User(caller): User,
    State(state): State<AppState>,
    query: Result<Query<GroupsQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Json<GroupPage>> {
    let Query(q) = query.map_err(query_error)?;
    let coverage = Coverage::of(&state, &caller, q.endpoint_id.as_deref(), q.mine)?;
    let limit = q.limit.unwrap_or(50);
    if !(1..=MAX_GROUPS_PAGE).contains(&limit) {
        return Err(ApiError::bad(
            "invalid_query",
            format!("limit must be 1 to {MAX_GROUPS_PAGE}"),
        ));
    }
    let before = q
        .cursor
        .as_deref()
        .map(|c| {
            c.parse::<i64>().map_err(|_| {
                ApiError::bad("invalid_cursor", "the cursor is not one this service gave")
            })
        })
        .transpose()?;
    Ok(Json(
        state
            .store()
            .read(move |c| store::list_groups(c, |e, o| coverage.keeps(e, o), before, limit))
            .await?,
    ))
}

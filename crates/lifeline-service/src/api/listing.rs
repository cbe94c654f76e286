//! Listing tasks (newest first, filtered, by edge, in a user's scope) and the statistics.

use axum::Json;
use axum::extract::{Query, State};
use lifeline_model::api::{StatsQuery, TaskListQuery};
use lifeline_model::{DwellSummary, EdgeCount, EndpointId, State as TaskState, StatsSummary};

use super::AppState;
use super::auth::User;
use super::endpoints::parse_endpoint_id;
use super::error::{ApiError, ApiResult};
use crate::access::Scope;
use crate::store::{self, TaskFilter};

/// The items of a comma-separated query parameter. An empty item (`endpoint_id=`, `a,,b`) is
/// refused rather than read as "no filter".
fn split<'a>(name: &str, list: Option<&'a str>) -> ApiResult<Vec<&'a str>> {
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
    Ok(Json(
        state
            .store()
            .read(move |c| store::list_tasks(c, &filter))
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
    let endpoints: Vec<EndpointId> = split("endpoint_id", q.endpoint_id.as_deref())?
        .into_iter()
        .map(parse_endpoint_id)
        .collect::<ApiResult<_>>()?;
    let scope = Scope::of(state.directory(), &caller, q.mine.unwrap_or(false));
    // One read of the book: the figures of several endpoints share one sequence number.
    let (seq, s) = state.store().with_stats(|book| {
        book.sum(|endpoint, owner| {
            scope.sees(owner, endpoint) && (endpoints.is_empty() || endpoints.contains(&endpoint))
        })
    });
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
    Ok(Json(StatsSummary {
        seq,
        total: s.tasks.total(),
        pending: s.tasks.pending(),
        tasks: s.tasks,
        edges,
        dwell,
        illegal_reports: state
            .forwarder()
            .illegal_reports
            .load(std::sync::atomic::Ordering::Relaxed),
    }))
}

//! `GET /v1/failures`: failed tasks and retried attempts grouped by cause, computed by the
//! service so that a dashboard never downloads every failed task.

use std::collections::{BTreeSet, HashMap};

use axum::Json;
use axum::extract::{Query, State};
use lifeline_model::api::{FailureGroup, Failures, FailuresQuery};
use lifeline_model::{EndpointId, failure_key};

use super::AppState;
use super::auth::User;
use super::error::ApiResult;
use super::listing::{Coverage, query_error};
use crate::access::may_read_payload;
use crate::store::{self, FailureRow};

/// Most failures and retries read for one answer (the newest).
const SCAN: usize = 200_000;
/// Longest example kept in a group, in bytes.
const EXAMPLE: usize = 8 * 1024;

#[tracing::instrument(skip_all)]
pub(super) async fn list(
    User(caller): User,
    State(state): State<AppState>,
    query: Result<Query<FailuresQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Json<Failures>> {
    let Query(q) = query.map_err(query_error)?;
    let coverage = Coverage::of(&state, &caller, q.endpoint_id.as_deref(), q.mine)?;
    let since = q.since;
    let rows = state
        .store()
        .read(move |c| {
            let after = match since {
                // The last event before `since`: everything after it is at or after `since`.
                Some(at) => store::seq_at_time(
                    c,
                    lifeline_model::Timestamp::from_micros(at.as_micros() - 1),
                )?,
                None => 0,
            };
            store::failures(c, i64::MAX, after as i64, SCAN)
        })
        .await?;
    let truncated = rows.len() == SCAN;
    let scanned = rows.len() as u64;
    let mut groups: HashMap<String, Group> = HashMap::new();
    // Newest first: the first row of a group is its example.
    for row in rows {
        let t = &row.task;
        if !coverage.keeps(t.task.endpoint_id, t.owner) {
            continue;
        }
        let readable = may_read_payload(&caller, t.owner);
        let (kind, signature) = row.cause(readable);
        let key = failure_key(kind, &signature);
        groups
            .entry(key.clone())
            .or_insert_with(|| Group::new(key, kind, signature, &row, readable))
            .add(&row);
    }
    let mut groups: Vec<FailureGroup> = groups.into_values().map(Group::finish).collect();
    groups.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.key.cmp(&b.key)));
    Ok(Json(Failures {
        groups,
        scanned,
        truncated,
    }))
}

/// A group being gathered.
struct Group {
    summary: FailureGroup,
    endpoints: BTreeSet<EndpointId>,
    functions: BTreeSet<lifeline_model::FunctionId>,
}

impl Group {
    fn new(
        key: String,
        reason: lifeline_model::ReasonKind,
        signature: String,
        newest: &FailureRow,
        readable: bool,
    ) -> Self {
        let mut example = if readable {
            newest.reason.clone().unwrap_or_default()
        } else {
            signature.clone()
        };
        if example.len() > EXAMPLE {
            let mut cut = EXAMPLE;
            while !example.is_char_boundary(cut) {
                cut -= 1;
            }
            example.truncate(cut);
        }
        Self {
            summary: FailureGroup {
                key,
                reason,
                signature,
                count: 0,
                final_failures: 0,
                retried: 0,
                first_seen: newest.at,
                last_seen: newest.at,
                endpoints: Vec::new(),
                functions: Vec::new(),
                example_task_id: newest.task.task.task_id,
                example,
            },
            endpoints: BTreeSet::new(),
            functions: BTreeSet::new(),
        }
    }

    fn add(&mut self, row: &FailureRow) {
        let s = &mut self.summary;
        s.count += 1;
        if row.is_final() {
            s.final_failures += 1;
        } else {
            s.retried += 1;
        }
        s.first_seen = s.first_seen.min(row.at);
        s.last_seen = s.last_seen.max(row.at);
        self.endpoints.insert(row.task.task.endpoint_id);
        self.functions.insert(row.task.task.function_id);
    }

    fn finish(self) -> FailureGroup {
        FailureGroup {
            endpoints: self.endpoints.into_iter().collect(),
            functions: self.functions.into_iter().collect(),
            ..self.summary
        }
    }
}

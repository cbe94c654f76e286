//! One executor of an endpoint as the endpoints page shows it: its managers and workers, its
//! tasks by state, the provider's last error, and its blocks (allocations from the provider,
//! such as Slurm jobs), each with its job, state, nodes, age, walltime left, tasks and the
//! scheduler's reason. The tasks waiting for nodes stand beside the pending blocks that will
//! serve them.
//!
//! A report's times are by the endpoint's clock. They are read against the report's own `at`,
//! moved forward by how long ago the service heard the endpoint ([`endpoint_now`]), so a browser
//! whose clock differs from the endpoint's still shows the right ages.

use leptos::prelude::*;
use lifeline_model::{BlockReport, BlockState, ExecutorReport, State, Timestamp};

use crate::components::task_table::age;

/// The endpoint's clock now, estimated from its last report: `report_at` plus the time since
/// the heartbeat that carried it (by the service's clock, which the browser's `now` follows).
pub fn endpoint_now(report_at: Timestamp, last_heartbeat: Option<Timestamp>, now: f64) -> f64 {
    let since = last_heartbeat.map_or(0.0, |t| (now - t.as_secs_f64()).max(0.0));
    report_at.as_secs_f64() + since
}

/// `1 task`, `3 tasks`.
fn plural(n: impl Into<u64>, one: &str, many: &str) -> String {
    let n = n.into();
    format!("{n} {}", if n == 1 { one } else { many })
}

/// The block's job as people name it: `slurm job 57`.
pub fn job_label(provider: &str, b: &BlockReport) -> String {
    match (&b.job_id, b.state.is_over()) {
        (Some(job), _) => format!("{provider} job {job}"),
        (None, false) => "submitting".into(),
        (None, true) => "no job".into(),
    }
}

/// What a block's line says besides its state and job, as short phrases: nodes (managers
/// connected of nodes asked for), how long it has waited or run, the walltime it has left, and
/// its tasks. An ended block says only how many nodes it had: its times are over.
pub fn block_facts(b: &BlockReport, now: f64) -> Vec<String> {
    if b.state.is_over() {
        return vec![plural(b.nodes, "node", "nodes")];
    }
    let mut facts = vec![format!("{}/{} nodes", b.managers, b.nodes)];
    match b.started_at {
        Some(start) => {
            let up = (now - start.as_secs_f64()).max(0.0);
            facts.push(format!("up {}", age(up)));
            if let Some(walltime) = b.walltime_secs {
                facts.push(format!("{} left", age(walltime as f64 - up)));
            }
        }
        None => {
            facts.push(format!(
                "waiting {}",
                age(now - b.submitted_at.as_secs_f64())
            ));
            if let Some(walltime) = b.walltime_secs {
                facts.push(format!("{} walltime", age(walltime as f64)));
            }
        }
    }
    facts.push(plural(b.tasks, "task", "tasks"));
    facts
}

/// Pending blocks first (they answer the waiting tasks), then running ones, then those that
/// ended; by block number within each.
fn order(state: BlockState) -> u8 {
    match state {
        BlockState::Pending => 0,
        BlockState::Running => 1,
        BlockState::Completed
        | BlockState::Failed
        | BlockState::Timeout
        | BlockState::Cancelled => 2,
    }
}

#[component]
fn Block(block: BlockReport, provider: String, now: f64) -> impl IntoView {
    let state = block.state.wire();
    let facts = block_facts(&block, now)
        .into_iter()
        .map(|f| view! { <span class="block-fact">{f}</span>" " })
        .collect_view();
    view! {
        <li class="block" data-block-id=block.block_id data-block-state=state>
            <span class=format!("block-state block-{state}")>{state}</span>
            <span class="block-name">{format!("block {}", block.block_id)}</span>
            <span class="block-job mono">{job_label(&provider, &block)}</span>
            <span class="block-facts">{facts}</span>
            {block.reason.map(|r| view! { <span class="block-reason">{r}</span> })}
        </li>
    }
}

/// One executor: a summary line, its tasks by state, the provider's error, and its blocks.
/// `now` is the endpoint's clock ([`endpoint_now`]).
#[component]
pub fn Executor(executor: ExecutorReport, now: f64) -> impl IntoView {
    let x = executor;
    let tasks = State::ALL
        .into_iter()
        .filter(|s| x.tasks.get(*s) > 0)
        .map(|s| format!("{} {}", x.tasks.get(s), s.wire()))
        .collect::<Vec<_>>()
        .join(", ");
    let waiting = x.tasks.get(State::WaitingForNodes);
    let mut blocks = x.blocks;
    blocks.sort_by_key(|b| (order(b.state), b.block_id));
    let (pending, others): (Vec<_>, Vec<_>) = blocks
        .into_iter()
        .partition(|b| b.state == BlockState::Pending);
    let provider = x.provider.clone();
    let list = move |blocks: Vec<BlockReport>| {
        let provider = provider.clone();
        view! {
            <ul class="blocks">
                {blocks.into_iter().map(|b| view! { <Block block=b provider=provider.clone() now=now/> }).collect_view()}
            </ul>
        }
    };
    // The waiting tasks are shown beside the pending blocks; without any, on their own line.
    let waiting_note = move || {
        view! {
            <p class="waiting" data-waiting-for-nodes=waiting>
                <strong>{waiting}</strong>
                {if waiting == 1 { " task waiting for nodes" } else { " tasks waiting for nodes" }}
            </p>
        }
    };
    let pending_group = if pending.is_empty() {
        (waiting > 0).then(|| waiting_note().into_any())
    } else {
        Some(
            view! {
                <div class="pending-blocks">
                    {waiting_note()}
                    {list(pending)}
                </div>
            }
            .into_any(),
        )
    };
    let summary = format!(
        "{}, {}: {} busy, {} idle",
        plural(x.managers, "manager", "managers"),
        plural(x.total_workers, "worker", "workers"),
        x.busy_workers,
        x.idle_workers
    );
    view! {
        <li class="executor" data-executor=x.label.clone()>
            <div class="executor-head">
                <strong>{x.label.clone()}</strong>
                <span class="provider">{x.provider.clone()}</span>
                <span>{summary}</span>
            </div>
            {(!tasks.is_empty()).then(|| view! { <div class="executor-tasks muted">{format!("tasks: {tasks}")}</div> })}
            {x.provider_error.map(|error| view! {
                <p class="notice inline" role="status" data-provider-error="">
                    <strong>{format!("{}'s last command failed: ", x.provider)}</strong>{error}
                </p>
            })}
            {pending_group}
            {(!others.is_empty()).then(|| list(others))}
        </li>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: f64 = 1_700_000_000.0;

    fn block(state: BlockState) -> BlockReport {
        BlockReport {
            block_id: 2,
            job_id: Some("57".into()),
            state,
            reason: None,
            nodes: 1,
            managers: 0,
            submitted_at: Timestamp::from_secs_f64(T0),
            started_at: None,
            walltime_secs: Some(1800),
            tasks: 0,
        }
    }

    #[test]
    fn the_endpoint_s_clock_runs_on_from_its_report() {
        let at = Timestamp::from_secs_f64(T0);
        // The browser's clock is 100 s ahead of the endpoint's; the heartbeat was 5 s ago.
        let heard = Timestamp::from_secs_f64(T0 + 100.0);
        assert_eq!(endpoint_now(at, Some(heard), T0 + 105.0), T0 + 5.0);
        assert_eq!(endpoint_now(at, None, T0 + 105.0), T0);
        // A heartbeat stamped after the browser's now never moves the clock back.
        assert_eq!(endpoint_now(at, Some(heard), T0 + 90.0), T0);
    }

    #[test]
    fn a_pending_block_says_how_long_it_has_waited() {
        let b = block(BlockState::Pending);
        assert_eq!(
            block_facts(&b, T0 + 12.0),
            ["0/1 nodes", "waiting 12s", "30m 0s walltime", "0 tasks"]
        );
        assert_eq!(job_label("slurm", &b), "slurm job 57");
        let submitting = BlockReport {
            job_id: None,
            walltime_secs: None,
            ..b
        };
        assert_eq!(job_label("slurm", &submitting), "submitting");
        assert_eq!(
            block_facts(&submitting, T0),
            ["0/1 nodes", "waiting 0s", "0 tasks"]
        );
    }

    #[test]
    fn a_running_block_says_how_long_it_has_run_and_has_left() {
        let b = BlockReport {
            managers: 1,
            started_at: Some(Timestamp::from_secs_f64(T0 + 10.0)),
            tasks: 1,
            ..block(BlockState::Running)
        };
        assert_eq!(
            block_facts(&b, T0 + 140.0),
            ["1/1 nodes", "up 2m 10s", "27m 50s left", "1 task"]
        );
        // Past its walltime (the scheduler has not said so yet): nothing left, never negative.
        assert_eq!(block_facts(&b, T0 + 4000.0)[2], "0s left");
    }

    #[test]
    fn an_ended_block_says_only_how_many_nodes_it_had() {
        let b = BlockReport {
            job_id: None,
            reason: Some("sbatch: error: invalid partition".into()),
            ..block(BlockState::Failed)
        };
        assert_eq!(block_facts(&b, T0 + 60.0), ["1 node"]);
        assert_eq!(job_label("slurm", &b), "no job");
    }

    #[test]
    fn pending_blocks_come_first_and_ended_ones_last() {
        let mut states = BlockState::ALL.to_vec();
        states.reverse();
        states.sort_by_key(|s| order(*s));
        assert_eq!(&states[..2], [BlockState::Pending, BlockState::Running]);
        assert!(states[2..].iter().all(|s| s.is_over()));
    }
}

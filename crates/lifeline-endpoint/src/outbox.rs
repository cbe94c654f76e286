//! Report batches not yet acknowledged by the service, kept on disk so that a service restart,
//! a network cut or an agent restart loses no result. One file per batch, removed on
//! acknowledgement and replayed, in order, after every reconnection.

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;

use lifeline_model::TaskId;
use lifeline_protocol::{FromEndpoint, Reported};

#[derive(Debug)]
pub(crate) struct Outbox {
    dir: PathBuf,
    /// Batch number → its message text and the tasks it finishes.
    batches: BTreeMap<u64, (String, HashSet<TaskId>)>,
    next: u64,
}

impl Outbox {
    /// Opens the outbox in `dir`, loading the batches a previous run left.
    pub(crate) fn open(dir: PathBuf) -> anyhow::Result<Self> {
        std::fs::create_dir_all(&dir)?;
        let mut batches = BTreeMap::new();
        for entry in std::fs::read_dir(&dir)? {
            let path = entry?.path();
            let Some(batch) = path
                .file_stem()
                .and_then(|s| s.to_str())
                .and_then(|s| s.parse::<u64>().ok())
            else {
                continue;
            };
            let text = std::fs::read_to_string(&path)?;
            match serde_json::from_str::<FromEndpoint>(&text) {
                Ok(FromEndpoint::Report { transitions, .. }) => {
                    batches.insert(batch, (text, finished(&transitions)));
                }
                _ => {
                    tracing::warn!(path = %path.display(), "ignoring an unreadable outbox file");
                }
            }
        }
        let next = batches.keys().next_back().map_or(1, |b| b + 1);
        Ok(Self { dir, batches, next })
    }

    /// Stores a new batch durably and returns its message text.
    pub(crate) fn push(&mut self, transitions: Vec<Reported>) -> anyhow::Result<String> {
        let batch = self.next;
        self.next += 1;
        let done = finished(&transitions);
        let text = serde_json::to_string(&FromEndpoint::Report { batch, transitions })?;
        std::fs::write(self.dir.join(format!("{batch:020}.json")), &text)?;
        self.batches.insert(batch, (text.clone(), done));
        Ok(text)
    }

    /// The number the next batch will take.
    pub(crate) fn next_batch(&self) -> u64 {
        self.next
    }

    /// The service stored `batch`: forget it.
    pub(crate) fn acknowledged(&mut self, batch: u64) {
        if self.batches.remove(&batch).is_some() {
            let _ = std::fs::remove_file(self.dir.join(format!("{batch:020}.json")));
        }
    }

    /// Every unacknowledged batch, oldest first.
    pub(crate) fn pending(&self) -> Vec<String> {
        self.batches
            .values()
            .map(|(text, _)| text.clone())
            .collect()
    }

    /// Tasks whose end is waiting in the outbox: the agent still answers for them.
    pub(crate) fn finishing(&self) -> impl Iterator<Item = TaskId> + '_ {
        self.batches
            .values()
            .flat_map(|(_, done)| done.iter().copied())
    }

    pub(crate) fn len(&self) -> usize {
        self.batches.len()
    }
}

fn finished(transitions: &[Reported]) -> HashSet<TaskId> {
    transitions
        .iter()
        .filter(|t| t.state.is_terminal())
        .map(|t| t.task_id)
        .collect()
}

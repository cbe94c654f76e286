//! What failed tasks raised, in one line each, for the task list: fetched for the failed rows on
//! screen, a batch at a time, and kept (a failed task's exception never changes).

use std::collections::{HashMap, HashSet};

use leptos::prelude::*;
use leptos::task::spawn_local;
use lifeline_model::TaskId;
use lifeline_model::api::BatchEntry;

use super::Auth;

/// An exception in one line: a Python traceback's last line (`ValueError: bad input: 42`), which
/// names the error; otherwise the first line.
pub fn exception_line(text: &str) -> String {
    let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
    let line = if text.trim_start().starts_with("Traceback") {
        lines.next_back()
    } else {
        lines.next()
    };
    line.unwrap_or_default().to_owned()
}

/// The one-line exceptions known so far, by task.
#[derive(Copy, Clone, Debug)]
pub struct Exceptions {
    lines: RwSignal<HashMap<TaskId, String>>,
    /// Asked for already (answered or not), so that each is asked once.
    asked: StoredValue<HashSet<TaskId>>,
    auth: Auth,
}

impl Exceptions {
    pub(super) fn new(auth: Auth) -> Self {
        Self {
            lines: RwSignal::new(HashMap::new()),
            asked: StoredValue::new(HashSet::new()),
            auth,
        }
    }

    /// A failed task's exception in one line, once known; runs again when one arrives.
    pub fn line(&self, id: TaskId) -> Option<String> {
        self.lines.with(|l| l.get(&id).cloned())
    }

    /// Fetches the exceptions of these failed tasks that were not asked for yet.
    pub fn want(&self, ids: Vec<TaskId>) {
        let Some(api) = self.auth.api.get_untracked() else {
            return;
        };
        let fresh: Vec<TaskId> = self
            .asked
            .try_update_value(|asked| ids.into_iter().filter(|id| asked.insert(*id)).collect())
            .unwrap_or_default();
        if fresh.is_empty() {
            return;
        }
        let lines = self.lines;
        spawn_local(async move {
            let Ok(answer) = api.batch_status(&fresh).await else {
                return;
            };
            let found: Vec<(TaskId, String)> = answer
                .results
                .into_values()
                .filter_map(|entry| match entry {
                    BatchEntry::Status(doc) => Some((doc.task_id, exception_line(&doc.exception?))),
                    BatchEntry::Error(_) => None,
                })
                .collect();
            lines.try_update(|l| l.extend(found));
        });
    }
}

#[cfg(test)]
mod tests {
    use super::exception_line;

    #[test]
    fn a_traceback_reads_as_its_last_line() {
        let traceback = "Traceback (most recent call last):\n  File \"<lifeline function boom>\", line 7, in boom\n    raise ValueError(f\"bad input: {n}\")\nValueError: bad input: 42\n";
        assert_eq!(exception_line(traceback), "ValueError: bad input: 42");
        assert_eq!(
            exception_line("worker lost: the process was killed\nmore"),
            "worker lost: the process was killed"
        );
        assert_eq!(exception_line("  \n"), "");
    }
}

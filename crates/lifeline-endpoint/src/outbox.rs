//! Report batches not yet acknowledged by the service, kept on disk so that a service restart,
//! a network cut or an agent restart loses no result; replayed, in order, after every
//! reconnection.
//!
//! Batches are appended to numbered segment files (`segment-<n>.log`), one line each
//! (`B <batch> <message>`), and acknowledgements too (`A <batch>`). A segment is removed once
//! every batch in it is acknowledged and a newer one is being written; the current segment is
//! emptied whenever nothing is left unacknowledged. Appending to a file, rather than creating and
//! removing a file per batch, keeps the file system's inode allocation out of every report.
//!
//! On open, every segment is read in order: batches minus acknowledgements are what is left. A
//! line cut short by a crash is ignored. Files of the older layout (`<batch>.json`, one per
//! batch) are read too.

use std::collections::{BTreeMap, HashSet};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use lifeline_model::TaskId;
use lifeline_protocol::{FromEndpoint, Reported};

/// A segment grows to about this size before the next one starts.
const SEGMENT_BYTES: u64 = 8 * 1024 * 1024;

/// A batch waiting for acknowledgement.
#[derive(Debug)]
struct Waiting {
    text: String,
    /// The tasks it finishes.
    done: HashSet<TaskId>,
    /// The segment it is written in.
    segment: u64,
}

#[derive(Debug)]
pub(crate) struct Outbox {
    dir: PathBuf,
    batches: BTreeMap<u64, Waiting>,
    next: u64,
    /// Segments by number: how many of their batches wait for acknowledgement.
    segments: BTreeMap<u64, usize>,
    /// The number the next segment takes.
    next_segment: u64,
    /// The segment being appended to: its number, file and size.
    current: Option<(u64, File, u64)>,
}

fn segment_path(dir: &Path, n: u64) -> PathBuf {
    dir.join(format!("segment-{n:020}.log"))
}

/// The number of a segment file's name.
fn segment_number(name: &str) -> Option<u64> {
    name.strip_prefix("segment-")?
        .strip_suffix(".log")?
        .parse()
        .ok()
}

/// A message read back from disk: a report batch, with the tasks it finishes.
fn parse_report(text: &str) -> Option<HashSet<TaskId>> {
    match serde_json::from_str::<FromEndpoint>(text) {
        Ok(FromEndpoint::Report { transitions, .. }) => Some(finished(&transitions)),
        _ => None,
    }
}

impl Outbox {
    /// Opens the outbox in `dir`, loading the batches a previous run left.
    pub(crate) fn open(dir: PathBuf) -> anyhow::Result<Self> {
        std::fs::create_dir_all(&dir)?;
        let mut batches = BTreeMap::new();
        let mut acked = HashSet::new();
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)?
            .map(|e| e.map(|e| e.path()))
            .collect::<Result<_, _>>()?;
        files.sort();
        let mut next_segment = 1;
        for path in &files {
            let name = path.file_name().and_then(|s| s.to_str()).unwrap_or("");
            if let Some(n) = segment_number(name) {
                next_segment = next_segment.max(n + 1);
                read_segment(path, &mut batches, &mut acked)?;
            } else if let Some(batch) = name.strip_suffix(".json").and_then(|s| s.parse().ok()) {
                // The older layout: one file per batch.
                let text = std::fs::read_to_string(path)?;
                match parse_report(&text) {
                    Some(done) => {
                        batches.insert(batch, (text, done));
                    }
                    None => {
                        tracing::warn!(path = %path.display(), "ignoring an unreadable outbox file")
                    }
                }
            }
        }
        for batch in acked {
            batches.remove(&batch);
        }
        let next = batches.keys().next_back().map_or(1, |b| b + 1);
        let mut outbox = Self {
            dir,
            batches: BTreeMap::new(),
            next,
            segments: BTreeMap::new(),
            next_segment,
            current: None,
        };
        // What is left goes into a fresh segment (numbered after every file read); the files it
        // came from go.
        for (batch, (text, done)) in batches {
            let segment = outbox.append_batch(batch, &text)?;
            outbox.batches.insert(
                batch,
                Waiting {
                    text,
                    done,
                    segment,
                },
            );
        }
        for path in files {
            std::fs::remove_file(&path)?;
        }
        Ok(outbox)
    }

    /// Stores a new batch durably and returns its message text.
    pub(crate) fn push(&mut self, transitions: Vec<Reported>) -> anyhow::Result<String> {
        let batch = self.next;
        self.next += 1;
        let done = finished(&transitions);
        let text = serde_json::to_string(&FromEndpoint::Report { batch, transitions })?;
        let segment = self.append_batch(batch, &text)?;
        self.batches.insert(
            batch,
            Waiting {
                text: text.clone(),
                done,
                segment,
            },
        );
        Ok(text)
    }

    /// Appends a batch to the current segment, starting a new one when it is full; returns the
    /// segment's number.
    fn append_batch(&mut self, batch: u64, text: &str) -> anyhow::Result<u64> {
        if self
            .current
            .as_ref()
            .is_none_or(|(_, _, size)| *size >= SEGMENT_BYTES)
        {
            let n = self.next_segment;
            self.next_segment += 1;
            let file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(segment_path(&self.dir, n))?;
            self.current = Some((n, file, 0));
            self.segments.insert(n, 0);
        }
        self.write(format!("B {batch} {text}\n").as_bytes())?;
        let n = self.current.as_ref().map_or(0, |(n, ..)| *n);
        *self.segments.entry(n).or_default() += 1;
        Ok(n)
    }

    fn write(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        let Some((_, file, size)) = self.current.as_mut() else {
            return Ok(());
        };
        file.write_all(bytes)?;
        *size += bytes.len() as u64;
        Ok(())
    }

    /// The number the next batch will take.
    pub(crate) fn next_batch(&self) -> u64 {
        self.next
    }

    /// The service stored `batch`: forget it.
    pub(crate) fn acknowledged(&mut self, batch: u64) {
        let Some(waiting) = self.batches.remove(&batch) else {
            return;
        };
        if let Err(error) = self.forget(batch, waiting.segment) {
            // The batch may be replayed after a restart; the service takes a replay as a
            // duplicate.
            tracing::warn!(%error, batch, "cannot record an acknowledgement in the outbox");
        }
    }

    fn forget(&mut self, batch: u64, segment: u64) -> std::io::Result<()> {
        let current = self.current.as_ref().map(|(n, ..)| *n);
        if let Some(left) = self.segments.get_mut(&segment) {
            *left = left.saturating_sub(1);
            if *left == 0 && Some(segment) != current {
                self.segments.remove(&segment);
                std::fs::remove_file(segment_path(&self.dir, segment))?;
            }
        }
        if self.batches.is_empty() {
            // Nothing waits: the current segment starts over, empty.
            if let Some((n, file, size)) = self.current.as_mut() {
                file.set_len(0)?;
                *size = 0;
                self.segments.insert(*n, 0);
            }
            return Ok(());
        }
        self.write(format!("A {batch}\n").as_bytes())
    }

    /// Every unacknowledged batch, oldest first.
    pub(crate) fn pending(&self) -> Vec<String> {
        self.batches.values().map(|w| w.text.clone()).collect()
    }

    /// Tasks whose end is waiting in the outbox: the agent still answers for them.
    pub(crate) fn finishing(&self) -> impl Iterator<Item = TaskId> + '_ {
        self.batches.values().flat_map(|w| w.done.iter().copied())
    }

    pub(crate) fn len(&self) -> usize {
        self.batches.len()
    }
}

/// Reads a segment's batches and acknowledgements; a damaged line (a crash cut it short) is
/// skipped.
fn read_segment(
    path: &Path,
    batches: &mut BTreeMap<u64, (String, HashSet<TaskId>)>,
    acked: &mut HashSet<u64>,
) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(path)?;
    for line in text.lines() {
        let mut parts = line.splitn(3, ' ');
        match (
            parts.next(),
            parts.next().and_then(|b| b.parse::<u64>().ok()),
            parts.next(),
        ) {
            (Some("B"), Some(batch), Some(message)) => match parse_report(message) {
                Some(done) => {
                    batches.insert(batch, (message.to_owned(), done));
                }
                None => {
                    tracing::warn!(path = %path.display(), batch, "skipping a damaged outbox batch")
                }
            },
            (Some("A"), Some(batch), None) => {
                acked.insert(batch);
            }
            _ => tracing::warn!(path = %path.display(), "skipping a damaged outbox line"),
        }
    }
    Ok(())
}

fn finished(transitions: &[Reported]) -> HashSet<TaskId> {
    transitions
        .iter()
        .filter(|t| t.state.is_terminal())
        .map(|t| t.task_id)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use lifeline_model::{Actor, State, Timestamp};

    fn report(task: u128, state: State) -> Vec<Reported> {
        vec![Reported {
            task_id: TaskId::from_u128(task),
            state,
            actor: Actor::Worker,
            attempt: 1,
            at: Timestamp::from_micros(1),
            reason: None,
            result: None,
        }]
    }

    #[test]
    fn what_is_not_acknowledged_survives_a_restart_in_order() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("outbox");
        let mut outbox = Outbox::open(path.clone()).expect("open");
        for task in 1..=4 {
            outbox.push(report(task, State::Success)).expect("push");
        }
        outbox.acknowledged(2);
        outbox.acknowledged(4);
        drop(outbox);
        let mut again = Outbox::open(path.clone()).expect("reopen");
        assert_eq!(again.len(), 2);
        let finishing: HashSet<TaskId> = again.finishing().collect();
        assert_eq!(finishing, [1, 3].map(TaskId::from_u128).into());
        assert!(
            again.pending()[0].contains("\"batch\":1"),
            "{:?}",
            again.pending()
        );
        assert_eq!(
            again.next_batch(),
            4,
            "numbers go on after the last one left"
        );
        // Everything acknowledged: the files hold nothing, and a restart finds nothing.
        again.acknowledged(1);
        again.acknowledged(3);
        let bytes: u64 = std::fs::read_dir(&path)
            .expect("dir")
            .map(|e| e.expect("entry").metadata().expect("meta").len())
            .sum();
        assert_eq!(bytes, 0);
        assert_eq!(Outbox::open(path).expect("reopen").len(), 0);
    }

    #[test]
    fn a_line_cut_short_and_old_layout_files_are_handled() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("outbox");
        let mut outbox = Outbox::open(path.clone()).expect("open");
        outbox.push(report(1, State::Running)).expect("push");
        drop(outbox);
        let segment = std::fs::read_dir(&path)
            .expect("dir")
            .next()
            .expect("a segment")
            .expect("entry")
            .path();
        let mut file = OpenOptions::new()
            .append(true)
            .open(&segment)
            .expect("open");
        file.write_all(b"B 2 {\"report\":{\"bat")
            .expect("a cut line");
        let old = FromEndpoint::Report {
            batch: 7,
            transitions: report(9, State::Failed),
        };
        std::fs::write(
            path.join(format!("{:020}.json", 7)),
            serde_json::to_string(&old).expect("json"),
        )
        .expect("old file");
        let outbox = Outbox::open(path.clone()).expect("reopen");
        assert_eq!(outbox.len(), 2, "batch 1 and the old file's batch 7");
        assert_eq!(outbox.next_batch(), 8);
        assert_eq!(
            std::fs::read_dir(&path).expect("dir").count(),
            1,
            "one segment left"
        );
    }
}

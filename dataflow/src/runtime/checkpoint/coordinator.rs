//! The coordinator: asks for a checkpoint every interval, gathers every task's report, lets
//! the sources go on, keeps the checkpoint, and tells the sources when it is durable.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};

use super::error::StateError;
use super::snapshot::{Checkpoint, SavedState, SourcePosition};
use super::store::CheckpointStore;
use super::{CommitLater, LAST, Link, Report};
use crate::error::PipelineError;

/// Takes a pipeline's checkpoints.
pub(crate) struct Coordinator {
    pipeline: String,
    graph: u64,
    interval: Duration,
    store: Arc<dyn CheckpointStore>,
    /// The last epoch taken (before this run: 0 if none).
    epoch: u64,
    /// Where each source partition resumes, as of the last checkpoint: a checkpoint carries
    /// every partition, including those nothing was read from since.
    sources: BTreeMap<(String, u32), u64>,
    trigger: watch::Sender<u64>,
    resume: watch::Sender<u64>,
    durable: watch::Sender<u64>,
    reports: mpsc::UnboundedReceiver<Report>,
    /// Handed to each task; dropped when the run starts, so that the reports end with the
    /// tasks.
    link: Option<Link>,
}

/// What one task reported: its sources' positions and its states.
type Passed = (Vec<SourcePosition>, Vec<SavedState>);

/// What the tasks of the run have reported for one checkpoint.
#[derive(Default)]
struct Gathered {
    passed: BTreeMap<usize, Passed>,
}

impl Coordinator {
    pub(crate) fn new(
        pipeline: String,
        graph: u64,
        interval: Duration,
        store: Arc<dyn CheckpointStore>,
        restored: Option<&Checkpoint>,
    ) -> Self {
        let epoch = restored.map_or(0, |checkpoint| checkpoint.epoch);
        let sources = restored
            .into_iter()
            .flat_map(|checkpoint| &checkpoint.sources)
            .map(|s| ((s.topic.clone(), s.partition), s.next_offset))
            .collect();
        let (trigger, trigger_rx) = watch::channel(0);
        let (resume, resume_rx) = watch::channel(epoch);
        let (durable, durable_rx) = watch::channel(epoch);
        let (reports_tx, reports) = mpsc::unbounded_channel();
        Self {
            pipeline,
            graph,
            interval,
            store,
            epoch,
            sources,
            trigger,
            resume,
            durable,
            reports,
            link: Some(Link {
                trigger: trigger_rx,
                resume: resume_rx,
                durable: durable_rx,
                reports: reports_tx,
            }),
        }
    }

    /// What each task holds.
    pub(crate) fn link(&self) -> Link {
        self.link
            .clone()
            .expect("links are handed out before the run")
    }

    /// Takes checkpoints until every one of the `tasks` tasks has ended, then the last one
    /// (unless a task failed). Returns why the last one could not be kept, if it could not.
    pub(crate) async fn run(mut self, tasks: usize) -> Result<(), PipelineError> {
        // The tasks hold the only senders from now on: the channel ends with them.
        self.link = None;
        let mut ended: BTreeMap<usize, Option<Passed>> = BTreeMap::new();
        let mut commits: Vec<CommitLater> = Vec::new();
        let mut current: Option<(u64, Gathered)> = None;
        let mut ticks = tokio::time::interval(self.interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticks.tick().await;
        while ended.len() < tasks {
            tokio::select! {
                _ = ticks.tick(), if current.is_none() && ended.is_empty() => {
                    self.epoch += 1;
                    self.trigger.send_replace(self.epoch);
                    current = Some((self.epoch, Gathered::default()));
                }
                report = self.reports.recv() => match report {
                    Some(Report::Passed { epoch, task, sources, states }) => {
                        if let Some((asked, gathered)) = &mut current
                            && *asked == epoch
                        {
                            gathered.passed.insert(task, (sources, states));
                            if gathered.passed.len() == tasks {
                                let (epoch, gathered) = current.take().expect("just checked");
                                self.complete(epoch, gathered);
                            }
                        }
                    }
                    Some(Report::Ended { task, last, commit }) => {
                        // A checkpoint in flight cannot complete any more: the last one
                        // (taken once every task has ended) stands in for it.
                        current = None;
                        ended.insert(task, last);
                        commits.extend(commit);
                    }
                    None => break,
                },
            }
        }
        // Sources paused for a checkpoint that will not complete go on to their end.
        self.resume.send_replace(LAST);
        if ended.len() < tasks || ended.values().any(Option::is_none) {
            return Ok(()); // a task failed (its error is the pipeline's): keep the last one
        }
        let mut last = Gathered::default();
        for (task, done) in ended {
            last.passed.insert(task, done.expect("checked above"));
        }
        self.epoch += 1;
        self.keep(self.epoch, last).await?;
        self.durable.send_replace(LAST);
        for commit in commits {
            commit().await?;
        }
        Ok(())
    }

    /// Every task passed `epoch`: the sources go on, and the checkpoint is kept in the
    /// background, after which its positions may be committed.
    fn complete(&mut self, epoch: u64, gathered: Gathered) {
        self.resume.send_replace(epoch);
        let checkpoint = self.checkpoint(epoch, gathered);
        let store = Arc::clone(&self.store);
        let durable = self.durable.clone();
        tokio::spawn(async move {
            let kept = tokio::task::spawn_blocking(move || store.save(&checkpoint)).await;
            if let Ok(Ok(())) = kept {
                durable.send_if_modified(|last| {
                    let newer = epoch > *last;
                    if newer {
                        *last = epoch;
                    }
                    newer
                });
            }
            // A checkpoint that could not be kept is skipped: the next one (or the last one,
            // whose failure is reported) supersedes it, and nothing is committed past it.
        });
    }

    /// Keeps the last checkpoint, now.
    async fn keep(&mut self, epoch: u64, gathered: Gathered) -> Result<(), StateError> {
        let checkpoint = self.checkpoint(epoch, gathered);
        let store = Arc::clone(&self.store);
        tokio::task::spawn_blocking(move || store.save(&checkpoint))
            .await
            .map_err(|e| StateError::Io {
                path: "the checkpoint writer".to_owned(),
                message: e.to_string(),
            })?
    }

    fn checkpoint(&mut self, epoch: u64, gathered: Gathered) -> Checkpoint {
        let mut states = Vec::new();
        for (sources, saved) in gathered.passed.into_values() {
            for source in sources {
                self.sources
                    .insert((source.topic, source.partition), source.next_offset);
            }
            states.extend(saved);
        }
        Checkpoint {
            pipeline: self.pipeline.clone(),
            graph: self.graph,
            epoch,
            sources: self
                .sources
                .iter()
                .map(|((topic, partition), &next_offset)| SourcePosition {
                    topic: topic.clone(),
                    partition: *partition,
                    next_offset,
                })
                .collect(),
            states,
        }
    }
}

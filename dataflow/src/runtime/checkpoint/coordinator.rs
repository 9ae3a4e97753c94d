//! The coordinator: asks for a checkpoint every interval, gathers every task's report, lets
//! the sources go on, and hands the checkpoint to the keeper, which writes it, tells the
//! sources when it is durable, and appends an exactly-once pipeline's held-back outputs.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, watch};

use super::error::StateError;
use super::snapshot::{Checkpoint, SavedState, SourcePosition};
use super::store::CheckpointStore;
use super::transaction::{AppendLater, HeldOutputs, KeptOutputs, Sinks};
use super::{CommitLater, LAST, Link, Report};
use crate::error::PipelineError;

/// What one task reported: its sources' positions, its states, its held-back outputs.
type Passed = (Vec<SourcePosition>, Vec<SavedState>, Vec<HeldOutputs>);

/// Takes a pipeline's checkpoints.
pub(crate) struct Coordinator {
    pipeline: String,
    graph: u64,
    interval: Duration,
    store: Arc<dyn CheckpointStore>,
    sinks: Sinks,
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

/// A checkpoint to keep, and what to do once it is durable.
struct Job {
    checkpoint: Checkpoint,
    appends: Vec<AppendLater>,
    /// Told when it is kept (or why not), for the last checkpoint.
    done: Option<oneshot::Sender<Result<(), StateError>>>,
}

impl Coordinator {
    pub(crate) fn new(
        pipeline: String,
        graph: u64,
        interval: Duration,
        store: Arc<dyn CheckpointStore>,
        sinks: Sinks,
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
            sinks,
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
        let (jobs, queue) = mpsc::unbounded_channel();
        let keeper = tokio::spawn(keep(
            Arc::clone(&self.store),
            self.sinks.clone(),
            self.durable.clone(),
            queue,
        ));
        let mut ended: BTreeMap<usize, Option<Passed>> = BTreeMap::new();
        let mut commits: Vec<CommitLater> = Vec::new();
        let mut current: Option<(u64, BTreeMap<usize, Passed>)> = None;
        let mut ticks = tokio::time::interval(self.interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticks.tick().await;
        while ended.len() < tasks {
            tokio::select! {
                _ = ticks.tick(), if current.is_none() && ended.is_empty() => {
                    self.epoch += 1;
                    self.trigger.send_replace(self.epoch);
                    current = Some((self.epoch, BTreeMap::new()));
                }
                report = self.reports.recv() => match report {
                    Some(Report::Passed { epoch, task, sources, states, outputs }) => {
                        if let Some((asked, passed)) = &mut current
                            && *asked == epoch
                        {
                            passed.insert(task, (sources, states, outputs));
                            if passed.len() == tasks {
                                let (epoch, passed) = current.take().expect("just checked");
                                // Every task passed it: the sources go on while it is kept.
                                self.resume.send_replace(epoch);
                                let job = self.job(epoch, passed, None);
                                let _ = jobs.send(job);
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
        let clean = ended.len() == tasks && ended.values().all(Option::is_some);
        let mut kept = Ok(());
        if clean {
            let passed = ended
                .into_iter()
                .map(|(task, last)| (task, last.expect("checked above")))
                .collect();
            self.epoch += 1;
            let (done, kept_rx) = oneshot::channel();
            let _ = jobs.send(self.job(self.epoch, passed, Some(done)));
            kept = kept_rx.await.unwrap_or(Ok(()));
        }
        drop(jobs);
        let _ = keeper.await;
        kept?;
        if clean {
            self.durable.send_replace(LAST);
            for commit in commits {
                commit().await?;
            }
        }
        Ok(())
    }

    /// The checkpoint of `epoch` from what the tasks passed, with the sinks' end offsets
    /// before its outputs (every earlier checkpoint's outputs are appended by now: the
    /// keeper takes them in order).
    fn job(
        &mut self,
        epoch: u64,
        passed: BTreeMap<usize, Passed>,
        done: Option<oneshot::Sender<Result<(), StateError>>>,
    ) -> Job {
        let mut states = Vec::new();
        let mut outputs: BTreeMap<(String, u32), Vec<Vec<u8>>> = BTreeMap::new();
        let mut appends = Vec::new();
        // Tasks in order, so that the outputs of a partition are appended in the order the
        // checkpoint keeps them.
        for (sources, saved, held) in passed.into_values() {
            for source in sources {
                self.sources
                    .insert((source.topic, source.partition), source.next_offset);
            }
            states.extend(saved);
            for held in held {
                outputs
                    .entry((held.topic, held.partition))
                    .or_default()
                    .extend(held.records);
                appends.push(held.append);
            }
        }
        let checkpoint = Checkpoint {
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
            outputs: outputs
                .into_iter()
                .map(|((topic, partition), records)| KeptOutputs {
                    start: 0, // set by the keeper, once the earlier outputs are appended
                    topic,
                    partition,
                    records,
                })
                .collect(),
        };
        Job {
            checkpoint,
            appends,
            done,
        }
    }
}

/// Keeps checkpoints in order: writes each, tells the sources it is durable, then appends its
/// held-back outputs. A checkpoint that cannot be written (a full disk) is not lost work: its
/// held-back outputs go into the next one, and nothing is committed past the last one kept;
/// the error is returned if the last checkpoint cannot be kept either.
async fn keep(
    store: Arc<dyn CheckpointStore>,
    sinks: Sinks,
    durable: watch::Sender<u64>,
    mut jobs: mpsc::UnboundedReceiver<Job>,
) {
    let mut carried: Vec<KeptOutputs> = Vec::new();
    let mut carried_appends: Vec<AppendLater> = Vec::new();
    while let Some(job) = jobs.recv().await {
        let Job {
            mut checkpoint,
            appends,
            done,
        } = job;
        let mut outputs = std::mem::take(&mut carried);
        for new in checkpoint.outputs.drain(..) {
            match outputs
                .iter_mut()
                .find(|o| o.topic == new.topic && o.partition == new.partition)
            {
                Some(older) => older.records.extend(new.records),
                None => outputs.push(new),
            }
        }
        for kept in &mut outputs {
            kept.start = sinks.end_offset(&kept.topic, kept.partition).unwrap_or(0);
        }
        checkpoint.outputs = outputs;
        let mut appends_now = std::mem::take(&mut carried_appends);
        appends_now.extend(appends);
        let epoch = checkpoint.epoch;
        let saving = Arc::clone(&store);
        let saved = tokio::task::spawn_blocking(move || {
            let saved = saving.save(&checkpoint);
            (checkpoint, saved)
        })
        .await;
        let result = match saved {
            Ok((_, Ok(()))) => {
                if epoch != LAST {
                    durable.send_if_modified(|last| {
                        let newer = epoch > *last;
                        if newer {
                            *last = epoch;
                        }
                        newer
                    });
                }
                let mut appended = Ok(());
                for append in appends_now {
                    if let Err(e) = append().await {
                        appended = Err(StateError::Io {
                            path: "an exactly-once sink".to_owned(),
                            message: e.to_string(),
                        });
                        break;
                    }
                }
                appended
            }
            Ok((checkpoint, Err(error))) => {
                carried = checkpoint.outputs;
                carried_appends = appends_now;
                Err(error)
            }
            Err(join) => Err(StateError::Io {
                path: "the checkpoint writer".to_owned(),
                message: join.to_string(),
            }),
        };
        if let Some(done) = done {
            let _ = done.send(result);
        }
    }
}

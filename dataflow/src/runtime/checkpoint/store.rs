//! Where checkpoints are kept: files in a state directory (written to a temporary name,
//! fsynced, renamed, and the directory fsynced, so a crash leaves the previous checkpoint or
//! the new one, never half of one), or, for a pipeline on `mem://` without a state directory,
//! an internal topic of its embedded broker (a restart in the same process finds it).

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use broker::{Broker, Overflow, Start, Topic, TopicConfig};

use super::error::StateError;
use super::snapshot::Checkpoint;

/// Keeps a pipeline's checkpoints.
pub(crate) trait CheckpointStore: Send + Sync {
    /// The latest checkpoint, verified; `None` if there is none.
    fn load(&self) -> Result<Option<Checkpoint>, StateError>;

    /// Keeps `checkpoint`, durably once it returns; the older ones may go.
    fn save(&self, checkpoint: &Checkpoint) -> Result<(), StateError>;
}

/// Checkpoints as files `checkpoint-<epoch>.ckpt` in a directory.
pub(crate) struct Files {
    dir: PathBuf,
}

const SUFFIX: &str = ".ckpt";

impl Files {
    /// Files in `dir`, created if missing.
    pub(crate) fn new(dir: PathBuf) -> Result<Self, StateError> {
        fs::create_dir_all(&dir).map_err(|e| io_error(&dir, "cannot create it", &e))?;
        Ok(Self { dir })
    }

    fn path(&self, epoch: u64) -> PathBuf {
        self.dir.join(format!("checkpoint-{epoch:020}{SUFFIX}"))
    }

    /// The checkpoint files, oldest first.
    fn files(&self) -> Result<Vec<(u64, PathBuf)>, StateError> {
        let entries =
            fs::read_dir(&self.dir).map_err(|e| io_error(&self.dir, "cannot list it", &e))?;
        let mut files: Vec<(u64, PathBuf)> = entries
            .filter_map(Result::ok)
            .filter_map(|entry| {
                let name = entry.file_name();
                let epoch = name
                    .to_str()?
                    .strip_prefix("checkpoint-")?
                    .strip_suffix(SUFFIX)?
                    .parse()
                    .ok()?;
                Some((epoch, entry.path()))
            })
            .collect();
        files.sort();
        Ok(files)
    }
}

fn io_error(path: &Path, what: &str, error: &std::io::Error) -> StateError {
    StateError::Io {
        path: path.display().to_string(),
        message: format!("{what}: {error}"),
    }
}

impl CheckpointStore for Files {
    fn load(&self) -> Result<Option<Checkpoint>, StateError> {
        let Some((_, path)) = self.files()?.pop() else {
            return Ok(None);
        };
        let bytes = fs::read(&path).map_err(|e| io_error(&path, "cannot read it", &e))?;
        Checkpoint::decode(&bytes, &path.display().to_string()).map(Some)
    }

    fn save(&self, checkpoint: &Checkpoint) -> Result<(), StateError> {
        let path = self.path(checkpoint.epoch);
        let temporary = path.with_extension("tmp");
        let write = || -> std::io::Result<()> {
            let mut file = File::create(&temporary)?;
            file.write_all(&checkpoint.encode())?;
            file.sync_all()?;
            fs::rename(&temporary, &path)?;
            // The rename is durable once the directory is.
            File::open(&self.dir)?.sync_all()
        };
        if let Err(e) = write() {
            let _ = fs::remove_file(&temporary);
            return Err(io_error(&path, "cannot write it", &e));
        }
        for (epoch, older) in self.files()? {
            if epoch < checkpoint.epoch {
                let _ = fs::remove_file(older);
            }
        }
        Ok(())
    }
}

/// Checkpoints in an internal topic of an embedded broker: they last as long as the broker.
pub(crate) struct InBroker {
    topic: Topic<Arc<Vec<u8>>>,
}

impl InBroker {
    /// The checkpoints of pipeline `prefix` in `broker`.
    pub(crate) fn new(broker: &Broker, prefix: &str) -> Result<Self, StateError> {
        // The newest two are kept (a whole block of them, at least).
        let config = TopicConfig::new().capacity(2, Overflow::DropOldest);
        let topic = broker
            .internal_topic(&format!("__{prefix}.checkpoints"), config)
            .map_err(|e| StateError::Io {
                path: format!("__{prefix}.checkpoints"),
                message: e.to_string(),
            })?;
        Ok(Self { topic })
    }
}

impl CheckpointStore for InBroker {
    fn load(&self) -> Result<Option<Checkpoint>, StateError> {
        let Some(last) = self.topic.end_offsets()[0].checked_sub(1) else {
            return Ok(None);
        };
        let what = format!("{}@{last}", self.topic.name());
        let mut reader = self
            .topic
            .partition_consumer(0, Start::Offset(last))
            .map_err(|e| StateError::Io {
                path: what.clone(),
                message: e.to_string(),
            })?;
        match reader.try_recv() {
            Ok(record) => Checkpoint::decode(record.value(), &what).map(Some),
            Err(_) => Ok(None),
        }
    }

    fn save(&self, checkpoint: &Checkpoint) -> Result<(), StateError> {
        self.topic
            .producer()
            .try_send_to(0, Arc::new(checkpoint.encode()))
            .map(drop)
            .map_err(|e| StateError::Io {
                path: self.topic.name().to_owned(),
                message: e.to_string(),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::checkpoint::snapshot::SourcePosition;

    fn checkpoint(epoch: u64) -> Checkpoint {
        Checkpoint {
            pipeline: "p".to_owned(),
            graph: 1,
            epoch,
            sources: vec![SourcePosition {
                topic: "in".to_owned(),
                partition: 0,
                next_offset: epoch * 10,
            }],
            states: Vec::new(),
            outputs: Vec::new(),
        }
    }

    fn temp_dir(name: &str) -> PathBuf {
        std::env::temp_dir().join(format!("dataflow-{name}-{}", std::process::id()))
    }

    #[test]
    fn files_keep_the_latest_checkpoint_only() {
        let dir = temp_dir("files-latest");
        let store = Files::new(dir.clone()).unwrap();
        assert_eq!(store.load().unwrap(), None);
        store.save(&checkpoint(1)).unwrap();
        store.save(&checkpoint(2)).unwrap();
        assert_eq!(store.load().unwrap(), Some(checkpoint(2)));
        assert_eq!(store.files().unwrap().len(), 1);
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_corrupt_checkpoint_file_is_an_error_not_a_fresh_start() {
        let dir = temp_dir("files-corrupt");
        let store = Files::new(dir.clone()).unwrap();
        store.save(&checkpoint(5)).unwrap();
        let path = store.path(5);
        let mut bytes = fs::read(&path).unwrap();
        let middle = bytes.len() / 2;
        bytes[middle] ^= 1;
        fs::write(&path, bytes).unwrap();
        assert!(matches!(store.load(), Err(StateError::Corrupt { .. })));
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_broker_keeps_the_latest_checkpoint() {
        let broker = Broker::new();
        let store = InBroker::new(&broker, "p").unwrap();
        assert_eq!(store.load().unwrap(), None);
        for epoch in 1..=5 {
            store.save(&checkpoint(epoch)).unwrap();
        }
        let again = InBroker::new(&broker, "p").unwrap();
        assert_eq!(again.load().unwrap(), Some(checkpoint(5)));
    }
}

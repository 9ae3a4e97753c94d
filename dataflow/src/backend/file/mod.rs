//! The embedded broker with file-backed topics (`file://DIR`): sources, sinks and dead letters
//! are kept in segment files under `DIR` (see [`broker::storage`]), with their groups'
//! committed offsets, so the same pipeline runs durably by URL alone. Internal topics stay in
//! memory.
//!
//! Parameters: `durability=always` (the default: fsync before an append returns),
//! `durability=never`, or `interval_ms=N` (fsync at most `N` ms after the previous one); see
//! [`broker::storage`] for what each survives. One process at a time owns a directory.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use broker::Broker;
use broker::storage::{Durability, Storage};

use super::store::{Backend, OnDisk, Open};
use super::url::BackendUrl;
use super::{BackendError, BoxFuture};
use crate::spec::{Role, TopicSpec};

/// Connects to `file://DIR`: an embedded broker keeping its topics under `DIR` (created if
/// missing).
pub(crate) fn connect(
    url: BackendUrl,
) -> BoxFuture<'static, Result<Arc<dyn Backend>, BackendError>> {
    Box::pin(async move {
        let invalid = |reason: String| BackendError::InvalidUrl {
            url: url.to_string(),
            reason,
        };
        if url.location.is_empty() {
            return Err(invalid("no directory: expected `file://DIR`".to_owned()));
        }
        let mut durability = Durability::Always;
        for (key, value) in &url.params {
            durability = match (key.as_str(), value.as_str()) {
                ("durability", "always") => Durability::Always,
                ("durability", "never") => Durability::Never,
                ("interval_ms", ms) => match ms.parse::<u64>() {
                    Ok(ms) if ms > 0 => Durability::Interval(Duration::from_millis(ms)),
                    _ => {
                        return Err(invalid(format!(
                            "interval_ms `{ms}` is not a positive number"
                        )));
                    }
                },
                ("durability", other) => {
                    return Err(invalid(format!(
                        "durability `{other}` is not `always` or `never` (or set `interval_ms`)"
                    )));
                }
                (other, _) => {
                    return Err(invalid(format!(
                        "unknown parameter `{other}`: file:// takes `durability` or `interval_ms`"
                    )));
                }
            };
        }
        let root = PathBuf::from(&url.location);
        std::fs::create_dir_all(&root).map_err(|e| {
            invalid(format!(
                "cannot create the directory `{}`: {e}",
                root.display()
            ))
        })?;
        Ok(Arc::new(FileBackend {
            broker: Broker::new(),
            storage: Storage::dir(&root).durability(durability),
            root,
        }) as Arc<dyn Backend>)
    })
}

/// An embedded broker whose data topics are file-backed.
#[derive(Debug)]
struct FileBackend {
    broker: Broker,
    storage: Storage,
    root: PathBuf,
}

/// The partitions a file-backed topic has on disk (its numbered directories), if any.
fn partitions_on_disk(root: &Path, topic: &str) -> Option<u32> {
    let dir = root.join(topic);
    let count = std::fs::read_dir(dir)
        .ok()?
        .filter_map(Result::ok)
        .filter(|entry| {
            entry.path().is_dir()
                && entry
                    .file_name()
                    .to_str()
                    .is_some_and(|name| name.parse::<u32>().is_ok())
        })
        .count();
    (count > 0).then_some(count as u32)
}

impl Backend for FileBackend {
    fn scheme(&self) -> &'static str {
        "file"
    }

    fn shared_between_processes(&self) -> bool {
        false
    }

    fn broker(&self) -> Option<&Broker> {
        Some(&self.broker)
    }

    fn state_dir(&self) -> Option<PathBuf> {
        Some(self.root.join("_checkpoints"))
    }

    fn open<'a>(
        &'a self,
        spec: &'a TopicSpec,
        open: &'a mut dyn Open,
    ) -> BoxFuture<'a, Result<(), BackendError>> {
        Box::pin(async move {
            if let Role::Internal { .. } = spec.role {
                return open.embedded(&self.broker, None);
            }
            broker::validate_name(&spec.name).map_err(|source| {
                BackendError::Broker(broker::TopicError::InvalidName {
                    name: spec.name.clone(),
                    source,
                })
            })?;
            let partitions = partitions_on_disk(&self.root, &spec.name)
                .unwrap_or_else(|| spec.partitions.unwrap_or(1));
            let disk = OnDisk {
                storage: &self.storage,
                partitions,
            };
            open.embedded(&self.broker, Some(disk))
        })
    }
}

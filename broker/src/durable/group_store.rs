//! Committed offsets of a file-backed topic's groups, in files.

use std::sync::Arc;

/// Committed offsets of a file-backed topic's groups: one small file per group, replaced
/// atomically (write a temporary file, fsync, rename) on every commit.
///
/// ```text
/// count: u32 LE, offsets: [u64 LE; count], crc: u32 LE (CRC-32 of what precedes)
/// ```
pub(crate) struct GroupStore {
    pub(crate) fs: Arc<dyn crate::storage::fs::Fs>,
    pub(crate) root: std::path::PathBuf,
    pub(crate) topic: String,
}

impl GroupStore {
    fn path(&self, group: &str) -> Result<std::path::PathBuf, String> {
        crate::storage::group_file(&self.root, &self.topic, group).map_err(|e| e.to_string())
    }

    /// The offsets last committed by `group`, if it ever committed.
    pub(crate) fn load(&self, group: &str) -> Result<Option<Vec<u64>>, String> {
        let path = self.path(group)?;
        let bytes = match self.fs.read(&path) {
            Ok(bytes) => bytes,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(err) => return Err(format!("{path:?}: {err}")),
        };
        let corrupt = || format!("{path:?}: corrupt committed offsets");
        let count = bytes
            .get(..4)
            .map(|b| u32::from_le_bytes(b.try_into().expect("4 bytes")) as usize)
            .ok_or_else(corrupt)?;
        if bytes.len() != 4 + 8 * count + 4 {
            return Err(corrupt());
        }
        let (body, crc) = bytes.split_at(bytes.len() - 4);
        if crc32fast::hash(body) != u32::from_le_bytes(crc.try_into().expect("4 bytes")) {
            return Err(corrupt());
        }
        Ok(Some(
            body[4..]
                .chunks_exact(8)
                .map(|c| u64::from_le_bytes(c.try_into().expect("8 bytes")))
                .collect(),
        ))
    }

    /// Durably replaces `group`'s committed offsets.
    pub(crate) fn save(&self, group: &str, offsets: &[u64]) -> Result<(), String> {
        let path = self.path(group)?;
        let temporary = path.with_extension("offsets.tmp");
        let fail = |err: std::io::Error| format!("{path:?}: {err}");
        if let Some(dir) = path.parent() {
            self.fs.create_dir_all(dir).map_err(fail)?;
        }
        let mut bytes = Vec::with_capacity(8 + offsets.len() * 8);
        bytes.extend_from_slice(&(offsets.len() as u32).to_le_bytes());
        for offset in offsets {
            bytes.extend_from_slice(&offset.to_le_bytes());
        }
        let crc = crc32fast::hash(&bytes);
        bytes.extend_from_slice(&crc.to_le_bytes());
        let _ = self.fs.remove(&temporary);
        let mut file = self.fs.open_append(&temporary).map_err(fail)?;
        file.append(&bytes).map_err(fail)?;
        file.sync().map_err(fail)?;
        self.fs.rename(&temporary, &path).map_err(fail)
    }
}

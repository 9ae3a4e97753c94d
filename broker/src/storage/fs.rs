//! The file-system layer under segment files: the real one, and a simulated one for tests of
//! power loss, torn writes and full disks.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};

/// A file opened for appending.
pub trait AppendFile: Send {
    /// Appends `buf`, handing it to the operating system before it returns (no buffer in
    /// the process): a process killed afterwards keeps it; it is durable against a power
    /// loss only after [`sync`](Self::sync).
    fn append(&mut self, buf: &[u8]) -> io::Result<()>;
    /// Makes everything appended so far durable (fsync).
    fn sync(&mut self) -> io::Result<()>;
}

/// The operations segment storage needs.
pub trait Fs: Send + Sync + 'static {
    /// Creates a directory and its parents.
    fn create_dir_all(&self, dir: &Path) -> io::Result<()>;
    /// The files of a directory (not recursive), sorted by name.
    fn list(&self, dir: &Path) -> io::Result<Vec<PathBuf>>;
    /// Opens a file for appending, creating it if missing.
    fn open_append(&self, path: &Path) -> io::Result<Box<dyn AppendFile>>;
    /// Reads a whole file.
    fn read(&self, path: &Path) -> io::Result<Vec<u8>>;
    /// The size of a file.
    fn len(&self, path: &Path) -> io::Result<u64>;
    /// Cuts a file to `len` bytes, durably.
    fn truncate(&self, path: &Path, len: u64) -> io::Result<()>;
    /// Renames a file.
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    /// Removes a file.
    fn remove(&self, path: &Path) -> io::Result<()>;
}

/// The operating system's file system.
#[derive(Debug, Default, Clone, Copy)]
pub struct OsFs;

struct OsFile {
    /// Unbuffered: every append is one `write` to the operating system.
    file: File,
}

impl AppendFile for OsFile {
    fn append(&mut self, buf: &[u8]) -> io::Result<()> {
        self.file.write_all(buf)
    }

    fn sync(&mut self) -> io::Result<()> {
        self.file.sync_data()
    }
}

impl Fs for OsFs {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        fs::create_dir_all(dir)
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<PathBuf>> {
        let mut paths = fs::read_dir(dir)?
            .map(|entry| entry.map(|e| e.path()))
            .collect::<io::Result<Vec<_>>>()?;
        paths.sort();
        Ok(paths)
    }

    fn open_append(&self, path: &Path) -> io::Result<Box<dyn AppendFile>> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        Ok(Box::new(OsFile { file }))
    }

    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        fs::read(path)
    }

    fn len(&self, path: &Path) -> io::Result<u64> {
        Ok(fs::metadata(path)?.len())
    }

    fn truncate(&self, path: &Path, len: u64) -> io::Result<()> {
        let file = OpenOptions::new().write(true).open(path)?;
        file.set_len(len)?;
        file.sync_all()
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        fs::rename(from, to)
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        fs::remove_file(path)
    }
}

/// What a simulated crash keeps of the bytes written since the last sync.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Crash {
    /// Nothing: power loss with a cache that wrote nothing back.
    DropUnsynced,
    /// The first `n` unsynced bytes of each file: a torn write.
    Torn(usize),
}

#[derive(Debug, Default)]
struct SimFile {
    data: Vec<u8>,
    /// Bytes known durable.
    synced: usize,
}

#[derive(Debug, Default)]
struct SimState {
    files: BTreeMap<PathBuf, SimFile>,
    dirs: Vec<PathBuf>,
    /// Disk full after this many more bytes (`None`: unlimited).
    space: Option<usize>,
    /// Successful syncs of `.log` files so far.
    syncs: u64,
    /// How long a sync takes (a real disk's fsync is not free).
    sync_delay: std::time::Duration,
    /// Appends and syncs wait while this is set ([`SimFs::hold`]).
    held: bool,
    /// How many appends and syncs wait now.
    waiting: usize,
    /// A hold was released by its time limit rather than by [`SimFs::release`].
    held_too_long: bool,
}

#[derive(Debug, Default)]
struct SimShared {
    state: Mutex<SimState>,
    /// Signalled by [`SimFs::release`].
    released: Condvar,
}

/// An in-memory file system that remembers what was synced, so that a test can simulate a
/// power loss ([`SimFs::crash`]), a full disk ([`SimFs::set_space`]), or a disk that does not
/// answer ([`SimFs::hold`]).
#[derive(Debug, Default, Clone)]
pub struct SimFs {
    shared: Arc<SimShared>,
}

/// How long a held append or sync waits for [`SimFs::release`] before it goes on by itself
/// (and [`SimFs::held_too_long`] says so): a test that never releases does not hang.
const HOLD_LIMIT: std::time::Duration = std::time::Duration::from_secs(5);

impl SimFs {
    /// An empty simulated file system.
    pub fn new() -> Self {
        Self::default()
    }

    /// Simulates a power loss: every file keeps its synced bytes, plus what `crash` says.
    pub fn crash(&self, crash: Crash) {
        let mut state = self.lock();
        for file in state.files.values_mut() {
            let keep = match crash {
                Crash::DropUnsynced => file.synced,
                Crash::Torn(n) => (file.synced + n).min(file.data.len()),
            };
            file.data.truncate(keep);
            file.synced = keep;
        }
    }

    /// Leaves `bytes` of free space (`None`: unlimited). Appends past it fail with a
    /// "no space" error and write nothing.
    pub fn set_space(&self, bytes: Option<usize>) {
        self.lock().space = bytes;
    }

    /// Flips the bits of `mask` in the byte at `at` of `path` (as if on the platter).
    pub fn corrupt(&self, path: &Path, at: usize, mask: u8) {
        if let Some(file) = self.lock().files.get_mut(path)
            && let Some(byte) = file.data.get_mut(at)
        {
            *byte ^= mask;
        }
    }

    /// How many syncs of segment (`.log`) files succeeded so far.
    pub fn syncs(&self) -> u64 {
        self.lock().syncs
    }

    /// Makes every sync take `delay`, as a disk would.
    pub fn set_sync_delay(&self, delay: std::time::Duration) {
        self.lock().sync_delay = delay;
    }

    /// The paths of every file, sorted.
    pub fn paths(&self) -> Vec<PathBuf> {
        self.lock().files.keys().cloned().collect()
    }

    /// From now on, every append and every sync waits (like a disk that does not answer)
    /// until [`release`](Self::release), or at most 5 s.
    pub fn hold(&self) {
        self.lock().held = true;
    }

    /// Lets held appends and syncs go on.
    pub fn release(&self) {
        self.lock().held = false;
        self.shared.released.notify_all();
    }

    /// How many appends and syncs wait for [`release`](Self::release) now.
    pub fn waiting(&self) -> usize {
        self.lock().waiting
    }

    /// Whether a held append or sync went on by its time limit, not by
    /// [`release`](Self::release).
    pub fn held_too_long(&self) -> bool {
        self.lock().held_too_long
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, SimState> {
        self.shared.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Waits while the file system is held; returns its state locked.
    fn pass_hold(&self) -> std::sync::MutexGuard<'_, SimState> {
        let mut state = self.lock();
        if !state.held {
            return state;
        }
        state.waiting += 1;
        let deadline = std::time::Instant::now() + HOLD_LIMIT;
        while state.held {
            let now = std::time::Instant::now();
            if now >= deadline {
                state.held_too_long = true;
                break;
            }
            state = self
                .shared
                .released
                .wait_timeout(state, deadline - now)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
        state.waiting -= 1;
        state
    }
}

struct SimAppend {
    fs: SimFs,
    path: PathBuf,
}

impl AppendFile for SimAppend {
    fn append(&mut self, buf: &[u8]) -> io::Result<()> {
        let mut state = self.fs.pass_hold();
        if let Some(space) = state.space {
            if buf.len() > space {
                return Err(io::Error::new(
                    io::ErrorKind::StorageFull,
                    "no space left on device",
                ));
            }
            state.space = Some(space - buf.len());
        }
        state
            .files
            .get_mut(&self.path)
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "file removed"))?
            .data
            .extend_from_slice(buf);
        Ok(())
    }

    fn sync(&mut self) -> io::Result<()> {
        let delay = self.fs.pass_hold().sync_delay;
        if !delay.is_zero() {
            std::thread::sleep(delay);
        }
        let mut state = self.fs.lock();
        if self.path.extension().is_some_and(|e| e == "log") {
            state.syncs += 1;
        }
        let file = state
            .files
            .get_mut(&self.path)
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "file removed"))?;
        file.synced = file.data.len();
        Ok(())
    }
}

impl Fs for SimFs {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        let mut state = self.lock();
        if !state.dirs.iter().any(|d| d == dir) {
            state.dirs.push(dir.to_owned());
        }
        Ok(())
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<PathBuf>> {
        Ok(self
            .lock()
            .files
            .keys()
            .filter(|p| p.parent() == Some(dir))
            .cloned()
            .collect())
    }

    fn open_append(&self, path: &Path) -> io::Result<Box<dyn AppendFile>> {
        self.lock().files.entry(path.to_owned()).or_default();
        Ok(Box::new(SimAppend {
            fs: self.clone(),
            path: path.to_owned(),
        }))
    }

    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        self.lock()
            .files
            .get(path)
            .map(|f| f.data.clone())
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no such file"))
    }

    fn len(&self, path: &Path) -> io::Result<u64> {
        self.lock()
            .files
            .get(path)
            .map(|f| f.data.len() as u64)
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no such file"))
    }

    fn truncate(&self, path: &Path, len: u64) -> io::Result<()> {
        let mut state = self.lock();
        let file = state
            .files
            .get_mut(path)
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no such file"))?;
        file.data.truncate(len as usize);
        file.synced = file.synced.min(file.data.len());
        Ok(())
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut state = self.lock();
        let file = state
            .files
            .remove(from)
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no such file"))?;
        state.files.insert(to.to_owned(), file);
        Ok(())
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        self.lock()
            .files
            .remove(path)
            .map(drop)
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no such file"))
    }
}

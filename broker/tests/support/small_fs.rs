//! A real, small file system for full-disk tests: a 1 MiB tmpfs mount, or else an ext4 image
//! on a loop device. Both need root; a test skips (printing why) when neither can be made,
//! and fails under `CI=true` when the reason is one `.ci/run` could fix (a missing command).

use std::path::{Path, PathBuf};
use std::process::Command;

/// A mounted file system, unmounted (lazily, in case a file is still open) when dropped.
pub struct SmallFs {
    dir: PathBuf,
    image: Option<PathBuf>,
}

impl SmallFs {
    /// A file system of `bytes` bytes, or why none could be made.
    pub fn mount(name: &str, bytes: u64) -> Result<Self, String> {
        let dir = std::env::temp_dir().join(format!("broker-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(|e| format!("{dir:?}: {e}"))?;
        let tmpfs = run(
            "mount",
            &["-t", "tmpfs", "-o", &format!("size={bytes}"), "tmpfs"],
            &dir,
        );
        if tmpfs.is_ok() {
            return Ok(Self { dir, image: None });
        }
        let image = dir.with_extension("img");
        let loop_device = std::fs::File::create(&image)
            .and_then(|f| f.set_len(bytes.max(1 << 20)))
            .map_err(|e| format!("{image:?}: {e}"))
            .and_then(|()| run("mkfs.ext4", &["-q", "-F"], &image))
            .and_then(|()| run("mount", &["-o", "loop", &image.to_string_lossy()], &dir));
        match loop_device {
            Ok(()) => Ok(Self {
                dir,
                image: Some(image),
            }),
            Err(loop_error) => {
                let _ = std::fs::remove_file(&image);
                let _ = std::fs::remove_dir(&dir);
                Err(format!(
                    "no tmpfs ({}) and no loop device ({loop_error})",
                    tmpfs.unwrap_err()
                ))
            }
        }
    }

    /// Mounts one, or prints why not and returns `None`; under `CI=true` a missing command
    /// is an error (`.ci/run` can install it), a missing privilege is not.
    pub fn mount_or_skip(name: &str, bytes: u64) -> Option<Self> {
        match Self::mount(name, bytes) {
            Ok(fs) => Some(fs),
            Err(reason) => {
                let fixable = reason.contains("command not found");
                if fixable && std::env::var("CI").is_ok_and(|v| v == "true") {
                    panic!("cannot make a small file system: {reason}");
                }
                eprintln!("skipped: cannot make a small file system: {reason}");
                None
            }
        }
    }

    /// Where it is mounted.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Drop for SmallFs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
        let _ = std::fs::remove_dir(&self.dir);
        if let Some(image) = &self.image {
            let _ = std::fs::remove_file(image);
        }
    }
}

/// Runs `command args... target`.
fn run(command: &str, args: &[&str], target: &Path) -> Result<(), String> {
    let output = Command::new(command)
        .args(args)
        .arg(target)
        .output()
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => format!("`{command}`: command not found"),
            _ => format!("`{command}`: {e}"),
        })?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "`{command}` failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}

//! One live writer per sensor name and data directory, and clean-up after a
//! crash.
//!
//! Segment files are written as hidden `.<sensor>-<unique>.partial` files and
//! published by hard link (see `osprey_segment::segment`). A daemon killed
//! mid-write leaves its partial files behind: readers ignore them, but they
//! hold disk space. [`SensorLock::acquire`] takes an exclusive `flock` on
//! `DATA/.<sensor>.lock` (the kernel releases it when the process dies, however
//! it dies), so only one daemon writes as that sensor, and removes the
//! sensor's partial files whose writer process (the pid in the file name) no
//! longer exists; an offline ingest running with the same sensor name keeps
//! its files.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use super::LiveError;
use osprey_segment::segment::PARTIAL_SUFFIX;

/// Held while a daemon writes as `sensor` into a data directory.
#[derive(Debug)]
pub struct SensorLock {
    _file: File,
    path: PathBuf,
    removed_partials: usize,
}

impl SensorLock {
    /// Takes the lock (failing at once if another process holds it) and
    /// removes the sensor's leftover partial files under `data`.
    pub fn acquire(data: &Path, sensor: &str) -> Result<SensorLock, LiveError> {
        let path = data.join(format!(".{sensor}.lock"));
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|source| LiveError::Lock { path: path.clone(), source })?;
        // SAFETY: a valid descriptor; LOCK_NB never blocks.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            let e = io::Error::last_os_error();
            let source = if e.kind() == io::ErrorKind::WouldBlock {
                io::Error::new(io::ErrorKind::AddrInUse, format!("another process writes as sensor {sensor:?} into this directory"))
            } else {
                e
            };
            return Err(LiveError::Lock { path, source });
        }
        let mut removed = 0;
        remove_partials(data, &format!(".{sensor}-"), &mut removed);
        Ok(SensorLock { _file: file, path, removed_partials: removed })
    }

    /// Leftover partial files removed when the lock was taken.
    pub fn removed_partials(&self) -> usize {
        self.removed_partials
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Whether the process that named a partial file `<pid>-<nanos>-<n>.partial`
/// still runs (an offline ingest with the same sensor name, for example).
fn writer_alive(rest: &str) -> bool {
    let Some(pid) = rest.split('-').next().and_then(|p| p.parse::<libc::pid_t>().ok()) else { return false };
    if pid <= 0 || pid == std::process::id() as libc::pid_t {
        return false;
    }
    // SAFETY: signal 0 only checks for existence.
    let rc = unsafe { libc::kill(pid, 0) };
    rc == 0 || io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

fn remove_partials(dir: &Path, prefix: &str, removed: &mut usize) {
    let Ok(rd) = std::fs::read_dir(dir) else { return };
    for e in rd.flatten() {
        let name = e.file_name();
        let name = name.to_string_lossy();
        let Ok(ft) = e.file_type() else { continue };
        if ft.is_dir() {
            remove_partials(&e.path(), prefix, removed);
        } else if let Some(rest) = name.strip_prefix(prefix)
            && name.ends_with(PARTIAL_SUFFIX)
            && !writer_alive(rest)
        {
            match std::fs::remove_file(e.path()) {
                Ok(()) => *removed += 1,
                Err(err) => tracing::warn!("removing leftover {}: {err}", e.path().display()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_writer_per_sensor_and_leftovers_of_that_sensor_only_are_removed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let part = dir.path().join("flow/2026/11/26/09");
        std::fs::create_dir_all(&part).expect("mkdir");
        // pid 0 never names a live writer; our own pid is this test, alive.
        std::fs::write(part.join(".edge1-0-123-4.partial"), b"x").expect("write");
        let alive = format!(".edge1-{}-1-1.partial", std::os::unix::process::parent_id());
        std::fs::write(part.join(&alive), b"x").expect("write");
        std::fs::write(part.join(".edge2-5-6.partial"), b"x").expect("write");
        std::fs::write(part.join("edge1-000001.arrow"), b"x").expect("write");
        let lock = SensorLock::acquire(dir.path(), "edge1").expect("first");
        assert_eq!(lock.removed_partials(), 1);
        assert!(!part.join(".edge1-0-123-4.partial").exists());
        assert!(part.join(&alive).exists(), "a live writer's file stays");
        assert!(part.join(".edge2-5-6.partial").exists(), "another sensor's file stays");
        assert!(part.join("edge1-000001.arrow").exists(), "segments stay");
        let err = SensorLock::acquire(dir.path(), "edge1").expect_err("second writer");
        assert!(format!("{err}: {}", std::error::Error::source(&err).expect("source")).contains("another process"), "{err}");
        assert!(SensorLock::acquire(dir.path(), "edge2").is_ok(), "other sensors are independent");
        drop(lock);
        assert!(SensorLock::acquire(dir.path(), "edge1").is_ok(), "released on drop");
    }
}

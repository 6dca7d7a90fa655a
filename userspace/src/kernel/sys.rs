//! The few `bpf(2)` map commands aya 0.14 does not expose for per-CPU hashes:
//! batch lookup, lookup-and-delete and a raw per-CPU update.
//!
//! Per-CPU values cross the syscall as `nr_possible_cpus` slots, each rounded
//! up to 8 bytes (`FlowVal` is 72 bytes, already a multiple of 8).

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

const BPF_MAP_UPDATE_ELEM: libc::c_long = 2;
const BPF_MAP_LOOKUP_AND_DELETE_ELEM: libc::c_long = 21;
const BPF_MAP_LOOKUP_BATCH: libc::c_long = 24;

/// `BPF_NOEXIST`.
pub(crate) const BPF_NOEXIST: u64 = 1;

#[repr(C)]
#[derive(Default)]
struct ElemAttr {
    map_fd: u32,
    pad: u32,
    key: u64,
    value: u64,
    flags: u64,
}

#[repr(C)]
#[derive(Default)]
struct BatchAttr {
    in_batch: u64,
    out_batch: u64,
    keys: u64,
    values: u64,
    count: u32,
    map_fd: u32,
    elem_flags: u64,
    flags: u64,
}

fn bpf<T>(cmd: libc::c_long, attr: &mut T) -> io::Result<()> {
    // SAFETY: `attr` is a valid, initialised attribute struct of the layout
    // the kernel expects for `cmd`; the pointers inside it refer to buffers
    // the caller keeps alive and sized for the map's key/value sizes.
    let r = unsafe { libc::syscall(libc::SYS_bpf, cmd, attr as *mut T, size_of::<T>() as libc::c_uint) };
    if r < 0 { Err(io::Error::last_os_error()) } else { Ok(()) }
}

/// Removes `key` and returns its per-CPU values in `values`
/// (`ncpus * size_of::<V>()` bytes). `Ok(false)` if the key was not there.
pub(crate) fn lookup_and_delete<K, V>(fd: BorrowedFd<'_>, key: &K, values: &mut [V]) -> io::Result<bool> {
    let mut attr = ElemAttr {
        map_fd: fd.as_raw_fd() as u32,
        key: key as *const K as u64,
        value: values.as_mut_ptr() as u64,
        ..Default::default()
    };
    match bpf(BPF_MAP_LOOKUP_AND_DELETE_ELEM, &mut attr) {
        Ok(()) => Ok(true),
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Inserts `key` with one value per CPU.
pub(crate) fn update_percpu<K, V>(fd: BorrowedFd<'_>, key: &K, values: &[V], flags: u64) -> io::Result<()> {
    let mut attr = ElemAttr {
        map_fd: fd.as_raw_fd() as u32,
        key: key as *const K as u64,
        value: values.as_ptr() as u64,
        flags,
        ..Default::default()
    };
    bpf(BPF_MAP_UPDATE_ELEM, &mut attr)
}

/// Reads the whole map with `BPF_MAP_LOOKUP_BATCH`, `chunk` keys per call:
/// calls `f(key, per_cpu_values)` for every entry. Entries added or removed
/// while reading may or may not be seen (the kernel walks bucket by bucket).
pub(crate) fn lookup_batch<K: Copy + Default, V: Copy + Default>(
    fd: BorrowedFd<'_>,
    ncpus: usize,
    chunk: usize,
    mut f: impl FnMut(&K, &[V]),
) -> io::Result<()> {
    let mut chunk = chunk.max(1);
    let mut keys = vec![K::default(); chunk];
    let mut vals = vec![V::default(); chunk * ncpus];
    let mut in_batch = 0u64;
    let mut out_batch = 0u64;
    let mut first = true;
    loop {
        let mut attr = BatchAttr {
            in_batch: if first { 0 } else { &mut in_batch as *mut u64 as u64 },
            out_batch: &mut out_batch as *mut u64 as u64,
            keys: keys.as_mut_ptr() as u64,
            values: vals.as_mut_ptr() as u64,
            count: chunk as u32,
            map_fd: fd.as_raw_fd() as u32,
            ..Default::default()
        };
        let r = bpf(BPF_MAP_LOOKUP_BATCH, &mut attr);
        let done = match r {
            Ok(()) => false,
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => true,
            Err(e) if e.raw_os_error() == Some(libc::ENOSPC) => {
                // One bucket holds more entries than `chunk`: grow and retry.
                chunk *= 2;
                keys = vec![K::default(); chunk];
                vals = vec![V::default(); chunk * ncpus];
                continue;
            }
            Err(e) => return Err(e),
        };
        let n = attr.count as usize;
        for i in 0..n {
            f(&keys[i], &vals[i * ncpus..(i + 1) * ncpus]);
        }
        if done {
            return Ok(());
        }
        in_batch = out_batch;
        first = false;
    }
}

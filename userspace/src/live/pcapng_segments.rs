//! Sampled packets as pcapng segments: `DATA/pcap/YYYY/MM/DD/HH/<sensor>-<seq>.pcapng`,
//! for later investigation with any pcapng reader (Wireshark, tshark, `osprey ingest pcap`).
//!
//! The capture side hands packets over with [`SampleWriter::push`], which never
//! waits: a bounded queue sits between it and a writer thread, and a full
//! queue drops the packet and counts it. The writer thread keeps one open
//! file per run at a time and publishes it the way Arrow segments are
//! published, by the same code ([`osprey_segment::segment::partial_path`],
//! [`osprey_segment::segment::publish`]): written under a hidden partial name
//! (removed by the next run's sensor lock if this one crashes), fsynced,
//! hard-linked to its final name (never replacing a file: the sequence number
//! moves on if the name is taken), the partial name removed, the directory
//! fsynced. A segment is cut when the packet hour changes, when it holds
//! `max_segment_bytes`, and every `rotate_interval` of wall time.

use std::fs::File;
use std::io::{self, BufWriter};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crossbeam_queue::ArrayQueue;
use osprey_segment::partition::hour_dir;
use osprey_segment::segment::{partial_path, publish as publish_segment};

use crate::craft::PcapngWriter;

/// Directory (kind) under the data directory.
pub const PCAP_DIR: &str = "pcap";
/// File extension of published segments.
pub const EXTENSION: &str = "pcapng";

/// Settings of the sample writer.
#[derive(Debug, Clone)]
pub struct SampleConfig {
    /// Data directory (segments go under `DATA/pcap/`).
    pub data: PathBuf,
    /// Sensor name (file names).
    pub sensor: String,
    /// Cut a segment once it holds this many bytes.
    pub max_segment_bytes: u64,
    /// Also cut one this often.
    pub rotate_interval: Duration,
    /// Packets the hand-over queue holds.
    pub queue_packets: usize,
}

/// Counters of the sample writer.
#[derive(Debug, Default)]
pub struct SampleStats {
    /// Packets written into segments.
    pub written: AtomicU64,
    /// Packets dropped on a full queue.
    pub dropped: AtomicU64,
    /// Segments published.
    pub segments: AtomicU64,
    /// Write errors (the packet is lost; the error is logged once per segment).
    pub errors: AtomicU64,
}

struct Shared {
    queue: ArrayQueue<(i64, Vec<u8>)>,
    stats: SampleStats,
    stop: AtomicBool,
}

/// The capture side's handle; dropping it (or [`SampleWriter::finish`])
/// publishes the open segment.
#[derive(Debug)]
pub struct SampleWriter {
    shared: Arc<Shared>,
    thread: Option<std::thread::JoinHandle<Vec<PathBuf>>>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared").field("queued", &self.queue.len()).field("stats", &self.stats).finish()
    }
}

impl SampleWriter {
    /// Starts the writer thread.
    pub fn start(cfg: SampleConfig) -> io::Result<SampleWriter> {
        osprey_segment::segment::validate_sensor(&cfg.sensor).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e.to_string()))?;
        let shared =
            Arc::new(Shared { queue: ArrayQueue::new(cfg.queue_packets.max(1)), stats: SampleStats::default(), stop: AtomicBool::new(false) });
        let s2 = shared.clone();
        let thread = std::thread::Builder::new().name("osprey-pcapng".into()).spawn(move || writer_loop(&cfg, &s2))?;
        Ok(SampleWriter { shared, thread: Some(thread) })
    }

    /// Hands a packet over; never waits. Returns false (and counts) if the queue was full.
    pub fn push(&self, ts_ns: i64, data: &[u8]) -> bool {
        if self.shared.queue.push((ts_ns, data.to_vec())).is_err() {
            self.shared.stats.dropped.fetch_add(1, Ordering::Relaxed);
            return false;
        }
        true
    }

    /// Counters so far.
    pub fn stats(&self) -> &SampleStats {
        &self.shared.stats
    }

    /// Writes what is queued, publishes the open segment, stops the thread;
    /// returns the paths published during the run.
    pub fn finish(mut self) -> Vec<PathBuf> {
        self.stop()
    }

    fn stop(&mut self) -> Vec<PathBuf> {
        self.shared.stop.store(true, Ordering::Release);
        self.thread.take().and_then(|t| t.join().ok()).unwrap_or_default()
    }
}

impl Drop for SampleWriter {
    fn drop(&mut self) {
        self.stop();
    }
}

/// One open segment.
struct Open {
    w: PcapngWriter<BufWriter<File>>,
    partial: PathBuf,
    dir: PathBuf,
    hour: i64,
    bytes: u64,
    opened: Instant,
}

fn writer_loop(cfg: &SampleConfig, shared: &Shared) -> Vec<PathBuf> {
    let mut open: Option<Open> = None;
    let mut published = Vec::new();
    loop {
        let stopping = shared.stop.load(Ordering::Acquire);
        let mut took = false;
        while let Some((ts, data)) = shared.queue.pop() {
            took = true;
            let hour = ts.div_euclid(3_600_000_000_000);
            let cut = open.as_ref().is_some_and(|o| o.hour != hour || o.bytes >= cfg.max_segment_bytes);
            if cut && let Some(o) = open.take() {
                publish(cfg, o, shared, &mut published);
            }
            if open.is_none() {
                match create(cfg, ts) {
                    Ok(o) => open = Some(o),
                    Err(e) => {
                        tracing::warn!("opening a pcapng sample segment: {e}");
                        shared.stats.errors.fetch_add(1, Ordering::Relaxed);
                        continue;
                    }
                }
            }
            if let Some(o) = open.as_mut() {
                match o.w.write_packet(ts, &data) {
                    Ok(()) => {
                        o.bytes += 32 + data.len() as u64;
                        shared.stats.written.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(e) => {
                        shared.stats.errors.fetch_add(1, Ordering::Relaxed);
                        tracing::warn!("writing a pcapng sample segment: {e}");
                    }
                }
            }
        }
        if open.as_ref().is_some_and(|o| o.opened.elapsed() >= cfg.rotate_interval)
            && let Some(o) = open.take()
        {
            publish(cfg, o, shared, &mut published);
        }
        if stopping && shared.queue.is_empty() {
            if let Some(o) = open.take() {
                publish(cfg, o, shared, &mut published);
            }
            return published;
        }
        if !took {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

fn create(cfg: &SampleConfig, ts: i64) -> io::Result<Open> {
    let dir = hour_dir(&cfg.data.join(PCAP_DIR), ts);
    std::fs::create_dir_all(&dir)?;
    let partial = partial_path(&dir, &cfg.sensor);
    let f = File::options().write(true).create_new(true).open(&partial)?;
    let w = PcapngWriter::new(BufWriter::new(f), crate::craft::linktype::ETHERNET)?;
    Ok(Open { w, partial, dir, hour: ts.div_euclid(3_600_000_000_000), bytes: 0, opened: Instant::now() })
}

fn publish(cfg: &SampleConfig, o: Open, shared: &Shared, published: &mut Vec<PathBuf>) {
    let Open { w, partial, dir, .. } = o;
    let res = (|| -> Result<PathBuf, Box<dyn std::error::Error>> {
        let f = w.into_inner()?.into_inner().map_err(|e| e.into_error())?;
        f.sync_all()?;
        Ok(publish_segment(&partial, &dir, &cfg.sensor, EXTENSION)?)
    })();
    match res {
        Ok(p) => {
            shared.stats.segments.fetch_add(1, Ordering::Relaxed);
            published.push(p);
        }
        Err(e) => {
            shared.stats.errors.fetch_add(1, Ordering::Relaxed);
            tracing::warn!("publishing pcapng sample segment {}: {e}", partial.display());
        }
    }
}

#[cfg(test)]
mod tests {
    use osprey_segment::segment::PARTIAL_SUFFIX;

    use super::*;

    /// Hourly segments of up to 1 MiB under `data`, a queue of `queue_packets`.
    fn config(data: &std::path::Path, queue_packets: usize) -> SampleConfig {
        SampleConfig {
            data: data.to_path_buf(),
            sensor: "s1".into(),
            max_segment_bytes: 1 << 20,
            rotate_interval: Duration::from_secs(3600),
            queue_packets,
        }
    }

    #[test]
    fn packets_are_published_per_hour_and_read_back() {
        let dir = tempfile::tempdir().expect("tempdir");
        let w = SampleWriter::start(config(dir.path(), 1024)).expect("start");
        let t0 = 1_795_676_400_000_000_000i64; // an hour boundary
        let frame = vec![0xabu8; 60];
        for i in 0..10 {
            assert!(w.push(t0 - 5 + i, &frame));
        }
        let paths = w.finish();
        assert_eq!(paths.len(), 2, "two hours, two segments: {paths:?}");
        let mut total = 0;
        for p in &paths {
            assert!(p.extension().is_some_and(|e| e == EXTENSION));
            let bytes = std::fs::read(p).expect("read");
            let mut r = crate::pcap::CaptureReader::new(&bytes).expect("pcapng");
            while let Some(Ok(pk)) = r.next_packet() {
                assert_eq!(pk.data, &frame[..]);
                total += 1;
            }
        }
        assert_eq!(total, 10);
        // No partial file is left behind.
        let mut stack = vec![dir.path().to_path_buf()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).expect("dir").flatten() {
                if e.file_type().expect("type").is_dir() {
                    stack.push(e.path());
                } else {
                    assert!(!e.file_name().to_string_lossy().ends_with(PARTIAL_SUFFIX));
                }
            }
        }
    }

    #[test]
    fn a_full_queue_drops_and_counts() {
        let dir = tempfile::tempdir().expect("tempdir");
        let w = SampleWriter::start(config(dir.path(), 4)).expect("start");
        let mut accepted = 0u64;
        for i in 0..10_000 {
            accepted += u64::from(w.push(1_795_676_400_000_000_000 + i, &[0u8; 1000]));
        }
        let dropped = w.stats().dropped.load(Ordering::Relaxed);
        assert_eq!(accepted + dropped, 10_000);
        let shared = w.shared.clone();
        let _ = w.finish();
        assert_eq!(shared.stats.written.load(Ordering::Relaxed), accepted);
    }
}

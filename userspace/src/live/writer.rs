//! The writer stage: record chunks → zstd Arrow segments, published on a
//! schedule that bounds both segment size and what a crash can lose.
//!
//! Records go into one [`PartitionedWriter`] per kind (hourly partitions,
//! Arrow batches of `batch_rows`, segments closed at `max_segment_bytes` or
//! `max_segment_records`). Segment files are immutable once published (the
//! footer carries the checksums), so making records durable means publishing
//! the segments that hold them. The stage publishes every open segment when
//! the first of these happens:
//!
//! - the oldest unpublished record has waited `flush_interval`: after SIGKILL
//!   at most one flush interval of records is lost, and since every file is
//!   written under a hidden `.partial` name and hard-linked into place after
//!   an fsync, nothing under a final name is ever partial or corrupt;
//! - the wall clock crosses a multiple of `rotate_interval` (so segments of
//!   all sensors line up on the same time grid, and none spans two windows);
//! - shutdown.
//!
//! At each publication the capture→segment latency of every record published
//! is recorded (the time its packet entered the pipeline to now). A segment
//! closed early for size is counted at the next publication, so its latency
//! is overstated by at most one flush interval, never understated.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use osprey_segment::partition::{PartitionedWriter, WriterConfig};
use osprey_segment::{DnsRecord, FlowRecord, SegmentError};

use super::ring::{Chunk, mono_ns};
use crate::metrics::{Counter, Latency};

/// When the writer publishes.
#[derive(Debug, Clone)]
pub struct WriterSchedule {
    /// Publish when the oldest unpublished record is this old.
    pub flush_interval: Duration,
    /// Publish when the wall clock crosses a multiple of this.
    pub rotate_interval: Duration,
}

/// Per-kind counters of what was published.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Published {
    /// Segment files.
    pub segments: u64,
    /// Their bytes.
    pub bytes: u64,
    /// Records in them.
    pub records: u64,
}

/// Metric handles of the writer (per kind: flow, dns).
#[derive(Debug, Clone, Default)]
pub struct WriterMetrics {
    /// Segments published, flow / dns.
    pub segments: [Counter; 2],
    /// Bytes published, flow / dns.
    pub bytes: [Counter; 2],
    /// Records published, flow / dns.
    pub records: [Counter; 2],
    /// Capture→segment latency.
    pub latency: Latency,
}

/// Writes record chunks into segments (see the module docs).
#[derive(Debug)]
pub struct SegmentStage {
    data: PathBuf,
    cfg: WriterConfig,
    schedule: WriterSchedule,
    flows: Option<PartitionedWriter<FlowRecord>>,
    dns: Option<PartitionedWriter<DnsRecord>>,
    pending: [u64; 2],
    entered: Vec<(u64, u32)>,
    oldest: Option<Instant>,
    window: Option<u64>,
    published: [Published; 2],
    paths: Vec<PathBuf>,
    keep_paths: bool,
    metrics: WriterMetrics,
}

fn rotate_window(rotate: Duration) -> u64 {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    let r = rotate.as_nanos().max(1);
    u64::try_from(now.as_nanos() / r).unwrap_or(u64::MAX)
}

impl SegmentStage {
    /// A stage writing under `data`.
    pub fn new(data: &Path, cfg: WriterConfig, schedule: WriterSchedule, metrics: WriterMetrics) -> Result<Self, SegmentError> {
        // Validates the settings now rather than at the first record.
        PartitionedWriter::<FlowRecord>::new(data, cfg.clone())?;
        Ok(SegmentStage {
            data: data.to_path_buf(),
            cfg,
            schedule,
            flows: None,
            dns: None,
            pending: [0; 2],
            entered: Vec::new(),
            oldest: None,
            window: None,
            published: [Published::default(); 2],
            paths: Vec::new(),
            keep_paths: false,
            metrics,
        })
    }

    /// Keeps the paths of published segments (tests; a daemon does not).
    pub fn keep_paths(&mut self, on: bool) {
        self.keep_paths = on;
    }

    /// Takes one chunk.
    pub fn accept(&mut self, chunk: Chunk) -> Result<(), SegmentError> {
        if chunk.is_empty() {
            return Ok(());
        }
        if self.oldest.is_none() {
            self.oldest = Some(Instant::now());
            self.window = Some(rotate_window(self.schedule.rotate_interval));
        }
        if !chunk.flows.is_empty() {
            let w = match &mut self.flows {
                Some(w) => w,
                None => self.flows.insert(PartitionedWriter::new(&self.data, self.cfg.clone())?),
            };
            self.pending[0] += chunk.flows.len() as u64;
            for r in chunk.flows {
                w.push(r)?;
            }
        }
        if !chunk.dns.is_empty() {
            let w = match &mut self.dns {
                Some(w) => w,
                None => self.dns.insert(PartitionedWriter::new(&self.data, self.cfg.clone())?),
            };
            self.pending[1] += chunk.dns.len() as u64;
            for r in chunk.dns {
                w.push(r)?;
            }
        }
        for (t, n) in chunk.entered {
            match self.entered.last_mut() {
                Some((lt, ln)) if *lt == t => *ln += n,
                _ => self.entered.push((t, n)),
            }
        }
        Ok(())
    }

    /// Publishes if the schedule says so. Returns whether it did.
    pub fn tick(&mut self) -> Result<bool, SegmentError> {
        let Some(oldest) = self.oldest else { return Ok(false) };
        let due = oldest.elapsed() >= self.schedule.flush_interval
            || self.window.is_some_and(|w| w != rotate_window(self.schedule.rotate_interval));
        if due {
            self.publish()?;
        }
        Ok(due)
    }

    /// Time until the next scheduled publication, if anything is pending.
    pub fn next_due(&self) -> Option<Duration> {
        self.oldest.map(|o| self.schedule.flush_interval.saturating_sub(o.elapsed()))
    }

    /// Publishes every open segment now.
    pub fn publish(&mut self) -> Result<(), SegmentError> {
        let mut files: [Vec<PathBuf>; 2] = [Vec::new(), Vec::new()];
        if let Some(w) = self.flows.take() {
            files[0] = w.finish()?;
        }
        if let Some(w) = self.dns.take() {
            files[1] = w.finish()?;
        }
        let now = mono_ns();
        self.metrics.latency.record_all(self.entered.drain(..).map(|(t, n)| (now.saturating_sub(t), u64::from(n))));
        for (k, kind_files) in files.iter().enumerate() {
            let bytes: u64 = kind_files.iter().filter_map(|p| std::fs::metadata(p).ok()).map(|m| m.len()).sum();
            let p = &mut self.published[k];
            p.segments += kind_files.len() as u64;
            p.bytes += bytes;
            p.records += self.pending[k];
            self.metrics.segments[k].add(kind_files.len() as u64);
            self.metrics.bytes[k].add(bytes);
            self.metrics.records[k].add(self.pending[k]);
            self.pending[k] = 0;
        }
        if self.keep_paths {
            self.paths.extend(files.into_iter().flatten());
        }
        self.oldest = None;
        self.window = None;
        Ok(())
    }

    /// What was published so far: flow, dns.
    pub fn published(&self) -> [Published; 2] {
        self.published
    }

    /// Paths published so far (with [`SegmentStage::keep_paths`]).
    pub fn paths(&self) -> &[PathBuf] {
        &self.paths
    }
}

//! The live pipeline: three threads joined by two bounded lock-free rings.
//!
//! ```text
//!  capture thread            decode thread                 writer thread
//!  CaptureSource::poll ──►  PacketRing ──► PacketDecoder ──►  RecordRing ──► SegmentStage
//!   (packets)                (drop+count)   flows, DNS        (chunks,        (PartitionedWriter,
//!   (ready records) ───────────────────────── Batcher ─────►   drop+count)     publish schedule)
//! ```
//!
//! No stage ever makes the capture side wait: both rings drop and count when
//! full. Shutdown (the `shutdown` flag, set by SIGINT/SIGTERM in the CLI, or
//! the end of a replayed source) runs front to back: the capture thread stops
//! polling, lets the source hand over what it still holds
//! ([`CaptureSource::finish`]: the kernel path detaches, drains its rings and
//! ends every flow in its map) and closes it (detaching from the interface), the decoder
//! drains its ring, ends every open flow (reason `flush`) and hands over its
//! last chunk (waiting for room now that nothing upstream can be blocked),
//! and the writer drains its ring and publishes every open segment.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use osprey_segment::partition::WriterConfig;

use super::LiveError;
use crate::decode::{DecodeConfig, DecodeStats, PacketDecoder, RecordSink};
use super::ring::{Batcher, PacketRing, RecordRing, mono_ns};
use super::source::{CaptureSource, Emitter, SourceInfo, SourceState, SourceStats};
use super::writer::{Published, SegmentStage, WriterMetrics, WriterSchedule};
use crate::metrics::{
    CAPTURE_DROP_REASONS, Counter, DNS_ERROR_KINDS, Gauge, Metric, RECORD_KINDS, Registry, SKIP_REASONS, TCP_DNS_SKIPS,
};
use crate::packet::SkipReason;
use crate::pcap::{LinkType, RawPacket};

/// Settings of a pipeline run.
#[derive(Debug, Clone)]
pub struct PipelineConfig {
    /// Data directory segments go to.
    pub data: PathBuf,
    /// Segment writer settings (sensor, batch rows, segment size limits).
    pub writer: WriterConfig,
    /// Decoder settings (flow table, DNS ports, reassembly bounds).
    pub decode: DecodeConfig,
    /// Packets the capture → decoder ring holds.
    pub ring_capacity: usize,
    /// Chunks (of up to [`super::ring::CHUNK_RECORDS`] records) the decoder → writer ring holds.
    pub record_ring_capacity: usize,
    /// Publish segments at least this often while records arrive.
    pub flush_interval: Duration,
    /// Also publish at every multiple of this on the wall clock.
    pub rotate_interval: Duration,
    /// How long shutdown waits for room in the record ring before dropping.
    pub shutdown_grace: Duration,
}

impl PipelineConfig {
    /// Defaults writing into `data`.
    pub fn new(data: &std::path::Path) -> Self {
        PipelineConfig {
            data: data.to_path_buf(),
            writer: WriterConfig::default(),
            decode: DecodeConfig::default(),
            ring_capacity: 65_536,
            record_ring_capacity: 256,
            flush_interval: Duration::from_secs(30),
            rotate_interval: Duration::from_secs(300),
            shutdown_grace: Duration::from_secs(30),
        }
    }
}

/// What a run did, for the end-of-run summary and for tests' accounting.
#[derive(Debug, Clone, Default)]
pub struct PipelineReport {
    /// The source.
    pub source: Option<SourceInfo>,
    /// Packets the source delivered.
    pub received_packets: u64,
    /// Their wire bytes.
    pub received_bytes: u64,
    /// The source's own loss counters.
    pub source_stats: SourceStats,
    /// Packets dropped on a full capture → decoder ring.
    pub packet_ring_drops: u64,
    /// Flow records dropped on a full record ring.
    pub flow_record_drops: u64,
    /// Packets carried by those flow records.
    pub flow_record_drop_packets: u64,
    /// DNS records dropped on a full record ring.
    pub dns_record_drops: u64,
    /// Decoder counters.
    pub decode: DecodeStats,
    /// What was published: flow, dns.
    pub published: [Published; 2],
    /// Paths published (only when asked for with [`Pipeline::keep_paths`]).
    pub paths: Vec<PathBuf>,
    /// Capture→segment latency p50, p99, p99.9 (ns), and the number of records measured.
    pub latency_ns: (u64, u64, u64, u64),
    /// Wall time of the run.
    pub elapsed: Duration,
}

impl PipelineReport {
    /// Packets lost anywhere before decoding (socket, interface, ring).
    pub fn capture_drops(&self) -> u64 {
        self.source_stats.socket_drops + self.source_stats.interface_drops + self.packet_ring_drops
    }
}

/// Metric handles the capture thread updates.
struct CaptureMetrics {
    received_packets: Counter,
    received_bytes: Counter,
    drops: [Counter; 3],
    kernel_ring_drops: [Counter; 2],
    ring_record_drops: [Counter; 2],
}

/// Metric handles the decode thread updates.
struct DecodeMetrics {
    skipped: Vec<Counter>,
    refused: Counter,
    exported: Counter,
    active: Gauge,
    dns: Counter,
    dns_errors: Vec<Counter>,
    tcp_skips: Vec<Counter>,
    last: DecodeStats,
}

impl DecodeMetrics {
    fn publish(&mut self, s: &DecodeStats, active_flows: usize) {
        for (i, c) in self.skipped.iter().enumerate() {
            c.add(s.skipped[i] - self.last.skipped[i]);
        }
        self.refused.add(s.flow_table_full - self.last.flow_table_full);
        self.exported.add(s.flows - self.last.flows);
        self.dns.add(s.dns_messages - self.last.dns_messages);
        for (i, c) in self.dns_errors.iter().enumerate() {
            c.add(s.dns_errors[i] - self.last.dns_errors[i]);
        }
        for (i, c) in self.tcp_skips.iter().enumerate() {
            c.add(s.tcp_dns_skipped[i] - self.last.tcp_dns_skipped[i]);
        }
        self.active.set(active_flows as f64);
        self.last = s.clone();
    }
}

/// A configured pipeline, ready to run one source.
#[derive(Debug)]
pub struct Pipeline {
    cfg: PipelineConfig,
    registry: Registry,
    keep_paths: bool,
}

#[derive(Default)]
struct Shared {
    failure: Mutex<Option<LiveError>>,
    failed: AtomicBool,
    capture_done: AtomicBool,
    decode_done: AtomicBool,
}

impl Shared {
    fn fail(&self, e: LiveError) {
        let mut g = self.failure.lock().unwrap_or_else(PoisonError::into_inner);
        if g.is_none() {
            *g = Some(e);
        }
        self.failed.store(true, Ordering::Release);
    }
}

impl Pipeline {
    /// A pipeline exporting its metrics into `registry`.
    pub fn new(cfg: PipelineConfig, registry: Registry) -> Self {
        Pipeline { cfg, registry, keep_paths: false }
    }

    /// Report the paths of published segments (tests).
    pub fn keep_paths(mut self, on: bool) -> Self {
        self.keep_paths = on;
        self
    }

    /// Runs `source` until `shutdown` is set or the source ends, then shuts
    /// down in order (see the module docs). The calling thread is the capture
    /// thread. Returns the run's counters, or the first error of any stage
    /// (after shutting the others down).
    pub fn run(self, mut source: Box<dyn CaptureSource>, shutdown: Arc<AtomicBool>) -> Result<PipelineReport, LiveError> {
        let started = Instant::now();
        let info = source.info();
        let reg = &self.registry;
        let iface = info.iface.as_str();
        reg.gauge(Metric::CaptureInfo, &[("iface", iface), ("source", info.source), ("mode", info.mode)])?.set(1.0);
        source.register_metrics(reg)?;
        // A source that accounts flows itself (the kernel path) hands over raw
        // packets only for their DNS: the decoder's flows are not kept.
        let dns_only = source.accounts_flows();

        let (packets, decode_parker) = PacketRing::new(self.cfg.ring_capacity);
        let (records, writer_parker) = RecordRing::new(self.cfg.record_ring_capacity);
        for (name, cap) in [("packets", packets.capacity()), ("records", records.capacity())] {
            reg.gauge(Metric::RingCapacity, &[("ring", name)])?.set(cap as f64);
        }
        let p2 = packets.clone();
        reg.gauge_fn(Metric::RingOccupancy, &[("ring", "packets")], move || p2.len() as f64 / p2.capacity() as f64)?;
        let r2 = records.clone();
        reg.gauge_fn(Metric::RingOccupancy, &[("ring", "records")], move || r2.len() as f64 / r2.capacity() as f64)?;

        let cm = CaptureMetrics {
            received_packets: reg.counter(Metric::CaptureReceivedPackets, &[("iface", iface)])?,
            received_bytes: reg.counter(Metric::CaptureReceivedBytes, &[("iface", iface)])?,
            drops: [
                reg.counter(Metric::CaptureDroppedPackets, &[("iface", iface), ("reason", CAPTURE_DROP_REASONS[0])])?,
                reg.counter(Metric::CaptureDroppedPackets, &[("iface", iface), ("reason", CAPTURE_DROP_REASONS[1])])?,
                reg.counter(Metric::CaptureDroppedPackets, &[("iface", iface), ("reason", CAPTURE_DROP_REASONS[2])])?,
            ],
            kernel_ring_drops: if info.source == "xdp" {
                [
                    reg.counter(Metric::KernelRingDroppedRecords, &[("iface", iface), ("ring", "dns")])?,
                    reg.counter(Metric::KernelRingDroppedRecords, &[("iface", iface), ("ring", "flow_ends")])?,
                ]
            } else {
                [Counter::default(), Counter::default()]
            },
            ring_record_drops: [
                reg.counter(Metric::RingDroppedRecords, &[("kind", RECORD_KINDS[0])])?,
                reg.counter(Metric::RingDroppedRecords, &[("kind", RECORD_KINDS[1])])?,
            ],
        };
        let mut dm = DecodeMetrics {
            skipped: SKIP_REASONS
                .iter()
                .map(|r| reg.counter(Metric::DecodeSkippedPackets, &[("reason", r)]))
                .collect::<Result<_, _>>()?,
            refused: reg.counter(Metric::FlowTableRefusedPackets, &[])?,
            exported: reg.counter(Metric::FlowTableExportedFlows, &[])?,
            active: reg.gauge(Metric::FlowTableActiveFlows, &[])?,
            dns: reg.counter(Metric::DnsDecodedMessages, &[])?,
            dns_errors: DNS_ERROR_KINDS
                .iter()
                .map(|r| reg.counter(Metric::DnsUndecodableMessages, &[("reason", r)]))
                .collect::<Result<_, _>>()?,
            tcp_skips: TCP_DNS_SKIPS
                .iter()
                .map(|r| reg.counter(Metric::DnsTcpSkippedSegments, &[("reason", r)]))
                .collect::<Result<_, _>>()?,
            last: DecodeStats::default(),
        };
        let wm = WriterMetrics {
            segments: [
                reg.counter(Metric::WriterSegments, &[("kind", "flow")])?,
                reg.counter(Metric::WriterSegments, &[("kind", "dns")])?,
            ],
            bytes: [reg.counter(Metric::WriterBytes, &[("kind", "flow")])?, reg.counter(Metric::WriterBytes, &[("kind", "dns")])?],
            records: [
                reg.counter(Metric::WriterRecords, &[("kind", "flow")])?,
                reg.counter(Metric::WriterRecords, &[("kind", "dns")])?,
            ],
            latency: reg.latency(Metric::CaptureToSegmentLatency)?,
        };
        let latency = wm.latency.clone();

        let mut stage = SegmentStage::new(
            &self.cfg.data,
            self.cfg.writer.clone(),
            WriterSchedule { flush_interval: self.cfg.flush_interval, rotate_interval: self.cfg.rotate_interval },
            wm,
        )?;
        stage.keep_paths(self.keep_paths);
        let shared = Arc::new(Shared::default());

        // Writer thread.
        let writer = {
            let (shared, records) = (shared.clone(), records.clone());
            std::thread::Builder::new()
                .name("osprey-writer".into())
                .spawn(move || {
                    let res = writer_loop(&mut stage, &records, &writer_parker, &shared);
                    if let Err(e) = res {
                        tracing::error!("segment writer failed: {e}");
                        shared.fail(LiveError::Segment(e));
                        // Keep draining so the decoder's shutdown does not wait in vain.
                        while !shared.decode_done.load(Ordering::Acquire) || !records.is_empty() {
                            if records.pop().is_none() {
                                std::thread::sleep(Duration::from_millis(5));
                            }
                        }
                    }
                    stage
                })
                .map_err(LiveError::Thread)?
        };

        // Decode thread.
        let decoder = {
            let (shared, packets, records) = (shared.clone(), packets.clone(), records.clone());
            let decode_cfg = self.cfg.decode.clone();
            let grace = self.cfg.shutdown_grace;
            std::thread::Builder::new()
                .name("osprey-decode".into())
                .spawn(move || {
                    let mut dec = PacketDecoder::new(&decode_cfg);
                    let mut batcher = Batcher::new(records.clone());
                    let mut sink = DecodeSink { batcher: &mut batcher, dns_only };
                    decode_loop(&mut dec, &mut sink, &packets, &decode_parker, &shared, &mut dm);
                    // Shutdown: end every open flow and hand everything over.
                    sink.batcher.set_entered(mono_ns());
                    let Ok(()) = dec.flush(&mut sink);
                    let grace = if shared.failed.load(Ordering::Acquire) { Duration::ZERO } else { grace };
                    batcher.finish(grace);
                    dm.publish(dec.stats(), dec.flow_table().active_flows());
                    shared.decode_done.store(true, Ordering::Release);
                    records.wake();
                    dec.stats().clone()
                })
                .map_err(LiveError::Thread)?
        };

        // Capture: this thread.
        let mut emitter = Emitter::new(packets.clone(), records.clone());
        let mut last_sync = Instant::now();
        let mut synced = SyncState::default();
        while !shutdown.load(Ordering::Relaxed) && !shared.failed.load(Ordering::Acquire) {
            match source.poll(&mut emitter, Duration::from_millis(100)) {
                Ok(SourceState::Running) => {}
                Ok(SourceState::Ended) => break,
                Err(e) => {
                    tracing::error!("capture failed: {e}");
                    shared.fail(e);
                    break;
                }
            }
            emitter.tick();
            if last_sync.elapsed() >= Duration::from_millis(250) {
                synced.sync(&cm, &emitter, source.stats(), &packets, &records);
                last_sync = Instant::now();
            }
        }
        if let Err(e) = source.finish(&mut emitter) {
            tracing::error!("closing the capture source failed: {e}");
            shared.fail(e);
        }
        emitter.finish(self.cfg.shutdown_grace);
        let source_stats = source.stats();
        // Closing the source detaches it from the interface.
        drop(source);
        shared.capture_done.store(true, Ordering::Release);
        packets.wake();

        let decode = decoder.join().map_err(|_| LiveError::Panicked("decode"))?;
        let stage = writer.join().map_err(|_| LiveError::Panicked("writer"))?;
        synced.sync(&cm, &emitter, source_stats, &packets, &records);
        if let Some(e) = shared.failure.lock().unwrap_or_else(PoisonError::into_inner).take() {
            return Err(e);
        }
        let (received_packets, received_bytes) = emitter.received();
        let drops = records.drops();
        Ok(PipelineReport {
            source: Some(info),
            received_packets,
            received_bytes,
            source_stats,
            packet_ring_drops: packets.dropped(),
            flow_record_drops: drops.flows.load(Ordering::Relaxed),
            flow_record_drop_packets: drops.flow_packets.load(Ordering::Relaxed),
            dns_record_drops: drops.dns.load(Ordering::Relaxed),
            decode,
            published: stage.published(),
            paths: stage.paths().to_vec(),
            latency_ns: (latency.quantile_ns(0.5), latency.quantile_ns(0.99), latency.quantile_ns(0.999), latency.count()),
            elapsed: started.elapsed(),
        })
    }
}

/// Last values pushed to the capture-side counters (they are deltas of totals).
#[derive(Default)]
struct SyncState {
    received: (u64, u64),
    source: SourceStats,
    ring: u64,
    records: (u64, u64),
}

impl SyncState {
    fn sync(&mut self, cm: &CaptureMetrics, e: &Emitter, s: SourceStats, packets: &PacketRing, records: &RecordRing) {
        let r = e.received();
        cm.received_packets.add(r.0 - self.received.0);
        cm.received_bytes.add(r.1 - self.received.1);
        self.received = r;
        cm.drops[0].add(s.socket_drops.saturating_sub(self.source.socket_drops));
        cm.drops[1].add(s.interface_drops.saturating_sub(self.source.interface_drops));
        cm.kernel_ring_drops[0].add(s.kernel_dns_ring_drops.saturating_sub(self.source.kernel_dns_ring_drops));
        cm.kernel_ring_drops[1].add(s.kernel_flow_ring_drops.saturating_sub(self.source.kernel_flow_ring_drops));
        self.source = s;
        let ring = packets.dropped();
        cm.drops[2].add(ring - self.ring);
        self.ring = ring;
        let d = records.drops();
        let rd = (d.flows.load(Ordering::Relaxed), d.dns.load(Ordering::Relaxed));
        cm.ring_record_drops[0].add(rd.0 - self.records.0);
        cm.ring_record_drops[1].add(rd.1 - self.records.1);
        self.records = rd;
    }
}

/// The decoder's sink: the batcher, keeping only DNS records when the source
/// accounts flows itself ([`CaptureSource::accounts_flows`]).
struct DecodeSink<'a> {
    batcher: &'a mut Batcher,
    dns_only: bool,
}

impl RecordSink for DecodeSink<'_> {
    type Error = std::convert::Infallible;
    fn flow(&mut self, rec: osprey_segment::FlowRecord) -> Result<(), Self::Error> {
        if !self.dns_only {
            self.batcher.flow(rec);
        }
        Ok(())
    }
    fn dns(&mut self, rec: osprey_segment::DnsRecord) -> Result<(), Self::Error> {
        self.batcher.dns(rec);
        Ok(())
    }
}

fn decode_loop(
    dec: &mut PacketDecoder,
    sink: &mut DecodeSink<'_>,
    packets: &PacketRing,
    parker: &crossbeam_utils::sync::Parker,
    shared: &Shared,
    dm: &mut DecodeMetrics,
) {
    let mut last_publish = Instant::now();
    // Packet time of the newest packet and when it was decoded: on a quiet
    // link the flow clock keeps moving from there with the wall clock, so
    // idle flows end on time rather than at the next packet (for a replay at
    // full speed the elapsed wall time is tiny and changes nothing).
    let mut last_packet: Option<(i64, Instant)> = None;
    loop {
        let mut n = 0usize;
        while let Some(p) = packets.pop() {
            last_packet = Some((p.ts_ns, Instant::now()));
            sink.batcher.set_entered(p.entered_ns);
            let raw = RawPacket { ts_ns: p.ts_ns, link_type: p.link_type.unwrap_or(LinkType::Ethernet), orig_len: p.orig_len, data: &p.data };
            let Ok(()) = dec.packet(&raw, sink);
            packets.recycle(p.data);
            n += 1;
            if n >= 4096 {
                break;
            }
        }
        sink.batcher.tick();
        if last_publish.elapsed() >= Duration::from_millis(100) {
            if let Some((ts, at)) = last_packet {
                let elapsed = i64::try_from(at.elapsed().as_nanos()).unwrap_or(i64::MAX);
                let Ok(()) = dec.advance(ts.saturating_add(elapsed), sink);
            }
            dm.publish(dec.stats(), dec.flow_table().active_flows());
            last_publish = Instant::now();
        }
        if n == 0 {
            // Only stop once the capture side is done and its ring is empty.
            if (shared.capture_done.load(Ordering::Acquire) && packets.is_empty()) || shared.failed.load(Ordering::Acquire) {
                return;
            }
            parker.park_timeout(Duration::from_millis(20));
        }
    }
}

fn writer_loop(
    stage: &mut SegmentStage,
    records: &RecordRing,
    parker: &crossbeam_utils::sync::Parker,
    shared: &Shared,
) -> Result<(), osprey_segment::SegmentError> {
    loop {
        let mut n = 0usize;
        while let Some(chunk) = records.pop() {
            stage.accept(chunk)?;
            n += 1;
            if n >= 64 {
                break;
            }
        }
        stage.tick()?;
        if n == 0 {
            if shared.decode_done.load(Ordering::Acquire) && records.is_empty() {
                return stage.publish();
            }
            let wait = stage.next_due().unwrap_or(Duration::from_millis(200)).clamp(Duration::from_millis(1), Duration::from_millis(200));
            parker.park_timeout(wait);
        }
    }
}

/// Records per kind skipped by the decoder, for summaries: `(reason, count)`
/// for every non-zero [`SkipReason`].
pub fn skipped_by_reason(s: &DecodeStats) -> Vec<(&'static str, u64)> {
    SkipReason::ALL.iter().filter(|r| s.skipped[r.index()] > 0).map(|r| (r.as_str(), s.skipped[r.index()])).collect()
}

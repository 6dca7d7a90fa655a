//! A capture source that replays packets held in memory (a pcap/pcapng file
//! or frames built in a test), optionally paced to a steady rate.
//!
//! It runs the live pipeline without a network or privileges: tests compare
//! the pipeline's segments with offline ingest of the same file, and the
//! benchmarks measure capture→segment latency at a chosen packet rate.

use std::time::{Duration, Instant};

use super::LiveError;
use super::source::{CaptureSource, Emitter, SourceInfo, SourceState, SourceStats};
use crate::pcap::{CaptureReader, LinkType};

/// One packet to replay.
#[derive(Debug, Clone)]
pub struct ReplayPacket {
    /// Capture timestamp, ns since the epoch.
    pub ts_ns: i64,
    /// Link type.
    pub link_type: LinkType,
    /// Length on the wire.
    pub orig_len: u32,
    /// Bytes.
    pub data: Vec<u8>,
}

/// Replays packets in order; ends after the last one.
#[derive(Debug)]
pub struct ReplaySource {
    name: String,
    packets: Vec<ReplayPacket>,
    next: usize,
    /// Packets per second, or unpaced.
    rate_pps: Option<f64>,
    started: Option<Instant>,
    /// Stamp packets with the time they are replayed instead of their own.
    restamp: bool,
}

impl ReplaySource {
    /// A replay of `packets`, as fast as the pipeline takes them.
    pub fn new(name: &str, packets: Vec<ReplayPacket>) -> Self {
        ReplaySource { name: name.to_string(), packets, next: 0, rate_pps: None, started: None, restamp: false }
    }

    /// A replay of a pcap or pcapng file's bytes (records up to the first damage).
    pub fn from_capture(name: &str, bytes: &[u8]) -> Result<Self, LiveError> {
        let mut reader = CaptureReader::new(bytes)
            .map_err(|e| LiveError::SourceUnavailable { source_kind: "replay", reason: format!("{name}: {e}") })?;
        let mut packets = Vec::new();
        while let Some(Ok(p)) = reader.next_packet() {
            packets.push(ReplayPacket { ts_ns: p.ts_ns, link_type: p.link_type, orig_len: p.orig_len, data: p.data.to_vec() });
        }
        Ok(ReplaySource::new(name, packets))
    }

    /// Paces the replay at `pps` packets per second.
    pub fn paced(mut self, pps: f64) -> Self {
        self.rate_pps = Some(pps);
        self
    }

    /// Stamps each packet with the wall-clock time it is replayed.
    pub fn restamped(mut self) -> Self {
        self.restamp = true;
        self
    }

    /// Packets in the replay.
    pub fn len(&self) -> usize {
        self.packets.len()
    }

    /// Whether the replay is empty.
    pub fn is_empty(&self) -> bool {
        self.packets.is_empty()
    }
}

impl CaptureSource for ReplaySource {
    fn info(&self) -> SourceInfo {
        SourceInfo { iface: self.name.clone(), source: "replay", mode: "replay" }
    }

    fn poll(&mut self, out: &mut Emitter, timeout: Duration) -> Result<SourceState, LiveError> {
        let started = *self.started.get_or_insert_with(Instant::now);
        let deadline = Instant::now() + timeout;
        loop {
            let Some(p) = self.packets.get(self.next) else { return Ok(SourceState::Ended) };
            if let Some(pps) = self.rate_pps {
                let due = started + Duration::from_secs_f64(self.next as f64 / pps);
                let now = Instant::now();
                if due > now {
                    if due > deadline {
                        std::thread::sleep(deadline.saturating_duration_since(now));
                        return Ok(SourceState::Running);
                    }
                    std::thread::sleep(due - now);
                }
            } else {
                // Unpaced, a replay reads like a file: it waits for room
                // instead of dropping (a paced replay behaves like a link).
                while !out.has_packet_room() {
                    if Instant::now() >= deadline {
                        return Ok(SourceState::Running);
                    }
                    std::thread::sleep(Duration::from_micros(200));
                }
                if self.next % 4096 == 4095 && Instant::now() >= deadline {
                    return Ok(SourceState::Running);
                }
            }
            let ts = if self.restamp { super::afpacket::realtime_ns() } else { p.ts_ns };
            out.packet(ts, p.orig_len, p.link_type, &p.data);
            self.next += 1;
        }
    }

    fn stats(&mut self) -> SourceStats {
        SourceStats::default()
    }
}

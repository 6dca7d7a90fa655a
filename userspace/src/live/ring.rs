//! The bounded lock-free rings between pipeline stages, and the batcher that
//! groups records into chunks for the writer.
//!
//! - [`PacketRing`]: capture → decoder. Slots are [`PacketBuf`]s whose byte
//!   buffers are recycled through a free list, so a steady state allocates
//!   nothing. [`PacketRing::push`] never waits: when the ring is full the
//!   packet is dropped and counted.
//! - [`RecordRing`]: decoder (or a source that yields ready records) →
//!   writer. Its slots are [`Chunk`]s of up to [`CHUNK_RECORDS`] records, so
//!   one ring operation moves many records; a full ring drops the chunk and
//!   counts its records by kind (and the packets its flow records carried,
//!   so packet accounting stays exact).
//! - [`Batcher`]: fills chunks on the producing thread and hands them over
//!   when full or older than [`CHUNK_MAX_AGE`].
//!
//! Consumers park when their ring is empty; producers wake them (an atomic
//! swap when nobody sleeps).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crossbeam_queue::ArrayQueue;
use crossbeam_utils::sync::{Parker, Unparker};
use osprey_segment::{DnsRecord, FlowRecord};

use crate::pcap::LinkType;

/// Records per chunk handed to the writer.
pub const CHUNK_RECORDS: usize = 1024;
/// A partly filled chunk is handed over after this long.
pub const CHUNK_MAX_AGE: Duration = Duration::from_millis(50);
/// Buffers larger than this are not kept on the free list (GRO super-packets).
const MAX_POOLED_CAPACITY: usize = 16 * 1024;

/// Nanoseconds on the pipeline's monotonic clock (process-wide epoch).
pub fn mono_ns() -> u64 {
    static EPOCH: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    let epoch = *EPOCH.get_or_init(Instant::now);
    u64::try_from(epoch.elapsed().as_nanos()).unwrap_or(u64::MAX)
}

/// One captured packet in flight between capture and decoder.
#[derive(Debug, Default)]
pub struct PacketBuf {
    /// Capture timestamp, ns since the epoch (wall clock).
    pub ts_ns: i64,
    /// Length on the wire.
    pub orig_len: u32,
    /// Link type of `data`.
    pub link_type: Option<LinkType>,
    /// When the packet entered the pipeline ([`mono_ns`]), for latency.
    pub entered_ns: u64,
    /// Captured bytes.
    pub data: Vec<u8>,
}

/// Capture → decoder ring with a recycled buffer pool.
#[derive(Debug)]
pub struct PacketRing {
    full: ArrayQueue<PacketBuf>,
    free: ArrayQueue<Vec<u8>>,
    dropped: AtomicU64,
    consumer: Unparker,
}

impl PacketRing {
    /// A ring of `capacity` packets and the parker its consumer waits on.
    pub fn new(capacity: usize) -> (Arc<PacketRing>, Parker) {
        let parker = Parker::new();
        let ring = PacketRing {
            full: ArrayQueue::new(capacity.max(1)),
            free: ArrayQueue::new(capacity.max(1)),
            dropped: AtomicU64::new(0),
            consumer: parker.unparker().clone(),
        };
        (Arc::new(ring), parker)
    }

    /// Copies a packet in. Never waits; returns false (and counts) when full.
    #[inline]
    pub fn push(&self, ts_ns: i64, orig_len: u32, link_type: LinkType, data: &[u8]) -> bool {
        if self.full.is_full() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return false;
        }
        let mut buf = self.free.pop().unwrap_or_default();
        buf.clear();
        buf.extend_from_slice(data);
        let p = PacketBuf { ts_ns, orig_len, link_type: Some(link_type), entered_ns: mono_ns(), data: buf };
        match self.full.push(p) {
            Ok(()) => {
                self.consumer.unpark();
                true
            }
            Err(p) => {
                self.recycle(p.data);
                self.dropped.fetch_add(1, Ordering::Relaxed);
                false
            }
        }
    }

    /// Takes the oldest packet, if any.
    #[inline]
    pub fn pop(&self) -> Option<PacketBuf> {
        self.full.pop()
    }

    /// Returns a packet's buffer to the pool.
    #[inline]
    pub fn recycle(&self, buf: Vec<u8>) {
        if buf.capacity() <= MAX_POOLED_CAPACITY {
            let _ = self.free.push(buf);
        }
    }

    /// Packets dropped because the ring was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Packets waiting.
    pub fn len(&self) -> usize {
        self.full.len()
    }

    /// Whether no packet waits.
    pub fn is_empty(&self) -> bool {
        self.full.is_empty()
    }

    /// Slots.
    pub fn capacity(&self) -> usize {
        self.full.capacity()
    }

    /// Wakes the consumer (shutdown).
    pub fn wake(&self) {
        self.consumer.unpark();
    }
}

/// A group of records moving to the writer, with the times their packets
/// entered the pipeline (run-length encoded: one sweep often ends many flows
/// on one packet).
#[derive(Debug, Default)]
pub struct Chunk {
    /// Flow records.
    pub flows: Vec<FlowRecord>,
    /// DNS records.
    pub dns: Vec<DnsRecord>,
    /// `(entered_ns, records)` pairs covering every record of the chunk.
    pub entered: Vec<(u64, u32)>,
}

impl Chunk {
    /// Records in the chunk.
    pub fn len(&self) -> usize {
        self.flows.len() + self.dns.len()
    }

    /// Whether the chunk holds no record.
    pub fn is_empty(&self) -> bool {
        self.flows.is_empty() && self.dns.is_empty()
    }

    fn note(&mut self, entered_ns: u64) {
        match self.entered.last_mut() {
            Some((t, n)) if *t == entered_ns => *n += 1,
            _ => self.entered.push((entered_ns, 1)),
        }
    }
}

/// Counters of records lost on a full [`RecordRing`].
#[derive(Debug, Default)]
pub struct RecordDrops {
    /// Flow records dropped.
    pub flows: AtomicU64,
    /// DNS records dropped.
    pub dns: AtomicU64,
    /// Packets (both directions) accounted in the dropped flow records.
    pub flow_packets: AtomicU64,
}

/// Decoder → writer ring of [`Chunk`]s.
#[derive(Debug)]
pub struct RecordRing {
    q: ArrayQueue<Chunk>,
    drops: RecordDrops,
    consumer: Unparker,
}

impl RecordRing {
    /// A ring of `capacity` chunks and the parker its consumer waits on.
    pub fn new(capacity: usize) -> (Arc<RecordRing>, Parker) {
        let parker = Parker::new();
        let ring = RecordRing { q: ArrayQueue::new(capacity.max(1)), drops: RecordDrops::default(), consumer: parker.unparker().clone() };
        (Arc::new(ring), parker)
    }

    /// Hands a chunk over. Never waits: a full ring drops it and counts.
    pub fn push(&self, chunk: Chunk) -> bool {
        match self.q.push(chunk) {
            Ok(()) => {
                self.consumer.unpark();
                true
            }
            Err(c) => {
                self.count_drop(&c);
                false
            }
        }
    }

    /// Hands a chunk over, waiting for room: only for shutdown, when the
    /// capture side has already stopped and nothing upstream can be blocked.
    pub fn push_wait(&self, mut chunk: Chunk, give_up_after: Duration) -> bool {
        let deadline = Instant::now() + give_up_after;
        loop {
            match self.q.push(chunk) {
                Ok(()) => {
                    self.consumer.unpark();
                    return true;
                }
                Err(c) if Instant::now() >= deadline => {
                    self.count_drop(&c);
                    return false;
                }
                Err(c) => {
                    chunk = c;
                    self.consumer.unpark();
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
        }
    }

    fn count_drop(&self, c: &Chunk) {
        self.drops.flows.fetch_add(c.flows.len() as u64, Ordering::Relaxed);
        self.drops.dns.fetch_add(c.dns.len() as u64, Ordering::Relaxed);
        let pkts: u64 = c.flows.iter().map(|f| f.packets + f.rev_packets).sum();
        self.drops.flow_packets.fetch_add(pkts, Ordering::Relaxed);
    }

    /// Takes the oldest chunk, if any.
    pub fn pop(&self) -> Option<Chunk> {
        self.q.pop()
    }

    /// What was dropped so far.
    pub fn drops(&self) -> &RecordDrops {
        &self.drops
    }

    /// Chunks waiting.
    pub fn len(&self) -> usize {
        self.q.len()
    }

    /// Whether no chunk waits.
    pub fn is_empty(&self) -> bool {
        self.q.is_empty()
    }

    /// Slots.
    pub fn capacity(&self) -> usize {
        self.q.capacity()
    }

    /// Wakes the consumer (shutdown).
    pub fn wake(&self) {
        self.consumer.unpark();
    }
}

/// Fills [`Chunk`]s on the producing thread and hands them to a [`RecordRing`].
#[derive(Debug)]
pub struct Batcher {
    ring: Arc<RecordRing>,
    chunk: Chunk,
    started: Option<Instant>,
    /// The entry time stamped on records added next.
    entered_ns: u64,
}

impl Batcher {
    /// A batcher feeding `ring`.
    pub fn new(ring: Arc<RecordRing>) -> Self {
        Batcher { ring, chunk: Chunk::default(), started: None, entered_ns: 0 }
    }

    /// Sets the pipeline-entry time of the packet being processed: records
    /// added until the next call carry it.
    #[inline]
    pub fn set_entered(&mut self, entered_ns: u64) {
        self.entered_ns = entered_ns;
    }

    /// Records in the chunk being filled (handed over at [`CHUNK_RECORDS`]).
    #[inline]
    pub fn pending(&self) -> usize {
        self.chunk.len()
    }

    /// Adds a flow record.
    #[inline]
    pub fn flow(&mut self, rec: FlowRecord) {
        self.started.get_or_insert_with(Instant::now);
        self.chunk.flows.push(rec);
        self.chunk.note(self.entered_ns);
        if self.chunk.len() >= CHUNK_RECORDS {
            self.hand_over();
        }
    }

    /// Adds a DNS record.
    #[inline]
    pub fn dns(&mut self, rec: DnsRecord) {
        self.started.get_or_insert_with(Instant::now);
        self.chunk.dns.push(rec);
        self.chunk.note(self.entered_ns);
        if self.chunk.len() >= CHUNK_RECORDS {
            self.hand_over();
        }
    }

    /// Hands over a partly filled chunk that is older than [`CHUNK_MAX_AGE`].
    pub fn tick(&mut self) {
        if self.started.is_some_and(|s| s.elapsed() >= CHUNK_MAX_AGE) {
            self.hand_over();
        }
    }

    /// Hands over whatever is pending now (never waits).
    pub fn hand_over(&mut self) {
        self.started = None;
        if self.chunk.is_empty() {
            return;
        }
        let next = Chunk {
            flows: Vec::with_capacity(self.chunk.flows.len().max(16)),
            dns: Vec::with_capacity(self.chunk.dns.len().max(16)),
            entered: Vec::new(),
        };
        let full = std::mem::replace(&mut self.chunk, next);
        self.ring.push(full);
    }

    /// Hands over what is pending, waiting for room (shutdown only).
    pub fn finish(&mut self, give_up_after: Duration) -> bool {
        self.started = None;
        if self.chunk.is_empty() {
            return true;
        }
        let full = std::mem::take(&mut self.chunk);
        self.ring.push_wait(full, give_up_after)
    }
}

impl crate::decode::RecordSink for Batcher {
    type Error = std::convert::Infallible;
    fn flow(&mut self, rec: FlowRecord) -> Result<(), Self::Error> {
        Batcher::flow(self, rec);
        Ok(())
    }
    fn dns(&mut self, rec: DnsRecord) -> Result<(), Self::Error> {
        Batcher::dns(self, rec);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use osprey_segment::EndReason;
    use std::net::{IpAddr, Ipv4Addr};

    fn flow(i: u64) -> FlowRecord {
        FlowRecord {
            ts_start: i as i64,
            ts_end: i as i64,
            proto: 17,
            src_ip: IpAddr::V4(Ipv4Addr::new(198, 18, 0, 1)),
            src_port: i as u16,
            dst_ip: IpAddr::V4(Ipv4Addr::new(198, 18, 0, 2)),
            dst_port: 53,
            vlan: 0,
            packets: 2,
            bytes: 100,
            rev_packets: 1,
            rev_bytes: 50,
            tcp_flags: 0,
            rev_tcp_flags: 0,
            end_reason: EndReason::Idle,
        }
    }

    #[test]
    fn a_full_packet_ring_drops_and_counts_and_recycles_buffers() {
        let (ring, _p) = PacketRing::new(2);
        assert!(ring.push(1, 60, LinkType::Ethernet, &[0; 60]));
        assert!(ring.push(2, 60, LinkType::Ethernet, &[1; 60]));
        assert!(!ring.push(3, 60, LinkType::Ethernet, &[2; 60]));
        assert_eq!(ring.dropped(), 1);
        let p = ring.pop().expect("first");
        assert_eq!((p.ts_ns, p.data[0]), (1, 0));
        ring.recycle(p.data);
        assert!(ring.push(4, 10, LinkType::Ethernet, &[9; 10]));
        assert_eq!(ring.pop().expect("second").ts_ns, 2);
        let p = ring.pop().expect("third");
        assert_eq!((p.ts_ns, p.data.len(), p.data.capacity() >= 60), (4, 10, true), "the buffer was reused");
    }

    #[test]
    fn the_batcher_hands_over_full_chunks_and_a_full_record_ring_counts_records_and_packets() {
        let (ring, _p) = RecordRing::new(1);
        let mut b = Batcher::new(ring.clone());
        b.set_entered(7);
        for i in 0..(CHUNK_RECORDS as u64 + 10) {
            b.flow(flow(i));
        }
        assert_eq!(ring.len(), 1, "one full chunk handed over");
        b.hand_over(); // the ring is full: these 10 are dropped
        assert_eq!(ring.drops().flows.load(Ordering::Relaxed), 10);
        assert_eq!(ring.drops().flow_packets.load(Ordering::Relaxed), 30);
        let c = ring.pop().expect("chunk");
        assert_eq!(c.len(), CHUNK_RECORDS);
        assert_eq!(c.entered, vec![(7, CHUNK_RECORDS as u32)]);
    }
}

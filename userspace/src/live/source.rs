//! Capture sources: where live packets (or ready records) come from.
//!
//! A [`CaptureSource`] is polled by the pipeline's capture thread. Each poll
//! waits a bounded time for traffic and hands what arrived to an [`Emitter`]:
//! raw packets (timestamp + bytes) go to the decoder through the packet ring;
//! ready records (flows and DNS messages the kernel path already built) go
//! straight to the writer through the record ring. The emitter never waits:
//! a full ring drops and counts.
//!
//! Implementations: [`super::afpacket::AfPacketSource`] (a plain packet
//! socket, works on any interface), [`super::xdp::XdpSource`] (the kernel
//! path: ready flow and DNS records from the XDP program, plus the packets
//! it hands to AF_XDP sockets) and [`super::replay::ReplaySource`] (a
//! capture file, for tests and benchmarks). [`open_source`] opens the live ones.

use std::sync::Arc;
use std::time::Duration;

use osprey_segment::{DnsRecord, FlowRecord};

use super::LiveError;
use super::ring::{Batcher, PacketRing, RecordRing, mono_ns};
use crate::pcap::LinkType;

/// Which kind of source to open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SourceKind {
    /// `AF_PACKET` socket bound to the interface.
    AfPacket,
    /// The XDP kernel path (flow map, DNS ring, AF_XDP sockets).
    Xdp,
}

impl SourceKind {
    /// The name used in configuration, flags and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            SourceKind::AfPacket => "afpacket",
            SourceKind::Xdp => "xdp",
        }
    }

    /// Parses [`SourceKind::as_str`].
    pub fn parse(s: &str) -> Option<SourceKind> {
        match s {
            "afpacket" => Some(SourceKind::AfPacket),
            "xdp" => Some(SourceKind::Xdp),
            _ => None,
        }
    }
}

/// What a source is, for logs and the `osprey_capture_info` metric.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceInfo {
    /// Interface name (or a file name for a replay).
    pub iface: String,
    /// One of [`crate::metrics::SOURCES`].
    pub source: &'static str,
    /// One of [`crate::metrics::CAPTURE_MODES`].
    pub mode: &'static str,
}

/// Cumulative counters a source keeps itself (losses the pipeline cannot see).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SourceStats {
    /// Packets the kernel dropped because the socket's queue was full.
    pub socket_drops: u64,
    /// Growth of the interface's `rx_dropped` counter since the source opened.
    pub interface_drops: u64,
    /// Records the kernel programs dropped on a full DNS ring.
    pub kernel_dns_ring_drops: u64,
    /// Records the kernel programs dropped on a full flow-end ring.
    pub kernel_flow_ring_drops: u64,
}

/// Whether a source has more to give.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceState {
    /// Keep polling.
    Running,
    /// The source is exhausted (end of a replayed file); live sources never end.
    Ended,
}

/// A source of packets or records, polled by the capture thread.
pub trait CaptureSource: Send {
    /// What it is.
    fn info(&self) -> SourceInfo;
    /// Waits at most about `timeout` for traffic and hands what arrived to `out`.
    fn poll(&mut self, out: &mut Emitter, timeout: Duration) -> Result<SourceState, LiveError>;
    /// Its own counters, cumulative.
    fn stats(&mut self) -> SourceStats;
    /// Registers the source's own metrics (kernel counters, modes) in
    /// `registry`; called once before the first poll.
    fn register_metrics(&mut self, registry: &crate::metrics::Registry) -> Result<(), LiveError> {
        let _ = registry;
        Ok(())
    }
    /// Called once after the last poll, before the source is dropped: hands
    /// over whatever the source still holds (the kernel path ends every flow
    /// in its map here). Must not wait for room downstream.
    fn finish(&mut self, out: &mut Emitter) -> Result<(), LiveError> {
        let _ = out;
        Ok(())
    }
    /// Whether the source already accounts every packet into flows itself
    /// (the kernel path): the decoder then keeps only the DNS records of the
    /// raw packets it hands over, so no packet is counted into two flows.
    fn accounts_flows(&self) -> bool {
        false
    }
}

/// The capture side's handle on the pipeline. Never waits.
#[derive(Debug)]
pub struct Emitter {
    packets: Arc<PacketRing>,
    records: Batcher,
    received_packets: u64,
    received_bytes: u64,
}

impl Emitter {
    /// An emitter feeding the two rings.
    pub fn new(packets: Arc<PacketRing>, records: Arc<RecordRing>) -> Self {
        Emitter { packets, records: Batcher::new(records), received_packets: 0, received_bytes: 0 }
    }

    /// Hands over one captured packet (copied into a pooled buffer). Returns
    /// false if the packet ring was full (the packet is counted as dropped).
    #[inline]
    pub fn packet(&mut self, ts_ns: i64, orig_len: u32, link_type: LinkType, data: &[u8]) -> bool {
        self.received_packets += 1;
        self.received_bytes += u64::from(orig_len);
        self.packets.push(ts_ns, orig_len, link_type, data)
    }

    /// Hands over a packet the source has already counted as received (the
    /// kernel path counts every packet in the kernel, and hands a few of them
    /// to userspace as well). Returns false if the packet ring was full.
    #[inline]
    pub fn extra_packet(&mut self, ts_ns: i64, orig_len: u32, link_type: LinkType, data: &[u8]) -> bool {
        self.packets.push(ts_ns, orig_len, link_type, data)
    }

    /// Whether the packet ring has a free slot now (a replay that must not
    /// drop waits for one; live sources never wait).
    pub fn has_packet_room(&self) -> bool {
        self.packets.len() < self.packets.capacity()
    }

    /// Hands over a flow record a kernel path built.
    pub fn flow(&mut self, rec: FlowRecord) {
        self.records.set_entered(mono_ns());
        self.records.flow(rec);
    }

    /// Hands over a DNS record a kernel path built.
    pub fn dns(&mut self, rec: DnsRecord) {
        self.records.set_entered(mono_ns());
        self.records.dns(rec);
    }

    /// Counts packets a source saw but accounted itself (a kernel path that
    /// aggregates in the kernel), so `received` stays meaningful.
    pub fn count_received(&mut self, packets: u64, bytes: u64) {
        self.received_packets += packets;
        self.received_bytes += bytes;
    }

    /// Packets and wire bytes handed over so far.
    pub fn received(&self) -> (u64, u64) {
        (self.received_packets, self.received_bytes)
    }

    pub(crate) fn tick(&mut self) {
        self.records.tick();
    }

    pub(crate) fn finish(&mut self, give_up_after: Duration) {
        self.records.finish(give_up_after);
    }
}

/// Settings of a live source.
#[derive(Debug, Clone)]
pub struct SourceConfig {
    /// Interface to capture on.
    pub iface: String,
    /// Bytes kept of each packet.
    pub snaplen_bytes: u32,
    /// Kernel receive buffer of the socket.
    pub socket_buffer_bytes: u64,
    /// Put the interface in promiscuous mode while capturing (a mirror port needs it).
    pub promiscuous: bool,
    /// Skip packets this host sends (`PACKET_IGNORE_OUTGOING`).
    pub ignore_outgoing: bool,
    /// Settings of the XDP source.
    pub xdp: super::xdp::XdpConfig,
}

impl SourceConfig {
    /// Defaults for `iface`.
    pub fn new(iface: &str) -> Self {
        SourceConfig {
            iface: iface.to_string(),
            snaplen_bytes: 65_535,
            socket_buffer_bytes: 64 << 20,
            promiscuous: true,
            ignore_outgoing: false,
            xdp: super::xdp::XdpConfig::default(),
        }
    }
}

/// Opens a source of `kind`.
pub fn open_source(kind: SourceKind, cfg: &SourceConfig) -> Result<Box<dyn CaptureSource>, LiveError> {
    match kind {
        SourceKind::AfPacket => Ok(Box::new(super::afpacket::AfPacketSource::open(cfg)?)),
        SourceKind::Xdp => Ok(Box::new(super::xdp::XdpSource::open(cfg)?)),
    }
}

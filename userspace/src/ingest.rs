//! Offline ingest: capture files → packets → flow and DNS records → segments.
//!
//! One [`Ingestor`] reads any number of files in the order given, as one
//! continuous capture (a rotated capture's flows continue across files); if a
//! file starts before the previous one ended, the flow table is flushed first
//! so unrelated captures do not mix. Every packet is either accounted or
//! counted as skipped by reason (the per-packet work is [`PacketDecoder`]'s,
//! shared with live capture); damaged files are reported with the byte offset
//! where reading stopped, and everything read before it is kept.

use std::fs::File;
use std::path::{Path, PathBuf};

use osprey_segment::partition::{PartitionedWriter, WriterConfig};
use osprey_segment::{DnsRecord, FlowRecord, SegmentError};

use crate::decode::{DecodeConfig, DecodeStats, PacketDecoder, RecordSink};
use crate::dns::{MatchConfig, TcpDnsConfig};
use crate::flow::FlowConfig;
use crate::pcap::{CaptureError, CaptureReader, RawPacket};
use crate::reassembly::ReassemblyConfig;

/// Ingest settings.
#[derive(Debug, Clone)]
pub struct IngestConfig {
    /// Flow table settings.
    pub flow: FlowConfig,
    /// Ports whose UDP/TCP traffic is decoded as DNS. The default follows what
    /// Spot's tshark-based ingest decoded: DNS (53), mDNS (5353), LLMNR (5355).
    pub dns_ports: Vec<u16>,
    /// Segment writer settings (sensor name, batch and segment sizes).
    pub writer: WriterConfig,
    /// DNS-over-TCP reassembly bounds.
    pub tcp_dns: TcpDnsConfig,
    /// Query→response matching bounds.
    pub dns_match: MatchConfig,
    /// Bounds of UDP fragment reassembly (for DNS messages split into fragments).
    pub reassembly: ReassemblyConfig,
}

impl Default for IngestConfig {
    fn default() -> Self {
        IngestConfig {
            flow: FlowConfig::default(),
            dns_ports: vec![53, 5353, 5355],
            writer: WriterConfig::default(),
            tcp_dns: TcpDnsConfig::default(),
            dns_match: MatchConfig::default(),
            reassembly: ReassemblyConfig::default(),
        }
    }
}

/// Errors of offline ingest.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// The file could not be opened or mapped.
    #[error("{path}: {source}")]
    Open {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not a readable capture (bad magic, broken header).
    #[error("{path}: {source}")]
    Capture {
        /// The file.
        path: PathBuf,
        /// Why.
        source: CaptureError,
    },
    /// Writing segments failed.
    #[error(transparent)]
    Segment(#[from] SegmentError),
}

/// A file whose reading stopped early, and why (records before it are kept).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileProblem {
    /// The file.
    pub path: PathBuf,
    /// What went wrong, with the byte offset.
    pub reason: String,
}

/// Counters of an ingest run: the packet counters of [`DecodeStats`]
/// (reachable directly through `Deref`, e.g. `stats.skipped`) plus what is
/// about files.
#[derive(Debug, Clone, Default)]
pub struct IngestStats {
    /// Packet, flow and DNS counters.
    pub decode: DecodeStats,
    /// Files read (completely or partly).
    pub files: u64,
    /// Files that stopped early.
    pub problems: Vec<FileProblem>,
    /// Segment files written.
    pub segments: Vec<PathBuf>,
}

impl std::ops::Deref for IngestStats {
    type Target = DecodeStats;
    fn deref(&self) -> &DecodeStats {
        &self.decode
    }
}

/// The segment writers, as the decoder's sink.
struct Writers {
    flows: PartitionedWriter<FlowRecord>,
    dns: PartitionedWriter<DnsRecord>,
}

impl RecordSink for Writers {
    type Error = SegmentError;
    fn flow(&mut self, rec: FlowRecord) -> Result<(), SegmentError> {
        self.flows.push(rec)
    }
    fn dns(&mut self, rec: DnsRecord) -> Result<(), SegmentError> {
        self.dns.push(rec)
    }
}

/// Reads capture files into flow and DNS segments.
pub struct Ingestor {
    decoder: PacketDecoder,
    out: Writers,
    files: u64,
    problems: Vec<FileProblem>,
}

impl std::fmt::Debug for Ingestor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ingestor").field("decoder", &self.decoder).field("files", &self.files).finish()
    }
}

impl Ingestor {
    /// An ingestor writing segments under `data`.
    pub fn new(data: &Path, cfg: IngestConfig) -> Result<Self, IngestError> {
        Ok(Ingestor {
            decoder: PacketDecoder::new(&DecodeConfig::from(&cfg)),
            out: Writers {
                flows: PartitionedWriter::new(data, cfg.writer.clone())?,
                dns: PartitionedWriter::new(data, cfg.writer)?,
            },
            files: 0,
            problems: Vec::new(),
        })
    }

    /// Packet counters so far.
    pub fn stats(&self) -> &DecodeStats {
        self.decoder.stats()
    }

    /// Reads one capture file. `progress(done, total)` is called now and then
    /// with byte positions. A file that is not a capture at all is an error;
    /// a file damaged part-way is read up to the damage and reported in
    /// [`IngestStats::problems`].
    pub fn ingest_file(&mut self, path: &Path, progress: &mut dyn FnMut(u64, u64)) -> Result<(), IngestError> {
        let file = File::open(path).map_err(|source| IngestError::Open { path: path.into(), source })?;
        // SAFETY: the map is read-only and private; if another process
        // truncates the file while we read it, reads past the new end fault
        // (SIGBUS). Capture files being ingested are not expected to shrink.
        let map = unsafe { memmap2::Mmap::map(&file) }.map_err(|source| IngestError::Open { path: path.into(), source })?;
        #[cfg(unix)]
        let _ = map.advise(memmap2::Advice::Sequential);
        self.ingest_bytes(path, &map, progress)
    }

    /// Reads a capture held in memory (`name` is used in messages).
    pub fn ingest_bytes(&mut self, name: &Path, data: &[u8], progress: &mut dyn FnMut(u64, u64)) -> Result<(), IngestError> {
        let mut reader = CaptureReader::new(data).map_err(|source| IngestError::Capture { path: name.into(), source })?;
        self.files += 1;
        let total = data.len() as u64;
        let mut first = true;
        let mut n: u32 = 0;
        while let Some(next) = reader.next_packet() {
            match next {
                Ok(pkt) => {
                    if first {
                        first = false;
                        // A capture that starts before the previous one ended
                        // is not its continuation.
                        if self.decoder.flow_table().clock().is_some_and(|c| pkt.ts_ns < c) {
                            self.decoder.flush(&mut self.out)?;
                        }
                    }
                    self.packet(&pkt)?;
                    n = n.wrapping_add(1);
                    if n.is_multiple_of(65_536) {
                        progress(reader.position() as u64, total);
                    }
                }
                Err(e) => {
                    self.problems.push(FileProblem { path: name.into(), reason: e.to_string() });
                    break;
                }
            }
        }
        progress(total, total);
        Ok(())
    }

    /// Accounts one captured packet.
    pub fn packet(&mut self, raw: &RawPacket<'_>) -> Result<(), IngestError> {
        Ok(self.decoder.packet(raw, &mut self.out)?)
    }

    /// Ends all open flows (reason `flush`), publishes every segment and
    /// returns the counters.
    pub fn finish(mut self) -> Result<IngestStats, IngestError> {
        self.decoder.flush(&mut self.out)?;
        let mut segments = self.out.flows.finish()?;
        segments.extend(self.out.dns.finish()?);
        Ok(IngestStats { decode: self.decoder.stats().clone(), files: self.files, problems: self.problems, segments })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::SkipReason;
    use osprey_segment::DnsTransport;
    use crate::craft::{self, DnsBuilder, DnsHeader, Ipv4, PacketBuilder, PcapWriter, RData, Tcp, Udp, tcp_flags};
    use osprey_segment::partition::{TimeRange, read_all};
    use std::net::{IpAddr, Ipv4Addr};

    const MAC: [u8; 6] = [2, 0, 0, 0, 0, 1];
    const A: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
    const B: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);
    const T0: i64 = 1_795_676_400_000_000_000;
    const SEC: i64 = 1_000_000_000;

    /// A pcap (in memory) of the given (ts, frame) pairs.
    fn pcap(frames: &[(i64, Vec<u8>)]) -> Vec<u8> {
        let mut w = PcapWriter::new(Vec::new(), craft::linktype::ETHERNET).expect("header");
        for (ts, f) in frames {
            w.write_packet(*ts, f).expect("write");
        }
        w.into_inner().expect("flush")
    }

    fn tcp_frame(from: Ipv4Addr, sp: u16, to: Ipv4Addr, dp: u16, flags: u8, payload: &[u8]) -> Vec<u8> {
        let mut f = Vec::new();
        PacketBuilder::new(&mut f)
            .ethernet(MAC, MAC)
            .ip(IpAddr::V4(from), IpAddr::V4(to))
            .tcp(Tcp::new(sp, dp, flags))
            .payload(payload)
            .finish();
        f
    }

    fn dns_msg(id: u16, response: bool, tcp: bool) -> Vec<u8> {
        let mut m = Vec::new();
        let hdr = if response { DnsHeader::response(id, 0) } else { DnsHeader::query(id) };
        let b = if tcp { DnsBuilder::new_tcp(&mut m, hdr) } else { DnsBuilder::new(&mut m, hdr) };
        let mut b = b.question("big.example.test", 16, 1);
        if response {
            for _ in 0..12 {
                b = b.answer("big.example.test", 60, RData::Txt(&[&[b'x'; 200][..]]));
            }
        }
        b.finish();
        m
    }

    fn run(files: &[Vec<u8>], cfg: IngestConfig) -> (IngestStats, Vec<FlowRecord>, Vec<DnsRecord>) {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut ing = Ingestor::new(dir.path(), cfg).expect("ingestor");
        for (i, f) in files.iter().enumerate() {
            ing.ingest_bytes(Path::new(&format!("f{i}")), f, &mut |_, _| {}).expect("ingest");
        }
        let stats = ing.finish().expect("finish");
        let flows = read_all::<FlowRecord>(dir.path(), TimeRange::default()).expect("flows").0;
        let dns = read_all::<DnsRecord>(dir.path(), TimeRange::default()).expect("dns").0;
        (stats, flows, dns)
    }

    #[test]
    fn consecutive_files_continue_flows_and_earlier_files_do_not() {
        let one = pcap(&[(T0, tcp_frame(A, 1000, B, 80, tcp_flags::SYN, b""))]);
        let two = pcap(&[(T0 + SEC, tcp_frame(B, 80, A, 1000, tcp_flags::SYN | tcp_flags::ACK, b""))]);
        let (_, flows, _) = run(&[one.clone(), two.clone()], IngestConfig::default());
        assert_eq!(flows.len(), 1, "a rotated capture continues: {flows:?}");
        assert_eq!((flows[0].packets, flows[0].rev_packets), (1, 1));
        // The second file starts before the first ended: not a continuation.
        let (_, flows, _) = run(&[two, one], IngestConfig::default());
        assert_eq!(flows.len(), 2);
        assert!(flows.iter().all(|f| f.end_reason == osprey_segment::EndReason::Flush));
    }

    #[test]
    fn a_full_flow_table_is_counted() {
        let frames: Vec<(i64, Vec<u8>)> =
            (0..10).map(|i| (T0 + i, tcp_frame(A, 1000 + i as u16, B, 80, tcp_flags::SYN, b""))).collect();
        let cfg = IngestConfig { flow: FlowConfig { max_flows: 4, ..FlowConfig::default() }, ..IngestConfig::default() };
        let (stats, flows, _) = run(&[pcap(&frames)], cfg);
        assert_eq!(flows.len(), 4);
        assert_eq!((stats.flow_packets, stats.flow_table_full, stats.skipped_total()), (4, 6, 6));
    }

    #[test]
    fn dns_over_tcp_split_across_segments_is_decoded_with_latency() {
        let q = dns_msg(7, false, true);
        let r = dns_msg(7, true, true);
        let (r1, r2) = r.split_at(r.len() / 3);
        let mut seq_c = 0u32;
        let mut seq_s = 0u32;
        let mut seg = |from_client: bool, flags: u8, payload: &[u8]| {
            let (src, sp, dst, dp, seq) =
                if from_client { (A, 40000, B, 53, &mut seq_c) } else { (B, 53, A, 40000, &mut seq_s) };
            let mut f = Vec::new();
            PacketBuilder::new(&mut f)
                .ethernet(MAC, MAC)
                .ip(IpAddr::V4(src), IpAddr::V4(dst))
                .tcp(Tcp { seq: *seq, ..Tcp::new(sp, dp, flags) })
                .payload(payload)
                .finish();
            *seq = seq.wrapping_add(payload.len() as u32 + u32::from(flags & (tcp_flags::SYN | tcp_flags::FIN) != 0));
            f
        };
        let frames = vec![
            (T0, seg(true, tcp_flags::SYN, b"")),
            (T0 + 1, seg(false, tcp_flags::SYN | tcp_flags::ACK, b"")),
            (T0 + 2, seg(true, tcp_flags::ACK | tcp_flags::PSH, &q)),
            (T0 + 5_000, seg(false, tcp_flags::ACK, r1)),
            (T0 + 6_000, seg(false, tcp_flags::ACK | tcp_flags::PSH, r2)),
        ];
        let (stats, _, dns) = run(&[pcap(&frames)], IngestConfig::default());
        assert_eq!(dns.len(), 2, "{stats:?}");
        let resp = dns.iter().find(|d| d.is_response).expect("response");
        assert_eq!(resp.transport, DnsTransport::Tcp);
        assert_eq!((resp.client_ip, resp.server_port), (IpAddr::V4(A), 53));
        assert_eq!(resp.answers.len(), 12);
        assert_eq!(resp.latency_ns, Some(5_998));
        assert_eq!(resp.ts, T0 + 6_000, "time of the segment that completed it");
    }

    #[test]
    fn fragmented_udp_dns_is_reassembled_and_flows_count_first_fragments_only() {
        let msg = dns_msg(9, true, false);
        assert!(msg.len() > 2000);
        // The whole UDP datagram, to cut into IP fragments.
        let mut whole = Vec::new();
        PacketBuilder::new(&mut whole).ip(IpAddr::V4(B), IpAddr::V4(A)).udp(Udp::new(53, 40000)).payload(&msg).finish();
        let udp = whole[20..].to_vec();
        let mut frames = Vec::new();
        let chunk = 1480;
        let pieces: Vec<&[u8]> = udp.chunks(chunk).collect();
        // Send the last fragment first: order must not matter.
        for (k, i) in (0..pieces.len()).rev().enumerate() {
            let mut f = Vec::new();
            let more = i + 1 < pieces.len();
            PacketBuilder::new(&mut f)
                .ethernet(MAC, MAC)
                .ipv4(Ipv4 {
                    id: 77,
                    dont_fragment: false,
                    more_fragments: more,
                    fragment_offset: (i * chunk / 8) as u16,
                    ..Ipv4::new(B, A)
                })
                .ip_protocol(17)
                .payload(pieces[i])
                .finish();
            frames.push((T0 + k as i64, f));
        }
        let (stats, flows, dns) = run(&[pcap(&frames)], IngestConfig::default());
        assert_eq!(dns.len(), 1, "{stats:?}");
        assert_eq!(dns[0].answers.len(), 12);
        assert_eq!((dns[0].server_port, dns[0].client_port), (53, 40000));
        assert_eq!(stats.reassembly.completed, 1);
        // Flows see only the first fragment; the others are counted skips.
        assert_eq!(stats.skipped[SkipReason::Fragment.index()], pieces.len() as u64 - 1);
        assert_eq!(flows.len(), 1);
        assert_eq!(flows[0].packets + flows[0].rev_packets, 1);
    }

    #[test]
    fn mdns_between_equal_ports_orients_by_qr() {
        let mk = |from: Ipv4Addr, to: Ipv4Addr, response: bool| {
            let m = dns_msg(0, response, false);
            let mut f = Vec::new();
            PacketBuilder::new(&mut f)
                .ethernet(MAC, MAC)
                .ip(IpAddr::V4(from), IpAddr::V4(to))
                .udp(Udp::new(5353, 5353))
                .payload(&m)
                .finish();
            f
        };
        let (_, _, dns) = run(&[pcap(&[(T0, mk(A, B, false)), (T0 + 10, mk(B, A, true))])], IngestConfig::default());
        assert_eq!(dns.len(), 2);
        assert!(dns.iter().all(|d| d.client_ip == IpAddr::V4(A) && d.server_ip == IpAddr::V4(B)), "{dns:?}");
    }

    #[test]
    fn a_truncated_file_keeps_what_came_before() {
        let frames: Vec<(i64, Vec<u8>)> =
            (0..3).map(|i| (T0 + i, tcp_frame(A, 1000 + i as u16, B, 80, tcp_flags::SYN, b""))).collect();
        let mut bytes = pcap(&frames);
        bytes.truncate(bytes.len() - 5);
        let (stats, flows, _) = run(&[bytes], IngestConfig::default());
        assert_eq!(flows.len(), 2);
        assert_eq!(stats.problems.len(), 1);
        assert!(stats.problems[0].reason.contains("offset"), "{:?}", stats.problems);
    }
}

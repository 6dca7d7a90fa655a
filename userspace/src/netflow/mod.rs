//! NetFlow v5, NetFlow v9 and IPFIX ingest: export datagrams → [`FlowRecord`]s
//! → flow segments, so flows exported by routers land in the same records as
//! flows Osprey builds from packets (Apache Spot's flow input was NetFlow,
//! read with nfdump).
//!
//! # Input
//!
//! - pcap/pcapng captures of the export traffic ([`ExportExtractor`]): frames
//!   are decoded with [`crate::packet`]; UDP datagrams (IPv4 or IPv6) whose
//!   destination port is an export port (default 2055, 9995, 9996, 4739, more
//!   with `--port`) are decoded, IP fragments reassembled first with
//!   [`crate::reassembly`]. Every other frame is counted as
//!   [`NetflowStats::other_packets`], which is where sFlow (UDP 6343) ends
//!   up; sFlow sent to an export port starts with a 32-bit version, so its
//!   first two bytes are 0 and the datagram is counted as
//!   [`NetflowSkip::NotNetflow`], never misparsed (the oracle test reads the
//!   shared sFlow captures on 6343 to check this).
//! - raw payload files (`--raw`): one datagram per file. They carry no
//!   transport session, so all raw files share one ([`Session::default`])
//!   and one template cache, in the order given: list template files before
//!   the data files that need them.
//!
//! # Decoding
//!
//! - **v5**: 24-byte header, 48-byte records; a count of 0 or above 30, or a
//!   datagram shorter than the count needs, is skipped whole.
//! - **v9** (RFC 3954) and **IPFIX** (RFC 7011): flowsets delimited by their
//!   lengths. The v9 header's record count delimits nothing (Ubiquiti
//!   under-counts); only a shortfall with nothing else wrong is counted, as
//!   [`NetflowSkip::V9CountShort`] (whole flowsets lost). Templates and
//!   options templates are cached per (transport session: exporter and
//!   collector address and port, as RFC 7011 §8 scopes them; version; source
//!   id / observation domain; template id). Template ids below 256 are rejected.
//!   IPFIX template withdrawals (field count 0) remove one template, or all
//!   templates of that kind when the id is the set id (2 or 3). Enterprise
//!   field specifiers (enterprise bit) are read with their 4-byte enterprise
//!   number and their values skipped, except RFC 5103 reverse elements
//!   (enterprise 29305), which fill the reverse direction. Variable-length
//!   fields (length 65535: a 1-byte length, or 255 and a 2-byte length) are
//!   read in IPFIX and in v9 (H3C exports them in v9). Integers may use
//!   reduced-size encoding (1–8 bytes). An element repeated in a template
//!   (tunnelled flows: outer then inner addresses) counts by its first
//!   occurrence, the outer header as observed (RFC 7011 §8 orders repeats
//!   by treatment; tshark shows the first too). Elements whose value has a
//!   size their type cannot have (an IPv4 address of 2 bytes) are ignored
//!   rather than misread. Set remainders shorter than a record
//!   are padding; zero padding after the last v9 flowset is accepted.
//! - **Data before its template**: counted as [`NetflowSkip::NoTemplate`]
//!   and dropped, not buffered. RFC 7011 §8 allows either; nfdump, pmacct,
//!   GoFlow2 and Logstash's netflow codec all drop (exporters resend
//!   templates periodically, so only the data until the next refresh is
//!   lost), and dropping can never decode a buffered set with a template
//!   that was redefined in between.
//! - Every read is bounds-checked: a malformed datagram, set, template or
//!   record is counted by [`NetflowSkip`] reason (per datagram, set,
//!   template record or record, whichever was dropped) and decoding goes on
//!   with the next unit that can still be delimited. Nothing panics.
//!
//! # Column mapping (`flow` segments)
//!
//! | column | NetFlow v5 | v9 / IPFIX information element(s) |
//! |---|---|---|
//! | `src_ip`, `dst_ip` | srcaddr, dstaddr | 8/12 (IPv4) or 27/28 (IPv6); `ipVersion` (60) picks when both are present, else the non-zero family |
//! | `src_port`, `dst_port` | srcport, dstport | 7, 11; ICMP (1, 58) with destination port 0 takes `icmpTypeCode` (32/139, or type 176/178 and code 177/179) as `type << 8 \| code` |
//! | `proto` | prot | 4 |
//! | `packets` | dPkts | 2 packetDeltaCount, else 86 packetTotalCount, else 24 postPacketDeltaCount, else 298 initiatorPackets |
//! | `bytes` | dOctets | 1 octetDeltaCount, else 85, else 23, else 231 initiatorOctets |
//! | `rev_packets`, `rev_bytes` | 0 | RFC 5103 reverse 2/86 and 1/85 (enterprise 29305), else 299/232 responderPackets/Octets (Cisco ASA NSEL); otherwise 0 |
//! | `tcp_flags`, `rev_tcp_flags` | tcp_flags, 0 | 6 (low byte), reverse 6 |
//! | `vlan` | 0 | 58 vlanId, else 243 dot1qVlanId (12 bits) |
//! | `ts_start`, `ts_end` | see below | see below |
//! | `end_reason` | see below | 136 flowEndReason, see below |
//!
//! **Bytes** are IP-layer bytes, what Osprey's own flows count:
//! octetDeltaCount (and v5's dOctets, which it continues) counts "IP
//! header(s) and IP payload" (RFC 7012's definition), no link layer.
//!
//! **Times.** v5/v9: first/last switched (v5 fields, v9 IE 22/21) are the
//! exporter's uptime in ms; start = header unix time − (header sysUptime −
//! first switched), as a signed 32-bit difference so a wrapped uptime counter
//! still works (v5 adds the header's nanoseconds). IPFIX, finest first:
//! flowStart/EndNanoseconds (156/157), Microseconds (154/155), Milliseconds
//! (152/153), Seconds (150/151); then flowStart/EndDeltaMicroseconds
//! (158/159, before the export time); then flowStart/EndSysUpTime (22/21)
//! plus systemInitTimeMilliseconds (160, from the record or from an options
//! record of the same exporter and domain). The same absolute elements are
//! honoured in v9 too (Cisco ASA sends 152/153). A missing end is start plus
//! flowDuration (161/162) or the start; a missing start likewise. With no
//! time at all, observationTime (322–325) if present, else the header's
//! export time. An end before the start is clamped to the start.
//!
//! **End reason.** IE 136: 1 idle → `idle`, 2 active → `active`, 3 end of
//! flow detected → `fin` (`rst` when the TCP flags have RST without FIN),
//! 4 forced end → `flush`, 5 lack of resources → `evicted`. Records without
//! it (all of v5, most v9): a TCP flow with RST/FIN in its flags → `rst`/`fin`
//! (exporters expire TCP flows on FIN and RST, so the flags are the
//! evidence); anything else → `idle`, the most common reason an exporter
//! expires a flow. That last one is a default, not an observation: the
//! exporter did not say whether it was an idle or active timeout.
//!
//! # Direction and Spot's flow words
//!
//! NetFlow records are unidirectional: each stays one record with
//! `src` = the record's source and `rev_packets = rev_bytes =
//! rev_tcp_flags = 0` (unless RFC 5103 or initiator/responder counters make
//! it bidirectional). Osprey does not pair the two directions: exporters
//! give no initiator, and the same conversation is then counted exactly as
//! Spot counted it. The scorer (`scorer/src/words/flow.rs`) turns a record
//! into a forward event and, only when `rev_packets > 0`, a reverse event;
//! so a record with `rev_* = 0` yields exactly one event, sip = `src_ip`,
//! dip = `dst_ip`, with its src word and dst word: the same two words
//! Spot's `FlowWordCreator` built from the equivalent nfdump line.
//!
//! # Sampling
//!
//! Counters are stored as the exporter reported them. A sampling interval
//! announced in the v5 header (low 14 bits of `sampling_interval`), in a
//! v9/IPFIX options record or in the flow record itself (samplingInterval
//! 34, samplerRandomInterval 50, samplingPacketInterval/Space 305/306,
//! samplingSize/Population 309/310) is counted: [`NetflowStats::sampling`]
//! keeps the last interval per exporter and domain, and
//! [`NetflowStats::sampled_records`] the records it applied to; records
//! that name a sampler (samplerId 48, selectorId 302) whose interval was
//! never announced are counted in [`NetflowStats::unknown_sampling_records`]
//! (pmacct's sampling capture is like that). `osprey ingest netflow` prints
//! all three. [`Sampling::Scale`] (`--scale-sampling`)
//! multiplies packets and bytes by the interval instead. One interval per
//! exporter and domain: per-sampler-id maps are not kept.
//!
//! # Not done
//!
//! No live UDP collector (files only); IPFIX over TCP/SCTP and
//! structured-data (subTemplateList) contents are not decoded (lists are
//! skipped as variable-length fields); options records feed only
//! sampling and system-init time. An IP fragment that never completes is
//! counted as [`NetflowSkip::IncompleteFragment`] even when it belonged to
//! other UDP traffic: a later fragment carries no port to tell.

mod decode;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use osprey_segment::SegmentError;
use osprey_segment::partition::{PartitionedWriter, WriterConfig};
use osprey_segment::records::FlowRecord;

use crate::packet::{self, Fragment};
use crate::pcap::{CaptureError, CaptureReader, RawPacket};
use crate::reassembly::{FragmentKey, Reassembler, ReassemblyConfig};

pub use decode::{MAX_TEMPLATES, NetflowDecoder, REVERSE_PEN, Sampling};

/// Export ports read by default: 2055 (the usual NetFlow port), 9995 and
/// 9996 (common Cisco/nfdump choices) and 4739 (IANA IPFIX).
pub const DEFAULT_PORTS: [u16; 4] = [2055, 9995, 9996, 4739];

/// The export protocol of a datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Version {
    /// NetFlow v5.
    V5,
    /// NetFlow v9.
    V9,
    /// IPFIX (version 10).
    Ipfix,
}

impl Version {
    /// All versions, in [`Version::index`] order.
    pub const ALL: [Version; 3] = [Version::V5, Version::V9, Version::Ipfix];

    /// Position in [`NetflowStats::by_version`].
    pub const fn index(self) -> usize {
        self as usize
    }

    /// The version number in the header.
    pub const fn wire(self) -> u8 {
        match self {
            Version::V5 => 5,
            Version::V9 => 9,
            Version::Ipfix => 10,
        }
    }

    /// A name for summaries.
    pub const fn as_str(self) -> &'static str {
        match self {
            Version::V5 => "netflow v5",
            Version::V9 => "netflow v9",
            Version::Ipfix => "ipfix",
        }
    }
}

/// Why part of the input was not decoded. Counted per unit dropped: a
/// datagram, a set, a template record, or a data record (and the rest of
/// its set, which can no longer be delimited).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum NetflowSkip {
    /// The version is not 5, 9 or 10 (sFlow sent to an export port lands here).
    NotNetflow,
    /// The datagram is shorter than its header.
    TruncatedHeader,
    /// v5: a record count of 0 or above 30.
    V5BadCount,
    /// v5: the datagram is shorter than its record count needs.
    V5Truncated,
    /// v9: fewer records than the header's count and nothing else wrong:
    /// whole flowsets are missing (v9 has no total length to show a cut).
    V9CountShort,
    /// IPFIX: the message length is below 16 or beyond the datagram.
    IpfixBadLength,
    /// A set length below 4 or beyond the datagram (the rest of the datagram is dropped).
    SetTruncated,
    /// A set id reserved by the protocol (v9 2–255, IPFIX 0, 1, 4–255).
    ReservedSetId,
    /// A template record that is cut short, has an impossible layout or an id below 256.
    BadTemplate,
    /// A new template while [`MAX_TEMPLATES`] are cached.
    TemplateCacheFull,
    /// A data set whose template has not been seen (or was withdrawn).
    NoTemplate,
    /// A data record running past its set (variable-length field too long).
    BadRecord,
    /// A data set whose template only has zero-length fields.
    ZeroLengthRecord,
    /// pcap: an export datagram cut by the capture's snaplen.
    SnaplenCut,
    /// pcap: an IP fragment of an export datagram that never completed.
    IncompleteFragment,
    /// pcap: the capture is damaged part-way (packets before it were kept).
    DamagedCapture,
}

impl NetflowSkip {
    /// A stable name for summaries.
    pub const fn as_str(self) -> &'static str {
        match self {
            NetflowSkip::NotNetflow => "not_netflow",
            NetflowSkip::TruncatedHeader => "truncated_header",
            NetflowSkip::V5BadCount => "v5_bad_count",
            NetflowSkip::V5Truncated => "v5_truncated",
            NetflowSkip::V9CountShort => "v9_count_short",
            NetflowSkip::IpfixBadLength => "ipfix_bad_length",
            NetflowSkip::SetTruncated => "set_truncated",
            NetflowSkip::ReservedSetId => "reserved_set_id",
            NetflowSkip::BadTemplate => "bad_template",
            NetflowSkip::TemplateCacheFull => "template_cache_full",
            NetflowSkip::NoTemplate => "no_template",
            NetflowSkip::BadRecord => "bad_record",
            NetflowSkip::ZeroLengthRecord => "zero_length_record",
            NetflowSkip::SnaplenCut => "snaplen_cut",
            NetflowSkip::IncompleteFragment => "incomplete_fragment",
            NetflowSkip::DamagedCapture => "damaged_capture",
        }
    }
}

impl fmt::Display for NetflowSkip {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Counters of one protocol version.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct VersionStats {
    /// Datagrams whose header was valid.
    pub datagrams: u64,
    /// Flow records produced.
    pub records: u64,
    /// Template records learned (redefinitions included).
    pub templates: u64,
    /// Options template records learned.
    pub options_templates: u64,
    /// Options data records read (exporter metadata, not flows).
    pub option_records: u64,
    /// Data records without a source and destination IP address (e.g.
    /// layer-2-only templates): valid, but not a flow Osprey can store.
    pub without_addresses: u64,
}

/// Counters of a NetFlow/IPFIX ingest.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetflowStats {
    /// Files read.
    pub files: u64,
    /// Capture frames read (pcap input).
    pub packets: u64,
    /// Frames that are not a UDP datagram to an export port (other traffic,
    /// sFlow, undecodable frames). Not damage: a capture holds other traffic.
    pub other_packets: u64,
    /// Export datagrams handed to the decoder.
    pub datagrams: u64,
    /// Per version, indexed by [`Version::index`].
    pub by_version: [VersionStats; 3],
    /// IPFIX template withdrawals.
    pub template_withdrawals: u64,
    /// Dropped units by reason.
    pub skipped: BTreeMap<NetflowSkip, u64>,
    /// Announced sampling: (version, exporter address, source id / domain;
    /// 0 for v5) → the last interval announced (1 in N). Raw files have
    /// exporter `0.0.0.0`.
    pub sampling: BTreeMap<(Version, IpAddr, u32), u64>,
    /// Flow records with an announced sampling interval above 1.
    pub sampled_records: u64,
    /// Flow records naming a sampler (samplerId 48 / selectorId 302) whose
    /// interval the exporter never announced: sampled, by an unknown rate.
    pub unknown_sampling_records: u64,
    /// Segment files written.
    pub segments: Vec<PathBuf>,
}

impl NetflowStats {
    /// Total dropped units.
    pub fn skipped_total(&self) -> u64 {
        self.skipped.values().sum()
    }

    /// Flow records produced, all versions.
    pub fn records(&self) -> u64 {
        self.by_version.iter().map(|v| v.records).sum()
    }
}

/// Errors that stop an ingest (bad input is counted, not an error).
#[derive(Debug, thiserror::Error)]
pub enum NetflowError {
    /// A file could not be read.
    #[error("reading {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A capture file is not pcap/pcapng at all.
    #[error("{path}: {source}")]
    Capture {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: CaptureError,
    },
    /// Writing segments failed.
    #[error(transparent)]
    Segment(#[from] SegmentError),
}

/// The transport session a datagram arrived on: templates are scoped to it.
/// Raw payload files have none: they use [`Session::default`] (all
/// unspecified), so they share one template cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Session {
    /// The exporter's address (IP source).
    pub exporter: IpAddr,
    /// The exporter's UDP source port.
    pub exporter_port: u16,
    /// The collector's address (IP destination).
    pub collector: IpAddr,
    /// The collector's UDP port.
    pub collector_port: u16,
}

impl Default for Session {
    fn default() -> Self {
        let any = IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED);
        Session { exporter: any, exporter_port: 0, collector: any, collector_port: 0 }
    }
}

/// One export datagram found in a capture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Datagram<'a> {
    /// Where it came from and went to.
    pub session: Session,
    /// The UDP payload (owned when it was reassembled from fragments).
    pub payload: std::borrow::Cow<'a, [u8]>,
}

/// Finds export datagrams in captured frames: UDP to an export port, over
/// IPv4 or IPv6, reassembling IP fragments.
#[derive(Debug)]
pub struct ExportExtractor {
    ports: Vec<u16>,
    fragments: Reassembler,
}

impl ExportExtractor {
    /// Reads UDP datagrams whose destination port is in `ports`.
    pub fn new(ports: &[u16]) -> Self {
        ExportExtractor { ports: ports.to_vec(), fragments: Reassembler::new(ReassemblyConfig::default()) }
    }

    /// The export datagram in `raw`, if any. Frames that carry none are
    /// counted in `stats.other_packets`; export datagrams that cannot be
    /// read whole are counted as skips.
    pub fn packet<'a>(&mut self, raw: &RawPacket<'a>, stats: &mut NetflowStats) -> Option<Datagram<'a>> {
        stats.packets += 1;
        let Ok(meta) = packet::decode_frame(raw.link_type, raw.data, raw.orig_len) else {
            stats.other_packets += 1;
            return None;
        };
        if meta.proto != packet::ipproto::UDP {
            stats.other_packets += 1;
            return None;
        }
        if meta.fragment != Fragment::None {
            let start = meta.l4_offset as usize;
            let end = meta.l3_offset as usize + meta.ip_len as usize;
            let Some(data) = raw.data.get(start..end) else {
                stats.other_packets += 1;
                return None;
            };
            let key = FragmentKey { src: meta.src, dst: meta.dst, proto: meta.proto, id: meta.frag_id };
            let dgram = self.fragments.push(key, meta.frag_offset, meta.frag_more, data, raw.ts_ns)?;
            let sport = u16::from_be_bytes([*dgram.first()?, *dgram.get(1)?]);
            let dport = u16::from_be_bytes([*dgram.get(2)?, *dgram.get(3)?]);
            let udp_len = usize::from(u16::from_be_bytes([*dgram.get(4)?, *dgram.get(5)?]));
            if !self.ports.contains(&dport) {
                return None;
            }
            let payload = dgram.get(8..udp_len.clamp(8, dgram.len()))?.to_vec();
            let session = Session { exporter: meta.src_ip(), exporter_port: sport, collector: meta.dst_ip(), collector_port: dport };
            return Some(Datagram { session, payload: payload.into() });
        }
        if !self.ports.contains(&meta.dst_port) {
            stats.other_packets += 1;
            return None;
        }
        // The UDP length says how much the exporter sent; a shorter capture
        // was cut by the snaplen and would decode as damaged.
        let udp_len = raw.data.get(meta.l4_offset as usize + 4..meta.l4_offset as usize + 6).map(|b| usize::from(u16::from_be_bytes([b[0], b[1]])));
        if udp_len.is_some_and(|l| l.saturating_sub(8) > meta.payload.len()) {
            *stats.skipped.entry(NetflowSkip::SnaplenCut).or_default() += 1;
            return None;
        }
        let session = Session { exporter: meta.src_ip(), exporter_port: meta.src_port, collector: meta.dst_ip(), collector_port: meta.dst_port };
        Some(Datagram { session, payload: meta.payload.into() })
    }

    /// Fragmented datagrams still incomplete (call at the end of input).
    pub fn incomplete(&self) -> u64 {
        let s = self.fragments.stats();
        self.fragments.len() as u64 + s.timed_out + s.evicted + s.invalid
    }
}

/// Settings of a [`NetflowIngestor`].
#[derive(Debug, Clone)]
pub struct NetflowConfig {
    /// UDP destination ports carrying export datagrams (pcap input).
    pub ports: Vec<u16>,
    /// Store or scale sampled counters.
    pub sampling: Sampling,
    /// Segment writer settings.
    pub writer: WriterConfig,
}

impl Default for NetflowConfig {
    fn default() -> Self {
        NetflowConfig { ports: DEFAULT_PORTS.to_vec(), sampling: Sampling::AsReported, writer: WriterConfig::default() }
    }
}

/// Reads export captures or raw datagrams into flow segments.
pub struct NetflowIngestor {
    decoder: NetflowDecoder,
    extractor: ExportExtractor,
    writer: PartitionedWriter<FlowRecord>,
    files: u64,
    buf: Vec<FlowRecord>,
}

impl fmt::Debug for NetflowIngestor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NetflowIngestor").field("stats", self.decoder.stats()).finish_non_exhaustive()
    }
}

impl NetflowIngestor {
    /// Writes into the data directory `data`.
    pub fn new(data: &Path, cfg: NetflowConfig) -> Result<Self, NetflowError> {
        Ok(NetflowIngestor {
            decoder: NetflowDecoder::new(cfg.sampling),
            extractor: ExportExtractor::new(&cfg.ports),
            writer: PartitionedWriter::new(data, cfg.writer)?,
            files: 0,
            buf: Vec::new(),
        })
    }

    /// The counters so far.
    pub fn stats(&self) -> &NetflowStats {
        self.decoder.stats()
    }

    /// Reads a pcap/pcapng file of export traffic.
    pub fn ingest_pcap_file(&mut self, path: &Path) -> Result<(), NetflowError> {
        let data = std::fs::read(path).map_err(|source| NetflowError::Io { path: path.into(), source })?;
        self.ingest_pcap_bytes(path, &data)
    }

    /// Reads a capture held in memory (`name` is used in messages).
    pub fn ingest_pcap_bytes(&mut self, name: &Path, data: &[u8]) -> Result<(), NetflowError> {
        let mut reader = CaptureReader::new(data).map_err(|source| NetflowError::Capture { path: name.into(), source })?;
        self.files += 1;
        while let Some(next) = reader.next_packet() {
            let Ok(raw) = next else {
                *self.decoder.stats_mut().skipped.entry(NetflowSkip::DamagedCapture).or_default() += 1;
                break;
            };
            let Some(d) = self.extractor.packet(&raw, self.decoder.stats_mut()) else { continue };
            self.decoder.decode(d.session, &d.payload, &mut self.buf);
            self.drain()?;
        }
        Ok(())
    }

    /// Reads one raw export datagram file (see the module docs on exporters).
    pub fn ingest_raw_file(&mut self, path: &Path) -> Result<(), NetflowError> {
        let data = std::fs::read(path).map_err(|source| NetflowError::Io { path: path.into(), source })?;
        self.files += 1;
        self.ingest_datagram(Session::default(), &data)
    }

    /// Decodes one datagram of `exporter` and stores its records.
    pub fn ingest_datagram(&mut self, exporter: Session, datagram: &[u8]) -> Result<(), NetflowError> {
        self.decoder.decode(exporter, datagram, &mut self.buf);
        self.drain()
    }

    fn drain(&mut self) -> Result<(), NetflowError> {
        for r in self.buf.drain(..) {
            self.writer.push(r)?;
        }
        Ok(())
    }

    /// Flushes every segment; returns the counters.
    pub fn finish(mut self) -> Result<NetflowStats, NetflowError> {
        let incomplete = self.extractor.incomplete();
        let mut stats = self.decoder.take_stats();
        if incomplete > 0 {
            *stats.skipped.entry(NetflowSkip::IncompleteFragment).or_default() += incomplete;
        }
        stats.files = self.files;
        stats.segments = self.writer.finish()?;
        Ok(stats)
    }
}

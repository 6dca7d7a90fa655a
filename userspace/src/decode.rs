//! Packets → flow and DNS records: the per-packet core shared by live capture
//! and offline ingest.
//!
//! [`PacketDecoder`] does everything that turns packets into records:
//! decoding, flow accounting, UDP fragment reassembly for DNS, DNS over TCP,
//! query matching and client/server orientation. Every record it produces
//! goes to a [`RecordSink`]: offline ingest ([`crate::ingest::Ingestor`]) sinks
//! them straight into its segment writers and keeps only what is about files
//! (opening, continuity between files, damage); live capture sinks them into a
//! ring towards its writer thread. One implementation, so both paths agree
//! record for record (`userspace/tests/live_pipeline.rs` checks it end to end).

use std::net::IpAddr;

use osprey_segment::{DnsRecord, DnsTransport, FlowRecord};

use crate::dns::{self, DnsError, DnsRecordContext, MatchConfig, MatchKey, QueryMatcher, TcpDnsConfig, TcpDnsReassembler, TcpDnsSkip};
use crate::flow::{FlowConfig, FlowPacket, FlowTable};
use crate::ingest::IngestConfig;
use crate::packet::{self, Fragment, PacketMeta, SkipReason};
use crate::pcap::RawPacket;
use crate::reassembly::{FragmentKey, ReassemblyConfig, ReassemblyStats, Reassembler};

const TCP: u8 = 6;
const UDP: u8 = 17;
const SYN: u8 = 0x02;
const FIN: u8 = 0x01;
const RST: u8 = 0x04;

/// What a [`PacketDecoder`] needs: the record-producing part of [`IngestConfig`].
#[derive(Debug, Clone)]
pub struct DecodeConfig {
    /// Flow table settings.
    pub flow: FlowConfig,
    /// Ports whose UDP/TCP traffic is decoded as DNS.
    pub dns_ports: Vec<u16>,
    /// DNS-over-TCP reassembly bounds.
    pub tcp_dns: TcpDnsConfig,
    /// Query→response matching bounds.
    pub dns_match: MatchConfig,
    /// Bounds of UDP fragment reassembly.
    pub reassembly: ReassemblyConfig,
}

impl Default for DecodeConfig {
    fn default() -> Self {
        DecodeConfig::from(&IngestConfig::default())
    }
}

impl From<&IngestConfig> for DecodeConfig {
    fn from(c: &IngestConfig) -> Self {
        DecodeConfig {
            flow: c.flow.clone(),
            dns_ports: c.dns_ports.clone(),
            tcp_dns: c.tcp_dns,
            dns_match: c.dns_match,
            reassembly: c.reassembly,
        }
    }
}

/// Counters of a [`PacketDecoder`] (the packet half of `IngestStats`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DecodeStats {
    /// Packets seen.
    pub packets: u64,
    /// Wire bytes of the packets seen.
    pub bytes: u64,
    /// Packets accounted to a flow.
    pub flow_packets: u64,
    /// Packets not accounted, by [`SkipReason`] index.
    pub skipped: [u64; SkipReason::COUNT],
    /// Packets that would have created a flow in a full table.
    pub flow_table_full: u64,
    /// Flow records produced.
    pub flows: u64,
    /// DNS messages decoded.
    pub dns_messages: u64,
    /// DNS payloads that could not be decoded, by [`DnsError::KINDS`] index.
    pub dns_errors: [u64; DnsError::KINDS.len()],
    /// DNS-over-TCP segments skipped, by [`TcpDnsSkip::ALL`] index.
    pub tcp_dns_skipped: [u64; TcpDnsSkip::ALL.len()],
    /// DNS responses whose query was seen.
    pub dns_matched: u64,
    /// UDP fragment reassembly counters.
    pub reassembly: ReassemblyStats,
}

impl DecodeStats {
    /// Total packets skipped for any reason (including a full flow table).
    pub fn skipped_total(&self) -> u64 {
        self.skipped.iter().sum::<u64>() + self.flow_table_full
    }
}

/// Where a [`PacketDecoder`] puts the records it produces.
pub trait RecordSink {
    /// Why the sink could not take a record (offline: a segment write error;
    /// live: never, a full ring drops and counts).
    type Error;
    /// Takes one flow record.
    fn flow(&mut self, rec: FlowRecord) -> Result<(), Self::Error>;
    /// Takes one DNS record.
    fn dns(&mut self, rec: DnsRecord) -> Result<(), Self::Error>;
}

/// A sink that keeps records in vectors (tests, benchmarks).
#[derive(Debug, Default)]
pub struct VecSink {
    /// Flow records in production order.
    pub flows: Vec<FlowRecord>,
    /// DNS records in production order.
    pub dns: Vec<DnsRecord>,
}

impl RecordSink for VecSink {
    type Error = std::convert::Infallible;
    fn flow(&mut self, rec: FlowRecord) -> Result<(), Self::Error> {
        self.flows.push(rec);
        Ok(())
    }
    fn dns(&mut self, rec: DnsRecord) -> Result<(), Self::Error> {
        self.dns.push(rec);
        Ok(())
    }
}

/// Directional TCP stream key for DNS-over-TCP reassembly.
type StreamKey = ([u8; 16], u16, [u8; 16], u16);

/// Turns packets into flow and DNS records (see the module docs).
pub struct PacketDecoder {
    dns_port: Box<[u64; 1024]>,
    flows: FlowTable,
    tcp_dns: TcpDnsReassembler<StreamKey>,
    matcher: QueryMatcher,
    fragments: Reassembler,
    stats: DecodeStats,
    /// Scratch for messages completed by one TCP segment.
    tcp_msgs: Vec<Result<dns::DnsMessage, DnsError>>,
}

impl std::fmt::Debug for PacketDecoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PacketDecoder").field("stats", &self.stats).field("active_flows", &self.flows.active_flows()).finish()
    }
}

impl PacketDecoder {
    /// A decoder with empty state.
    pub fn new(cfg: &DecodeConfig) -> Self {
        let mut dns_port = Box::new([0u64; 1024]);
        for &p in &cfg.dns_ports {
            dns_port[usize::from(p) / 64] |= 1 << (p % 64);
        }
        PacketDecoder {
            dns_port,
            flows: FlowTable::new(cfg.flow.clone()),
            tcp_dns: TcpDnsReassembler::new(cfg.tcp_dns),
            matcher: QueryMatcher::new(cfg.dns_match),
            fragments: Reassembler::new(cfg.reassembly),
            stats: DecodeStats::default(),
            tcp_msgs: Vec::new(),
        }
    }

    /// Counters so far.
    pub fn stats(&self) -> &DecodeStats {
        &self.stats
    }

    /// The flow table (active flows, its clock and counters).
    pub fn flow_table(&self) -> &FlowTable {
        &self.flows
    }

    #[inline]
    fn is_dns_port(&self, p: u16) -> bool {
        self.dns_port[usize::from(p) / 64] & (1 << (p % 64)) != 0
    }

    /// Accounts one captured packet; records it completes go to `sink`.
    pub fn packet<S: RecordSink>(&mut self, raw: &RawPacket<'_>, sink: &mut S) -> Result<(), S::Error> {
        self.stats.packets += 1;
        self.stats.bytes += u64::from(raw.orig_len);
        let meta = match packet::decode_frame(raw.link_type, raw.data, raw.orig_len) {
            Ok(m) => m,
            Err(reason) => {
                self.stats.skipped[reason.index()] += 1;
                return Ok(());
            }
        };
        if meta.fragment != Fragment::None && meta.proto == UDP {
            // Flows never reassemble (see docs/flow-semantics.md), but a DNS
            // message split into fragments is rebuilt so it can be decoded.
            self.udp_fragment(raw, &meta, sink)?;
        }
        if let Some(reason) = meta.flow_skip() {
            self.stats.skipped[reason.index()] += 1;
            return Ok(());
        }
        let accounted = self.flows.observe(&FlowPacket::from_meta(raw.ts_ns, &meta));
        if accounted {
            self.stats.flow_packets += 1;
        } else {
            self.stats.flow_table_full += 1;
        }
        if self.flows.ended_len() > 0 {
            self.drain_flows(sink)?;
        }
        if meta.fragment == Fragment::None
            && (meta.proto == UDP || meta.proto == TCP)
            && (self.is_dns_port(meta.src_port) || self.is_dns_port(meta.dst_port))
        {
            self.dns(raw, &meta, sink)?;
        }
        Ok(())
    }

    /// Moves the flow clock to `now_ns` without a packet, ending the flows
    /// whose time is up into `sink` (live capture calls it when the link is quiet).
    pub fn advance<S: RecordSink>(&mut self, now_ns: i64, sink: &mut S) -> Result<(), S::Error> {
        self.flows.advance(now_ns);
        self.drain_flows(sink)
    }

    /// Ends every open flow (reason `flush`) into `sink` and resets the flow
    /// clock: end of input, or a new input that does not continue this one.
    pub fn flush<S: RecordSink>(&mut self, sink: &mut S) -> Result<(), S::Error> {
        self.flows.flush();
        self.drain_flows(sink)
    }

    /// Feeds a UDP fragment to reassembly; a completed datagram on a DNS port
    /// is decoded like any UDP DNS message (time and frame length of the
    /// fragment that completed it, as tshark reports them).
    fn udp_fragment<S: RecordSink>(&mut self, raw: &RawPacket<'_>, meta: &PacketMeta<'_>, sink: &mut S) -> Result<(), S::Error> {
        let start = meta.l4_offset as usize;
        let end = meta.l3_offset as usize + meta.ip_len as usize;
        // A fragment cut by the snaplen can never complete a datagram.
        let Some(data) = raw.data.get(start..end) else { return Ok(()) };
        let key = FragmentKey { src: meta.src, dst: meta.dst, proto: meta.proto, id: meta.frag_id };
        let done = self.fragments.push(key, meta.frag_offset, meta.frag_more, data, raw.ts_ns);
        self.stats.reassembly = self.fragments.stats();
        let Some(dgram) = done else { return Ok(()) };
        let Some(hdr) = dgram.get(..8) else { return Ok(()) };
        let (sport, dport) = (u16::from_be_bytes([hdr[0], hdr[1]]), u16::from_be_bytes([hdr[2], hdr[3]]));
        if !self.is_dns_port(sport) && !self.is_dns_port(dport) {
            return Ok(());
        }
        let udp_len = usize::from(u16::from_be_bytes([hdr[4], hdr[5]])).clamp(8, dgram.len());
        let payload = &dgram[8..udp_len];
        let whole = PacketMeta { src_port: sport, dst_port: dport, payload, fragment: Fragment::None, ..*meta };
        let parsed = dns::parse_message(payload);
        self.dns_message(raw, &whole, DnsTransport::Udp, parsed, sink)
    }

    fn drain_flows<S: RecordSink>(&mut self, sink: &mut S) -> Result<(), S::Error> {
        for rec in self.flows.take_ended() {
            self.stats.flows += 1;
            sink.flow(rec)?;
        }
        Ok(())
    }

    fn dns<S: RecordSink>(&mut self, raw: &RawPacket<'_>, meta: &PacketMeta<'_>, sink: &mut S) -> Result<(), S::Error> {
        if meta.proto == UDP {
            if meta.payload.is_empty() {
                return Ok(());
            }
            let parsed = dns::parse_message(meta.payload);
            return self.dns_message(raw, meta, DnsTransport::Udp, parsed, sink);
        }
        let key: StreamKey = (meta.src, meta.src_port, meta.dst, meta.dst_port);
        if meta.tcp_flags & SYN != 0 {
            self.tcp_dns.syn(key, meta.tcp_seq, raw.ts_ns);
        }
        if !meta.payload.is_empty() {
            let mut msgs = std::mem::take(&mut self.tcp_msgs);
            match self.tcp_dns.push(key, meta.tcp_seq, meta.payload, raw.ts_ns) {
                Ok(it) => {
                    if let Some(why) = it.abandoned() {
                        self.stats.tcp_dns_skipped[skip_index(why)] += 1;
                    }
                    msgs.extend(it.map(dns::parse_message));
                }
                Err(why) => self.stats.tcp_dns_skipped[skip_index(why)] += 1,
            }
            let mut result = Ok(());
            for parsed in msgs.drain(..) {
                if result.is_ok() {
                    result = self.dns_message(raw, meta, DnsTransport::Tcp, parsed, sink);
                }
            }
            self.tcp_msgs = msgs;
            result?;
        }
        if meta.tcp_flags & (FIN | RST) != 0 {
            self.tcp_dns.remove(&key);
        }
        Ok(())
    }

    fn dns_message<S: RecordSink>(
        &mut self,
        raw: &RawPacket<'_>,
        meta: &PacketMeta<'_>,
        transport: DnsTransport,
        parsed: Result<dns::DnsMessage, DnsError>,
        sink: &mut S,
    ) -> Result<(), S::Error> {
        let msg = match parsed {
            Ok(m) => m,
            Err(e) => {
                self.stats.dns_errors[e.index()] += 1;
                return Ok(());
            }
        };
        // The server is the side on a DNS port; when both are (53 ↔ 53,
        // mDNS 5353 ↔ 5353), a query goes to the server and a response comes from it.
        let src_is_server = match (self.is_dns_port(meta.src_port), self.is_dns_port(meta.dst_port)) {
            (true, false) => true,
            (false, true) => false,
            _ => msg.is_response,
        };
        let (src, dst): (IpAddr, IpAddr) = (meta.src_ip(), meta.dst_ip());
        let (client_ip, client_port, server_ip, server_port) = if src_is_server {
            (dst, meta.dst_port, src, meta.src_port)
        } else {
            (src, meta.src_port, dst, meta.dst_port)
        };
        let key = MatchKey { client_ip, client_port, server_ip, server_port, id: msg.id };
        let latency_ns = if msg.is_response {
            self.matcher.on_response(&key, &msg.qname, msg.qtype, raw.ts_ns)
        } else {
            self.matcher.on_query(key, &msg.qname, msg.qtype, raw.ts_ns);
            None
        };
        if latency_ns.is_some() {
            self.stats.dns_matched += 1;
        }
        let rec = msg.into_record(DnsRecordContext {
            ts: raw.ts_ns,
            client_ip,
            client_port,
            server_ip,
            server_port,
            transport,
            frame_len: raw.orig_len,
            latency_ns,
        });
        self.stats.dns_messages += 1;
        sink.dns(rec)
    }
}

fn skip_index(why: TcpDnsSkip) -> usize {
    TcpDnsSkip::ALL.iter().position(|w| *w == why).unwrap_or(0)
}

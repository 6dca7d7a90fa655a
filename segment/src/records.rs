//! The record types every input produces and every consumer reads.
//!
//! These structs are the in-memory form of one row of a segment. Their Arrow
//! form (column names, types) is defined once, in [`crate::schema`]; the
//! conversion between the two lives there too. Addresses are `IpAddr`; on disk
//! they are 16-byte IPv6 (IPv4 as `::ffff:a.b.c.d`).

use std::net::IpAddr;

/// Nanoseconds since the Unix epoch, UTC.
pub type TimestampNs = i64;

/// The kinds of record a segment can hold (one kind per file).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// Bidirectional flows.
    Flow,
    /// One record per DNS message.
    Dns,
    /// HTTP proxy log lines.
    Proxy,
}

impl Kind {
    /// All kinds, in a stable order.
    pub const ALL: [Kind; 3] = [Kind::Flow, Kind::Dns, Kind::Proxy];

    /// The lower-case name used in paths, metadata and the CLI.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Flow => "flow",
            Kind::Dns => "dns",
            Kind::Proxy => "proxy",
        }
    }

    /// Parses the lower-case name.
    pub fn parse(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a flow record was emitted. The numeric codes are shared with the kernel
/// programs (`OSPREY_END_*` in `ebpf/include/osprey_kern_user.h`); a test in
/// `osprey-capture` checks they agree.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum EndReason {
    /// No packet for `idle_timeout_secs`.
    Idle = 1,
    /// The flow lived longer than `active_timeout_secs`; a continuation follows.
    Active = 2,
    /// TCP FIN seen in both directions.
    Fin = 3,
    /// TCP RST seen.
    Rst = 4,
    /// Input ended (end of capture file, daemon shutdown) while the flow was open.
    Flush = 5,
    /// Evicted to make room in a full flow table.
    Evicted = 6,
}

impl EndReason {
    /// All reasons, in code order.
    pub const ALL: [EndReason; 6] = [
        EndReason::Idle,
        EndReason::Active,
        EndReason::Fin,
        EndReason::Rst,
        EndReason::Flush,
        EndReason::Evicted,
    ];

    /// The name stored in segments and printed by `osprey records`.
    pub fn as_str(self) -> &'static str {
        match self {
            EndReason::Idle => "idle",
            EndReason::Active => "active",
            EndReason::Fin => "fin",
            EndReason::Rst => "rst",
            EndReason::Flush => "flush",
            EndReason::Evicted => "evicted",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<EndReason> {
        EndReason::ALL.into_iter().find(|r| r.as_str() == s)
    }

    /// Maps a numeric code (as the kernel writes it) back to a reason.
    pub fn from_code(code: u8) -> Option<EndReason> {
        EndReason::ALL.into_iter().find(|r| *r as u8 == code)
    }
}

/// A bidirectional flow (RFC 5103 style). `src` is the initiator.
///
/// Byte counts are at the IP layer (IP header included, link layer excluded),
/// as NetFlow counts them. For ICMP/ICMPv6, `src_port` is 0 and `dst_port`
/// holds `type << 8 | code` of the first packet, as NetFlow v5/v9 exporters do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowRecord {
    /// First packet, ns since the epoch.
    pub ts_start: TimestampNs,
    /// Last packet, ns since the epoch.
    pub ts_end: TimestampNs,
    /// IP protocol number (6 TCP, 17 UDP, 1 ICMP, 58 ICMPv6, ...).
    pub proto: u8,
    /// Initiator address.
    pub src_ip: IpAddr,
    /// Initiator port (0 for protocols without ports).
    pub src_port: u16,
    /// Responder address.
    pub dst_ip: IpAddr,
    /// Responder port, or ICMP `type << 8 | code`.
    pub dst_port: u16,
    /// Outermost 802.1Q VLAN id, 0 when untagged.
    pub vlan: u16,
    /// Packets initiator → responder.
    pub packets: u64,
    /// IP-layer bytes initiator → responder.
    pub bytes: u64,
    /// Packets responder → initiator.
    pub rev_packets: u64,
    /// IP-layer bytes responder → initiator.
    pub rev_bytes: u64,
    /// OR of TCP flags initiator → responder.
    pub tcp_flags: u8,
    /// OR of TCP flags responder → initiator.
    pub rev_tcp_flags: u8,
    /// Why the record was emitted.
    pub end_reason: EndReason,
}

/// Transport a DNS message arrived on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DnsTransport {
    /// DNS over UDP.
    Udp,
    /// DNS over TCP (RFC 1035 §4.2.2 length-prefixed).
    Tcp,
}

impl DnsTransport {
    /// The name stored in segments.
    pub fn as_str(self) -> &'static str {
        match self {
            DnsTransport::Udp => "udp",
            DnsTransport::Tcp => "tcp",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<DnsTransport> {
        match s {
            "udp" => Some(DnsTransport::Udp),
            "tcp" => Some(DnsTransport::Tcp),
            _ => None,
        }
    }
}

/// One decoded resource record from the answer section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsAnswer {
    /// Owner name in presentation form.
    pub name: String,
    /// RR type.
    pub rtype: u16,
    /// RR class.
    pub rclass: u16,
    /// Time to live, seconds.
    pub ttl: u32,
    /// The address, for A and AAAA records.
    pub ip: Option<IpAddr>,
    /// The target name, for CNAME, NS, PTR, DNAME, MX, SRV (and similar) records.
    pub target: Option<String>,
    /// The whole RDATA in presentation form (zone-file style; `\# len hex` for unknown types).
    pub data: String,
}

/// One DNS message (query or response).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsRecord {
    /// Capture time of the packet that completed the message, ns since the epoch.
    pub ts: TimestampNs,
    /// The client (the side that is not the server port) address.
    pub client_ip: IpAddr,
    /// Client port.
    pub client_port: u16,
    /// Server address.
    pub server_ip: IpAddr,
    /// Server port (53 unless configured otherwise).
    pub server_port: u16,
    /// UDP or TCP.
    pub transport: DnsTransport,
    /// Message id.
    pub id: u16,
    /// QR bit.
    pub is_response: bool,
    /// OPCODE (4 bits).
    pub opcode: u8,
    /// RCODE from the header (4 bits).
    pub rcode: u8,
    /// The 16-bit header flags word as on the wire (QR, opcode, AA, TC, RD, RA, Z, AD, CD, rcode).
    pub flags: u16,
    /// First question name in presentation form (`\DDD` escapes for non-printable bytes); empty if QDCOUNT is 0.
    pub qname: String,
    /// First question type (0 if none).
    pub qtype: u16,
    /// First question class (0 if none).
    pub qclass: u16,
    /// ANCOUNT from the header.
    pub an_count: u16,
    /// NSCOUNT from the header.
    pub ns_count: u16,
    /// ARCOUNT from the header.
    pub ar_count: u16,
    /// Decoded answer section (possibly fewer than `an_count` if the message was truncated).
    pub answers: Vec<DnsAnswer>,
    /// DNS message size in bytes.
    pub size: u32,
    /// Link-layer frame length of the packet that carried the message (Spot's `frame_len`).
    pub frame_len: u32,
    /// For responses whose query was seen: response ts − query ts, ns.
    pub latency_ns: Option<i64>,
}

/// One proxy log line with every field of Spot's Blue Coat schema
/// (`spot-reference.md` §1.3), typed where Spot typed them.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ProxyRecord {
    /// `p_date` + `p_time`, ns since the epoch (UTC).
    pub ts: TimestampNs,
    /// `date` as logged (YYYY-MM-DD).
    pub p_date: String,
    /// `time` as logged (HH:MM:SS).
    pub p_time: String,
    /// `c-ip`.
    pub clientip: Option<IpAddr>,
    /// `cs-host`.
    pub host: String,
    /// `cs-method`.
    pub reqmethod: String,
    /// `cs(User-Agent)`.
    pub useragent: String,
    /// `rs(Content-Type)`.
    pub resconttype: String,
    /// `time-taken`, milliseconds.
    pub duration: i64,
    /// `cs-username`.
    pub username: String,
    /// `cs-auth-group`.
    pub authgroup: String,
    /// `x-exception-id`.
    pub exceptionid: String,
    /// `sc-filter-result`.
    pub filterresult: String,
    /// `cs-categories`.
    pub webcat: String,
    /// `cs(Referer)`.
    pub referer: String,
    /// `sc-status`.
    pub respcode: String,
    /// `s-action`.
    pub action: String,
    /// `cs-uri-scheme`.
    pub urischeme: String,
    /// `cs-uri-port`.
    pub uriport: String,
    /// `cs-uri-path`.
    pub uripath: String,
    /// `cs-uri-query`.
    pub uriquery: String,
    /// `cs-uri-extension`.
    pub uriextension: String,
    /// `s-ip`.
    pub serverip: Option<IpAddr>,
    /// `sc-bytes`.
    pub scbytes: i64,
    /// `cs-bytes`.
    pub csbytes: i64,
    /// `x-virus-id`.
    pub virusid: String,
    /// `x-bluecoat-application-name`.
    pub bcappname: String,
    /// `x-bluecoat-application-operation`.
    pub bcappoper: String,
    /// host + path (if longer than 1 char) + query (if longer than 1 char), as Spot derives it.
    pub fulluri: String,
}

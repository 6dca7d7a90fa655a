//! Building packets byte by byte, for tests, benchmarks and the demo generator.
//!
//! Nothing here parses: it is the other side of [`crate::packet`] and
//! [`crate::dns`], used to produce exactly the bytes a test wants (including
//! odd ones: stacked VLAN tags, MPLS, IPv6 extension headers, fragments,
//! binary DNS labels, wrong checksums on request) and to write them to pcap or
//! pcapng files.
//!
//! - [`PacketBuilder`] writes a frame layer by layer into a caller-owned
//!   `Vec<u8>` (so a hot loop reuses one allocation). Each layer fills in the
//!   "next protocol" field of the layer before it (EtherType, IP protocol,
//!   loopback family, MPLS bottom-of-stack bit); [`PacketBuilder::finish`]
//!   patches every length and checksum, innermost layer first, so tunnels
//!   (IP-in-IP, GRE, VXLAN) come out right too.
//! - [`DnsBuilder`] writes a DNS message (optionally length-prefixed for TCP),
//!   with suffix compression against the first question name.
//! - [`PcapWriter`] (classic pcap, nanosecond magic) and [`PcapngWriter`]
//!   (SHB + one IDB with `if_tsresol=9` + EPBs) write captures.
//!
//! Builders panic on requests that cannot be encoded at all (a TCP header with
//! no IP layer before it, a DNS label over 63 bytes): those are bugs in the
//! test, not data. Everything that *can* be encoded, however wrong, can be
//! produced through the explicit override fields.

use std::io::{self, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// An Ethernet MAC address.
pub type Mac = [u8; 6];

/// EtherType of IPv4.
pub const ETHERTYPE_IPV4: u16 = 0x0800;
/// EtherType of ARP.
pub const ETHERTYPE_ARP: u16 = 0x0806;
/// EtherType (TPID) of an 802.1Q VLAN tag.
pub const ETHERTYPE_VLAN: u16 = 0x8100;
/// EtherType (TPID) of an 802.1ad service tag (QinQ outer tag).
pub const ETHERTYPE_QINQ: u16 = 0x88a8;
/// EtherType of IPv6.
pub const ETHERTYPE_IPV6: u16 = 0x86dd;
/// EtherType of MPLS unicast.
pub const ETHERTYPE_MPLS: u16 = 0x8847;
/// EtherType of transparent Ethernet bridging (Ethernet inside GRE).
pub const ETHERTYPE_TEB: u16 = 0x6558;

/// IP protocol numbers (IANA "Assigned Internet Protocol Numbers").
pub mod ip_proto {
    /// IPv6 hop-by-hop options.
    pub const HOPOPT: u8 = 0;
    /// ICMP.
    pub const ICMP: u8 = 1;
    /// IPv4 encapsulation (IP-in-IP).
    pub const IPIP: u8 = 4;
    /// TCP.
    pub const TCP: u8 = 6;
    /// UDP.
    pub const UDP: u8 = 17;
    /// IPv6 encapsulation.
    pub const IPV6: u8 = 41;
    /// IPv6 routing header.
    pub const ROUTING: u8 = 43;
    /// IPv6 fragment header.
    pub const FRAGMENT: u8 = 44;
    /// GRE.
    pub const GRE: u8 = 47;
    /// ICMPv6.
    pub const ICMPV6: u8 = 58;
    /// IPv6 "no next header".
    pub const NONXT: u8 = 59;
    /// IPv6 destination options.
    pub const DSTOPTS: u8 = 60;
    /// SCTP.
    pub const SCTP: u8 = 132;
    /// UDP-Lite.
    pub const UDPLITE: u8 = 136;
    /// MPLS in IP.
    pub const MPLS_IN_IP: u8 = 137;
    /// Ethernet (RFC 8986).
    pub const ETHERNET: u8 = 143;
}

/// TCP flag bits as in byte 13 of the TCP header.
pub mod tcp_flags {
    /// FIN.
    pub const FIN: u8 = 0x01;
    /// SYN.
    pub const SYN: u8 = 0x02;
    /// RST.
    pub const RST: u8 = 0x04;
    /// PSH.
    pub const PSH: u8 = 0x08;
    /// ACK.
    pub const ACK: u8 = 0x10;
    /// URG.
    pub const URG: u8 = 0x20;
    /// ECE.
    pub const ECE: u8 = 0x40;
    /// CWR.
    pub const CWR: u8 = 0x80;
}

/// Link-layer header types (tcpdump.org `LINKTYPE_*` numbers) for the writers.
pub mod linktype {
    /// BSD loopback, family in the writer's byte order.
    pub const NULL: u32 = 0;
    /// Ethernet.
    pub const ETHERNET: u32 = 1;
    /// Raw IP (version from the first nibble).
    pub const RAW: u32 = 101;
    /// OpenBSD loopback, family in network byte order.
    pub const LOOP: u32 = 108;
    /// Linux cooked capture v1.
    pub const LINUX_SLL: u32 = 113;
    /// Raw IPv4.
    pub const IPV4: u32 = 228;
    /// Raw IPv6.
    pub const IPV6: u32 = 229;
    /// Linux cooked capture v2.
    pub const LINUX_SLL2: u32 = 276;
}

/// Address family value the loopback header gets for IPv4.
pub const AF_INET: u32 = 2;
/// Address family value [`PacketBuilder::loopback`] writes for IPv6. BSDs
/// disagree (24 NetBSD/OpenBSD, 28 FreeBSD, 30 macOS); readers accept all
/// three, use [`PacketBuilder::loopback_family`] for the others.
pub const AF_INET6_BSD: u32 = 24;

// ---------------------------------------------------------------------------
// Checksums
// ---------------------------------------------------------------------------

/// Adds `data` to a running RFC 1071 sum, as big-endian 16-bit words (an odd
/// trailing byte is padded with a zero). When a checksum covers several
/// slices, every slice but the last must have even length.
#[inline]
pub fn checksum_add(mut sum: u64, data: &[u8]) -> u64 {
    // Summing 32-bit words and folding later gives the same one's-complement
    // result as 16-bit words (2^16 ≡ 1 mod 0xffff) at half the additions.
    let mut words = data.chunks_exact(4);
    for w in &mut words {
        sum += u64::from(u32::from_be_bytes([w[0], w[1], w[2], w[3]]));
    }
    match *words.remainder() {
        [a] => sum += u64::from(a) << 8,
        [a, b] => sum += u64::from(u16::from_be_bytes([a, b])),
        [a, b, c] => sum += u64::from(u16::from_be_bytes([a, b])) + (u64::from(c) << 8),
        _ => {}
    }
    sum
}

/// Folds a running sum to 16 bits (end-around carry), without complementing.
#[inline]
pub fn checksum_fold(mut sum: u64) -> u16 {
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum as u16
}

/// The Internet checksum (RFC 1071) of `data`: the complement of the folded sum.
#[inline]
pub fn internet_checksum(data: &[u8]) -> u16 {
    !checksum_fold(checksum_add(0, data))
}

// ---------------------------------------------------------------------------
// Layer descriptions
// ---------------------------------------------------------------------------

/// An IPv4 header. Options are padded to a multiple of 4 bytes with zeros
/// (End of Option List).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv4<'a> {
    /// Source address.
    pub src: Ipv4Addr,
    /// Destination address.
    pub dst: Ipv4Addr,
    /// Time to live.
    pub ttl: u8,
    /// Identification.
    pub id: u16,
    /// Type of service / DSCP+ECN byte.
    pub tos: u8,
    /// DF flag.
    pub dont_fragment: bool,
    /// MF flag.
    pub more_fragments: bool,
    /// Fragment offset in 8-byte units (13 bits).
    pub fragment_offset: u16,
    /// Raw option bytes (at most 40).
    pub options: &'a [u8],
    /// Total Length to write instead of the real one.
    pub total_len: Option<u16>,
    /// Header checksum to write instead of the correct one.
    pub checksum: Option<u16>,
}

impl<'a> Ipv4<'a> {
    /// A plain header: TTL 64, id 0, DF set, no options.
    pub fn new(src: Ipv4Addr, dst: Ipv4Addr) -> Self {
        Ipv4 {
            src,
            dst,
            ttl: 64,
            id: 0,
            tos: 0,
            dont_fragment: true,
            more_fragments: false,
            fragment_offset: 0,
            options: &[],
            total_len: None,
            checksum: None,
        }
    }
}

/// An IPv6 fixed header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv6 {
    /// Source address.
    pub src: Ipv6Addr,
    /// Destination address.
    pub dst: Ipv6Addr,
    /// Hop limit.
    pub hop_limit: u8,
    /// Traffic class.
    pub traffic_class: u8,
    /// Flow label (20 bits).
    pub flow_label: u32,
    /// Payload Length to write instead of the real one.
    pub payload_len: Option<u16>,
}

impl Ipv6 {
    /// A plain header: hop limit 64, traffic class and flow label 0.
    pub fn new(src: Ipv6Addr, dst: Ipv6Addr) -> Self {
        Ipv6 { src, dst, hop_limit: 64, traffic_class: 0, flow_label: 0, payload_len: None }
    }
}

/// A TCP header. Options are padded to a multiple of 4 bytes with zeros.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tcp<'a> {
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// Sequence number.
    pub seq: u32,
    /// Acknowledgement number.
    pub ack: u32,
    /// Flags byte ([`tcp_flags`]).
    pub flags: u8,
    /// Receive window.
    pub window: u16,
    /// Urgent pointer.
    pub urgent: u16,
    /// Raw option bytes (at most 40).
    pub options: &'a [u8],
    /// Checksum to write instead of the correct one.
    pub checksum: Option<u16>,
}

impl<'a> Tcp<'a> {
    /// A header with the given ports and flags, seq/ack 0, window 65535.
    pub fn new(src_port: u16, dst_port: u16, flags: u8) -> Self {
        Tcp { src_port, dst_port, seq: 0, ack: 0, flags, window: 65535, urgent: 0, options: &[], checksum: None }
    }
}

/// A UDP header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Udp {
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// Length to write instead of the real one.
    pub length: Option<u16>,
    /// Checksum to write instead of the correct one (`Some(0)`: none, legal over IPv4).
    pub checksum: Option<u16>,
}

impl Udp {
    /// A header with the given ports, real length and checksum.
    pub fn new(src_port: u16, dst_port: u16) -> Self {
        Udp { src_port, dst_port, length: None, checksum: None }
    }
}

/// An ICMP or ICMPv6 header (the first 8 bytes of the message).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Icmp {
    /// Type.
    pub icmp_type: u8,
    /// Code.
    pub code: u8,
    /// The 4 type-specific header bytes (e.g. identifier << 16 | sequence).
    pub rest: u32,
    /// Checksum to write instead of the correct one.
    pub checksum: Option<u16>,
}

impl Icmp {
    /// Any type and code.
    pub fn new(icmp_type: u8, code: u8, rest: u32) -> Self {
        Icmp { icmp_type, code, rest, checksum: None }
    }
    /// ICMP echo request (type 8).
    pub fn echo_request(id: u16, seq: u16) -> Self {
        Icmp::new(8, 0, u32::from(id) << 16 | u32::from(seq))
    }
    /// ICMP echo reply (type 0).
    pub fn echo_reply(id: u16, seq: u16) -> Self {
        Icmp::new(0, 0, u32::from(id) << 16 | u32::from(seq))
    }
    /// ICMPv6 echo request (type 128).
    pub fn echo6_request(id: u16, seq: u16) -> Self {
        Icmp::new(128, 0, u32::from(id) << 16 | u32::from(seq))
    }
    /// ICMPv6 echo reply (type 129).
    pub fn echo6_reply(id: u16, seq: u16) -> Self {
        Icmp::new(129, 0, u32::from(id) << 16 | u32::from(seq))
    }
}

// ---------------------------------------------------------------------------
// PacketBuilder
// ---------------------------------------------------------------------------

/// Where the "next protocol" value of the previous layer goes.
#[derive(Debug, Clone, Copy)]
enum Slot {
    /// Nothing waits (start of packet, or after a transport header).
    None,
    /// A 16-bit EtherType at this offset (Ethernet, VLAN tag, SLL, GRE).
    EtherType(usize),
    /// An 8-bit IP protocol / next header at this offset.
    IpProto(usize),
    /// A 32-bit BSD loopback address family.
    Loopback { off: usize, big_endian: bool },
    /// An MPLS label whose bottom-of-stack bit is in the byte at this offset.
    Mpls(usize),
}

/// What the layer being pushed is, for filling in the previous slot.
#[derive(Debug, Clone, Copy)]
enum Next {
    Ipv4,
    Ipv6,
    Vlan(u16),
    Mpls,
    Ethernet,
    Proto(u8),
}

/// A length or checksum to patch in `finish`.
#[derive(Debug, Clone, Copy)]
enum Fixup {
    Empty,
    Ipv4 { start: usize, hdr_len: usize, total_len: Option<u16>, checksum: Option<u16> },
    Ipv6 { start: usize, payload_len: Option<u16>, final_dst: Option<[u8; 16]> },
    Udp { start: usize, ip: usize, length: Option<u16>, checksum: Option<u16> },
    Tcp { start: usize, ip: usize, checksum: Option<u16> },
    Icmp { start: usize, checksum: Option<u16> },
    Icmpv6 { start: usize, ip: usize, checksum: Option<u16> },
}

const MAX_FIXUPS: usize = 16;

/// Writes one frame layer by layer into a reusable buffer.
///
/// ```
/// use osprey_capture::craft::{PacketBuilder, Ipv4, Tcp, tcp_flags};
/// let mut buf = Vec::new();
/// let len = PacketBuilder::new(&mut buf)
///     .ethernet([2, 0, 0, 0, 0, 2], [2, 0, 0, 0, 0, 1])
///     .vlan(20)
///     .ipv4(Ipv4::new("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap()))
///     .tcp(Tcp { seq: 1, ..Tcp::new(40000, 443, tcp_flags::SYN) })
///     .finish();
/// assert_eq!(len, 14 + 4 + 20 + 20);
/// ```
///
/// Layers nest in call order; every header is written when its method is
/// called, and lengths/checksums are patched by [`finish`](Self::finish),
/// which must be called. A packet with no link layer (start directly with
/// [`ipv4`](Self::ipv4)/[`ipv6`](Self::ipv6)) is a raw IP packet.
///
/// Checksums cover the bytes present: for a first fragment (MF set) the
/// transport checksum is over that fragment only, which is not what a
/// receiver would verify after reassembly.
#[derive(Debug)]
#[must_use = "call finish() to patch lengths and checksums"]
pub struct PacketBuilder<'b> {
    buf: &'b mut Vec<u8>,
    pending: Slot,
    fixups: [Fixup; MAX_FIXUPS],
    n_fixups: usize,
    /// Index (into `fixups`) of the innermost IP header.
    ip: Option<usize>,
}

impl<'b> PacketBuilder<'b> {
    /// Starts a packet in `buf`, which is cleared.
    pub fn new(buf: &'b mut Vec<u8>) -> Self {
        buf.clear();
        PacketBuilder { buf, pending: Slot::None, fixups: [Fixup::Empty; MAX_FIXUPS], n_fixups: 0, ip: None }
    }

    fn put16(&mut self, v: u16) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }

    fn put32(&mut self, v: u32) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }

    fn push_fixup(&mut self, f: Fixup) -> usize {
        assert!(self.n_fixups < MAX_FIXUPS, "PacketBuilder: more than {MAX_FIXUPS} IP/transport layers");
        self.fixups[self.n_fixups] = f;
        self.n_fixups += 1;
        self.n_fixups - 1
    }

    /// Fills the previous layer's "next protocol" slot for a layer of kind `next`.
    fn link(&mut self, next: Next) {
        match self.pending {
            Slot::None => {
                if let Next::Proto(p) = next {
                    panic!("PacketBuilder: protocol {p} needs an IP layer before it");
                }
            }
            Slot::EtherType(off) => {
                let v = match next {
                    Next::Ipv4 => ETHERTYPE_IPV4,
                    Next::Ipv6 => ETHERTYPE_IPV6,
                    Next::Vlan(tpid) => tpid,
                    Next::Mpls => ETHERTYPE_MPLS,
                    Next::Ethernet => ETHERTYPE_TEB,
                    Next::Proto(p) => panic!("PacketBuilder: protocol {p} needs an IP layer before it"),
                };
                self.buf[off..off + 2].copy_from_slice(&v.to_be_bytes());
            }
            Slot::IpProto(off) => {
                self.buf[off] = match next {
                    Next::Ipv4 => ip_proto::IPIP,
                    Next::Ipv6 => ip_proto::IPV6,
                    Next::Mpls => ip_proto::MPLS_IN_IP,
                    Next::Ethernet => ip_proto::ETHERNET,
                    Next::Proto(p) => p,
                    Next::Vlan(_) => panic!("PacketBuilder: a VLAN tag cannot follow an IP header"),
                };
            }
            Slot::Loopback { off, big_endian } => {
                let fam = match next {
                    Next::Ipv4 => AF_INET,
                    Next::Ipv6 => AF_INET6_BSD,
                    _ => panic!("PacketBuilder: a loopback header can only carry IP"),
                };
                let bytes = if big_endian { fam.to_be_bytes() } else { fam.to_le_bytes() };
                self.buf[off..off + 4].copy_from_slice(&bytes);
            }
            Slot::Mpls(off) => match next {
                Next::Mpls => {}
                Next::Proto(p) => panic!("PacketBuilder: protocol {p} cannot follow an MPLS label"),
                _ => self.buf[off] |= 1,
            },
        }
        self.pending = Slot::None;
    }

    fn innermost_ip(&self, what: &str) -> usize {
        match self.ip {
            Some(i) => i,
            None => panic!("PacketBuilder: {what} needs an IP layer before it"),
        }
    }

    /// Ethernet II header, destination first as on the wire. The EtherType is
    /// filled in by the next layer (or [`ethertype`](Self::ethertype)).
    pub fn ethernet(mut self, dst: Mac, src: Mac) -> Self {
        self.link(Next::Ethernet);
        self.buf.extend_from_slice(&dst);
        self.buf.extend_from_slice(&src);
        self.pending = Slot::EtherType(self.buf.len());
        self.put16(0);
        self
    }

    /// An 802.1Q tag (TPID 0x8100, priority 0) with VLAN id `vid`.
    pub fn vlan(self, vid: u16) -> Self {
        self.vlan_tag(ETHERTYPE_VLAN, 0, false, vid)
    }

    /// An 802.1ad service tag (TPID 0x88a8), the outer tag of QinQ.
    pub fn qinq(self, vid: u16) -> Self {
        self.vlan_tag(ETHERTYPE_QINQ, 0, false, vid)
    }

    /// A VLAN tag with any TPID, priority (3 bits), DEI and VLAN id (12 bits).
    pub fn vlan_tag(mut self, tpid: u16, pcp: u8, dei: bool, vid: u16) -> Self {
        self.link(Next::Vlan(tpid));
        let tci = u16::from(pcp & 7) << 13 | u16::from(dei) << 12 | (vid & 0x0fff);
        self.put16(tci);
        self.pending = Slot::EtherType(self.buf.len());
        self.put16(0);
        self
    }

    /// An MPLS label stack entry (label 20 bits, traffic class 3 bits, TTL).
    /// The bottom-of-stack bit is set on the last label when a non-MPLS layer
    /// follows (or at `finish`).
    pub fn mpls(mut self, label: u32, tc: u8, ttl: u8) -> Self {
        self.link(Next::Mpls);
        let start = self.buf.len();
        self.put32((label & 0xf_ffff) << 12 | u32::from(tc & 7) << 9 | u32::from(ttl));
        self.pending = Slot::Mpls(start + 2);
        self
    }

    /// Linux cooked capture v1 header (`LINKTYPE_LINUX_SLL`): packet type
    /// (0 to us, 4 outgoing, ...), ARPHRD type (1 Ethernet) and a link-layer
    /// address of up to 8 bytes. The protocol field is filled by the next layer.
    pub fn sll(mut self, packet_type: u16, arphrd: u16, addr: &[u8]) -> Self {
        let addr = &addr[..addr.len().min(8)];
        self.put16(packet_type);
        self.put16(arphrd);
        self.put16(addr.len() as u16);
        let mut a = [0u8; 8];
        a[..addr.len()].copy_from_slice(addr);
        self.buf.extend_from_slice(&a);
        self.pending = Slot::EtherType(self.buf.len());
        self.put16(0);
        self
    }

    /// Linux cooked capture v2 header (`LINKTYPE_LINUX_SLL2`).
    pub fn sll2(mut self, ifindex: u32, packet_type: u8, arphrd: u16, addr: &[u8]) -> Self {
        let addr = &addr[..addr.len().min(8)];
        self.pending = Slot::EtherType(self.buf.len());
        self.put16(0);
        self.put16(0); // reserved
        self.put32(ifindex);
        self.put16(arphrd);
        self.buf.push(packet_type);
        self.buf.push(addr.len() as u8);
        let mut a = [0u8; 8];
        a[..addr.len()].copy_from_slice(addr);
        self.buf.extend_from_slice(&a);
        self
    }

    /// BSD loopback header: a 4-byte address family filled by the next IP
    /// layer ([`AF_INET`], [`AF_INET6_BSD`]). `big_endian` false is what
    /// `LINKTYPE_NULL` files from little-endian hosts hold; `LINKTYPE_LOOP` is
    /// always big-endian.
    pub fn loopback(mut self, big_endian: bool) -> Self {
        self.pending = Slot::Loopback { off: self.buf.len(), big_endian };
        self.put32(0);
        self
    }

    /// BSD loopback header with an explicit family value (nothing is filled in later).
    pub fn loopback_family(self, family: u32, big_endian: bool) -> Self {
        let bytes = if big_endian { family.to_be_bytes() } else { family.to_le_bytes() };
        self.buf.extend_from_slice(&bytes);
        self
    }

    /// Sets the pending EtherType to `ethertype` (for payloads this builder
    /// has no layer for, e.g. ARP).
    pub fn ethertype(mut self, ethertype: u16) -> Self {
        match self.pending {
            Slot::EtherType(off) => self.buf[off..off + 2].copy_from_slice(&ethertype.to_be_bytes()),
            _ => panic!("PacketBuilder: ethertype() needs an Ethernet/VLAN/SLL/GRE header before it"),
        }
        self.pending = Slot::None;
        self
    }

    /// Sets the pending IP protocol / next header to `proto` (raw payload of
    /// any protocol follows; pseudo-header checksums are not computed for it).
    pub fn ip_protocol(mut self, proto: u8) -> Self {
        match self.pending {
            Slot::IpProto(off) => self.buf[off] = proto,
            _ => panic!("PacketBuilder: ip_protocol() needs an IP header before it"),
        }
        self.pending = Slot::None;
        self
    }

    /// IPv4 header. Total length and header checksum are patched at `finish`;
    /// the protocol is filled by the next layer (59 if nothing follows).
    pub fn ipv4(mut self, h: Ipv4<'_>) -> Self {
        assert!(h.options.len() <= 40, "PacketBuilder: IPv4 options longer than 40 bytes");
        self.link(Next::Ipv4);
        let start = self.buf.len();
        let opt_len = (h.options.len() + 3) & !3;
        let hdr_len = 20 + opt_len;
        self.buf.push(0x40 | (hdr_len / 4) as u8);
        self.buf.push(h.tos);
        self.put16(0); // total length
        self.put16(h.id);
        let frag = u16::from(h.dont_fragment) << 14 | u16::from(h.more_fragments) << 13 | (h.fragment_offset & 0x1fff);
        self.put16(frag);
        self.buf.push(h.ttl);
        self.buf.push(ip_proto::NONXT);
        self.put16(0); // checksum
        self.buf.extend_from_slice(&h.src.octets());
        self.buf.extend_from_slice(&h.dst.octets());
        self.buf.extend_from_slice(h.options);
        self.buf.resize(start + hdr_len, 0);
        let i = self.push_fixup(Fixup::Ipv4 { start, hdr_len, total_len: h.total_len, checksum: h.checksum });
        self.ip = Some(i);
        self.pending = Slot::IpProto(start + 9);
        self
    }

    /// IPv6 fixed header. Payload length is patched at `finish`; the next
    /// header is filled by the next layer (59 if nothing follows).
    pub fn ipv6(mut self, h: Ipv6) -> Self {
        self.link(Next::Ipv6);
        let start = self.buf.len();
        self.put32(6 << 28 | u32::from(h.traffic_class) << 20 | (h.flow_label & 0xf_ffff));
        self.put16(0); // payload length
        self.buf.push(ip_proto::NONXT);
        self.buf.push(h.hop_limit);
        self.buf.extend_from_slice(&h.src.octets());
        self.buf.extend_from_slice(&h.dst.octets());
        let i = self.push_fixup(Fixup::Ipv6 { start, payload_len: h.payload_len, final_dst: None });
        self.ip = Some(i);
        self.pending = Slot::IpProto(start + 6);
        self
    }

    /// An IPv4 or IPv6 header with default fields (TTL/hop limit 64, id 0, DF).
    ///
    /// # Panics
    /// If the two addresses are of different families.
    pub fn ip(self, src: IpAddr, dst: IpAddr) -> Self {
        match (src, dst) {
            (IpAddr::V4(s), IpAddr::V4(d)) => self.ipv4(Ipv4::new(s, d)),
            (IpAddr::V6(s), IpAddr::V6(d)) => self.ipv6(Ipv6::new(s, d)),
            _ => panic!("PacketBuilder::ip: mixed address families"),
        }
    }

    /// Options-style extension header (hop-by-hop or destination options):
    /// `options` are TLV bytes, padded with Pad1/PadN to a multiple of 8.
    fn ipv6_options_header(mut self, proto: u8, options: &[u8]) -> Self {
        self.link(Next::Proto(proto));
        let start = self.buf.len();
        let total = (2 + options.len()).div_ceil(8) * 8;
        self.buf.push(ip_proto::NONXT);
        self.buf.push((total / 8 - 1) as u8);
        self.buf.extend_from_slice(options);
        match total - 2 - options.len() {
            0 => {}
            1 => self.buf.push(0), // Pad1
            n => {
                self.buf.push(1); // PadN
                self.buf.push((n - 2) as u8);
                self.buf.resize(start + total, 0);
            }
        }
        self.pending = Slot::IpProto(start);
        self
    }

    /// IPv6 hop-by-hop options header (must directly follow the IPv6 header
    /// to be valid; the builder does not enforce it).
    pub fn ipv6_hop_by_hop(self, options: &[u8]) -> Self {
        self.ipv6_options_header(ip_proto::HOPOPT, options)
    }

    /// IPv6 destination options header.
    pub fn ipv6_dest_options(self, options: &[u8]) -> Self {
        self.ipv6_options_header(ip_proto::DSTOPTS, options)
    }

    /// IPv6 routing header in the type 0/2 layout (4 reserved bytes, then
    /// addresses). With `segments_left > 0` the last address is the final
    /// destination, and transport checksums use it (RFC 8200 §8.1).
    pub fn ipv6_routing(mut self, routing_type: u8, segments_left: u8, addresses: &[Ipv6Addr]) -> Self {
        let ip = self.innermost_ip("an IPv6 routing header");
        self.link(Next::Proto(ip_proto::ROUTING));
        let start = self.buf.len();
        self.buf.push(ip_proto::NONXT);
        self.buf.push((addresses.len() * 2) as u8);
        self.buf.push(routing_type);
        self.buf.push(segments_left);
        self.put32(0);
        for a in addresses {
            self.buf.extend_from_slice(&a.octets());
        }
        if let (Some(last), Fixup::Ipv6 { final_dst, .. }) = (addresses.last(), &mut self.fixups[ip])
            && segments_left > 0
        {
            *final_dst = Some(last.octets());
        }
        self.pending = Slot::IpProto(start);
        self
    }

    /// IPv6 fragment header: offset in 8-byte units (13 bits), M flag, identification.
    pub fn ipv6_fragment(mut self, offset: u16, more: bool, id: u32) -> Self {
        self.link(Next::Proto(ip_proto::FRAGMENT));
        let start = self.buf.len();
        self.buf.push(ip_proto::NONXT);
        self.buf.push(0);
        self.put16((offset & 0x1fff) << 3 | u16::from(more));
        self.put32(id);
        self.pending = Slot::IpProto(start);
        self
    }

    /// TCP header; the checksum (over the pseudo-header of the innermost IP
    /// header and everything after) is patched at `finish`.
    pub fn tcp(mut self, h: Tcp<'_>) -> Self {
        assert!(h.options.len() <= 40, "PacketBuilder: TCP options longer than 40 bytes");
        let ip = self.innermost_ip("TCP");
        self.link(Next::Proto(ip_proto::TCP));
        let start = self.buf.len();
        let hdr_len = 20 + ((h.options.len() + 3) & !3);
        self.put16(h.src_port);
        self.put16(h.dst_port);
        self.put32(h.seq);
        self.put32(h.ack);
        self.buf.push(((hdr_len / 4) as u8) << 4);
        self.buf.push(h.flags);
        self.put16(h.window);
        self.put16(0);
        self.put16(h.urgent);
        self.buf.extend_from_slice(h.options);
        self.buf.resize(start + hdr_len, 0);
        self.push_fixup(Fixup::Tcp { start, ip, checksum: h.checksum });
        self
    }

    /// UDP header; length and checksum are patched at `finish` (a computed
    /// checksum of 0 is sent as 0xffff).
    pub fn udp(mut self, h: Udp) -> Self {
        let ip = self.innermost_ip("UDP");
        self.link(Next::Proto(ip_proto::UDP));
        let start = self.buf.len();
        self.put16(h.src_port);
        self.put16(h.dst_port);
        self.put32(0);
        self.push_fixup(Fixup::Udp { start, ip, length: h.length, checksum: h.checksum });
        self
    }

    /// ICMP header (checksum over the ICMP message, patched at `finish`).
    pub fn icmp(mut self, h: Icmp) -> Self {
        self.link(Next::Proto(ip_proto::ICMP));
        let start = self.buf.len();
        self.write_icmp(h);
        self.push_fixup(Fixup::Icmp { start, checksum: h.checksum });
        self
    }

    /// ICMPv6 header (checksum includes the IPv6 pseudo-header).
    pub fn icmpv6(mut self, h: Icmp) -> Self {
        let ip = self.innermost_ip("ICMPv6");
        self.link(Next::Proto(ip_proto::ICMPV6));
        let start = self.buf.len();
        self.write_icmp(h);
        self.push_fixup(Fixup::Icmpv6 { start, ip, checksum: h.checksum });
        self
    }

    fn write_icmp(&mut self, h: Icmp) {
        self.buf.push(h.icmp_type);
        self.buf.push(h.code);
        self.put16(0);
        self.put32(h.rest);
    }

    /// A basic GRE header (no checksum/key/sequence); the protocol type is
    /// filled by the next layer (IPv4, IPv6, MPLS or Ethernet).
    pub fn gre(mut self) -> Self {
        self.link(Next::Proto(ip_proto::GRE));
        self.put16(0);
        self.pending = Slot::EtherType(self.buf.len());
        self.put16(0);
        self
    }

    /// A VXLAN header (put it after a UDP header to port 4789, then an
    /// Ethernet header).
    pub fn vxlan(mut self, vni: u32) -> Self {
        self.put32(0x0800_0000);
        self.put32((vni & 0xff_ffff) << 8);
        self
    }

    /// Appends payload bytes.
    pub fn payload(self, data: &[u8]) -> Self {
        self.buf.extend_from_slice(data);
        self
    }

    /// The buffer, for writing a payload in place (e.g. with [`DnsBuilder`]);
    /// whatever is appended becomes the payload.
    pub fn payload_buf(&mut self) -> &mut Vec<u8> {
        self.buf
    }

    /// Patches lengths and checksums (innermost layer first) and returns the
    /// packet length.
    pub fn finish(mut self) -> usize {
        self.patch()
    }

    fn patch(&mut self) -> usize {
        if let Slot::Mpls(off) = self.pending {
            self.buf[off] |= 1;
        }
        let end = self.buf.len();
        for i in (0..self.n_fixups).rev() {
            match self.fixups[i] {
                Fixup::Empty => {}
                Fixup::Ipv4 { start, hdr_len, total_len, checksum } => {
                    let len = total_len.unwrap_or_else(|| {
                        u16::try_from(end - start).expect("PacketBuilder: IPv4 packet longer than 65535 bytes")
                    });
                    self.buf[start + 2..start + 4].copy_from_slice(&len.to_be_bytes());
                    let ck = checksum.unwrap_or_else(|| internet_checksum(&self.buf[start..start + hdr_len]));
                    self.buf[start + 10..start + 12].copy_from_slice(&ck.to_be_bytes());
                }
                Fixup::Ipv6 { start, payload_len, .. } => {
                    let len = payload_len.unwrap_or_else(|| {
                        u16::try_from(end - start - 40).expect("PacketBuilder: IPv6 payload longer than 65535 bytes")
                    });
                    self.buf[start + 4..start + 6].copy_from_slice(&len.to_be_bytes());
                }
                Fixup::Udp { start, ip, length, checksum } => {
                    let len = length.unwrap_or(u16::try_from(end - start).unwrap_or(u16::MAX));
                    self.buf[start + 4..start + 6].copy_from_slice(&len.to_be_bytes());
                    let ck = checksum.unwrap_or_else(|| match self.transport_checksum(ip, ip_proto::UDP, start, end) {
                        0 => 0xffff,
                        c => c,
                    });
                    self.buf[start + 6..start + 8].copy_from_slice(&ck.to_be_bytes());
                }
                Fixup::Tcp { start, ip, checksum } => {
                    let ck = checksum.unwrap_or_else(|| self.transport_checksum(ip, ip_proto::TCP, start, end));
                    self.buf[start + 16..start + 18].copy_from_slice(&ck.to_be_bytes());
                }
                Fixup::Icmp { start, checksum } => {
                    let ck = checksum.unwrap_or_else(|| internet_checksum(&self.buf[start..end]));
                    self.buf[start + 2..start + 4].copy_from_slice(&ck.to_be_bytes());
                }
                Fixup::Icmpv6 { start, ip, checksum } => {
                    let ck = checksum.unwrap_or_else(|| self.transport_checksum(ip, ip_proto::ICMPV6, start, end));
                    self.buf[start + 2..start + 4].copy_from_slice(&ck.to_be_bytes());
                }
            }
        }
        end
    }

    /// Like [`finish`](Self::finish), then pads the frame with zeros to at
    /// least `min_len` bytes (60 for Ethernet without FCS). The padding is a
    /// trailer after the IP packet; IP lengths do not include it.
    pub fn finish_padded(mut self, min_len: usize) -> usize {
        let len = self.patch();
        if len < min_len {
            self.buf.resize(min_len, 0);
        }
        self.buf.len()
    }

    /// Checksum of `buf[start..end]` with the pseudo-header of IP fixup `ip`.
    fn transport_checksum(&mut self, ip: usize, proto: u8, start: usize, end: usize) -> u16 {
        // The field is zero while summing.
        let ck_off = match proto {
            ip_proto::TCP => 16,
            ip_proto::UDP => 6,
            _ => 2,
        };
        self.buf[start + ck_off..start + ck_off + 2].fill(0);
        let len = end - start;
        let mut sum = match self.fixups[ip] {
            Fixup::Ipv4 { start: s, .. } => {
                let s = checksum_add(0, &self.buf[s + 12..s + 20]);
                s + u64::from(proto) + len as u64
            }
            Fixup::Ipv6 { start: s, final_dst, .. } => {
                let mut sum = checksum_add(0, &self.buf[s + 8..s + 24]);
                sum = match final_dst {
                    Some(d) => checksum_add(sum, &d),
                    None => checksum_add(sum, &self.buf[s + 24..s + 40]),
                };
                sum + u64::from(proto) + (len as u64 >> 16) + (len as u64 & 0xffff)
            }
            _ => 0,
        };
        sum = checksum_add(sum, &self.buf[start..end]);
        !checksum_fold(sum)
    }
}

// ---------------------------------------------------------------------------
// DNS
// ---------------------------------------------------------------------------

/// DNS RR types used by the builder (and tests).
pub mod dns_type {
    /// IPv4 address.
    pub const A: u16 = 1;
    /// Name server.
    pub const NS: u16 = 2;
    /// Canonical name.
    pub const CNAME: u16 = 5;
    /// Start of authority.
    pub const SOA: u16 = 6;
    /// NULL (arbitrary data).
    pub const NULL: u16 = 10;
    /// Domain name pointer.
    pub const PTR: u16 = 12;
    /// Mail exchange.
    pub const MX: u16 = 15;
    /// Text strings.
    pub const TXT: u16 = 16;
    /// IPv6 address.
    pub const AAAA: u16 = 28;
    /// Service locator.
    pub const SRV: u16 = 33;
    /// EDNS(0) pseudo-RR.
    pub const OPT: u16 = 41;
    /// Any type (query only).
    pub const ANY: u16 = 255;
}

/// DNS classes.
pub mod dns_class {
    /// Internet.
    pub const IN: u16 = 1;
    /// Chaos.
    pub const CH: u16 = 3;
    /// Any class.
    pub const ANY: u16 = 255;
}

/// DNS response codes.
pub mod dns_rcode {
    /// No error.
    pub const NOERROR: u8 = 0;
    /// Format error.
    pub const FORMERR: u8 = 1;
    /// Server failure.
    pub const SERVFAIL: u8 = 2;
    /// Name does not exist.
    pub const NXDOMAIN: u8 = 3;
    /// Not implemented.
    pub const NOTIMP: u8 = 4;
    /// Refused.
    pub const REFUSED: u8 = 5;
}

/// The fixed part of a DNS header (counts are computed by the builder).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DnsHeader {
    /// Message id.
    pub id: u16,
    /// QR: this is a response.
    pub qr: bool,
    /// OPCODE (4 bits).
    pub opcode: u8,
    /// Authoritative answer.
    pub aa: bool,
    /// Truncated.
    pub tc: bool,
    /// Recursion desired.
    pub rd: bool,
    /// Recursion available.
    pub ra: bool,
    /// The reserved Z bit.
    pub z: bool,
    /// Authentic data (DNSSEC).
    pub ad: bool,
    /// Checking disabled (DNSSEC).
    pub cd: bool,
    /// RCODE (4 bits).
    pub rcode: u8,
}

impl DnsHeader {
    /// A standard recursive query (RD set).
    pub fn query(id: u16) -> Self {
        DnsHeader { id, rd: true, ..DnsHeader::default() }
    }

    /// A recursive resolver's response (QR, RD, RA set) with `rcode`.
    pub fn response(id: u16, rcode: u8) -> Self {
        DnsHeader { id, qr: true, rd: true, ra: true, rcode, ..DnsHeader::default() }
    }

    /// The 16-bit flags word as on the wire.
    pub fn flags(&self) -> u16 {
        u16::from(self.qr) << 15
            | u16::from(self.opcode & 0xf) << 11
            | u16::from(self.aa) << 10
            | u16::from(self.tc) << 9
            | u16::from(self.rd) << 8
            | u16::from(self.ra) << 7
            | u16::from(self.z) << 6
            | u16::from(self.ad) << 5
            | u16::from(self.cd) << 4
            | u16::from(self.rcode & 0xf)
    }
}

/// A domain name to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Name<'a> {
    /// Dot-separated presentation form without escapes (`"www.example.com"`,
    /// trailing dot optional; `""` or `"."` is the root).
    Text(&'a str),
    /// Raw labels, so a label may contain dots, zero bytes or anything else.
    Labels(&'a [&'a [u8]]),
    /// Wire bytes written as they are (for malformed names: pointer loops,
    /// over-long names, bad label types). Never compressed against.
    Wire(&'a [u8]),
}

impl<'a> From<&'a str> for Name<'a> {
    fn from(s: &'a str) -> Self {
        Name::Text(s)
    }
}

impl<'a> From<&'a [&'a [u8]]> for Name<'a> {
    fn from(l: &'a [&'a [u8]]) -> Self {
        Name::Labels(l)
    }
}

/// Record data of one resource record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RData<'a> {
    /// IPv4 address.
    A(Ipv4Addr),
    /// IPv6 address.
    Aaaa(Ipv6Addr),
    /// Canonical name.
    Cname(Name<'a>),
    /// Name server.
    Ns(Name<'a>),
    /// Pointer.
    Ptr(Name<'a>),
    /// Mail exchange.
    Mx {
        /// Preference.
        preference: u16,
        /// Exchange host.
        exchange: Name<'a>,
    },
    /// Character strings (each at most 255 bytes).
    Txt(&'a [&'a [u8]]),
    /// Start of authority.
    Soa {
        /// Primary name server.
        mname: Name<'a>,
        /// Responsible mailbox.
        rname: Name<'a>,
        /// Serial.
        serial: u32,
        /// Refresh, seconds.
        refresh: u32,
        /// Retry, seconds.
        retry: u32,
        /// Expire, seconds.
        expire: u32,
        /// Negative-caching TTL, seconds.
        minimum: u32,
    },
    /// Service locator.
    Srv {
        /// Priority.
        priority: u16,
        /// Weight.
        weight: u16,
        /// Port.
        port: u16,
        /// Target host.
        target: Name<'a>,
    },
    /// NULL record: arbitrary bytes.
    Null(&'a [u8]),
    /// Any type with raw RDATA.
    Raw {
        /// RR type.
        rtype: u16,
        /// RDATA bytes.
        data: &'a [u8],
    },
}

impl RData<'_> {
    /// The RR type this data is written with.
    pub fn rtype(&self) -> u16 {
        match self {
            RData::A(_) => dns_type::A,
            RData::Aaaa(_) => dns_type::AAAA,
            RData::Cname(_) => dns_type::CNAME,
            RData::Ns(_) => dns_type::NS,
            RData::Ptr(_) => dns_type::PTR,
            RData::Mx { .. } => dns_type::MX,
            RData::Txt(_) => dns_type::TXT,
            RData::Soa { .. } => dns_type::SOA,
            RData::Srv { .. } => dns_type::SRV,
            RData::Null(_) => dns_type::NULL,
            RData::Raw { rtype, .. } => *rtype,
        }
    }
}

/// Message sections, in wire order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Section {
    /// Question.
    Question = 0,
    /// Answer.
    Answer = 1,
    /// Authority.
    Authority = 2,
    /// Additional.
    Additional = 3,
}

/// Longest name the builder splits into labels.
const MAX_LABELS: usize = 128;

/// Writes one DNS message, appended to a buffer.
///
/// ```
/// use osprey_capture::craft::{DnsBuilder, DnsHeader, RData, dns_type, dns_class};
/// let mut msg = Vec::new();
/// DnsBuilder::new(&mut msg, DnsHeader::response(7, 0))
///     .compress(true)
///     .question("www.example.com", dns_type::A, dns_class::IN)
///     .answer("www.example.com", 300, RData::A("192.0.2.1".parse().unwrap()))
///     .finish();
/// assert_eq!(&msg[33..35], &[0xc0, 0x0c]); // answer name points at the question
/// ```
///
/// Records must be added in section order (question, answer, authority,
/// additional); the header counts are filled in by [`finish`](Self::finish).
/// With compression on, every name written after the first question (owner
/// names and names inside RDATA) reuses the longest suffix it shares with the
/// first question name through a pointer, as servers do.
#[derive(Debug)]
#[must_use = "call finish() to write the header counts"]
pub struct DnsBuilder<'b> {
    buf: &'b mut Vec<u8>,
    /// Offset of the DNS header in `buf`.
    start: usize,
    /// Offset of the TCP length prefix, if any.
    prefix: Option<usize>,
    counts: [u16; 4],
    counts_override: Option<[u16; 4]>,
    section: Section,
    compress: bool,
    /// Offset of the first question name in `buf`.
    qname: Option<usize>,
}

impl<'b> DnsBuilder<'b> {
    /// Starts a message at the end of `buf`.
    pub fn new(buf: &'b mut Vec<u8>, header: DnsHeader) -> Self {
        let start = buf.len();
        buf.extend_from_slice(&header.id.to_be_bytes());
        buf.extend_from_slice(&header.flags().to_be_bytes());
        buf.extend_from_slice(&[0; 8]);
        DnsBuilder {
            buf,
            start,
            prefix: None,
            counts: [0; 4],
            counts_override: None,
            section: Section::Question,
            compress: false,
            qname: None,
        }
    }

    /// Starts a message preceded by the 2-byte length prefix of DNS over TCP
    /// (RFC 1035 §4.2.2); compression offsets stay relative to the message.
    pub fn new_tcp(buf: &'b mut Vec<u8>, header: DnsHeader) -> Self {
        let prefix = buf.len();
        buf.extend_from_slice(&[0, 0]);
        let mut b = DnsBuilder::new(buf, header);
        b.prefix = Some(prefix);
        b
    }

    /// Turns name compression on or off (off by default).
    pub fn compress(mut self, on: bool) -> Self {
        self.compress = on;
        self
    }

    /// Writes these section counts into the header instead of the real ones.
    pub fn counts(mut self, counts: [u16; 4]) -> Self {
        self.counts_override = Some(counts);
        self
    }

    /// Adds a question.
    pub fn question<'n>(mut self, name: impl Into<Name<'n>>, qtype: u16, qclass: u16) -> Self {
        let name = name.into();
        self.enter(Section::Question);
        let at = self.buf.len();
        // The first question is the compression target, unless it is raw wire bytes.
        let first = self.qname.is_none() && !matches!(name, Name::Wire(_));
        self.write_name(name);
        if first {
            self.qname = Some(at);
        }
        self.buf.extend_from_slice(&qtype.to_be_bytes());
        self.buf.extend_from_slice(&qclass.to_be_bytes());
        self
    }

    /// Adds an answer RR of class IN.
    pub fn answer<'n>(self, name: impl Into<Name<'n>>, ttl: u32, data: RData<'_>) -> Self {
        self.record(Section::Answer, name, dns_class::IN, ttl, data)
    }

    /// Adds an authority RR of class IN.
    pub fn authority<'n>(self, name: impl Into<Name<'n>>, ttl: u32, data: RData<'_>) -> Self {
        self.record(Section::Authority, name, dns_class::IN, ttl, data)
    }

    /// Adds an additional RR of class IN.
    pub fn additional<'n>(self, name: impl Into<Name<'n>>, ttl: u32, data: RData<'_>) -> Self {
        self.record(Section::Additional, name, dns_class::IN, ttl, data)
    }

    /// Adds an EDNS(0) OPT pseudo-RR to the additional section: UDP payload
    /// size, extended RCODE (upper 8 bits), version, DO bit and raw option bytes.
    pub fn opt(self, udp_size: u16, ext_rcode: u8, version: u8, dnssec_ok: bool, options: &[u8]) -> Self {
        let ttl = u32::from(ext_rcode) << 24 | u32::from(version) << 16 | u32::from(dnssec_ok) << 15;
        self.record(
            Section::Additional,
            Name::Text(""),
            udp_size,
            ttl,
            RData::Raw { rtype: dns_type::OPT, data: options },
        )
    }

    /// Adds a resource record to any section, with any class.
    ///
    /// # Panics
    /// If `section` is the question section or comes before one already written.
    pub fn record<'n>(
        mut self,
        section: Section,
        name: impl Into<Name<'n>>,
        rclass: u16,
        ttl: u32,
        data: RData<'_>,
    ) -> Self {
        assert!(section != Section::Question, "DnsBuilder: use question() for questions");
        self.enter(section);
        self.write_name(name.into());
        self.buf.extend_from_slice(&data.rtype().to_be_bytes());
        self.buf.extend_from_slice(&rclass.to_be_bytes());
        self.buf.extend_from_slice(&ttl.to_be_bytes());
        let rdlen_at = self.buf.len();
        self.buf.extend_from_slice(&[0, 0]);
        match data {
            RData::A(a) => self.buf.extend_from_slice(&a.octets()),
            RData::Aaaa(a) => self.buf.extend_from_slice(&a.octets()),
            RData::Cname(n) | RData::Ns(n) | RData::Ptr(n) => self.write_name(n),
            RData::Mx { preference, exchange } => {
                self.buf.extend_from_slice(&preference.to_be_bytes());
                self.write_name(exchange);
            }
            RData::Txt(strings) => {
                for s in strings {
                    let len = u8::try_from(s.len()).expect("DnsBuilder: TXT string longer than 255 bytes");
                    self.buf.push(len);
                    self.buf.extend_from_slice(s);
                }
            }
            RData::Soa { mname, rname, serial, refresh, retry, expire, minimum } => {
                self.write_name(mname);
                self.write_name(rname);
                for v in [serial, refresh, retry, expire, minimum] {
                    self.buf.extend_from_slice(&v.to_be_bytes());
                }
            }
            RData::Srv { priority, weight, port, target } => {
                for v in [priority, weight, port] {
                    self.buf.extend_from_slice(&v.to_be_bytes());
                }
                self.write_name(target);
            }
            RData::Null(d) | RData::Raw { data: d, .. } => self.buf.extend_from_slice(d),
        }
        let rdlen = u16::try_from(self.buf.len() - rdlen_at - 2).expect("DnsBuilder: RDATA longer than 65535 bytes");
        self.buf[rdlen_at..rdlen_at + 2].copy_from_slice(&rdlen.to_be_bytes());
        self
    }

    /// Writes the header counts (and the TCP length prefix); returns the
    /// message length (without the prefix).
    pub fn finish(self) -> usize {
        let counts = self.counts_override.unwrap_or(self.counts);
        for (i, c) in counts.iter().enumerate() {
            let at = self.start + 4 + 2 * i;
            self.buf[at..at + 2].copy_from_slice(&c.to_be_bytes());
        }
        let len = self.buf.len() - self.start;
        if let Some(p) = self.prefix {
            let l = u16::try_from(len).unwrap_or(u16::MAX);
            self.buf[p..p + 2].copy_from_slice(&l.to_be_bytes());
        }
        len
    }

    fn enter(&mut self, section: Section) {
        assert!(section >= self.section, "DnsBuilder: {section:?} record after a {:?} record", self.section);
        self.section = section;
        let c = &mut self.counts[section as usize];
        *c = c.wrapping_add(1);
    }

    fn write_name(&mut self, name: Name<'_>) {
        let mut labels: [&[u8]; MAX_LABELS] = [&[]; MAX_LABELS];
        let n = match name {
            Name::Wire(w) => {
                self.buf.extend_from_slice(w);
                return;
            }
            Name::Text(s) => {
                let mut n = 0;
                for l in s.split('.').filter(|l| !l.is_empty()) {
                    assert!(n < MAX_LABELS, "DnsBuilder: more than {MAX_LABELS} labels");
                    labels[n] = l.as_bytes();
                    n += 1;
                }
                n
            }
            Name::Labels(ls) => {
                assert!(ls.len() <= MAX_LABELS, "DnsBuilder: more than {MAX_LABELS} labels");
                labels[..ls.len()].copy_from_slice(ls);
                ls.len()
            }
        };
        let (keep, pointer) = match (self.compress, self.qname) {
            (true, Some(q)) => self.suffix_match(&labels[..n], q),
            _ => (n, None),
        };
        for l in &labels[..keep] {
            assert!(l.len() <= 63, "DnsBuilder: label longer than 63 bytes");
            self.buf.push(l.len() as u8);
            self.buf.extend_from_slice(l);
        }
        match pointer {
            Some(p) => self.buf.extend_from_slice(&(0xc000 | p).to_be_bytes()),
            None => self.buf.push(0),
        }
    }

    /// Finds the longest suffix of `labels` equal (ASCII case-insensitively)
    /// to a suffix of the question name at `q`; returns how many leading
    /// labels to write and the message offset to point at.
    fn suffix_match(&self, labels: &[&[u8]], q: usize) -> (usize, Option<u16>) {
        // Offsets of the question name's labels (it was written uncompressed).
        let mut offs = [0usize; MAX_LABELS];
        let mut qn = 0;
        let mut p = q;
        while qn < MAX_LABELS && p < self.buf.len() && self.buf[p] != 0 && self.buf[p] < 64 {
            offs[qn] = p;
            qn += 1;
            p += 1 + usize::from(self.buf[p]);
        }
        let n = labels.len();
        for i in 0..n {
            let k = n - i; // suffix length
            if k > qn {
                continue;
            }
            let matches = (0..k).all(|j| {
                let o = offs[qn - k + j];
                let ql = &self.buf[o + 1..o + 1 + usize::from(self.buf[o])];
                ql.eq_ignore_ascii_case(labels[i + j])
            });
            let target = offs[qn - k] - self.start;
            if matches && target < 0x4000 {
                return (i, Some(target as u16));
            }
        }
        (n, None)
    }
}

/// Appends `msg` to `out` with the 2-byte length prefix of DNS over TCP.
pub fn dns_tcp_frame(msg: &[u8], out: &mut Vec<u8>) {
    let len = u16::try_from(msg.len()).unwrap_or(u16::MAX);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(msg);
}

// ---------------------------------------------------------------------------
// Capture writers
// ---------------------------------------------------------------------------

const NS_PER_SEC: i64 = 1_000_000_000;

/// Classic pcap magic with nanosecond timestamps.
pub const PCAP_MAGIC_NANOS: u32 = 0xa1b2_3c4d;
/// Classic pcap magic with microsecond timestamps.
pub const PCAP_MAGIC_MICROS: u32 = 0xa1b2_c3d4;

/// Options of a classic pcap file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PcapOptions {
    /// Link type ([`linktype`]).
    pub linktype: u32,
    /// Snapshot length: recorded in the header, and packets are cut to it.
    pub snaplen: u32,
    /// Nanosecond timestamps (magic 0xa1b23c4d) rather than microseconds.
    pub nanosecond: bool,
    /// Write big-endian (to exercise readers' byte swapping).
    pub big_endian: bool,
}

impl Default for PcapOptions {
    /// Ethernet, snaplen 262144, nanoseconds, little-endian.
    fn default() -> Self {
        PcapOptions { linktype: linktype::ETHERNET, snaplen: 262_144, nanosecond: true, big_endian: false }
    }
}

fn split_ts(ts_ns: i64) -> io::Result<(u32, u32)> {
    let secs = u32::try_from(ts_ns.div_euclid(NS_PER_SEC)).map_err(|_| {
        io::Error::new(io::ErrorKind::InvalidInput, format!("timestamp {ts_ns} ns outside the pcap range"))
    })?;
    Ok((secs, ts_ns.rem_euclid(NS_PER_SEC) as u32))
}

/// Writes a classic pcap file.
#[derive(Debug)]
pub struct PcapWriter<W: Write> {
    out: W,
    opts: PcapOptions,
    packets: u64,
}

impl<W: Write> PcapWriter<W> {
    /// Writes a file header: nanosecond magic, little-endian, snaplen 262144.
    pub fn new(out: W, linktype: u32) -> io::Result<Self> {
        PcapWriter::with_options(out, PcapOptions { linktype, ..PcapOptions::default() })
    }

    /// Writes a file header with the given options.
    pub fn with_options(mut out: W, opts: PcapOptions) -> io::Result<Self> {
        let magic = if opts.nanosecond { PCAP_MAGIC_NANOS } else { PCAP_MAGIC_MICROS };
        let mut hdr = [0u8; 24];
        let words: [u32; 6] = [magic, 0, 0, 0, opts.snaplen, opts.linktype];
        for (i, w) in words.iter().enumerate() {
            let b = if opts.big_endian { w.to_be_bytes() } else { w.to_le_bytes() };
            hdr[i * 4..i * 4 + 4].copy_from_slice(&b);
        }
        // Version 2.4 overwrites the second word (two u16s).
        let (maj, min) = if opts.big_endian {
            (2u16.to_be_bytes(), 4u16.to_be_bytes())
        } else {
            (2u16.to_le_bytes(), 4u16.to_le_bytes())
        };
        hdr[4..6].copy_from_slice(&maj);
        hdr[6..8].copy_from_slice(&min);
        out.write_all(&hdr)?;
        Ok(PcapWriter { out, opts, packets: 0 })
    }

    /// Appends one packet captured whole (cut to the snaplen if longer).
    pub fn write_packet(&mut self, ts_ns: i64, data: &[u8]) -> io::Result<()> {
        self.write_packet_with_orig_len(ts_ns, data, u32::try_from(data.len()).unwrap_or(u32::MAX))
    }

    /// Appends one packet whose original length on the wire was `orig_len`
    /// (a truncated capture has `orig_len > data.len()`). The value is written
    /// as given, even if smaller than the captured length.
    ///
    /// Errors: `InvalidInput` for timestamps before 1970 or after 2106.
    pub fn write_packet_with_orig_len(&mut self, ts_ns: i64, data: &[u8], orig_len: u32) -> io::Result<()> {
        let (secs, frac_ns) = split_ts(ts_ns)?;
        let frac = if self.opts.nanosecond { frac_ns } else { frac_ns / 1000 };
        let caplen = data.len().min(self.opts.snaplen as usize);
        let mut rec = [0u8; 16];
        for (i, w) in [secs, frac, caplen as u32, orig_len].iter().enumerate() {
            let b = if self.opts.big_endian { w.to_be_bytes() } else { w.to_le_bytes() };
            rec[i * 4..i * 4 + 4].copy_from_slice(&b);
        }
        self.out.write_all(&rec)?;
        self.out.write_all(&data[..caplen])?;
        self.packets += 1;
        Ok(())
    }

    /// Packets written so far.
    pub fn packets(&self) -> u64 {
        self.packets
    }

    /// The underlying writer.
    pub fn get_ref(&self) -> &W {
        &self.out
    }

    /// Flushes the underlying writer.
    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    /// Flushes and returns the underlying writer.
    pub fn into_inner(mut self) -> io::Result<W> {
        self.out.flush()?;
        Ok(self.out)
    }
}

/// Writes a minimal little-endian pcapng file: one Section Header Block, one
/// Interface Description Block (`if_tsresol` = 9, nanoseconds) and Enhanced
/// Packet Blocks.
#[derive(Debug)]
pub struct PcapngWriter<W: Write> {
    out: W,
    snaplen: u32,
    packets: u64,
}

impl<W: Write> PcapngWriter<W> {
    /// Writes the SHB and the IDB (snaplen 262144).
    pub fn new(out: W, linktype: u32) -> io::Result<Self> {
        PcapngWriter::with_snaplen(out, linktype, 262_144)
    }

    /// Writes the SHB and the IDB with the given snaplen (packets are cut to it).
    pub fn with_snaplen(mut out: W, linktype: u32, snaplen: u32) -> io::Result<Self> {
        let mut b = Vec::with_capacity(64);
        // SHB: type, length, byte-order magic, version 1.0, section length unknown.
        b.extend_from_slice(&0x0a0d_0d0au32.to_le_bytes());
        b.extend_from_slice(&28u32.to_le_bytes());
        b.extend_from_slice(&0x1a2b_3c4du32.to_le_bytes());
        b.extend_from_slice(&1u16.to_le_bytes());
        b.extend_from_slice(&0u16.to_le_bytes());
        b.extend_from_slice(&(-1i64).to_le_bytes());
        b.extend_from_slice(&28u32.to_le_bytes());
        // IDB: link type, reserved, snaplen, if_tsresol=9 (padded), opt_endofopt.
        let link = u16::try_from(linktype)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "pcapng link types are 16-bit"))?;
        b.extend_from_slice(&1u32.to_le_bytes());
        b.extend_from_slice(&32u32.to_le_bytes());
        b.extend_from_slice(&link.to_le_bytes());
        b.extend_from_slice(&0u16.to_le_bytes());
        b.extend_from_slice(&snaplen.to_le_bytes());
        b.extend_from_slice(&9u16.to_le_bytes());
        b.extend_from_slice(&1u16.to_le_bytes());
        b.extend_from_slice(&[9, 0, 0, 0]);
        b.extend_from_slice(&[0, 0, 0, 0]);
        b.extend_from_slice(&32u32.to_le_bytes());
        out.write_all(&b)?;
        Ok(PcapngWriter { out, snaplen, packets: 0 })
    }

    /// Appends one packet captured whole (cut to the snaplen if longer).
    pub fn write_packet(&mut self, ts_ns: i64, data: &[u8]) -> io::Result<()> {
        self.write_packet_with_orig_len(ts_ns, data, u32::try_from(data.len()).unwrap_or(u32::MAX))
    }

    /// Appends one Enhanced Packet Block with the given original length.
    ///
    /// Errors: `InvalidInput` for negative timestamps.
    pub fn write_packet_with_orig_len(&mut self, ts_ns: i64, data: &[u8], orig_len: u32) -> io::Result<()> {
        let ts = u64::try_from(ts_ns)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, format!("timestamp {ts_ns} ns before 1970")))?;
        let caplen = data.len().min(self.snaplen as usize);
        let padded = (caplen + 3) & !3;
        let total = (32 + padded) as u32;
        let mut hdr = [0u8; 28];
        for (i, w) in [6u32, total, 0, (ts >> 32) as u32, ts as u32, caplen as u32, orig_len].iter().enumerate() {
            hdr[i * 4..i * 4 + 4].copy_from_slice(&w.to_le_bytes());
        }
        self.out.write_all(&hdr)?;
        self.out.write_all(&data[..caplen])?;
        self.out.write_all(&[0u8; 3][..padded - caplen])?;
        self.out.write_all(&total.to_le_bytes())?;
        self.packets += 1;
        Ok(())
    }

    /// Packets written so far.
    pub fn packets(&self) -> u64 {
        self.packets
    }

    /// Flushes and returns the underlying writer.
    pub fn into_inner(mut self) -> io::Result<W> {
        self.out.flush()?;
        Ok(self.out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAC_A: Mac = [0x02, 0, 0, 0, 0, 0x0a];
    const MAC_B: Mac = [0x02, 0, 0, 0, 0, 0x0b];

    fn v4(s: &str) -> Ipv4Addr {
        s.parse().expect("test address")
    }

    fn v6(s: &str) -> Ipv6Addr {
        s.parse().expect("test address")
    }

    /// Textbook RFC 1071 sum over 16-bit words, independent of `checksum_add`.
    fn ref_sum(parts: &[&[u8]]) -> u16 {
        let mut all = Vec::new();
        for p in parts {
            all.extend_from_slice(p);
        }
        if all.len() % 2 == 1 {
            all.push(0);
        }
        let mut sum: u32 = 0;
        for w in all.chunks(2) {
            sum += u32::from(w[0]) << 8 | u32::from(w[1]);
            sum = (sum & 0xffff) + (sum >> 16);
        }
        sum as u16
    }

    /// Pseudo-header + segment must sum to 0xffff for a correct checksum.
    fn verify_v4_transport(pkt: &[u8], ip_off: usize, proto: u8) {
        let ihl = usize::from(pkt[ip_off] & 0xf) * 4;
        let total = usize::from(u16::from_be_bytes([pkt[ip_off + 2], pkt[ip_off + 3]]));
        let seg = &pkt[ip_off + ihl..ip_off + total];
        let len = (seg.len() as u16).to_be_bytes();
        let pseudo = [&pkt[ip_off + 12..ip_off + 20], &[0, proto], &len[..], seg];
        assert_eq!(ref_sum(&pseudo), 0xffff, "transport checksum over IPv4 pseudo-header");
    }

    #[test]
    fn rfc1071_example_and_reference_agree() {
        // RFC 1071 §3: the words 0001 f203 f4f5 f6f7 sum to ddf2.
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(checksum_fold(checksum_add(0, &data)), 0xddf2);
        assert_eq!(internet_checksum(&data), !0xddf2);
        // Every length 0..200 (odd remainders included) against the textbook loop.
        let mut x: u32 = 12345;
        let bytes: Vec<u8> = (0..200)
            .map(|_| {
                x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
                (x >> 16) as u8
            })
            .collect();
        for n in 0..bytes.len() {
            assert_eq!(checksum_fold(checksum_add(0, &bytes[..n])), ref_sum(&[&bytes[..n]]), "length {n}");
        }
    }

    #[test]
    fn ipv4_header_matches_known_vector() {
        // The classic example header (Wikipedia "IPv4 header checksum"):
        // 4500 0073 0000 4000 4011 b861 c0a8 0001 c0a8 00c7.
        let mut buf = Vec::new();
        let len = PacketBuilder::new(&mut buf)
            .ipv4(Ipv4::new(v4("192.168.0.1"), v4("192.168.0.199")))
            .udp(Udp::new(1000, 2000))
            .payload(&[0u8; 0x73 - 28])
            .finish();
        assert_eq!(len, 0x73);
        let want = [
            0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0xb8, 0x61, 0xc0, 0xa8, 0x00, 0x01, 0xc0, 0xa8,
            0x00, 0xc7,
        ];
        assert_eq!(&buf[..20], &want);
        assert_eq!(ref_sum(&[&buf[..20]]), 0xffff);
        verify_v4_transport(&buf, 0, ip_proto::UDP);
        assert_eq!(&buf[24..26], &[0x00, 0x5f]); // UDP length 0x73 - 20
    }

    #[test]
    fn tcp_checksum_and_options() {
        let mut buf = Vec::new();
        let opts = [2, 4, 0x05, 0xb4, 1, 3, 3, 8, 4, 2]; // 10 bytes -> padded to 12
        PacketBuilder::new(&mut buf)
            .ethernet(MAC_B, MAC_A)
            .ipv4(Ipv4 { ttl: 7, id: 0x1234, ..Ipv4::new(v4("10.0.0.1"), v4("10.0.0.2")) })
            .tcp(Tcp { seq: 0xdeadbeef, ack: 5, options: &opts, ..Tcp::new(40000, 443, tcp_flags::SYN) })
            .payload(b"abc")
            .finish();
        assert_eq!(&buf[12..14], &[0x08, 0x00]);
        assert_eq!(buf[14 + 8], 7);
        assert_eq!(buf[14 + 9], ip_proto::TCP);
        assert_eq!(buf[34 + 12] >> 4, 8); // data offset 32 bytes
        assert_eq!(buf.len(), 14 + 20 + 32 + 3);
        verify_v4_transport(&buf, 14, ip_proto::TCP);
        assert_eq!(ref_sum(&[&buf[14..34]]), 0xffff);
    }

    #[test]
    fn explicit_overrides_are_written() {
        let mut buf = Vec::new();
        PacketBuilder::new(&mut buf)
            .ipv4(Ipv4 { checksum: Some(0xbeef), total_len: Some(9999), ..Ipv4::new(v4("1.2.3.4"), v4("5.6.7.8")) })
            .udp(Udp { checksum: Some(0), length: Some(3), ..Udp::new(1, 2) })
            .finish();
        assert_eq!(&buf[2..4], &9999u16.to_be_bytes());
        assert_eq!(&buf[10..12], &[0xbe, 0xef]);
        assert_eq!(&buf[24..28], &[0, 3, 0, 0]);
    }

    #[test]
    fn vlan_stack_and_mpls_link_types() {
        let mut buf = Vec::new();
        PacketBuilder::new(&mut buf)
            .ethernet(MAC_B, MAC_A)
            .qinq(100)
            .vlan_tag(ETHERTYPE_VLAN, 5, true, 200)
            .mpls(1000, 0, 64)
            .mpls(2000, 1, 63)
            .ip(IpAddr::V4(v4("10.0.0.1")), IpAddr::V4(v4("10.0.0.2")))
            .icmp(Icmp::echo_request(1, 2))
            .finish();
        assert_eq!(&buf[12..14], &[0x88, 0xa8]);
        assert_eq!(&buf[14..16], &100u16.to_be_bytes());
        assert_eq!(&buf[16..18], &[0x81, 0x00]);
        assert_eq!(u16::from_be_bytes([buf[18], buf[19]]), 5 << 13 | 1 << 12 | 200);
        assert_eq!(&buf[20..22], &[0x88, 0x47]);
        let l1 = u32::from_be_bytes([buf[22], buf[23], buf[24], buf[25]]);
        let l2 = u32::from_be_bytes([buf[26], buf[27], buf[28], buf[29]]);
        assert_eq!((l1 >> 12, l1 >> 8 & 1, l1 & 0xff), (1000, 0, 64));
        assert_eq!((l2 >> 12, l2 >> 9 & 7, l2 >> 8 & 1, l2 & 0xff), (2000, 1, 1, 63));
        assert_eq!(buf[30] >> 4, 4);
        assert_eq!(ref_sum(&[&buf[50..]]), 0xffff); // ICMP checksum
        assert_eq!(buf[50], 8);
    }

    #[test]
    fn ipv6_extension_chain_and_final_destination() {
        let src = v6("2001:db8::1");
        let dst = v6("2001:db8::2");
        let fin = v6("2001:db8::99");
        let mut buf = Vec::new();
        PacketBuilder::new(&mut buf)
            .ipv6(Ipv6::new(src, dst))
            .ipv6_hop_by_hop(&[5, 2, 0, 0]) // router alert
            .ipv6_dest_options(&[])
            .ipv6_routing(0, 1, &[fin])
            .udp(Udp::new(5353, 53))
            .payload(b"hello")
            .finish();
        assert_eq!(buf[6], ip_proto::HOPOPT);
        assert_eq!((buf[40], buf[41]), (ip_proto::DSTOPTS, 0));
        assert_eq!(&buf[46..48], &[1, 0]); // PadN of 2 bytes
        assert_eq!((buf[48], buf[49]), (ip_proto::ROUTING, 0));
        assert_eq!(&buf[50..56], &[1, 4, 0, 0, 0, 0]); // PadN of 6 bytes
        assert_eq!((buf[56], buf[57], buf[58], buf[59]), (ip_proto::UDP, 2, 0, 1));
        let udp = &buf[80..];
        assert_eq!(u16::from_be_bytes([buf[4], buf[5]]) as usize, buf.len() - 40);
        let len = (udp.len() as u32).to_be_bytes();
        // Checksum uses the routing header's final destination, not the IPv6 dst.
        let sum = ref_sum(&[&src.octets(), &fin.octets(), &len, &[0, 0, 0, ip_proto::UDP], udp]);
        assert_eq!(sum, 0xffff);
    }

    #[test]
    fn fragments_and_raw_protocols() {
        let mut buf = Vec::new();
        PacketBuilder::new(&mut buf)
            .ipv6(Ipv6::new(v6("2001:db8::1"), v6("2001:db8::2")))
            .ipv6_fragment(185, true, 0xabcdef01)
            .ip_protocol(ip_proto::UDP)
            .payload(&[1; 16])
            .finish();
        assert_eq!(buf[6], ip_proto::FRAGMENT);
        assert_eq!(buf[40], ip_proto::UDP);
        assert_eq!(u16::from_be_bytes([buf[42], buf[43]]), 185 << 3 | 1);
        assert_eq!(&buf[44..48], &0xabcdef01u32.to_be_bytes());

        PacketBuilder::new(&mut buf)
            .ipv4(Ipv4 {
                more_fragments: true,
                dont_fragment: false,
                fragment_offset: 3,
                ..Ipv4::new(v4("1.1.1.1"), v4("2.2.2.2"))
            })
            .ip_protocol(253)
            .payload(&[7; 9])
            .finish();
        assert_eq!(&buf[6..8], &(1u16 << 13 | 3).to_be_bytes());
        assert_eq!(buf[9], 253);
        assert_eq!(buf.len(), 29);
    }

    #[test]
    fn cooked_and_loopback_headers() {
        let mut buf = Vec::new();
        PacketBuilder::new(&mut buf).sll(0, 1, &MAC_A).ipv4(Ipv4::new(v4("1.1.1.1"), v4("2.2.2.2"))).finish();
        assert_eq!(&buf[..6], &[0, 0, 0, 1, 0, 6]);
        assert_eq!(&buf[14..16], &[0x08, 0x00]);
        PacketBuilder::new(&mut buf).sll2(3, 4, 1, &MAC_A).ipv6(Ipv6::new(v6("::1"), v6("::2"))).finish();
        assert_eq!(&buf[..2], &[0x86, 0xdd]);
        assert_eq!(&buf[4..8], &3u32.to_be_bytes());
        assert_eq!((buf[10], buf[11]), (4, 6));
        assert_eq!(buf[20] >> 4, 6);
        PacketBuilder::new(&mut buf).loopback(false).ipv4(Ipv4::new(v4("127.0.0.1"), v4("127.0.0.1"))).finish();
        assert_eq!(&buf[..4], &[2, 0, 0, 0]);
        PacketBuilder::new(&mut buf).loopback(true).ipv6(Ipv6::new(v6("::1"), v6("::1"))).finish();
        assert_eq!(&buf[..4], &[0, 0, 0, 24]);
    }

    #[test]
    fn tunnels_are_patched_inside_out() {
        let mut buf = Vec::new();
        PacketBuilder::new(&mut buf)
            .ethernet(MAC_B, MAC_A)
            .ipv4(Ipv4::new(v4("192.0.2.1"), v4("192.0.2.2")))
            .udp(Udp::new(50000, 4789))
            .vxlan(42)
            .ethernet(MAC_A, MAC_B)
            .ipv4(Ipv4::new(v4("10.0.0.1"), v4("10.0.0.2")))
            .tcp(Tcp::new(1, 2, tcp_flags::ACK))
            .payload(b"inner")
            .finish_padded(60);
        let outer_len = u16::from_be_bytes([buf[16], buf[17]]) as usize;
        assert_eq!(outer_len, buf.len() - 14);
        verify_v4_transport(&buf, 14, ip_proto::UDP);
        let inner = 14 + 20 + 8 + 8 + 14;
        assert_eq!(&buf[inner - 2..inner], &[0x08, 0x00]);
        verify_v4_transport(&buf, inner, ip_proto::TCP);

        PacketBuilder::new(&mut buf)
            .ipv4(Ipv4::new(v4("192.0.2.1"), v4("192.0.2.2")))
            .gre()
            .ipv6(Ipv6::new(v6("2001:db8::1"), v6("2001:db8::2")))
            .icmpv6(Icmp::echo6_request(1, 1))
            .finish();
        assert_eq!(buf[9], ip_proto::GRE);
        assert_eq!(&buf[22..24], &[0x86, 0xdd]);
        assert_eq!(buf[24 + 6], ip_proto::ICMPV6);

        // Short frames are padded, IP length unchanged.
        let n = PacketBuilder::new(&mut buf)
            .ethernet(MAC_B, MAC_A)
            .ipv4(Ipv4::new(v4("10.0.0.1"), v4("10.0.0.2")))
            .tcp(Tcp::new(1, 2, tcp_flags::ACK))
            .finish_padded(60);
        assert_eq!(n, 60);
        assert_eq!(u16::from_be_bytes([buf[16], buf[17]]), 40);
    }

    #[test]
    fn dns_query_bytes() {
        let mut msg = Vec::new();
        let n = DnsBuilder::new(&mut msg, DnsHeader::query(0x1234))
            .question("example.com.", dns_type::A, dns_class::IN)
            .finish();
        let want: &[u8] = b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x07example\x03com\x00\x00\x01\x00\x01";
        assert_eq!(msg, want);
        assert_eq!(n, want.len());
    }

    #[test]
    fn dns_compression_and_records() {
        let mut msg = Vec::new();
        let txt: &[&[u8]] = &[b"v=spf1 -all", b""];
        DnsBuilder::new(&mut msg, DnsHeader { aa: true, ..DnsHeader::response(1, dns_rcode::NOERROR) })
            .compress(true)
            .question("www.Example.com", dns_type::A, dns_class::IN)
            .answer("www.example.com", 60, RData::Cname(Name::Text("cdn.example.com")))
            .answer("cdn.example.com", 60, RData::A(v4("192.0.2.7")))
            .answer("other.test", 60, RData::Txt(txt))
            .authority("example.com", 60, RData::Ns(Name::Text("ns1.example.com")))
            .opt(1232, 0, 0, true, &[])
            .finish();
        assert_eq!(u16::from_be_bytes([msg[2], msg[3]]), 0x8580);
        assert_eq!(&msg[4..12], &[0, 1, 0, 3, 0, 1, 0, 1]);
        let q_end = 12 + 17 + 4;
        // Answer 1: owner is a pointer to the question (offset 12).
        assert_eq!(&msg[q_end..q_end + 2], &[0xc0, 12]);
        // Its RDATA "cdn" + pointer to "example.com" (offset 16).
        let rd = q_end + 2 + 10;
        assert_eq!(&msg[rd - 2..rd], &6u16.to_be_bytes());
        assert_eq!(&msg[rd..rd + 6], b"\x03cdn\xc0\x10");
        // Answer 2 owner: "cdn" + pointer again.
        assert_eq!(&msg[rd + 6..rd + 12], b"\x03cdn\xc0\x10");
        // The unrelated name is written in full.
        assert!(msg.windows(12).any(|w| w == b"\x05other\x04test\x00"));
        // OPT at the end: root name, type 41, class 1232, DO bit.
        let opt = &msg[msg.len() - 11..];
        assert_eq!(opt, &[0, 0, 41, 0x04, 0xd0, 0, 0, 0x80, 0, 0, 0]);
    }

    #[test]
    fn dns_raw_labels_and_tcp_framing() {
        let labels: &[&[u8]] = &[b"a.b", b"\x00\xff", b"test"];
        let mut buf = vec![0xee]; // builder appends after existing bytes
        DnsBuilder::new_tcp(&mut buf, DnsHeader::query(9))
            .question(Name::Labels(labels), dns_type::TXT, dns_class::IN)
            .finish();
        assert_eq!(buf[0], 0xee);
        let len = usize::from(u16::from_be_bytes([buf[1], buf[2]]));
        assert_eq!(len, buf.len() - 3);
        assert_eq!(&buf[15..28], b"\x03a.b\x02\x00\xff\x04test\x00");
        let mut framed = Vec::new();
        dns_tcp_frame(&buf[3..], &mut framed);
        assert_eq!(framed, buf[1..]);
    }

    #[test]
    #[should_panic(expected = "Answer record after a Additional")]
    fn dns_sections_must_be_in_order() {
        let mut msg = Vec::new();
        let _ = DnsBuilder::new(&mut msg, DnsHeader::query(1)).opt(512, 0, 0, false, &[]).answer(
            "x",
            1,
            RData::A(Ipv4Addr::LOCALHOST),
        );
    }

    #[test]
    #[should_panic(expected = "needs an IP layer")]
    fn tcp_without_ip_panics() {
        let mut buf = Vec::new();
        let _ = PacketBuilder::new(&mut buf).ethernet(MAC_A, MAC_B).tcp(Tcp::new(1, 2, 0));
    }

    #[test]
    fn pcap_header_and_records() {
        let mut w =
            PcapWriter::with_options(Vec::new(), PcapOptions { snaplen: 4, ..PcapOptions::default() }).expect("vec");
        w.write_packet(1_500_000_000_123_456_789, &[1, 2, 3, 4, 5, 6]).expect("vec");
        w.write_packet_with_orig_len(5, &[9], 100).expect("vec");
        assert!(w.write_packet(-1, &[]).is_err());
        assert_eq!(w.packets(), 2);
        let out = w.into_inner().expect("vec");
        assert_eq!(&out[..4], &[0x4d, 0x3c, 0xb2, 0xa1]);
        assert_eq!(&out[4..8], &[2, 0, 4, 0]);
        assert_eq!(&out[16..24], &[4, 0, 0, 0, 1, 0, 0, 0]);
        let rec = &out[24..];
        assert_eq!(&rec[0..4], &1_500_000_000u32.to_le_bytes());
        assert_eq!(&rec[4..8], &123_456_789u32.to_le_bytes());
        assert_eq!(&rec[8..16], &[4, 0, 0, 0, 6, 0, 0, 0]);
        assert_eq!(&rec[16..20], &[1, 2, 3, 4]);
        assert_eq!(&rec[28..36], &[1, 0, 0, 0, 100, 0, 0, 0]);
        assert_eq!(out.len(), 24 + 20 + 17);

        let w = PcapWriter::with_options(
            Vec::new(),
            PcapOptions { big_endian: true, nanosecond: false, ..PcapOptions::default() },
        );
        let out = w.expect("vec").into_inner().expect("vec");
        assert_eq!(&out[..8], &[0xa1, 0xb2, 0xc3, 0xd4, 0, 2, 0, 4]);
    }

    #[test]
    fn pcapng_blocks() {
        let mut w = PcapngWriter::new(Vec::new(), linktype::RAW).expect("vec");
        w.write_packet(0x1_0000_0002, &[1, 2, 3, 4, 5]).expect("vec");
        let out = w.into_inner().expect("vec");
        assert_eq!(&out[..4], &[0x0a, 0x0d, 0x0d, 0x0a]);
        assert_eq!(&out[8..12], &[0x4d, 0x3c, 0x2b, 0x1a]);
        let idb = &out[28..60];
        assert_eq!(&idb[..4], &1u32.to_le_bytes());
        assert_eq!(&idb[8..10], &101u16.to_le_bytes());
        assert_eq!(&idb[16..21], &[9, 0, 1, 0, 9]);
        let epb = &out[60..];
        assert_eq!(epb.len(), 40);
        assert_eq!(&epb[4..8], &40u32.to_le_bytes());
        assert_eq!(&epb[12..20], &[1, 0, 0, 0, 2, 0, 0, 0]);
        assert_eq!(&epb[20..28], &[5, 0, 0, 0, 5, 0, 0, 0]);
        assert_eq!(&epb[36..40], &40u32.to_le_bytes());
    }

    /// Runs `tshark -V` with checksum validation on; `None` when tshark is absent.
    fn tshark_verbose(path: &std::path::Path) -> Option<String> {
        let out = std::process::Command::new("tshark")
            .args(["-o", "ip.check_checksum:TRUE", "-o", "tcp.check_checksum:TRUE", "-o", "udp.check_checksum:TRUE"])
            .arg("-r")
            .arg(path)
            .arg("-V")
            .output();
        match out {
            Ok(o) => {
                assert!(
                    o.status.success(),
                    "tshark failed on {}: {}",
                    path.display(),
                    String::from_utf8_lossy(&o.stderr)
                );
                Some(String::from_utf8_lossy(&o.stdout).into_owned())
            }
            Err(e) => {
                println!("skipping tshark check: cannot run tshark ({e})");
                None
            }
        }
    }

    fn assert_clean(text: &str, frames: usize, what: &str) {
        for bad in ["Malformed", "incorrect", "Checksum Status: Bad"] {
            if let Some(i) = text.find(bad) {
                let from = text[..i].rfind("\nFrame ").unwrap_or(0);
                panic!("{what}: tshark reports {bad:?}:\n{}", &text[from..(i + 300).min(text.len())]);
            }
        }
        let n = text.lines().filter(|l| l.starts_with("Frame ")).count();
        assert_eq!(n, frames, "{what}: frame count");
    }

    /// One packet of every kind the builder makes, in an Ethernet pcap.
    fn ethernet_corpus() -> Vec<Vec<u8>> {
        let mut pkts = Vec::new();
        let mut b = Vec::new();
        let (c4, s4) = (v4("10.1.0.5"), v4("192.0.2.53"));
        let (c6, s6) = (v6("2001:db8:1::5"), v6("2001:db8:2::53"));
        let syn_opts = [2, 4, 0x05, 0xb4, 1, 3, 3, 8, 4, 2];

        // TCP SYN with options, padded frame.
        PacketBuilder::new(&mut b)
            .ethernet(MAC_B, MAC_A)
            .ipv4(Ipv4 { id: 77, ..Ipv4::new(c4, s4) })
            .tcp(Tcp { seq: 1000, options: &syn_opts, ..Tcp::new(40001, 443, tcp_flags::SYN) })
            .finish_padded(60);
        pkts.push(b.clone());

        // VLAN + DNS query over UDP.
        let mut p =
            PacketBuilder::new(&mut b).ethernet(MAC_B, MAC_A).vlan(20).ipv4(Ipv4::new(c4, s4)).udp(Udp::new(53001, 53));
        DnsBuilder::new(p.payload_buf(), DnsHeader::query(0x0101))
            .question("www.example.com", dns_type::A, dns_class::IN)
            .finish();
        p.finish();
        pkts.push(b.clone());

        // QinQ + DNS response with compression and many RR types.
        let txt: &[&[u8]] = &[b"v=spf1 include:_spf.example.com -all", b"second string"];
        let mut p = PacketBuilder::new(&mut b)
            .ethernet(MAC_A, MAC_B)
            .qinq(300)
            .vlan(20)
            .ipv4(Ipv4::new(s4, c4))
            .udp(Udp::new(53, 53001));
        DnsBuilder::new(p.payload_buf(), DnsHeader::response(0x0101, dns_rcode::NOERROR))
            .compress(true)
            .question("www.example.com", dns_type::A, dns_class::IN)
            .answer("www.example.com", 300, RData::Cname(Name::Text("edge.cdn.example.net")))
            .answer("edge.cdn.example.net", 60, RData::A(v4("192.0.2.80")))
            .answer("example.com", 300, RData::Mx { preference: 10, exchange: Name::Text("mx1.example.com") })
            .answer("example.com", 300, RData::Txt(txt))
            .authority(
                "example.com",
                300,
                RData::Soa {
                    mname: Name::Text("ns1.example.com"),
                    rname: Name::Text("hostmaster.example.com"),
                    serial: 2026112401,
                    refresh: 7200,
                    retry: 900,
                    expire: 1_209_600,
                    minimum: 300,
                },
            )
            .opt(1232, 0, 0, true, &[])
            .finish();
        p.finish();
        pkts.push(b.clone());

        // MPLS stack + ICMP echo with payload.
        PacketBuilder::new(&mut b)
            .ethernet(MAC_B, MAC_A)
            .mpls(16001, 0, 255)
            .mpls(24, 0, 255)
            .ipv4(Ipv4::new(c4, s4))
            .icmp(Icmp::echo_request(0x4242, 1))
            .payload(b"abcdefghijklmnopqrstuvwabcdefghi")
            .finish();
        pkts.push(b.clone());

        // IPv6 TCP with data.
        PacketBuilder::new(&mut b)
            .ethernet(MAC_B, MAC_A)
            .ipv6(Ipv6 { flow_label: 0x12345, ..Ipv6::new(c6, s6) })
            .tcp(Tcp { seq: 5, ack: 9, ..Tcp::new(40002, 80, tcp_flags::PSH | tcp_flags::ACK) })
            .payload(b"GET / HTTP/1.1\r\nHost: www.example.com\r\n\r\n")
            .finish();
        pkts.push(b.clone());

        // IPv6 extension headers + DNS response with AAAA, SRV, NS, PTR, NULL.
        let mut p = PacketBuilder::new(&mut b)
            .ethernet(MAC_A, MAC_B)
            .ipv6(Ipv6::new(s6, c6))
            .ipv6_hop_by_hop(&[])
            .ipv6_dest_options(&[])
            .ipv6_routing(0, 0, &[v6("2001:db8:3::1")])
            .udp(Udp::new(53, 53002));
        DnsBuilder::new(p.payload_buf(), DnsHeader::response(0x0202, dns_rcode::NOERROR))
            .compress(true)
            .question("_ldap._tcp.dc.example.com", dns_type::SRV, dns_class::IN)
            .answer(
                "_ldap._tcp.dc.example.com",
                600,
                RData::Srv { priority: 0, weight: 100, port: 389, target: Name::Text("dc1.example.com") },
            )
            .answer("dc1.example.com", 600, RData::Aaaa(v6("2001:db8::dc1")))
            .answer("example.com", 600, RData::Ns(Name::Text("ns1.example.com")))
            .answer("5.0.1.10.in-addr.arpa", 600, RData::Ptr(Name::Text("ws-0005.example.com")))
            .answer("null.example.com", 0, RData::Null(&[0, 1, 2, 3, 255]))
            .finish();
        p.finish();
        pkts.push(b.clone());

        // Routing header with segments left: the UDP checksum uses the final destination.
        PacketBuilder::new(&mut b)
            .ethernet(MAC_B, MAC_A)
            .ipv6(Ipv6::new(c6, s6))
            .ipv6_routing(2, 1, &[v6("2001:db8:4::99")])
            .udp(Udp::new(5555, 7))
            .payload(b"routed")
            .finish();
        pkts.push(b.clone());

        // ICMPv6 echo.
        PacketBuilder::new(&mut b)
            .ethernet(MAC_B, MAC_A)
            .ipv6(Ipv6::new(c6, s6))
            .icmpv6(Icmp::echo6_request(7, 1))
            .payload(&[0x5a; 24])
            .finish();
        pkts.push(b.clone());

        // IPv4 with options (router alert + NOP padding) over UDP.
        PacketBuilder::new(&mut b)
            .ethernet(MAC_B, MAC_A)
            .ipv4(Ipv4 { options: &[0x94, 0x04, 0x00, 0x00, 0x01], ..Ipv4::new(c4, s4) })
            .udp(Udp::new(5000, 5001))
            .payload(b"options")
            .finish_padded(60);
        pkts.push(b.clone());

        // GRE carrying IPv4/TCP.
        PacketBuilder::new(&mut b)
            .ethernet(MAC_B, MAC_A)
            .ipv4(Ipv4::new(v4("192.0.2.1"), v4("192.0.2.2")))
            .gre()
            .ipv4(Ipv4::new(c4, s4))
            .tcp(Tcp::new(40003, 22, tcp_flags::ACK))
            .payload(b"SSH-2.0-test\r\n")
            .finish();
        pkts.push(b.clone());

        // VXLAN carrying Ethernet/IPv4/UDP DNS.
        let mut p = PacketBuilder::new(&mut b)
            .ethernet(MAC_B, MAC_A)
            .ipv4(Ipv4::new(v4("192.0.2.1"), v4("192.0.2.2")))
            .udp(Udp::new(49152, 4789))
            .vxlan(5001)
            .ethernet(MAC_B, MAC_A)
            .ipv4(Ipv4::new(c4, s4))
            .udp(Udp::new(53003, 53));
        DnsBuilder::new(p.payload_buf(), DnsHeader::query(0x0303))
            .question("inner.example.org", dns_type::AAAA, dns_class::IN)
            .finish();
        p.finish();
        pkts.push(b.clone());

        // IPv4 UDP datagram in two fragments (checksum over the whole datagram).
        let mut whole = Vec::new();
        PacketBuilder::new(&mut whole).ipv4(Ipv4::new(c4, s4)).udp(Udp::new(6000, 6001)).payload(&[0x33; 100]).finish();
        let udp_bytes = whole[20..].to_vec();
        for (off, more, part) in [(0u16, true, &udp_bytes[..64]), (8, false, &udp_bytes[64..])] {
            PacketBuilder::new(&mut b)
                .ethernet(MAC_B, MAC_A)
                .ipv4(Ipv4 {
                    id: 999,
                    dont_fragment: false,
                    more_fragments: more,
                    fragment_offset: off,
                    ..Ipv4::new(c4, s4)
                })
                .ip_protocol(ip_proto::UDP)
                .payload(part)
                .finish();
            pkts.push(b.clone());
        }

        // IPv6 fragments of a UDP datagram.
        PacketBuilder::new(&mut whole).ipv6(Ipv6::new(c6, s6)).udp(Udp::new(6002, 6003)).payload(&[0x44; 90]).finish();
        let udp_bytes = whole[40..].to_vec();
        for (off, more, part) in [(0u16, true, &udp_bytes[..48]), (6, false, &udp_bytes[48..])] {
            PacketBuilder::new(&mut b)
                .ethernet(MAC_B, MAC_A)
                .ipv6(Ipv6::new(c6, s6))
                .ipv6_fragment(off, more, 0x01020304)
                .ip_protocol(ip_proto::UDP)
                .payload(part)
                .finish();
            pkts.push(b.clone());
        }

        // Unknown IP protocol with raw payload.
        PacketBuilder::new(&mut b)
            .ethernet(MAC_B, MAC_A)
            .ipv4(Ipv4::new(c4, s4))
            .ip_protocol(253)
            .payload(b"experimental")
            .finish();
        pkts.push(b.clone());

        // DNS over TCP (length-prefixed) with a binary label.
        let labels: &[&[u8]] = &[b"odd.label", b"bin\x01", b"example", b"com"];
        let mut p = PacketBuilder::new(&mut b).ethernet(MAC_B, MAC_A).ipv4(Ipv4::new(c4, s4)).tcp(Tcp {
            seq: 1,
            ack: 1,
            ..Tcp::new(40004, 53, tcp_flags::PSH | tcp_flags::ACK)
        });
        DnsBuilder::new_tcp(p.payload_buf(), DnsHeader::query(0x0404))
            .question(Name::Labels(labels), dns_type::TXT, dns_class::IN)
            .finish();
        p.finish();
        pkts.push(b.clone());
        pkts
    }

    #[test]
    fn tshark_accepts_every_kind() {
        let dir = tempfile::tempdir().expect("tempdir");
        let eth = ethernet_corpus();
        let path = dir.path().join("eth.pcap");
        let mut w = PcapWriter::new(std::fs::File::create(&path).expect("create"), linktype::ETHERNET).expect("header");
        for (i, p) in eth.iter().enumerate() {
            w.write_packet(1_795_478_400_000_000_000 + i as i64 * 1000, p).expect("write");
        }
        w.into_inner().expect("flush");
        let Some(text) = tshark_verbose(&path) else { return };
        assert_clean(&text, eth.len(), "ethernet corpus");
        for name in [
            "www.example.com",
            "edge.cdn.example.net",
            "mx1.example.com",
            "hostmaster.example.com",
            "_ldap._tcp.dc.example.com",
            "dc1.example.com",
            "ws-0005.example.com",
            "inner.example.org",
            "v=spf1 include:_spf.example.com -all",
        ] {
            assert!(text.contains(name), "tshark output lacks DNS name {name:?}");
        }
        assert!(text.contains("802.1ad"), "QinQ tag not decoded");
        assert!(text.contains("MultiProtocol Label Switching"), "MPLS not decoded");
        assert!(text.contains("Virtual eXtensible Local Area Network"), "VXLAN not decoded");
        assert!(text.contains("[2 IPv4 Fragments (108 bytes)"), "IPv4 fragments not reassembled");
        assert!(text.contains("[2 IPv6 Fragments (98 bytes)"), "IPv6 fragments not reassembled");

        // Other link types, one small file each.
        let mut b = Vec::new();
        let (c4, s4) = (v4("10.1.0.5"), v4("192.0.2.53"));
        let (c6, s6) = (v6("2001:db8:1::5"), v6("2001:db8:2::53"));
        let cases: [(u32, &str); 6] = [
            (linktype::RAW, "raw"),
            (linktype::LINUX_SLL, "sll"),
            (linktype::LINUX_SLL2, "sll2"),
            (linktype::NULL, "null"),
            (linktype::LOOP, "loop"),
            (linktype::IPV6, "ipv6"),
        ];
        for (lt, name) in cases {
            let p = PacketBuilder::new(&mut b);
            let p = match lt {
                linktype::LINUX_SLL => p.sll(4, 1, &MAC_A),
                linktype::LINUX_SLL2 => p.sll2(2, 0, 1, &MAC_A),
                linktype::NULL => p.loopback(false),
                linktype::LOOP => p.loopback(true),
                _ => p,
            };
            let mut p = if matches!(lt, linktype::LOOP | linktype::IPV6 | linktype::LINUX_SLL2) {
                p.ipv6(Ipv6::new(c6, s6))
            } else {
                p.ipv4(Ipv4::new(c4, s4))
            }
            .udp(Udp::new(53100, 53));
            DnsBuilder::new(p.payload_buf(), DnsHeader::query(1))
                .question("linktype.example.com", dns_type::A, dns_class::IN)
                .finish();
            p.finish();
            let path = dir.path().join(format!("{name}.pcap"));
            let mut w = PcapWriter::new(std::fs::File::create(&path).expect("create"), lt).expect("header");
            w.write_packet(1_795_478_400_000_000_000, &b).expect("write");
            w.into_inner().expect("flush");
            let text = tshark_verbose(&path).unwrap_or_default();
            assert_clean(&text, 1, name);
            assert!(text.contains("linktype.example.com"), "{name}: DNS not decoded:\n{text}");
        }

        // pcapng, and a big-endian microsecond pcap, with the Ethernet corpus.
        let path = dir.path().join("eth.pcapng");
        let mut w =
            PcapngWriter::new(std::fs::File::create(&path).expect("create"), linktype::ETHERNET).expect("header");
        for (i, p) in eth.iter().enumerate() {
            w.write_packet(1_795_478_400_000_000_000 + i as i64, p).expect("write");
        }
        w.into_inner().expect("flush");
        assert_clean(&tshark_verbose(&path).unwrap_or_default(), eth.len(), "pcapng");
        let path = dir.path().join("be.pcap");
        let opts = PcapOptions { big_endian: true, nanosecond: false, ..PcapOptions::default() };
        let mut w = PcapWriter::with_options(std::fs::File::create(&path).expect("create"), opts).expect("header");
        for p in &eth {
            w.write_packet(1_795_478_400_000_000_000, p).expect("write");
        }
        w.into_inner().expect("flush");
        assert_clean(&tshark_verbose(&path).unwrap_or_default(), eth.len(), "big-endian pcap");
    }
}

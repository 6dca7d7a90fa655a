//! Decoding one captured frame into what the flow table and DNS extraction
//! need: VLAN, addresses, final protocol, IP length, ports, TCP flags and
//! sequence, fragment position and the transport payload.
//!
//! [`decode`] is the per-packet hot path of offline ingest. It borrows the
//! frame, never allocates, and returns either a [`PacketMeta`] or a one-byte
//! [`SkipReason`] that callers count in a `[u64; SkipReason::COUNT]` array.
//! The walk is bounded by the same limits as the kernel decoder
//! (`OSPREY_MAX_VLAN_TAGS`, `OSPREY_MAX_MPLS_LABELS`,
//! `OSPREY_MAX_IPV6_EXT_HEADERS` from `ebpf/include/osprey_kern_user.h`) so that
//! both paths agree on which packets they account (see `docs/flow-semantics.md`).
//!
//! # What is decoded
//!
//! - Link layers: Ethernet II, IEEE 802.3 with LLC/SNAP, Linux cooked v1 and
//!   v2, raw IP (`LINKTYPE_RAW`, `IPV4`, `IPV6`), BSD `NULL`/`LOOP` loopback
//!   (address families 2 and 24/28/30, in either byte order).
//! - Up to [`MAX_VLAN_TAGS`] 802.1Q / 802.1ad tags (TPIDs 0x8100, 0x88a8 and the
//!   pre-standard 0x9100); [`PacketMeta::vlan`] is the *outermost* VLAN id.
//! - MPLS label stacks (unicast and multicast) of up to [`MAX_MPLS_LABELS`];
//!   after the bottom-of-stack label the payload is taken as IPv4 or IPv6 from
//!   its version nibble (anything else, e.g. a pseudowire, is [`SkipReason::NotIp`]).
//! - PPPoE session frames carrying IPv4 or IPv6.
//! - IPv4 with options; IPv6 with up to [`MAX_IPV6_EXT_HEADERS`] extension
//!   headers (Hop-by-Hop, Routing, Fragment, Destination Options, AH,
//!   Mobility). ESP and No Next Header end the walk and are the protocol.
//!   Tunnels are not decapsulated: GRE, IP-in-IP etc. are the protocol.
//! - Transport: TCP, UDP, UDP-Lite and SCTP ports; ICMP and ICMPv6 put
//!   `type << 8 | code` in `dst_port` and 0 in `src_port` (the NetFlow
//!   convention the flow records use). Other protocols have ports 0/0.
//!
//! # Decisions
//!
//! - **IP length.** [`PacketMeta::ip_len`] is the IPv4 Total Length or 40 + the
//!   IPv6 Payload Length, never the captured length. A length of 0 is what
//!   captures taken on a host with TCP segmentation offload show; then the
//!   length on the wire (`orig_len` minus the link header) is used instead
//!   (except for IPv6 No Next Header, where 0 is genuine).
//! - **Non-first fragments** (IPv4 offset != 0, or an IPv6 Fragment header with
//!   offset != 0) decode successfully with `fragment: Fragment::NonFirst`,
//!   addresses, protocol and IP length, ports 0/0 and the fragment data as
//!   payload. They are *not* an error here because the caller must count their
//!   bytes in the skip counters; per the flow semantics it must not account
//!   them to a flow, and [`PacketMeta::flow_skip`] returns
//!   `Some(SkipReason::Fragment)` for them so the count lands in the same array
//!   as the decode errors. `decode` itself never returns `Err(Fragment)`.
//! - **First fragments** are ordinary packets. If the fragment ends inside the
//!   transport header (tiny-fragment evasion, `nmap -f`), the fields that fit
//!   are kept (ports need 4 bytes, ICMP type/code 2) and the rest are 0.
//! - **Truncated transport header.** When the snaplen cut the fixed transport
//!   header (TCP 20, UDP/UDP-Lite 8, SCTP 12, ICMP/ICMPv6 8 bytes) the packet is
//!   [`SkipReason::TruncatedTransport`] and does not count toward any flow: the
//!   key would be incomplete. If only TCP options are cut, the header fields
//!   are all known, so the packet is decoded (with an empty payload).
//!   A header that does not fit in the IP datagram itself (not a capture
//!   artefact: the packet is malformed) is [`SkipReason::BadTransportHeader`],
//!   as is a TCP data offset below 5 or beyond the datagram.
//! - **Payload** is bounded by the captured bytes and by the IP length, so
//!   Ethernet padding and trailers are excluded; for UDP also by the UDP length.
//! - **Addresses** are 16 bytes, IPv4 as IPv4-mapped IPv6 (`::ffff:a.b.c.d`),
//!   exactly the flow key's representation: hashing and comparing them is
//!   cheaper than [`IpAddr`] (no discriminant, fixed size; building and
//!   hashing a flow key with hashbrown's default hasher measured 4.3 ns against
//!   6.6 ns with `IpAddr`, see `tests/packet_throughput.rs`), and
//!   [`PacketMeta::src_ip`] converts when an [`IpAddr`] is needed.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use osprey_ebpf::consts;

use crate::pcap::LinkType;

/// 802.1Q / 802.1ad tags followed before giving up (`OSPREY_MAX_VLAN_TAGS`).
pub const MAX_VLAN_TAGS: usize = consts::MAX_VLAN_TAGS as usize;
/// MPLS labels followed before giving up (`OSPREY_MAX_MPLS_LABELS`).
pub const MAX_MPLS_LABELS: usize = consts::MAX_MPLS_LABELS as usize;
/// IPv6 extension headers walked before giving up (`OSPREY_MAX_IPV6_EXT_HEADERS`).
pub const MAX_IPV6_EXT_HEADERS: usize = consts::MAX_IPV6_EXT_HEADERS as usize;

/// EtherType values the decoder acts on.
pub mod ethertype {
    /// IPv4.
    pub const IPV4: u16 = 0x0800;
    /// ARP (not IP: [`super::SkipReason::NotIp`]).
    pub const ARP: u16 = 0x0806;
    /// IEEE 802.1Q customer VLAN tag.
    pub const VLAN: u16 = 0x8100;
    /// IEEE 802.1ad service VLAN tag (Q-in-Q outer tag).
    pub const QINQ: u16 = 0x88a8;
    /// Pre-standard Q-in-Q outer tag still used by some switches.
    pub const QINQ_OLD: u16 = 0x9100;
    /// IPv6.
    pub const IPV6: u16 = 0x86dd;
    /// MPLS unicast.
    pub const MPLS_UC: u16 = 0x8847;
    /// MPLS multicast.
    pub const MPLS_MC: u16 = 0x8848;
    /// PPPoE session stage.
    pub const PPPOE_SESSION: u16 = 0x8864;
}

/// IP protocol numbers the decoder acts on.
pub mod ipproto {
    /// IPv6 Hop-by-Hop options.
    pub const HOPOPTS: u8 = 0;
    /// ICMP.
    pub const ICMP: u8 = 1;
    /// TCP.
    pub const TCP: u8 = 6;
    /// UDP.
    pub const UDP: u8 = 17;
    /// IPv6 Routing header.
    pub const ROUTING: u8 = 43;
    /// IPv6 Fragment header.
    pub const FRAGMENT: u8 = 44;
    /// Encapsulating Security Payload.
    pub const ESP: u8 = 50;
    /// Authentication Header.
    pub const AH: u8 = 51;
    /// ICMPv6.
    pub const ICMPV6: u8 = 58;
    /// IPv6 No Next Header.
    pub const NONE: u8 = 59;
    /// IPv6 Destination Options.
    pub const DSTOPTS: u8 = 60;
    /// SCTP.
    pub const SCTP: u8 = 132;
    /// Mobility header.
    pub const MOBILITY: u8 = 135;
    /// UDP-Lite.
    pub const UDPLITE: u8 = 136;
}

/// Why a frame yields no [`PacketMeta`] (or, for [`SkipReason::Fragment`], why
/// its [`PacketMeta`] is not accounted to a flow). One byte, `Copy`; index a
/// counter array with [`SkipReason::index`].
#[repr(u8)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SkipReason {
    /// The link-layer header (Ethernet, SLL, loopback, LLC/SNAP, PPPoE) is cut short.
    TruncatedLink = 0,
    /// A VLAN tag is cut short.
    TruncatedVlan,
    /// An MPLS label is cut short.
    TruncatedMpls,
    /// The IP header (IPv4 with options, IPv6 with extension headers) is cut short.
    TruncatedIp,
    /// The fixed transport header (TCP, UDP, SCTP, ICMP) is cut short by the snaplen.
    TruncatedTransport,
    /// Not IP at all: ARP, LLDP, STP, IPX, PPPoE discovery, pseudowires...
    NotIp,
    /// The IP version nibble disagrees with the link layer (or is neither 4 nor 6).
    BadIpVersion,
    /// IPv4 header length below 20 or above the total length; IPv6 extension
    /// header running past the payload length.
    BadIpHeader,
    /// The transport header does not fit in the IP datagram, or a TCP data offset is invalid.
    BadTransportHeader,
    /// The capture's link type is not decoded.
    UnsupportedLinkType,
    /// More VLAN tags, MPLS labels or IPv6 extension headers than the shared bounds.
    TooManyHeaders,
    /// A non-first IP fragment (not accounted to any flow; see the module docs).
    Fragment,
}

impl SkipReason {
    /// Number of reasons (length of [`SkipReason::ALL`]).
    pub const COUNT: usize = 12;

    /// Every reason, in index order.
    pub const ALL: [Self; Self::COUNT] = [
        Self::TruncatedLink,
        Self::TruncatedVlan,
        Self::TruncatedMpls,
        Self::TruncatedIp,
        Self::TruncatedTransport,
        Self::NotIp,
        Self::BadIpVersion,
        Self::BadIpHeader,
        Self::BadTransportHeader,
        Self::UnsupportedLinkType,
        Self::TooManyHeaders,
        Self::Fragment,
    ];

    /// Position in [`SkipReason::ALL`], for counter arrays.
    #[inline]
    pub const fn index(self) -> usize {
        self as usize
    }

    /// The snake_case name used as a metric and summary label.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::TruncatedLink => "truncated_link",
            Self::TruncatedVlan => "truncated_vlan",
            Self::TruncatedMpls => "truncated_mpls",
            Self::TruncatedIp => "truncated_ip",
            Self::TruncatedTransport => "truncated_transport",
            Self::NotIp => "not_ip",
            Self::BadIpVersion => "bad_ip_version",
            Self::BadIpHeader => "bad_ip_header",
            Self::BadTransportHeader => "bad_transport_header",
            Self::UnsupportedLinkType => "unsupported_link_type",
            Self::TooManyHeaders => "too_many_headers",
            Self::Fragment => "fragment",
        }
    }
}

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a packet sits in a fragmented IP datagram.
#[repr(u8)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Fragment {
    /// Not fragmented (including IPv6 atomic fragments: offset 0, no M flag).
    #[default]
    None = 0,
    /// First fragment: offset 0, more fragments follow. Carries the transport header.
    First,
    /// Any later fragment: no transport header, ports unknown.
    NonFirst,
}

/// The decoded summary of one frame. `Copy`; borrows only the payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PacketMeta<'a> {
    /// Source address, IPv4 as IPv4-mapped IPv6.
    pub src: [u8; 16],
    /// Destination address, IPv4 as IPv4-mapped IPv6.
    pub dst: [u8; 16],
    /// Captured transport payload (e.g. the DNS message of a UDP packet); for
    /// non-first fragments and protocols without decoded headers, the IP payload.
    pub payload: &'a [u8],
    /// IP-layer length: IPv4 Total Length or 40 + IPv6 Payload Length.
    pub ip_len: u32,
    /// TCP sequence number (0 if not TCP).
    pub tcp_seq: u32,
    /// Offset of the IP header in the frame.
    pub l3_offset: u32,
    /// Offset of the transport header (after IPv6 extension headers) in the frame.
    pub l4_offset: u32,
    /// Outermost VLAN id, 0 if untagged (or priority-tagged).
    pub vlan: u16,
    /// Source port (0 for ICMP and portless protocols).
    pub src_port: u16,
    /// Destination port, or `type << 8 | code` for ICMP/ICMPv6.
    pub dst_port: u16,
    /// Upper-layer protocol after IPv6 extension headers.
    pub proto: u8,
    /// TCP flags byte (0 if not TCP).
    pub tcp_flags: u8,
    /// IPv4 TTL or IPv6 hop limit.
    pub ttl: u8,
    /// The packet is IPv4.
    pub is_v4: bool,
    /// Fragment position.
    pub fragment: Fragment,
    /// For fragments: the IPv4 Identification or IPv6 Fragment header id.
    pub frag_id: u32,
    /// For fragments: offset of this fragment's data in the datagram, bytes.
    pub frag_offset: u32,
    /// For fragments: more fragments follow (MF / M flag).
    pub frag_more: bool,
}

impl PacketMeta<'_> {
    /// Source address as an [`IpAddr`] (V4 for IPv4 packets).
    #[inline]
    pub fn src_ip(&self) -> IpAddr {
        to_ip(&self.src, self.is_v4)
    }

    /// Destination address as an [`IpAddr`] (V4 for IPv4 packets).
    #[inline]
    pub fn dst_ip(&self) -> IpAddr {
        to_ip(&self.dst, self.is_v4)
    }

    /// Why this packet must not be accounted to a flow even though it decoded:
    /// `Some(SkipReason::Fragment)` for non-first fragments, else `None`.
    #[inline]
    pub fn flow_skip(&self) -> Option<SkipReason> {
        match self.fragment {
            Fragment::NonFirst => Some(SkipReason::Fragment),
            Fragment::None | Fragment::First => None,
        }
    }
}

#[inline]
fn to_ip(a: &[u8; 16], is_v4: bool) -> IpAddr {
    if is_v4 {
        IpAddr::V4(Ipv4Addr::new(a[12], a[13], a[14], a[15]))
    } else {
        IpAddr::V6(Ipv6Addr::from(*a))
    }
}

/// IPv4-mapped IPv6 form of four IPv4 address bytes.
#[inline(always)]
fn mapped(b: &[u8]) -> [u8; 16] {
    [
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, b[0], b[1], b[2], b[3],
    ]
}

#[inline(always)]
fn be16(b: &[u8], off: usize) -> u16 {
    u16::from_be_bytes([b[off], b[off + 1]])
}

#[inline(always)]
fn be32(b: &[u8], off: usize) -> u32 {
    u32::from_be_bytes([b[off], b[off + 1], b[off + 2], b[off + 3]])
}

/// Which IP version the link layer announced.
#[derive(Clone, Copy, PartialEq, Eq)]
enum L3 {
    V4,
    V6,
    /// Raw IP: decided by the version nibble.
    Any,
}

/// Decodes one captured frame. Equivalent to [`decode_frame`] with the
/// captured length as the wire length.
#[inline]
pub fn decode(link: LinkType, frame: &[u8]) -> Result<PacketMeta<'_>, SkipReason> {
    decode_frame(link, frame, u32::try_from(frame.len()).unwrap_or(u32::MAX))
}

/// Decodes one captured frame whose length on the wire was `orig_len` (only
/// used when an IP length field is 0, as in segmentation-offload captures).
#[inline]
pub fn decode_frame(
    link: LinkType,
    frame: &[u8],
    orig_len: u32,
) -> Result<PacketMeta<'_>, SkipReason> {
    let mut vlan = 0u16;
    let (l3, kind) = match link {
        LinkType::Ethernet => {
            if frame.len() < 14 {
                return Err(SkipReason::TruncatedLink);
            }
            ethertype_payload(frame, 14, be16(frame, 12), &mut vlan)?
        }
        LinkType::LinuxSll => {
            if frame.len() < 16 {
                return Err(SkipReason::TruncatedLink);
            }
            ethertype_payload(frame, 16, be16(frame, 14), &mut vlan)?
        }
        LinkType::LinuxSll2 => {
            if frame.len() < 20 {
                return Err(SkipReason::TruncatedLink);
            }
            ethertype_payload(frame, 20, be16(frame, 0), &mut vlan)?
        }
        LinkType::Raw => (0, L3::Any),
        LinkType::Ipv4 => (0, L3::V4),
        LinkType::Ipv6 => (0, L3::V6),
        LinkType::Null | LinkType::Loop => {
            if frame.len() < 4 {
                return Err(SkipReason::TruncatedLink);
            }
            // NULL stores the family in the writer's byte order, LOOP in network
            // order; some writers get LOOP wrong, so accept both for both.
            let le = u32::from_le_bytes([frame[0], frame[1], frame[2], frame[3]]);
            let be = le.swap_bytes();
            let kind = match (le, be) {
                (2, _) | (_, 2) => L3::V4,
                // BSD AF_INET6: 24 (NetBSD/OpenBSD), 28 (FreeBSD), 30 (Darwin).
                (24 | 28 | 30, _) | (_, 24 | 28 | 30) => L3::V6,
                _ => return Err(SkipReason::NotIp),
            };
            (4, kind)
        }
        LinkType::Other(_) => return Err(SkipReason::UnsupportedLinkType),
    };
    decode_ip(frame, l3, kind, vlan, orig_len)
}

/// Follows VLAN tags, LLC/SNAP, MPLS and PPPoE from an EtherType at `off` to
/// the IP header. Returns its offset and announced version.
#[inline]
fn ethertype_payload(
    frame: &[u8],
    mut off: usize,
    mut et: u16,
    vlan: &mut u16,
) -> Result<(usize, L3), SkipReason> {
    let mut tags = 0;
    while matches!(et, ethertype::VLAN | ethertype::QINQ | ethertype::QINQ_OLD) {
        if tags == MAX_VLAN_TAGS {
            return Err(SkipReason::TooManyHeaders);
        }
        if frame.len() < off + 4 {
            return Err(SkipReason::TruncatedVlan);
        }
        if tags == 0 {
            *vlan = be16(frame, off) & 0x0fff;
        }
        et = be16(frame, off + 2);
        off += 4;
        tags += 1;
    }
    if et <= 1500 {
        // IEEE 802.3 length field: only LLC/SNAP with an EtherType can carry IP.
        if frame.len() < off + 3 {
            return Err(SkipReason::TruncatedLink);
        }
        if frame[off..off + 3] != [0xaa, 0xaa, 0x03] {
            return Err(SkipReason::NotIp);
        }
        if frame.len() < off + 8 {
            return Err(SkipReason::TruncatedLink);
        }
        et = be16(frame, off + 6);
        off += 8;
    }
    match et {
        ethertype::IPV4 => Ok((off, L3::V4)),
        ethertype::IPV6 => Ok((off, L3::V6)),
        ethertype::MPLS_UC | ethertype::MPLS_MC => {
            for _ in 0..MAX_MPLS_LABELS {
                if frame.len() < off + 4 {
                    return Err(SkipReason::TruncatedMpls);
                }
                let bottom = frame[off + 2] & 0x01 != 0;
                off += 4;
                if bottom {
                    // MPLS does not say what it carries: guess from the first nibble.
                    let Some(&first) = frame.get(off) else {
                        return Err(SkipReason::TruncatedIp);
                    };
                    return match first >> 4 {
                        4 => Ok((off, L3::V4)),
                        6 => Ok((off, L3::V6)),
                        _ => Err(SkipReason::NotIp),
                    };
                }
            }
            Err(SkipReason::TooManyHeaders)
        }
        ethertype::PPPOE_SESSION => {
            // 6-byte PPPoE header, then the 2-byte PPP protocol.
            if frame.len() < off + 8 {
                return Err(SkipReason::TruncatedLink);
            }
            match be16(frame, off + 6) {
                0x0021 => Ok((off + 8, L3::V4)),
                0x0057 => Ok((off + 8, L3::V6)),
                _ => Err(SkipReason::NotIp),
            }
        }
        _ => Err(SkipReason::NotIp),
    }
}

/// Checks that a header ending at `end` fits in the datagram (`dgram_end`,
/// from the IP length) and in the captured bytes.
#[inline(always)]
fn ip_fits(end: usize, dgram_end: usize, cap_end: usize) -> Result<(), SkipReason> {
    if end > dgram_end {
        Err(SkipReason::BadIpHeader)
    } else if end > cap_end {
        Err(SkipReason::TruncatedIp)
    } else {
        Ok(())
    }
}

#[inline]
fn decode_ip(
    frame: &[u8],
    off: usize,
    kind: L3,
    vlan: u16,
    orig_len: u32,
) -> Result<PacketMeta<'_>, SkipReason> {
    let Some(&first) = frame.get(off) else {
        return Err(SkipReason::TruncatedIp);
    };
    let version = first >> 4;
    let is_v4 = match (kind, version) {
        (L3::V4 | L3::Any, 4) => true,
        (L3::V6 | L3::Any, 6) => false,
        _ => return Err(SkipReason::BadIpVersion),
    };
    let cap_end = frame.len();
    // Bytes of this frame from the IP header on, as they were on the wire.
    let wire_ip_len = (orig_len as usize).max(cap_end).saturating_sub(off);

    let mut meta = PacketMeta {
        src: [0; 16],
        dst: [0; 16],
        payload: &[],
        ip_len: 0,
        tcp_seq: 0,
        l3_offset: off as u32,
        l4_offset: 0,
        vlan,
        src_port: 0,
        dst_port: 0,
        proto: 0,
        tcp_flags: 0,
        ttl: 0,
        is_v4,
        fragment: Fragment::None,
        frag_id: 0,
        frag_offset: 0,
        frag_more: false,
    };

    let (l4, dgram_end) = if is_v4 {
        if cap_end < off + 20 {
            return Err(SkipReason::TruncatedIp);
        }
        let ihl = usize::from(first & 0x0f) * 4;
        if ihl < 20 {
            return Err(SkipReason::BadIpHeader);
        }
        if cap_end < off + ihl {
            return Err(SkipReason::TruncatedIp);
        }
        let mut total = usize::from(be16(frame, off + 2));
        if total == 0 {
            // Segmentation offload: the kernel had not filled the length in yet.
            total = wire_ip_len;
        }
        if total < ihl {
            return Err(SkipReason::BadIpHeader);
        }
        let frag = be16(frame, off + 6);
        meta.frag_id = u32::from(be16(frame, off + 4));
        meta.frag_offset = u32::from(frag & 0x1fff) * 8;
        meta.frag_more = frag & 0x2000 != 0;
        meta.fragment = if frag & 0x1fff != 0 {
            Fragment::NonFirst
        } else if frag & 0x2000 != 0 {
            Fragment::First
        } else {
            Fragment::None
        };
        meta.ttl = frame[off + 8];
        meta.proto = frame[off + 9];
        meta.src = mapped(&frame[off + 12..off + 16]);
        meta.dst = mapped(&frame[off + 16..off + 20]);
        meta.ip_len = total as u32;
        (off + ihl, off + total)
    } else {
        if cap_end < off + 40 {
            return Err(SkipReason::TruncatedIp);
        }
        let plen = usize::from(be16(frame, off + 4));
        let mut nh = frame[off + 6];
        // Payload length 0 with something after the header: segmentation offload
        // (or a jumbogram); take the wire length. With No Next Header it is real.
        let total = if plen == 0 && nh != ipproto::NONE && wire_ip_len > 40 {
            wire_ip_len
        } else {
            40 + plen
        };
        let dgram_end = off + total;
        meta.ttl = frame[off + 7];
        let mut src = [0u8; 16];
        src.copy_from_slice(&frame[off + 8..off + 24]);
        let mut dst = [0u8; 16];
        dst.copy_from_slice(&frame[off + 24..off + 40]);
        meta.src = src;
        meta.dst = dst;
        meta.ip_len = total as u32;

        let mut p = off + 40;
        let mut walked = 0;
        while matches!(
            nh,
            ipproto::HOPOPTS
                | ipproto::ROUTING
                | ipproto::FRAGMENT
                | ipproto::DSTOPTS
                | ipproto::AH
                | ipproto::MOBILITY
        ) {
            if walked == MAX_IPV6_EXT_HEADERS {
                return Err(SkipReason::TooManyHeaders);
            }
            walked += 1;
            ip_fits(p + 2, dgram_end, cap_end)?;
            let hlen = match nh {
                ipproto::FRAGMENT => 8,
                ipproto::AH => (usize::from(frame[p + 1]) + 2) * 4,
                _ => (usize::from(frame[p + 1]) + 1) * 8,
            };
            ip_fits(p + hlen, dgram_end, cap_end)?;
            let next = frame[p];
            if nh == ipproto::FRAGMENT {
                let fo = be16(frame, p + 2);
                meta.frag_id = be32(frame, p + 4);
                meta.frag_offset = u32::from(fo & 0xfff8);
                meta.frag_more = fo & 0x0001 != 0;
                if fo & 0xfff8 != 0 {
                    // The rest is fragment data: its first header is unknown here.
                    meta.fragment = Fragment::NonFirst;
                    nh = next;
                    p += hlen;
                    break;
                }
                if fo & 0x0001 != 0 {
                    meta.fragment = Fragment::First;
                }
            }
            nh = next;
            p += hlen;
        }
        meta.proto = nh;
        (p, dgram_end)
    };

    meta.l4_offset = l4 as u32;
    // Captured bytes of the datagram: excludes link padding and trailers.
    let end = dgram_end.min(cap_end);
    if meta.fragment == Fragment::NonFirst {
        meta.payload = &frame[l4.min(end)..end];
        return Ok(meta);
    }
    transport(frame, l4, dgram_end, cap_end, meta)
}

/// How many transport-header bytes must be present: the full fixed header, or
/// for a first fragment that ends inside it, whatever it holds if that covers
/// at least the `key` bytes (ports, ICMP type/code).
#[inline(always)]
fn need_header(
    l4: usize,
    full: usize,
    key: usize,
    dgram_end: usize,
    cap_end: usize,
    first: bool,
) -> Result<usize, SkipReason> {
    let in_dgram = dgram_end - l4;
    let need = if first && in_dgram < full {
        in_dgram
    } else {
        full
    };
    if need < key || l4 + need > dgram_end {
        return Err(SkipReason::BadTransportHeader);
    }
    if l4 + need > cap_end {
        return Err(SkipReason::TruncatedTransport);
    }
    Ok(need)
}

#[inline]
fn transport<'a>(
    frame: &'a [u8],
    l4: usize,
    dgram_end: usize,
    cap_end: usize,
    mut meta: PacketMeta<'a>,
) -> Result<PacketMeta<'a>, SkipReason> {
    let first = meta.fragment == Fragment::First;
    let mut end = dgram_end.min(cap_end);
    let payload_start = match meta.proto {
        ipproto::TCP => {
            let have = need_header(l4, 20, 4, dgram_end, cap_end, first)?;
            meta.src_port = be16(frame, l4);
            meta.dst_port = be16(frame, l4 + 2);
            if have < 20 {
                if have >= 8 {
                    meta.tcp_seq = be32(frame, l4 + 4);
                }
                if have >= 14 {
                    meta.tcp_flags = frame[l4 + 13];
                }
                end
            } else {
                meta.tcp_seq = be32(frame, l4 + 4);
                meta.tcp_flags = frame[l4 + 13];
                let doff = usize::from(frame[l4 + 12] >> 4) * 4;
                if doff < 20 || (l4 + doff > dgram_end && !first) {
                    return Err(SkipReason::BadTransportHeader);
                }
                // Options cut by the snaplen (or by a first fragment): the
                // header fields are known, the payload is simply absent.
                (l4 + doff).min(end)
            }
        }
        ipproto::UDP | ipproto::UDPLITE => {
            let have = need_header(l4, 8, 4, dgram_end, cap_end, first)?;
            meta.src_port = be16(frame, l4);
            meta.dst_port = be16(frame, l4 + 2);
            if have == 8 && meta.proto == ipproto::UDP {
                // The UDP length can exclude IP-level trailing bytes; 0 (jumbogram)
                // or a value beyond the datagram is ignored.
                let ulen = usize::from(be16(frame, l4 + 4));
                if ulen >= 8 && l4 + ulen < end {
                    end = l4 + ulen;
                }
            }
            (l4 + have).min(end)
        }
        ipproto::SCTP => {
            let have = need_header(l4, 12, 4, dgram_end, cap_end, first)?;
            meta.src_port = be16(frame, l4);
            meta.dst_port = be16(frame, l4 + 2);
            (l4 + have).min(end)
        }
        ipproto::ICMP | ipproto::ICMPV6 => {
            let have = need_header(l4, 8, 2, dgram_end, cap_end, first)?;
            meta.dst_port = be16(frame, l4);
            (l4 + have).min(end)
        }
        _ => l4.min(end),
    };
    meta.payload = &frame[payload_start..end];
    Ok(meta)
}

#[cfg(test)]
mod tests {
    use super::*;

    // ---- frame builders (big-endian wire format, by hand) ----------------------

    const MAC: [u8; 12] = [2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2];
    const V4_SRC: [u8; 4] = [10, 0, 0, 1];
    const V4_DST: [u8; 4] = [192, 168, 1, 2];
    const V6_SRC: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
    const V6_DST: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];

    fn eth(et: u16) -> Vec<u8> {
        let mut v = MAC.to_vec();
        v.extend(et.to_be_bytes());
        v
    }

    fn tag(tci: u16, et: u16) -> Vec<u8> {
        let mut v = tci.to_be_bytes().to_vec();
        v.extend(et.to_be_bytes());
        v
    }

    fn mpls(label: u32, bottom: bool) -> Vec<u8> {
        ((label << 12) | (u32::from(bottom) << 8) | 64)
            .to_be_bytes()
            .to_vec()
    }

    /// IPv4 header with `opts` (a multiple of 4 bytes) followed by `l4`.
    fn ipv4(proto: u8, opts: &[u8], frag: u16, l4: &[u8]) -> Vec<u8> {
        let ihl = 20 + opts.len();
        let total = (ihl + l4.len()) as u16;
        let mut v = vec![0x40 | (ihl / 4) as u8, 0];
        v.extend(total.to_be_bytes());
        v.extend([0x12, 0x34]);
        v.extend(frag.to_be_bytes());
        v.extend([64, proto, 0, 0]);
        v.extend(V4_SRC);
        v.extend(V4_DST);
        v.extend(opts);
        v.extend(l4);
        v
    }

    /// IPv6 header followed by `rest` (extension headers and transport).
    fn ipv6(nh: u8, rest: &[u8]) -> Vec<u8> {
        let mut v = vec![0x60, 0, 0, 0];
        v.extend((rest.len() as u16).to_be_bytes());
        v.extend([nh, 55]);
        v.extend(V6_SRC);
        v.extend(V6_DST);
        v.extend(rest);
        v
    }

    /// Generic extension header of `8 * (len + 1)` bytes.
    fn ext(next: u8, len: u8) -> Vec<u8> {
        let mut v = vec![next, len];
        v.resize(8 * (usize::from(len) + 1), 0);
        v
    }

    fn frag6(next: u8, offset: u16, more: bool) -> Vec<u8> {
        let mut v = vec![next, 0];
        v.extend(((offset << 3) | u16::from(more)).to_be_bytes());
        v.extend([0, 0, 0, 7]);
        v
    }

    fn tcp(sport: u16, dport: u16, seq: u32, flags: u8, opts: &[u8], payload: &[u8]) -> Vec<u8> {
        let mut v = sport.to_be_bytes().to_vec();
        v.extend(dport.to_be_bytes());
        v.extend(seq.to_be_bytes());
        v.extend(0u32.to_be_bytes());
        v.push((((20 + opts.len()) / 4) as u8) << 4);
        v.push(flags);
        v.extend([0xff, 0xff, 0, 0, 0, 0]);
        v.extend(opts);
        v.extend(payload);
        v
    }

    fn udp(sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
        let mut v = sport.to_be_bytes().to_vec();
        v.extend(dport.to_be_bytes());
        v.extend(((8 + payload.len()) as u16).to_be_bytes());
        v.extend([0, 0]);
        v.extend(payload);
        v
    }

    fn icmp(ty: u8, code: u8, payload: &[u8]) -> Vec<u8> {
        let mut v = vec![ty, code, 0, 0, 0, 1, 0, 1];
        v.extend(payload);
        v
    }

    fn cat(parts: &[&[u8]]) -> Vec<u8> {
        parts.concat()
    }

    fn v4(a: [u8; 4]) -> [u8; 16] {
        mapped(&a)
    }

    const DNS: &[u8] = b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x03www\x07example\x03com\x00\x00\x01\x00\x01";

    /// Cuts `frame` at every length and checks the reason: `layers` lists
    /// (end offset of a layer, reason when cut before that end), in order.
    /// Cuts at or past the last end must decode.
    fn sweep(link: LinkType, frame: &[u8], layers: &[(usize, SkipReason)]) {
        let full = decode(link, frame).expect("the uncut frame decodes");
        for cut in 0..frame.len() {
            let got = decode(link, &frame[..cut]);
            match layers.iter().find(|(end, _)| cut < *end) {
                Some(&(_, reason)) => assert_eq!(got, Err(reason), "cut at {cut}"),
                None => {
                    let m = got.unwrap_or_else(|r| panic!("cut at {cut}: {r}"));
                    assert_eq!(
                        (m.src, m.dst, m.src_port, m.dst_port),
                        (full.src, full.dst, full.src_port, full.dst_port)
                    );
                    assert_eq!(
                        m.ip_len, full.ip_len,
                        "IP length comes from the header, not the capture"
                    );
                    assert!(m.payload.len() <= full.payload.len());
                }
            }
        }
    }

    // ---- Ethernet, VLAN, MPLS, PPPoE, LLC --------------------------------------

    #[test]
    fn ethernet_ipv4_tcp() {
        let seg = tcp(40000, 443, 0xdead_beef, 0x12, &[], b"hello");
        let f = cat(&[&eth(0x0800), &ipv4(6, &[], 0, &seg)]);
        let m = decode(LinkType::Ethernet, &f).expect("decodes");
        assert_eq!(m.vlan, 0);
        assert!(m.is_v4);
        assert_eq!(m.src, v4(V4_SRC));
        assert_eq!(m.dst, v4(V4_DST));
        assert_eq!(m.src_ip(), IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)));
        assert_eq!(m.dst_ip(), IpAddr::V4(Ipv4Addr::new(192, 168, 1, 2)));
        assert_eq!((m.proto, m.src_port, m.dst_port), (6, 40000, 443));
        assert_eq!((m.tcp_flags, m.tcp_seq), (0x12, 0xdead_beef));
        assert_eq!(m.ip_len, 20 + 20 + 5);
        assert_eq!((m.l3_offset, m.l4_offset), (14, 34));
        assert_eq!(m.payload, b"hello");
        assert_eq!(m.ttl, 64);
        assert_eq!(m.fragment, Fragment::None);
        assert_eq!(m.flow_skip(), None);
        sweep(
            LinkType::Ethernet,
            &f,
            &[
                (14, SkipReason::TruncatedLink),
                (34, SkipReason::TruncatedIp),
                (54, SkipReason::TruncatedTransport),
            ],
        );
    }

    #[test]
    fn ethernet_padding_is_not_payload() {
        // A 42-byte DNS-less UDP frame padded to the 60-byte Ethernet minimum.
        let mut f = cat(&[&eth(0x0800), &ipv4(17, &[], 0, &udp(53, 5353, b"ab"))]);
        let ip_len = f.len() - 14;
        f.resize(60, 0xee);
        let m = decode(LinkType::Ethernet, &f).expect("decodes");
        assert_eq!(m.ip_len as usize, ip_len);
        assert_eq!(m.payload, b"ab");
        // UDP length shorter than the IP payload bounds the payload too.
        let mut dgram = udp(53, 53, DNS);
        dgram.extend([0u8; 6]);
        let f = cat(&[&eth(0x0800), &ipv4(17, &[], 0, &dgram)]);
        assert_eq!(
            decode(LinkType::Ethernet, &f).expect("decodes").payload,
            DNS
        );
        // A UDP length beyond the datagram is ignored (the IP length bounds it).
        let mut dgram = udp(53, 53, DNS);
        dgram[4..6].copy_from_slice(&0xfff0u16.to_be_bytes());
        let f = cat(&[&eth(0x0800), &ipv4(17, &[], 0, &dgram)]);
        assert_eq!(
            decode(LinkType::Ethernet, &f).expect("decodes").payload,
            DNS
        );
    }

    #[test]
    fn vlan_single_double_triple_and_too_many() {
        let ip = ipv4(17, &[], 0, &udp(1234, 53, DNS));
        let single = cat(&[&eth(0x8100), &tag(0x2000 | 100, 0x0800), &ip]);
        let m = decode(LinkType::Ethernet, &single).expect("decodes");
        assert_eq!((m.vlan, m.dst_port, m.l3_offset), (100, 53, 18));
        assert_eq!(m.payload, DNS);
        sweep(
            LinkType::Ethernet,
            &single,
            &[
                (14, SkipReason::TruncatedLink),
                (18, SkipReason::TruncatedVlan),
                (38, SkipReason::TruncatedIp),
                (46, SkipReason::TruncatedTransport),
            ],
        );

        let qinq = cat(&[&eth(0x88a8), &tag(300, 0x8100), &tag(7, 0x0800), &ip]);
        let m = decode(LinkType::Ethernet, &qinq).expect("decodes");
        assert_eq!((m.vlan, m.l3_offset), (300, 22), "outermost tag wins");

        let triple = cat(&[
            &eth(0x9100),
            &tag(0xf000 | 4095, 0x88a8),
            &tag(2, 0x8100),
            &tag(3, 0x86dd),
            &ipv6(17, &udp(1, 2, b"")),
        ]);
        let m = decode(LinkType::Ethernet, &triple).expect("decodes");
        assert_eq!((m.vlan, m.l3_offset, m.is_v4), (4095, 26, false));
        sweep(
            LinkType::Ethernet,
            &triple,
            &[
                (14, SkipReason::TruncatedLink),
                (26, SkipReason::TruncatedVlan),
                (66, SkipReason::TruncatedIp),
                (74, SkipReason::TruncatedTransport),
            ],
        );

        let four = cat(&[
            &eth(0x8100),
            &tag(1, 0x8100),
            &tag(2, 0x8100),
            &tag(3, 0x8100),
            &tag(4, 0x0800),
            &ip,
        ]);
        assert_eq!(
            decode(LinkType::Ethernet, &four),
            Err(SkipReason::TooManyHeaders)
        );

        // Priority tag (VLAN 0) counts as untagged.
        let prio = cat(&[&eth(0x8100), &tag(0xa000, 0x0800), &ip]);
        assert_eq!(decode(LinkType::Ethernet, &prio).expect("decodes").vlan, 0);
    }

    #[test]
    fn mpls_stacks() {
        let ip = ipv4(6, &[], 0, &tcp(1, 2, 3, 0x10, &[], b""));
        let one = cat(&[&eth(0x8847), &mpls(16, true), &ip]);
        let m = decode(LinkType::Ethernet, &one).expect("decodes");
        assert_eq!((m.l3_offset, m.src_port, m.is_v4), (18, 1, true));
        sweep(
            LinkType::Ethernet,
            &one,
            &[
                (14, SkipReason::TruncatedLink),
                (18, SkipReason::TruncatedMpls),
                (38, SkipReason::TruncatedIp),
                (58, SkipReason::TruncatedTransport),
            ],
        );

        let v6 = ipv6(58, &icmp(128, 0, b"ping"));
        let two = cat(&[&eth(0x8848), &mpls(100, false), &mpls(2, true), &v6]);
        let m = decode(LinkType::Ethernet, &two).expect("decodes");
        assert_eq!(
            (m.l3_offset, m.proto, m.dst_port, m.is_v4),
            (22, 58, 128 << 8, false)
        );

        // VLAN then MPLS (the zeek mixed-vlan-mpls capture has this).
        let vm = cat(&[&eth(0x8100), &tag(10, 0x8847), &mpls(5, true), &ip]);
        assert_eq!(decode(LinkType::Ethernet, &vm).expect("decodes").vlan, 10);

        let mut max: Vec<u8> = eth(0x8847);
        for i in 0..MAX_MPLS_LABELS {
            max.extend(mpls(i as u32, i + 1 == MAX_MPLS_LABELS));
        }
        max.extend(&ip);
        assert!(decode(LinkType::Ethernet, &max).is_ok());

        let mut too_many: Vec<u8> = eth(0x8847);
        for i in 0..=MAX_MPLS_LABELS {
            too_many.extend(mpls(i as u32, i == MAX_MPLS_LABELS));
        }
        too_many.extend(&ip);
        assert_eq!(
            decode(LinkType::Ethernet, &too_many),
            Err(SkipReason::TooManyHeaders)
        );

        // Ethernet pseudowire control word after the stack: not IP.
        let pw = cat(&[
            &eth(0x8847),
            &mpls(1, true),
            &[0, 0, 0, 0],
            &eth(0x0800),
            &ip,
        ]);
        assert_eq!(decode(LinkType::Ethernet, &pw), Err(SkipReason::NotIp));
    }

    #[test]
    fn pppoe_session() {
        let ip = ipv4(17, &[], 0, &udp(68, 67, b"x"));
        let mut hdr = vec![0x11, 0, 0x12, 0x34];
        hdr.extend(((ip.len() + 2) as u16).to_be_bytes());
        let f = cat(&[&eth(0x8864), &hdr, &[0x00, 0x21], &ip]);
        let m = decode(LinkType::Ethernet, &f).expect("decodes");
        assert_eq!((m.l3_offset, m.dst_port), (22, 67));
        sweep(
            LinkType::Ethernet,
            &f,
            &[
                (22, SkipReason::TruncatedLink),
                (42, SkipReason::TruncatedIp),
                (50, SkipReason::TruncatedTransport),
            ],
        );
        let v6 = cat(&[
            &eth(0x8864),
            &hdr,
            &[0x00, 0x57],
            &ipv6(17, &udp(1, 2, b"")),
        ]);
        assert!(!decode(LinkType::Ethernet, &v6).expect("decodes").is_v4);
        let lcp = cat(&[&eth(0x8864), &hdr, &[0xc0, 0x21], &[1, 1, 0, 4]]);
        assert_eq!(decode(LinkType::Ethernet, &lcp), Err(SkipReason::NotIp));
        let discovery = cat(&[&eth(0x8863), &hdr]);
        assert_eq!(
            decode(LinkType::Ethernet, &discovery),
            Err(SkipReason::NotIp)
        );
    }

    #[test]
    fn llc_snap_and_non_ip_frames() {
        let ip = ipv4(17, &[], 0, &udp(1, 2, b""));
        let snap = cat(&[
            &eth((8 + ip.len()) as u16),
            &[0xaa, 0xaa, 0x03, 0, 0, 0, 0x08, 0x00],
            &ip,
        ]);
        let m = decode(LinkType::Ethernet, &snap).expect("decodes");
        assert_eq!(m.l3_offset, 22);
        sweep(
            LinkType::Ethernet,
            &snap,
            &[
                (22, SkipReason::TruncatedLink),
                (42, SkipReason::TruncatedIp),
                (50, SkipReason::TruncatedTransport),
            ],
        );
        // Spanning tree: 802.3 with LLC 42 42 03.
        let stp = cat(&[&eth(38), &[0x42, 0x42, 0x03, 0, 0, 0, 0]]);
        assert_eq!(decode(LinkType::Ethernet, &stp), Err(SkipReason::NotIp));
        let arp = cat(&[&eth(0x0806), &[0, 1, 8, 0, 6, 4, 0, 1]]);
        assert_eq!(decode(LinkType::Ethernet, &arp), Err(SkipReason::NotIp));
        let lldp = cat(&[&eth(0x88cc), &[2, 7, 4]]);
        assert_eq!(decode(LinkType::Ethernet, &lldp), Err(SkipReason::NotIp));
        // Ethertype says IPv4 but the header is IPv6.
        let wrong = cat(&[&eth(0x0800), &ipv6(17, &udp(1, 2, b""))]);
        assert_eq!(
            decode(LinkType::Ethernet, &wrong),
            Err(SkipReason::BadIpVersion)
        );
    }

    // ---- other link types -------------------------------------------------------

    #[test]
    fn linux_sll_and_sll2() {
        let ip = ipv4(17, &[], 0, &udp(9991, 2055, b"nf"));
        let mut sll = vec![0, 0, 0, 1, 0, 6, 1, 2, 3, 4, 5, 6, 0, 0];
        sll.extend(0x0800u16.to_be_bytes());
        let f = cat(&[&sll, &ip]);
        let m = decode(LinkType::LinuxSll, &f).expect("decodes");
        assert_eq!((m.l3_offset, m.src_port, m.payload), (16, 9991, &b"nf"[..]));
        sweep(
            LinkType::LinuxSll,
            &f,
            &[
                (16, SkipReason::TruncatedLink),
                (36, SkipReason::TruncatedIp),
                (44, SkipReason::TruncatedTransport),
            ],
        );
        // VLAN tag left in the payload by libpcap.
        let mut sll_vlan = sll.clone();
        sll_vlan[14..16].copy_from_slice(&0x8100u16.to_be_bytes());
        let f = cat(&[&sll_vlan, &tag(42, 0x0800), &ip]);
        assert_eq!(decode(LinkType::LinuxSll, &f).expect("decodes").vlan, 42);
        // Protocol 4: raw 802.2 LLC.
        let mut llc = sll.clone();
        llc[14..16].copy_from_slice(&4u16.to_be_bytes());
        let f = cat(&[&llc, &[0x42, 0x42, 0x03, 0, 0]]);
        assert_eq!(decode(LinkType::LinuxSll, &f), Err(SkipReason::NotIp));

        let mut sll2 = 0x86ddu16.to_be_bytes().to_vec();
        sll2.extend([0, 0, 0, 0, 0, 3, 0, 1, 0, 6, 1, 2, 3, 4, 5, 6, 0, 0]);
        let f = cat(&[&sll2, &ipv6(6, &tcp(5, 6, 7, 2, &[], b""))]);
        let m = decode(LinkType::LinuxSll2, &f).expect("decodes");
        assert_eq!((m.l3_offset, m.dst_port, m.tcp_flags), (20, 6, 2));
        assert_eq!(m.src_ip(), IpAddr::V6(Ipv6Addr::from(V6_SRC)));
        sweep(
            LinkType::LinuxSll2,
            &f,
            &[
                (20, SkipReason::TruncatedLink),
                (60, SkipReason::TruncatedIp),
                (80, SkipReason::TruncatedTransport),
            ],
        );
    }

    #[test]
    fn raw_ip_link_types() {
        let v4p = ipv4(1, &[], 0, &icmp(8, 0, b"abc"));
        let v6p = ipv6(58, &icmp(135, 0, b""));
        let m = decode(LinkType::Raw, &v4p).expect("decodes");
        assert_eq!(
            (m.l3_offset, m.proto, m.src_port, m.dst_port),
            (0, 1, 0, 8 << 8)
        );
        assert_eq!(m.payload, b"abc");
        assert_eq!(
            decode(LinkType::Raw, &v6p).expect("decodes").dst_port,
            135 << 8
        );
        assert!(decode(LinkType::Ipv4, &v4p).is_ok());
        assert!(decode(LinkType::Ipv6, &v6p).is_ok());
        assert_eq!(decode(LinkType::Ipv4, &v6p), Err(SkipReason::BadIpVersion));
        assert_eq!(decode(LinkType::Ipv6, &v4p), Err(SkipReason::BadIpVersion));
        assert_eq!(
            decode(LinkType::Raw, &[0x50; 40]),
            Err(SkipReason::BadIpVersion)
        );
        assert_eq!(decode(LinkType::Raw, &[]), Err(SkipReason::TruncatedIp));
        sweep(
            LinkType::Raw,
            &v4p,
            &[
                (20, SkipReason::TruncatedIp),
                (28, SkipReason::TruncatedTransport),
            ],
        );
        sweep(
            LinkType::Ipv6,
            &v6p,
            &[
                (40, SkipReason::TruncatedIp),
                (48, SkipReason::TruncatedTransport),
            ],
        );
    }

    #[test]
    fn bsd_loopback_both_byte_orders() {
        let v4p = ipv4(17, &[], 0, &udp(1, 53, b""));
        let v6p = ipv6(17, &udp(1, 53, b""));
        for link in [LinkType::Null, LinkType::Loop] {
            for (af, pkt, is_v4) in [
                (2u32, &v4p, true),
                (24, &v6p, false),
                (28, &v6p, false),
                (30, &v6p, false),
            ] {
                for hdr in [af.to_le_bytes(), af.to_be_bytes()] {
                    let f = cat(&[&hdr, pkt]);
                    let m = decode(link, &f).expect("decodes");
                    assert_eq!(
                        (m.l3_offset, m.is_v4, m.dst_port),
                        (4, is_v4, 53),
                        "{link} af {af}"
                    );
                }
            }
            let f = cat(&[&7u32.to_le_bytes(), &v4p]);
            assert_eq!(decode(link, &f), Err(SkipReason::NotIp));
            let f = cat(&[&2u32.to_le_bytes(), &v4p]);
            sweep(
                link,
                &f,
                &[
                    (4, SkipReason::TruncatedLink),
                    (24, SkipReason::TruncatedIp),
                    (32, SkipReason::TruncatedTransport),
                ],
            );
        }
    }

    #[test]
    fn unsupported_link_type() {
        let f = ipv4(17, &[], 0, &udp(1, 2, b""));
        assert_eq!(
            decode(LinkType::Other(127), &f),
            Err(SkipReason::UnsupportedLinkType)
        );
        assert_eq!(
            decode(LinkType::Other(127), &[]),
            Err(SkipReason::UnsupportedLinkType)
        );
    }

    // ---- IPv4 -----------------------------------------------------------------

    #[test]
    fn ipv4_options_and_header_sanity() {
        for words in 1..=10usize {
            let opts = vec![1u8; words * 4]; // NOPs
            let f = cat(&[
                &eth(0x0800),
                &ipv4(6, &opts, 0, &tcp(80, 8080, 1, 0x18, &[], b"data")),
            ]);
            let m = decode(LinkType::Ethernet, &f).expect("decodes");
            assert_eq!(m.l4_offset as usize, 34 + words * 4);
            assert_eq!((m.src_port, m.payload), (80, &b"data"[..]));
            let l4 = 34 + words * 4;
            sweep(
                LinkType::Ethernet,
                &f,
                &[
                    (14, SkipReason::TruncatedLink),
                    (l4, SkipReason::TruncatedIp),
                    (l4 + 20, SkipReason::TruncatedTransport),
                ],
            );
        }
        let good = ipv4(17, &[], 0, &udp(1, 2, b"zz"));
        let mut short_ihl = good.clone();
        short_ihl[0] = 0x44;
        assert_eq!(
            decode(LinkType::Raw, &short_ihl),
            Err(SkipReason::BadIpHeader)
        );
        let mut total_below_ihl = good.clone();
        total_below_ihl[2..4].copy_from_slice(&19u16.to_be_bytes());
        assert_eq!(
            decode(LinkType::Raw, &total_below_ihl),
            Err(SkipReason::BadIpHeader)
        );
        // Total length covering only part of the UDP header: malformed, not truncated.
        let mut total_short = good.clone();
        total_short[2..4].copy_from_slice(&24u16.to_be_bytes());
        assert_eq!(
            decode(LinkType::Raw, &total_short),
            Err(SkipReason::BadTransportHeader)
        );
        // Total length 0 (segmentation offload): the wire length is used.
        let mut tso = good.clone();
        tso[2..4].copy_from_slice(&0u16.to_be_bytes());
        let m = decode_frame(LinkType::Raw, &tso[..28], 9000).expect("decodes");
        assert_eq!(m.ip_len, 9000);
        let m = decode(LinkType::Raw, &tso).expect("decodes");
        assert_eq!((m.ip_len, m.payload), (30, &b"zz"[..]));
    }

    #[test]
    fn ipv4_fragments() {
        // First fragment: MF set, offset 0: ports known.
        let f = ipv4(17, &[], 0x2000, &udp(5353, 53, &DNS[..16]));
        let m = decode(LinkType::Raw, &f).expect("decodes");
        assert_eq!(
            (m.fragment, m.src_port, m.dst_port),
            (Fragment::First, 5353, 53)
        );
        assert_eq!(m.payload, &DNS[..16]);
        assert_eq!(m.flow_skip(), None);
        // Non-first fragment: addresses and protocol, no ports, data as payload.
        let f = ipv4(17, &[], 185, &DNS[..8]);
        let m = decode(LinkType::Raw, &f).expect("decodes");
        assert_eq!(
            (m.fragment, m.proto, m.src_port, m.dst_port),
            (Fragment::NonFirst, 17, 0, 0)
        );
        assert_eq!(m.src, v4(V4_SRC));
        assert_eq!(m.payload, &DNS[..8]);
        assert_eq!(m.ip_len, 28);
        assert_eq!(m.flow_skip(), Some(SkipReason::Fragment));
        // Last fragment (MF clear, offset set) is non-first too; a non-first
        // fragment has no transport header to be truncated.
        let f = ipv4(6, &[], 0x0010, &[1, 2]);
        let m = decode(LinkType::Raw, &f).expect("decodes");
        assert_eq!((m.fragment, m.payload), (Fragment::NonFirst, &[1u8, 2][..]));
        // DF alone is not a fragment.
        let f = ipv4(6, &[], 0x4000, &tcp(1, 2, 3, 2, &[], b""));
        assert_eq!(
            decode(LinkType::Raw, &f).expect("decodes").fragment,
            Fragment::None
        );
        // Tiny first fragment holding 8 TCP bytes (nmap -f): ports and seq kept.
        let seg = tcp(31337, 22, 99, 0x02, &[], b"");
        let f = ipv4(6, &[], 0x2000, &seg[..8]);
        let m = decode(LinkType::Raw, &f).expect("decodes");
        assert_eq!(
            (m.src_port, m.dst_port, m.tcp_seq, m.tcp_flags),
            (31337, 22, 99, 0)
        );
        // A first fragment too small for the ports is malformed.
        let f = ipv4(6, &[], 0x2000, &seg[..3]);
        assert_eq!(
            decode(LinkType::Raw, &f),
            Err(SkipReason::BadTransportHeader)
        );
        // A first fragment cut by the snaplen inside the ports is truncated.
        let f = ipv4(6, &[], 0x2000, &seg[..8]);
        assert_eq!(
            decode(LinkType::Raw, &f[..22]),
            Err(SkipReason::TruncatedTransport)
        );
    }

    // ---- IPv6 -------------------------------------------------------------------

    #[test]
    fn ipv6_extension_header_chain() {
        // HBH -> DstOpts -> Routing -> Fragment (atomic) -> AH -> Mobility? no: AH -> TCP.
        let mut ah = vec![6u8, 4]; // (4 + 2) * 4 = 24 bytes
        ah.resize(24, 0);
        let seg = tcp(1000, 80, 5, 0x18, &[], b"GET /");
        let rest = cat(&[
            &ext(60, 0),
            &ext(43, 1),
            &ext(44, 0),
            &frag6(51, 0, false),
            &ah,
            &seg,
        ]);
        let f = cat(&[&eth(0x86dd), &ipv6(0, &rest)]);
        let m = decode(LinkType::Ethernet, &f).expect("decodes");
        assert_eq!(m.proto, 6);
        assert_eq!(m.fragment, Fragment::None, "atomic fragment");
        let l4 = 14 + 40 + 8 + 16 + 8 + 8 + 24;
        assert_eq!(m.l4_offset as usize, l4);
        assert_eq!(
            (m.src_port, m.dst_port, m.payload),
            (1000, 80, &b"GET /"[..])
        );
        assert_eq!(m.ip_len as usize, 40 + rest.len());
        assert_eq!(m.ttl, 55);
        sweep(
            LinkType::Ethernet,
            &f,
            &[
                (14, SkipReason::TruncatedLink),
                (l4, SkipReason::TruncatedIp),
                (l4 + 20, SkipReason::TruncatedTransport),
            ],
        );
    }

    #[test]
    fn ipv6_extension_header_limits() {
        let udp_part = udp(1, 2, b"");
        let chain = |n: usize| {
            let mut rest = Vec::new();
            for i in 0..n {
                rest.extend(ext(if i + 1 == n { 17 } else { 60 }, 0));
            }
            rest.extend(&udp_part);
            ipv6(if n == 0 { 17 } else { 0 }, &rest)
        };
        assert_eq!(
            decode(LinkType::Raw, &chain(MAX_IPV6_EXT_HEADERS))
                .expect("decodes")
                .proto,
            17
        );
        assert_eq!(
            decode(LinkType::Raw, &chain(MAX_IPV6_EXT_HEADERS + 1)),
            Err(SkipReason::TooManyHeaders)
        );
        // An extension header running past the payload length: malformed.
        let mut f = ipv6(0, &ext(17, 2));
        f[4..6].copy_from_slice(&8u16.to_be_bytes());
        f.truncate(48);
        f.resize(64, 0);
        assert_eq!(decode(LinkType::Raw, &f), Err(SkipReason::BadIpHeader));
        // ESP and No Next Header end the walk.
        let f = ipv6(60, &cat(&[&ext(50, 0), &[0, 0, 1, 0, 0, 0, 0, 1, 9, 9]]));
        let m = decode(LinkType::Raw, &f).expect("decodes");
        assert_eq!((m.proto, m.src_port, m.payload.len()), (50, 0, 10));
        let f = ipv6(59, &[]);
        let m = decode(LinkType::Raw, &f).expect("decodes");
        assert_eq!((m.proto, m.ip_len, m.payload.len()), (59, 40, 0));
        // Mobility header is walked.
        let f = ipv6(135, &cat(&[&ext(17, 0), &udp(7, 8, b"")]));
        assert_eq!(decode(LinkType::Raw, &f).expect("decodes").dst_port, 8);
    }

    #[test]
    fn ipv6_fragments() {
        let first = ipv6(44, &cat(&[&frag6(17, 0, true), &udp(53, 4000, &DNS[..8])]));
        let m = decode(LinkType::Raw, &first).expect("decodes");
        assert_eq!(
            (m.fragment, m.proto, m.src_port, m.dst_port),
            (Fragment::First, 17, 53, 4000)
        );
        let later = ipv6(0, &cat(&[&ext(44, 0), &frag6(17, 181, true), &DNS[..16]]));
        let m = decode(LinkType::Raw, &later).expect("decodes");
        assert_eq!(
            (m.fragment, m.proto, m.src_port, m.dst_port),
            (Fragment::NonFirst, 17, 0, 0)
        );
        assert_eq!((m.l4_offset, m.payload), (56, &DNS[..16]));
        assert_eq!(m.flow_skip(), Some(SkipReason::Fragment));
        // Last fragment: offset set, M clear.
        let last = ipv6(44, &cat(&[&frag6(6, 1, false), &[1, 2, 3]]));
        assert_eq!(
            decode(LinkType::Raw, &last).expect("decodes").fragment,
            Fragment::NonFirst
        );
    }

    #[test]
    fn ipv6_zero_payload_length_uses_wire_length() {
        let mut f = ipv6(6, &tcp(1, 2, 3, 0x10, &[], &[0; 100]));
        f[4..6].copy_from_slice(&0u16.to_be_bytes());
        let m = decode_frame(LinkType::Raw, &f[..80], 64_000).expect("decodes");
        assert_eq!(m.ip_len, 64_000);
        assert_eq!(m.payload.len(), 20, "the captured part of the payload");
        // With No Next Header, 0 is a real length: Ethernet padding is not payload.
        let mut f = cat(&[&eth(0x86dd), &ipv6(59, &[])]);
        f.resize(60, 0);
        assert_eq!(decode(LinkType::Ethernet, &f).expect("decodes").ip_len, 40);
    }

    // ---- transport ---------------------------------------------------------------

    #[test]
    fn transport_protocols() {
        let sctp = {
            let mut v = 3868u16.to_be_bytes().to_vec();
            v.extend(3869u16.to_be_bytes());
            v.extend([0; 8]);
            v.extend([1, 0, 0, 4]);
            v
        };
        let f = ipv4(132, &[], 0, &sctp);
        let m = decode(LinkType::Raw, &f).expect("decodes");
        assert_eq!(
            (m.proto, m.src_port, m.dst_port, m.payload.len()),
            (132, 3868, 3869, 4)
        );
        let mut lite = udp(5000, 5001, b"xyz");
        lite[4..6].copy_from_slice(&8u16.to_be_bytes()); // checksum coverage, not a length
        let f = ipv6(136, &lite);
        let m = decode(LinkType::Raw, &f).expect("decodes");
        assert_eq!(
            (m.proto, m.src_port, m.dst_port, m.payload),
            (136, 5000, 5001, &b"xyz"[..])
        );
        let f = ipv4(1, &[], 0, &icmp(3, 3, b"inner"));
        let m = decode(LinkType::Raw, &f).expect("decodes");
        assert_eq!(
            (m.src_port, m.dst_port, m.payload),
            (0, 0x0303, &b"inner"[..])
        );
        let gre = [0u8, 0, 0x08, 0x00, 0x45];
        let f = ipv4(47, &[], 0, &gre);
        let m = decode(LinkType::Raw, &f).expect("decodes");
        assert_eq!(
            (m.proto, m.src_port, m.dst_port, m.tcp_flags, m.payload),
            (47, 0, 0, 0, &gre[..])
        );
        sweep(
            LinkType::Raw,
            &ipv4(132, &[], 0, &sctp),
            &[
                (20, SkipReason::TruncatedIp),
                (32, SkipReason::TruncatedTransport),
            ],
        );
        sweep(
            LinkType::Raw,
            &ipv4(47, &[], 0, &gre),
            &[(20, SkipReason::TruncatedIp)],
        );
    }

    #[test]
    fn tcp_data_offset_sanity() {
        let seg = tcp(1, 2, 3, 0x11, &[1, 1, 1, 1, 2, 4, 5, 0xb4], b"pay");
        let f = ipv4(6, &[], 0, &seg);
        let m = decode(LinkType::Raw, &f).expect("decodes");
        assert_eq!((m.l4_offset, m.payload), (20, &b"pay"[..]));
        // Options cut by the snaplen: fields known, payload empty.
        let m = decode(LinkType::Raw, &f[..42]).expect("decodes");
        assert_eq!((m.tcp_flags, m.payload.len()), (0x11, 0));
        let mut bad = f.clone();
        bad[32] = 4 << 4;
        assert_eq!(
            decode(LinkType::Raw, &bad),
            Err(SkipReason::BadTransportHeader)
        );
        let mut past = f.clone();
        past[32] = 15 << 4;
        assert_eq!(
            decode(LinkType::Raw, &past),
            Err(SkipReason::BadTransportHeader)
        );
    }

    #[test]
    fn skip_reason_table() {
        assert_eq!(SkipReason::ALL.len(), SkipReason::COUNT);
        let mut names = std::collections::HashSet::new();
        for (i, r) in SkipReason::ALL.iter().enumerate() {
            assert_eq!(r.index(), i);
            assert!(names.insert(r.as_str()));
            assert!(
                r.as_str()
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b == b'_')
            );
            assert_eq!(r.to_string(), r.as_str());
        }
        assert_eq!(std::mem::size_of::<SkipReason>(), 1);
        assert_eq!(
            std::mem::size_of::<Result<PacketMeta<'_>, SkipReason>>(),
            std::mem::size_of::<PacketMeta<'_>>()
        );
    }

    // ---- robustness -------------------------------------------------------------

    const LINKS: [LinkType; 9] = [
        LinkType::Ethernet,
        LinkType::LinuxSll,
        LinkType::LinuxSll2,
        LinkType::Raw,
        LinkType::Ipv4,
        LinkType::Ipv6,
        LinkType::Null,
        LinkType::Loop,
        LinkType::Other(9),
    ];

    fn check_invariants(frame: &[u8], m: &PacketMeta<'_>) {
        let start = m.payload.as_ptr() as usize - frame.as_ptr() as usize;
        assert!(start + m.payload.len() <= frame.len());
        assert!(m.l3_offset <= m.l4_offset);
        assert!(m.l4_offset as usize <= frame.len());
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_frames_never_panic(
            link in proptest::sample::select(LINKS.to_vec()),
            frame in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200),
            orig in proptest::prelude::any::<u32>(),
        ) {
            if let Ok(m) = decode_frame(link, &frame, orig) {
                check_invariants(&frame, &m);
            }
        }

        /// Plausible frames with a few bytes changed reach much deeper than noise.
        #[test]
        fn mutated_frames_never_panic(
            which in 0usize..6,
            edits in proptest::collection::vec((0usize..200, proptest::prelude::any::<u8>()), 1..6),
            cut in 0usize..200,
        ) {
            let seg = tcp(1, 2, 3, 0x18, &[1, 1, 1, 1], b"payload");
            let mut f = match which {
                0 => cat(&[&eth(0x8100), &tag(5, 0x0800), &ipv4(6, &[1, 1, 1, 1], 0, &seg)]),
                1 => cat(&[&eth(0x86dd), &ipv6(0, &cat(&[&ext(44, 1), &frag6(17, 0, true), &udp(1, 2, DNS)]))]),
                2 => cat(&[&eth(0x8847), &mpls(1, false), &mpls(2, true), &ipv4(17, &[], 0x2000, &udp(3, 4, DNS))]),
                3 => cat(&[&eth(0x86dd), &ipv6(51, &cat(&[&[60, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], &ext(6, 0), &seg]))]),
                4 => cat(&[&eth(0x8864), &[0x11, 0, 0, 1, 0, 0, 0, 0x57], &ipv6(58, &icmp(1, 4, DNS))]),
                _ => cat(&[&eth(0x88a8), &tag(1, 0x8100), &tag(2, 0x8847), &mpls(3, true), &ipv6(17, &udp(5, 6, DNS))]),
            };
            for (at, v) in edits {
                let n = f.len();
                f[at % n] = v;
            }
            let cut = cut.min(f.len());
            for link in LINKS {
                if let Ok(m) = decode(link, &f[..cut]) {
                    check_invariants(&f, &m);
                }
            }
        }
    }
}

//! Flow words, as Spot's master `FlowWordCreator` builds them
//! (`spot-reference.md` §2.1): `[-1_]<keyport>_<proto>_<hour>_<B>_<P>` with
//! B = bitlen(ibyt), P = bitlen(ipkt) and the 7-rule port table.
//!
//! # Bidirectional records
//!
//! Spot read unidirectional nfdump records: each had one `sip → dip` direction
//! with `ibyt`/`ipkt`, and produced a src word (counted in the `sip` document)
//! and a dst word (counted in the `dip` document). Osprey's [`FlowRecord`] is
//! bidirectional (RFC 5103): initiator → responder `packets`/`bytes` and the
//! reverse `rev_packets`/`rev_bytes`. A NetFlow exporter would have emitted
//! that conversation as **two** unidirectional records, so each `FlowRecord`
//! yields:
//!
//! 1. the *forward* event: sip = `src_ip`, dip = `dst_ip`, sport = `src_port`,
//!    dport = `dst_port`, ibyt = `bytes`, ipkt = `packets`;
//! 2. if `rev_packets > 0`, the *reverse* event: sip = `dst_ip`,
//!    dip = `src_ip`, sport = `dst_port`, dport = `src_port`,
//!    ibyt = `rev_bytes`, ipkt = `rev_packets`.
//!
//! Each event gives its src and dst word, exactly as Spot would have built them
//! from the equivalent nfdump record, so the corpus has the same words and
//! counts Spot's would have had on the same traffic. Keeping the reverse event
//! (rather than folding `rev_bytes` into one word) matters: a scan's unanswered
//! SYNs have no reverse event, while normal conversations do, just as in Spot.
//! The record's score is the minimum over all of its words (Spot's min over
//! src/dst, extended over both directions), so an anomaly in either direction
//! surfaces.
//!
//! For ICMP the forward `dst_port` is `type << 8 | code` as nfdump reports it;
//! the reply's type is not recorded, so the reverse event uses ports 0/0
//! (which is also what an echo reply, type 0 code 0, would give).
//!
//! The hour is the UTC hour of `ts_start` (Spot's `trhour` is the hour nfdump
//! printed, which is the collector's clock). The protocol is nfdump's text for
//! it ([`proto_name`]).
//!
//! [`FlowRecord`]: osprey_segment::records::FlowRecord

use std::borrow::Cow;
use std::net::IpAddr;

use osprey_segment::records::FlowRecord;

use super::{bitlen, utc_hour};

/// The two words of one unidirectional flow event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowWords {
    /// Word counted in the source IP's document.
    pub src: String,
    /// Word counted in the destination IP's document.
    pub dst: String,
}

/// Spot's flow words for one unidirectional record (`FlowWordCreator`).
///
/// Ports are taken as `u32` so the ICMP `type.code` encoding and any port
/// value nfdump can print fit; Spot rejected negative ports before this point.
pub fn spot_flow_words(hour: u32, sport: u32, dport: u32, proto: &str, ibyt: u64, ipkt: u64) -> FlowWords {
    let base = |port: u32| format!("{port}_{proto}_{hour}_{}_{}", bitlen(ibyt), bitlen(ipkt));
    // (key port, src side owns the key port, dst side owns it)
    let (key, src_owner, dst_owner) = match (sport, dport) {
        (0, 0) => (0, false, false),
        (sp, 0) => (sp, true, false),
        (0, dp) => (dp, false, true),
        (sp, dp) if sp <= 1024 && dp <= 1024 => (111_111, false, false),
        (sp, _) if sp <= 1024 => (sp, true, false),
        (_, dp) if dp <= 1024 => (dp, false, true),
        _ => (333_333, false, false),
    };
    let word = base(key);
    // At most one side owns the key port, so one of the two words is `word`
    // itself: two allocations per event instead of three.
    let (src, dst) = match (src_owner, dst_owner) {
        (true, _) => (format!("-1_{word}"), word),
        (false, true) => {
            let marked = format!("-1_{word}");
            (word, marked)
        }
        (false, false) => (word.clone(), word),
    };
    FlowWords { src, dst }
}

/// nfdump's protocol text for an IP protocol number (the `proto` field of
/// Spot's flow table); numbers nfdump has no name for print as digits.
pub fn proto_name(proto: u8) -> Cow<'static, str> {
    let name = match proto {
        1 => "ICMP",
        2 => "IGMP",
        4 => "IPIP",
        6 => "TCP",
        17 => "UDP",
        41 => "IPv6",
        46 => "RSVP",
        47 => "GRE",
        50 => "ESP",
        51 => "AH",
        58 => "ICMP6",
        89 => "OSPF",
        103 => "PIM",
        112 => "VRRP",
        132 => "SCTP",
        _ => return Cow::Owned(proto.to_string()),
    };
    Cow::Borrowed(name)
}

/// One unidirectional event derived from a bidirectional record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlowDirection {
    /// Sender of this direction.
    pub sip: IpAddr,
    /// Receiver of this direction.
    pub dip: IpAddr,
    /// Sender port.
    pub sport: u16,
    /// Receiver port.
    pub dport: u16,
    /// Bytes sent in this direction.
    pub ibyt: u64,
    /// Packets sent in this direction.
    pub ipkt: u64,
}

/// The unidirectional events of a record: forward, then reverse when
/// `rev_packets > 0` (see the module doc).
pub fn flow_directions(rec: &FlowRecord) -> impl Iterator<Item = FlowDirection> {
    let fwd = FlowDirection { sip: rec.src_ip, dip: rec.dst_ip, sport: rec.src_port, dport: rec.dst_port, ibyt: rec.bytes, ipkt: rec.packets };
    let icmp = rec.proto == 1 || rec.proto == 58;
    let rev = (rec.rev_packets > 0).then_some(FlowDirection {
        sip: rec.dst_ip,
        dip: rec.src_ip,
        sport: if icmp { 0 } else { rec.dst_port },
        dport: if icmp { 0 } else { rec.src_port },
        ibyt: rec.rev_bytes,
        ipkt: rec.rev_packets,
    });
    std::iter::once(fwd).chain(rev)
}

/// All (document IP, word) pairs of a flow record: the src and dst words of
/// each of its directions, in order fwd-src, fwd-dst[, rev-src, rev-dst].
pub fn flow_record_words(rec: &FlowRecord) -> Vec<(IpAddr, String)> {
    let hour = utc_hour(rec.ts_start);
    let proto = proto_name(rec.proto);
    let mut out = Vec::with_capacity(4);
    for d in flow_directions(rec) {
        let w = spot_flow_words(hour, u32::from(d.sport), u32::from(d.dport), &proto, d.ibyt, d.ipkt);
        out.push((d.sip, w.src));
        out.push((d.dip, w.dst));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use osprey_segment::records::EndReason;

    #[test]
    fn reference_example_high_src_low_dst() {
        let w = spot_flow_words(12, 2132, 23, "UDP", 222, 3);
        assert_eq!(w.src, "23_UDP_12_8_2");
        assert_eq!(w.dst, "-1_23_UDP_12_8_2");
    }

    #[test]
    fn reference_example_both_low_port_1024_counts_as_low() {
        let w = spot_flow_words(12, 1024, 80, "UDP", 222, 3);
        assert_eq!(w.src, "111111_UDP_12_8_2");
        assert_eq!(w.dst, "111111_UDP_12_8_2");
    }

    #[test]
    fn website_example_bins_follow_the_code() {
        // The website claims 12 and 5; the code gives 11 and 4.
        let w = spot_flow_words(0, 5000, 6000, "TCP", 1026, 10);
        assert_eq!(w.src, "333333_TCP_0_11_4");
    }

    #[test]
    fn all_seven_port_rules() {
        let f = |sp, dp| {
            let w = spot_flow_words(1, sp, dp, "TCP", 0, 0);
            (w.src, w.dst)
        };
        assert_eq!(f(0, 0), ("0_TCP_1_0_0".into(), "0_TCP_1_0_0".into()));
        assert_eq!(f(5555, 0), ("-1_5555_TCP_1_0_0".into(), "5555_TCP_1_0_0".into()));
        assert_eq!(f(0, 5555), ("5555_TCP_1_0_0".into(), "-1_5555_TCP_1_0_0".into()));
        assert_eq!(f(53, 1024), ("111111_TCP_1_0_0".into(), "111111_TCP_1_0_0".into()));
        assert_eq!(f(443, 50000), ("-1_443_TCP_1_0_0".into(), "443_TCP_1_0_0".into()));
        assert_eq!(f(50000, 443), ("443_TCP_1_0_0".into(), "-1_443_TCP_1_0_0".into()));
        assert_eq!(f(1025, 50000), ("333333_TCP_1_0_0".into(), "333333_TCP_1_0_0".into()));
    }

    fn rec(rev_packets: u64) -> FlowRecord {
        FlowRecord {
            ts_start: (12 * 3600 + 30) * 1_000_000_000,
            ts_end: (12 * 3600 + 31) * 1_000_000_000,
            proto: 6,
            src_ip: IpAddr::from([10, 0, 0, 1]),
            src_port: 40000,
            dst_ip: IpAddr::from([10, 0, 0, 2]),
            dst_port: 443,
            vlan: 0,
            packets: 3,
            bytes: 222,
            rev_packets,
            rev_bytes: 1026,
            tcp_flags: 0,
            rev_tcp_flags: 0,
            end_reason: EndReason::Fin,
        }
    }

    #[test]
    fn bidirectional_record_yields_forward_and_reverse_events() {
        let a = IpAddr::from([10, 0, 0, 1]);
        let b = IpAddr::from([10, 0, 0, 2]);
        let words = flow_record_words(&rec(10));
        assert_eq!(
            words,
            vec![
                (a, "443_TCP_12_8_2".to_string()),
                (b, "-1_443_TCP_12_8_2".to_string()),
                // Reverse: b sends from 443 to a's 40000.
                (b, "-1_443_TCP_12_11_4".to_string()),
                (a, "443_TCP_12_11_4".to_string()),
            ]
        );
    }

    #[test]
    fn unanswered_record_yields_only_forward_event() {
        let words = flow_record_words(&rec(0));
        assert_eq!(words.len(), 2);
    }

    #[test]
    fn icmp_reverse_uses_zero_ports() {
        let mut r = rec(1);
        r.proto = 1;
        r.src_port = 0;
        r.dst_port = 8 << 8;
        let words = flow_record_words(&r);
        assert_eq!(words[0].1, "2048_ICMP_12_8_2");
        assert_eq!(words[1].1, "-1_2048_ICMP_12_8_2");
        assert_eq!(words[2].1, "0_ICMP_12_11_1");
    }

    proptest::proptest! {
        /// Whatever the ports, the two words differ at most by the `-1_`
        /// marker, which at most one side carries, and the bins are bitlens.
        #[test]
        fn words_differ_only_by_the_owner_marker(
            sp in 0u32..70000, dp in 0u32..70000, ibyt in 0u64..u64::MAX, ipkt in 0u64..1 << 40, hour in 0u32..24
        ) {
            let w = spot_flow_words(hour, sp, dp, "TCP", ibyt, ipkt);
            let (s, d) = (w.src.strip_prefix("-1_"), w.dst.strip_prefix("-1_"));
            proptest::prop_assert!(s.is_none() || d.is_none());
            proptest::prop_assert_eq!(s.unwrap_or(&w.src), d.unwrap_or(&w.dst));
            let expected_suffix = format!("_TCP_{hour}_{}_{}", bitlen(ibyt), bitlen(ipkt));
            proptest::prop_assert!(w.src.ends_with(&expected_suffix));
        }
    }

    #[test]
    fn proto_names() {
        assert_eq!(proto_name(6), "TCP");
        assert_eq!(proto_name(17), "UDP");
        assert_eq!(proto_name(58), "ICMP6");
        assert_eq!(proto_name(200), "200");
    }
}

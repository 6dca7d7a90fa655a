//! Helpers shared by the `live_*` tests: generated traffic in the test ranges
//! (198.18.0.0/15, 2001:2::/48), offline ingest of the same packets, and
//! order-free comparison of records.

#![allow(dead_code, reason = "each test file uses a different subset")]

use std::fmt::Debug;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;

use osprey_capture::craft::{self, DnsBuilder, DnsHeader, Ipv4, Ipv6, PacketBuilder, PcapWriter, RData, Tcp, Udp, ip_proto, tcp_flags};
use osprey_capture::ingest::{IngestConfig, Ingestor};
use osprey_segment::partition::{DataReader, TimeRange, read_all};
use osprey_segment::{DnsRecord, FlowRecord, Kind};

/// The receiving side's MAC; frames are sent to `OTHER_MAC` so the receiving
/// kernel drops them silently (PACKET_OTHERHOST) after the tap saw them.
pub const SRC_MAC: [u8; 6] = [0x02, 0x00, 0x5e, 0x00, 0x00, 0x01];
/// Destination MAC of generated frames.
pub const OTHER_MAC: [u8; 6] = [0x02, 0x00, 0x5e, 0x00, 0x00, 0x99];

/// Client address `i` in 198.18.0.0/16.
pub fn v4_client(i: u32) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(198, 18, (i >> 8) as u8, (i & 0xff) as u8))
}
/// Server address `i` in 198.19.0.0/16.
pub fn v4_server(i: u32) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(198, 19, (i >> 8) as u8, (i & 0xff) as u8))
}
/// Address `i` in 2001:2::/48.
pub fn v6(host: u16, i: u16) -> IpAddr {
    IpAddr::V6(Ipv6Addr::new(0x2001, 2, 0, host, 0, 0, 0, i))
}

/// One UDP frame.
pub fn udp(src: IpAddr, sp: u16, dst: IpAddr, dp: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::new();
    PacketBuilder::new(&mut f).ethernet(OTHER_MAC, SRC_MAC).ip(src, dst).udp(Udp::new(sp, dp)).payload(payload).finish();
    f
}

/// One TCP frame.
pub fn tcp(src: IpAddr, sp: u16, dst: IpAddr, dp: u16, flags: u8, seq: u32, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::new();
    PacketBuilder::new(&mut f).ethernet(OTHER_MAC, SRC_MAC).ip(src, dst).tcp(Tcp { seq, ..Tcp::new(sp, dp, flags) }).payload(payload).finish();
    f
}

/// A DNS query (or response) message.
pub fn dns_msg(id: u16, name: &str, response: bool) -> Vec<u8> {
    let mut m = Vec::new();
    let hdr = if response { DnsHeader::response(id, 0) } else { DnsHeader::query(id) };
    let mut b = DnsBuilder::new(&mut m, hdr).question(name, 1, 1);
    if response {
        b = b.answer(name, 300, RData::A(Ipv4Addr::new(198, 18, 200, (id & 0xff) as u8)));
    }
    b.finish();
    m
}

/// A DNS response with `answers` A records: longer than the kernel's
/// 512-byte DNS copy from about 30 answers on.
pub fn big_dns_response(id: u16, name: &str, answers: u16) -> Vec<u8> {
    let mut m = Vec::new();
    let mut b = DnsBuilder::new(&mut m, DnsHeader::response(id, 0)).question(name, 1, 1);
    for i in 0..answers {
        b = b.answer(name, 60, RData::A(Ipv4Addr::new(198, 18, 201, (i & 0xff) as u8)));
    }
    b.finish();
    m
}

/// A UDP datagram (`src:sp → dst:dp`, `payload`) as IP fragments carrying at
/// most `per_fragment` bytes of it each (a multiple of 8), IPv4 or IPv6 after
/// the addresses' family, with fragment id `id`.
pub fn udp_fragments(src: IpAddr, sp: u16, dst: IpAddr, dp: u16, payload: &[u8], per_fragment: usize, id: u16) -> Vec<Vec<u8>> {
    assert!(per_fragment.is_multiple_of(8) && per_fragment > 0);
    let mut whole = Vec::new();
    PacketBuilder::new(&mut whole).ip(src, dst).udp(Udp::new(sp, dp)).payload(payload).finish();
    let l4 = if src.is_ipv4() { 20 } else { 40 };
    let dgram = whole[l4..].to_vec();
    let mut out = Vec::new();
    for (k, part) in dgram.chunks(per_fragment).enumerate() {
        let off = (k * per_fragment / 8) as u16;
        let more = (k + 1) * per_fragment < dgram.len();
        let mut f = Vec::new();
        let b = PacketBuilder::new(&mut f).ethernet(OTHER_MAC, SRC_MAC);
        let b = match (src, dst) {
            (IpAddr::V4(s), IpAddr::V4(d)) => {
                b.ipv4(Ipv4 { id, dont_fragment: false, more_fragments: more, fragment_offset: off, ..Ipv4::new(s, d) })
            }
            (IpAddr::V6(s), IpAddr::V6(d)) => b.ipv6(Ipv6::new(s, d)).ipv6_fragment(off, more, u32::from(id)),
            _ => panic!("mixed address families"),
        };
        b.ip_protocol(ip_proto::UDP).payload(part).finish();
        out.push(f);
    }
    out
}

/// A DNS exchange over TCP without FIN (so it ends the same way live and
/// offline): handshake, the length-prefixed query, the length-prefixed response.
pub fn tcp_dns_exchange(c: IpAddr, cp: u16, s: IpAddr, id: u16, name: &str, answers: u16) -> Vec<Vec<u8>> {
    let q = dns_msg(id, name, false);
    let r = big_dns_response(id, name, answers);
    let framed = |m: &[u8]| {
        let mut v = (m.len() as u16).to_be_bytes().to_vec();
        v.extend_from_slice(m);
        v
    };
    let (qf, rf) = (framed(&q), framed(&r));
    vec![
        tcp(c, cp, s, 53, tcp_flags::SYN, 1000, b""),
        tcp(s, 53, c, cp, tcp_flags::SYN | tcp_flags::ACK, 5000, b""),
        tcp(c, cp, s, 53, tcp_flags::ACK, 1001, b""),
        tcp(c, cp, s, 53, tcp_flags::ACK | tcp_flags::PSH, 1001, &qf),
        tcp(s, 53, c, cp, tcp_flags::ACK | tcp_flags::PSH, 5001, &rf),
    ]
}

/// Traffic only the AF_XDP path completes: DNS over TCP, UDP DNS responses
/// in IP fragments (v4 and v6, 600- and 200-byte fragments), and UDP DNS messages longer than the kernel's
/// DNS copy; `n` of each kind.
pub fn af_xdp_workload(n: u32) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for i in 0..n {
        let c = v4_client(2000 + i);
        let name = format!("tcp{i}.osprey.test");
        out.extend(tcp_dns_exchange(c, 40_000 + i as u16, v4_server(54), 0x4000 + i as u16, &name, 3 + (i % 25) as u16));
        let (c6, s6) = (v6(3, i as u16), v6(4, 53));
        let (fc, fs) = if i % 2 == 0 { (v4_client(3000 + i), v4_server(55)) } else { (c6, s6) };
        let name = format!("frag{i}.osprey.test");
        let big = big_dns_response(0x5000 + i as u16, &name, 80);
        out.push(udp(fc, 41_000 + i as u16, fs, 53, &dns_msg(0x5000 + i as u16, &name, false)));
        // Half of them in small fragments: a first fragment well under the
        // kernel's 512-byte DNS copy must not yield a cut-short kernel record.
        let frag_bytes = if i % 4 < 2 { 600 } else { 200 };
        out.extend(udp_fragments(fs, 53, fc, 41_000 + i as u16, &big, frag_bytes, 7000 + i as u16));
        let name = format!("large{i}.osprey.test");
        out.push(udp(v4_server(56), 53, v4_client(4000 + i), 42_000 + i as u16, &big_dns_response(0x6000 + i as u16, &name, 35)));
    }
    out
}

/// A mixed workload: `flows` UDP and TCP conversations (v4 and v6, a few
/// packets each, some with a VLAN tag) and `dns` query/response pairs.
/// Timestamps start at `t0` and advance 10 µs per packet.
pub fn workload(flows: u32, dns: u32, t0: i64) -> Vec<(i64, Vec<u8>)> {
    let mut out = Vec::new();
    let mut ts = t0;
    let mut push = |f: Vec<u8>, out: &mut Vec<(i64, Vec<u8>)>| {
        out.push((ts, f));
        ts += 10_000;
    };
    for i in 0..flows {
        let (c, s) = if i % 3 == 2 { (v6(1, i as u16), v6(2, (i % 7) as u16)) } else { (v4_client(i), v4_server(i % 11)) };
        let sp = 20_000 + (i % 40_000) as u16;
        if i % 2 == 0 {
            for k in 0..3 {
                push(udp(c, sp, s, 9_000, &[k as u8; 40]), &mut out);
            }
            push(udp(s, 9_000, c, sp, &[9; 100]), &mut out);
        } else {
            push(tcp(c, sp, s, 443, tcp_flags::SYN, 1, b""), &mut out);
            push(tcp(s, 443, c, sp, tcp_flags::SYN | tcp_flags::ACK, 7, b""), &mut out);
            push(tcp(c, sp, s, 443, tcp_flags::ACK | tcp_flags::PSH, 2, &[1; 200]), &mut out);
        }
    }
    for i in 0..dns {
        let (c, s) = (v4_client(1000 + i % 500), v4_server(53));
        let id = i as u16;
        let name = format!("host{}.osprey.test", i % 97);
        let sp = 30_000 + (i % 20_000) as u16;
        push(udp(c, sp, s, 53, &dns_msg(id, &name, false)), &mut out);
        push(udp(s, 53, c, sp, &dns_msg(id, &name, true)), &mut out);
    }
    out
}

/// A pcap (in memory) of the frames.
pub fn pcap(frames: &[(i64, Vec<u8>)]) -> Vec<u8> {
    let mut w = PcapWriter::new(Vec::new(), craft::linktype::ETHERNET).expect("header");
    for (ts, f) in frames {
        w.write_packet(*ts, f).expect("write");
    }
    w.into_inner().expect("flush")
}

/// Offline ingest of a capture: its flow and DNS records.
pub fn offline(capture: &[u8], cfg: IngestConfig) -> (Vec<FlowRecord>, Vec<DnsRecord>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut ing = Ingestor::new(dir.path(), cfg).expect("ingestor");
    ing.ingest_bytes(Path::new("capture"), capture, &mut |_, _| {}).expect("ingest");
    ing.finish().expect("finish");
    stored(dir.path())
}

/// Every record stored under `data`, asserting no segment is damaged.
pub fn stored(data: &Path) -> (Vec<FlowRecord>, Vec<DnsRecord>) {
    for kind in [Kind::Flow, Kind::Dns] {
        let mut r = DataReader::open(data, kind, TimeRange::default()).expect("open");
        for _ in r.by_ref() {}
        assert!(r.skipped().is_empty(), "damaged {kind} segments: {:?}", r.skipped());
    }
    let (f, s1) = read_all::<FlowRecord>(data, TimeRange::default()).expect("flows");
    let (d, s2) = read_all::<DnsRecord>(data, TimeRange::default()).expect("dns");
    assert!(s1.is_empty() && s2.is_empty());
    (f, d)
}

/// Records as sorted debug strings, for order-free comparison.
pub fn sorted<T: Debug>(v: &[T]) -> Vec<String> {
    let mut s: Vec<String> = v.iter().map(|r| format!("{r:?}")).collect();
    s.sort();
    s
}

/// A flow without its timestamps (live capture stamps packets itself).
pub fn flow_key(f: &FlowRecord) -> String {
    format!(
        "{} {}:{} > {}:{} vlan {} pk {}/{} by {}/{} fl {}/{} {:?}",
        f.proto,
        f.src_ip,
        f.src_port,
        f.dst_ip,
        f.dst_port,
        f.vlan,
        f.packets,
        f.rev_packets,
        f.bytes,
        f.rev_bytes,
        f.tcp_flags,
        f.rev_tcp_flags,
        f.end_reason
    )
}

/// A DNS record without its timestamp and latency.
pub fn dns_key(d: &DnsRecord) -> String {
    let d = DnsRecord { ts: 0, latency_ns: None, ..d.clone() };
    format!("{d:?}")
}

/// Sorted keys.
pub fn keys<T>(v: &[T], f: impl Fn(&T) -> String) -> Vec<String> {
    let mut s: Vec<String> = v.iter().map(f).collect();
    s.sort();
    s
}

/// Whether an address is in the test ranges.
pub fn in_test_ranges(ip: &IpAddr) -> bool {
    match ip {
        IpAddr::V4(a) => a.octets()[0] == 198 && (a.octets()[1] & 0xfe) == 18,
        IpAddr::V6(a) => a.segments()[0] == 0x2001 && a.segments()[1] == 2 && a.segments()[2] == 0,
    }
}

/// Every capture file of `../shared/data` (pcap/ and netflow/pcap/), sorted;
/// empty, with a printed reason, when the shared data is absent.
pub fn shared_captures() -> Vec<std::path::PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data");
    let mut files = Vec::new();
    for sub in ["pcap/dns", "pcap/mixed", "pcap/malicious", "netflow/pcap"] {
        if let Ok(rd) = std::fs::read_dir(dir.join(sub)) {
            files.extend(rd.flatten().map(|e| e.path()).filter(|p| p.is_file()));
        }
    }
    files.sort();
    if files.is_empty() {
        eprintln!("SKIP: shared captures not found under {}", dir.display());
    }
    files
}

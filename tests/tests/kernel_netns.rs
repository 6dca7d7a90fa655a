//! End-to-end test of the kernel path over a real interface: two throwaway
//! network namespaces joined by a veth pair ([`osprey_integration_tests::netns`]),
//! Osprey's XDP program attached to the veth end in namespace A (through a BPF
//! link, native mode asked first; the mode in effect is printed and checked
//! against `ip -d link`), and traffic written with an `AF_PACKET` socket
//! bound to the end in namespace B. What the kernel accounted (flows drained
//! from the map, DNS ring records, per-reason counters) is compared with
//! offline ingest (`Ingestor`) of a pcap holding exactly the frames sent.
//!
//! 1. Generated traffic (`osprey_capture::craft`): TCP handshakes with data
//!    and FIN/RST, DNS over UDP (queries, responses with A/AAAA/CNAME/MX/TXT
//!    answers, compressed names, mDNS), ICMP and ICMPv6 echo, plain UDP;
//!    IPv4 and IPv6, no VLAN tags.
//! 2. Replays of the shared captures (`../shared/data/pcap`): every address
//!    mapped by `tcprewrite --pnat` into 198.18.0.0/16 and 2001:2:0:1::/64.
//!
//! # Addresses: nothing outside 198.18.0.0/15 and 2001:2::/48 is ever sent
//!
//! - The interfaces have 198.19.255.1-2/24 and 2001:2:0:ffff::1-2/64, no
//!   link-local address (`addrgenmode none`), no DAD, and permanent neighbour
//!   entries for each other, so neither kernel has a reason to send ARP or
//!   neighbour discovery. Generated traffic uses 198.19.1.0/24 and
//!   2001:2:0:2::/64; replays land in 198.18.0.0/16 and 2001:2:0:1::/64, so a
//!   replayed packet never carries an interface's address (the stack in A
//!   answers nothing: IP forwarding is off in a new namespace).
//! - Every frame of a rewritten capture is decoded with the project's own
//!   reader and decoder before anything is sent. The test **refuses to send**
//!   (panics before the first frame) if a decoded IP header has an address
//!   outside the ranges. Frames whose addresses cannot be checked, or that
//!   carry addresses tcprewrite does not rewrite, are left out and counted:
//!   non-IP frames (ARP, LLDP, ...), frames the decoder rejects (truncated,
//!   malformed), tunnels (IP-in-IP, IPv6-in-IP, GRE, EtherIP, MPLS-in-IP,
//!   VXLAN), ICMP errors (they quote the original header), neighbour
//!   discovery (addresses in the payload), IPv6 routing and destination
//!   options headers (addresses in the header chain), frames shorter than an
//!   Ethernet header or longer than the veth MTU allows.
//!   MACs are not rewritten: XDP sees frames before the MAC filter, and
//!   foreign destination MACs make A's stack drop the frames at once.
//!
//! # What is compared, and the differences that are expected
//!
//! - Flows: per-key packet and byte totals (both directions; records that a
//!   timeout split offline are summed: the kernel uses its own clock, not the
//!   capture's timestamps). Counters: packets seen, packets accounted, skips
//!   by reason: all identical.
//! - DNS: every field of every record except the timestamp (kernel clock vs
//!   capture time) and `latency_ns` (offline matches queries to responses;
//!   the kernel ring does not). Answers are compared for messages no longer
//!   than the kernel's copy (`OSPREY_DNS_MAX_COPY`): a longer message is
//!   decoded by userspace from its first bytes only, so its answers are
//!   cleared on both sides before comparing. Messages offline ingest
//!   reassembled from IP fragments have no kernel counterpart (the kernel
//!   does not reassemble; see docs/flow-semantics.md): they are removed from
//!   the offline side and counted.
//!
//! Root only (prints why it skips otherwise); CI runs it as root.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use osprey_capture::craft::{
    DnsBuilder, DnsHeader, Icmp, Name, PacketBuilder, PcapWriter, RData, Tcp, Udp, linktype, tcp_flags,
};
use osprey_capture::ingest::IngestConfig;
use osprey_capture::kernel::{AttachMode, AttachRequest, KernelCapture, KernelConfig, KernelCounters, KernelDnsEvent};
use osprey_capture::packet::{self, Fragment, SkipReason};
use osprey_capture::pcap::{CaptureReader, LinkType};
use osprey_ebpf::consts;
use osprey_integration_tests::netns::{self, PacketSocket, PairConfig, VethPair};
use osprey_integration_tests::{assert_same_flow_totals, captures_under, flow_totals, ingest, shared_data};
use osprey_segment::{DnsRecord, DnsTransport};

const DNS_PORTS: [u16; 3] = [53, 5353, 5355];
const MTU: u32 = 3000;
const PNAT: &str = "0.0.0.0/0:198.18.0.0/16,[::/0]:[2001:2:0:1::/64]";

/// The only addresses this test ever puts on the wire.
fn in_test_ranges(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(a) => (u32::from(a) & 0xfffe_0000) == u32::from(Ipv4Addr::new(198, 18, 0, 0)),
        IpAddr::V6(a) => {
            let s = a.segments();
            s[0] == 0x2001 && s[1] == 2 && s[2] == 0
        }
    }
}

// ---- comparison ----


/// A DNS record as compared: timestamp and latency cleared; answers cleared
/// when the message was longer than the kernel's copy.
fn dns_norm(r: &DnsRecord) -> String {
    let mut r = r.clone();
    r.ts = 0;
    r.latency_ns = None;
    if r.size > osprey_ebpf::DNS_MAX_COPY as u32 {
        r.answers.clear();
    }
    format!("{r:?}")
}

fn sub(a: &KernelCounters, b: &KernelCounters) -> KernelCounters {
    let mut out = KernelCounters::default();
    for ((o, x), y) in out.raw.iter_mut().zip(a.raw).zip(b.raw) {
        *o = x - y;
    }
    out
}

#[derive(Debug, Default)]
struct Outcome {
    flows: usize,
    dns: usize,
    long_dns: usize,
    reassembled_dns: usize,
}

/// Compares what the kernel saw since `base` with offline ingest of `pcap`
/// (exactly the frames sent). Flushes the flow map.
fn compare(name: &str, k: &mut KernelCapture, base: &KernelCounters, sent: u64, events: &[KernelDnsEvent], pcap: &Path) -> Outcome {
    let counters = sub(&k.counters().expect("counters"), base);
    let kflows = k.flush().expect("flush");
    let off = ingest(pcap, IngestConfig { dns_ports: DNS_PORTS.to_vec(), ..IngestConfig::default() });

    assert_eq!(counters.packets(), sent, "{name}: packets the program saw = frames sent");
    assert_eq!(
        counters.skipped_all(),
        off.stats.skipped,
        "{name}: skip counters by reason {:?}",
        SkipReason::ALL.map(|r| r.as_str())
    );
    assert_eq!(counters.flow_packets(), off.stats.flow_packets, "{name}: packets accounted to flows");
    assert_eq!(counters.flow_table_full(), 0, "{name}");
    assert_eq!(counters.get(consts::CNT_DNS_RING_FULL), 0, "{name}");

    let (got, want) = (flow_totals(&kflows), flow_totals(&off.flows));
    assert_same_flow_totals(name, &got, &want);

    // Offline DNS over UDP, minus messages reassembled from fragments (the
    // kernel sees only the first fragment, whose UDP payload the fragment
    // boundary cuts short): both sides drop messages of fragmented datagrams.
    let frag_msgs = fragmented_dns_messages(pcap);
    let is_frag = |r: &DnsRecord| frag_msgs.contains(&(r.client_ip, r.client_port, r.server_ip, r.server_port, r.id));
    let mut kd_kept: Vec<String> = Vec::new();
    let mut undecodable = 0;
    for ev in events {
        match k.dns_record(ev) {
            Ok(r) if is_frag(&r) => {}
            Ok(r) => kd_kept.push(dns_norm(&r)),
            Err(_) => undecodable += 1,
        }
    }
    let mut od: Vec<String> = Vec::new();
    let mut reassembled = 0;
    for r in off.dns.iter().filter(|r| r.transport == DnsTransport::Udp) {
        if is_frag(r) {
            reassembled += 1;
        } else {
            od.push(dns_norm(r));
        }
    }
    kd_kept.sort();
    od.sort();
    if kd_kept != od {
        let (mut i, mut j) = (0, 0);
        while i < kd_kept.len() || j < od.len() {
            match (kd_kept.get(i), od.get(j)) {
                (Some(a), Some(b)) if a == b => {
                    i += 1;
                    j += 1;
                }
                (Some(a), Some(b)) if a < b => {
                    println!("  kernel only: {a}");
                    i += 1;
                }
                (Some(a), None) => {
                    println!("  kernel only: {a}");
                    i += 1;
                }
                (_, Some(b)) => {
                    println!("  offline only: {b}");
                    j += 1;
                }
                (None, None) => break,
            }
        }
        panic!("{name}: DNS records differ ({} kernel, {} offline, {undecodable} kernel records undecodable)", kd_kept.len(), od.len());
    }
    let long_dns = off
        .dns
        .iter().filter(|r| r.transport == DnsTransport::Udp && r.size > osprey_ebpf::DNS_MAX_COPY as u32).count();
    Outcome { flows: got.len(), dns: kd_kept.len(), long_dns, reassembled_dns: reassembled }
}

/// (client ip, client port, server ip, server port, id) of DNS messages that
/// travel in IP fragments in `pcap` (keyed by the first fragment's header).
fn fragmented_dns_messages(pcap: &Path) -> Vec<(IpAddr, u16, IpAddr, u16, u16)> {
    let data = std::fs::read(pcap).expect("read pcap");
    let mut reader = CaptureReader::new(&data).expect("pcap");
    let mut out = Vec::new();
    while let Some(Ok(p)) = reader.next_packet() {
        let Ok(m) = packet::decode(p.link_type, p.data) else { continue };
        if m.fragment != Fragment::First || m.proto != 17 || m.payload.len() < 2 {
            continue;
        }
        let id = u16::from_be_bytes([m.payload[0], m.payload[1]]);
        let (s, d) = ((m.src_ip(), m.src_port), (m.dst_ip(), m.dst_port));
        // Either side may be the server.
        out.push((s.0, s.1, d.0, d.1, id));
        out.push((d.0, d.1, s.0, s.1, id));
    }
    out
}

// ---- sending ----

/// Writes `frames` from namespace B, draining the DNS ring as it goes and
/// waiting for the program to have seen each batch (veth drops frames when
/// the receiving ring is full; pacing keeps that from happening). Returns
/// the DNS events read.
fn send(sock: &PacketSocket, k: &mut KernelCapture, base: &KernelCounters, frames: &[Vec<u8>]) -> Vec<KernelDnsEvent> {
    let mut events = Vec::new();
    let mut sent = 0u64;
    for chunk in frames.chunks(64) {
        for f in chunk {
            sock.send(f).unwrap_or_else(|e| panic!("AF_PACKET send of a {}-byte frame: {e}", f.len()));
            sent += 1;
        }
        events.extend(k.dns_events(usize::MAX));
        let t0 = Instant::now();
        loop {
            let seen = k.counters().expect("counters").packets() - base.packets();
            if seen >= sent || t0.elapsed() > Duration::from_secs(2) {
                break;
            }
            std::thread::sleep(Duration::from_micros(200));
        }
    }
    events.extend(k.dns_events(usize::MAX));
    events
}

fn write_pcap(path: &Path, frames: &[(i64, Vec<u8>)]) {
    let file = std::fs::File::create(path).expect("create pcap");
    let mut w = PcapWriter::new(std::io::BufWriter::new(file), linktype::ETHERNET).expect("pcap header");
    for (ts, f) in frames {
        w.write_packet(*ts, f).expect("write packet");
    }
    let mut out = w.into_inner().expect("flush pcap");
    std::io::Write::flush(&mut out).expect("flush pcap");
}

// ---- generated traffic ----

const MAC_CLIENT: [u8; 6] = [2, 0x5e, 0, 0, 0, 0x0c];
const MAC_SERVER: [u8; 6] = [2, 0x5e, 0, 0, 0, 0x05];

fn gen_v4(host: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(198, 19, 1, host))
}

fn gen_v6(host: u16) -> IpAddr {
    IpAddr::V6(Ipv6Addr::new(0x2001, 2, 0, 2, 0, 0, 0, host))
}

fn frame(src: IpAddr, dst: IpAddr, l4: impl FnOnce(PacketBuilder<'_>) -> PacketBuilder<'_>) -> Vec<u8> {
    let mut b = Vec::new();
    let (dmac, smac) = if matches!(src, IpAddr::V4(a) if a.octets()[3] < 100) || matches!(src, IpAddr::V6(a) if a.segments()[7] < 100) {
        (MAC_SERVER, MAC_CLIENT)
    } else {
        (MAC_CLIENT, MAC_SERVER)
    };
    l4(PacketBuilder::new(&mut b).ethernet(dmac, smac).ip(src, dst)).finish();
    b
}

fn tcp_conversation(out: &mut Vec<Vec<u8>>, c: IpAddr, cp: u16, s: IpAddr, sp: u16, rst: bool) {
    use tcp_flags::*;
    let seg = |src: IpAddr, spt: u16, dst: IpAddr, dpt: u16, flags: u8, seq: u32, ack: u32, data: &'static [u8]| {
        frame(src, dst, |b| b.tcp(Tcp { seq, ack, ..Tcp::new(spt, dpt, flags) }).payload(data))
    };
    out.push(seg(c, cp, s, sp, SYN, 1000, 0, b""));
    out.push(seg(s, sp, c, cp, SYN | ACK, 5000, 1001, b""));
    out.push(seg(c, cp, s, sp, ACK, 1001, 5001, b""));
    out.push(seg(c, cp, s, sp, PSH | ACK, 1001, 5001, b"GET / HTTP/1.1\r\nHost: osprey.test\r\n\r\n"));
    out.push(seg(s, sp, c, cp, PSH | ACK, 5001, 1039, b"HTTP/1.1 204 No Content\r\n\r\n"));
    if rst {
        out.push(seg(c, cp, s, sp, RST | ACK, 1039, 5029, b""));
    } else {
        out.push(seg(c, cp, s, sp, FIN | ACK, 1039, 5029, b""));
        out.push(seg(s, sp, c, cp, FIN | ACK, 5029, 1040, b""));
        out.push(seg(c, cp, s, sp, ACK, 1040, 5030, b""));
    }
}

fn dns_exchange(out: &mut Vec<Vec<u8>>, (c, cp): (IpAddr, u16), (s, sp): (IpAddr, u16), id: u16, name: &str, qtype: u16) {
    let mut q = Vec::new();
    DnsBuilder::new(&mut q, DnsHeader::query(id)).question(name, qtype, 1).finish();
    out.push(frame(c, s, |b| b.udp(Udp::new(cp, sp)).payload(&q)));
    let mut r = Vec::new();
    let txt: [&[u8]; 2] = [b"v=spf1 -all", b"osprey"];
    let mut d = DnsBuilder::new(&mut r, DnsHeader::response(id, if name.starts_with("nx") { 3 } else { 0 }))
        .compress(id.is_multiple_of(2))
        .question(name, qtype, 1);
    if !name.starts_with("nx") {
        d = d
            .answer(name, 300, RData::Cname(Name::Text("edge.osprey.test")))
            .answer("edge.osprey.test", 60, RData::A(Ipv4Addr::new(198, 19, 7, 7)))
            .answer("edge.osprey.test", 60, RData::Aaaa(Ipv6Addr::new(0x2001, 2, 0, 7, 0, 0, 0, 7)))
            .answer(name, 60, RData::Mx { preference: 10, exchange: Name::Text("mail.osprey.test") })
            .answer(name, 60, RData::Txt(&txt));
    }
    d.finish();
    out.push(frame(s, c, |b| b.udp(Udp::new(sp, cp)).payload(&r)));
}

fn generated_traffic() -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    // Clients have host numbers >= 100, servers < 100 (picks the MACs).
    for i in 0..8u16 {
        tcp_conversation(&mut out, gen_v4(100 + i as u8), 40000 + i, gen_v4(80), 80, i % 3 == 2);
        tcp_conversation(&mut out, gen_v6(100 + i), 41000 + i, gen_v6(80), 443, i % 3 == 1);
    }
    for i in 0..24u16 {
        let name = format!("{}host{i}.osprey.test", if i % 7 == 6 { "nx" } else { "" });
        let qtype = [1, 28, 15, 16][usize::from(i % 4)];
        dns_exchange(&mut out, (gen_v4(150 + (i % 4) as u8), 50000 + i), (gen_v4(53), 53), 0x1000 + i, &name, qtype);
        dns_exchange(&mut out, (gen_v6(150 + i % 4), 51000 + i), (gen_v6(53), 53), 0x2000 + i, &name, qtype);
    }
    // mDNS (port 5353 both ways).
    dns_exchange(&mut out, (gen_v4(160), 5353), (gen_v4(53), 5353), 0, "printer.local", 1);
    for seq in 0..4 {
        out.push(frame(gen_v4(170), gen_v4(1), |b| b.icmp(Icmp::echo_request(7, seq)).payload(&[0xab; 56])));
        out.push(frame(gen_v4(1), gen_v4(170), |b| b.icmp(Icmp::echo_reply(7, seq)).payload(&[0xab; 56])));
        out.push(frame(gen_v6(170), gen_v6(1), |b| b.icmpv6(Icmp::echo6_request(9, seq)).payload(&[0xcd; 56])));
        out.push(frame(gen_v6(1), gen_v6(170), |b| b.icmpv6(Icmp::echo6_reply(9, seq)).payload(&[0xcd; 56])));
    }
    for i in 0..10u16 {
        out.push(frame(gen_v4(180), gen_v4(2), |b| b.udp(Udp::new(6000, 7000)).payload(&vec![i as u8; usize::from(i) * 100])));
        out.push(frame(gen_v6(180), gen_v6(2), |b| b.udp(Udp::new(6001, 7001)).payload(&vec![i as u8; usize::from(i) * 100])));
    }
    out
}

// ---- replay ----

/// A frame and its capture timestamp.
type Stamped = (i64, Vec<u8>);

#[derive(Debug, Default)]
struct Filtered {
    sent: u64,
    not_ethernet_or_short: u64,
    too_long: u64,
    undecodable_or_not_ip: u64,
    tunnel: u64,
    icmp_error_or_nd: u64,
    v6_addr_headers: u64,
}

/// Whether an IPv6 packet has a header that carries addresses tcprewrite
/// does not rewrite (routing header, destination options: home address).
fn v6_address_headers(frame: &[u8], m: &packet::PacketMeta<'_>) -> bool {
    let (mut q, end) = (m.l3_offset as usize + 40, m.l4_offset as usize);
    let Some(&first) = frame.get(m.l3_offset as usize + 6) else { return true };
    let mut nh = first;
    while q < end {
        if matches!(nh, 43 | 60 | 135 | 139 | 140) {
            return true;
        }
        let (Some(&next), Some(&len)) = (frame.get(q), frame.get(q + 1)) else { return true };
        q += match nh {
            44 => 8,
            51 => (usize::from(len) + 2) * 4,
            _ => (usize::from(len) + 1) * 8,
        };
        nh = next;
    }
    false
}

/// Reads the rewritten capture with the project's reader and keeps the
/// frames that may be sent. If any decoded IP header has an address outside
/// the test ranges, the whole capture is refused (`Err`): nothing of it is sent.
fn sendable(path: &Path, max_frame: usize) -> Result<(Vec<Stamped>, Filtered), String> {
    let data = std::fs::read(path).expect("read rewritten capture");
    let mut reader = CaptureReader::new(&data).expect("rewritten capture parses");
    let mut f = Filtered::default();
    let mut out = Vec::new();
    while let Some(p) = reader.next_packet() {
        let p = p.expect("rewritten capture reads");
        if p.link_type != LinkType::Ethernet || p.data.len() < 14 {
            f.not_ethernet_or_short += 1;
            continue;
        }
        let Ok(m) = packet::decode(LinkType::Ethernet, p.data) else {
            f.undecodable_or_not_ip += 1;
            continue;
        };
        for ip in [m.src_ip(), m.dst_ip()] {
            if !in_test_ranges(ip) {
                return Err(format!(
                    "frame {} (ts {}) has address {ip} outside 198.18.0.0/15 and 2001:2::/48 after tcprewrite",
                    out.len() + (f.not_ethernet_or_short + f.undecodable_or_not_ip + f.too_long + f.tunnel + f.icmp_error_or_nd + f.v6_addr_headers) as usize,
                    p.ts_ns
                ));
            }
        }
        if p.data.len() > max_frame {
            f.too_long += 1;
            continue;
        }
        let first_or_whole = m.fragment != Fragment::NonFirst;
        let tunnel = matches!(m.proto, 4 | 41 | 47 | 97 | 115 | 137)
            || (m.proto == 17 && first_or_whole && (m.dst_port == 4789 || m.src_port == 4789 || m.dst_port == 2152));
        if tunnel {
            f.tunnel += 1;
            continue;
        }
        let icmp_type = (m.dst_port >> 8) as u8;
        let icmp_bad = first_or_whole
            && ((m.proto == 1 && matches!(icmp_type, 3 | 4 | 5 | 11 | 12))
                || (m.proto == 58 && (matches!(icmp_type, 1..=4) || (133..=137).contains(&icmp_type))))
            || (m.fragment == Fragment::NonFirst && matches!(m.proto, 1 | 58));
        if icmp_bad {
            f.icmp_error_or_nd += 1;
            continue;
        }
        if !m.is_v4 && v6_address_headers(p.data, &m) {
            f.v6_addr_headers += 1;
            continue;
        }
        out.push((p.ts_ns, p.data.to_vec()));
    }
    f.sent = out.len() as u64;
    Ok((out, f))
}

fn tcprewrite(input: &Path, output: &Path) -> Result<(), String> {
    let out = Command::new("tcprewrite")
        .arg(format!("--pnat={PNAT}"))
        .arg("-i")
        .arg(input)
        .arg("-o")
        .arg(output)
        .output()
        .map_err(|e| format!("cannot run tcprewrite: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).lines().filter(|l| !l.contains("dangerous")).collect::<Vec<_>>().join("; "))
    }
}

// ---- the test ----

fn kernel_config() -> KernelConfig {
    KernelConfig {
        dns_ports: DNS_PORTS.to_vec(),
        flow: osprey_capture::flow::FlowConfig { max_flows: 65536, ..Default::default() },
        ..KernelConfig::default()
    }
}

#[test]
fn xdp_on_a_veth_in_a_namespace_matches_offline_ingest() {
    if !netns::is_root() {
        println!("SKIP xdp_on_a_veth_in_a_namespace_matches_offline_ingest: needs root (network namespaces, veth, BPF)");
        return;
    }
    if netns::ip(&["-V"]).is_err() {
        println!("SKIP xdp_on_a_veth_in_a_namespace_matches_offline_ingest: iproute2 `ip` is not installed");
        return;
    }
    let bpffs = Path::new("/sys/fs/bpf");
    let pinned_before = netns::dir_entries(bpffs);
    let tmp = tempfile::tempdir().expect("tempdir");

    let pair = VethPair::create(&PairConfig {
        tag: "e".into(),
        v4: [Ipv4Addr::new(198, 19, 255, 1), Ipv4Addr::new(198, 19, 255, 2)],
        v4_prefix: 24,
        v6: [Ipv6Addr::new(0x2001, 2, 0, 0xffff, 0, 0, 0, 1), Ipv6Addr::new(0x2001, 2, 0, 0xffff, 0, 0, 0, 2)],
        v6_prefix: 64,
        mtu: MTU,
    })
    .expect("create namespaces and veth pair");
    // Declared after the guard: dropped (detached) first, also on panic.
    let mut k = KernelCapture::load(kernel_config()).expect("load the XDP program");
    let (a, b) = (pair.a.clone(), pair.b.clone());
    let mode = VethPair::in_ns(&a.ns, || k.attach(&a.iface, AttachRequest::Auto))
        .expect("enter namespace A")
        .expect("attach");
    let details = VethPair::link_details(&a).expect("ip link");
    println!("attached to {} in {} in {mode:?} mode; ip -d link: {}", a.iface, a.ns, details.lines().next().unwrap_or(""));
    let shown = if details.contains("xdpgeneric") {
        AttachMode::Generic
    } else {
        assert!(details.contains("prog/xdp"), "no XDP program on {}: {details}", a.iface);
        AttachMode::Native
    };
    assert_eq!(shown, mode, "ip -d link disagrees with the mode attach reported");
    let sock = VethPair::in_ns(&b.ns, || PacketSocket::bind(&b.iface)).expect("enter namespace B").expect("AF_PACKET socket");

    // The namespaces' own stacks announce themselves once (MLD reports for
    // their IPv6 addresses, a second or so after the link comes up). Wait
    // until the link has been quiet for 1.5 s, then drop what was seen, so
    // the comparisons below count only the test's own frames.
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut seen = k.counters().expect("counters").packets();
    loop {
        std::thread::sleep(Duration::from_millis(1500));
        let now = k.counters().expect("counters").packets();
        if now == seen {
            break;
        }
        assert!(Instant::now() < deadline, "the link never went quiet: {:?}", k.snapshot());
        seen = now;
    }
    let background = k.flush().expect("flush background flows");
    println!("background before sending: {seen} packets, flows {background:?}");

    // ---- 1. generated traffic ----
    let frames = generated_traffic();
    for f in &frames {
        let m = packet::decode(LinkType::Ethernet, f).expect("generated frames decode");
        assert!(in_test_ranges(m.src_ip()) && in_test_ranges(m.dst_ip()));
    }
    let gen_pcap = tmp.path().join("generated.pcap");
    let t0 = 1_700_000_000_000_000_000i64;
    write_pcap(&gen_pcap, &frames.iter().enumerate().map(|(i, f)| (t0 + i as i64 * 1_000_000, f.clone())).collect::<Vec<_>>());
    let base = k.counters().expect("counters");
    let events = send(&sock, &mut k, &base, &frames);
    let o = compare("generated", &mut k, &base, frames.len() as u64, &events, &gen_pcap);
    println!("generated: {} frames sent, {} flows and {} DNS records identical to offline ingest", frames.len(), o.flows, o.dns);
    assert!(o.dns == 98 && o.flows == 69, "{o:?}");

    // ---- 2. replays of the shared captures ----
    let Some(data) = shared_data() else {
        println!("SKIP replay part: ../shared/data is not present (set OSPREY_SHARED_DATA)");
        return finish(k, pair, bpffs, &pinned_before);
    };
    if Command::new("tcprewrite").arg("-V").output().is_err() {
        println!("SKIP replay part: tcprewrite is not installed (package tcpreplay)");
        return finish(k, pair, bpffs, &pinned_before);
    }
    let files: Vec<PathBuf> = captures_under(&data.join("pcap"));
    let max_frame = MTU as usize + 14;
    let (mut replayed, mut total_sent) = (0, 0u64);
    let mut refused = Vec::new();
    let mut total = Filtered::default();
    for file in &files {
        let name = file.file_name().and_then(|n| n.to_str()).unwrap_or("?").to_string();
        let rewritten = tmp.path().join(format!("{name}.pnat.pcap"));
        if let Err(e) = tcprewrite(file, &rewritten) {
            println!("  {name}: tcprewrite failed ({e}): not replayed");
            continue;
        }
        let (send_frames, filt) = match sendable(&rewritten, max_frame) {
            Ok(x) => x,
            Err(why) => {
                println!("  {name}: REFUSED, nothing of it sent: {why}");
                refused.push(name);
                continue;
            }
        };
        if send_frames.is_empty() {
            println!("  {name}: nothing sendable ({filt:?})");
            continue;
        }
        let sent_pcap = tmp.path().join(format!("{name}.sent.pcap"));
        write_pcap(&sent_pcap, &send_frames);
        let frames: Vec<Vec<u8>> = send_frames.into_iter().map(|(_, f)| f).collect();
        let base = k.counters().expect("counters");
        let events = send(&sock, &mut k, &base, &frames);
        let o = compare(&name, &mut k, &base, frames.len() as u64, &events, &sent_pcap);
        println!(
            "  {name}: {} frames sent, {} flows, {} DNS records identical ({} longer than the copy: answers not compared, {} reassembled offline: not in the kernel); left out: {filt:?}",
            frames.len(),
            o.flows,
            o.dns,
            o.long_dns,
            o.reassembled_dns
        );
        replayed += 1;
        total_sent += filt.sent;
        total.not_ethernet_or_short += filt.not_ethernet_or_short;
        total.too_long += filt.too_long;
        total.undecodable_or_not_ip += filt.undecodable_or_not_ip;
        total.tunnel += filt.tunnel;
        total.icmp_error_or_nd += filt.icmp_error_or_nd;
        total.v6_addr_headers += filt.v6_addr_headers;
    }
    total.sent = total_sent;
    println!("replayed {replayed} of {} captures; refused (tcprewrite left foreign addresses): {refused:?}; totals: {total:?}", files.len());
    assert!(replayed > 0, "no capture could be replayed");
    finish(k, pair, bpffs, &pinned_before);
}

/// Detaches, checks nothing is left attached or pinned, and removes the namespaces.
fn finish(mut k: KernelCapture, pair: VethPair, bpffs: &Path, pinned_before: &[String]) {
    k.detach().expect("detach");
    let details = VethPair::link_details(&pair.a).expect("ip link");
    assert!(!details.contains("prog/xdp") && !details.contains("xdpgeneric"), "still attached after detach: {details}");
    drop(k);
    drop(pair);
    assert_eq!(netns::dir_entries(bpffs), pinned_before, "objects pinned under /sys/fs/bpf");
    let left = netns::ip(&["netns", "list"]).unwrap_or_default();
    assert!(!left.contains(&format!("osp-{}-", std::process::id())), "namespaces left behind: {left}");
    println!("detached; nothing pinned under {}; namespaces deleted", bpffs.display());
}

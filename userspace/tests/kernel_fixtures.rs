//! BPF_PROG_TEST_RUN fixtures for the XDP program: crafted frames (and every
//! truncation of them) → verdict, per-reason counters, flow map contents and
//! DNS ring records, each checked against the offline decoders
//! (`packet::decode`, `flow::FlowTable`, `dns::parse_message`) on the same bytes.
//!
//! Needs root (loading BPF); prints why it skips otherwise.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use osprey_capture::craft::{DnsBuilder, DnsHeader, Icmp, Ipv4, Ipv6, Name, PacketBuilder, RData, Tcp, Udp};
use osprey_capture::dns;
use osprey_capture::flow::{FlowConfig, FlowPacket, FlowTable};
use osprey_capture::kernel::{KernelCapture, KernelConfig};
use osprey_capture::packet::{self, Fragment, SkipReason};
use osprey_capture::pcap::LinkType;
use osprey_ebpf::consts;
use osprey_segment::{EndReason, FlowRecord};

const XDP_PASS: u32 = 2;
const MAC_A: [u8; 6] = [2, 0, 0, 0, 0, 1];
const MAC_B: [u8; 6] = [2, 0, 0, 0, 0, 2];

fn root() -> bool {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipping: loading BPF programs needs root (CAP_BPF + CAP_NET_ADMIN)");
        return false;
    }
    true
}

fn v4(last: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(198, 18, 0, last))
}

fn v6(last: u16) -> IpAddr {
    IpAddr::V6(Ipv6Addr::new(0x2001, 2, 0, 0, 0, 0, 0, last))
}

fn tcp(src: IpAddr, sp: u16, dst: IpAddr, dp: u16, flags: u8, payload: &[u8]) -> Vec<u8> {
    let mut b = Vec::new();
    PacketBuilder::new(&mut b).ethernet(MAC_B, MAC_A).ip(src, dst).tcp(Tcp::new(sp, dp, flags)).payload(payload).finish();
    b
}

fn udp(src: IpAddr, sp: u16, dst: IpAddr, dp: u16, payload: &[u8]) -> Vec<u8> {
    let mut b = Vec::new();
    PacketBuilder::new(&mut b).ethernet(MAC_B, MAC_A).ip(src, dst).udp(Udp::new(sp, dp)).payload(payload).finish();
    b
}

fn dns_query(id: u16, name: &str, qtype: u16) -> Vec<u8> {
    let mut m = Vec::new();
    DnsBuilder::new(&mut m, DnsHeader::query(id)).question(name, qtype, 1).finish();
    m
}

fn dns_response(id: u16, name: &str) -> Vec<u8> {
    let mut m = Vec::new();
    DnsBuilder::new(&mut m, DnsHeader::response(id, 0))
        .compress(true)
        .question(name, 1, 1)
        .answer(name, 300, RData::Cname(Name::Text("edge.example.net")))
        .answer("edge.example.net", 60, RData::A(Ipv4Addr::new(198, 18, 7, 7)))
        .answer("edge.example.net", 60, RData::Aaaa(Ipv6Addr::new(0x2001, 2, 0, 0, 0, 0, 0, 7)))
        .finish();
    m
}

/// What the offline decoder says about a frame: the counter it must bump.
fn expected_counter(frame: &[u8]) -> (usize, Option<packet::PacketMeta<'_>>) {
    match packet::decode(LinkType::Ethernet, frame) {
        Err(r) => (r.index(), None),
        Ok(m) if m.fragment == Fragment::NonFirst => (SkipReason::Fragment.index(), None),
        Ok(m) => (consts::CNT_FLOW_PACKETS as usize, Some(m)),
    }
}

/// Runs `frame` through the program and checks the verdict and that exactly
/// the counter the offline decoder predicts moved. Returns the offline meta.
fn check_frame<'a>(k: &mut KernelCapture, frame: &'a [u8], what: &str) -> Option<packet::PacketMeta<'a>> {
    let before = k.counters().expect("counters");
    let (verdict, _) = k.test_run(frame, 1).expect("test run");
    assert_eq!(verdict, XDP_PASS, "{what}: always XDP_PASS");
    let after = k.counters().expect("counters");
    let (want, meta) = expected_counter(frame);
    assert_eq!(after.packets() - before.packets(), 1, "{what}");
    for i in 0..consts::CNT_FLOW_PACKETS as usize + 1 {
        if i == consts::CNT_PACKETS as usize {
            continue;
        }
        let delta = after.raw[i] - before.raw[i];
        let name = if i < SkipReason::COUNT { SkipReason::ALL[i].as_str() } else { "flow_packets" };
        assert_eq!(delta, u64::from(i == want), "{what} (len {}): counter {name} moved by {delta}; offline says {}", frame.len(), if want < SkipReason::COUNT { SkipReason::ALL[want].as_str() } else { "flow" });
    }
    meta
}

/// Key-wise totals of flow records: (proto, vlan, endpoints sorted) → (packets, bytes, flags OR).
type Totals = BTreeMap<(u8, u16, (IpAddr, u16), (IpAddr, u16)), (u64, u64, u64, u64, u8, u8)>;

fn totals(recs: &[FlowRecord]) -> Totals {
    let mut t = Totals::new();
    for r in recs {
        let e = t.entry((r.proto, r.vlan, (r.src_ip, r.src_port), (r.dst_ip, r.dst_port))).or_default();
        e.0 += r.packets;
        e.1 += r.bytes;
        e.2 += r.rev_packets;
        e.3 += r.rev_bytes;
        e.4 |= r.tcp_flags;
        e.5 |= r.rev_tcp_flags;
    }
    t
}

fn offline(frames: &[Vec<u8>]) -> Vec<FlowRecord> {
    let mut t = FlowTable::new(FlowConfig::default());
    for (i, f) in frames.iter().enumerate() {
        if let (_, Some(m)) = expected_counter(f) {
            t.observe(&FlowPacket::from_meta(1_000_000 * i as i64, &m));
        }
    }
    t.flush();
    t.take_ended().collect()
}

/// Frames covering every layer the decoder walks.
fn corpus() -> Vec<(&'static str, Vec<u8>)> {
    let mut out = Vec::new();
    let (a, b) = (v4(1), v4(2));
    out.push(("ipv4 tcp syn", tcp(a, 40000, b, 443, 0x02, b"")));
    out.push(("ipv4 tcp synack", tcp(b, 443, a, 40000, 0x12, b"")));
    out.push(("ipv4 tcp data", tcp(a, 40000, b, 443, 0x18, b"GET / HTTP/1.1\r\n")));
    out.push(("ipv6 udp", udp(v6(1), 5000, v6(2), 6000, b"hello")));
    let mut f = Vec::new();
    PacketBuilder::new(&mut f).ethernet(MAC_B, MAC_A).ip(a, b).icmp(Icmp::echo_request(7, 1)).payload(b"ping").finish();
    out.push(("icmp echo", f.clone()));
    PacketBuilder::new(&mut f).ethernet(MAC_A, MAC_B).ip(b, a).icmp(Icmp::echo_reply(7, 1)).payload(b"ping").finish();
    out.push(("icmp reply", f.clone()));
    PacketBuilder::new(&mut f).ethernet(MAC_B, MAC_A).ip(v6(1), v6(2)).icmpv6(Icmp::echo6_request(9, 1)).finish();
    out.push(("icmpv6 echo", f.clone()));
    PacketBuilder::new(&mut f).ethernet(MAC_B, MAC_A).vlan(100).ip(a, b).udp(Udp::new(1, 2)).payload(b"x").finish();
    out.push(("vlan", f.clone()));
    PacketBuilder::new(&mut f).ethernet(MAC_B, MAC_A).qinq(200).vlan(100).ip(a, b).tcp(Tcp::new(3, 4, 0x10)).finish();
    out.push(("qinq", f.clone()));
    PacketBuilder::new(&mut f).ethernet(MAC_B, MAC_A).qinq(1).vlan(2).vlan(3).ip(a, b).udp(Udp::new(5, 6)).finish();
    out.push(("three tags", f.clone()));
    PacketBuilder::new(&mut f).ethernet(MAC_B, MAC_A).qinq(1).vlan(2).vlan(3).vlan(4).ip(a, b).udp(Udp::new(5, 6)).finish();
    out.push(("four tags: too many", f.clone()));
    PacketBuilder::new(&mut f).ethernet(MAC_B, MAC_A).mpls(100, 0, 64).mpls(200, 0, 64).ip(a, b).udp(Udp::new(7, 8)).finish();
    out.push(("mpls", f.clone()));
    let opts = [1u8, 1, 1, 1, 1, 1, 1, 0];
    let mut h = Ipv4::new(Ipv4Addr::new(198, 18, 0, 1), Ipv4Addr::new(198, 18, 0, 2));
    h.options = &opts;
    PacketBuilder::new(&mut f).ethernet(MAC_B, MAC_A).ipv4(h).tcp(Tcp::new(9, 10, 0x11)).payload(b"opt").finish();
    out.push(("ipv4 options", f.clone()));
    let mut h6 = Ipv6::new(Ipv6Addr::new(0x2001, 2, 0, 0, 0, 0, 0, 1), Ipv6Addr::new(0x2001, 2, 0, 0, 0, 0, 0, 2));
    h6.hop_limit = 9;
    PacketBuilder::new(&mut f)
        .ethernet(MAC_B, MAC_A)
        .ipv6(h6)
        .ipv6_hop_by_hop(&[1, 4, 0, 0, 0, 0])
        .ipv6_dest_options(&[1, 4, 0, 0, 0, 0])
        .ipv6_routing(0, 1, &[Ipv6Addr::new(0x2001, 2, 0, 0, 0, 0, 0, 9)])
        .ipv6_fragment(0, false, 1)
        .tcp(Tcp::new(1000, 80, 0x18))
        .payload(b"GET /")
        .finish();
    out.push(("ipv6 ext chain", f.clone()));
    PacketBuilder::new(&mut f).ethernet(MAC_B, MAC_A).ipv6(h6).ipv6_fragment(0, true, 2).udp(Udp::new(53, 4000)).payload(&[0; 16]).finish();
    out.push(("ipv6 first fragment", f.clone()));
    PacketBuilder::new(&mut f).ethernet(MAC_B, MAC_A).ipv6(h6).ipv6_fragment(100, false, 2).ip_protocol(17).payload(&[0; 16]).finish();
    out.push(("ipv6 later fragment", f.clone()));
    let mut hf = Ipv4::new(Ipv4Addr::new(198, 18, 0, 1), Ipv4Addr::new(198, 18, 0, 2));
    hf.more_fragments = true;
    hf.dont_fragment = false;
    PacketBuilder::new(&mut f).ethernet(MAC_B, MAC_A).ipv4(hf).udp(Udp::new(5353, 53)).payload(&[1; 24]).finish();
    out.push(("ipv4 first fragment", f.clone()));
    hf.more_fragments = false;
    hf.fragment_offset = 5;
    PacketBuilder::new(&mut f).ethernet(MAC_B, MAC_A).ipv4(hf).ip_protocol(17).payload(&[1; 24]).finish();
    out.push(("ipv4 later fragment", f.clone()));
    PacketBuilder::new(&mut f).ethernet(MAC_B, MAC_A).ip(a, b).gre().ipv4(Ipv4::new(Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 0, 2))).udp(Udp::new(1, 2)).finish();
    out.push(("gre: outer protocol", f.clone()));
    PacketBuilder::new(&mut f).ethernet(MAC_B, MAC_A).ethertype(0x0806).payload(&[0; 28]).finish();
    out.push(("arp", f.clone()));
    // Wrong lengths.
    let mut wrong = tcp(a, 1, b, 2, 0x10, b"abcd");
    wrong[14] = 0x44; // IHL 16
    out.push(("ihl below 20", wrong));
    let mut wrong = udp(a, 1, b, 2, b"zz");
    wrong[16..18].copy_from_slice(&24u16.to_be_bytes()); // total length cuts the UDP header
    out.push(("total length short", wrong));
    let mut wrong = tcp(a, 1, b, 2, 0x10, b"abcd");
    wrong[14 + 20 + 12] = 4 << 4; // data offset 16
    out.push(("tcp data offset below 5", wrong));
    let mut wrong = udp(a, 1, b, 2, b"zz");
    wrong[16..18].copy_from_slice(&0u16.to_be_bytes()); // TSO: total 0 → wire length
    out.push(("ipv4 total length 0", wrong));
    let mut wrong = udp(v6(1), 1, v6(2), 2, b"zz");
    wrong[14] = 0x45; // IPv6 ethertype, version 4
    out.push(("bad version", wrong));
    let mut wrong = udp(a, 53, b, 5000, &dns_query(1, "example.com", 1));
    wrong[14 + 20 + 4..14 + 20 + 6].copy_from_slice(&200u16.to_be_bytes()); // UDP length beyond the datagram
    out.push(("udp length too long", wrong));
    let mut padded = Vec::new();
    PacketBuilder::new(&mut padded).ethernet(MAC_B, MAC_A).ip(a, b).udp(Udp::new(53, 7)).payload(b"").finish_padded(60);
    out.push(("ethernet padding", padded));
    out
}

#[test]
fn every_frame_and_truncation_agrees_with_the_offline_decoder() {
    if !root() {
        return;
    }
    let mut k = KernelCapture::load(KernelConfig::default()).expect("load");
    let corpus = corpus();
    let mut accounted = Vec::new();
    let mut runs = 0;
    for (what, frame) in &corpus {
        // Test runs need at least an Ethernet header (the kernel refuses less).
        for cut in 14..=frame.len() {
            let f = &frame[..cut];
            if check_frame(&mut k, f, what).is_some() {
                accounted.push(f.to_vec());
            }
            runs += 1;
        }
    }
    eprintln!("{runs} test runs over {} frames", corpus.len());
    let c = k.counters().expect("counters");
    assert_eq!(c.packets(), runs);
    // Flows: the same per-key totals as the offline flow table on the same packets.
    let kernel = k.flush().expect("flush");
    assert!(kernel.iter().all(|r| r.end_reason == EndReason::Flush));
    let want = offline(&accounted);
    assert_eq!(totals(&kernel), totals(&want));
    assert_eq!(kernel.len(), want.len());
    assert_eq!(k.flow_count().expect("count"), 0, "flush empties the map");
}

#[test]
fn tcp_connection_direction_flags_and_port_reuse() {
    if !root() {
        return;
    }
    let mut k = KernelCapture::load(KernelConfig::default()).expect("load");
    let (a, b) = (v4(1), v4(2));
    let frames = [
        tcp(b, 443, a, 40000, 0x12, b""), // SYN+ACK first: a is the initiator
        tcp(a, 40000, b, 443, 0x10, b""),
        tcp(a, 40000, b, 443, 0x18, b"hello"),
        tcp(b, 443, a, 40000, 0x14, b""), // RST: closing
        tcp(a, 40000, b, 443, 0x10, b""), // late ACK within linger: same flow
        tcp(a, 40000, b, 443, 0x02, b""), // pure SYN on a closing flow: ends it, new flow
    ];
    for f in &frames {
        check_frame(&mut k, f, "tcp");
    }
    let c = k.counters().expect("counters");
    assert_eq!(c.get(consts::CNT_FLOW_RESTARTS), 1);
    let recs = k.flush().expect("flush");
    assert_eq!(recs.len(), 2, "{recs:?}");
    let first = recs.iter().find(|r| r.end_reason == EndReason::Rst).expect("rst record from the ring");
    assert_eq!((first.src_ip, first.src_port, first.dst_port), (a, 40000, 443));
    assert_eq!((first.packets, first.rev_packets), (3, 2));
    assert_eq!(first.bytes, 40 + 40 + 45);
    assert_eq!((first.tcp_flags, first.rev_tcp_flags), (0x18, 0x16));
    let second = recs.iter().find(|r| r.end_reason == EndReason::Flush).expect("new flow");
    assert_eq!((second.packets, second.rev_packets, second.tcp_flags), (1, 0, 0x02));
    assert!(first.ts_start <= first.ts_end && first.ts_end <= second.ts_start);
    let now = osprey_capture::kernel::mono_to_wall_offset() + osprey_capture::kernel::monotonic_ns();
    assert!((now - first.ts_start).abs() < 10_000_000_000, "wall-clock conversion");
    // And the offline table agrees record by record.
    let want = offline(&frames);
    assert_eq!(totals(&recs), totals(&want));
}

/// Keeps the calling thread on CPU 0. A test run executes on the CPU of the
/// calling thread and the flow map is per CPU: a thread that migrates between
/// steps splits one flow over two slots with different start times, and
/// timeout checks are per slot.
fn pin_to_cpu0() {
    // SAFETY: a zeroed cpu_set_t is a valid empty set; CPU_SET and
    // sched_setaffinity only read/write that local set.
    let ok = unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(0, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set)
    };
    assert_eq!(ok, 0, "sched_setaffinity: {}", std::io::Error::last_os_error());
}

#[test]
fn timeouts_end_flows_in_the_kernel_and_in_the_sweep() {
    if !root() {
        return;
    }
    pin_to_cpu0();
    // 300 ms idle, 1.5 s active, 150 ms linger: short enough for a test, long
    // enough that a descheduled test thread on a loaded CI machine (2 cores)
    // does not cross a timeout between two steps that must not (the coarse
    // clock ticks every few ms).
    let mut k = KernelCapture::load_with_timeouts_ns(KernelConfig::default(), 300_000_000, 1_500_000_000, 150_000_000).expect("load");
    let (a, b) = (v4(1), v4(2));
    let f = udp(a, 1000, b, 2000, b"x");
    let r = udp(b, 2000, a, 1000, b"y");
    k.test_run(&f, 1).expect("run");
    k.test_run(&r, 1).expect("run");
    std::thread::sleep(std::time::Duration::from_millis(450));
    // A packet after the idle time: the kernel ends the old slot (ring) and starts anew.
    k.test_run(&r, 1).expect("run");
    assert_eq!(k.counters().expect("c").get(consts::CNT_FLOW_RESTARTS), 1);
    let recs = k.drain().expect("drain");
    assert_eq!(recs.len(), 1, "{recs:?}");
    assert_eq!(recs[0].end_reason, EndReason::Idle);
    assert_eq!((recs[0].src_port, recs[0].packets, recs[0].rev_packets), (1000, 1, 1));
    // The new flow was started by b; nothing for it in this drain.
    std::thread::sleep(std::time::Duration::from_millis(450));
    let recs = k.drain().expect("drain");
    assert_eq!(recs.len(), 1, "the sweep ends the idle flow");
    assert_eq!((recs[0].end_reason, recs[0].src_port, recs[0].packets), (EndReason::Idle, 2000, 1));
    assert_eq!(k.flow_count().expect("n"), 0);
    // FIN both ways, then the linger time passes: the sweep ends it as fin.
    for (s, sp, d, dp, fl) in [(a, 5, b, 6, 0x02), (b, 6, a, 5, 0x12), (a, 5, b, 6, 0x11), (b, 6, a, 5, 0x11)] {
        k.test_run(&tcp(s, sp, d, dp, fl, b""), 1).expect("run");
    }
    assert!(k.drain().expect("drain").is_empty(), "still lingering");
    std::thread::sleep(std::time::Duration::from_millis(300));
    let recs = k.drain().expect("drain");
    assert_eq!(recs.len(), 1);
    assert_eq!((recs[0].end_reason, recs[0].packets, recs[0].rev_packets), (EndReason::Fin, 2, 2));
    // Active timeout: a flow kept busy longer than 1.5 s is cut; the
    // continuation keeps the initiator even if the responder speaks first.
    let t0 = std::time::Instant::now();
    while t0.elapsed() < std::time::Duration::from_millis(1_600) {
        k.test_run(&f, 1).expect("run");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    k.test_run(&r, 1).expect("run");
    let recs = k.flush().expect("flush");
    let active: Vec<_> = recs.iter().filter(|r| r.end_reason == EndReason::Active).collect();
    assert_eq!(active.len(), 1, "{recs:?}");
    assert!(recs.iter().all(|r| r.src_port == 1000), "continuations keep the initiator: {recs:?}");
}

#[test]
fn full_flow_map_counts_instead_of_accounting() {
    if !root() {
        return;
    }
    let cfg = KernelConfig { flow: FlowConfig { max_flows: 4, ..FlowConfig::default() }, ..KernelConfig::default() };
    let mut k = KernelCapture::load(cfg).expect("load");
    for p in 0..10u16 {
        k.test_run(&udp(v4(1), 1000 + p, v4(2), 80, b""), 1).expect("run");
    }
    // Existing flows keep being updated while the map is full.
    k.test_run(&udp(v4(2), 80, v4(1), 1000, b""), 1).expect("run");
    let c = k.counters().expect("c");
    assert_eq!(c.flow_table_full(), 6);
    assert_eq!(c.flow_packets(), 5);
    let recs = k.flush().expect("flush");
    assert_eq!(recs.len(), 4);
    assert_eq!(recs.iter().map(|r| r.packets + r.rev_packets).sum::<u64>(), 5);
}

#[test]
fn first_fragments_of_dns_are_marked() {
    if !root() {
        return;
    }
    let mut k = KernelCapture::load(KernelConfig::default()).expect("load");
    let (c, s) = (Ipv4Addr::new(198, 18, 0, 10), Ipv4Addr::new(198, 18, 0, 53));
    // A short first fragment (well under the kernel's 512-byte copy): the
    // record carries only its start, so it is flagged for userspace.
    let r = dns_response(0x4242, "fragmented.example.com");
    let mut f = Vec::new();
    PacketBuilder::new(&mut f)
        .ethernet(MAC_B, MAC_A)
        .ipv4(Ipv4 { id: 9, more_fragments: true, ..Ipv4::new(s, c) })
        .udp(Udp::new(53, 40000))
        .payload(&r[..40])
        .finish();
    let evs = kernel_dns(&mut k, &f);
    assert_eq!(evs.len(), 1);
    assert_ne!(evs[0].status & consts::DNS_FIRST_FRAGMENT as u8, 0, "status {:#x}", evs[0].status);
    assert_eq!(evs[0].status & consts::DNS_COPY_TRUNCATED as u8, 0);
    // The whole datagram unfragmented: no flag.
    let evs = kernel_dns(&mut k, &udp(IpAddr::V4(s), 53, IpAddr::V4(c), 40000, &r));
    assert_eq!(evs.len(), 1);
    assert_eq!(evs[0].status & consts::DNS_FIRST_FRAGMENT as u8, 0);
}

fn kernel_dns(k: &mut KernelCapture, frame: &[u8]) -> Vec<osprey_ebpf::DnsEvent> {
    k.test_run(frame, 1).expect("run");
    k.dns_events(16)
}

#[test]
fn dns_records_match_the_offline_parser() {
    if !root() {
        return;
    }
    let mut k = KernelCapture::load(KernelConfig::default()).expect("load");
    let (c, s) = (v4(10), v4(53));
    let q = dns_query(0x1234, "www.example.com", 1);
    let evs = kernel_dns(&mut k, &udp(c, 40000, s, 53, &q));
    assert_eq!(evs.len(), 1);
    let e = &evs[0];
    assert_eq!((e.id, e.qdcount, e.ancount, e.qtype, e.qclass, e.rcode), (0x1234, 1, 0, 1, 1, 0));
    assert_eq!(usize::from(e.qname_len), "www.example.com".len() + 2);
    assert_eq!(e.status, consts::DNS_Q_OK as u8);
    assert_eq!(e.message(), &q[..]);
    let rec = k.dns_record(e).expect("decodes");
    assert_eq!((rec.qname.as_str(), rec.client_port, rec.server_port, rec.is_response), ("www.example.com", 40000, 53, false));

    // A response with compression (answers point into the question) and three answers.
    let r = dns_response(0x1234, "www.example.com");
    assert!(r.windows(2).any(|w| w == [0xc0, 12]), "the builder compresses against the question");
    let evs = kernel_dns(&mut k, &udp(s, 53, c, 40000, &r));
    let e = &evs[0];
    assert_eq!((e.ancount, e.rcode, usize::from(e.msg_len)), (3, 0, r.len()));
    assert_eq!(usize::from(e.answer_off), 12 + usize::from(e.qname_len) + 4);
    let rec = k.dns_record(e).expect("decodes");
    let offline = dns::parse_message(&r).expect("offline");
    assert_eq!(rec.answers, offline.answers);
    assert_eq!(rec.answers.len(), 3);
    assert_eq!((rec.client_ip, rec.server_ip, rec.is_response), (c, s, true));

    // Zero-length label (an empty name: the root) and NXDOMAIN.
    let mut m = Vec::new();
    DnsBuilder::new(&mut m, DnsHeader::response(7, 3)).question(Name::Wire(&[0]), 2, 1).finish();
    let e = kernel_dns(&mut k, &udp(s, 53, c, 1, &m))[0];
    assert_eq!((e.qname_len, e.qtype, e.rcode, e.status), (1, 2, 3, consts::DNS_Q_OK as u8));
    assert_eq!(k.dns_record(&e).expect("root").qname, dns::parse_message(&m).expect("x").qname);

    // A compression pointer in the question: flagged, not followed in the kernel;
    // userspace decodes it with the offline parser like ingest does.
    let mut m = dns_query(8, "a.example", 1);
    m.truncate(12);
    m.extend([1, b'x', 0xc0, 12 + 2 + 2, 0, 1, 0, 1]);
    let e = kernel_dns(&mut k, &udp(c, 2, s, 53, &m))[0];
    assert_eq!(e.status & consts::DNS_Q_POINTER as u8, consts::DNS_Q_POINTER as u8);
    assert_eq!(e.answer_off, 0);
    assert_eq!(k.dns_record(&e).map(|r| r.qname), dns::parse_message(&m).map(|m| m.qname));

    // Over-long name: 5 labels of 63 bytes (> 255 wire bytes).
    let mut m = dns_query(9, "x", 1);
    m.truncate(12);
    for _ in 0..5 {
        m.push(63);
        m.extend([b'a'; 63]);
    }
    m.extend([0, 0, 1, 0, 1]);
    let e = kernel_dns(&mut k, &udp(c, 3, s, 53, &m))[0];
    assert_eq!(e.status & consts::DNS_Q_TOO_LONG as u8, consts::DNS_Q_TOO_LONG as u8);
    assert!(matches!(k.dns_record(&e), Err(dns::DnsError::NameTooLong { .. })));
    assert!(matches!(dns::parse_message(&m), Err(dns::DnsError::NameTooLong { .. })));

    // Wrong lengths: the question runs past the message; a header-only stub; a short payload.
    let mut m = dns_query(10, "www.example.com", 1);
    m.truncate(20);
    let e = kernel_dns(&mut k, &udp(c, 4, s, 53, &m))[0];
    assert_eq!(e.status & consts::DNS_Q_TRUNCATED as u8, consts::DNS_Q_TRUNCATED as u8);
    assert_eq!(k.dns_record(&e).map(|r| r.qname), dns::parse_message(&m).map(|m| m.qname));
    let before = k.counters().expect("c").get(consts::CNT_DNS_SHORT);
    assert!(kernel_dns(&mut k, &udp(c, 5, s, 53, &[0; 11])).is_empty());
    assert_eq!(k.counters().expect("c").get(consts::CNT_DNS_SHORT), before + 1);
    // Bad label type.
    let mut m = dns_query(11, "x", 1);
    m[12] = 0x41;
    let e = kernel_dns(&mut k, &udp(c, 6, s, 53, &m))[0];
    assert_eq!(e.status & consts::DNS_Q_BAD_LABEL as u8, consts::DNS_Q_BAD_LABEL as u8);
    assert!(matches!(k.dns_record(&e), Err(dns::DnsError::BadLabelType { .. })));

    // Longer than the copy: msg[] holds the first DNS_MAX_COPY bytes.
    let mut m = Vec::new();
    let mut bld = DnsBuilder::new(&mut m, DnsHeader::response(12, 0)).question("big.example", 16, 1);
    let chunk = [b'z'; 200];
    let parts: [&[u8]; 1] = [&chunk];
    for _ in 0..5 {
        bld = bld.answer("big.example", 1, RData::Txt(&parts));
    }
    bld.finish();
    assert!(m.len() > osprey_ebpf::DNS_MAX_COPY);
    let e = kernel_dns(&mut k, &udp(s, 53, c, 7, &m))[0];
    assert_eq!(usize::from(e.msg_len), m.len());
    assert_eq!(usize::from(e.copy_len), osprey_ebpf::DNS_MAX_COPY);
    assert_eq!(e.status & consts::DNS_COPY_TRUNCATED as u8, consts::DNS_COPY_TRUNCATED as u8);
    let rec = k.dns_record(&e).expect("decodes the copied part");
    assert_eq!(rec.size as usize, m.len());
    assert_eq!(rec.answers.len(), 2, "two whole TXT answers fit in the copy");

    // Not DNS: other ports produce no record; non-DNS traffic is untouched.
    assert!(kernel_dns(&mut k, &udp(c, 5000, s, 5001, &q)).is_empty());
    // Over IPv6 and behind a VLAN tag.
    let mut f = Vec::new();
    PacketBuilder::new(&mut f).ethernet(MAC_B, MAC_A).vlan(42).ip(v6(1), v6(53)).udp(Udp::new(3333, 53)).payload(&q).finish();
    let e = kernel_dns(&mut k, &f)[0];
    assert_eq!((e.vlan, e.is_v4), (42, 0));
    assert_eq!(k.dns_record(&e).expect("v6").client_ip, v6(1));
}

#[test]
fn dns_ports_are_configurable_and_a_full_ring_is_counted() {
    if !root() {
        return;
    }
    let cfg = KernelConfig { dns_ports: vec![5353, 5355], dns_ring_bytes: 4096, ..KernelConfig::default() };
    let mut k = KernelCapture::load(cfg).expect("load");
    let q = dns_query(1, "printer.local", 1);
    assert!(kernel_dns(&mut k, &udp(v4(1), 40000, v4(2), 53, &q)).is_empty(), "53 not configured");
    assert_eq!(kernel_dns(&mut k, &udp(v4(1), 5353, v4(2), 5353, &q)).len(), 1);
    // A short query takes a short record (the struct cut after
    // msg[DNS_SMALL_COPY - 1], plus the ring's 8-byte header): a 4 KiB ring
    // holds 18 of them; the rest are counted drops.
    let record = osprey_ebpf::DNS_EVENT_HEADER + consts::DNS_SMALL_COPY as usize + 8;
    let fit = 4096 / record as u64;
    assert_eq!(fit, 18);
    let f = udp(v4(1), 1, v4(2), 5355, &q);
    k.test_run(&f, 40).expect("run");
    let c = k.counters().expect("c");
    let (got, full) = (c.get(consts::CNT_DNS_MESSAGES), c.get(consts::CNT_DNS_RING_FULL));
    assert_eq!(got + full, 41);
    assert_eq!(full, 40 - fit, "{got} submitted, {full} dropped");
    assert_eq!(k.dns_events(100).len() as u64, got - 1);
    assert!(matches!(
        KernelCapture::load(KernelConfig { dns_ports: vec![1, 2, 3, 4, 5], ..KernelConfig::default() }),
        Err(osprey_capture::kernel::KernelError::Config(_))
    ));
}

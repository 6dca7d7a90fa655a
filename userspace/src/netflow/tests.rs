//! Hand-built datagrams for every protocol path, truncation at every byte
//! offset, and arbitrary bytes.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use osprey_segment::records::{EndReason, FlowRecord};
use proptest::prelude::*;

use super::*;

const SEC: i64 = 1_000_000_000;
const MS: i64 = 1_000_000;

fn v4(a: u8, b: u8, c: u8, d: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(a, b, c, d))
}

fn session(last: u8) -> Session {
    Session { exporter: v4(192, 0, 2, last), exporter_port: 40000, collector: v4(192, 0, 2, 1), collector_port: 2055 }
}

fn decode(dec: &mut NetflowDecoder, s: Session, d: &[u8]) -> Vec<FlowRecord> {
    let mut out = Vec::new();
    let n = dec.decode(s, d, &mut out);
    assert_eq!(n, out.len());
    out
}

fn skipped(dec: &NetflowDecoder, why: NetflowSkip) -> u64 {
    dec.stats().skipped.get(&why).copied().unwrap_or(0)
}

/// A big-endian byte writer.
#[derive(Default)]
struct W(Vec<u8>);

impl W {
    fn u8(mut self, v: u8) -> Self {
        self.0.push(v);
        self
    }
    fn u16(mut self, v: u16) -> Self {
        self.0.extend(v.to_be_bytes());
        self
    }
    fn u32(mut self, v: u32) -> Self {
        self.0.extend(v.to_be_bytes());
        self
    }
    fn u64(mut self, v: u64) -> Self {
        self.0.extend(v.to_be_bytes());
        self
    }
    fn bytes(mut self, b: &[u8]) -> Self {
        self.0.extend(b);
        self
    }
}

/// A set: id, length (patched), body.
fn set(id: u16, body: &[u8]) -> Vec<u8> {
    W::default().u16(id).u16((4 + body.len()) as u16).bytes(body).0
}

#[allow(clippy::too_many_arguments, reason = "one argument per v5 record field the tests vary")]
fn v5_record(src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16, proto: u8, flags: u8, pkts: u32, octets: u32, first: u32, last: u32) -> Vec<u8> {
    W::default()
        .bytes(&src)
        .bytes(&dst)
        .u32(0) // next hop
        .u16(1)
        .u16(2) // input, output
        .u32(pkts)
        .u32(octets)
        .u32(first)
        .u32(last)
        .u16(sport)
        .u16(dport)
        .u8(0)
        .u8(flags)
        .u8(proto)
        .u8(0)
        .u16(0)
        .u16(0)
        .u8(24)
        .u8(24)
        .u16(0)
        .0
}

fn v5_datagram(records: &[Vec<u8>], sampling: u16) -> Vec<u8> {
    let mut w = W::default().u16(5).u16(records.len() as u16).u32(100_000).u32(1_700_000_000).u32(500_000_000).u32(7).u8(0).u8(0).u16(sampling);
    for r in records {
        w = w.bytes(r);
    }
    w.0
}

fn v9_datagram(count: u16, sets: &[Vec<u8>]) -> Vec<u8> {
    let mut w = W::default().u16(9).u16(count).u32(100_000).u32(1_700_000_000).u32(1).u32(42);
    for s in sets {
        w = w.bytes(s);
    }
    w.0
}

fn ipfix_message(domain: u32, sets: &[Vec<u8>]) -> Vec<u8> {
    let len: usize = 16 + sets.iter().map(Vec::len).sum::<usize>();
    let mut w = W::default().u16(10).u16(len as u16).u32(1_700_000_000).u32(1).u32(domain);
    for s in sets {
        w = w.bytes(s);
    }
    w.0
}

#[test]
fn v5_records_map_every_column() {
    let d = v5_datagram(
        &[
            v5_record([10, 0, 0, 1], [10, 0, 0, 2], 40000, 443, 6, 0x1b, 10, 1500, 90_000, 99_000),
            v5_record([10, 0, 0, 3], [10, 0, 0, 4], 0, 0x0800, 1, 0, 1, 84, 99_500, 99_500),
        ],
        0,
    );
    let mut dec = NetflowDecoder::default();
    let recs = decode(&mut dec, session(9), &d);
    let export = 1_700_000_000 * SEC + 500_000_000;
    assert_eq!(
        recs[0],
        FlowRecord {
            ts_start: export - 10_000 * MS,
            ts_end: export - 1_000 * MS,
            proto: 6,
            src_ip: v4(10, 0, 0, 1),
            src_port: 40000,
            dst_ip: v4(10, 0, 0, 2),
            dst_port: 443,
            vlan: 0,
            packets: 10,
            bytes: 1500,
            rev_packets: 0,
            rev_bytes: 0,
            tcp_flags: 0x1b,
            rev_tcp_flags: 0,
            end_reason: EndReason::Fin,
        }
    );
    assert_eq!((recs[1].dst_port, recs[1].end_reason, recs[1].ts_start), (0x0800, EndReason::Idle, export - 500 * MS));
    let s = dec.stats();
    assert_eq!((s.by_version[Version::V5.index()].datagrams, s.records(), s.skipped_total()), (1, 2, 0));
    assert!(s.sampling.is_empty());
}

#[test]
fn v5_sampling_is_reported_or_scaled() {
    let d = v5_datagram(&[v5_record([10, 0, 0, 1], [10, 0, 0, 2], 1, 2, 17, 0, 3, 300, 1, 2)], 0x4000 | 100);
    let mut dec = NetflowDecoder::new(Sampling::AsReported);
    let r = decode(&mut dec, session(9), &d);
    assert_eq!((r[0].packets, r[0].bytes), (3, 300));
    assert_eq!(dec.stats().sampled_records, 1);
    assert_eq!(dec.stats().sampling.get(&(Version::V5, v4(192, 0, 2, 9), 0)), Some(&100));
    let mut dec = NetflowDecoder::new(Sampling::Scale);
    let r = decode(&mut dec, session(9), &d);
    assert_eq!((r[0].packets, r[0].bytes), (300, 30_000));
}

#[test]
fn v5_bad_counts_drop_the_datagram() {
    let rec = v5_record([10, 0, 0, 1], [10, 0, 0, 2], 1, 2, 17, 0, 3, 300, 1, 2);
    let mut d = v5_datagram(&[rec], 0);
    d[3] = 31; // count above 30
    let mut dec = NetflowDecoder::default();
    assert!(decode(&mut dec, session(9), &d).is_empty());
    d[3] = 2; // one record missing
    assert!(decode(&mut dec, session(9), &d).is_empty());
    assert_eq!((skipped(&dec, NetflowSkip::V5BadCount), skipped(&dec, NetflowSkip::V5Truncated)), (1, 1));
}

/// v9 template 256: src/dst IPv4, ports, proto, flags, bytes, packets,
/// first/last switched, vlan.
fn v9_template() -> Vec<u8> {
    let fields: [(u16, u16); 11] = [(8, 4), (12, 4), (7, 2), (11, 2), (4, 1), (6, 1), (1, 4), (2, 4), (22, 4), (21, 4), (58, 2)];
    let mut w = W::default().u16(256).u16(fields.len() as u16);
    for (id, len) in fields {
        w = w.u16(id).u16(len);
    }
    set(0, &w.0)
}

fn v9_data(n: u8) -> Vec<u8> {
    let mut w = W::default();
    for i in 0..n {
        w = w
            .bytes(&[10, 1, 0, i])
            .bytes(&[10, 2, 0, i])
            .u16(1000 + u16::from(i))
            .u16(53)
            .u8(17)
            .u8(0)
            .u32(100)
            .u32(2)
            .u32(95_000)
            .u32(99_000)
            .u16(0x1064);
    }
    w = w.bytes(&[0, 0]); // padding
    set(256, &w.0)
}

#[test]
fn v9_template_then_data() {
    let d = v9_datagram(3, &[v9_template(), v9_data(2)]);
    let mut dec = NetflowDecoder::default();
    let recs = decode(&mut dec, session(9), &d);
    assert_eq!(recs.len(), 2);
    let export = 1_700_000_000 * SEC;
    assert_eq!(recs[1].src_ip, v4(10, 1, 0, 1));
    assert_eq!(recs[1].dst_ip, v4(10, 2, 0, 1));
    assert_eq!((recs[1].src_port, recs[1].dst_port, recs[1].proto), (1001, 53, 17));
    assert_eq!((recs[1].packets, recs[1].bytes, recs[1].vlan), (2, 100, 0x064));
    assert_eq!((recs[1].ts_start, recs[1].ts_end), (export - 5_000 * MS, export - 1_000 * MS));
    assert_eq!(recs[1].end_reason, EndReason::Idle);
    let s = dec.stats();
    assert_eq!((s.by_version[Version::V9.index()].templates, s.skipped_total()), (1, 0));
    // Templates are per session: another exporter has none.
    assert!(decode(&mut dec, session(8), &v9_datagram(2, &[v9_data(2)])).is_empty());
    assert_eq!(skipped(&dec, NetflowSkip::NoTemplate), 1);
}

#[test]
fn v9_data_before_its_template_is_counted_not_guessed() {
    let mut dec = NetflowDecoder::default();
    assert!(decode(&mut dec, session(9), &v9_datagram(2, &[v9_data(2)])).is_empty());
    assert_eq!(skipped(&dec, NetflowSkip::NoTemplate), 1);
    assert_eq!(decode(&mut dec, session(9), &v9_datagram(1, &[v9_template()])).len(), 0);
    assert_eq!(decode(&mut dec, session(9), &v9_datagram(2, &[v9_data(2)])).len(), 2);
}

#[test]
fn v9_uptime_wraps() {
    // First switched just before the 32-bit uptime counter wrapped.
    let mut d = v9_datagram(2, &[v9_template(), v9_data(1)]);
    d[4..8].copy_from_slice(&500u32.to_be_bytes()); // sysUptime after the wrap
    let first_off = d.len() - 2 - 2 - 8; // first switched of the only record
    d[first_off..first_off + 4].copy_from_slice(&(u32::MAX - 499).to_be_bytes());
    d[first_off + 4..first_off + 8].copy_from_slice(&400u32.to_be_bytes());
    let mut dec = NetflowDecoder::default();
    let r = decode(&mut dec, session(9), &d);
    let export = 1_700_000_000 * SEC;
    assert_eq!((r[0].ts_start, r[0].ts_end), (export - 1_000 * MS, export - 100 * MS));
}

#[test]
fn v9_options_template_announces_sampling() {
    // Options template 300: scope system (1, 4 bytes); options
    // samplingInterval (34, 4) and samplingAlgorithm (35, 1).
    let opt_tpl = W::default().u16(300).u16(4).u16(8).u16(1).u16(4).u16(34).u16(4).u16(35).u16(1).u16(0).0; // + 2 bytes pad
    let opt_data = W::default().u32(0).u32(64).u8(2).bytes(&[0, 0, 0]).0;
    let d = v9_datagram(4, &[set(1, &opt_tpl), set(300, &opt_data), v9_template(), v9_data(1)]);
    let mut dec = NetflowDecoder::default();
    let r = decode(&mut dec, session(9), &d);
    assert_eq!((r.len(), r[0].packets), (1, 2));
    let s = dec.stats();
    assert_eq!(s.by_version[Version::V9.index()].options_templates, 1);
    assert_eq!(s.by_version[Version::V9.index()].option_records, 1);
    assert_eq!(s.sampling.get(&(Version::V9, v4(192, 0, 2, 9), 42)), Some(&64));
    assert_eq!((s.sampled_records, s.skipped_total()), (1, 0));
    let mut dec = NetflowDecoder::new(Sampling::Scale);
    let r = decode(&mut dec, session(9), &d);
    assert_eq!((r[0].packets, r[0].bytes), (128, 6400));
}

#[test]
fn v9_zero_padding_after_last_flowset_is_not_a_skip() {
    let mut d = v9_datagram(3, &[v9_template(), v9_data(2)]);
    d.extend([0u8; 40]);
    let mut dec = NetflowDecoder::default();
    assert_eq!(decode(&mut dec, session(9), &d).len(), 2);
    assert_eq!(dec.stats().skipped_total(), 0);
}

#[test]
fn v9_missing_flowsets_are_counted() {
    // The header announces 3 records; the data flowset is gone.
    let d = v9_datagram(3, &[v9_template()]);
    let mut dec = NetflowDecoder::default();
    assert!(decode(&mut dec, session(9), &d).is_empty());
    assert_eq!(skipped(&dec, NetflowSkip::V9CountShort), 1);
}

/// IPFIX template 400: IPv6 addresses, ports, proto, tcpControlBits (2
/// bytes), octets (8), packets (8), reverse octets/packets/flags (RFC 5103),
/// an enterprise field (PEN 9, 4 bytes) and a variable-length enterprise
/// string (PEN 9), flowStart/EndMilliseconds, flowEndReason, a
/// variable-length IANA field (interfaceName 82), vlanId.
fn ipfix_template() -> Vec<u8> {
    let mut w = W::default().u16(400).u16(17);
    for (id, len) in [(27u16, 16u16), (28, 16), (7, 2), (11, 2), (4, 1), (6, 2), (1, 8), (2, 8)] {
        w = w.u16(id).u16(len);
    }
    w = w.u16(0x8000 | 1).u16(8).u32(REVERSE_PEN);
    w = w.u16(0x8000 | 2).u16(4).u32(REVERSE_PEN);
    w = w.u16(0x8000 | 6).u16(1).u32(REVERSE_PEN);
    w = w.u16(0x8000 | 1).u16(4).u32(9); // enterprise 9 element 1: not octetDeltaCount
    w = w.u16(0x8000 | 7).u16(0xffff).u32(9);
    for (id, len) in [(152u16, 8u16), (153, 8), (136, 1), (82, 0xffff)] {
        w = w.u16(id).u16(len);
    }
    set(2, &w.0)
}

fn ipfix_data(name_len: usize) -> Vec<u8> {
    let src: Ipv6Addr = "2001:db8::1".parse().expect("addr");
    let dst: Ipv6Addr = "2001:db8::2".parse().expect("addr");
    let mut w = W::default().bytes(&src.octets()).bytes(&dst.octets()).u16(50000).u16(22).u8(6).u16(0x0012);
    w = w.u64(4000).u64(20).u64(9000).u32(25).u8(0x1a);
    w = w.u32(0xdead_beef).u8(3).bytes(b"abc");
    w = w.u64(1_700_000_000_123).u64(1_700_000_005_456).u8(3);
    // interfaceName: short form, or the 255 + u16 long form.
    if name_len < 255 {
        w = w.u8(name_len as u8);
    } else {
        w = w.u8(255).u16(name_len as u16);
    }
    w = w.bytes(&vec![b'x'; name_len]);
    set(400, &w.0)
}

#[test]
fn ipfix_variable_length_enterprise_and_reverse_fields() {
    for name_len in [0, 5, 254, 255, 300] {
        let m = ipfix_message(7, &[ipfix_template(), ipfix_data(name_len)]);
        let mut dec = NetflowDecoder::default();
        let r = decode(&mut dec, session(9), &m);
        assert_eq!(r.len(), 1, "name length {name_len}");
        let r = &r[0];
        assert_eq!(r.src_ip, "2001:db8::1".parse::<IpAddr>().expect("addr"));
        assert_eq!(r.dst_ip, "2001:db8::2".parse::<IpAddr>().expect("addr"));
        assert_eq!((r.src_port, r.dst_port, r.proto, r.tcp_flags), (50000, 22, 6, 0x12));
        assert_eq!((r.bytes, r.packets, r.rev_bytes, r.rev_packets, r.rev_tcp_flags), (4000, 20, 9000, 25, 0x1a));
        assert_eq!((r.ts_start, r.ts_end), (1_700_000_000_123 * MS, 1_700_000_005_456 * MS));
        // flowEndReason 3 (end of flow detected) → fin.
        assert_eq!(r.end_reason, EndReason::Fin);
        assert_eq!(dec.stats().skipped_total(), 0, "name length {name_len}");
    }
}

#[test]
fn ipfix_end_reasons() {
    for (code, flags, want) in
        [(1u8, 0u16, EndReason::Idle), (2, 0, EndReason::Active), (3, 0x04, EndReason::Rst), (4, 0, EndReason::Flush), (5, 0, EndReason::Evicted)]
    {
        let mut data = ipfix_data(1);
        // tcpControlBits at 4 + 16 + 16 + 2 + 2 + 1; flowEndReason 8 bytes before
        // the variable-length name (1 length byte + 1 byte).
        data[41..43].copy_from_slice(&flags.to_be_bytes());
        let at = data.len() - 3;
        data[at] = code;
        let m = ipfix_message(7, &[ipfix_template(), data]);
        let mut dec = NetflowDecoder::default();
        assert_eq!(decode(&mut dec, session(9), &m)[0].end_reason, want, "code {code}");
    }
}

#[test]
fn ipfix_variable_length_past_the_set_is_a_bad_record() {
    let mut data = ipfix_data(5);
    let at = data.len() - 6;
    data[at] = 200; // interfaceName claims 200 bytes
    let m = ipfix_message(7, &[ipfix_template(), data]);
    let mut dec = NetflowDecoder::default();
    assert!(decode(&mut dec, session(9), &m).is_empty());
    assert_eq!(skipped(&dec, NetflowSkip::BadRecord), 1);
}

#[test]
fn ipfix_withdrawal_removes_templates() {
    let mut dec = NetflowDecoder::default();
    let m = ipfix_message(7, &[ipfix_template()]);
    decode(&mut dec, session(9), &m);
    assert_eq!(dec.template_count(), 1);
    // Withdraw template 400.
    decode(&mut dec, session(9), &ipfix_message(7, &[set(2, &W::default().u16(400).u16(0).0)]));
    assert_eq!(dec.template_count(), 0);
    assert!(decode(&mut dec, session(9), &ipfix_message(7, &[ipfix_data(1)])).is_empty());
    assert_eq!(skipped(&dec, NetflowSkip::NoTemplate), 1);
    // Withdraw all (template id 2) leaves other domains alone.
    decode(&mut dec, session(9), &m);
    decode(&mut dec, session(9), &ipfix_message(8, &[ipfix_template()]));
    assert_eq!(dec.template_count(), 2);
    decode(&mut dec, session(9), &ipfix_message(7, &[set(2, &W::default().u16(2).u16(0).0)]));
    assert_eq!(dec.template_count(), 1);
    assert_eq!(dec.stats().template_withdrawals, 2);
    // Options templates: one withdrawn by id (a 4-byte record in set 3),
    // then all of them (id 3); data templates of the domain stay.
    let opt = |id: u16| set(3, &W::default().u16(id).u16(2).u16(1).u16(149).u16(4).u16(160).u16(8).0);
    decode(&mut dec, session(9), &ipfix_message(8, &[opt(501), opt(502)]));
    assert_eq!(dec.template_count(), 3);
    decode(&mut dec, session(9), &ipfix_message(8, &[set(3, &W::default().u16(501).u16(0).0)]));
    assert_eq!(dec.template_count(), 2);
    decode(&mut dec, session(9), &ipfix_message(8, &[set(3, &W::default().u16(3).u16(0).0)]));
    assert_eq!(dec.template_count(), 1);
    assert_eq!((dec.stats().template_withdrawals, dec.stats().skipped_total()), (4, 1));
}

#[test]
fn ipfix_options_give_system_init_time_for_uptime_times() {
    // Options template 500: scope observationDomainId (149, 4);
    // systemInitTimeMilliseconds (160, 8) and samplingPacketInterval/Space.
    let opt_tpl = W::default().u16(500).u16(4).u16(1).u16(149).u16(4).u16(160).u16(8).u16(305).u16(4).u16(306).u16(4).0;
    let init_ms = 1_690_000_000_000u64;
    let opt_data = W::default().u32(7).u64(init_ms).u32(1).u32(99).0;
    // Data template 501: IPv4 addresses, flowStart/EndSysUpTime, octets.
    let tpl = W::default().u16(501).u16(5).u16(8).u16(4).u16(12).u16(4).u16(22).u16(4).u16(21).u16(4).u16(1).u16(2).0;
    let data = W::default().bytes(&[10, 0, 0, 1]).bytes(&[10, 0, 0, 2]).u32(1_000).u32(2_500).u16(77).0;
    let m = ipfix_message(7, &[set(3, &opt_tpl), set(500, &opt_data), set(2, &tpl), set(501, &data)]);
    let mut dec = NetflowDecoder::default();
    let r = decode(&mut dec, session(9), &m);
    let init = init_ms as i64 * MS;
    assert_eq!((r[0].ts_start, r[0].ts_end, r[0].bytes), (init + 1_000 * MS, init + 2_500 * MS, 77));
    let s = dec.stats();
    assert_eq!((s.by_version[Version::Ipfix.index()].options_templates, s.by_version[Version::Ipfix.index()].option_records), (1, 1));
    assert_eq!(s.sampling.get(&(Version::Ipfix, v4(192, 0, 2, 9), 7)), Some(&100));
    // Without the options record the export time is the fallback.
    let mut dec = NetflowDecoder::default();
    let r = decode(&mut dec, session(9), &ipfix_message(7, &[set(2, &tpl), set(501, &data)]));
    assert_eq!((r[0].ts_start, r[0].ts_end), (1_700_000_000 * SEC, 1_700_000_000 * SEC));
}

#[test]
fn absurd_system_init_time_falls_back_instead_of_overflowing() {
    // Found by the netflow_datagrams fuzz target: an init time near i64::MAX
    // ms overflowed when converted to ns.
    let opt_tpl = W::default().u16(500).u16(2).u16(1).u16(149).u16(4).u16(160).u16(8).0;
    let tpl = W::default().u16(501).u16(3).u16(8).u16(4).u16(12).u16(4).u16(22).u16(4).0;
    let data = W::default().bytes(&[10, 0, 0, 1]).bytes(&[10, 0, 0, 2]).u32(1_000).0;
    for init_ms in [i64::MAX as u64, i64::MAX as u64 / 1_000_000 + 1, u64::MAX] {
        let opt_data = W::default().u32(7).u64(init_ms).0;
        let m = ipfix_message(7, &[set(3, &opt_tpl), set(500, &opt_data), set(2, &tpl), set(501, &data)]);
        let r = decode(&mut NetflowDecoder::default(), session(9), &m);
        assert_eq!(r.len(), 1);
        assert_eq!((r[0].ts_start, r[0].ts_end), (1_700_000_000 * SEC, 1_700_000_000 * SEC), "init {init_ms}: export time");
    }
}

#[test]
fn repeated_elements_count_by_first_occurrence() {
    // Outer (tunnel) addresses and protocol first, inner ones after.
    let tpl = W::default().u16(600).u16(6).u16(8).u16(4).u16(12).u16(4).u16(4).u16(1).u16(8).u16(4).u16(12).u16(4).u16(4).u16(1).0;
    let data = W::default().bytes(&[1, 1, 1, 1]).bytes(&[2, 2, 2, 2]).u8(4).bytes(&[10, 0, 0, 1]).bytes(&[10, 0, 0, 2]).u8(17).0;
    let mut dec = NetflowDecoder::default();
    let r = decode(&mut dec, session(9), &ipfix_message(1, &[set(2, &tpl), set(600, &data)]));
    assert_eq!((r[0].src_ip, r[0].dst_ip, r[0].proto), (v4(1, 1, 1, 1), v4(2, 2, 2, 2), 4));
    // Enterprise elements take the other repeat check: reverse octets twice.
    let tpl = W::default().u16(601).u16(4).u16(8).u16(4).u16(12).u16(4).u16(0x8001).u16(4).u32(REVERSE_PEN).u16(0x8001).u16(4).u32(REVERSE_PEN).0;
    let data = W::default().bytes(&[10, 0, 0, 1]).bytes(&[10, 0, 0, 2]).u32(5).u32(9).0;
    let r = decode(&mut dec, session(9), &ipfix_message(1, &[set(2, &tpl), set(601, &data)]));
    assert_eq!(r[0].rev_bytes, 5);
}

#[test]
fn records_without_addresses_are_counted_not_stored() {
    // A layer-2 template: MAC addresses (56, 80) and octets only.
    let tpl = W::default().u16(700).u16(3).u16(56).u16(6).u16(80).u16(6).u16(1).u16(4).0;
    let data = W::default().bytes(&[2; 6]).bytes(&[4; 6]).u32(9).0;
    let mut dec = NetflowDecoder::default();
    assert!(decode(&mut dec, session(9), &ipfix_message(1, &[set(2, &tpl), set(700, &data)])).is_empty());
    assert_eq!(dec.stats().by_version[Version::Ipfix.index()].without_addresses, 1);
    assert_eq!(dec.stats().skipped_total(), 0);
}

#[test]
fn malformed_sets_and_templates_are_counted() {
    let mut dec = NetflowDecoder::default();
    // Reserved set id 5.
    decode(&mut dec, session(9), &ipfix_message(1, &[set(5, &[0; 4])]));
    // Template id below 256.
    decode(&mut dec, session(9), &ipfix_message(1, &[set(2, &W::default().u16(255).u16(1).u16(8).u16(4).0)]));
    // Template whose fields run past the set.
    decode(&mut dec, session(9), &ipfix_message(1, &[set(2, &W::default().u16(900).u16(3).u16(8).u16(4).0)]));
    // Template of only zero-length fields, then data for it.
    decode(&mut dec, session(9), &ipfix_message(1, &[set(2, &W::default().u16(901).u16(1).u16(8).u16(0).0), set(901, &[0; 8])]));
    // Not NetFlow: an sFlow v5 header (32-bit version 5).
    decode(&mut dec, session(9), &W::default().u32(5).u32(1).bytes(&[0; 20]).0);
    // A set length beyond the message.
    let mut m = ipfix_message(1, &[set(2, &W::default().u16(902).u16(1).u16(8).u16(4).0)]);
    m[18] = 0x7f;
    decode(&mut dec, session(9), &m);
    for why in
        [NetflowSkip::ReservedSetId, NetflowSkip::BadTemplate, NetflowSkip::ZeroLengthRecord, NetflowSkip::NotNetflow, NetflowSkip::SetTruncated]
    {
        assert!(skipped(&dec, why) > 0, "{why} counted: {:?}", dec.stats().skipped);
    }
    assert_eq!(skipped(&dec, NetflowSkip::BadTemplate), 2);
}

#[test]
fn template_cache_is_bounded() {
    let mut dec = NetflowDecoder::default();
    let mut id = 256u32;
    // 4000 one-field templates per message.
    while id < 256 + MAX_TEMPLATES as u32 + 10 {
        let mut w = W::default();
        for _ in 0..4000 {
            let dom_id = id;
            w = w.u16((256 + dom_id % 60_000) as u16).u16(1).u16(8).u16(4);
            id += 1;
        }
        // Domains separate the template ids beyond 65 535.
        let domain = (id - 256) / 60_000;
        decode(&mut dec, session(9), &ipfix_message(domain, &[set(2, &w.0)]));
    }
    assert_eq!(dec.template_count(), MAX_TEMPLATES);
    assert!(skipped(&dec, NetflowSkip::TemplateCacheFull) > 0);
}

/// Every proper prefix of a valid datagram is a counted skip (or decodes
/// fewer records), never a panic.
fn assert_every_truncation_counted(name: &str, setup: &[Vec<u8>], d: &[u8]) {
    let full = {
        let mut dec = NetflowDecoder::default();
        for s in setup {
            decode(&mut dec, session(9), s);
        }
        decode(&mut dec, session(9), d).len()
    };
    assert!(full > 0, "{name}: the full datagram decodes");
    for cut in 0..d.len() {
        let mut dec = NetflowDecoder::default();
        for s in setup {
            decode(&mut dec, session(9), s);
        }
        let before = dec.stats().skipped_total();
        let got = decode(&mut dec, session(9), &d[..cut]).len();
        let after = dec.stats().skipped_total();
        assert!(after > before, "{name}: cut at {cut} of {} decoded {got} records without a counted skip", d.len());
    }
}

#[test]
fn truncation_at_every_offset_is_a_counted_skip() {
    let v5 = v5_datagram(
        &[v5_record([10, 0, 0, 1], [10, 0, 0, 2], 1, 2, 6, 2, 1, 40, 1, 1), v5_record([10, 0, 0, 3], [10, 0, 0, 4], 1, 2, 6, 2, 1, 40, 1, 1)],
        0,
    );
    assert_every_truncation_counted("v5", &[], &v5);
    // v9 without trailing padding (a cut there would only remove padding).
    let data = W::default().bytes(&[10, 1, 0, 1]).bytes(&[10, 2, 0, 1]).u16(1).u16(53).u8(17).u8(0).u32(100).u32(2).u32(95_000).u32(99_000).u16(1).0;
    assert_every_truncation_counted("v9", &[], &v9_datagram(2, &[v9_template(), set(256, &data)]));
    assert_every_truncation_counted("v9 data only", &[v9_datagram(1, &[v9_template()])], &v9_datagram(1, &[set(256, &data)]));
    assert_every_truncation_counted("ipfix", &[], &ipfix_message(7, &[ipfix_template(), ipfix_data(300)]));
    assert_every_truncation_counted("ipfix data only", &[ipfix_message(7, &[ipfix_template()])], &ipfix_message(7, &[ipfix_data(4)]));
}

#[test]
fn export_extractor_finds_datagrams_over_ipv4_and_ipv6_and_skips_sflow() {
    use crate::craft::{PacketBuilder, PcapWriter, Udp};
    let v9 = v9_datagram(3, &[v9_template(), v9_data(2)]);
    let ipfix = ipfix_message(7, &[ipfix_template(), ipfix_data(3)]);
    let sflow = W::default().u32(5).u32(1).bytes(&[0; 20]).0;
    let mut w = PcapWriter::new(Vec::new(), 1).expect("pcap");
    let mut frame = Vec::new();
    let frames: [(IpAddr, IpAddr, u16, &[u8]); 4] = [
        (v4(198, 18, 0, 1), v4(198, 18, 0, 2), 2055, &v9),
        ("2001:2::1".parse().expect("addr"), "2001:2::2".parse().expect("addr"), 4739, &ipfix),
        (v4(198, 18, 0, 1), v4(198, 18, 0, 2), 6343, &sflow),
        (v4(198, 18, 0, 1), v4(198, 18, 0, 2), 9999, &v9),
    ];
    for (i, (src, dst, port, payload)) in frames.iter().enumerate() {
        PacketBuilder::new(&mut frame).ethernet([2; 6], [4; 6]).ip(*src, *dst).udp(Udp::new(40000, *port)).payload(payload).finish();
        w.write_packet(i as i64 * SEC, &frame).expect("write");
    }
    let pcap = w.into_inner().expect("pcap");
    let dir = tempfile::tempdir().expect("tempdir");
    let mut ing = NetflowIngestor::new(dir.path(), NetflowConfig::default()).expect("ingestor");
    ing.ingest_pcap_bytes(Path::new("test.pcap"), &pcap).expect("ingest");
    let stats = ing.finish().expect("finish");
    assert_eq!((stats.packets, stats.other_packets, stats.datagrams), (4, 2, 2));
    assert_eq!(stats.records(), 3);
    assert_eq!(stats.skipped_total(), 0);
    assert!(!stats.segments.is_empty());
    // Port 9999 read only when asked for.
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = NetflowConfig { ports: vec![9999], ..NetflowConfig::default() };
    let mut ing = NetflowIngestor::new(dir.path(), cfg).expect("ingestor");
    ing.ingest_pcap_bytes(Path::new("test.pcap"), &pcap).expect("ingest");
    assert_eq!(ing.finish().expect("finish").records(), 2);
}

#[test]
fn fragmented_export_datagrams_are_reassembled() {
    use crate::craft::{Ipv4, PacketBuilder, PcapWriter, Udp};
    let v9 = v9_datagram(3, &[v9_template(), v9_data(2)]);
    // The whole UDP datagram, then split at byte 48 of the IP payload.
    let mut whole = Vec::new();
    PacketBuilder::new(&mut whole).ethernet([2; 6], [4; 6]).ip(v4(198, 18, 0, 1), v4(198, 18, 0, 2)).udp(Udp::new(40000, 2055)).payload(&v9).finish();
    let udp = whole[14 + 20..].to_vec();
    let mut w = PcapWriter::new(Vec::new(), 1).expect("pcap");
    let mut frame = Vec::new();
    for (i, (off, part, more)) in [(0usize, &udp[..48], true), (48, &udp[48..], false)].into_iter().enumerate() {
        let mut h = Ipv4::new(Ipv4Addr::new(198, 18, 0, 1), Ipv4Addr::new(198, 18, 0, 2));
        h.id = 77;
        h.dont_fragment = false;
        h.fragment_offset = (off / 8) as u16;
        h.more_fragments = more;
        PacketBuilder::new(&mut frame).ethernet([2; 6], [4; 6]).ipv4(h).ip_protocol(17).payload(part).finish();
        w.write_packet(i as i64, &frame).expect("write");
    }
    let pcap = w.into_inner().expect("pcap");
    let dir = tempfile::tempdir().expect("tempdir");
    let mut ing = NetflowIngestor::new(dir.path(), NetflowConfig::default()).expect("ingestor");
    ing.ingest_pcap_bytes(Path::new("frag.pcap"), &pcap).expect("ingest");
    let stats = ing.finish().expect("finish");
    assert_eq!((stats.datagrams, stats.records(), stats.skipped_total()), (1, 2, 0));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let mut dec = NetflowDecoder::new(Sampling::Scale);
        let mut out = Vec::new();
        dec.decode(session(9), &bytes, &mut out);
        prop_assert_eq!(dec.stats().datagrams, 1);
    }

    /// Arbitrary frames behind an Ethernet/IPv4/UDP header to an export
    /// port (so they reach the extractor's UDP, fragment and length paths).
    #[test]
    fn arbitrary_frames_never_panic(tail in proptest::collection::vec(any::<u8>(), 0..200), frag in any::<u16>(), cut in 0usize..80) {
        use crate::craft::{Ipv4, PacketBuilder};
        use crate::pcap::{LinkType, RawPacket};
        let mut frame = Vec::new();
        let mut h = Ipv4::new(Ipv4Addr::new(198, 18, 0, 1), Ipv4Addr::new(198, 18, 0, 2));
        h.fragment_offset = frag & 0x1fff;
        h.more_fragments = frag & 0x2000 != 0;
        h.dont_fragment = false;
        PacketBuilder::new(&mut frame).ethernet([2; 6], [4; 6]).ipv4(h).ip_protocol(17).payload(&[0x9c, 0x40, 0x08, 0x07, 0x00, 0x40, 0, 0]).payload(&tail).finish();
        frame.truncate(frame.len().saturating_sub(cut));
        let mut ex = ExportExtractor::new(&DEFAULT_PORTS);
        let mut stats = NetflowStats::default();
        let mut dec = NetflowDecoder::default();
        let raw = RawPacket { ts_ns: 0, link_type: LinkType::Ethernet, orig_len: frame.len() as u32 + cut as u32, data: &frame };
        if let Some(d) = ex.packet(&raw, &mut stats) {
            let mut out = Vec::new();
            dec.decode(d.session, &d.payload, &mut out);
        }
        prop_assert_eq!(stats.packets, 1);
    }

    /// Arbitrary bodies behind valid headers reach the set, template and
    /// record parsers (random bytes rarely pass the version check).
    #[test]
    fn arbitrary_sets_never_panic(body in proptest::collection::vec(any::<u8>(), 0..600), version in prop_oneof![Just(5u16), Just(9u16), Just(10u16)]) {
        let mut dec = NetflowDecoder::default();
        let mut out = Vec::new();
        // Known templates first, so data sets for 256 and 400 are decoded too.
        dec.decode(session(9), &v9_datagram(1, &[v9_template()]), &mut out);
        dec.decode(session(9), &ipfix_message(7, &[ipfix_template()]), &mut out);
        let mut d = match version {
            5 => W::default().u16(5).u16(1).bytes(&[0; 20]).0,
            9 => W::default().u16(9).u16(1).u32(0).u32(0).u32(0).u32(42).0,
            _ => W::default().u16(10).u16((16 + body.len()) as u16).u32(0).u32(0).u32(7).0,
        };
        d.extend(&body);
        for r in &out {
            prop_assert!(r.ts_end >= r.ts_start);
        }
        out.clear();
        dec.decode(session(9), &d, &mut out);
        for r in &out {
            prop_assert!(r.ts_end >= r.ts_start);
        }
    }
}

#[test]
fn sampler_without_announced_interval_is_counted() {
    // Template 800: addresses, packets, samplerId (48).
    let tpl = W::default().u16(800).u16(4).u16(8).u16(4).u16(12).u16(4).u16(2).u16(4).u16(48).u16(1).0;
    let data = W::default().bytes(&[10, 0, 0, 1]).bytes(&[10, 0, 0, 2]).u32(5).u8(1).bytes(&[10, 0, 0, 3]).bytes(&[10, 0, 0, 4]).u32(6).u8(0).0;
    let mut dec = NetflowDecoder::new(Sampling::Scale);
    let r = decode(&mut dec, session(9), &v9_datagram(3, &[set(0, &tpl), set(800, &data)]));
    // Nothing to scale by: counters as exported; the sampled one is counted.
    assert_eq!((r[0].packets, r[1].packets), (5, 6));
    assert_eq!((dec.stats().unknown_sampling_records, dec.stats().sampled_records), (1, 0));
    // A data record carrying its own interval (34) is sampled and listed.
    let tpl = W::default().u16(801).u16(4).u16(8).u16(4).u16(12).u16(4).u16(2).u16(4).u16(34).u16(2).0;
    let data = W::default().bytes(&[10, 0, 0, 1]).bytes(&[10, 0, 0, 2]).u32(5).u16(10).0;
    let r = decode(&mut dec, session(9), &v9_datagram(2, &[set(0, &tpl), set(801, &data)]));
    assert_eq!(r[0].packets, 50);
    assert_eq!(dec.stats().sampling.get(&(Version::V9, v4(192, 0, 2, 9), 42)), Some(&10));
}

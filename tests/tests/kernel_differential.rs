//! Differential test: every packet of the shared captures goes through the
//! XDP program with BPF_PROG_TEST_RUN; the drained flows, the per-reason skip
//! counters and the DNS ring records are compared with offline ingest
//! (`Ingestor`) of the same file.
//!
//! Test runs use the kernel's clock, not the capture's timestamps, so flows are
//! compared as per-key totals (both directions summed; records a timeout split
//! offline are summed too), not by timing. Differences that are not bugs are
//! explained and accounted for below, packet by packet:
//!
//! - captures whose link type is not Ethernet are skipped (XDP sees Ethernet);
//! - frames shorter than 14 bytes or too large for a test run are not run
//!   (the kernel refuses them): their offline contribution is subtracted;
//! - frames the snaplen cut with an IP length field of 0 (segmentation offload)
//!   get the wire length offline (pcap `orig_len`) but the captured length in
//!   the kernel (XDP has no other length): the byte difference is subtracted;
//! - DNS answers are compared only for messages no longer than the kernel's
//!   copy (`OSPREY_DNS_MAX_COPY`); longer ones are compared on header and question.
//!
//! Needs root and ../shared/data; prints why it skips otherwise.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::Path;

use osprey_capture::ingest::IngestConfig;
use osprey_capture::kernel::{KernelCapture, KernelConfig};
use osprey_capture::packet::{self, Fragment, SkipReason};
use osprey_capture::pcap::{CaptureReader, LinkType};
use osprey_ebpf::consts;
use osprey_integration_tests::{FlowTotalsKey, assert_same_flow_totals, captures_under, flow_totals, flow_totals_key, ingest, shared_data};
use osprey_segment::{DnsRecord, DnsTransport};


type DnsKey = (IpAddr, u16, IpAddr, u16, u16, bool, String, u16, u16, u8, u16, String);

fn dns_key(r: &DnsRecord, with_answers: bool) -> DnsKey {
    let answers = if with_answers { format!("{:?}", r.answers) } else { String::new() };
    (r.client_ip, r.client_port, r.server_ip, r.server_port, r.id, r.is_response, r.qname.clone(), r.qtype, r.qclass, r.rcode, r.an_count, answers)
}

#[derive(Default, Debug)]
struct Explained {
    short: u64,
    too_big: u64,
    tso_bytes: u64,
}

fn run_file(path: &Path) -> Option<Explained> {
    let data = std::fs::read(path).expect("read capture");
    let Ok(mut reader) = CaptureReader::new(&data) else {
        println!("  {}: not a capture, skipped", path.display());
        return None;
    };
    let ports = vec![53, 5353, 5355];
    let cfg = KernelConfig {
        dns_ports: ports.clone(),
        flow: osprey_capture::flow::FlowConfig { max_flows: 65536, ..Default::default() },
        ..KernelConfig::default()
    };
    let mut k = KernelCapture::load(cfg).expect("load");
    let mut explained = Explained::default();
    // Offline contributions of packets the kernel could not be given.
    let mut sub_flows: BTreeMap<FlowTotalsKey, (u64, u64)> = BTreeMap::new();
    let mut sub_skips = [0u64; SkipReason::COUNT];
    let mut sub_flow_packets = 0u64;
    let mut sub_dns = 0u64;
    let mut kernel_dns = Vec::new();
    let mut ran = 0u64;
    while let Some(p) = reader.next_packet() {
        let Ok(p) = p else { break };
        if p.link_type != LinkType::Ethernet {
            println!("  {}: link type {:?}, not Ethernet: skipped (XDP sees Ethernet frames)", path.display(), p.link_type);
            return None;
        }
        let offline = packet::decode_frame(p.link_type, p.data, p.orig_len);
        let run = if p.data.len() < 14 { None } else { k.test_run(p.data, 1).ok() };
        if run.is_none() {
            if p.data.len() < 14 { explained.short += 1 } else { explained.too_big += 1 }
            match &offline {
                Err(r) => sub_skips[r.index()] += 1,
                Ok(m) if m.fragment == Fragment::NonFirst => sub_skips[SkipReason::Fragment.index()] += 1,
                Ok(m) => {
                    sub_flow_packets += 1;
                    let e = sub_flows.entry(flow_totals_key(m.proto, m.vlan, (m.src_ip(), m.src_port), (m.dst_ip(), m.dst_port))).or_insert((0, 0));
                    e.0 += 1;
                    e.1 += u64::from(m.ip_len);
                    if m.proto == 17 && !m.payload.is_empty() && (ports.contains(&m.src_port) || ports.contains(&m.dst_port)) {
                        sub_dns += 1;
                    }
                }
            }
            continue;
        }
        ran += 1;
        // Snaplen-cut offload frames: the offline IP length comes from orig_len.
        if let (Ok(m), Ok(c)) = (&offline, packet::decode(p.link_type, p.data))
            && m.ip_len != c.ip_len
            && m.fragment != Fragment::NonFirst
        {
            explained.tso_bytes += u64::from(m.ip_len - c.ip_len);
            let e = sub_flows.entry(flow_totals_key(m.proto, m.vlan, (m.src_ip(), m.src_port), (m.dst_ip(), m.dst_port))).or_insert((0, 0));
            e.1 += u64::from(m.ip_len - c.ip_len);
        }
        kernel_dns.extend(k.dns_events(1024));
    }
    let counters = k.counters().expect("counters");
    let kflows = k.flush().expect("flush");
    let off = ingest(path, IngestConfig { dns_ports: ports.clone(), ..IngestConfig::default() });
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("?");

    // Counters.
    assert_eq!(counters.packets(), ran, "{name}");
    let mut want_skips = off.stats.skipped;
    for (w, s) in want_skips.iter_mut().zip(sub_skips) {
        *w -= s;
    }
    assert_eq!(counters.skipped_all(), want_skips, "{name}: skip counters by reason {:?}", SkipReason::ALL.map(|r| r.as_str()));
    assert_eq!(counters.flow_packets(), off.stats.flow_packets - sub_flow_packets, "{name}: packets accounted");
    assert_eq!(counters.flow_table_full(), 0, "{name}");

    // Flows: per-key totals.
    let mut want = flow_totals(&off.flows);
    for (k2, (p, b)) in &sub_flows {
        let e = want.get_mut(k2).expect("subtracted key exists offline");
        e.0 -= p;
        e.1 -= b;
    }
    want.retain(|_, v| *v != (0, 0));
    let got = flow_totals(&kflows);
    assert_same_flow_totals(name, &got, &want);

    // DNS over UDP: the same messages, decoded the same way.
    let max = osprey_ebpf::DNS_MAX_COPY as u32;
    let mut kd: Vec<DnsKey> = Vec::new();
    for ev in &kernel_dns {
        if let Ok(r) = k.dns_record(ev) {
            kd.push(dns_key(&r, r.size <= max));
        }
    }
    let mut od: Vec<DnsKey> =
        off.dns.iter().filter(|r| r.transport == DnsTransport::Udp).map(|r| dns_key(r, r.size <= max)).collect();
    kd.sort();
    od.sort();
    assert_eq!(kd.len() as u64 + sub_dns.min(od.len() as u64), od.len() as u64, "{name}: DNS message count");
    if sub_dns == 0 {
        assert_eq!(kd, od, "{name}: DNS records");
    }
    assert_eq!(counters.get(consts::CNT_DNS_RING_FULL), 0);
    println!(
        "  {name}: {ran} packets run, {} flows, {} DNS records; explained: {explained:?}",
        got.len(),
        kd.len()
    );
    Some(explained)
}

#[test]
fn kernel_matches_offline_ingest_on_shared_captures() {
    // SAFETY: no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        println!("SKIP kernel_matches_offline_ingest_on_shared_captures: loading BPF needs root");
        return;
    }
    let Some(data) = shared_data() else {
        println!("SKIP kernel_matches_offline_ingest_on_shared_captures: ../shared/data is not present");
        return;
    };
    let files = captures_under(&data.join("pcap"));
    assert!(!files.is_empty(), "no captures under {}", data.join("pcap").display());
    let mut compared = 0;
    for f in &files {
        if run_file(f).is_some() {
            compared += 1;
        }
    }
    println!("{compared} of {} captures compared", files.len());
    assert!(compared > 0);
}

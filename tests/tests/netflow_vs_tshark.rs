//! NetFlow v5/v9 and IPFIX decoding checked against tshark's `cflow`
//! dissector on every capture under `netflow/pcap/` (including the derived
//! capture of all 92 Logstash payloads), each decoded on its own.
//!
//! **How tshark lists records.** With `-T fields`, every occurrence of a
//! field in a frame is printed comma-separated, so records that lack a field
//! (an options record, a template without ports) shift the lists against
//! each other and records cannot be told apart. This test therefore reads
//! `-T pdml`: tshark wraps each decoded data record in a `Flow N` (v9/IPFIX)
//! or `pdu N` (v5) element, and every `cflow.*` field nested under it
//! belongs to that record. Values tshark decoded from an RFC 5103 reverse
//! element carry `(Reverse Type ...)` in their display name and are kept
//! apart. A data set tshark has no template for is shown as `Data`.
//!
//! **What is compared.** Per frame, tshark's records that have a source and
//! a destination address (v4 or v6) against Osprey's flow records for the
//! same frame, in order: addresses, ports, protocol, packets, bytes,
//! reverse packets/bytes, TCP flags, VLAN, and the start/end times where
//! tshark shows them as numbers (v5/v9 uptime-relative times, converted with
//! the header's sysUptime and unix seconds). tshark's records without
//! addresses must be exactly Osprey's options records plus its
//! records-without-addresses; tshark's `Data` sets without a template must
//! be Osprey's `no_template` skips.
//!
//! **Explained differences** (each is checked for, not waved through):
//! - Counters: tshark shows each counter element under its own name;
//!   Osprey takes octetDeltaCount, else octetTotalCount, else
//!   postOctetDeltaCount, else initiatorOctets (packets likewise), which
//!   the oracle mirrors from tshark's names.
//! - ICMP: when a record's destination port is 0 and it has an ICMP
//!   type/code element, Osprey stores `type << 8 | code` as the destination
//!   port (the v5 convention `FlowRecord` documents); the oracle expects
//!   tshark's `icmp_type_code_ipv4/ipv6` value there.
//! - Vendor reverse counters (Ixia, enterprise 3054) are not RFC 5103
//!   elements and are skipped, so the oracle's reverse counters come only
//!   from RFC 5103 reverse elements and from responderOctets/Packets.
//! - End times before the start are clamped to the start by Osprey.
//!
//! **sFlow** captures are read twice: on the export ports (sFlow's 6343 is
//! not one, so every frame must be other traffic and nothing decoded), and
//! on 6343 itself with tshark decoding it as cflow too: every sFlow datagram
//! must be counted as `not_netflow` (no record), and the 5 genuine NetFlow
//! v5 datagrams tcpdump's capture also sends to 6343 are compared like any
//! other.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::Path;

use osprey_capture::netflow::{ExportExtractor, NetflowDecoder, NetflowSkip, NetflowStats, Sampling, Version};
use osprey_capture::pcap::CaptureReader;
use osprey_integration_tests::{oracle_inputs, tshark};
use osprey_segment::FlowRecord;

/// The ports the shared captures use (nDPI 2057, pmacct 9991/9992, the
/// derived capture 2055/4739), as the `-d` options below decode them.
const PORTS: [u16; 5] = [2055, 2057, 4739, 9991, 9992];

/// One record as tshark printed it: field name → display value (first
/// occurrence); reverse elements under `name.rev`.
type TsharkRecord = BTreeMap<String, String>;

/// One frame as tshark printed it.
#[derive(Debug, Default)]
struct TsharkFrame {
    records: Vec<TsharkRecord>,
    /// Data sets tshark had no template for.
    no_template_sets: usize,
    /// Template and options template records tshark decoded.
    templates: usize,
    /// tshark flagged the frame malformed (it stops dissecting there).
    malformed: bool,
    /// Header fields (first occurrence in the frame).
    header: TsharkRecord,
}

fn attr<'a>(line: &'a str, name: &str) -> Option<&'a str> {
    let key = format!(" {name}=\"");
    let start = line.find(&key)? + key.len();
    let end = line[start..].find('"')? + start;
    Some(&line[start..end])
}

fn indent(line: &str) -> usize {
    line.len() - line.trim_start().len()
}

/// Parses tshark's PDML into frames.
fn tshark_frames(file: &Path, ports: &[u16]) -> Vec<TsharkFrame> {
    let mut args = vec!["-T", "pdml"];
    let decode_as: Vec<String> = ports.iter().map(|p| format!("udp.port=={p},cflow")).collect();
    for d in &decode_as {
        args.push("-d");
        args.push(d);
    }
    let lines = tshark(file, &args);
    let mut frames = Vec::new();
    let mut cur: Option<TsharkFrame> = None;
    // Indentation of the open record element, if inside one.
    let mut rec_indent: Option<usize> = None;
    for line in &lines {
        let t = line.trim_start();
        if t.starts_with("<packet>") {
            if let Some(f) = cur.take() {
                frames.push(f);
            }
            cur = Some(TsharkFrame::default());
            rec_indent = None;
            continue;
        }
        let Some(frame) = cur.as_mut() else { continue };
        let ind = indent(line);
        if rec_indent.is_some_and(|r| ind <= r) {
            rec_indent = None;
        }
        if attr(line, "show").is_some_and(|s| s.starts_with("Malformed Packet")) {
            frame.malformed = true;
        }
        if t.starts_with("<field name=\"\"") {
            let show = attr(line, "show").unwrap_or("");
            let numbered = |p: &str| show.strip_prefix(p).is_some_and(|r| r.starts_with(|c: char| c.is_ascii_digit()));
            if show.starts_with("Template (") || show.starts_with("Options Template (") {
                frame.templates += 1;
            }
            if numbered("Flow ") || numbered("pdu ") {
                frame.records.push(TsharkRecord::new());
                rec_indent = Some(ind);
                continue;
            }
            if show.starts_with("Data ") || show == "Data" {
                frame.no_template_sets += 1;
            }
        }
        let Some(name) = attr(line, "name").filter(|n| n.starts_with("cflow.") || *n == "ip.src" || *n == "ipv6.src") else { continue };
        let Some(show) = attr(line, "show") else { continue };
        let showname = attr(line, "showname").unwrap_or("");
        let key = if showname.contains("(Reverse Type") { format!("{name}.rev") } else { name.to_string() };
        if rec_indent.is_some() {
            if let Some(r) = frame.records.last_mut() {
                r.entry(key).or_insert_with(|| show.to_string());
            }
        } else {
            frame.header.entry(key).or_insert_with(|| show.to_string());
        }
    }
    if let Some(f) = cur.take() {
        frames.push(f);
    }
    frames
}

/// Osprey's records per frame with its records-without-addresses per frame
/// (options records plus address-less data records), and the counters.
fn osprey_frames_on(file: &Path, ports: &[u16]) -> (Vec<(Vec<FlowRecord>, u64)>, NetflowStats) {
    let data = std::fs::read(file).expect("read capture");
    let mut reader = CaptureReader::new(&data).expect("capture");
    let mut ex = ExportExtractor::new(ports);
    let mut dec = NetflowDecoder::new(Sampling::AsReported);
    let mut side = NetflowStats::default();
    let mut frames = Vec::new();
    while let Some(p) = reader.next_packet() {
        let raw = p.expect("packet");
        let mut out = Vec::new();
        let addressless = |s: &NetflowStats| s.by_version.iter().map(|v| v.option_records + v.without_addresses).sum::<u64>();
        let before = addressless(dec.stats());
        if let Some(d) = ex.packet(&raw, &mut side) {
            dec.decode(d.session, &d.payload, &mut out);
        }
        frames.push((out, addressless(dec.stats()) - before));
    }
    let mut stats = dec.take_stats();
    for (k, v) in side.skipped {
        *stats.skipped.entry(k).or_default() += v;
    }
    stats.other_packets = side.other_packets;
    (frames, stats)
}

fn num(r: &TsharkRecord, name: &str) -> Option<u64> {
    let v = r.get(name)?;
    if let Some(hex) = v.strip_prefix("0x") { u64::from_str_radix(hex, 16).ok() } else { v.parse().ok() }
}

fn first_num(r: &TsharkRecord, names: &[&str]) -> Option<u64> {
    names.iter().find_map(|n| num(r, n))
}

fn ip(r: &TsharkRecord, name: &str) -> Option<IpAddr> {
    r.get(name)?.parse().ok()
}

/// The address the way Osprey picks it: ipVersion, else the non-zero family.
fn pick(r: &TsharkRecord, v4: &str, v6: &str) -> Option<IpAddr> {
    let (a, b) = (ip(r, v4), ip(r, v6));
    match num(r, "cflow.ip_version") {
        Some(4) if a.is_some() => a,
        Some(6) if b.is_some() => b,
        _ => match (a, b) {
            (Some(a), Some(b)) => Some(if a.is_unspecified() && !b.is_unspecified() { b } else { a }),
            (a, b) => a.or(b),
        },
    }
}

/// Seconds with a fraction ("328866.242000000") → ms.
fn secs_to_ms(s: &str) -> Option<i64> {
    let (i, f) = s.split_once('.').unwrap_or((s, "0"));
    let frac: String = f.chars().chain(std::iter::repeat('0')).take(3).collect();
    Some(i.parse::<i64>().ok()? * 1000 + frac.parse::<i64>().ok()?)
}

/// What Osprey must have produced for one tshark record.
#[derive(Debug, PartialEq, Eq)]
struct Expected {
    src: IpAddr,
    dst: IpAddr,
    src_port: u16,
    dst_port: u16,
    proto: u8,
    packets: u64,
    bytes: u64,
    rev_packets: u64,
    rev_bytes: u64,
    tcp_flags: u8,
    rev_tcp_flags: u8,
    vlan: u16,
}

fn expected(r: &TsharkRecord) -> Option<Expected> {
    let src = pick(r, "cflow.srcaddr", "cflow.srcaddrv6")?;
    let dst = match src {
        IpAddr::V4(_) => ip(r, "cflow.dstaddr"),
        IpAddr::V6(_) => ip(r, "cflow.dstaddrv6"),
    }
    .or_else(|| pick(r, "cflow.dstaddr", "cflow.dstaddrv6"))?;
    let proto = num(r, "cflow.protocol").unwrap_or(0) as u8;
    let mut dst_port = num(r, "cflow.dstport").unwrap_or(0) as u16;
    if matches!(proto, 1 | 58) && dst_port == 0 {
        dst_port = first_num(r, &["cflow.icmp_type_code_ipv4", "cflow.icmp_type_code_ipv6"]).map_or_else(
            || {
                let t = first_num(r, &["cflow.icmp_ipv4_type", "cflow.icmp_ipv6_type"]);
                let c = first_num(r, &["cflow.icmp_ipv4_code", "cflow.icmp_ipv6_code"]).unwrap_or(0);
                t.map_or(0, |t| (t << 8 | c) as u16)
            },
            |v| v as u16,
        );
    }
    let rev_bytes = first_num(r, &["cflow.octets.rev", "cflow.permanent_octets.rev"])
        .filter(|&n| n != 0)
        .or_else(|| num(r, "cflow.responder_octets"))
        .unwrap_or(0);
    let rev_packets = first_num(r, &["cflow.packets.rev", "cflow.permanent_packets.rev"])
        .filter(|&n| n != 0)
        .or_else(|| num(r, "cflow.responder_packets"))
        .unwrap_or(0);
    Some(Expected {
        src,
        dst,
        src_port: num(r, "cflow.srcport").unwrap_or(0) as u16,
        dst_port,
        proto,
        packets: first_num(r, &["cflow.packets", "cflow.permanent_packets", "cflow.post_packets", "cflow.initiator_packets"]).unwrap_or(0),
        bytes: first_num(r, &["cflow.octets", "cflow.permanent_octets", "cflow.post_octets", "cflow.initiator_octets"]).unwrap_or(0),
        rev_packets,
        rev_bytes,
        tcp_flags: num(r, "cflow.tcpflags").unwrap_or(0) as u8,
        rev_tcp_flags: num(r, "cflow.tcpflags.rev").unwrap_or(0) as u8,
        vlan: first_num(r, &["cflow.vlanid", "cflow.dot1q_vlan_id"]).unwrap_or(0) as u16 & 0x0fff,
    })
}

fn got(r: &FlowRecord) -> Expected {
    Expected {
        src: r.src_ip,
        dst: r.dst_ip,
        src_port: r.src_port,
        dst_port: r.dst_port,
        proto: r.proto,
        packets: r.packets,
        bytes: r.bytes,
        rev_packets: r.rev_packets,
        rev_bytes: r.rev_bytes,
        tcp_flags: r.tcp_flags,
        rev_tcp_flags: r.rev_tcp_flags,
        vlan: r.vlan,
    }
}

/// v5/v9 times: tshark prints first/last switched as uptime seconds and the
/// header's sysUptime and unix seconds; the record's times follow from them.
fn expected_times(header: &TsharkRecord, r: &TsharkRecord) -> Option<(i64, i64)> {
    let up = secs_to_ms(header.get("cflow.sysuptime")?)?;
    let unix_s: i64 = header.get("cflow.unix_secs")?.parse().ok()?;
    let unix_ns = unix_s * 1_000_000_000 + header.get("cflow.unix_nsecs").and_then(|n| n.parse::<i64>().ok()).unwrap_or(0);
    let start = secs_to_ms(r.get("cflow.timestart")?)?;
    let end = secs_to_ms(r.get("cflow.timeend")?)?;
    // The same signed 32-bit difference Osprey takes.
    let at = |t: i64| unix_ns - i64::from((up as u32).wrapping_sub(t as u32) as i32) * 1_000_000;
    Some((at(start), at(end).max(at(start))))
}

/// tshark's absolute time display, "Feb 28, 2023 09:47:14.123000000 UTC" → ns.
fn abs_time(s: &str) -> Option<i64> {
    const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let mut it = s.split_whitespace();
    let name = it.next()?;
    let month = MONTHS.iter().position(|m| *m == name)? as u32 + 1;
    let day: u32 = it.next()?.trim_end_matches(',').parse().ok()?;
    let year: i32 = it.next()?.parse().ok()?;
    let (hms, frac) = it.next()?.split_once('.')?;
    let mut p = hms.split(':').map(|x| x.parse::<i64>().ok());
    let (h, m, sec) = (p.next()??, p.next()??, p.next()??);
    let frac: String = frac.chars().chain(std::iter::repeat('0')).take(9).collect();
    let days = osprey_segment::time::days_from_civil(year, month, day);
    Some(((days * 24 + h) * 60 + m) * 60_000_000_000 + sec * 1_000_000_000 + frac.parse::<i64>().ok()?)
}

/// Counters over all files.
#[derive(Debug, Default)]
struct Totals {
    records: usize,
    timed: usize,
    uptime_timed: usize,
    prefix_frames: usize,
    versions: [u64; 3],
    failures: Vec<String>,
}

/// Compares one capture, read on `ports` (tshark decoding them as cflow).
fn compare_file(file: &Path, ports: &[u16], tot: &mut Totals) -> NetflowStats {
    // IPFIX flowStartSysUpTime is relative to the systemInitTime the
    // exporter announced in an options record (kept per exporter).
    let mut sys_init: BTreeMap<String, i64> = BTreeMap::new();
    let name = file.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let theirs = tshark_frames(file, ports);
    let (ours, stats) = osprey_frames_on(file, ports);
    assert_eq!(theirs.len(), ours.len(), "{name}: frame count");
    let mut no_tpl = 0usize;
    let mut v5_bad = 0u64;
    for (i, (t, (o, our_addressless))) in theirs.iter().zip(&ours).enumerate() {
        no_tpl += t.no_template_sets;
        let exporter = t.header.get("ip.src").or_else(|| t.header.get("ipv6.src")).cloned().unwrap_or_default();
        if let Some(init) = t.records.iter().find_map(|r| r.get("cflow.sys_init_time").and_then(|v| abs_time(v))) {
            sys_init.insert(exporter.clone(), init);
        }
        if num(&t.header, "cflow.version") == Some(5) && num(&t.header, "cflow.count").is_some_and(|c| c == 0 || c > 30) {
            // A v5 count above 30 is impossible (the Logstash `*_invalid*`
            // payloads): Osprey drops the datagram, tshark decodes what fits.
            assert!(o.is_empty(), "{name}: frame {}: v5 datagram with a bad count must be dropped", i + 1);
            v5_bad += 1;
            continue;
        }
        let with_addr: Vec<Expected> = t.records.iter().filter_map(expected).collect();
        let their_addressless = (t.records.len() - with_addr.len()) as u64;
        let mine: Vec<Expected> = o.iter().map(got).collect();
        // tshark stops early in two cases; then its records must be a
        // prefix of Osprey's. (1) v9: it stops after the header's record
        // count, while Osprey follows the flowset lengths (the count is
        // wrong in some exporters' datagrams: Ubiquiti EdgeRouter sends
        // count 2 with data flowsets after its 2 templates). (2) It
        // throws on a field whose size its type cannot have ("IPv4
        // address with length 2" in an H3C template) and marks the
        // frame malformed; Osprey ignores that one field and goes on.
        let v9_count_reached =
            num(&t.header, "cflow.version") == Some(9) && num(&t.header, "cflow.count").is_some_and(|c| c as usize == t.templates + t.records.len());
        if (v9_count_reached || t.malformed) && mine.len() > with_addr.len() {
            if mine[..with_addr.len()] != with_addr[..] {
                tot.failures
                    .push(format!("{name}: frame {}: tshark stopped early but is no prefix:\n  osprey {mine:?}\n  tshark {with_addr:?}", i + 1));
            }
            tot.prefix_frames += 1;
            tot.records += o.len();
            continue;
        }
        if mine != with_addr {
            tot.failures.push(format!("{name}: frame {} records differ:\n  osprey {mine:?}\n  tshark {with_addr:?}", i + 1));
            continue;
        }
        if *our_addressless != their_addressless {
            tot.failures.push(format!(
                "{name}: frame {}: records without addresses (options + address-less data): osprey {our_addressless}, tshark {their_addressless}",
                i + 1
            ));
        }
        // Times where tshark shows them as uptime values.
        let with_time: Vec<&TsharkRecord> = t.records.iter().filter(|r| expected(r).is_some()).collect();
        for (r, rec) in with_time.iter().zip(o) {
            let (abs_s, abs_e) = (r.get("cflow.abstimestart").and_then(|v| abs_time(v)), r.get("cflow.abstimeend").and_then(|v| abs_time(v)));
            if let (Some(s), Some(e)) = (abs_s, abs_e) {
                // flowStart/End{Seconds,Milliseconds,...}: absolute.
                assert_eq!((rec.ts_start, rec.ts_end), (s, e.max(s)), "{name}: frame {} absolute times", i + 1);
                tot.timed += 1;
            } else if let Some((s, e)) = expected_times(&t.header, r) {
                assert_eq!((rec.ts_start, rec.ts_end), (s, e), "{name}: frame {} times", i + 1);
                tot.timed += 1;
            } else if num(&t.header, "cflow.version") == Some(10)
                && let (Some(init), Some(s), Some(e)) = (sys_init.get(&exporter), r.get("cflow.timestart"), r.get("cflow.timeend"))
            {
                let at = |v: &String| secs_to_ms(v).map(|ms| init + ms * 1_000_000);
                let (s, e) = (at(s).expect("start"), at(e).expect("end"));
                assert_eq!((rec.ts_start, rec.ts_end), (s, e.max(s)), "{name}: frame {} sysUpTime times", i + 1);
                tot.timed += 1;
                tot.uptime_timed += 1;
            }
        }
        tot.records += o.len();
    }
    assert_eq!(stats.skipped.get(&NetflowSkip::V5BadCount).copied().unwrap_or(0), v5_bad, "{name}: v5 datagrams with a bad count");
    let our_no_tpl = stats.skipped.get(&NetflowSkip::NoTemplate).copied().unwrap_or(0);
    if our_no_tpl != no_tpl as u64 {
        tot.failures.push(format!("{name}: data sets without a template: osprey {our_no_tpl}, tshark {no_tpl}"));
    }
    for v in Version::ALL {
        tot.versions[v.index()] += stats.by_version[v.index()].records;
    }
    println!("{name} (ports {ports:?}): {} records, skipped {:?}", ours.iter().map(|f| f.0.len()).sum::<usize>(), stats.skipped);
    stats
}

#[test]
fn netflow_records_match_tshark() {
    let Some(data) = oracle_inputs("netflow_records_match_tshark") else { return };
    let dir = data.join("netflow/pcap");
    let mut files: Vec<_> = std::fs::read_dir(&dir).expect("netflow/pcap").flatten().map(|e| e.path()).collect();
    files.sort();
    assert!(files.len() >= 10, "expected the shared NetFlow captures in {}", dir.display());
    let mut tot = Totals::default();
    for file in &files {
        let name = file.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let stats = compare_file(file, &PORTS, &mut tot);
        if name.contains("sflow") {
            assert_eq!(stats.datagrams, 0, "{name}: sFlow is not on an export port and must not be decoded");
            assert!(stats.other_packets > 0, "{name}: sFlow frames are counted as other traffic");
            // Read on the sFlow port itself (with tshark decoding it as
            // cflow too), sFlow datagrams are recognised as not NetFlow (the
            // 32-bit sFlow version starts with two zero bytes) and counted;
            // tcpdump's capture also holds 5 genuine NetFlow v5 datagrams
            // sent to 6343, which are decoded and compared like the rest.
            let s = compare_file(file, &[6343], &mut tot);
            let not_nf = s.skipped.get(&NetflowSkip::NotNetflow).copied().unwrap_or(0);
            assert!(not_nf > 0, "{name}: sFlow datagrams counted as not NetFlow: {:?}", s.skipped);
            let nf: u64 = s.by_version.iter().map(|v| v.datagrams).sum();
            assert_eq!(not_nf + nf, s.datagrams, "{name}: every datagram is NetFlow or counted as not: {:?}", s.skipped);
        }
    }
    let Totals { records, timed, uptime_timed, prefix_frames, versions, failures } = tot;
    assert!(failures.is_empty(), "{} differences:\n{}", failures.len(), failures.join("\n"));
    println!(
        "{records} records compared, {timed} with times ({uptime_timed} IPFIX sysUpTime), {prefix_frames} frames where tshark stopped early; by version {versions:?}"
    );
    assert!(prefix_frames <= 2, "tshark stopped early in {prefix_frames} frames (2 known: EdgeRouter count, H3C field size)");
    // Every version must have been exercised for the comparison to mean anything.
    assert!(versions.iter().all(|&n| n > 0), "records by version: {versions:?}");
    assert!(records > 1000, "only {records} records compared");
}

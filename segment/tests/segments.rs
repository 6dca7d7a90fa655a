//! Segment round trips, layout, metadata, and behaviour on damaged files.

use std::fs;
use std::io::{Seek, SeekFrom, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};

use osprey_segment::partition::{DataReader, PartitionedWriter, TimeRange, WriterConfig, list_segments, read_all};
use osprey_segment::print::{Format, RecordPrinter};
use osprey_segment::segment::SegmentReader;
use osprey_segment::time::parse_rfc3339;
use osprey_segment::{DnsAnswer, DnsRecord, DnsTransport, EndReason, FlowRecord, Kind, ProxyRecord};
use proptest::prelude::*;

const HOUR: i64 = 3_600_000_000_000;

fn t(s: &str) -> i64 {
    parse_rfc3339(s).expect("valid test timestamp")
}

fn flow(ts: i64, n: u16) -> FlowRecord {
    FlowRecord {
        ts_start: ts,
        ts_end: ts + 1_500_123_000,
        proto: 6,
        src_ip: IpAddr::V4(Ipv4Addr::new(198, 18, 0, (n % 250) as u8)),
        src_port: 40_000 + n,
        dst_ip: IpAddr::V6(Ipv6Addr::new(0x2001, 2, 0, 0, 0, 0, 0, n)),
        dst_port: 443,
        vlan: n % 3,
        packets: u64::from(n) + 1,
        bytes: 1500 * u64::from(n) + 40,
        rev_packets: 2,
        rev_bytes: 80,
        tcp_flags: 0x1b,
        rev_tcp_flags: 0x12,
        end_reason: EndReason::ALL[usize::from(n) % EndReason::ALL.len()],
    }
}

fn dns(ts: i64, n: u16) -> DnsRecord {
    DnsRecord {
        ts,
        client_ip: IpAddr::V4(Ipv4Addr::new(198, 18, 1, 2)),
        client_port: 50_000 + n,
        server_ip: IpAddr::V4(Ipv4Addr::new(198, 19, 0, 53)),
        server_port: 53,
        transport: if n.is_multiple_of(2) { DnsTransport::Udp } else { DnsTransport::Tcp },
        id: n,
        is_response: n % 2 == 1,
        opcode: 0,
        rcode: (n % 4) as u8,
        flags: 0x8180,
        qname: format!("host{n}.example.test"),
        qtype: 1,
        qclass: 1,
        an_count: n % 3,
        ns_count: 0,
        ar_count: 1,
        answers: (0..n % 3)
            .map(|k| DnsAnswer {
                name: format!("host{n}.example.test"),
                rtype: if k == 0 { 5 } else { 1 },
                rclass: 1,
                ttl: 300 + u32::from(k),
                ip: (k > 0).then_some(IpAddr::V4(Ipv4Addr::new(198, 18, 9, k as u8))),
                target: (k == 0).then(|| "cdn.example.test".to_string()),
                data: if k == 0 { "cdn.example.test".into() } else { format!("198.18.9.{k}") },
            })
            .collect(),
        size: 120,
        frame_len: 162,
        latency_ns: (n % 2 == 1).then_some(1_234_567),
    }
}

fn proxy(ts: i64, n: u16) -> ProxyRecord {
    ProxyRecord {
        ts,
        p_date: "2026-11-26".into(),
        p_time: "07:00:00".into(),
        clientip: Some(IpAddr::V4(Ipv4Addr::new(198, 18, 3, 4))),
        host: format!("www{n}.example.test"),
        reqmethod: "GET".into(),
        useragent: "Mozilla/5.0 (\"quoted\", comma)".into(),
        duration: i64::from(n),
        serverip: None,
        scbytes: 1000,
        csbytes: 200,
        fulluri: format!("www{n}.example.test/index.html"),
        ..ProxyRecord::default()
    }
}

fn cfg(sensor: &str) -> WriterConfig {
    WriterConfig { sensor: sensor.into(), batch_rows: 7, ..WriterConfig::default() }
}

fn write_flows(data: &Path, rows: &[FlowRecord]) -> Vec<PathBuf> {
    let mut w = PartitionedWriter::<FlowRecord>::new(data, cfg("s1")).expect("writer");
    for r in rows {
        w.push(r.clone()).expect("push");
    }
    w.finish().expect("finish")
}

/// Segments of column layout 1 (nanosecond flow times, written before
/// version 2) are still read: batches come back in the current layout with
/// flow times floored to microseconds, and time selection works on them.
#[test]
fn version_1_flow_segments_are_read_in_the_current_layout() {
    use arrow_array::{Array, ArrayRef, RecordBatch, TimestampNanosecondArray};
    use osprey_segment::schema::{SCHEMA_VERSION, flows_to_batch, schema, schema_of_version};
    use osprey_segment::segment::SegmentWriter;
    use std::sync::Arc;

    let dir = tempfile::tempdir().expect("tempdir");
    let base = t("2026-11-26T07:00:00Z");
    // Nanosecond digits, as version 1 kept them.
    let rows: Vec<FlowRecord> =
        (0..5).map(|n| FlowRecord { ts_end: base + i64::from(n) * 1_000_000_007 + 999, ..flow(base + i64::from(n) * 1_000_000_007, n) }).collect();
    let ns = |f: fn(&FlowRecord) -> i64| -> ArrayRef {
        Arc::new(TimestampNanosecondArray::from(rows.iter().map(f).collect::<Vec<_>>()).with_timezone("UTC"))
    };
    let mut cols = flows_to_batch(&rows).expect("batch").columns().to_vec();
    cols[0] = ns(|r| r.ts_start);
    cols[1] = ns(|r| r.ts_end);
    let v1 = RecordBatch::try_new(schema_of_version(Kind::Flow, 1), cols).expect("v1 batch");
    let seg_dir = osprey_segment::partition::partition_dir(dir.path(), Kind::Flow, base);
    let mut w = SegmentWriter::create_older(&seg_dir, Kind::Flow, "old", 1).expect("v1 writer");
    assert!(w.write(&flows_to_batch(&rows).expect("batch"), None).is_err(), "a v1 segment takes only v1 columns");
    w.write(&v1, Some((base, base + 4_000_000_028))).expect("write v1");
    let path = w.finish().expect("finish");
    assert!(SegmentWriter::create_older(&seg_dir, Kind::Flow, "old", SCHEMA_VERSION + 1).is_err());

    let mut r = SegmentReader::open(&path).expect("open v1");
    assert_eq!(r.meta().schema_version, 1);
    let b = r.next_batch().expect("a batch").expect("upgraded");
    assert_eq!(b.schema().fields(), schema(Kind::Flow).fields(), "current layout");
    assert_eq!(b.column(0).data_type(), schema(Kind::Flow).field(0).data_type());

    let floor = |t: i64| t.div_euclid(1000) * 1000;
    let want: Vec<FlowRecord> = rows.iter().map(|f| FlowRecord { ts_start: floor(f.ts_start), ts_end: floor(f.ts_end), ..f.clone() }).collect();
    let (back, skipped) = read_all::<FlowRecord>(dir.path(), TimeRange::default()).expect("read");
    assert!(skipped.is_empty(), "{skipped:?}");
    assert_eq!(back, want);
    // Selection by time on the upgraded column: from the third flow on.
    let (back, _) = read_all::<FlowRecord>(dir.path(), TimeRange { from: Some(want[2].ts_start), to: None }).expect("read");
    assert_eq!(back, want[2..]);
}

#[test]
fn flows_round_trip_into_hourly_partitions() {
    let dir = tempfile::tempdir().expect("tempdir");
    let base = t("2026-11-26T07:59:59Z");
    let rows: Vec<FlowRecord> = (0..40).map(|n| flow(base + i64::from(n) * 100_000_000, n)).collect();
    let written = write_flows(dir.path(), &rows);
    // 10 rows in hour 07, 30 in hour 08: one segment per hour.
    assert_eq!(written.len(), 2, "{written:?}");
    let rel: Vec<String> = written
        .iter()
        .map(|p| p.strip_prefix(dir.path()).expect("under data").to_string_lossy().into_owned())
        .collect();
    assert_eq!(rel, ["flow/2026/11/26/07/s1-000001.arrow", "flow/2026/11/26/08/s1-000001.arrow"]);
    let (back, skipped) = read_all::<FlowRecord>(dir.path(), TimeRange::default()).expect("read");
    assert!(skipped.is_empty(), "{skipped:?}");
    assert_eq!(back, rows);
}

#[test]
fn metadata_describes_the_segment() {
    let dir = tempfile::tempdir().expect("tempdir");
    let base = t("2026-11-26T07:00:00Z");
    let rows: Vec<FlowRecord> = (0..20).map(|n| flow(base + i64::from(n) * 1000, n)).collect();
    let written = write_flows(dir.path(), &rows);
    let r = SegmentReader::open(&written[0]).expect("open");
    let m = r.meta();
    assert_eq!(m.kind, Kind::Flow);
    assert_eq!(m.sensor, "s1");
    assert_eq!(m.record_count, 20);
    assert_eq!(m.schema_version, osprey_segment::schema::SCHEMA_VERSION);
    assert_eq!(m.ts_min, Some(base));
    assert_eq!(m.ts_max, Some(base + 19_000));
    assert!(m.writer_version.starts_with("osprey-segment "));
    // batch_rows = 7 → 3 batches.
    assert_eq!(r.num_batches(), 3);
}

#[test]
fn second_run_adds_segments_and_never_replaces() {
    let dir = tempfile::tempdir().expect("tempdir");
    let base = t("2026-11-26T07:00:00Z");
    let a = write_flows(dir.path(), &[flow(base, 1)]);
    let b = write_flows(dir.path(), &[flow(base, 2)]);
    assert_ne!(a, b);
    assert!(b[0].ends_with("s1-000002.arrow"));
    let (back, _) = read_all::<FlowRecord>(dir.path(), TimeRange::default()).expect("read");
    assert_eq!(back.len(), 2);
}

#[test]
fn dns_and_proxy_round_trip() {
    let dir = tempfile::tempdir().expect("tempdir");
    let base = t("2026-11-26T10:00:00Z");
    let drows: Vec<DnsRecord> = (0..25).map(|n| dns(base + i64::from(n), n)).collect();
    let prows: Vec<ProxyRecord> = (0..25).map(|n| proxy(base + i64::from(n), n)).collect();
    let mut dw = PartitionedWriter::<DnsRecord>::new(dir.path(), cfg("s2")).expect("writer");
    let mut pw = PartitionedWriter::<ProxyRecord>::new(dir.path(), cfg("s2")).expect("writer");
    for (d, p) in drows.iter().zip(&prows) {
        dw.push(d.clone()).expect("push");
        pw.push(p.clone()).expect("push");
    }
    dw.finish().expect("finish");
    pw.finish().expect("finish");
    assert_eq!(read_all::<DnsRecord>(dir.path(), TimeRange::default()).expect("read").0, drows);
    assert_eq!(read_all::<ProxyRecord>(dir.path(), TimeRange::default()).expect("read").0, prows);
}

#[test]
fn time_range_selects_rows_and_partitions() {
    let dir = tempfile::tempdir().expect("tempdir");
    let base = t("2026-11-26T00:00:00Z");
    let rows: Vec<FlowRecord> = (0..48).map(|n| flow(base + i64::from(n) * HOUR / 2, n)).collect();
    write_flows(dir.path(), &rows);
    let range = TimeRange { from: Some(base + 3 * HOUR), to: Some(base + 5 * HOUR + 1) };
    let (back, _) = read_all::<FlowRecord>(dir.path(), range).expect("read");
    let want: Vec<FlowRecord> = rows.into_iter().filter(|r| range.contains(r.ts_start)).collect();
    assert_eq!(want.len(), 5);
    assert_eq!(back, want);
}

/// Every truncation of a segment is reported with its path, never a panic, and
/// never hides the loss; other segments still read.
#[test]
fn truncated_segments_are_reported_and_skipped() {
    let dir = tempfile::tempdir().expect("tempdir");
    let base = t("2026-11-26T07:00:00Z");
    let rows: Vec<FlowRecord> = (0..30).map(|n| flow(base + i64::from(n) * 1000, n)).collect();
    write_flows(dir.path(), &rows);
    let good_other: Vec<FlowRecord> = (0..5).map(|n| flow(base + 2 * HOUR + i64::from(n), n)).collect();
    write_flows(dir.path(), &good_other);
    let victim = list_segments(dir.path(), Kind::Flow).expect("list")[0].clone();
    let full = fs::read(&victim).expect("read");
    for cut in (0..full.len()).step_by(37).chain([full.len() - 1]) {
        fs::write(&victim, &full[..cut]).expect("truncate");
        let mut reader = DataReader::open(dir.path(), Kind::Flow, TimeRange::default()).expect("open");
        let rows_read: usize = reader.by_ref().map(|b| b.num_rows()).sum();
        let skipped = reader.skipped();
        assert_eq!(skipped.len(), 1, "cut at {cut}: {skipped:?}");
        assert_eq!(skipped[0].path, victim);
        assert!(!skipped[0].reason.is_empty());
        assert_eq!(rows_read, good_other.len(), "cut at {cut}");
    }
}

/// A segment cut at any byte offset fails to open, with an error naming the
/// file (and never a panic).
#[test]
fn truncation_at_every_offset_is_reported() {
    let dir = tempfile::tempdir().expect("tempdir");
    let base = t("2026-11-26T07:00:00Z");
    let rows: Vec<FlowRecord> = (0..30).map(|n| flow(base + i64::from(n) * 1000, n)).collect();
    let victim = write_flows(dir.path(), &rows)[0].clone();
    let full = fs::read(&victim).expect("read");
    let shown = victim.display().to_string();
    // Shrink the file step by step (no rewrite per step: rewriting a file
    // truncated to zero is slow on ext4, which flushes it on close).
    let file = fs::OpenOptions::new().write(true).open(&victim).expect("open for writing");
    for cut in (0..full.len()).rev() {
        file.set_len(cut as u64).expect("truncate");
        match SegmentReader::open(&victim) {
            Ok(r) => panic!("cut at {cut} of {}: opened with {:?}", full.len(), r.meta()),
            Err(e) => assert!(e.to_string().contains(&shown), "cut at {cut}: {e}"),
        }
    }
}

/// Flipping any single byte is detected (checksum or structure), never read as
/// data; and it is never a panic.
#[test]
fn corrupt_bytes_are_detected() {
    let dir = tempfile::tempdir().expect("tempdir");
    let base = t("2026-11-26T07:00:00Z");
    let rows: Vec<FlowRecord> = (0..30).map(|n| flow(base + i64::from(n) * 1000, n)).collect();
    let written = write_flows(dir.path(), &rows);
    let victim = &written[0];
    let full = fs::read(victim).expect("read");
    let meta = SegmentReader::open(victim).expect("intact segment opens").meta().clone();
    let mut undetected = Vec::new();
    // Patch the byte in place and restore it (no rewrite per step: rewriting
    // a file truncated to zero is slow on ext4, which flushes it on close).
    let mut file = fs::OpenOptions::new().write(true).open(victim).expect("open for writing");
    let mut put = |pos: usize, byte: u8| {
        file.seek(SeekFrom::Start(pos as u64)).expect("seek");
        file.write_all(&[byte]).expect("write");
    };
    for (pos, &orig) in full.iter().enumerate() {
        put(pos, orig ^ 0x5a);
        let (back, skipped) = read_all::<FlowRecord>(dir.path(), TimeRange::default()).expect("read");
        if skipped.is_empty() {
            // Only a byte that changes nothing read (e.g. unused flatbuffer
            // padding) may go unnoticed: same rows, same metadata.
            let same_meta = SegmentReader::open(victim).is_ok_and(|r| *r.meta() == meta);
            if back != rows || !same_meta {
                undetected.push(pos);
            }
        } else {
            assert_eq!(skipped.len(), 1, "flip at {pos}: {skipped:?}");
            assert_eq!(&skipped[0].path, victim, "flip at {pos}");
        }
        put(pos, orig);
    }
    assert!(undetected.is_empty(), "silently wrong data after flipping bytes at {undetected:?}");
}

/// The footer of `bytes`: (start, end) of its flatbuffer.
fn footer_span(bytes: &[u8]) -> (usize, usize) {
    let end = bytes.len() - 10;
    let len = i32::from_le_bytes(bytes[end..end + 4].try_into().expect("4 bytes"));
    (end - usize::try_from(len).expect("footer length"), end)
}

/// The position in the footer of the flatbuffer string `s` (length-prefixed).
fn footer_string(bytes: &[u8], s: &str) -> usize {
    let (start, end) = footer_span(bytes);
    let mut needle = u32::try_from(s.len()).expect("short").to_le_bytes().to_vec();
    needle.extend_from_slice(s.as_bytes());
    needle.push(0);
    let found: Vec<usize> =
        (start..end - needle.len()).filter(|&i| bytes[i..i + needle.len()] == needle[..]).collect();
    assert_eq!(found.len(), 1, "{s:?} in the footer: {found:?}");
    found[0] + 4
}

/// Plausible edits of footer metadata (the copy of the schema metadata and the
/// footer values) are detected, with the file named.
#[test]
fn footer_metadata_edits_are_detected() {
    let dir = tempfile::tempdir().expect("tempdir");
    let base = t("2026-11-26T07:00:00Z");
    let rows: Vec<FlowRecord> = (0..30).map(|n| flow(base + i64::from(n) * 1000, n)).collect();
    let victim = write_flows(dir.path(), &rows)[0].clone();
    let full = fs::read(&victim).expect("read");
    let shown = victim.display().to_string();
    // The data ends with the 8-byte end-of-stream marker before the footer.
    let data_len = (footer_span(&full).0 - 8).to_string();
    let edits: [(&str, String, &str); 5] = [
        ("sensor name", "s1".into(), "s2"),
        ("record count", "30".into(), "31"),
        ("ts_min", base.to_string(), "2"),
        ("kind", "flow".into(), "dns\0"),
        ("data length", data_len, "9"),
    ];
    for (what, old, new_prefix) in edits {
        let at = footer_string(&full, &old);
        let mut bad = full.clone();
        bad[at..at + new_prefix.len()].copy_from_slice(new_prefix.as_bytes());
        assert_ne!(bad, full, "{what}");
        fs::write(&victim, &bad).expect("write");
        match SegmentReader::open(&victim) {
            Ok(r) => panic!("{what} edited: opened with {:?}", r.meta()),
            Err(e) => {
                let e = e.to_string();
                assert!(e.contains(&shown), "{what}: {e}");
                assert!(e.contains("footer"), "{what}: {e}");
            }
        }
        let (back, skipped) = read_all::<FlowRecord>(dir.path(), TimeRange::default()).expect("read");
        assert!(back.is_empty(), "{what}");
        assert_eq!(skipped.len(), 1, "{what}");
    }
}

/// The file also opens as plain Arrow IPC (what other tools see), with the
/// Osprey metadata in the schema and footer.
#[test]
fn segments_are_plain_arrow_ipc_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    let base = t("2026-11-26T07:00:00Z");
    let rows: Vec<FlowRecord> = (0..30).map(|n| flow(base + i64::from(n) * 1000, n)).collect();
    let victim = write_flows(dir.path(), &rows)[0].clone();
    let reader = arrow_ipc::reader::FileReader::try_new(fs::File::open(&victim).expect("open"), None).expect("arrow");
    assert_eq!(reader.schema().metadata()["osprey.sensor"], "s1");
    let footer = reader.custom_metadata();
    assert_eq!(footer["osprey.record_count"], "30");
    for k in ["osprey.data_len", "osprey.data_crc32", "osprey.meta_crc32", "osprey.ts_min", "osprey.ts_max"] {
        assert!(footer.contains_key(k), "{k}");
    }
    let n: usize = reader.map(|b| b.expect("batch").num_rows()).sum();
    assert_eq!(n, 30);
}

#[test]
fn partial_files_are_invisible_and_abandoned_writers_clean_up() {
    let dir = tempfile::tempdir().expect("tempdir");
    let base = t("2026-11-26T07:00:00Z");
    {
        let mut w = PartitionedWriter::<FlowRecord>::new(dir.path(), cfg("s1")).expect("writer");
        for n in 0..20 {
            w.push(flow(base + i64::from(n), n)).expect("push");
        }
        // Dropped without finish(): like a crash before publishing.
    }
    assert!(list_segments(dir.path(), Kind::Flow).expect("list").is_empty());
    let part = dir.path().join("flow/2026/11/26/07");
    let leftovers: Vec<_> = fs::read_dir(&part).expect("dir").collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn bad_sensor_names_are_rejected() {
    let dir = tempfile::tempdir().expect("tempdir");
    for bad in ["", "../x", "a/b", ".hidden", "sp ace"] {
        let c = WriterConfig { sensor: bad.into(), ..WriterConfig::default() };
        assert!(PartitionedWriter::<FlowRecord>::new(dir.path(), c).is_err(), "{bad:?}");
    }
}

#[test]
fn printing_uses_schema_names_and_text_forms() {
    let dir = tempfile::tempdir().expect("tempdir");
    let base = t("2026-11-26T07:00:00.000042000Z");
    write_flows(dir.path(), &[flow(base, 7)]);
    let mut out = RecordPrinter::new(Vec::new(), Format::Jsonl);
    for b in DataReader::open(dir.path(), Kind::Flow, TimeRange::default()).expect("open") {
        out.print_batch(&b).expect("print");
    }
    let text = String::from_utf8(out.finish().expect("finish")).expect("utf8");
    let v: serde_json::Value = serde_json::from_str(text.trim()).expect("valid JSON");
    assert_eq!(v["ts_start"], "2026-11-26T07:00:00.000042000Z");
    assert_eq!(v["src_ip"], "198.18.0.7");
    assert_eq!(v["dst_ip"], "2001:2::7");
    assert_eq!(v["end_reason"], "active");
    assert_eq!(v["packets"], 8);
    // Column order as written (serde_json's map may sort keys: use the text).
    let line = text.trim();
    let mut names: Vec<&str> = v.as_object().expect("object").keys().map(String::as_str).collect();
    names.sort_by_key(|k| line.find(&format!("\"{k}\":")).expect("key in text"));
    assert_eq!(
        names,
        [
            "ts_start", "ts_end", "proto", "src_ip", "src_port", "dst_ip", "dst_port", "vlan", "packets", "bytes",
            "rev_packets", "rev_bytes", "tcp_flags", "rev_tcp_flags", "end_reason"
        ]
    );

    let dir2 = tempfile::tempdir().expect("tempdir");
    let mut pw = PartitionedWriter::<ProxyRecord>::new(dir2.path(), cfg("s1")).expect("writer");
    pw.push(proxy(base, 1)).expect("push");
    pw.finish().expect("finish");
    let mut out = RecordPrinter::new(Vec::new(), Format::Csv);
    for b in DataReader::open(dir2.path(), Kind::Proxy, TimeRange::default()).expect("open") {
        out.print_batch(&b).expect("print");
    }
    let text = String::from_utf8(out.finish().expect("finish")).expect("utf8");
    let mut lines = text.lines();
    assert!(lines.next().expect("header").starts_with("ts,p_date,p_time,clientip,host,"));
    let row = lines.next().expect("row");
    assert!(row.contains(r#""Mozilla/5.0 (""quoted"", comma)""#), "{row}");
    assert!(row.contains(",198.18.3.4,"), "{row}");
}

fn arb_ip() -> impl Strategy<Value = IpAddr> {
    prop_oneof![
        any::<[u8; 4]>().prop_map(|b| IpAddr::V4(Ipv4Addr::from(b))),
        any::<[u8; 16]>().prop_map(|b| IpAddr::V6(Ipv6Addr::from(b))),
    ]
}

prop_compose! {
    fn arb_flow()(ts in -(1i64 << 40)..(1i64 << 62), dur in 0i64..1 << 40, proto in any::<u8>(),
                  src in arb_ip(), dst in arb_ip(), ports in any::<(u16, u16, u16)>(),
                  counts in any::<(u64, u64, u64, u64)>(), flags in any::<(u8, u8)>(), end in 0usize..6)
                  -> FlowRecord {
        FlowRecord { ts_start: ts, ts_end: ts.saturating_add(dur), proto, src_ip: src, src_port: ports.0,
            dst_ip: dst, dst_port: ports.1, vlan: ports.2 & 0xfff, packets: counts.0, bytes: counts.1,
            rev_packets: counts.2, rev_bytes: counts.3, tcp_flags: flags.0, rev_tcp_flags: flags.1,
            end_reason: EndReason::ALL[end] }
    }
}

prop_compose! {
    fn arb_answer()(name in "\\PC{0,40}", rtype in any::<u16>(), ttl in any::<u32>(),
                    ip in proptest::option::of(arb_ip()), target in proptest::option::of("[a-z.]{0,20}"),
                    data in "\\PC{0,60}") -> DnsAnswer {
        DnsAnswer { name, rtype, rclass: 1, ttl, ip, target, data }
    }
}

prop_compose! {
    fn arb_dns()(ts in 0i64..(1i64 << 62), c in arb_ip(), s in arb_ip(), ports in any::<(u16, u16, u16)>(),
                 tcp in any::<bool>(), resp in any::<bool>(), flags in any::<u16>(), qname in "\\PC{0,80}",
                 q in any::<(u16, u16)>(), counts in any::<(u16, u16, u16)>(),
                 answers in proptest::collection::vec(arb_answer(), 0..4), size in any::<u32>(),
                 latency in proptest::option::of(any::<i64>())) -> DnsRecord {
        DnsRecord { ts, client_ip: c, client_port: ports.0, server_ip: s, server_port: ports.1,
            transport: if tcp { DnsTransport::Tcp } else { DnsTransport::Udp }, id: ports.2, is_response: resp,
            opcode: ((flags >> 11) & 0xf) as u8, rcode: (flags & 0xf) as u8, flags, qname, qtype: q.0, qclass: q.1,
            an_count: counts.0, ns_count: counts.1, ar_count: counts.2, answers, size, frame_len: size / 2,
            latency_ns: latency }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn any_flows_round_trip(rows in proptest::collection::vec(arb_flow(), 0..60)) {
        let dir = tempfile::tempdir().expect("tempdir");
        write_flows(dir.path(), &rows);
        let (mut back, skipped) = read_all::<FlowRecord>(dir.path(), TimeRange::default()).expect("read");
        prop_assert!(skipped.is_empty());
        // Flow times are stored in microseconds: floored.
        let mut want: Vec<FlowRecord> = rows
            .iter()
            .map(|r| FlowRecord { ts_start: r.ts_start.div_euclid(1000) * 1000, ts_end: r.ts_end.div_euclid(1000) * 1000, ..r.clone() })
            .collect();
        let key = |r: &FlowRecord| (r.ts_start.div_euclid(HOUR), format!("{r:?}"));
        want.sort_by_key(key);
        back.sort_by_key(key);
        prop_assert_eq!(back, want);
    }

    #[test]
    fn any_dns_round_trips(rows in proptest::collection::vec(arb_dns(), 0..40)) {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut w = PartitionedWriter::<DnsRecord>::new(dir.path(), cfg("p")).expect("writer");
        for r in &rows { w.push(r.clone()).expect("push"); }
        w.finish().expect("finish");
        let (mut back, skipped) = read_all::<DnsRecord>(dir.path(), TimeRange::default()).expect("read");
        prop_assert!(skipped.is_empty());
        let mut want = rows.clone();
        let key = |r: &DnsRecord| (r.ts.div_euclid(HOUR), format!("{r:?}"));
        want.sort_by_key(key);
        back.sort_by_key(key);
        prop_assert_eq!(back, want);
    }
}

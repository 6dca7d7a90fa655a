//! The `osprey` binary end to end: ingest a crafted capture, print records,
//! export Parquet, and the exit codes for damaged input and bad configuration.

use std::path::Path;
use std::process::{Command, Output};

use std::net::{IpAddr, Ipv4Addr};

use osprey_capture::craft::{DnsBuilder, DnsHeader, PacketBuilder, PcapWriter, RData, Tcp, Udp, tcp_flags};

fn osprey(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_osprey")).args(args).env_remove("OSPREY_CONFIG").output().expect("osprey runs")
}

const MAC_A: [u8; 6] = [2, 0, 0, 0, 0, 1];
const MAC_B: [u8; 6] = [2, 0, 0, 0, 0, 2];
const CLIENT: [u8; 4] = [198, 18, 0, 10];
const SERVER: [u8; 4] = [198, 18, 0, 53];
const WEB: [u8; 4] = [198, 19, 1, 1];
/// 2026-11-26T07:00:00Z.
const T0: i64 = 1_795_676_400_000_000_000;

fn ip(a: [u8; 4]) -> IpAddr {
    IpAddr::V4(Ipv4Addr::from(a))
}

/// A capture with one DNS query/response and one short TCP connection.
fn write_capture(path: &Path) {
    let file = std::fs::File::create(path).expect("create pcap");
    let mut w = PcapWriter::new(file, osprey_capture::craft::linktype::ETHERNET).expect("pcap header");
    let mut frame = Vec::new();
    let mut msg = Vec::new();

    let dns = |frame: &mut Vec<u8>, msg: &mut Vec<u8>, response: bool| {
        msg.clear();
        let hdr = if response { DnsHeader::response(0x1234, 0) } else { DnsHeader::query(0x1234) };
        let mut b = DnsBuilder::new(msg, hdr).question("www.example.test", 1, 1);
        if response {
            b = b.answer("www.example.test", 300, RData::A(Ipv4Addr::new(198, 19, 1, 1)));
        }
        b.finish();
        frame.clear();
        let (src, dst, sp, dp) = if response { (SERVER, CLIENT, 53, 40000) } else { (CLIENT, SERVER, 40000, 53) };
        PacketBuilder::new(frame)
            .ethernet(MAC_B, MAC_A)
            .ip(ip(src), ip(dst))
            .udp(Udp::new(sp, dp))
            .payload(msg)
            .finish();
    };
    dns(&mut frame, &mut msg, false);
    w.write_packet(T0, &frame).expect("write");
    dns(&mut frame, &mut msg, true);
    w.write_packet(T0 + 2_000_000, &frame).expect("write");

    let tcp = |frame: &mut Vec<u8>, from_client: bool, flags: u8, payload: &[u8]| {
        frame.clear();
        let (src, dst, sp, dp) = if from_client { (CLIENT, WEB, 50000, 443) } else { (WEB, CLIENT, 443, 50000) };
        PacketBuilder::new(frame)
            .ethernet(MAC_B, MAC_A)
            .ip(ip(src), ip(dst))
            .tcp(Tcp::new(sp, dp, flags))
            .payload(payload)
            .finish();
    };
    let steps: [(bool, u8, &[u8]); 6] = [
        (true, tcp_flags::SYN, b""),
        (false, tcp_flags::SYN | tcp_flags::ACK, b""),
        (true, tcp_flags::ACK, b"hello"),
        (false, tcp_flags::ACK, b"world!"),
        (true, tcp_flags::FIN | tcp_flags::ACK, b""),
        (false, tcp_flags::FIN | tcp_flags::ACK, b""),
    ];
    for (k, (c, f, p)) in steps.iter().enumerate() {
        tcp(&mut frame, *c, *f, p);
        w.write_packet(T0 + 10_000_000 * (k as i64 + 1), &frame).expect("write");
    }
    w.into_inner().expect("flush");
}

fn jsonl(out: &Output) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is JSON"))
        .collect()
}

#[test]
fn ingest_then_records_prints_what_was_captured() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pcap = dir.path().join("in.pcap");
    write_capture(&pcap);
    let data = dir.path().join("data");
    let data_s = data.to_str().expect("utf8 path");
    let out = osprey(&["ingest", "pcap", pcap.to_str().expect("utf8"), "--data", data_s, "--sensor", "t1"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let summary = String::from_utf8_lossy(&out.stderr);
    assert!(summary.contains("dns messages"), "{summary}");
    assert!(data.join("flow/2026/11/26/07/t1-000001.arrow").is_file());

    let dns = jsonl(&osprey(&["records", "--data", data_s, "--kind", "dns"]));
    assert_eq!(dns.len(), 2);
    let resp = dns.iter().find(|r| r["is_response"] == true).expect("response");
    assert_eq!(resp["qname"], "www.example.test");
    assert_eq!(resp["client_ip"], "198.18.0.10");
    assert_eq!(resp["server_port"], 53);
    assert_eq!(resp["answers"][0]["ip"], "198.19.1.1");
    assert_eq!(resp["latency_ns"], 2_000_000);
    assert_eq!(resp["ts"], "2026-11-26T07:00:00.002000000Z");

    let flows = jsonl(&osprey(&["records", "--data", data_s, "--kind", "flow"]));
    let web = flows.iter().find(|f| f["dst_port"] == 443).expect("tcp flow");
    assert_eq!(web["src_ip"], "198.18.0.10");
    assert_eq!((web["packets"].as_u64(), web["rev_packets"].as_u64()), (Some(3), Some(3)));
    // IP-layer bytes: 40-byte headers, plus payloads.
    assert_eq!((web["bytes"].as_u64(), web["rev_bytes"].as_u64()), (Some(125), Some(126)));

    let csv = osprey(&["records", "--data", data_s, "--kind", "flow", "--format", "csv", "-n", "1"]);
    let text = String::from_utf8_lossy(&csv.stdout);
    let mut lines = text.lines();
    assert_eq!(
        lines.next(),
        Some("ts_start,ts_end,proto,src_ip,src_port,dst_ip,dst_port,vlan,packets,bytes,rev_packets,rev_bytes,tcp_flags,rev_tcp_flags,end_reason")
    );
    assert_eq!(lines.count(), 1, "--limit 1");

    let window = jsonl(&osprey(&["records", "--data", data_s, "--kind", "dns", "--from", "2026-11-26T07:00:00.001Z"]));
    assert_eq!(window.len(), 1, "--from filters rows");

    let pq = dir.path().join("pq");
    let out = osprey(&["export", "parquet", "--data", data_s, "--out", pq.to_str().expect("utf8")]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(pq.join("dns/2026/11/26/07/t1-000001.parquet").is_file());
}

#[test]
fn damaged_input_exits_1_and_keeps_the_rest() {
    let dir = tempfile::tempdir().expect("tempdir");
    let good = dir.path().join("good.pcap");
    write_capture(&good);
    let bytes = std::fs::read(&good).expect("read");
    let cut = dir.path().join("cut.pcap");
    std::fs::write(&cut, &bytes[..bytes.len() - 10]).expect("write");
    let junk = dir.path().join("junk.pcap");
    std::fs::write(&junk, b"this is not a capture at all").expect("write");
    let data = dir.path().join("data");
    let data_s = data.to_str().expect("utf8");
    let out = osprey(&[
        "ingest",
        "pcap",
        cut.to_str().expect("utf8"),
        junk.to_str().expect("utf8"),
        "--data",
        data_s,
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("junk.pcap"), "{err}");
    assert!(err.contains("cut.pcap") && err.contains("damaged"), "{err}");
    // Everything before the damage was kept: the DNS pair and 5 of 6 TCP packets.
    let dns = jsonl(&osprey(&["records", "--data", data_s, "--kind", "dns"]));
    assert_eq!(dns.len(), 2);

    // A damaged segment: reported, skipped, exit 1; the other kinds still read.
    let seg = data.join("flow/2026/11/26/07/osprey-000001.arrow");
    let mut b = std::fs::read(&seg).expect("segment");
    let mid = b.len() / 2;
    b[mid] ^= 0xff;
    std::fs::write(&seg, b).expect("write");
    let out = osprey(&["records", "--data", data_s, "--kind", "flow"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("osprey-000001.arrow"));
}

#[test]
fn usage_and_configuration_errors_exit_2() {
    assert_eq!(osprey(&["records", "--kind", "dns"]).status.code(), Some(2), "no data dir");
    assert_eq!(osprey(&["records", "--kind", "nope", "--data", "."]).status.code(), Some(2), "bad kind");
    assert_eq!(osprey(&["frobnicate"]).status.code(), Some(2), "bad verb");
    let out = Command::new(env!("CARGO_BIN_EXE_osprey"))
        .args(["config"])
        .env("OSPREY_FLOW__IDLE_TIMEOUT_SECS", "soon")
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("idle_timeout_secs"));
    let help = osprey(&["ingest", "pcap", "--help"]);
    assert!(help.status.success());
    assert!(String::from_utf8_lossy(&help.stdout).contains("continuous capture"));
}

#[test]
fn demo_runs_end_to_end_at_small_scale() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("demo");
    let out = osprey(&["demo", "--data", data.to_str().expect("utf8"), "--scale", "0.05"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}\n{}", String::from_utf8_lossy(&out.stderr));
    for anomaly in ["dns_tunnel", "port_scan", "beaconing", "exfil_upload", "dga"] {
        assert!(text.contains(anomaly), "the report names {anomaly}: {text}");
    }
    assert!(data.join("ground-truth.json").is_file());
    assert!(data.join("ranked").is_dir(), "scoring wrote ranked segments");
    // Both setups give every anomaly an explicit verdict.
    for anomaly in ["dns_tunnel", "port_scan", "beaconing", "exfil_upload", "dga"] {
        let line = text.lines().find(|l| l.trim_start().starts_with(anomaly) && l.contains("benign ahead"));
        let line = line.unwrap_or_else(|| panic!("no verdict line for {anomaly}: {text}"));
        let verdicts = line.matches("FOUND").count() + line.matches("missed").count();
        assert_eq!(verdicts, 2, "Spot's and the baseline's verdicts: {line}");
    }
    assert!(text.contains("with a baseline model:") && text.contains("with Spot's same-day model:"), "{text}");
    // The ranked run records its provenance, and `top` shows it in the
    // table header only.
    let d = data.to_str().expect("utf8");
    let table = osprey(&["top", "--data", d, "--kind", "flow", "-n", "3"]);
    assert!(table.status.success());
    let header = String::from_utf8_lossy(&table.stdout).lines().take(2).collect::<Vec<_>>().join("\n");
    for want in ["scoring blend", "id crc32:", "trained on [2026-11-24T00:00:00", "threshold 1", "mode model"] {
        assert!(header.contains(want), "{want:?} not in {header}");
    }
    for format in ["jsonl", "csv", "spot-tsv"] {
        let o = osprey(&["top", "--data", d, "--kind", "dns", "-n", "3", "--format", format]);
        assert!(o.status.success());
        let body = String::from_utf8_lossy(&o.stdout);
        assert!(!body.lines().any(|l| l.starts_with('#')), "{format} output has no header comment: {body}");
        assert!(body.lines().count() >= 3, "{format}: {body}");
    }
    // A second run replaces its own earlier demo, but never a foreign directory.
    assert!(osprey(&["demo", "--data", data.to_str().expect("utf8"), "--scale", "0.05"]).status.success());
    let foreign = dir.path().join("foreign");
    std::fs::create_dir_all(&foreign).expect("mkdir");
    std::fs::write(foreign.join("keep.txt"), "x").expect("write");
    assert_eq!(osprey(&["demo", "--data", foreign.to_str().expect("utf8")]).status.code(), Some(2));
    assert!(foreign.join("keep.txt").is_file());
}

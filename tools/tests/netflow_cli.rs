//! `osprey ingest netflow` end to end: raw v5 datagrams become flow records
//! that `osprey records` prints and `osprey words` turns into one src and
//! one dst word each; a damaged datagram gives exit code 1 with the reason
//! in the summary; a capture without export traffic is clean.

use std::path::Path;
use std::process::{Command, Output};

fn osprey(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_osprey")).args(args).env_remove("OSPREY_CONFIG").output().expect("osprey runs")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A v5 datagram with `n` records 198.18.0.i:1000+i → 198.18.1.1:443.
fn v5(n: u8, sampling: u16) -> Vec<u8> {
    let mut d = Vec::new();
    d.extend(5u16.to_be_bytes());
    d.extend(u16::from(n).to_be_bytes());
    d.extend(60_000u32.to_be_bytes()); // sysUptime ms
    d.extend(1_764_140_400u32.to_be_bytes()); // 2025-11-26T07:00:00Z
    d.extend(0u32.to_be_bytes());
    d.extend(1u32.to_be_bytes());
    d.extend([0, 0]);
    d.extend(sampling.to_be_bytes());
    for i in 0..n {
        d.extend([198, 18, 0, i, 198, 18, 1, 1, 0, 0, 0, 0, 0, 1, 0, 2]);
        d.extend(3u32.to_be_bytes()); // packets
        d.extend(180u32.to_be_bytes()); // bytes
        d.extend(50_000u32.to_be_bytes()); // first
        d.extend(59_000u32.to_be_bytes()); // last
        d.extend((1000 + u16::from(i)).to_be_bytes());
        d.extend(443u16.to_be_bytes());
        d.extend([0, 0x12, 6, 0, 0, 0, 0, 0, 24, 24, 0, 0]);
    }
    d
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> String {
    let p = dir.join(name);
    std::fs::write(&p, bytes).expect("write");
    p.to_str().expect("utf-8 path").to_string()
}

#[test]
fn raw_v5_datagrams_to_flow_records() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("data");
    let d = data.to_str().expect("utf-8 path");
    let a = write(tmp.path(), "a.dat", &v5(3, 0));
    let b = write(tmp.path(), "b.dat", &v5(2, 0x4000 | 10));

    let o = osprey(&["ingest", "netflow", "--raw", &a, &b, "--data", d]);
    assert!(o.status.success(), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains("flow records              5"), "{err}");
    assert!(err.contains("netflow v5       2 datagrams        5 records"), "{err}");
    assert!(err.contains("sampled records           2"), "{err}");
    assert!(err.contains("1 in 10"), "{err}");

    let o = osprey(&["records", "--data", d, "--kind", "flow", "--format", "csv"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let csv = String::from_utf8_lossy(&o.stdout);
    let rows: Vec<&str> = csv.lines().skip(1).collect();
    assert_eq!(rows.len(), 5, "{csv}");
    assert!(rows.iter().any(|r| r.contains("198.18.0.2") && r.contains("1002") && r.contains("443")), "{csv}");
    // Unidirectional: no reverse counters.
    assert!(csv.lines().next().is_some_and(|h| h.contains("rev_packets")), "{csv}");

    // Spot's words: a unidirectional record (rev_* = 0) is one flow event,
    // so one src word and one dst word, as Spot built from an nfdump line.
    let corpus = tmp.path().join("corpus.tsv");
    let o = osprey(&["words", "--data", d, "--kind", "flow", "--out", corpus.to_str().expect("utf-8 path")]);
    assert!(o.status.success(), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains("5 records") && err.contains("10 tokens"), "{err}");

    // A damaged datagram: exit code 1, the reason named.
    let mut bad = v5(3, 0);
    bad.truncate(bad.len() - 10);
    let c = write(tmp.path(), "c.dat", &bad);
    let o = osprey(&["ingest", "netflow", "--raw", &c, "--data", d]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("v5_truncated"), "{}", stderr(&o));
}

#[test]
fn export_port_is_configurable_and_other_traffic_is_not_damage() {
    use osprey_capture::craft::{PacketBuilder, PcapWriter, Udp};
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut w = PcapWriter::new(Vec::new(), 1).expect("pcap");
    let mut frame = Vec::new();
    let src = "198.18.0.1".parse().expect("addr");
    let dst = "198.18.0.2".parse().expect("addr");
    PacketBuilder::new(&mut frame).ethernet([2; 6], [4; 6]).ip(src, dst).udp(Udp::new(40000, 9991)).payload(&v5(4, 0)).finish();
    w.write_packet(1_764_140_400_000_000_000, &frame).expect("write");
    let pcap = write(tmp.path(), "export.pcap", &w.into_inner().expect("pcap"));
    let data = tmp.path().join("data");
    let d = data.to_str().expect("utf-8 path");

    // 9991 is not a default port: the frame is other traffic, and that is clean.
    let o = osprey(&["ingest", "netflow", &pcap, "--data", d]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("flow records              0"), "{}", stderr(&o));
    let o = osprey(&["ingest", "netflow", &pcap, "--data", d, "--port", "9991"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("flow records              4"), "{}", stderr(&o));
}

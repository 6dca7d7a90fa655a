//! Reads every real capture of the shared data set (`<repo>/../shared/data`,
//! i.e. `/work/shared/data`) with `pcap::CaptureReader` and `packet::decode`,
//! and checks both against Wireshark's command-line tools, which serve as the
//! oracle: the packet count against `capinfos`, and every decoded packet's
//! timestamp, lengths, VLAN, addresses, protocol, ports and TCP fields against
//! `tshark`. Nothing is hard-coded: when the data or the tools are missing the
//! tests print why and pass without checking.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::Command;

use osprey_capture::packet::{self, Fragment, PacketMeta, SkipReason};
use osprey_capture::pcap::CaptureReader;

fn data_dir() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data");
    if dir.is_dir() {
        Some(dir)
    } else {
        eprintln!("SKIP: shared data set not found at {}", dir.display());
        None
    }
}

/// Every file under `pcap/*/` and `netflow/pcap/`, sorted.
fn capture_files(dir: &Path) -> Vec<PathBuf> {
    let mut dirs = vec![dir.join("netflow/pcap")];
    if let Ok(entries) = std::fs::read_dir(dir.join("pcap")) {
        dirs.extend(entries.flatten().map(|e| e.path()).filter(|p| p.is_dir()));
    }
    let mut files: Vec<PathBuf> = dirs
        .iter()
        .filter_map(|d| std::fs::read_dir(d).ok())
        .flat_map(|entries| entries.flatten().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

fn have_tool(name: &str) -> bool {
    let found = Command::new(name)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        eprintln!("SKIP: `{name}` is not installed");
    }
    found
}

fn short(path: &Path) -> String {
    let mut parts: Vec<_> = path
        .iter()
        .rev()
        .take(2)
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    parts.reverse();
    parts.join("/")
}

fn read_all(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// The packet count according to `capinfos -c -M`.
fn capinfos_count(path: &Path) -> u64 {
    let out = Command::new("capinfos")
        .args(["-c", "-M"])
        .arg(path)
        .output()
        .expect("run capinfos");
    assert!(
        out.status.success(),
        "capinfos failed on {}",
        path.display()
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find(|l| l.contains("Number of packets"))
        .expect("capinfos prints a packet count");
    line.rsplit(':')
        .next()
        .and_then(|v| v.trim().parse().ok())
        .expect("numeric packet count")
}

#[test]
fn packet_counts_match_capinfos() {
    let Some(dir) = data_dir() else { return };
    if !have_tool("capinfos") {
        return;
    }
    let files = capture_files(&dir);
    assert!(!files.is_empty(), "no captures under {}", dir.display());
    for path in &files {
        let data = read_all(path);
        let reader =
            CaptureReader::new(&data).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let mut n = 0u64;
        for item in reader {
            item.unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            n += 1;
        }
        let oracle = capinfos_count(path);
        eprintln!("{:>7} packets  {}", n, short(path));
        assert_eq!(
            n,
            oracle,
            "{}: packet count differs from capinfos",
            path.display()
        );
    }
}

/// One packet as tshark dissects it (first occurrence of every field, i.e.
/// the outermost header), with IP reassembly off so fragments stay packets.
#[derive(Debug, Default)]
struct Oracle {
    time_ns: i64,
    frame_len: u32,
    cap_len: usize,
    protocols: String,
    vlan: Option<u16>,
    ip_src: Option<IpAddr>,
    ip_dst: Option<IpAddr>,
    ip_len: Option<u32>,
    ip6_src: Option<IpAddr>,
    ip6_dst: Option<IpAddr>,
    ip6_plen: Option<u32>,
    tcp_ports: Option<(u16, u16)>,
    udp_ports: Option<(u16, u16)>,
    icmp: Option<(u16, u16)>,
    icmp6: Option<(u16, u16)>,
    tcp_flags: Option<u16>,
    tcp_seq: Option<u32>,
}

const FIELDS: &[&str] = &[
    "frame.time_epoch",
    "frame.len",
    "frame.cap_len",
    "frame.protocols",
    "vlan.id",
    "ip.src",
    "ip.dst",
    "ip.len",
    "ipv6.src",
    "ipv6.dst",
    "ipv6.plen",
    "tcp.srcport",
    "tcp.dstport",
    "udp.srcport",
    "udp.dstport",
    "icmp.type",
    "icmp.code",
    "icmpv6.type",
    "icmpv6.code",
    "tcp.flags",
    "tcp.seq_raw",
];

fn num<T: std::str::FromStr>(s: &str) -> Option<T> {
    let s = s.trim();
    if let Some(hex) = s.strip_prefix("0x") {
        // tcp.flags prints as hex.
        return u64::from_str_radix(hex, 16)
            .ok()
            .and_then(|v| v.to_string().parse().ok());
    }
    s.parse().ok()
}

fn pair<T: std::str::FromStr>(a: &str, b: &str) -> Option<(T, T)> {
    Some((num(a)?, num(b)?))
}

fn epoch_ns(s: &str) -> i64 {
    let (sec, frac) = s.split_once('.').unwrap_or((s, ""));
    let mut frac = frac.to_string();
    frac.truncate(9);
    while frac.len() < 9 {
        frac.push('0');
    }
    sec.parse::<i64>().expect("seconds") * 1_000_000_000 + frac.parse::<i64>().expect("fraction")
}

fn tshark(path: &Path) -> Vec<Oracle> {
    let mut cmd = Command::new("tshark");
    cmd.arg("-n").arg("-r").arg(path);
    cmd.args([
        "-o",
        "ip.defragment:FALSE",
        "-o",
        "ipv6.defragment:FALSE",
        "-o",
        "tcp.desegment_tcp_streams:FALSE",
    ]);
    cmd.args(["-T", "fields", "-E", "separator=\t", "-E", "occurrence=f"]);
    for f in FIELDS {
        cmd.args(["-e", f]);
    }
    let out = cmd.output().expect("run tshark");
    assert!(
        out.status.success(),
        "tshark failed on {}: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|line| {
            let c: Vec<&str> = line.split('\t').collect();
            assert_eq!(c.len(), FIELDS.len(), "tshark line: {line}");
            Oracle {
                time_ns: epoch_ns(c[0]),
                frame_len: num(c[1]).expect("frame.len"),
                cap_len: num(c[2]).expect("frame.cap_len"),
                protocols: c[3].to_string(),
                vlan: num(c[4]),
                ip_src: num(c[5]),
                ip_dst: num(c[6]),
                ip_len: num(c[7]),
                ip6_src: num(c[8]),
                ip6_dst: num(c[9]),
                ip6_plen: num(c[10]),
                tcp_ports: pair(c[11], c[12]),
                udp_ports: pair(c[13], c[14]),
                icmp: pair(c[15], c[16]),
                icmp6: pair(c[17], c[18]),
                tcp_flags: num(c[19]),
                tcp_seq: num(c[20]),
            }
        })
        .collect()
}

/// Whether tshark found an IP header right after the link layer (possibly
/// behind VLAN tags, MPLS labels, LLC/SNAP or PPPoE).
fn tshark_sees_ip(protocols: &str) -> bool {
    for layer in protocols.split(':') {
        match layer {
            "ip" | "ipv6" => return true,
            "eth" | "ethertype" | "sll" | "null" | "loop" | "raw" | "vlan" | "mpls" | "llc"
            | "pppoes" | "ppp" => {}
            _ => return false,
        }
    }
    false
}

/// Compares one decoded packet with tshark; returns what differs.
fn compare(m: &PacketMeta<'_>, o: &Oracle) -> Vec<String> {
    let mut diffs = Vec::new();
    let mut check = |what: &str, ours: String, theirs: String| {
        if ours != theirs {
            diffs.push(format!("{what}: ours {ours}, tshark {theirs}"));
        }
    };
    // vlan.id's first occurrence may come from a frame nested deeper (an sFlow
    // sample carries whole Ethernet frames): only a tag before the IP header counts.
    let outer = o.protocols.split(":ip").next().unwrap_or_default();
    let vlan = if outer.split(':').any(|l| l == "vlan") {
        o.vlan.unwrap_or(0)
    } else {
        0
    };
    check("vlan", m.vlan.to_string(), vlan.to_string());
    let (src, dst, len) = if m.is_v4 {
        (o.ip_src, o.ip_dst, o.ip_len)
    } else {
        (o.ip6_src, o.ip6_dst, o.ip6_plen.map(|p| p + 40))
    };
    check("src", format!("{:?}", Some(m.src_ip())), format!("{src:?}"));
    check("dst", format!("{:?}", Some(m.dst_ip())), format!("{dst:?}"));
    check(
        "ip_len",
        format!("{:?}", Some(m.ip_len)),
        format!("{len:?}"),
    );
    if m.fragment == Fragment::NonFirst {
        return diffs;
    }
    let ports = Some((m.src_port, m.dst_port));
    match m.proto {
        6 => {
            check(
                "tcp ports",
                format!("{ports:?}"),
                format!("{:?}", o.tcp_ports),
            );
            check(
                "tcp flags",
                format!("{:?}", Some(m.tcp_flags)),
                format!("{:?}", o.tcp_flags.map(|f| (f & 0xff) as u8)),
            );
            check(
                "tcp seq",
                format!("{:?}", Some(m.tcp_seq)),
                format!("{:?}", o.tcp_seq),
            );
        }
        17 => check(
            "udp ports",
            format!("{ports:?}"),
            format!("{:?}", o.udp_ports),
        ),
        1 => check(
            "icmp",
            format!("{ports:?}"),
            format!("{:?}", o.icmp.map(|(t, c)| (0, t << 8 | c))),
        ),
        58 => check(
            "icmpv6",
            format!("{ports:?}"),
            format!("{:?}", o.icmp6.map(|(t, c)| (0, t << 8 | c))),
        ),
        _ => {}
    }
    diffs
}

#[test]
fn decode_agrees_with_tshark() {
    let Some(dir) = data_dir() else { return };
    if !have_tool("tshark") {
        return;
    }
    let mut reasons = [0u64; SkipReason::COUNT];
    let mut decoded = 0u64;
    let mut total = 0u64;
    let mut first_frags = 0u64;
    let mut link_types = BTreeMap::new();
    let mut problems = Vec::new();
    for path in capture_files(&dir) {
        let data = read_all(&path);
        let oracle = tshark(&path);
        let reader =
            CaptureReader::new(&data).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let mut n = 0;
        for (i, item) in reader.enumerate() {
            let p = item.unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            n += 1;
            total += 1;
            *link_types.entry(p.link_type.to_string()).or_insert(0u64) += 1;
            let Some(o) = oracle.get(i) else { continue };
            let at = format!("{} #{}", short(&path), i + 1);
            if (p.ts_ns, p.orig_len, p.data.len()) != (o.time_ns, o.frame_len, o.cap_len) {
                problems.push(format!(
                    "{at}: ts/len ({}, {}, {}) vs tshark ({}, {}, {})",
                    p.ts_ns,
                    p.orig_len,
                    p.data.len(),
                    o.time_ns,
                    o.frame_len,
                    o.cap_len
                ));
            }
            match packet::decode_frame(p.link_type, p.data, p.orig_len) {
                Ok(m) => {
                    decoded += 1;
                    match m.fragment {
                        Fragment::NonFirst => reasons[SkipReason::Fragment.index()] += 1,
                        Fragment::First => first_frags += 1,
                        Fragment::None => {}
                    }
                    if !tshark_sees_ip(&o.protocols) {
                        problems.push(format!("{at}: decoded, but tshark sees {}", o.protocols));
                    }
                    problems.extend(compare(&m, o).into_iter().map(|d| format!("{at}: {d}")));
                }
                Err(r) => {
                    reasons[r.index()] += 1;
                    // Not-IP frames must be what tshark calls non-IP; anything
                    // else that tshark reads as IP is reported for a look.
                    if (r == SkipReason::NotIp) == tshark_sees_ip(&o.protocols) {
                        problems.push(format!("{at}: {r}, tshark sees {}", o.protocols));
                    } else if r != SkipReason::NotIp {
                        eprintln!("note: {at}: {r} ({})", o.protocols);
                    }
                }
            }
        }
        assert_eq!(
            n,
            oracle.len(),
            "{}: packet count differs from tshark",
            path.display()
        );
    }
    eprintln!("link types: {link_types:?}");
    eprintln!("{total} packets, {decoded} decoded ({first_frags} first fragments)");
    for r in SkipReason::ALL {
        eprintln!("  {:<22} {}", r.as_str(), reasons[r.index()]);
    }
    for p in problems.iter().take(50) {
        eprintln!("PROBLEM {p}");
    }
    assert!(
        problems.is_empty(),
        "{} disagreements with tshark (first 50 above)",
        problems.len()
    );
    // Everything tshark reads as IP decodes, apart from the few malformed
    // packets the data set includes on purpose (a handful at most).
    let malformed: u64 = SkipReason::ALL
        .iter()
        .filter(|r| !matches!(r, SkipReason::NotIp | SkipReason::Fragment))
        .map(|r| reasons[r.index()])
        .sum();
    assert!(
        malformed * 1000 <= total,
        "{malformed} of {total} packets failed to decode"
    );
}

/// A real capture cut anywhere (a capture process killed mid-write) yields
/// every complete packet and then `Truncated` at the incomplete record.
#[test]
fn real_captures_cut_anywhere() {
    let Some(dir) = data_dir() else { return };
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    for path in capture_files(&dir) {
        let data = read_all(&path);
        let mut reader =
            CaptureReader::new(&data).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        // Where each packet's record ends.
        let mut ends = Vec::new();
        while let Some(item) = reader.next_packet() {
            item.unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            ends.push(reader.position());
        }
        let mut cuts: Vec<usize> = (0..64)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                (seed % data.len() as u64) as usize
            })
            .collect();
        // Exactly at, and one byte either side of, the first record boundaries.
        for &e in ends.iter().take(3) {
            cuts.extend([e - 1, e, e + 1]);
        }
        for cut in cuts {
            let cut = cut.min(data.len());
            let Ok(reader) = CaptureReader::new(&data[..cut]) else {
                assert!(
                    ends.first().is_none_or(|&e| cut < e),
                    "{}: cut {cut}: header error",
                    short(&path)
                );
                continue;
            };
            let mut packets = 0;
            let mut error = None;
            for item in reader {
                match item {
                    Ok(_) => packets += 1,
                    Err(e) => error = Some(e),
                }
            }
            let complete = ends.iter().filter(|&&e| e <= cut).count();
            assert_eq!(packets, complete, "{}: cut at {cut}", short(&path));
            let last_end = complete.checked_sub(1).map_or(0, |i| ends[i]);
            match error {
                None => assert!(
                    ends.contains(&cut) || cut == data.len() || complete == 0,
                    "{}: cut {cut}",
                    short(&path)
                ),
                Some(osprey_capture::pcap::CaptureError::Truncated { offset }) => {
                    let offset = offset as usize;
                    assert!(
                        offset >= last_end && offset < cut,
                        "{}: cut {cut}: offset {offset}",
                        short(&path)
                    );
                }
                Some(e) => panic!("{}: cut at {cut}: {e}", short(&path)),
            }
        }
    }
}

//! Shared helpers for the benchmarks (see `benches/*.rs`) and the peer
//! comparison script (`compare.py`).
//!
//! - [`synthetic_capture`] builds a deterministic in-memory pcap with a mix of
//!   TCP sessions, plain UDP exchanges and DNS over UDP, interleaved the way a
//!   busy link interleaves them (many flows open at once).
//! - [`shared_captures`] loads the real captures of `../shared/data` (when
//!   present) so the end-to-end bench also runs on traffic nobody here wrote.
//! - [`typical_dns_response`] is one ordinary recursive-resolver answer.
//! - [`flow_records`] turns a capture into the flow records the ingest would
//!   write, for the segment-writer bench.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};

use osprey_capture::craft::{
    DnsBuilder, DnsHeader, Ipv4, Ipv6, PacketBuilder, PcapWriter, RData, Tcp, Udp, dns_class,
    dns_rcode, dns_type, linktype, tcp_flags,
};
use osprey_capture::flow::{FlowConfig, FlowPacket, FlowTable};
use osprey_capture::packet;
use osprey_capture::pcap::CaptureReader;
use osprey_segment::FlowRecord;

/// Settings of [`synthetic_capture`].
#[derive(Debug, Clone, Copy)]
pub struct SynthConfig {
    /// Packets to write (the last session may be cut short).
    pub packets: usize,
    /// Sessions in progress at once (their packets interleave).
    pub concurrent: usize,
    /// Seed of the generator.
    pub seed: u64,
    /// First timestamp, ns since the epoch.
    pub start_ns: i64,
}

impl Default for SynthConfig {
    fn default() -> Self {
        SynthConfig {
            packets: 400_000,
            concurrent: 2_000,
            seed: 0x0005_b7e1,
            start_ns: 1_795_478_400_000_000_000,
        }
    }
}

/// What [`synthetic_capture`] wrote.
#[derive(Debug, Clone, Default)]
pub struct SynthCapture {
    /// The pcap file (nanosecond magic, Ethernet).
    pub pcap: Vec<u8>,
    /// Packets in it.
    pub packets: u64,
    /// Sessions started (TCP connections, UDP exchanges, DNS lookups).
    pub sessions: u64,
    /// DNS messages (queries + responses).
    pub dns_messages: u64,
}

/// A small deterministic PRNG (xorshift64*), so every run builds the same bytes.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// Seeded generator (seed 0 is remapped).
    pub fn new(seed: u64) -> Self {
        Rng(seed.max(1).wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }
    /// Next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    /// Uniform in `lo..hi` (`hi > lo`).
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next_u64() % (hi - lo)
    }
}

const DOMAINS: &[&str] = &[
    "www.example.com",
    "mail.example.org",
    "login.microsoftonline.com",
    "outlook.office365.com",
    "www.google.com",
    "fonts.gstatic.com",
    "api.github.com",
    "ocsp.digicert.com",
    "update.example.net",
    "cdn.jsdelivr.net",
    "time.windows.com",
    "dc1.corp.example.com",
    "wpad.corp.example.com",
    "slack.com",
    "zoom.us",
    "teams.microsoft.com",
    "s3.amazonaws.com",
    "www.wikipedia.org",
    "clients4.google.com",
    "safebrowsing.googleapis.com",
];

#[derive(Debug, Clone, Copy)]
enum Kind {
    /// TCP connection: handshake, `data` segments alternating, FIN both ways.
    Tcp {
        data: u32,
        sport: u16,
        dport: u16,
        seq_c: u32,
        seq_s: u32,
    },
    /// UDP exchange of `n` datagrams.
    Udp { n: u32, sport: u16, dport: u16 },
    /// DNS query + response over UDP.
    Dns {
        id: u16,
        sport: u16,
        domain: usize,
        aaaa: bool,
    },
}

#[derive(Debug, Clone, Copy)]
struct Session {
    client: IpAddr,
    server: IpAddr,
    kind: Kind,
    /// Packets emitted so far.
    step: u32,
}

impl Session {
    fn len(&self) -> u32 {
        match self.kind {
            // SYN, SYN-ACK, ACK, data..., FIN, FIN-ACK, ACK.
            Kind::Tcp { data, .. } => 3 + data + 3,
            Kind::Udp { n, .. } => n,
            Kind::Dns { .. } => 2,
        }
    }
}

fn mac_of(ip: IpAddr) -> [u8; 6] {
    let o = match ip {
        IpAddr::V4(a) => a.octets(),
        IpAddr::V6(a) => {
            let s = a.octets();
            [s[12], s[13], s[14], s[15]]
        }
    };
    [0x02, 0x00, o[0], o[1], o[2], o[3]]
}

fn new_session(rng: &mut Rng) -> Session {
    let v6 = rng.range(0, 10) == 0;
    let c = rng.range(0, 4000) as u32;
    let s = rng.range(0, 300) as u32;
    let (client, server): (IpAddr, IpAddr) = if v6 {
        (
            Ipv6Addr::new(
                0x2001,
                0xdb8,
                0x10,
                (c >> 8) as u16,
                0,
                0,
                0,
                (c & 0xff) as u16 + 1,
            )
            .into(),
            Ipv6Addr::new(0x2001, 0xdb8, 0xff, 0, 0, 0, 0, s as u16 + 1).into(),
        )
    } else {
        (
            Ipv4Addr::new(10, 1, (c >> 8) as u8, (c % 254) as u8 + 1).into(),
            Ipv4Addr::new(198, 51, (s >> 8) as u8 + 100, (s % 254) as u8 + 1).into(),
        )
    };
    let sport = rng.range(32768, 61000) as u16;
    let kind = match rng.range(0, 100) {
        0..=54 => Kind::Tcp {
            data: rng.range(1, 24) as u32,
            sport,
            dport: [443, 443, 443, 80, 22, 445, 993][rng.range(0, 7) as usize],
            seq_c: rng.next_u64() as u32,
            seq_s: rng.next_u64() as u32,
        },
        55..=69 => Kind::Udp {
            n: rng.range(1, 12) as u32,
            sport,
            dport: [443, 123, 514, 3478][rng.range(0, 4) as usize],
        },
        _ => Kind::Dns {
            id: rng.next_u64() as u16,
            sport,
            domain: rng.range(0, DOMAINS.len() as u64) as usize,
            aaaa: v6,
        },
    };
    // DNS goes to one of four resolvers.
    let server = if matches!(kind, Kind::Dns { .. }) {
        match server {
            IpAddr::V4(_) => Ipv4Addr::new(10, 0, 0, 53 + (s % 4) as u8).into(),
            IpAddr::V6(_) => {
                Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x53 + (s % 4) as u16).into()
            }
        }
    } else {
        server
    };
    Session {
        client,
        server,
        kind,
        step: 0,
    }
}

/// Builds the next frame of `s` into `buf`; returns whether it is a DNS message.
fn next_frame(s: &mut Session, rng: &mut Rng, payload: &[u8], buf: &mut Vec<u8>) -> bool {
    let step = s.step;
    s.step += 1;
    let len = s.len();
    match s.kind {
        Kind::Tcp {
            data,
            sport,
            dport,
            seq_c,
            seq_s,
        } => {
            use tcp_flags::{ACK, FIN, PSH, SYN};
            // Direction, flags and payload size of this step.
            let (from_client, flags, size) = if step == 0 {
                (true, SYN, 0)
            } else if step == 1 {
                (false, SYN | ACK, 0)
            } else if step == 2 {
                (true, ACK, 0)
            } else if step < 3 + data {
                let k = step - 3;
                // Requests are small, responses fill segments.
                if k.is_multiple_of(3) {
                    (true, PSH | ACK, rng.range(60, 600) as usize)
                } else {
                    (false, ACK, rng.range(400, 1448) as usize)
                }
            } else if step == len - 3 {
                (true, FIN | ACK, 0)
            } else if step == len - 2 {
                (false, FIN | ACK, 0)
            } else {
                (true, ACK, 0)
            };
            let (src, dst, sp, dp, seq) = if from_client {
                (s.client, s.server, sport, dport, seq_c)
            } else {
                (s.server, s.client, dport, sport, seq_s)
            };
            let tcp = Tcp {
                seq: seq.wrapping_add(step * 1000),
                ack: 1,
                ..Tcp::new(sp, dp, flags)
            };
            let b = PacketBuilder::new(buf).ethernet(mac_of(dst), mac_of(src));
            let b = match (src, dst) {
                (IpAddr::V4(a), IpAddr::V4(z)) => b.ipv4(Ipv4::new(a, z)),
                (IpAddr::V6(a), IpAddr::V6(z)) => b.ipv6(Ipv6::new(a, z)),
                _ => unreachable!("sessions are single-family"),
            };
            b.tcp(tcp).payload(&payload[..size]).finish_padded(60);
            false
        }
        Kind::Udp { sport, dport, .. } => {
            let from_client = step.is_multiple_of(2);
            let (src, dst, sp, dp) = if from_client {
                (s.client, s.server, sport, dport)
            } else {
                (s.server, s.client, dport, sport)
            };
            let size = rng.range(48, 1200) as usize;
            let b = PacketBuilder::new(buf).ethernet(mac_of(dst), mac_of(src));
            let b = match (src, dst) {
                (IpAddr::V4(a), IpAddr::V4(z)) => b.ipv4(Ipv4::new(a, z)),
                (IpAddr::V6(a), IpAddr::V6(z)) => b.ipv6(Ipv6::new(a, z)),
                _ => unreachable!("sessions are single-family"),
            };
            b.udp(Udp::new(sp, dp))
                .payload(&payload[..size])
                .finish_padded(60);
            false
        }
        Kind::Dns {
            id,
            sport,
            domain,
            aaaa,
        } => {
            let query = step == 0;
            let (src, dst, sp, dp) = if query {
                (s.client, s.server, sport, 53)
            } else {
                (s.server, s.client, 53, sport)
            };
            let b = PacketBuilder::new(buf).ethernet(mac_of(dst), mac_of(src));
            let b = match (src, dst) {
                (IpAddr::V4(a), IpAddr::V4(z)) => b.ipv4(Ipv4::new(a, z)),
                (IpAddr::V6(a), IpAddr::V6(z)) => b.ipv6(Ipv6::new(a, z)),
                _ => unreachable!("sessions are single-family"),
            };
            let mut b = b.udp(Udp::new(sp, dp));
            let name = DOMAINS[domain];
            let qtype = if aaaa { dns_type::AAAA } else { dns_type::A };
            if query {
                DnsBuilder::new(b.payload_buf(), DnsHeader::query(id))
                    .question(name, qtype, dns_class::IN)
                    .opt(1232, 0, 0, false, &[])
                    .finish();
            } else if domain % 7 == 3 {
                DnsBuilder::new(
                    b.payload_buf(),
                    DnsHeader::response(id, dns_rcode::NXDOMAIN),
                )
                .compress(true)
                .question(name, qtype, dns_class::IN)
                .authority(
                    name,
                    300,
                    RData::Soa {
                        mname: "ns1.example.net".into(),
                        rname: "hostmaster.example.net".into(),
                        serial: 2026112601,
                        refresh: 7200,
                        retry: 900,
                        expire: 1_209_600,
                        minimum: 300,
                    },
                )
                .opt(1232, 0, 0, false, &[])
                .finish();
            } else {
                let mut d =
                    DnsBuilder::new(b.payload_buf(), DnsHeader::response(id, dns_rcode::NOERROR))
                        .compress(true)
                        .question(name, qtype, dns_class::IN)
                        .answer(name, 300, RData::Cname("edge.cdn.example.net".into()));
                let o = (domain as u8).wrapping_mul(13);
                d = if aaaa {
                    d.answer(
                        "edge.cdn.example.net",
                        60,
                        RData::Aaaa(Ipv6Addr::new(0x2001, 0xdb8, 0xcd, 0, 0, 0, 0, u16::from(o))),
                    )
                } else {
                    d.answer(
                        "edge.cdn.example.net",
                        60,
                        RData::A(Ipv4Addr::new(203, 0, 113, o)),
                    )
                    .answer(
                        "edge.cdn.example.net",
                        60,
                        RData::A(Ipv4Addr::new(203, 0, 113, o.wrapping_add(1))),
                    )
                };
                d.opt(1232, 0, 0, false, &[]).finish();
            }
            b.finish();
            true
        }
    }
}

/// Builds a synthetic capture in memory: `cfg.concurrent` sessions at a time
/// (55% TCP connections of 7–29 packets to 443/80/22/445/993, 15% UDP
/// exchanges, 30% DNS lookups over UDP with CNAME + A/AAAA or NXDOMAIN
/// answers; 10% of sessions IPv6), packets 2–40 µs apart. Full payloads are
/// captured, so frames run from 60 to ~1500 bytes like a real link.
pub fn synthetic_capture(cfg: SynthConfig) -> SynthCapture {
    let mut rng = Rng::new(cfg.seed);
    let mut payload = vec![0u8; 1500];
    for b in payload.iter_mut() {
        *b = rng.next_u64() as u8;
    }
    let mut w = PcapWriter::new(Vec::with_capacity(cfg.packets * 600), linktype::ETHERNET)
        .expect("in-memory write");
    let mut live: Vec<Session> = (0..cfg.concurrent.max(1))
        .map(|_| new_session(&mut rng))
        .collect();
    let mut out = SynthCapture {
        sessions: live.len() as u64,
        ..SynthCapture::default()
    };
    let mut ts = cfg.start_ns;
    let mut buf = Vec::with_capacity(2048);
    for _ in 0..cfg.packets {
        let i = rng.range(0, live.len() as u64) as usize;
        if next_frame(&mut live[i], &mut rng, &payload, &mut buf) {
            out.dns_messages += 1;
        }
        ts += rng.range(2_000, 40_000) as i64;
        w.write_packet(ts, &buf).expect("in-memory write");
        if live[i].step >= live[i].len() {
            live[i] = new_session(&mut rng);
            out.sessions += 1;
        }
    }
    out.packets = w.packets();
    out.pcap = w.into_inner().expect("in-memory write");
    out
}

/// Where the shared real captures are: `$OSPREY_SHARED_DATA`, else
/// `<workspace>/../shared/data`.
pub fn shared_data_dir() -> PathBuf {
    match std::env::var_os("OSPREY_SHARED_DATA") {
        Some(p) => PathBuf::from(p),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data"),
    }
}

/// The real captures (`*.pcap`, `*.pcapng`) under `dir`, read into memory in
/// path order, keeping only files whose header a [`CaptureReader`] accepts.
/// `Err` says why there is nothing to bench.
pub fn shared_captures(dir: &Path) -> Result<Vec<(PathBuf, Vec<u8>)>, String> {
    if !dir.is_dir() {
        return Err(format!("{} does not exist", dir.display()));
    }
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let entries = std::fs::read_dir(&d).map_err(|e| format!("{}: {e}", d.display()))?;
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "pcap" || x == "pcapng") {
                files.push(p);
            }
        }
    }
    files.sort();
    let mut out = Vec::new();
    for p in files {
        let Ok(bytes) = std::fs::read(&p) else {
            continue;
        };
        if CaptureReader::new(&bytes).is_ok() {
            out.push((p, bytes));
        }
    }
    if out.is_empty() {
        return Err(format!("no readable capture under {}", dir.display()));
    }
    Ok(out)
}

/// Packets a [`CaptureReader`] yields from `data` (up to the first error).
pub fn count_packets(data: &[u8]) -> u64 {
    match CaptureReader::new(data) {
        Ok(r) => r.take_while(Result::is_ok).count() as u64,
        Err(_) => 0,
    }
}

/// One ordinary recursive-resolver response (the DNS payload only):
/// `www.example.com A` → CNAME to a CDN name + two A records, compressed,
/// with an EDNS OPT record — 183 bytes (names compressed only against the
/// question, as the builder does).
pub fn typical_dns_response() -> Vec<u8> {
    let mut buf = Vec::new();
    DnsBuilder::new(&mut buf, DnsHeader::response(0x4a2f, dns_rcode::NOERROR))
        .compress(true)
        .question("www.example.com", dns_type::A, dns_class::IN)
        .answer(
            "www.example.com",
            300,
            RData::Cname("www.example.com.cdn.example.net".into()),
        )
        .answer(
            "www.example.com.cdn.example.net",
            20,
            RData::A(Ipv4Addr::new(203, 0, 113, 10)),
        )
        .answer(
            "www.example.com.cdn.example.net",
            20,
            RData::A(Ipv4Addr::new(203, 0, 113, 11)),
        )
        .opt(1232, 0, 0, false, &[])
        .finish();
    buf
}

/// The flow-table input of every decodable packet of `pcap`.
pub fn flow_packets(pcap: &[u8]) -> Vec<FlowPacket> {
    let Ok(reader) = CaptureReader::new(pcap) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for raw in reader.map_while(Result::ok) {
        let Ok(meta) = packet::decode_frame(raw.link_type, raw.data, raw.orig_len) else {
            continue;
        };
        if meta.flow_skip().is_some() {
            continue;
        }
        out.push(FlowPacket {
            ts_ns: raw.ts_ns,
            vlan: meta.vlan,
            src: meta.src,
            dst: meta.dst,
            proto: meta.proto,
            src_port: meta.src_port,
            dst_port: meta.dst_port,
            ip_len: meta.ip_len,
            tcp_flags: meta.tcp_flags,
        });
    }
    out
}

/// The flow records the ingest would write for `pcap` (ended and flushed).
pub fn flow_records(pcap: &[u8]) -> Vec<FlowRecord> {
    let mut table = FlowTable::new(FlowConfig::default());
    let mut out = Vec::new();
    for p in flow_packets(pcap) {
        table.observe(&p);
        out.extend(table.take_ended());
    }
    table.flush();
    out.extend(table.take_ended());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn synthetic_capture_is_what_it_says() {
        let cap = synthetic_capture(SynthConfig {
            packets: 20_000,
            concurrent: 200,
            ..SynthConfig::default()
        });
        assert_eq!(cap.packets, 20_000);
        assert_eq!(count_packets(&cap.pcap), 20_000);
        let dir = tempfile::tempdir().expect("tempdir");
        let mut ing = osprey_capture::ingest::Ingestor::new(dir.path(), Default::default())
            .expect("ingestor");
        ing.ingest_bytes(Path::new("synthetic"), &cap.pcap, &mut |_, _| {})
            .expect("ingest");
        let stats = ing.finish().expect("finish");
        assert_eq!(stats.packets, 20_000);
        assert_eq!(stats.skipped_total(), 0, "{stats:?}");
        assert_eq!(stats.dns_messages, cap.dns_messages);
        assert_eq!(stats.dns_errors.iter().sum::<u64>(), 0);
        assert!(stats.flows > 1_000, "{}", stats.flows);
        assert!(!flow_records(&cap.pcap).is_empty());
    }

    #[test]
    fn typical_response_parses() {
        let m = osprey_capture::dns::parse_message(&typical_dns_response()).expect("parses");
        assert!(m.is_response);
        assert_eq!(m.qname, "www.example.com");
        assert_eq!(typical_dns_response().len(), 183);
    }
}

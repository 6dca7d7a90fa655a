//! Throughput of the reader + decoder over the shared captures held in memory,
//! and the cost of the address representation the flow table hashes.
//!
//! Ignored by default (timing is meaningless in debug builds). Run with
//! `cargo test --release -p osprey-capture --test packet_throughput -- --ignored --nocapture`.

use std::hash::{BuildHasher, Hash};
use std::hint::black_box;
use std::net::IpAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use osprey_capture::packet::{self, PacketMeta};
use osprey_capture::pcap::CaptureReader;

fn load() -> Vec<Vec<u8>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data");
    let mut files = Vec::new();
    for sub in ["pcap/dns", "pcap/mixed", "pcap/malicious", "netflow/pcap"] {
        let Ok(entries) = std::fs::read_dir(dir.join(sub)) else {
            continue;
        };
        for e in entries.flatten() {
            if let Ok(bytes) = std::fs::read(e.path()) {
                files.push(bytes);
            }
        }
    }
    files
}

/// CPU time of this thread in nanoseconds (Linux), so that a busy machine
/// (parallel builds) skews the figures less than wall time would.
fn cpu_ns() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    s.split_whitespace().next()?.parse().ok()
}

/// Runs `f` over every packet of every file until `budget` has passed; returns
/// packets per second of CPU time (of wall time where CPU time is unavailable).
fn rate(
    files: &[Vec<u8>],
    budget: Duration,
    mut f: impl FnMut(&osprey_capture::pcap::RawPacket<'_>),
) -> f64 {
    let start = Instant::now();
    let cpu_start = cpu_ns();
    let mut packets = 0u64;
    while start.elapsed() < budget {
        for data in files {
            let Ok(mut r) = CaptureReader::new(data) else {
                continue;
            };
            while let Some(Ok(p)) = r.next_packet() {
                f(&p);
                packets += 1;
            }
        }
    }
    let secs = match (cpu_start, cpu_ns()) {
        (Some(a), Some(b)) if b > a => (b - a) as f64 / 1e9,
        _ => start.elapsed().as_secs_f64(),
    };
    packets as f64 / secs
}

#[test]
#[ignore = "timing; run in release with --ignored"]
fn reader_and_decoder_throughput() {
    let files = load();
    if files.is_empty() {
        eprintln!("SKIP: shared captures not found");
        return;
    }
    let budget = Duration::from_secs(2);
    let read = rate(&files, budget, |p| {
        black_box(p);
    });
    let mut sum = 0u64;
    let decode = rate(&files, budget, |p| {
        if let Ok(m) = packet::decode_frame(p.link_type, p.data, p.orig_len) {
            sum = sum
                .wrapping_add(u64::from(m.ip_len) ^ u64::from(m.dst_port) ^ m.payload.len() as u64);
        }
    });
    black_box(sum);
    eprintln!("read only:     {:6.1} M packets/s", read / 1e6);
    eprintln!("read + decode: {:6.1} M packets/s", decode / 1e6);

    // The flow key as the flow table would build it, hashed with hashbrown's
    // default hasher: 16-byte arrays versus IpAddr.
    let mut metas: Vec<PacketMeta<'_>> = Vec::new();
    for data in &files {
        let Ok(r) = CaptureReader::new(data) else {
            continue;
        };
        for p in r.flatten() {
            if let Ok(m) = packet::decode_frame(p.link_type, p.data, p.orig_len) {
                metas.push(m);
            }
        }
    }
    let hasher = hashbrown::DefaultHashBuilder::default();
    let time = |name: &str, f: &dyn Fn(&PacketMeta<'_>) -> u64| {
        let start = Instant::now();
        let cpu_start = cpu_ns();
        let mut n = 0u64;
        let mut acc = 0u64;
        while start.elapsed() < Duration::from_millis(500) {
            for m in &metas {
                acc = acc.wrapping_add(f(black_box(m)));
            }
            n += metas.len() as u64;
        }
        black_box(acc);
        let ns = match (cpu_start, cpu_ns()) {
            (Some(a), Some(b)) if b > a => (b - a) as f64,
            _ => start.elapsed().as_nanos() as f64,
        };
        eprintln!("{name}: {:5.2} ns/key", ns / n as f64);
    };
    time("key [u8;16] build+hash", &|m| {
        hash_one(
            &hasher,
            (m.vlan, m.proto, m.src, m.dst, m.src_port, m.dst_port),
        )
    });
    time("key IpAddr  build+hash", &|m| {
        hash_one(
            &hasher,
            (
                m.vlan,
                m.proto,
                m.src_ip(),
                m.dst_ip(),
                m.src_port,
                m.dst_port,
            ),
        )
    });
    eprintln!(
        "key sizes: [u8;16] tuple {} B, IpAddr tuple {} B",
        std::mem::size_of::<(u16, u8, [u8; 16], [u8; 16], u16, u16)>(),
        std::mem::size_of::<(u16, u8, IpAddr, IpAddr, u16, u16)>()
    );
}

fn hash_one<T: Hash>(b: &impl BuildHasher, v: T) -> u64 {
    b.hash_one(v)
}

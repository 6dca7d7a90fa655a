//! NetFlow/IPFIX decoding throughput: the derived capture of the 92 Logstash
//! export payloads (v5, v9 and IPFIX from ~30 vendors, templates included),
//! decoded over and over. Two variants in the same run, so machine load
//! affects both alike:
//!
//! - `decode`: the UDP payloads extracted once, then only
//!   `NetflowDecoder::decode` (template parsing and record decoding);
//! - `pcap+decode`: the capture bytes in memory, read frame by frame, export
//!   datagrams found by `ExportExtractor`, then decoded (no segment writing).
//!
//! ```sh
//! cargo run --release -p osprey-benches --example netflow_decode [CAPTURE] [SECONDS]
//! ```
//!
//! CAPTURE defaults to `../shared/data/netflow/pcap/derived__logstash-codec-netflow_payloads.pcap`;
//! UDP ports 2055, 9995, 9996, 4739, 2057, 9991 and 9992 are read.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use osprey_capture::netflow::{DEFAULT_PORTS, ExportExtractor, NetflowDecoder, NetflowStats, Sampling, Session};
use osprey_capture::pcap::CaptureReader;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let path = args.next().map(PathBuf::from).unwrap_or_else(|| {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/netflow/pcap/derived__logstash-codec-netflow_payloads.pcap")
    });
    let secs: f64 = args.next().map(|s| s.parse()).transpose()?.unwrap_or(3.0);
    let data = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    // The defaults plus the ports the shared captures use (nDPI, pmacct).
    let ports: Vec<u16> = DEFAULT_PORTS.iter().copied().chain([2057, 9991, 9992]).collect();

    // The datagrams, once.
    let mut datagrams: Vec<(Session, Vec<u8>)> = Vec::new();
    let mut ex = ExportExtractor::new(&ports);
    let mut side = NetflowStats::default();
    let mut reader = CaptureReader::new(&data)?;
    while let Some(p) = reader.next_packet() {
        if let Some(d) = ex.packet(&p?, &mut side) {
            datagrams.push((d.session, d.payload.into_owned()));
        }
    }
    let bytes: usize = datagrams.iter().map(|d| d.1.len()).sum();
    println!("{}: {} datagrams, {bytes} payload bytes", path.display(), datagrams.len());

    // The variants alternate in short rounds, so load from other processes
    // falls on both alike; the median round of each is reported.
    const ROUNDS: usize = 9;
    let round = Duration::from_secs_f64(secs / ROUNDS as f64 / 2.0);
    let mut out = Vec::with_capacity(64);
    let mut rates = [Vec::new(), Vec::new()];
    let mut dec = NetflowDecoder::new(Sampling::AsReported);
    let mut ex = ExportExtractor::new(&ports);
    for _ in 0..ROUNDS {
        // Variant 1: decode only.
        let (mut records, start) = (0u64, Instant::now());
        while start.elapsed() < round {
            for (s, d) in &datagrams {
                out.clear();
                records += dec.decode(*s, d, &mut out) as u64;
            }
        }
        rates[0].push(records as f64 / start.elapsed().as_secs_f64());
        // Variant 2: pcap reading, frame decoding and extraction as well.
        let (mut records, start) = (0u64, Instant::now());
        while start.elapsed() < round {
            let mut reader = CaptureReader::new(&data)?;
            while let Some(p) = reader.next_packet() {
                if let Some(d) = ex.packet(&p?, &mut side) {
                    out.clear();
                    records += dec.decode(d.session, &d.payload, &mut out) as u64;
                }
            }
        }
        rates[1].push(records as f64 / start.elapsed().as_secs_f64());
    }
    // Steady state: one v9 template, then full data datagrams (28 records of
    // the 18 fields a router typically exports, 45 bytes each), as a
    // collector sees between template refreshes.
    let steady = steady_state_datagrams();
    let mut steady_rates = Vec::new();
    let mut dec2 = NetflowDecoder::new(Sampling::AsReported);
    let session = Session::default();
    dec2.decode(session, &steady.0, &mut out);
    for _ in 0..ROUNDS {
        let (mut records, start) = (0u64, Instant::now());
        while start.elapsed() < round {
            for d in &steady.1 {
                out.clear();
                records += dec2.decode(session, d, &mut out) as u64;
            }
        }
        steady_rates.push(records as f64 / start.elapsed().as_secs_f64());
    }
    steady_rates.sort_by(f64::total_cmp);
    assert_eq!(dec2.stats().skipped_total(), 0, "the synthetic stream decodes cleanly");
    println!(
        "v9 steady    median {:>6.2} M records/s (min {:.2}, max {:.2}; 28 records per datagram)",
        steady_rates[ROUNDS / 2] / 1e6,
        steady_rates[0] / 1e6,
        steady_rates[ROUNDS - 1] / 1e6
    );
    let records_per_pass = dec.stats().records() as f64 / dec.stats().datagrams as f64 * datagrams.len() as f64;
    for (name, r) in ["decode", "pcap+decode"].iter().zip(&mut rates) {
        r.sort_by(f64::total_cmp);
        let median = r[ROUNDS / 2];
        println!(
            "{name:<12} median {:>6.2} M records/s (min {:.2}, max {:.2}; {:.0} k datagrams/s at {records_per_pass:.0} records per {} datagrams)",
            median / 1e6,
            r[0] / 1e6,
            r[ROUNDS - 1] / 1e6,
            median / records_per_pass * datagrams.len() as f64 / 1e3,
            datagrams.len()
        );
    }
    Ok(())
}

/// A v9 template datagram and 64 data datagrams of 28 records each.
fn steady_state_datagrams() -> (Vec<u8>, Vec<Vec<u8>>) {
    // (element, length): addresses, next hop, interfaces, counters,
    // first/last switched, ports, flags, protocol, ToS, AS numbers, masks.
    const FIELDS: [(u16, u16); 18] = [
        (8, 4),
        (12, 4),
        (15, 4),
        (10, 2),
        (14, 2),
        (2, 4),
        (1, 4),
        (22, 4),
        (21, 4),
        (7, 2),
        (11, 2),
        (6, 1),
        (4, 1),
        (5, 1),
        (16, 2),
        (17, 2),
        (9, 1),
        (13, 1),
    ];
    let header = |count: u16| -> Vec<u8> {
        let mut h = Vec::new();
        for v in [9u16, count] {
            h.extend(v.to_be_bytes());
        }
        for v in [3_600_000u32, 1_764_140_400, 1, 0] {
            h.extend(v.to_be_bytes());
        }
        h
    };
    let mut tpl = header(1);
    tpl.extend(0u16.to_be_bytes());
    tpl.extend((8 + 4 * FIELDS.len() as u16).to_be_bytes());
    tpl.extend(256u16.to_be_bytes());
    tpl.extend((FIELDS.len() as u16).to_be_bytes());
    for (id, len) in FIELDS {
        tpl.extend(id.to_be_bytes());
        tpl.extend(len.to_be_bytes());
    }
    let rec_len: usize = FIELDS.iter().map(|f| usize::from(f.1)).sum();
    let data = (0..64u32)
        .map(|n| {
            let mut d = header(28);
            d.extend(256u16.to_be_bytes());
            d.extend(((4 + 28 * rec_len) as u16).to_be_bytes());
            for i in 0..28u32 {
                let x = n * 28 + i;
                for (id, len) in FIELDS {
                    let v: u32 = match id {
                        8 => 0x0a00_0000 | x,
                        12 => 0xc612_0000 | (x * 7919) & 0xffff,
                        2 => 1 + x % 50,
                        1 => 40 + (x % 50) * 800,
                        22 => 3_500_000 + x,
                        21 => 3_590_000 + x,
                        7 => 1024 + x % 60_000,
                        11 => [53, 80, 443, 123][x as usize % 4],
                        4 => [6, 17][x as usize % 2],
                        _ => x % 200,
                    };
                    d.extend(&v.to_be_bytes()[4 - usize::from(len)..]);
                }
            }
            d
        })
        .collect();
    (tpl, data)
}

//! Measurements of the live pipeline (ignored by default; run in release):
//!
//! ```text
//! cargo test --release -p osprey-capture --test live_bench -- --ignored --nocapture --test-threads=1
//! ```
//!
//! - `ring_batcher_writer_throughput`: flow records through Batcher → RecordRing
//!   → SegmentStage (Arrow batches, zstd, atomic publication), in records/s
//!   of wall time and per core (records / CPU seconds of both threads);
//! - `bytes_per_flow_on_shared_captures`: segment bytes / flow records after
//!   the pipeline stored every shared real capture (per file as the daemon
//!   would, and all flows in one segment);
//! - `capture_to_segment_latency_at_a_steady_rate`: a paced replay through the
//!   whole pipeline, p50/p99/p99.9;
//! - `decode_throughput`: packets/s through capture ring + decoder + writer;
//! - `writer_cost_breakdown`: ns per record of batcher + ring, records →
//!   Arrow batch, and batch → zstd IPC, each alone;
//! - `zstd_level_trade_off`: the whole IPC write at several zstd levels;
//! - `column_compression_breakdown`: bytes and zstd time per column, per level
//!   and per row order, on synthetic flows and the shared captures;
//! - `compressor_ceiling_of_the_reference_clis`: what the `zstd` and `lz4`
//!   command-line tools need per flow row on the uncompressed Arrow bytes;
//! - `zstd_parameters_on_column_buffers`: size and time of the column buffers
//!   under zstd's match-finder parameters.

mod live_support;

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use live_support::*;
use osprey_capture::live::replay::ReplaySource;
use osprey_capture::live::ring::{Batcher, RecordRing};
use osprey_capture::live::writer::{SegmentStage, WriterMetrics, WriterSchedule};
use osprey_capture::live::{Pipeline, PipelineConfig};
use osprey_capture::metrics::Registry;
use osprey_segment::partition::{PartitionedWriter, WriterConfig, list_segments};
use osprey_segment::{EndReason, FlowRecord, Kind};

fn thread_cpu() -> Duration {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: a valid timespec out-pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// Synthetic but plausible flows: a /16 of clients talking to a few hundred
/// servers on common ports, increasing start times, skewed counters.
fn synthetic_flows(n: usize) -> Vec<FlowRecord> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let t0 = 1_795_676_400_000_000_000i64;
    (0..n)
        .map(|i| {
            let r = next();
            let ports = [443u16, 80, 53, 22, 123, 8080, 3389, 25];
            let pk = 1 + (r >> 40) % 20;
            FlowRecord {
                ts_start: t0 + i as i64 * 1_000,
                ts_end: t0 + i as i64 * 1_000 + ((r >> 20) % 5_000_000_000) as i64,
                proto: if r % 5 == 0 { 17 } else { 6 },
                src_ip: IpAddr::V4(Ipv4Addr::new(10, 1, (r >> 8) as u8, (r >> 16) as u8)),
                src_port: 32_768 + (r >> 24) as u16 % 28_000,
                dst_ip: IpAddr::V4(Ipv4Addr::new(198, 18, 0, (r >> 32) as u8 % 200)),
                dst_port: ports[(r >> 36) as usize % ports.len()],
                vlan: 0,
                packets: pk,
                bytes: pk * (60 + (r >> 48) % 1400),
                rev_packets: pk / 2,
                rev_bytes: (pk / 2) * (60 + (r >> 52) % 1400),
                tcp_flags: if r % 5 == 0 { 0 } else { 0x1b },
                rev_tcp_flags: if r % 5 == 0 { 0 } else { 0x1b },
                end_reason: EndReason::Idle,
            }
        })
        .collect()
}

/// The flow records the pipeline stores for every shared real capture (each
/// capture replayed through its own pipeline); empty without `../shared`.
fn shared_capture_flows() -> Vec<FlowRecord> {
    let out = tempfile::tempdir().expect("tempdir");
    let mut flows = Vec::new();
    for (i, f) in shared_captures().iter().enumerate() {
        let data = std::fs::read(f).expect("read");
        let Ok(src) = ReplaySource::from_capture(&f.display().to_string(), &data) else { continue };
        let d = out.path().join(format!("f{i}"));
        Pipeline::new(PipelineConfig::new(&d), Registry::new())
            .run(Box::new(src), Arc::new(AtomicBool::new(false)))
            .expect("run");
        flows.extend(stored(&d).0);
    }
    flows
}

/// `n` synthetic flows, and the shared captures' flows when `../shared` is
/// there (otherwise says so): the two data sets the compression benchmarks
/// compare.
fn synthetic_and_shared_flows(n: usize) -> Vec<(&'static str, Vec<FlowRecord>)> {
    let mut sets = vec![("synthetic", synthetic_flows(n))];
    let real = shared_capture_flows();
    if real.is_empty() {
        println!("skipping the shared captures: ../shared/data is absent");
    } else {
        sets.push(("shared", real));
    }
    sets
}

/// Flows as the writer's Arrow batches of 65,536 rows.
fn flow_batches(flows: &[FlowRecord]) -> Vec<arrow_array::RecordBatch> {
    flows.chunks(65_536).map(|c| osprey_segment::schema::flows_to_batch(c).expect("batch")).collect()
}

/// A real producer never waits (a full ring drops and counts); the benchmarks
/// want every record, so before the record that completes a chunk they wait
/// for room. They sleep rather than spin so the producer's CPU time is the
/// batcher's and the ring's work, not the wait for a slower writer.
fn wait_for_room(b: &Batcher, ring: &RecordRing) {
    if b.pending() + 1 >= osprey_capture::live::ring::CHUNK_RECORDS {
        while ring.len() == ring.capacity() {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

#[test]
#[ignore = "benchmark: run in release with --ignored"]
fn ring_batcher_writer_throughput() {
    let n = 4_000_000;
    let flows = synthetic_flows(n);
    let dir = tempfile::tempdir().expect("tempdir");
    let (ring, parker) = RecordRing::new(256);
    let schedule = WriterSchedule { flush_interval: Duration::from_secs(3600), rotate_interval: Duration::from_secs(3600) };
    let cfg = WriterConfig { sensor: "bench".into(), ..WriterConfig::default() };
    let mut stage = SegmentStage::new(dir.path(), cfg, schedule, WriterMetrics::default()).expect("stage");
    let done = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let consumer = {
        let (ring, done) = (ring.clone(), done.clone());
        std::thread::spawn(move || {
            let c0 = thread_cpu();
            loop {
                match ring.pop() {
                    Some(c) => stage.accept(c).expect("accept"),
                    None if done.load(std::sync::atomic::Ordering::Acquire) && ring.is_empty() => break,
                    None => parker.park_timeout(Duration::from_millis(1)),
                }
            }
            stage.publish().expect("publish");
            (thread_cpu() - c0, stage.published()[0])
        })
    };
    let c0 = thread_cpu();
    let mut b = Batcher::new(ring.clone());
    for f in flows {
        wait_for_room(&b, &ring);
        b.flow(f);
    }
    b.finish(Duration::from_secs(60));
    let producer_cpu = thread_cpu() - c0;
    done.store(true, std::sync::atomic::Ordering::Release);
    ring.wake();
    let (writer_cpu, published) = consumer.join().expect("writer");
    let wall = started.elapsed();
    assert_eq!(published.records, n as u64);
    assert_eq!(ring.drops().flows.load(std::sync::atomic::Ordering::Relaxed), 0);
    let cpu = producer_cpu + writer_cpu;
    println!(
        "ring+batcher+writer: {n} flow records in {:.2} s wall = {:.2} M/s; CPU producer {:.2} s + writer {:.2} s => {:.2} M records/s per core; {:.2} B/record ({} segments)",
        wall.as_secs_f64(),
        n as f64 / wall.as_secs_f64() / 1e6,
        producer_cpu.as_secs_f64(),
        writer_cpu.as_secs_f64(),
        n as f64 / cpu.as_secs_f64() / 1e6,
        published.bytes as f64 / n as f64,
        published.segments
    );
}

#[test]
#[ignore = "benchmark: run in release with --ignored"]
fn bytes_per_flow_on_shared_captures() {
    let files = shared_captures();
    if files.is_empty() {
        return;
    }
    let out = tempfile::tempdir().expect("tempdir");
    let mut all_flows = Vec::new();
    let (mut records, mut bytes, mut segments) = (0u64, 0u64, 0u64);
    let (mut dns_records, mut dns_bytes) = (0u64, 0u64);
    for (i, f) in files.iter().enumerate() {
        let data = std::fs::read(f).expect("read");
        let Ok(src) = ReplaySource::from_capture(&f.display().to_string(), &data) else { continue };
        let d = out.path().join(format!("f{i}"));
        let r = Pipeline::new(PipelineConfig::new(&d), Registry::new())
            .run(Box::new(src), Arc::new(AtomicBool::new(false)))
            .expect("run");
        records += r.published[0].records;
        bytes += r.published[0].bytes;
        segments += r.published[0].segments;
        dns_records += r.published[1].records;
        dns_bytes += r.published[1].bytes;
        all_flows.extend(stored(&d).0);
    }
    // All flows in one segment: the per-file overhead (schema, footer) amortised.
    let one = out.path().join("one");
    let mut w = PartitionedWriter::<FlowRecord>::new(&one, WriterConfig { max_open_partitions: 64, ..WriterConfig::default() })
        .expect("writer");
    let n = all_flows.len() as u64;
    for f in all_flows {
        w.push(f).expect("push");
    }
    let paths = w.finish().expect("finish");
    // ... and in a single file regardless of hour (pure per-flow size on real data).
    let (flat, flat_n) = {
        let flows = stored(&one).0;
        let d = out.path().join("flat");
        let mut sw = osprey_segment::segment::SegmentWriter::create(&d, Kind::Flow, "bench").expect("create");
        for c in flows.chunks(65_536) {
            sw.write(&osprey_segment::schema::flows_to_batch(c).expect("batch"), None).expect("write");
        }
        (std::fs::metadata(sw.finish().expect("finish")).expect("stat").len(), flows.len())
    };
    // An empty segment: the fixed cost of one file (schema, footer, metadata).
    let empty = {
        let d = out.path().join("empty");
        let mut sw = osprey_segment::segment::SegmentWriter::create(&d, Kind::Flow, "bench").expect("create");
        sw.write(&osprey_segment::schema::flows_to_batch(&[]).expect("batch"), None).expect("write");
        std::fs::metadata(sw.finish().expect("finish")).expect("stat").len()
    };
    println!("same flows in one file: {flat} B = {:.1} B/flow; an empty segment is {empty} B", flat as f64 / flat_n as f64);
    let one_bytes: u64 = paths.iter().map(|p| std::fs::metadata(p).expect("stat").len()).sum();
    assert_eq!(list_segments(&one, Kind::Flow).expect("list").len(), paths.len());
    println!(
        "shared captures: {records} flows in {segments} per-capture segments, {bytes} B = {:.1} B/flow; \
         same flows in {} hourly segment(s): {one_bytes} B = {:.1} B/flow; dns: {dns_records} records, {:.1} B/record",
        bytes as f64 / records as f64,
        paths.len(),
        one_bytes as f64 / n as f64,
        dns_bytes as f64 / dns_records.max(1) as f64
    );
    // Synthetic flows at volume, for comparison (one segment).
    let syn = out.path().join("syn");
    let mut w = PartitionedWriter::<FlowRecord>::new(&syn, WriterConfig::default()).expect("writer");
    for f in synthetic_flows(1_000_000) {
        w.push(f).expect("push");
    }
    let b: u64 = w.finish().expect("finish").iter().map(|p| std::fs::metadata(p).expect("stat").len()).sum();
    println!("synthetic: 1000000 flows, {b} B = {:.1} B/flow", b as f64 / 1e6);
}

#[test]
#[ignore = "benchmark: run in release with --ignored"]
fn capture_to_segment_latency_at_a_steady_rate() {
    for (pps, flush_ms) in [(20_000.0, 1_000u64), (20_000.0, 200)] {
        // DNS exchanges: every packet yields a record right away.
        let frames = workload(0, (pps as u32) * 5 / 2, 0);
        let src = ReplaySource::from_capture("steady", &pcap(&frames)).expect("replay").paced(pps).restamped();
        let dir = tempfile::tempdir().expect("tempdir");
        let mut cfg = PipelineConfig::new(dir.path());
        cfg.flush_interval = Duration::from_millis(flush_ms);
        let r = Pipeline::new(cfg, Registry::new()).run(Box::new(src), Arc::new(AtomicBool::new(false))).expect("run");
        let (p50, p99, p999, n) = r.latency_ns;
        println!(
            "latency at {pps} packets/s, flush {flush_ms} ms: {n} records, p50 {:.1} ms, p99 {:.1} ms, p99.9 {:.1} ms, drops {}",
            p50 as f64 / 1e6,
            p99 as f64 / 1e6,
            p999 as f64 / 1e6,
            r.capture_drops()
        );
    }
}

#[test]
#[ignore = "benchmark: run in release with --ignored"]
fn decode_throughput() {
    let frames = workload(100_000, 100_000, 0);
    let n = frames.len();
    let src = ReplaySource::from_capture("decode", &pcap(&frames)).expect("replay");
    let dir = tempfile::tempdir().expect("tempdir");
    let r = Pipeline::new(PipelineConfig::new(dir.path()), Registry::new())
        .run(Box::new(src), Arc::new(AtomicBool::new(false)))
        .expect("run");
    println!(
        "pipeline (replay → ring → decode → ring → writer): {n} packets in {:.2} s = {:.2} M packets/s; {} flows, {} dns",
        r.elapsed.as_secs_f64(),
        n as f64 / r.elapsed.as_secs_f64() / 1e6,
        r.published[0].records,
        r.published[1].records
    );
}

#[test]
#[ignore = "benchmark: run in release with --ignored"]
fn writer_cost_breakdown() {
    let n = 2_000_000;
    let flows = synthetic_flows(n);
    // 1. Batcher + ring, consumer dropping the chunks (two threads).
    let (ring, parker) = RecordRing::new(256);
    let done = Arc::new(AtomicBool::new(false));
    let consumer = {
        let (ring, done) = (ring.clone(), done.clone());
        std::thread::spawn(move || {
            let c0 = thread_cpu();
            let mut got = 0usize;
            loop {
                match ring.pop() {
                    Some(c) => got += c.len(),
                    None if done.load(std::sync::atomic::Ordering::Acquire) && ring.is_empty() => break,
                    None => parker.park_timeout(Duration::from_millis(1)),
                }
            }
            (thread_cpu() - c0, got)
        })
    };
    let copy = flows.clone();
    let c0 = thread_cpu();
    let mut b = Batcher::new(ring.clone());
    for f in copy {
        wait_for_room(&b, &ring);
        b.flow(f);
    }
    b.finish(Duration::from_secs(60));
    let prod = thread_cpu() - c0;
    done.store(true, std::sync::atomic::Ordering::Release);
    ring.wake();
    let (cons, got) = consumer.join().expect("consumer");
    assert_eq!(got, n);
    println!("batcher+ring: {:.1} ns/record producer, {:.1} ns/record consumer", prod.as_nanos() as f64 / n as f64, cons.as_nanos() as f64 / n as f64);
    // 2. Records → Arrow batches, and 3. batches → zstd IPC segment, timed
    // separately but interleaved as in the writer (each batch is dropped
    // after it is written, so its memory is reused rather than faulted in).
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut t_batch, mut t_write) = (Duration::ZERO, Duration::ZERO);
    let c0 = thread_cpu();
    let mut w = osprey_segment::segment::SegmentWriter::create(dir.path(), Kind::Flow, "bench").expect("create");
    t_write += thread_cpu() - c0;
    for chunk in flows.chunks(65_536) {
        let c0 = thread_cpu();
        let bt = osprey_segment::schema::flows_to_batch(chunk).expect("batch");
        let c1 = thread_cpu();
        w.write(&bt, None).expect("write");
        drop(bt);
        t_batch += c1 - c0;
        t_write += thread_cpu() - c1;
    }
    let c0 = thread_cpu();
    let path = w.finish().expect("finish");
    t_write += thread_cpu() - c0;
    // 4. PartitionedWriter::push bookkeeping alone is the remainder of SegmentStage.
    println!(
        "to_batch: {:.1} ns/record; IPC+zstd+fsync: {:.1} ns/record ({} B = {:.1} B/record)",
        t_batch.as_nanos() as f64 / n as f64,
        t_write.as_nanos() as f64 / n as f64,
        std::fs::metadata(&path).expect("stat").len(),
        std::fs::metadata(&path).expect("stat").len() as f64 / n as f64
    );
}

#[test]
#[ignore = "benchmark: run in release with --ignored"]
fn zstd_level_trade_off() {
    // What the segment writer's fixed zstd level (arrow's default, 3) costs
    // against other levels, on the same Arrow batches (no fsync).
    let n = 2_000_000;
    let flows = synthetic_flows(n);
    let batches = flow_batches(&flows);
    for level in [None, Some(1), Some(3), Some(6)] {
        let opts = arrow_ipc::writer::IpcWriteOptions::default()
            .try_with_compression(Some(arrow_ipc::CompressionType::ZSTD))
            .and_then(|o| o.try_with_compression_level(level))
            .expect("level");
        let c0 = thread_cpu();
        let mut w = arrow_ipc::writer::FileWriter::try_new_with_options(Vec::new(), &batches[0].schema(), opts).expect("writer");
        for b in &batches {
            w.write(b).expect("write");
        }
        w.finish().expect("finish");
        let len = w.into_inner().expect("inner").len();
        let t = thread_cpu() - c0;
        println!(
            "zstd level {level:?}: {:.1} ns/record, {:.2} B/record",
            t.as_nanos() as f64 / n as f64,
            len as f64 / n as f64
        );
    }
}

/// A row order to try: the key rows are sorted by.
type SortKey = dyn Fn(&FlowRecord) -> (i64, u128, u128);

/// Compressed size and zstd time of each flow column alone, at several zstd
/// levels and row orders, on synthetic flows and (if present) the shared
/// captures: where the bytes and the time of a segment go.
#[test]
#[ignore = "benchmark: run in release with --ignored"]
fn column_compression_breakdown() {
    let sets = synthetic_and_shared_flows(1_000_000);
    fn ip(a: IpAddr) -> u128 {
        u128::from_be_bytes(osprey_segment::schema::ip_to_bytes(a))
    }
    let orders: [(&str, &SortKey); 6] = [
        ("as produced", &|_| (0, 0, 0)),
        ("by ts_start", &|f| (f.ts_start, 0, 0)),
        ("by src,dst", &|f| (0, ip(f.src_ip), ip(f.dst_ip))),
        ("by ts>>30 (1 s),src,dst", &|f| (f.ts_start >> 30, ip(f.src_ip), ip(f.dst_ip))),
        ("by ts>>34 (17 s),src,dst", &|f| (f.ts_start >> 34, ip(f.src_ip), ip(f.dst_ip))),
        ("by ts>>38 (4.6 min),src,dst", &|f| (f.ts_start >> 38, ip(f.src_ip), ip(f.dst_ip))),
    ];
    for (name, flows) in &sets {
        for (order, key) in &orders {
            let mut flows = flows.clone();
            flows.sort_by_key(|f| key(f));
            let n = flows.len();
            let batch = osprey_segment::schema::flows_to_batch(&flows).expect("batch");
            for level in [-5, -1, 1, 3] {
                let mut line = format!("{name} ({n} flows, {order}) level {level:>2}:");
                let (mut total_b, mut total_t) = (0usize, Duration::ZERO);
                for (i, f) in batch.schema().fields().iter().enumerate() {
                    let one = batch.project(&[i]).expect("project");
                    let sch = one.schema();
                    let opts = arrow_ipc::writer::IpcWriteOptions::try_new(8, false, arrow_ipc::MetadataVersion::V5)
                        .and_then(|o| o.try_with_compression(Some(arrow_ipc::CompressionType::ZSTD)))
                        .and_then(|o| o.try_with_compression_level(Some(level)))
                        .expect("opts");
                    let mut w = arrow_ipc::writer::StreamWriter::try_new_with_options(Vec::new(), &sch, opts).expect("w");
                    let base = w.get_ref().len();
                    let c0 = thread_cpu();
                    for off in (0..n).step_by(65_536) {
                        w.write(&one.slice(off, 65_536.min(n - off))).expect("write");
                    }
                    let t = thread_cpu() - c0;
                    let b = w.get_ref().len() - base;
                    total_b += b;
                    total_t += t;
                    line += &format!(" {}={:.2}B/{:.0}ns", f.name(), b as f64 / n as f64, t.as_nanos() as f64 / n as f64);
                }
                println!("{line}\n   total {:.2} B/flow {:.1} ns/flow", total_b as f64 / n as f64, total_t.as_nanos() as f64 / n as f64);
            }
        }
    }
}

/// The ceiling of any writer of zstd Arrow segments on this machine, measured
/// with the reference compressors themselves: the uncompressed Arrow IPC
/// bytes of the same flows go through `zstd -b` (level 1, the writer's, and
/// the fastest level, `--fast=5`) and, for scale, `lz4 -b1`. A codec's ns per
/// flow row = (bytes per row) / (its compression speed); 10 M records/s per
/// core leaves 100 ns per record for everything.
#[test]
#[ignore = "benchmark: run in release with --ignored"]
fn compressor_ceiling_of_the_reference_clis() {
    let sets = synthetic_and_shared_flows(2_000_000);
    let dir = tempfile::tempdir().expect("tempdir");
    for (name, flows) in &sets {
        let path = dir.path().join(format!("{name}.arrow"));
        let batches = flow_batches(flows);
        let opts = arrow_ipc::writer::IpcWriteOptions::try_new(8, false, arrow_ipc::MetadataVersion::V5).expect("opts");
        let file = std::fs::File::create(&path).expect("create");
        let mut w = arrow_ipc::writer::FileWriter::try_new_with_options(file, &batches[0].schema(), opts).expect("writer");
        for b in &batches {
            w.write(b).expect("write");
        }
        w.finish().expect("finish");
        let row_bytes = std::fs::metadata(&path).expect("stat").len() as f64 / flows.len() as f64;
        println!("{name}: {} flows, uncompressed Arrow IPC {row_bytes:.1} B/row", flows.len());
        for (tool, args) in [("zstd", &["-b1", "-e1", "-i3"][..]), ("zstd", &["-b", "--fast=5", "-i3"]), ("zstd", &["-b", "--fast=20", "-i3"]), ("zstd", &["-b", "--fast=100", "-i3"]), ("lz4", &["-b1", "-i3"])] {
            let out = match std::process::Command::new(tool).args(args).arg(&path).output() {
                Ok(o) if o.status.success() => o,
                Ok(o) => panic!("{tool} {args:?} failed: {}", String::from_utf8_lossy(&o.stderr)),
                Err(e) => {
                    println!("skipping {tool}: {e}");
                    continue;
                }
            };
            // Benchmark mode redraws its line with \r; the last draw is the result,
            // "... (x5.791), 434.6 MB/s, 931.9 MB/s": compression speed first.
            let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
            let last = text.rsplit(['\r', '\n']).find(|l| l.contains("MB/s")).expect("a result line");
            let speed: f64 = last
                .split("MB/s")
                .next()
                .and_then(|s| s.rsplit([',', ' ']).find(|w| !w.is_empty()))
                .and_then(|w| w.parse().ok())
                .unwrap_or_else(|| panic!("no speed in {last:?}"));
            let ratio = last.split('(').nth(1).and_then(|r| r.split(')').next()).unwrap_or("?");
            let ns = row_bytes / speed * 1e3;
            println!(
                "  {tool} {}: {speed:.0} MB/s, ratio {ratio} => {ns:.0} ns per flow row, at most {:.1} M rows/s per core for compression alone",
                args.join(" "),
                1e3 / ns
            );
        }
    }
}

/// zstd's own parameters against the flow columns: each column buffer of
/// 65,536-row batches compressed alone with one reused context (as arrow-ipc
/// does), timed over several repetitions. Levels and the match-finder knobs
/// (minimum match, hash and window sizes) move the size but barely the time:
/// every 8- or 16-byte column costs about one zstd sequence per row.
#[test]
#[ignore = "benchmark: run in release with --ignored"]
fn zstd_parameters_on_column_buffers() {
    use arrow_array::Array;
    use zstd::zstd_safe::CParameter as P;
    let mut sets = synthetic_and_shared_flows(1_000_000);
    // In time order, as the writer sorts each batch (the synthetic flows already are).
    for (_, flows) in &mut sets {
        flows.sort_by_key(|f| f.ts_start);
    }
    let configs: [(&str, &[P]); 8] = [
        ("level 1", &[P::CompressionLevel(1)]),
        ("level 1, min match 7", &[P::CompressionLevel(1), P::MinMatch(7)]),
        ("level 1, min match 4", &[P::CompressionLevel(1), P::MinMatch(4)]),
        ("level 1, hash log 12", &[P::CompressionLevel(1), P::HashLog(12)]),
        ("level 1, hash 16, window 17", &[P::CompressionLevel(1), P::HashLog(16), P::WindowLog(17)]),
        ("level -5", &[P::CompressionLevel(-5)]),
        ("level -5, min match 7", &[P::CompressionLevel(-5), P::MinMatch(7)]),
        ("level 3", &[P::CompressionLevel(3)]),
    ];
    for (name, flows) in &sets {
        let n = flows.len();
        let reps = (2_000_000 / n).max(1);
        let batches = flow_batches(flows);
        let buffers: Vec<Vec<u8>> = batches
            .iter()
            .flat_map(|b| b.columns().iter().map(|c| c.to_data().buffers()[0].as_slice().to_vec()))
            .collect();
        for (cname, params) in configs {
            let mut z = zstd::bulk::Compressor::new(1).expect("zstd");
            for p in params {
                z.set_parameter(*p).expect("parameter");
            }
            let mut out = Vec::new();
            let mut bytes = 0usize;
            let c0 = thread_cpu();
            for _ in 0..reps {
                bytes = 0;
                for b in &buffers {
                    out.clear();
                    out.reserve(zstd::zstd_safe::compress_bound(b.len()));
                    z.compress_to_buffer(b, &mut out).expect("compress");
                    bytes += out.len().min(b.len());
                }
            }
            let t = (thread_cpu() - c0).as_nanos() as f64 / (n * reps) as f64;
            println!("{name} ({n} flows, x{reps}) {cname:<28} {:.2} B/flow, {t:.0} ns/flow", bytes as f64 / n as f64);
        }
    }
}

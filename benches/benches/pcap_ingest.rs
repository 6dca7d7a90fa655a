//! End to end: pcap bytes → packets → flow + DNS records → zstd Arrow
//! segments on disk, through [`Ingestor::ingest_bytes`] (what `osprey ingest
//! pcap` runs on each memory-mapped file), single-threaded.
//!
//! Inputs: (a) a synthetic capture built in memory at start
//! ([`osprey_benches::synthetic_capture`]); (b) every real capture under
//! `../shared/data`, ingested in path order as one run (skipped, with the
//! reason printed, when that directory is absent).
//!
//! Each iteration starts a fresh `Ingestor` on a fresh temporary directory and
//! includes `finish()` (the last segments' encode, fsync and rename); creating
//! and deleting the directory are outside the timing.

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::Duration;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use osprey_benches::{SynthConfig, shared_captures, shared_data_dir, synthetic_capture};
use osprey_capture::ingest::{IngestConfig, IngestStats, Ingestor};

fn ingest_all(dir: &Path, files: &[(PathBuf, &[u8])]) -> IngestStats {
    let mut ing = Ingestor::new(dir, IngestConfig::default()).expect("ingestor");
    for (name, bytes) in files {
        ing.ingest_bytes(name, bytes, &mut |_, _| {})
            .expect("ingest");
    }
    ing.finish().expect("finish")
}

fn bench_files(c: &mut Criterion, id: &str, files: &[(PathBuf, &[u8])], measure: Duration) {
    // One untimed run for the packet count (and to warm the page cache and allocator).
    let tmp = tempfile::tempdir().expect("tempdir");
    let stats = ingest_all(tmp.path(), files);
    drop(tmp);
    let bytes: usize = files.iter().map(|(_, b)| b.len()).sum();
    println!(
        "{id}: {} file(s), {:.1} MB, {} packets, {} flows, {} DNS messages, {} skipped, {} segment files",
        files.len(),
        bytes as f64 / 1e6,
        stats.packets,
        stats.flows,
        stats.dns_messages,
        stats.skipped_total(),
        stats.segments.len()
    );
    let mut g = c.benchmark_group("pcap_ingest");
    g.throughput(Throughput::Elements(stats.packets));
    g.sample_size(10);
    g.warm_up_time(Duration::from_secs(1));
    g.measurement_time(measure);
    g.bench_function(id, |b| {
        b.iter_batched(
            || tempfile::tempdir().expect("tempdir"),
            |dir| {
                let s = ingest_all(dir.path(), black_box(files));
                (dir, s)
            },
            BatchSize::PerIteration,
        )
    });
    g.finish();
}

fn pcap_ingest(c: &mut Criterion) {
    let cap = synthetic_capture(SynthConfig::default());
    let files = [(PathBuf::from("synthetic.pcap"), cap.pcap.as_slice())];
    bench_files(c, "synthetic", &files, Duration::from_secs(8));

    let dir = shared_data_dir();
    match shared_captures(&dir) {
        Ok(real) => {
            let files: Vec<(PathBuf, &[u8])> = real
                .iter()
                .map(|(p, b)| (p.clone(), b.as_slice()))
                .collect();
            bench_files(c, "shared_real", &files, Duration::from_secs(5));
        }
        Err(why) => println!("pcap_ingest/shared_real: skipped: {why}"),
    }
}

criterion_group!(benches, pcap_ingest);
criterion_main!(benches);

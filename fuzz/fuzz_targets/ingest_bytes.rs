//! The whole offline pipeline on arbitrary bytes: reader → decoder → flow
//! table → DNS (UDP and TCP reassembly, matching) → segment writer. It must
//! never panic; `ingest_bytes` may return an error only for a file that is
//! not a capture at all, and `finish` must succeed.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use osprey_capture::flow::FlowConfig;
use osprey_capture::ingest::{IngestConfig, Ingestor};
use osprey_segment::partition::WriterConfig;

/// Small bounds, so a few packets reach every limit: a full flow table, several
/// batches per segment, segment rotation, partition eviction. (The default
/// table also preallocates 64 Ki slots, which under ASan costs more per run
/// than the input.)
fn config() -> IngestConfig {
    IngestConfig {
        flow: FlowConfig {
            max_flows: 64,
            ..FlowConfig::default()
        },
        writer: WriterConfig {
            batch_rows: 16,
            max_segment_records: 64,
            max_open_partitions: 2,
            ..WriterConfig::default()
        },
        ..IngestConfig::default()
    }
}

fuzz_target!(|data: &[u8]| {
    // tmpfs when there is one: segment writes fsync, which on a disk would
    // cap the run at a few hundred executions per second.
    let shm = Path::new("/dev/shm");
    let dir = if shm.is_dir() {
        tempfile::tempdir_in(shm)
    } else {
        tempfile::tempdir()
    }
    .expect("tempdir");
    let mut ing = Ingestor::new(dir.path(), config()).expect("ingestor");
    // Twice: the second pass exercises "capture starts before the previous one ended".
    for _ in 0..2 {
        match ing.ingest_bytes(Path::new("fuzz.pcap"), data, &mut |done, total| {
            assert!(done <= total)
        }) {
            Ok(()) => {}
            Err(e) => {
                let _ = e.to_string();
                return;
            }
        }
    }
    let stats = ing
        .finish()
        .expect("finish must not fail on a readable capture");
    assert!(
        stats.skipped_total() <= stats.packets,
        "more packets skipped than read"
    );
});

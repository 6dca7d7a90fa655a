//! The live pipeline without a network: a replay source feeds the real
//! threads, rings and writer. Checks that live and offline agree record for
//! record (on generated traffic and on every shared real capture), that
//! segments are published on the flush schedule while running, and that
//! under overload every packet and record is either stored or counted.

mod live_support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use live_support::*;
use osprey_capture::ingest::IngestConfig;
use osprey_capture::decode::{DecodeConfig, PacketDecoder, VecSink};
use osprey_capture::live::replay::ReplaySource;
use osprey_capture::live::{Pipeline, PipelineConfig, PipelineReport};
use osprey_capture::metrics::Registry;
use osprey_capture::pcap::CaptureReader;
use osprey_segment::partition::{TimeRange, list_segments, read_all};
use osprey_segment::{DnsRecord, Kind};

const T0: i64 = 1_795_676_400_000_000_000;

fn run(source: ReplaySource, cfg: PipelineConfig) -> PipelineReport {
    Pipeline::new(cfg, Registry::new())
        .keep_paths(true)
        .run(Box::new(source), Arc::new(AtomicBool::new(false)))
        .expect("pipeline run")
}


#[test]
fn the_decoder_produces_what_offline_ingest_stores_on_every_shared_capture() {
    for path in shared_captures() {
        let bytes = std::fs::read(&path).expect("read");
        if CaptureReader::new(&bytes).is_err() {
            continue;
        }
        let (want_f, want_d) = offline(&bytes, IngestConfig::default());
        let mut dec = PacketDecoder::new(&DecodeConfig::default());
        let mut sink = VecSink::default();
        let mut reader = CaptureReader::new(&bytes).expect("capture");
        while let Some(Ok(p)) = reader.next_packet() {
            let Ok(()) = dec.packet(&p, &mut sink);
        }
        let Ok(()) = dec.flush(&mut sink);
        assert_eq!(sorted(&sink.flows), sorted(&want_f), "{}: flows differ", path.display());
        assert_eq!(sorted(&sink.dns), sorted(&want_d), "{}: dns differs", path.display());
    }
}

#[test]
fn the_pipeline_stores_what_offline_ingest_stores_on_every_shared_capture() {
    for path in shared_captures() {
        let bytes = std::fs::read(&path).expect("read");
        let Ok(src) = ReplaySource::from_capture(&path.display().to_string(), &bytes) else { continue };
        let (want_f, want_d) = offline(&bytes, IngestConfig::default());
        let dir = tempfile::tempdir().expect("tempdir");
        let report = run(src, PipelineConfig::new(dir.path()));
        let (got_f, got_d) = stored(dir.path());
        assert_eq!(report.capture_drops() + report.flow_record_drops + report.dns_record_drops, 0, "a replay never drops");
        assert_eq!(sorted(&got_f), sorted(&want_f), "{}: flows differ", path.display());
        assert_eq!(sorted(&got_d), sorted(&want_d), "{}: dns differs", path.display());
        assert_eq!(report.published[0].records as usize, want_f.len());
        assert_eq!(report.published[1].records as usize, want_d.len());
    }
}

#[test]
fn generated_traffic_matches_offline_ingest_exactly() {
    let frames = workload(3_000, 2_000, T0);
    let cap = pcap(&frames);
    let (want_f, want_d) = offline(&cap, IngestConfig::default());
    let dir = tempfile::tempdir().expect("tempdir");
    let src = ReplaySource::from_capture("generated", &cap).expect("replay");
    let report = run(src, PipelineConfig::new(dir.path()));
    let (got_f, got_d) = stored(dir.path());
    assert_eq!(got_f.len(), 3_000 + 2_000, "each DNS exchange is a flow too");
    assert_eq!(got_d.len(), 4_000);
    assert_eq!(sorted(&got_f), sorted(&want_f));
    assert_eq!(sorted(&got_d), sorted(&want_d));
    assert_eq!(report.received_packets, frames.len() as u64);
    assert_eq!(report.decode.packets, frames.len() as u64);
    assert_eq!(report.latency_ns.3, 9_000, "every stored record has a latency");
    // Every published path is a readable segment.
    assert_eq!(report.paths.len() as u64, report.published[0].segments + report.published[1].segments);
}

#[test]
fn segments_are_published_every_flush_interval_while_running() {
    // 2.5 s of DNS at 400 packets/s, flushed every 300 ms.
    let frames = workload(0, 500, T0);
    let src = ReplaySource::from_capture("paced", &pcap(&frames)).expect("replay").paced(400.0).restamped();
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cfg = PipelineConfig::new(dir.path());
    cfg.flush_interval = Duration::from_millis(300);
    let data = dir.path().to_path_buf();
    let handle = std::thread::spawn(move || run(src, cfg));
    let started = Instant::now();
    let mut seen_while_running = Vec::new();
    while !handle.is_finished() {
        std::thread::sleep(Duration::from_millis(100));
        let n = list_segments(&data, Kind::Dns).expect("list").len();
        seen_while_running.push((started.elapsed(), n));
    }
    let report = handle.join().expect("join");
    // Publications happened during the run, not only at the end.
    let mid: Vec<_> = seen_while_running.iter().filter(|(t, _)| *t > Duration::from_millis(800)).collect();
    assert!(mid.first().is_some_and(|(_, n)| *n >= 1), "{seen_while_running:?}");
    assert!(report.published[1].segments >= 5, "{:?}", report.published);
    let (_, dns) = stored(dir.path());
    assert_eq!(dns.len(), 1000);
    // Capture→segment latency is bounded by the flush interval (plus the
    // chunk age and a margin for a busy machine).
    let p99 = Duration::from_nanos(report.latency_ns.1);
    assert!(p99 < Duration::from_millis(300 + 50 + 400), "p99 {p99:?}");
}

#[test]
fn under_overload_every_packet_and_record_is_stored_or_counted() {
    // Tiny rings and an unpaced, non-waiting replay: drops are certain.
    let frames = workload(20_000, 20_000, T0);
    let cap = pcap(&frames);
    let src = ReplaySource::from_capture("overload", &cap).expect("replay").paced(1e12);
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cfg = PipelineConfig::new(dir.path());
    cfg.ring_capacity = 64;
    cfg.record_ring_capacity = 1;
    let report = run(src, cfg);
    let (flows, dns) = stored(dir.path());
    let r = &report;
    assert_eq!(r.received_packets, frames.len() as u64);
    assert!(r.packet_ring_drops > 0, "the packet ring overflowed: {r:?}");
    // Packets: delivered = decoded + dropped before decoding.
    assert_eq!(r.received_packets, r.decode.packets + r.packet_ring_drops);
    // Decoded packets: accounted to a flow, or skipped for a counted reason.
    assert_eq!(r.decode.packets, r.decode.flow_packets + r.decode.skipped_total());
    // Flow packets: in a stored flow record, or in a dropped one.
    let stored_packets: u64 = flows.iter().map(|f| f.packets + f.rev_packets).sum();
    assert_eq!(r.decode.flow_packets, stored_packets + r.flow_record_drop_packets);
    // Records: stored or dropped.
    assert_eq!(r.decode.flows, flows.len() as u64 + r.flow_record_drops);
    assert_eq!(r.decode.dns_messages, dns.len() as u64 + r.dns_record_drops);
    assert_eq!(r.published[0].records, flows.len() as u64);
    assert_eq!(r.published[1].records, dns.len() as u64);
}

#[test]
fn shutdown_flushes_open_flows_and_partial_batches() {
    // A live-like replay that never ends on its own: stopped by the flag.
    let frames = workload(50, 10, T0);
    let src = ReplaySource::from_capture("flag", &pcap(&frames)).expect("replay").paced(500.0);
    let dir = tempfile::tempdir().expect("tempdir");
    let stop = Arc::new(AtomicBool::new(false));
    let stop2 = stop.clone();
    let cfg = PipelineConfig::new(dir.path());
    let t = std::thread::spawn(move || Pipeline::new(cfg, Registry::new()).run(Box::new(src), stop2).expect("run"));
    // Let part of the traffic through, then stop.
    std::thread::sleep(Duration::from_millis(150));
    stop.store(true, Ordering::Relaxed);
    let report = t.join().expect("join");
    assert!(report.received_packets < frames.len() as u64, "stopped before the end");
    let (flows, dns) = stored(dir.path());
    let stored_packets: u64 = flows.iter().map(|f| f.packets + f.rev_packets).sum();
    assert_eq!(stored_packets, report.decode.flow_packets, "every accounted packet is in a stored flow");
    assert!(flows.iter().all(|f| f.end_reason == osprey_segment::EndReason::Flush));
    assert_eq!(dns.len() as u64, report.decode.dns_messages);
    let (all, skipped) = read_all::<DnsRecord>(dir.path(), TimeRange::default()).expect("read");
    assert!(skipped.is_empty());
    assert_eq!(all.len(), dns.len());
}

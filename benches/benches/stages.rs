//! The ingest pipeline stage by stage, on the same synthetic capture as
//! `pcap_ingest` (so the stage costs add up to roughly the end-to-end cost):
//!
//! - `stages/read`: pcap record walking only ([`CaptureReader`]).
//! - `stages/read_decode`: + link/IP/transport decoding ([`packet::decode_frame`]).
//! - `stages/read_decode_flow`: + the flow table ([`FlowTable::observe`], ended flows drained).
//! - `stages/flow_observe`: the flow table alone, on pre-decoded packets.
//! - `stages/dns_parse`: [`dns::parse_message`] of one typical response.
//! - `stages/segment_write_flows`: N flow records → zstd Arrow segments (with fsync).

use std::hint::black_box;
use std::time::Duration;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use osprey_benches::{
    SynthConfig, flow_packets, flow_records, synthetic_capture, typical_dns_response,
};
use osprey_capture::dns;
use osprey_capture::flow::{FlowConfig, FlowPacket, FlowTable};
use osprey_capture::packet;
use osprey_capture::pcap::CaptureReader;
use osprey_segment::FlowRecord;
use osprey_segment::partition::{PartitionedWriter, WriterConfig};

fn stages(c: &mut Criterion) {
    let cap = synthetic_capture(SynthConfig::default());
    let pcap = cap.pcap.as_slice();
    let mut g = c.benchmark_group("stages");
    g.sample_size(20);
    g.warm_up_time(Duration::from_secs(1));
    g.measurement_time(Duration::from_secs(4));
    g.throughput(Throughput::Elements(cap.packets));

    g.bench_function("read", |b| {
        b.iter(|| {
            let mut n = 0u64;
            let mut bytes = 0u64;
            for p in CaptureReader::new(black_box(pcap))
                .expect("pcap")
                .map_while(Result::ok)
            {
                n += 1;
                bytes += u64::from(p.orig_len);
            }
            black_box((n, bytes))
        })
    });

    g.bench_function("read_decode", |b| {
        b.iter(|| {
            let mut ok = 0u64;
            let mut ip_bytes = 0u64;
            for p in CaptureReader::new(black_box(pcap))
                .expect("pcap")
                .map_while(Result::ok)
            {
                if let Ok(m) = packet::decode_frame(p.link_type, p.data, p.orig_len) {
                    ok += 1;
                    ip_bytes += u64::from(m.ip_len);
                }
            }
            black_box((ok, ip_bytes))
        })
    });

    g.bench_function("read_decode_flow", |b| {
        b.iter_batched_ref(
            || FlowTable::new(FlowConfig::default()),
            |table| {
                let mut ended = 0usize;
                for p in CaptureReader::new(black_box(pcap))
                    .expect("pcap")
                    .map_while(Result::ok)
                {
                    let Ok(m) = packet::decode_frame(p.link_type, p.data, p.orig_len) else {
                        continue;
                    };
                    if m.flow_skip().is_some() {
                        continue;
                    }
                    table.observe(&FlowPacket::from_meta(p.ts_ns, &m));
                    if table.ended_len() > 0 {
                        ended += table.take_ended().count();
                    }
                }
                black_box(ended)
            },
            BatchSize::PerIteration,
        )
    });

    let pkts = flow_packets(pcap);
    g.throughput(Throughput::Elements(pkts.len() as u64));
    g.bench_function("flow_observe", |b| {
        b.iter_batched_ref(
            || FlowTable::new(FlowConfig::default()),
            |table| {
                let mut ended = 0usize;
                for p in black_box(&pkts) {
                    table.observe(p);
                    if table.ended_len() > 0 {
                        ended += table.take_ended().count();
                    }
                }
                black_box(ended)
            },
            BatchSize::PerIteration,
        )
    });

    let msg = typical_dns_response();
    g.throughput(Throughput::Elements(1));
    g.measurement_time(Duration::from_secs(3));
    g.bench_function("dns_parse", |b| {
        b.iter(|| dns::parse_message(black_box(&msg)).expect("parses"))
    });

    let mut records: Vec<FlowRecord> = flow_records(pcap);
    records.truncate(50_000);
    let n = records.len();
    g.throughput(Throughput::Elements(n as u64));
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(5));
    g.bench_function(format!("segment_write_flows/{n}"), |b| {
        b.iter_batched(
            || (tempfile::tempdir().expect("tempdir"), records.clone()),
            |(dir, recs)| {
                let mut w =
                    PartitionedWriter::<FlowRecord>::new(dir.path(), WriterConfig::default())
                        .expect("writer");
                for r in recs {
                    w.push(r).expect("push");
                }
                let segs = w.finish().expect("finish");
                (dir, segs)
            },
            BatchSize::PerIteration,
        )
    });
    g.finish();
}

criterion_group!(benches, stages);
criterion_main!(benches);

//! Segments stay readable by other Arrow implementations: pyarrow (the C++
//! reader, also behind Spark and pandas) and, when installed, DuckDB over
//! pyarrow. The writer's choices (8-byte alignment, zstd level, rows sorted
//! by partition time, buffers left uncompressed when zstd does not shrink
//! them) are all within the Arrow IPC format; this checks that a foreign
//! reader agrees, value for value, with what was written.
//!
//! Needs `python3` with `pyarrow` (`OSPREY_PYTHON` names another interpreter,
//! e.g. a venv's); skips with a printed reason otherwise. DuckDB is checked
//! when `import duckdb` works in that interpreter.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;
use std::process::Command;

use osprey_segment::partition::{PartitionedWriter, TimeRange, WriterConfig, read_all};
use osprey_segment::{EndReason, FlowRecord};

fn python() -> String {
    std::env::var("OSPREY_PYTHON").unwrap_or_else(|_| "python3".into())
}

/// Whether `module` imports in the interpreter; prints why not.
fn has_module(module: &str) -> bool {
    match Command::new(python()).args(["-c", &format!("import {module}")]).output() {
        Ok(o) if o.status.success() => true,
        Ok(o) => {
            println!("skipping {module} check: {} cannot import it: {}", python(), String::from_utf8_lossy(&o.stderr).lines().last().unwrap_or(""));
            false
        }
        Err(e) => {
            println!("skipping {module} check: cannot run {}: {e}", python());
            false
        }
    }
}

/// Flows of both address families, in shuffled start order (the writer sorts
/// them), with counters that need all 8 bytes of their columns.
fn flows(n: u32) -> Vec<FlowRecord> {
    let t0 = 1_795_676_400_000_000_000i64; // 2026-11-26T07:00:00Z
    (0..n)
        .map(|i| {
            let v6 = i % 7 == 0;
            let ip = |host: u32| -> IpAddr {
                if v6 {
                    IpAddr::V6(Ipv6Addr::new(0x2001, 2, 0, 0, 0, 0, (host >> 16) as u16, host as u16))
                } else {
                    IpAddr::V4(Ipv4Addr::new(198, 18, (host >> 8) as u8, host as u8))
                }
            };
            let shuffled = i64::from((i * 7919) % n);
            FlowRecord {
                ts_start: t0 + shuffled * 1_000_003,
                ts_end: t0 + shuffled * 1_000_003 + i64::from(i % 1000) * 1_000_000,
                proto: if i % 3 == 0 { 17 } else { 6 },
                src_ip: ip(i % 500),
                src_port: 40_000 + (i % 20_000) as u16,
                dst_ip: ip(1000 + i % 13),
                dst_port: [53u16, 443, 80][(i % 3) as usize],
                vlan: (i % 2) as u16,
                packets: u64::from(i % 50) + 1,
                bytes: u64::from(i) * 1_000_003 + (1 << 40),
                rev_packets: u64::from(i % 9),
                rev_bytes: u64::from(i % 9) * 77,
                tcp_flags: (i % 64) as u8,
                rev_tcp_flags: (i % 32) as u8,
                end_reason: EndReason::ALL[(i % 6) as usize],
            }
        })
        .collect()
}

/// The Python side: reads every segment under DATA/flow with pyarrow (and
/// DuckDB over the same table) and prints the values that the Rust side
/// compares with what it wrote.
const SCRIPT: &str = r#"
import glob, ipaddress, json, sys
import pyarrow as pa, pyarrow.ipc as ipc, pyarrow.compute as pc
tables = []
for p in sorted(glob.glob(sys.argv[1] + "/flow/**/*.arrow", recursive=True)):
    with ipc.open_file(p) as r:
        meta = r.schema.metadata
        assert meta[b"osprey.kind"] == b"flow", meta
        tables.append(r.read_all())
t = pa.concat_tables(tables)
def ip(b):
    a = ipaddress.IPv6Address(b)
    return str(a.ipv4_mapped or a)
out = {
    "rows": t.num_rows,
    "columns": t.column_names,
    "sum_bytes": pc.sum(t["bytes"]).as_py(),
    "sum_packets": pc.sum(t["packets"]).as_py(),
    "ts_type": str(t.schema.field("ts_start").type),
    "ts_start_ns": [v.value for v in t["ts_start"].cast(pa.timestamp("ns", tz="UTC"))],
    "src_ip": [ip(v.as_py()) for v in t["src_ip"]],
    "end_reason": [v.as_py() for v in t["end_reason"]],
}
try:
    import duckdb
except ImportError:
    duckdb = None
if duckdb is not None:
    flows = t
    out["duckdb"] = duckdb.execute(
        "select count(*), sum(bytes)::varchar, count(distinct src_ip), "
        "min(epoch_us(ts_start))::varchar, typeof(min(ts_start)) from flows"
    ).fetchone()
print(json.dumps(out))
"#;

#[test]
fn pyarrow_and_duckdb_read_what_the_writer_wrote() {
    if !has_module("pyarrow") {
        return;
    }
    let with_duckdb = has_module("duckdb");
    let dir = tempfile::tempdir().expect("tempdir");
    let rows = flows(3000);
    // Small batches: several record batches per segment, one partial.
    let cfg = WriterConfig { sensor: "foreign".into(), batch_rows: 1000, ..WriterConfig::default() };
    let mut w = PartitionedWriter::<FlowRecord>::new(dir.path(), cfg).expect("writer");
    for r in &rows {
        w.push(r.clone()).expect("push");
    }
    w.finish().expect("finish");
    // What Osprey's own reader returns is the reference order.
    let (ours, skipped) = read_all::<FlowRecord>(dir.path(), TimeRange::default()).expect("read");
    assert!(skipped.is_empty(), "{skipped:?}");
    assert_eq!(ours.len(), rows.len());
    let out = Command::new(python()).args(["-c", SCRIPT]).arg(dir.path()).output().expect("run python");
    assert!(out.status.success(), "pyarrow failed: {}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json from python");
    check_against(&v, &ours, dir.path());
    if with_duckdb {
        let d = v["duckdb"].as_array().expect("duckdb result");
        let distinct_src = ours.iter().map(|f| f.src_ip).collect::<std::collections::HashSet<_>>().len();
        let sum: u128 = ours.iter().map(|f| u128::from(f.bytes)).sum();
        assert_eq!(d[0].as_u64(), Some(ours.len() as u64));
        assert_eq!(d[1].as_str(), Some(sum.to_string().as_str()));
        assert_eq!(d[2].as_u64(), Some(distinct_src as u64));
        let first_us = ours.iter().map(|f| f.ts_start).min().expect("rows") / 1000;
        assert_eq!(d[3].as_str(), Some(first_us.to_string().as_str()), "DuckDB reads flow times as microseconds");
        assert_eq!(d[4].as_str(), Some("TIMESTAMP WITH TIME ZONE"), "{d:?}");
    }
}

fn check_against(v: &serde_json::Value, ours: &[FlowRecord], dir: &Path) {
    let names: Vec<&str> = v["columns"].as_array().expect("columns").iter().filter_map(|c| c.as_str()).collect();
    let want: Vec<String> = osprey_segment::schema::schema(osprey_segment::Kind::Flow).fields().iter().map(|f| f.name().clone()).collect();
    assert_eq!(names, want, "column names as pyarrow sees them ({})", dir.display());
    assert_eq!(v["rows"].as_u64(), Some(ours.len() as u64));
    assert_eq!(v["sum_bytes"].as_u64(), Some(ours.iter().map(|f| f.bytes).sum::<u64>()));
    assert_eq!(v["sum_packets"].as_u64(), Some(ours.iter().map(|f| f.packets).sum::<u64>()));
    assert_eq!(v["ts_type"].as_str(), Some("timestamp[us, tz=UTC]"));
    let ts: Vec<i64> = v["ts_start_ns"].as_array().expect("ts").iter().filter_map(|x| x.as_i64()).collect();
    assert_eq!(ts, ours.iter().map(|f| f.ts_start).collect::<Vec<_>>());
    // One partition, batches of 1000 rows: each batch is in ts_start order.
    assert!(ts.chunks(1000).all(<[i64]>::is_sorted), "rows are in ts_start order within each batch");
    let ips: Vec<&str> = v["src_ip"].as_array().expect("ips").iter().filter_map(|x| x.as_str()).collect();
    assert_eq!(ips, ours.iter().map(|f| f.src_ip.to_string()).collect::<Vec<_>>());
    let ends: Vec<&str> = v["end_reason"].as_array().expect("ends").iter().filter_map(|x| x.as_str()).collect();
    assert_eq!(ends, ours.iter().map(|f| f.end_reason.as_str()).collect::<Vec<_>>());
}

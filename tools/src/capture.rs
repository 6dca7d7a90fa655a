//! `osprey capture`: the live capture daemon. Captures one interface into
//! flow and DNS segments until SIGINT or SIGTERM, serving Prometheus metrics
//! meanwhile, then shuts down in order (flush, publish, detach) and prints a
//! summary. A second SIGINT/SIGTERM during shutdown exits at once.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use anyhow::{Context, Result};
use clap::Args;

use osprey_capture::live::lock::SensorLock;
use osprey_capture::live::{Pipeline, PipelineReport, SourceKind, open_source};
use osprey_capture::metrics::{Metric, MetricsServer, Registry};

use crate::config::CaptureSource;
use crate::{Global, Outcome};

/// Where segments go when neither `--data` nor `[data] dir` says.
pub const DEFAULT_DATA_DIR: &str = "/var/lib/osprey";

/// Arguments of `osprey capture`.
#[derive(Debug, Args)]
pub struct CaptureArgs {
    /// Interface to capture on (overrides [capture] interface).
    #[arg(long, value_name = "IF")]
    pub iface: Option<String>,
    /// Data directory to write segments into (default: [data] dir, else /var/lib/osprey).
    #[arg(long, value_name = "DIR")]
    pub data: Option<PathBuf>,
    /// Capture source (overrides [capture] source).
    #[arg(long, value_enum)]
    pub source: Option<CaptureSource>,
    /// Address of the Prometheus /metrics endpoint (overrides [capture] metrics_listen).
    #[arg(long, value_name = "ADDR")]
    pub metrics_listen: Option<String>,
    /// Do not serve metrics.
    #[arg(long, conflicts_with = "metrics_listen")]
    pub no_metrics: bool,
    /// Sensor name for segment file names and metadata (overrides [data] sensor).
    #[arg(long)]
    pub sensor: Option<String>,
}

/// Runs `osprey capture`.
pub fn run(global: &Global, args: CaptureArgs) -> Result<Outcome> {
    let cfg = &global.config;
    let iface = args
        .iface
        .or_else(|| cfg.capture.interface.clone())
        .context("no interface: pass --iface IF or set [capture] interface in the configuration")?;
    let data = args.data.or_else(|| cfg.data.dir.clone()).unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR));
    let mut pipeline_cfg = cfg.pipeline(&data);
    if let Some(s) = args.sensor {
        osprey_segment::segment::validate_sensor(&s)?;
        pipeline_cfg.writer.sensor = s;
    }
    let kind = match args.source.unwrap_or(cfg.capture.source) {
        CaptureSource::Afpacket => SourceKind::AfPacket,
        CaptureSource::Xdp => SourceKind::Xdp,
    };
    std::fs::create_dir_all(&data).with_context(|| format!("creating data directory {}", data.display()))?;
    let lock = SensorLock::acquire(&data, &pipeline_cfg.writer.sensor)?;
    if lock.removed_partials() > 0 {
        tracing::warn!("removed {} partial segment file(s) left by an earlier run that did not stop cleanly", lock.removed_partials());
    }

    // Signals first, so one arriving while we set up still stops us cleanly.
    let shutdown = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        // The second signal (shutdown already requested) exits immediately.
        signal_hook::flag::register_conditional_shutdown(sig, 130, shutdown.clone()).context("installing signal handlers")?;
        signal_hook::flag::register(sig, shutdown.clone()).context("installing signal handlers")?;
    }

    let mut source_cfg = cfg.source(&iface, &data);
    if let Some(sample) = source_cfg.xdp.sample.as_mut() {
        sample.sensor = pipeline_cfg.writer.sensor.clone();
    }
    let source = open_source(kind, &source_cfg).with_context(|| format!("opening {} capture on {iface}", kind.as_str()))?;
    let info = source.info();
    let registry = Registry::new();
    registry.gauge(Metric::BuildInfo, &[("version", env!("CARGO_PKG_VERSION"))])?.set(1.0);
    let listen = if args.no_metrics { None } else { Some(args.metrics_listen.unwrap_or_else(|| cfg.capture.metrics_listen.clone())) };
    let server = match &listen {
        Some(addr) => Some(MetricsServer::start(addr, registry.clone()).with_context(|| format!("serving metrics on {addr}"))?),
        None => None,
    };
    if !global.quiet {
        let metrics = server.as_ref().map_or_else(|| "off".to_string(), |s| format!("http://{}/metrics", s.local_addr()));
        eprintln!(
            "osprey capture: capturing on {} ({}/{}) into {}; metrics {metrics}; stop with SIGINT or SIGTERM",
            info.iface,
            info.source,
            info.mode,
            data.display()
        );
    }
    let report = Pipeline::new(pipeline_cfg, registry).run(source, shutdown).context("capture pipeline")?;
    if let Some(s) = server {
        s.stop();
    }
    if !global.quiet {
        eprint!("{}", summary(&report, &data));
    }
    drop(lock);
    Ok(Outcome::Clean)
}

/// The end-of-run summary.
pub fn summary(r: &PipelineReport, data: &Path) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let secs = r.elapsed.as_secs_f64();
    let _ = writeln!(out, "captured for {secs:.1} s");
    let _ = writeln!(out, "  packets        {:>12}  ({} bytes on the wire)", r.received_packets, r.received_bytes);
    let _ = writeln!(
        out,
        "  dropped        {:>12}  (socket {}, interface {}, ring {})",
        r.capture_drops(),
        r.source_stats.socket_drops,
        r.source_stats.interface_drops,
        r.packet_ring_drops
    );
    if r.source_stats.kernel_dns_ring_drops + r.source_stats.kernel_flow_ring_drops > 0 {
        let _ = writeln!(
            out,
            "  kernel rings full {:>9}  (dns records dropped {}, flow ends merged {})",
            r.source_stats.kernel_dns_ring_drops + r.source_stats.kernel_flow_ring_drops,
            r.source_stats.kernel_dns_ring_drops,
            r.source_stats.kernel_flow_ring_drops
        );
    }
    let _ = writeln!(out, "  flow packets   {:>12}", r.decode.flow_packets);
    let _ = writeln!(out, "  skipped        {:>12}", r.decode.skipped_total());
    for (reason, n) in osprey_capture::live::pipeline::skipped_by_reason(&r.decode) {
        let _ = writeln!(out, "    {reason:<22} {n:>10}");
    }
    if r.decode.flow_table_full > 0 {
        let _ = writeln!(out, "    {:<22} {:>10}", "flow_table_full", r.decode.flow_table_full);
    }
    let [f, d] = r.published;
    let _ = writeln!(out, "  flows          {:>12}  stored in {} segment(s), {} bytes", f.records, f.segments, f.bytes);
    let _ = writeln!(out, "  dns messages   {:>12}  stored in {} segment(s), {} bytes", d.records, d.segments, d.bytes);
    if r.flow_record_drops + r.dns_record_drops > 0 {
        let _ = writeln!(out, "  records dropped {:>11}  (flow {}, dns {})", r.flow_record_drops + r.dns_record_drops, r.flow_record_drops, r.dns_record_drops);
    }
    let (p50, p99, p999, n) = r.latency_ns;
    if n > 0 {
        let ms = |ns: u64| ns as f64 / 1e6;
        let _ = writeln!(out, "  capture→segment latency p50 {:.1} ms, p99 {:.1} ms, p99.9 {:.1} ms", ms(p50), ms(p99), ms(p999));
    }
    let _ = writeln!(out, "  data           {}", data.display());
    out
}

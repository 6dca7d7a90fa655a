//! `osprey ingest pcap`: capture files into flow and DNS segments, with a
//! progress bar on a terminal and a summary at the end. `osprey ingest proxy`:
//! HTTP proxy access logs into proxy segments. `osprey ingest netflow`:
//! NetFlow v5/v9 and IPFIX export traffic (captures or raw datagrams) into
//! flow segments.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Result;
use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};

use osprey_capture::dns::{DnsError, TcpDnsSkip};
use osprey_capture::ingest::{IngestConfig, IngestStats, Ingestor};
use osprey_capture::netflow::{DEFAULT_PORTS, NetflowConfig, NetflowIngestor, NetflowStats, Sampling, Version};
use osprey_capture::packet::SkipReason;
use osprey_capture::proxylog::{ProxyFormat, ProxyIngestor, ProxyStats};
use osprey_segment::partition::WriterConfig;

use crate::{Global, Outcome, data_dir};

/// What to ingest.
#[derive(Debug, Subcommand)]
pub enum IngestCommand {
    /// Read pcap or pcapng files (Ethernet, Linux SLL/SLL2, raw IP, BSD loopback; VLAN, MPLS,
    /// IPv4/IPv6) into flow and DNS segments. Files are read in the order given as one
    /// continuous capture.
    Pcap(PcapArgs),
    /// Read HTTP proxy access logs into proxy segments: Blue Coat lines in Spot's
    /// positional layout, ELFF/W3C logs named by their `#Fields:` header (or by
    /// `--fields`), or Squid's native access.log. Unreadable lines are counted
    /// by reason and skipped.
    Proxy(ProxyArgs),
    /// Read NetFlow v5, NetFlow v9 and IPFIX export datagrams into flow
    /// segments: pcap/pcapng captures of the export traffic (UDP to the
    /// export ports, IPv4 or IPv6), or raw UDP payload files with `--raw`.
    /// Records stay unidirectional; counters are stored as exported (sampling
    /// is reported, not applied, unless `--scale-sampling`). Damaged
    /// datagrams and data without a template are counted by reason and skipped.
    Netflow(NetflowArgs),
}

/// Arguments of `osprey ingest netflow`.
#[derive(Debug, Args)]
pub struct NetflowArgs {
    /// Capture files (pcap or pcapng), or with `--raw` one datagram per file.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Where the segments go.
    #[command(flatten)]
    pub out: OutputArgs,
    /// Also read UDP datagrams to this destination port (repeatable; the
    /// defaults 2055, 9995, 9996 and 4739 are always read).
    #[arg(long = "port", value_name = "P")]
    pub ports: Vec<u16>,
    /// Each file is one raw export datagram (a UDP payload), not a capture.
    /// Raw files carry no exporter address: they share one template cache,
    /// in the order given, so list template files first, and give one
    /// exporter's files per run (template ids of different exporters collide).
    #[arg(long)]
    pub raw: bool,
    /// Multiply packets and bytes by the sampling interval the exporter
    /// announced (default: store them as exported and report the sampling).
    #[arg(long)]
    pub scale_sampling: bool,
}

/// Arguments of `osprey ingest proxy`.
#[derive(Debug, Args)]
pub struct ProxyArgs {
    /// Log files.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Where the segments go.
    #[command(flatten)]
    pub out: OutputArgs,
    /// Line format: `auto` (per file: a `#Fields:` header means ELFF, a leading
    /// date Spot's Blue Coat layout, a leading epoch time Squid), `spot`, `elff`
    /// or `squid`.
    #[arg(long, default_value = "auto", value_parser = parse_proxy_format)]
    pub format: ProxyFormat,
    /// ELFF field names in order, for logs exported without a `#Fields:`
    /// header (space-separated, e.g. "date time time-taken c-ip sc-status ...").
    /// Implies `--format elff`.
    #[arg(long, value_name = "NAMES")]
    pub fields: Option<String>,
}

fn parse_proxy_format(s: &str) -> Result<ProxyFormat, String> {
    ProxyFormat::parse(s).ok_or_else(|| format!("unknown proxy log format `{s}` (expected auto, spot, elff or squid)"))
}

/// Where every `osprey ingest` verb writes.
#[derive(Debug, Args)]
pub struct OutputArgs {
    /// Data directory to write segments into (created if missing).
    #[arg(long, value_name = "DIR")]
    pub data: Option<PathBuf>,
    /// Sensor name for segment file names and metadata (overrides [data] sensor).
    #[arg(long)]
    pub sensor: Option<String>,
}

impl OutputArgs {
    /// The data directory and the writer settings, with `--sensor` applied.
    fn resolve(self, global: &Global) -> Result<(PathBuf, WriterConfig)> {
        let data = data_dir(global, self.data)?;
        let mut writer = global.config.ingest().writer;
        if let Some(s) = self.sensor {
            osprey_segment::segment::validate_sensor(&s)?;
            writer.sensor = s;
        }
        Ok((data, writer))
    }
}

/// Arguments of `osprey ingest pcap`.
#[derive(Debug, Args)]
pub struct PcapArgs {
    /// Capture files (pcap or pcapng).
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Where the segments go.
    #[command(flatten)]
    pub out: OutputArgs,
}

/// Runs `osprey ingest ...`.
pub fn run(global: &Global, cmd: IngestCommand) -> Result<Outcome> {
    match cmd {
        IngestCommand::Pcap(args) => {
            let (data, writer) = args.out.resolve(global)?;
            let cfg = IngestConfig { writer, ..global.config.ingest() };
            let stats = ingest_files(&data, cfg, &args.files, global.quiet)?;
            if !global.quiet {
                eprint!("{}", summary(&stats.0, stats.1, &data));
            }
            Ok(if stats.0.problems.is_empty() && stats.2 == 0 { Outcome::Clean } else { Outcome::Problems })
        }
        IngestCommand::Proxy(args) => {
            let (data, writer) = args.out.resolve(global)?;
            let format = match args.fields {
                Some(names) => ProxyFormat::Elff(Some(names.split_whitespace().map(str::to_string).collect())),
                None => args.format,
            };
            let started = Instant::now();
            let mut ing = ProxyIngestor::new(&data, writer, format)?;
            let unreadable = ingest_each(&args.files, |f| ing.ingest_file(f));
            let stats = ing.finish()?;
            if !global.quiet {
                eprint!("{}", proxy_summary(&stats, started.elapsed().as_secs_f64(), &data));
            }
            Ok(if unreadable == 0 && stats.skipped_total() == 0 { Outcome::Clean } else { Outcome::Problems })
        }
        IngestCommand::Netflow(args) => {
            let (data, writer) = args.out.resolve(global)?;
            let mut ports = DEFAULT_PORTS.to_vec();
            ports.extend(args.ports.iter().filter(|p| !DEFAULT_PORTS.contains(p)));
            let sampling = if args.scale_sampling { Sampling::Scale } else { Sampling::AsReported };
            let started = Instant::now();
            let mut ing = NetflowIngestor::new(&data, NetflowConfig { ports, sampling, writer })?;
            let unreadable = ingest_each(&args.files, |f| {
                let res = if args.raw { ing.ingest_raw_file(f) } else { ing.ingest_pcap_file(f) };
                res.map_err(|e| format!("skipping {e}"))
            });
            let stats = ing.finish()?;
            if !global.quiet {
                eprint!("{}", netflow_summary(&stats, started.elapsed().as_secs_f64(), &data));
            }
            Ok(if unreadable == 0 && stats.skipped_total() == 0 { Outcome::Clean } else { Outcome::Problems })
        }
    }
}

/// Runs `ingest` on every file and returns how many failed. A failing file
/// is reported on stderr and the others are still read; what it yielded
/// before the error is kept.
fn ingest_each<E: std::fmt::Display>(files: &[PathBuf], mut ingest: impl FnMut(&Path) -> Result<(), E>) -> usize {
    let mut unreadable = 0;
    for f in files {
        if let Err(e) = ingest(f) {
            eprintln!("osprey: {e}");
            unreadable += 1;
        }
    }
    unreadable
}

/// The end-of-run summary of `osprey ingest netflow`.
pub fn netflow_summary(s: &NetflowStats, secs: f64, data: &Path) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let _ = writeln!(out, "ingested {} netflow file(s) in {secs:.2} s", s.files);
    if s.packets > 0 {
        let _ = writeln!(out, "  capture frames {:>12}  ({} not export datagrams)", s.packets, s.other_packets);
    }
    let _ = writeln!(out, "  datagrams      {:>12}", s.datagrams);
    let _ = writeln!(out, "  flow records   {:>12}", s.records());
    for v in Version::ALL {
        let c = &s.by_version[v.index()];
        if c.datagrams == 0 {
            continue;
        }
        let _ = writeln!(
            out,
            "    {:<11} {:>6} datagrams {:>8} records {:>5} templates {:>4} options templates {:>6} options records",
            v.as_str(),
            c.datagrams,
            c.records,
            c.templates,
            c.options_templates,
            c.option_records
        );
        if c.without_addresses > 0 {
            let _ = writeln!(out, "    {:<11} {:>6} data records without IP addresses (not flows, not stored)", "", c.without_addresses);
        }
    }
    if s.template_withdrawals > 0 {
        let _ = writeln!(out, "  template withdrawals {:>6}", s.template_withdrawals);
    }
    if !s.sampling.is_empty() {
        let _ = writeln!(out, "  sampled records {:>11}  (counters as exported; --scale-sampling multiplies)", s.sampled_records);
        for ((version, exporter, domain), n) in &s.sampling {
            let _ = writeln!(out, "    {} exporter {exporter} domain {domain}: 1 in {n}", version.as_str());
        }
    }
    if s.unknown_sampling_records > 0 {
        let _ = writeln!(out, "  records from a sampler with no announced interval {:>6}  (counters as exported)", s.unknown_sampling_records);
    }
    let _ = writeln!(out, "  skipped        {:>12}", s.skipped_total());
    for (reason, n) in &s.skipped {
        let _ = writeln!(out, "    {:<22} {:>10}", reason.as_str(), n);
    }
    let _ = writeln!(out, "  segments       {:>12}  under {}", s.segments.len(), data.display());
    out
}

/// The end-of-run summary of `osprey ingest proxy`.
pub fn proxy_summary(s: &ProxyStats, secs: f64, data: &Path) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let _ = writeln!(out, "ingested {} proxy log file(s) in {secs:.2} s", s.files);
    let _ = writeln!(out, "  lines          {:>12}", s.lines);
    let _ = writeln!(out, "  comments       {:>12}", s.comments);
    let _ = writeln!(out, "  records        {:>12}", s.records);
    let _ = writeln!(out, "  skipped        {:>12}", s.skipped_total());
    for (reason, n) in &s.skipped {
        let _ = writeln!(out, "    {:<22} {:>10}", reason.as_str(), n);
    }
    let _ = writeln!(out, "  segments       {:>12}  under {}", s.segments.len(), data.display());
    out
}

/// Ingests `files` into `data`. Returns the counters, the elapsed seconds and
/// the number of files that could not be read at all.
pub fn ingest_files(data: &Path, cfg: IngestConfig, files: &[PathBuf], quiet: bool) -> Result<(IngestStats, f64, usize)> {
    let started = Instant::now();
    let mut ing = Ingestor::new(data, cfg)?;
    let total: u64 = files.iter().filter_map(|f| std::fs::metadata(f).ok()).map(|m| m.len()).sum();
    let bar = if quiet || !std::io::stderr().is_terminal() {
        ProgressBar::hidden()
    } else {
        let b = ProgressBar::new(total);
        b.set_style(
            ProgressStyle::with_template("{spinner} [{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} ({bytes_per_sec}, eta {eta}) {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        b
    };
    let mut done_before = 0u64;
    let mut unreadable = 0usize;
    for f in files {
        bar.set_message(f.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default());
        let base = done_before;
        let res = ing.ingest_file(f, &mut |done, _| bar.set_position(base + done));
        if let Err(e) = res {
            // A file that is not a capture at all is reported and skipped;
            // the others are still ingested.
            bar.suspend(|| eprintln!("osprey: skipping {e}"));
            tracing::warn!("skipped {}: {e}", f.display());
            unreadable += 1;
        }
        done_before += std::fs::metadata(f).map(|m| m.len()).unwrap_or(0);
    }
    bar.finish_and_clear();
    let stats = ing.finish()?;
    Ok((stats, started.elapsed().as_secs_f64(), unreadable))
}

/// The end-of-run summary.
pub fn summary(s: &IngestStats, secs: f64, data: &Path) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let rate = if secs > 0.0 { s.packets as f64 / secs } else { 0.0 };
    let _ = writeln!(out, "ingested {} file(s) in {secs:.2} s ({:.2} M packets/s)", s.files, rate / 1e6);
    let _ = writeln!(out, "  packets        {:>12}  ({} bytes on the wire)", s.packets, s.bytes);
    let _ = writeln!(out, "  flow packets   {:>12}", s.flow_packets);
    let _ = writeln!(out, "  flows          {:>12}", s.flows);
    let _ = writeln!(out, "  dns messages   {:>12}  ({} responses matched to their query)", s.dns_messages, s.dns_matched);
    let skipped = s.skipped_total();
    let _ = writeln!(out, "  skipped        {:>12}", skipped);
    for r in SkipReason::ALL {
        let n = s.skipped[r.index()];
        if n > 0 {
            let _ = writeln!(out, "    {:<22} {:>10}", r.as_str(), n);
        }
    }
    if s.flow_table_full > 0 {
        let _ = writeln!(out, "    {:<22} {:>10}", "flow_table_full", s.flow_table_full);
    }
    let dns_bad: u64 = s.dns_errors.iter().sum();
    if dns_bad > 0 {
        let _ = writeln!(out, "  undecodable dns {:>11}", dns_bad);
        for (i, k) in DnsError::KINDS.iter().enumerate() {
            if s.dns_errors[i] > 0 {
                let _ = writeln!(out, "    {:<22} {:>10}", k, s.dns_errors[i]);
            }
        }
    }
    let tcp_bad: u64 = s.tcp_dns_skipped.iter().sum();
    if tcp_bad > 0 {
        let _ = writeln!(out, "  dns/tcp segments skipped {:>3}", tcp_bad);
        for (i, k) in TcpDnsSkip::ALL.iter().enumerate() {
            if s.tcp_dns_skipped[i] > 0 {
                let _ = writeln!(out, "    {:<22} {:>10}", k.as_str(), s.tcp_dns_skipped[i]);
            }
        }
    }
    for p in &s.problems {
        let _ = writeln!(out, "  damaged: {}: {} (packets before it were kept)", p.path.display(), p.reason);
    }
    let _ = writeln!(out, "  segments       {:>12}  under {}", s.segments.len(), data.display());
    out
}

//! `osprey demo`: the embedded default job. Generates a synthetic day of
//! office traffic with injected anomalies ([`generator`]), ingests it like any
//! capture, and reports what was stored, what was injected, and where the data
//! is. As later stages land (training, scoring) the demo runs them too.

pub mod generator;

use std::fs;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::Args;

use osprey_segment::partition::{TimeRange, read_all};
use osprey_segment::{DnsRecord, FlowRecord};

use crate::{Global, Outcome};

/// Marks a directory as created by `osprey demo`, so a re-run may replace it.
const MARKER: &str = ".osprey-demo";

/// Arguments of `osprey demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Where to put the demo capture and data (replaced if it holds an earlier demo).
    #[arg(long, value_name = "DIR", default_value = "osprey-demo")]
    pub data: PathBuf,
    /// Seed of the traffic generator (same seed, same capture).
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Volume of benign traffic relative to the default day.
    #[arg(long, default_value_t = 1.0)]
    pub scale: f64,
}

/// Creates (or replaces an earlier demo's) directory.
fn prepare(dir: &Path) -> Result<()> {
    if dir.exists() {
        let is_demo = dir.join(MARKER).exists();
        let empty = fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))?.next().is_none();
        if !is_demo && !empty {
            bail!("{} exists and was not made by `osprey demo`; choose another --data", dir.display());
        }
        if is_demo {
            fs::remove_dir_all(dir).with_context(|| format!("removing the earlier demo in {}", dir.display()))?;
        }
    }
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    fs::write(dir.join(MARKER), "created by `osprey demo`; safe to delete\n")?;
    Ok(())
}

/// Runs `osprey demo`.
pub fn run(global: &Global, args: DemoArgs) -> Result<Outcome> {
    if !(args.scale > 0.0 && args.scale <= 100.0) {
        bail!("--scale must be in (0, 100]");
    }
    let dir = args.data;
    prepare(&dir)?;
    let say = |s: String| {
        if !global.quiet {
            println!("{s}");
        }
    };

    // 1. A synthetic office day, written as an ordinary pcap.
    let cfg = generator::DemoConfig { seed: args.seed, scale: args.scale, ..generator::DemoConfig::default() };
    let capture_dir = dir.join("capture");
    fs::create_dir_all(&capture_dir)?;
    let pcap = capture_dir.join("office-day.pcap");
    let t = Instant::now();
    let file = fs::File::create(&pcap).with_context(|| format!("creating {}", pcap.display()))?;
    let truth = generator::generate(&cfg, BufWriter::with_capacity(1 << 20, file))
        .with_context(|| format!("writing {}", pcap.display()))?;
    fs::write(dir.join("ground-truth.json"), serde_json::to_string_pretty(&truth)?)?;
    say(format!(
        "generated {} ({} packets, {:.1} MB) in {:.2} s",
        pcap.display(),
        truth.total_packets,
        fs::metadata(&pcap)?.len() as f64 / 1e6,
        t.elapsed().as_secs_f64()
    ));

    // 2. Ingest it exactly as a user's capture would be.
    let mut ingest_cfg = global.config.ingest();
    ingest_cfg.writer.sensor = "demo".into();
    let (stats, secs, unreadable) = crate::ingest::ingest_files(&dir, ingest_cfg, &[pcap], global.quiet)?;
    if unreadable > 0 {
        bail!("the generated capture could not be read");
    }
    if !global.quiet {
        print!("{}", crate::ingest::summary(&stats, secs, &dir));
    }

    // 3. What was injected, and what the stored records show of it.
    let (flows, fskip) = read_all::<FlowRecord>(&dir, TimeRange::default())?;
    let (dns, dskip) = read_all::<DnsRecord>(&dir, TimeRange::default())?;
    if !fskip.is_empty() || !dskip.is_empty() {
        bail!("demo segments unreadable: {:?} {:?}", fskip, dskip);
    }
    say(format!("\ninjected anomalies and their footprint in the stored records:"));
    for a in &truth.anomalies {
        let ips: Vec<std::net::IpAddr> = a.ips.iter().filter_map(|s| s.parse().ok()).collect();
        let nflows = flows.iter().filter(|f| ips.contains(&f.src_ip) || ips.contains(&f.dst_ip)).count();
        let ndns = dns
            .iter()
            .filter(|d| {
                ips.contains(&d.client_ip) && a.domains.iter().any(|dom| d.qname.ends_with(dom.as_str()))
            })
            .count();
        say(format!("  - {:<22} {} ({} flows, {} DNS messages involve it)", a.name, a.description, nflows, ndns));
    }
    say(format!(
        "\nscoring: not available yet in this build (topic-model training and ranking are the scorer's work);\n\
         the records above are what it will rank.\n\ndata: {}\n  capture       {}\n  segments      {}/flow, {}/dns\n  ground truth  {}\n\ntry:\n  osprey records --data {} --kind dns --format jsonl -n 5\n  osprey export parquet --data {} --out {}/parquet",
        dir.display(),
        dir.join("capture/office-day.pcap").display(),
        dir.display(),
        dir.display(),
        dir.join("ground-truth.json").display(),
        dir.display(),
        dir.display(),
        dir.display(),
    ));
    Ok(if stats.problems.is_empty() { Outcome::Clean } else { Outcome::Problems })
}

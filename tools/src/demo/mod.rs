//! `osprey demo`: the embedded default job. Generates a synthetic day of
//! office traffic with injected anomalies ([`generator`]), ingests it like any
//! capture, and reports what was stored, what was injected, and where the data
//! is; then trains and scores flows and DNS, prints the top findings and
//! says whether each injected anomaly ranks in the top 1%.

pub mod generator;

use std::fs;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::Args;

use osprey_scorer::kinds::{Records, WordSettings};
use osprey_scorer::lda::gibbs::GibbsConfig;
use osprey_scorer::pipeline::Trainer;
use osprey_scorer::score::{Scoring, rankable, standings};
use osprey_segment::partition::{TimeRange, read_all};
use osprey_segment::ranked::{RankedRun, read_ranked};
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
    say("\ninjected anomalies and their footprint in the stored records:".to_string());
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
    // 4. Train and score flows and DNS (Spot's way: train on the day, score
    // the day), show the top findings, and check them against the ground truth.
    let t = Instant::now();
    let flow_found = score_and_report(&dir, Records::Flow(flows), &truth, global.quiet)?;
    let dns_found = score_and_report(&dir, Records::Dns(dns), &truth, global.quiet)?;
    say(format!("\nscoring took {:.2} s", t.elapsed().as_secs_f64()));
    say("\ninjected anomalies found (best rank of an event involving the anomaly's addresses/domains):".to_string());
    for a in &truth.anomalies {
        let f = flow_found.iter().chain(&dns_found).find(|f| f.name == a.name && f.kind == a.kind);
        match f {
            Some(f) => say(format!("  - {:<14} {:<4} {}", a.name, a.kind, f.verdict())),
            None => say(format!("  - {:<14} {:<4} no stored event involves it", a.name, a.kind)),
        }
    }
    say(format!(
        "\ndata: {}\n  capture       {}\n  segments      {}/flow, {}/dns\n  ranked        {}/ranked\n  ground truth  {}\n\ntry:\n  osprey top --data {} --kind flow -n 20\n  osprey top --data {} --kind dns --format spot-tsv\n  osprey train --data {} --kind dns && osprey score --data {} --kind dns --tol 1",
        dir.display(),
        dir.join("capture/office-day.pcap").display(),
        dir.display(),
        dir.display(),
        dir.display(),
        dir.join("ground-truth.json").display(),
        dir.display(),
        dir.display(),
        dir.display(),
        dir.display(),
    ));
    Ok(if stats.problems.is_empty() { Outcome::Clean } else { Outcome::Problems })
}

/// How one injected anomaly ranked.
#[derive(Debug)]
struct Found {
    name: String,
    kind: String,
    /// Events involving the anomaly.
    events: usize,
    /// Best rank (1 = most suspicious) of those events, counting ties
    /// pessimistically (an event tied with others ranks after all of them).
    best_rank: u64,
    /// Of the anomaly's events, how many are in the top 1%.
    in_top_pct: usize,
    /// Rankable events.
    total: usize,
}

impl Found {
    fn cut(&self) -> u64 {
        (self.total as u64).div_ceil(100).max(1)
    }

    fn verdict(&self) -> String {
        let cut = self.cut();
        format!(
            "{}: best rank {} of {} events (top 1% = {}); {} of its {} events in the top 1%",
            if self.best_rank <= cut { "FOUND" } else { "missed" },
            self.best_rank,
            self.total,
            cut,
            self.in_top_pct,
            self.events
        )
    }
}

/// Whether record `i` belongs to anomaly `a`: flows between two of its
/// addresses (its own or the shared hosts it used, e.g. scanned servers),
/// so the culprit's ordinary traffic does not count; DNS lookups by one of
/// its addresses of one of its domains (any lookup by its addresses when it
/// lists no domain).
fn involves(records: &Records, i: usize, a: &generator::Anomaly, ips: &[std::net::IpAddr]) -> bool {
    match records {
        Records::Flow(f) => {
            let shared = |ip: &std::net::IpAddr| a.shared_ips.iter().any(|s| s.parse::<std::net::IpAddr>().is_ok_and(|x| x == *ip));
            let (s, d) = (&f[i].src_ip, &f[i].dst_ip);
            (ips.contains(s) && (ips.contains(d) || shared(d))) || (ips.contains(d) && shared(s))
        }
        Records::Dns(d) => {
            let q = d[i].qname.trim_end_matches('.');
            ips.contains(&d[i].client_ip)
                && (a.domains.is_empty() || a.domains.iter().any(|dom| q.ends_with(dom.trim_end_matches('.'))))
        }
        Records::Proxy(_) => false,
    }
}

/// Trains on the day, scores it, writes the ranked segment, prints the top
/// findings and returns how each anomaly of this kind ranked.
fn score_and_report(dir: &Path, records: Records, truth: &generator::GroundTruth, quiet: bool) -> Result<Vec<Found>> {
    let kind = records.kind();
    let window = TimeRange::default();
    let settings = WordSettings::learn(&records, "", None);
    let trainer = Trainer::Gibbs(GibbsConfig::default());
    let (model, st) = crate::train::train_records(&records, &settings, &trainer, &window)?;
    let run = RankedRun {
        kind,
        window,
        events_scored: records.len() as u64,
        threshold: 1.0,
        max_results: 1000,
        model: "trained on the demo day (Spot mode)".into(),
        mode: "spot".into(),
    };
    let out = crate::score::score_records(dir, records, &model, Scoring::default(), run)?;
    if !quiet {
        println!(
            "\n{kind}: trained {} K={} on {} ({}), scored {} events; top findings:",
            model.meta.trainer,
            model.meta.k,
            format_args!("{} documents, {} words", model.docs.len(), model.vocab.len()),
            crate::train::speed_line(&st),
            out.records.len()
        );
        let (_, batches) = read_ranked(&out.path)?;
        let mut stdout = std::io::stdout().lock();
        let mut header = true;
        if let Some(b) = batches.first() {
            crate::top::table(&mut stdout, kind, b, &(0..b.num_rows().min(8)).collect::<Vec<_>>(), &mut header)?;
        }
    }
    let standings = standings(&out.scored.scores);
    let total = rankable(&out.scored.scores);
    let cut = (total as u64).div_ceil(100).max(1);
    let mut found = Vec::new();
    for a in truth.anomalies.iter().filter(|a| a.kind == kind.as_str()) {
        let ips: Vec<std::net::IpAddr> = a.ips.iter().filter_map(|s| s.parse().ok()).collect();
        let mut f = Found { name: a.name.clone(), kind: a.kind.clone(), events: 0, best_rank: u64::MAX, in_top_pct: 0, total };
        for i in (0..out.records.len()).filter(|&i| involves(&out.records, i, a, &ips)) {
            f.events += 1;
            if let Some((better, ties)) = standings[i] {
                let worst = better + ties + 1;
                f.best_rank = f.best_rank.min(worst);
                if worst <= cut {
                    f.in_top_pct += 1;
                }
            }
        }
        if f.events > 0 {
            found.push(f);
        }
    }
    Ok(found)
}

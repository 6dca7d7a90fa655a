//! `osprey demo`: the embedded default job. Generates two synthetic days of
//! the same office ([`generator`]): a clean baseline day and a day with
//! injected anomalies. Ingests them like any capture, reports what was stored
//! and injected, then trains and scores flows and DNS two ways, Spot's (train
//! on day 2 and score day 2 with P(w | host)) and Osprey's default (train on
//! the clean day 1, score day 2 with the blended score), prints the top
//! findings and says, for both, whether each injected anomaly ranks in the
//! top 1% of day 2's events.

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
use osprey_scorer::score::{FoldInConfig, Scoring, rankable, score_all_with, standings};
use osprey_scorer::words::domain::DomainRules;
use osprey_segment::partition::{TimeRange, read_all};
use osprey_segment::ranked::{RankedRun, read_ranked};
use osprey_segment::{DnsRecord, FlowRecord};

use crate::words::show_window;
use crate::{Global, Outcome};

/// Marks a directory as created by `osprey demo`, so a re-run may replace it.
const MARKER: &str = ".osprey-demo";
/// The clean day's capture.
const BASELINE_PCAP: &str = "office-day-1-baseline.pcap";
/// The capture of the day with the injected anomalies.
const PCAP: &str = "office-day-2.pcap";

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

    // 1. Two days of the same synthetic office, written as ordinary pcaps:
    // a clean baseline day, then the day with the injected anomalies.
    let base_cfg = generator::DemoConfig { seed: args.seed, scale: args.scale, day: 0, anomalies: false, ..generator::DemoConfig::default() };
    let cfg = generator::DemoConfig { day: 1, anomalies: true, ..base_cfg.clone() };
    let capture_dir = dir.join("capture");
    fs::create_dir_all(&capture_dir)?;
    let mut pcaps = Vec::new();
    let mut truth = None;
    for (c, name) in [(&base_cfg, BASELINE_PCAP), (&cfg, PCAP)] {
        let pcap = capture_dir.join(name);
        let t = Instant::now();
        let file = fs::File::create(&pcap).with_context(|| format!("creating {}", pcap.display()))?;
        let tr = generator::generate(c, BufWriter::with_capacity(1 << 20, file)).with_context(|| format!("writing {}", pcap.display()))?;
        say(format!(
            "generated {} ({} packets, {:.1} MB) in {:.2} s",
            pcap.display(),
            tr.total_packets,
            fs::metadata(&pcap)?.len() as f64 / 1e6,
            t.elapsed().as_secs_f64()
        ));
        pcaps.push(pcap);
        truth = Some(tr);
    }
    let truth = truth.context("no day generated")?;
    fs::write(dir.join("ground-truth.json"), serde_json::to_string_pretty(&truth)?)?;

    // 2. Ingest them exactly as a user's captures would be.
    let mut ingest_cfg = global.config.ingest();
    ingest_cfg.writer.sensor = "demo".into();
    let (stats, secs, unreadable) = crate::ingest::ingest_files(&dir, ingest_cfg, &pcaps, global.quiet)?;
    if unreadable > 0 {
        bail!("the generated capture could not be read");
    }
    if !global.quiet {
        print!("{}", crate::ingest::summary(&stats, secs, &dir));
    }

    // 3. What was injected, and what the stored records show of it.
    let day = generator::DAY_NS;
    let first = cfg.start_ns;
    let baseline = TimeRange { from: Some(first), to: Some(first + day) };
    let scored = TimeRange { from: Some(first + day), to: Some(first + 2 * day) };
    let (flows, fskip) = read_all::<FlowRecord>(&dir, scored)?;
    let (dns, dskip) = read_all::<DnsRecord>(&dir, scored)?;
    let (base_flows, bfskip) = read_all::<FlowRecord>(&dir, baseline)?;
    let (base_dns, bdskip) = read_all::<DnsRecord>(&dir, baseline)?;
    if [&fskip, &dskip, &bfskip, &bdskip].iter().any(|s| !s.is_empty()) {
        bail!("demo segments unreadable: {:?} {:?} {:?} {:?}", fskip, dskip, bfskip, bdskip);
    }
    say(format!(
        "\nday 1 ({}): clean baseline, {} flows, {} DNS messages\nday 2 ({}): {} flows, {} DNS messages; injected anomalies and their footprint:",
        show_window(&baseline),
        base_flows.len(),
        base_dns.len(),
        show_window(&scored),
        flows.len(),
        dns.len()
    ));
    for a in &truth.anomalies {
        let ips: Vec<std::net::IpAddr> = a.ips.iter().filter_map(|s| s.parse().ok()).collect();
        let nflows = flows.iter().filter(|f| ips.contains(&f.src_ip) || ips.contains(&f.dst_ip)).count();
        let ndns = dns.iter().filter(|d| ips.contains(&d.client_ip) && a.domains.iter().any(|dom| d.qname.ends_with(dom.as_str()))).count();
        say(format!("  - {:<22} {} ({} flows, {} DNS messages involve it)", a.name, a.description, nflows, ndns));
    }

    // 4. Train and score flows and DNS two ways, and check both against the
    // ground truth: Spot's (train on day 2, score day 2 with P(w|host)) and
    // Osprey's default (train on the clean day 1, score day 2, blended).
    let t = Instant::now();
    let mut found = Vec::new();
    for (records, base) in [(Records::Flow(flows), Records::Flow(base_flows)), (Records::Dns(dns), Records::Dns(base_dns))] {
        found.extend(score_and_report(&dir, records, base, (&baseline, &scored), &truth, global.quiet)?);
    }
    say(format!("\ntraining and scoring took {:.2} s", t.elapsed().as_secs_f64()));
    say(format!(
        "\ninjected anomalies (for its most suspicious event: benign events scoring at least as low, ties counted against it; its rank among all events; its events with fewer benign events ahead than 1% of the day's events / its events).\nFOUND = fewer benign events ahead than 1% of day 2's events:\n  {:<14} {:<4} {:<44} {}",
        "anomaly", "kind", "Spot: train+score day 2, P(w|host)", "Osprey: train day 1, score day 2, blend"
    ));
    let mut missed = Vec::new();
    for a in &truth.anomalies {
        let get = |mode: Mode| found.iter().find(|f| f.name == a.name && f.kind == a.kind && f.mode == mode);
        match (get(Mode::Spot), get(Mode::Baseline)) {
            (Some(s), Some(b)) => {
                say(format!("  {:<14} {:<4} {:<44} {}", a.name, a.kind, s.verdict(), b.verdict()));
                if !b.found() {
                    missed.push(a.name.clone());
                }
            }
            _ => say(format!("  {:<14} {:<4} no stored event involves it", a.name, a.kind)),
        }
    }
    let spot_missed: Vec<&str> = truth
        .anomalies
        .iter()
        .filter(|a| found.iter().any(|f| f.name == a.name && f.mode == Mode::Spot && !f.found()))
        .map(|a| a.name.as_str())
        .collect();
    say(format!(
        "\nwith a baseline model: {}\nwith Spot's same-day model: {}",
        if missed.is_empty() { "every injected anomaly found".to_string() } else { format!("missed {}", missed.join(", ")) },
        if spot_missed.is_empty() { "every injected anomaly found".to_string() } else { format!("missed {}", spot_missed.join(", ")) },
    ));
    say(NOTES.to_string());
    say(format!(
        "\ndata: {}\n  captures      {}, {}\n  segments      {}/flow, {}/dns\n  models        {}/models\n  ranked        {}/ranked (day 2, baseline model)\n  ground truth  {}\n\ntry:\n  osprey top --data {} --kind flow -n 20\n  osprey top --data {} --kind dns --format spot-tsv\n  osprey score --data {} --kind dns --spot --scoring spot --tol 1",
        dir.display(),
        pcaps[0].display(),
        pcaps[1].display(),
        dir.display(),
        dir.display(),
        dir.display(),
        dir.display(),
        dir.join("ground-truth.json").display(),
        dir.display(),
        dir.display(),
        dir.display(),
    ));
    Ok(if stats.problems.is_empty() { Outcome::Clean } else { Outcome::Problems })
}

/// Why the two setups differ on this day, and what neither can see.
const NOTES: &str = "
why (word features as Spot builds them, spot-reference.md section 2):
  - a tunnel, beacon or DGA burst is hundreds of events of a few words from one host; trained on
    the same day, those words are that host's normal (P(w|host) is high): Spot's in-sample weakness.
    Trained on a clean day, the same words were never seen, so they score 0 (novel), and the few
    unseen words next to common ones (one hour or size bin away) are smoothed instead of tying at 0.
  - the tunnel's names end in .test, which Spot's parser does not know, so its subdomain length and
    entropy bins are 0: only class, frame size, hour, label count and TXT/NULL type describe it.
  - a DGA name such as xkqjwhd.com has no subdomain; its random label is the domain itself, which no
    Spot DNS field measures: the burst shows only as unpopular-domain NXDOMAIN lookups at one hour.
  - a compromise already active in the training window (a beacon running on day 1 too) would be
    learned as normal by any word-probability model; periodicity (regular inter-arrival times to one
    peer) is what would find it, and Osprey does not score that.";

/// The scoring setups the demo compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Spot's: train on the scored day, score it with P(w | host).
    Spot,
    /// Osprey's default: train on the day before, score with the blend.
    Baseline,
}

/// How one injected anomaly ranked.
#[derive(Debug)]
struct Found {
    name: String,
    kind: String,
    mode: Mode,
    /// Events involving the anomaly.
    events: usize,
    /// Best rank (1 = most suspicious) of those events among all events,
    /// counting ties pessimistically (an event tied with others ranks after
    /// all of them, whether they are benign or other anomalies' events).
    best_rank: u64,
    /// Fewest benign events (events of no injected anomaly) scoring at
    /// least as suspiciously as one of its events (ties count against it):
    /// the false positives an analyst reads, top down, before reaching it.
    benign_ahead: u64,
    /// Of the anomaly's events, how many have fewer than 1% of the events
    /// as benign events ahead.
    in_top_pct: usize,
    /// Rankable events.
    total: usize,
}

impl Found {
    fn cut(&self) -> u64 {
        (self.total as u64).div_ceil(100).max(1)
    }

    fn found(&self) -> bool {
        self.benign_ahead < self.cut()
    }

    fn verdict(&self) -> String {
        format!(
            "{}: {} benign ahead, rank {} ({}/{})",
            if self.found() { "FOUND" } else { "missed" },
            self.benign_ahead,
            self.best_rank,
            self.in_top_pct,
            self.events,
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
            ips.contains(&d[i].client_ip) && (a.domains.is_empty() || a.domains.iter().any(|dom| q.ends_with(dom.trim_end_matches('.'))))
        }
        Records::Proxy(_) => false,
    }
}

/// Whether record `i` belongs to any injected anomaly: [`involves`], plus
/// DNS lookups of an anomaly's domains by the hosts it shared (a resolver
/// forwarding the tunnel's queries is tunnel traffic, not a false positive).
fn anomalous(records: &Records, i: usize, anomalies: &[(&generator::Anomaly, Vec<std::net::IpAddr>)]) -> bool {
    anomalies.iter().any(|(a, ips)| {
        involves(records, i, a, ips)
            || match records {
                Records::Dns(d) => {
                    let q = d[i].qname.trim_end_matches('.');
                    a.shared_ips.iter().any(|s| s.parse::<std::net::IpAddr>().is_ok_and(|x| x == d[i].client_ip))
                        && a.domains.iter().any(|dom| q.ends_with(dom.trim_end_matches('.')))
                }
                _ => false,
            }
    })
}

/// Scores day 2 (`records`) both ways: Spot's (trained on day 2 itself,
/// [`Scoring::Spot`]) and Osprey's default (trained on the clean `baseline`
/// day, default scoring). Writes the default run's ranked segment, prints
/// its top findings, and returns how each anomaly of this kind ranked in both.
fn score_and_report(
    dir: &Path,
    records: Records,
    baseline: Records,
    (base_w, scored_w): (&TimeRange, &TimeRange),
    truth: &generator::GroundTruth,
    quiet: bool,
) -> Result<Vec<Found>> {
    let kind = records.kind();
    let trainer = Trainer::Gibbs(GibbsConfig::default());

    // Spot: train on the scored day, score it with Spot's formula and words.
    let settings = WordSettings::learn(&records, "", None, DomainRules::Spot);
    let (spot_model, _) = crate::train::train_records(&records, &settings, &trainer, scored_w)?;
    let spot_events = settings.events(&records);
    let spot = score_all_with(&spot_model, &spot_events, &FoldInConfig::for_model(&spot_model), Scoring::Spot);

    // Osprey: a model of the clean day, saved like `osprey train` saves one.
    let settings = WordSettings::learn(&baseline, "", None, DomainRules::default());
    let (model, st) = crate::train::train_records(&baseline, &settings, &trainer, base_w)?;
    let model_dir = dir.join("models").join(kind.as_str());
    fs::create_dir_all(&model_dir)?;
    let model_path = model_dir.join("demo-baseline-day.model");
    model.save(&model_path).with_context(|| format!("saving {}", model_path.display()))?;
    let run = RankedRun {
        kind,
        window: *scored_w,
        events_scored: records.len() as u64,
        threshold: 1.0,
        max_results: 1000,
        model: model_path.display().to_string(),
        mode: "model".into(),
        scoring: String::new(),
        model_id: String::new(),
        train_window: TimeRange::default(),
    };
    let out = crate::score::score_records(dir, records, &model, Scoring::default(), run)?;
    if !quiet {
        println!(
            "\n{kind}: trained {} K={} on day 1 ({}; {}), scored day 2's {} events; top findings:",
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
    let all: Vec<(&generator::Anomaly, Vec<std::net::IpAddr>)> =
        truth.anomalies.iter().map(|a| (a, a.ips.iter().filter_map(|s| s.parse().ok()).collect())).collect();
    let benign: Vec<bool> = (0..out.records.len()).map(|i| !anomalous(&out.records, i, &all)).collect();
    let mut found = Vec::new();
    for (mode, scores) in [(Mode::Spot, &spot.scores), (Mode::Baseline, &out.scored.scores)] {
        let standings = standings(scores);
        let total = rankable(scores);
        let cut = (total as u64).div_ceil(100).max(1);
        let mut benign_scores: Vec<f32> = scores.iter().zip(&benign).filter(|(s, b)| **b && !s.is_nan() && **s > -1.0).map(|(s, _)| *s).collect();
        benign_scores.sort_by(f32::total_cmp);
        for a in truth.anomalies.iter().filter(|a| a.kind == kind.as_str()) {
            let ips: Vec<std::net::IpAddr> = a.ips.iter().filter_map(|s| s.parse().ok()).collect();
            let mut f = Found {
                name: a.name.clone(),
                kind: a.kind.clone(),
                mode,
                events: 0,
                best_rank: u64::MAX,
                benign_ahead: u64::MAX,
                in_top_pct: 0,
                total,
            };
            for i in (0..out.records.len()).filter(|&i| involves(&out.records, i, a, &ips)) {
                f.events += 1;
                if let Some((better, ties)) = standings[i] {
                    f.best_rank = f.best_rank.min(better + ties + 1);
                    let ahead = benign_scores.partition_point(|&x| x <= scores[i]) as u64;
                    f.benign_ahead = f.benign_ahead.min(ahead);
                    if ahead < cut {
                        f.in_top_pct += 1;
                    }
                }
            }
            if f.events > 0 {
                found.push(f);
            }
        }
    }
    Ok(found)
}

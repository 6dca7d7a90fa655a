//! `osprey words`: export the LDA corpus (document, word, count) of a window,
//! so any other LDA tool can run on exactly the input `osprey train` uses.
//! Also holds what the scorer verbs share: the default window (the latest
//! UTC day holding records of the kind) and the word-creation options.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::{Args, ValueEnum};

use osprey_scorer::kinds::{Records, WordSettings};
use osprey_scorer::pipeline::corpus_from_events;
use osprey_scorer::words::domain::{DomainPopularity, DomainRules};
use osprey_segment::Kind;
use osprey_segment::partition::{TimeRange, list_segments};
use osprey_segment::time::{days_from_civil, rfc3339};

use crate::records::{KindArg, time_range};
use crate::{Global, Outcome, data_dir};

const NS_PER_DAY: i64 = 86_400_000_000_000;

/// Options of word creation (shared by `words`, `train` and `score --spot`).
#[derive(Debug, Clone, Args)]
pub struct WordArgs {
    /// The user's own domain label (Spot's USER_DOMAIN, e.g. `intel` for
    /// it.intel.com): its DNS names get top-domain class 2.
    #[arg(long, value_name = "LABEL", default_value = "")]
    pub user_domain: String,
    /// A Tranco/Alexa-style `rank,domain` CSV used as the popular-domain list
    /// instead of learning popularity from the data.
    #[arg(long, value_name = "FILE")]
    pub top_domains: Option<PathBuf>,
    /// How names are split into domain and subdomain: `spot` is Spot's
    /// parser, which gives names under an unlisted TLD (.info, .xyz, a
    /// private .test) no domain and no subdomain; `osprey` takes any last
    /// label as the TLD and strips co.uk-style registries (see BENCHMARKS.md
    /// for why it is not the default).
    #[arg(long, value_enum, default_value_t = DomainRulesArg::Spot)]
    pub domain_rules: DomainRulesArg,
}

/// `--domain-rules`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DomainRulesArg {
    /// Spot's parsing, quirks included (default).
    Spot,
    /// Any last label is the TLD, country-code registries stripped.
    Osprey,
}

impl From<DomainRulesArg> for DomainRules {
    fn from(a: DomainRulesArg) -> Self {
        match a {
            DomainRulesArg::Osprey => DomainRules::Osprey,
            DomainRulesArg::Spot => DomainRules::Spot,
        }
    }
}

impl WordArgs {
    /// Word settings for a training window.
    pub fn settings(&self, records: &Records) -> Result<WordSettings> {
        let list = match &self.top_domains {
            Some(p) => {
                let f = File::open(p).with_context(|| format!("opening {}", p.display()))?;
                let pop = DomainPopularity::from_rank_csv(std::io::BufReader::new(f))
                    .with_context(|| format!("reading {}", p.display()))?;
                Some((pop, p.display().to_string()))
            }
            None => None,
        };
        Ok(WordSettings::learn(records, &self.user_domain, list, self.domain_rules.into()))
    }
}

/// The UTC day `[start, start + 1 day)` of the latest partition holding
/// segments of `kind`.
pub fn latest_day(data: &Path, kind: Kind) -> Result<Option<TimeRange>> {
    let mut best: Option<i64> = None;
    for p in list_segments(data, kind)? {
        let parts: Vec<&str> = p.iter().rev().skip(1).take(4).filter_map(|s| s.to_str()).collect();
        let [_h, d, m, y] = parts.as_slice() else { continue };
        let (Ok(y), Ok(m), Ok(d)) = (y.parse::<i32>(), m.parse::<u32>(), d.parse::<u32>()) else { continue };
        let start = days_from_civil(y, m, d) * NS_PER_DAY;
        best = Some(best.map_or(start, |b: i64| b.max(start)));
    }
    Ok(best.map(|s| TimeRange { from: Some(s), to: Some(s + NS_PER_DAY) }))
}

/// `--from/--to` if either is given, else the latest day of `kind`.
pub fn window(data: &Path, kind: Kind, from: Option<&str>, to: Option<&str>) -> Result<TimeRange> {
    if from.is_some() || to.is_some() {
        return time_range(from, to);
    }
    latest_day(data, kind)?.ok_or_else(|| anyhow::anyhow!("no {kind} segments under {}", data.display()))
}

/// A window as text.
pub fn show_window(w: &TimeRange) -> String {
    let f = |t: Option<i64>, open: &str| t.map_or_else(|| open.to_string(), rfc3339);
    format!("[{}, {})", f(w.from, "-∞"), f(w.to, "+∞"))
}

/// Reads a window's records, warning about damaged segments.
pub fn read_window(data: &Path, kind: Kind, w: TimeRange) -> Result<(Records, bool)> {
    let (records, skipped) =
        Records::read(data, kind, w).with_context(|| format!("reading {kind} records under {}", data.display()))?;
    for s in &skipped {
        eprintln!("osprey: skipped damaged segment {}: {}", s.path.display(), s.reason);
    }
    Ok((records, skipped.is_empty()))
}

/// Corpus file format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CorpusFormat {
    /// `document<TAB>word<TAB>count` lines, no header.
    Tsv,
    /// Parquet with columns document, word, count.
    Parquet,
}

/// Arguments of `osprey words`.
#[derive(Debug, Args)]
pub struct WordsArgs {
    /// Data directory.
    #[arg(long, value_name = "DIR")]
    pub data: Option<PathBuf>,
    /// Which records.
    #[arg(long, value_enum)]
    pub kind: KindArg,
    /// Window start (RFC 3339 or YYYY-MM-DD); default: the latest day with data.
    #[arg(long, value_name = "TIME")]
    pub from: Option<String>,
    /// Window end (exclusive).
    #[arg(long, value_name = "TIME")]
    pub to: Option<String>,
    /// Output file (`-` for stdout, TSV only).
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// Output format.
    #[arg(long, value_enum, default_value = "tsv")]
    pub format: CorpusFormat,
    #[command(flatten)]
    pub words: WordArgs,
}

/// Runs `osprey words`.
pub fn run(global: &Global, args: WordsArgs) -> Result<Outcome> {
    let data = data_dir(global, args.data)?;
    let kind: Kind = args.kind.into();
    let w = window(&data, kind, args.from.as_deref(), args.to.as_deref())?;
    let (records, clean) = read_window(&data, kind, w)?;
    let settings = args.words.settings(&records)?;
    let events = settings.events(&records);
    let corpus = corpus_from_events(&events);
    if args.out.as_os_str() == "-" {
        anyhow::ensure!(args.format == CorpusFormat::Tsv, "only TSV can be written to stdout");
        corpus.write_tsv(BufWriter::new(std::io::stdout().lock()))?;
    } else {
        let f = File::create(&args.out).with_context(|| format!("creating {}", args.out.display()))?;
        let mut out = BufWriter::with_capacity(1 << 20, f);
        match args.format {
            CorpusFormat::Tsv => corpus.write_tsv(&mut out)?,
            CorpusFormat::Parquet => corpus.write_parquet(&mut out)?,
        }
        out.flush()?;
    }
    if !global.quiet {
        let s = corpus.stats();
        eprintln!(
            "{kind} corpus of {}: {} records, {} documents, {} words, {} (document, word) pairs, {} tokens{} -> {}",
            show_window(&w),
            records.len(),
            s.documents,
            s.vocabulary,
            s.entries,
            s.tokens,
            if s.dropped_errors > 0 { format!(" ({} word_error dropped)", s.dropped_errors) } else { String::new() },
            args.out.display()
        );
    }
    Ok(if clean { Outcome::Clean } else { Outcome::Problems })
}

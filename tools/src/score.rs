//! `osprey score`: score every event of a window with a trained model (or,
//! with `--spot`, train on the window and score it in one go, as Spot did;
//! `--scoring spot` keeps Spot's P(w|d), the default `blend` caps it with the
//! population score, see `osprey_scorer::score::Scoring`),
//! select and order them as Spot did (threshold, ascending score,
//! max-results), and write the ranked results as a segment under
//! `DIR/ranked/<kind>/`, with the run's provenance (scoring, model identity
//! and training window, threshold) in its metadata.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};
use clap::Args;

use osprey_scorer::kinds::{Records, WordSettings};
use osprey_scorer::model::Model;
use osprey_scorer::score::{FoldInConfig, RankConfig, Scored, Scoring, rank, score_all_with};
use osprey_segment::Kind;
use osprey_segment::partition::TimeRange;
use osprey_segment::ranked::{RankedRows, RankedRun, TOP_TOPICS, ranked_batch, write_ranked};

use crate::records::KindArg;
use crate::train::{ModelArgs, latest_model, speed_line, train_records};
use crate::words::{WordArgs, read_window, show_window, window};
use crate::{Global, Outcome, data_dir};

/// Arguments of `osprey score`.
#[derive(Debug, Args)]
pub struct ScoreArgs {
    /// Data directory.
    #[arg(long, value_name = "DIR")]
    pub data: Option<PathBuf>,
    /// Which records.
    #[arg(long, value_enum)]
    pub kind: KindArg,
    /// Window to score, start (RFC 3339 or YYYY-MM-DD); default: the latest day with data.
    #[arg(long, value_name = "TIME")]
    pub from: Option<String>,
    /// Window to score, end (exclusive).
    #[arg(long, value_name = "TIME")]
    pub to: Option<String>,
    /// Model file (default: the newest under DIR/models/<kind>/).
    #[arg(long, value_name = "FILE", conflicts_with = "spot")]
    pub model: Option<PathBuf>,
    /// Spot's behaviour: train on the scored window itself, then score it.
    #[arg(long)]
    pub spot: bool,
    /// Event score: `spot` is Spot's P(word | host); `blend` caps it with the
    /// word's probability across all hosts (each host weighted equally), so
    /// a word rare across hosts stays suspicious even when its own host uses
    /// it a lot (tunnels, DGA, beaconing).
    #[arg(long, value_enum, default_value_t = ScoringArg::Blend)]
    pub scoring: ScoringArg,
    /// Spot's threshold (TOL): keep events scoring at most this.
    #[arg(long, default_value_t = 1e-6)]
    pub tol: f64,
    /// Spot's MAXRESULTS: keep at most this many (-1: all).
    #[arg(long, default_value_t = -1, allow_negative_numbers = true)]
    pub max_results: i64,
    #[command(flatten)]
    pub train: ModelArgs,
    #[command(flatten)]
    pub words: WordArgs,
}

/// `--scoring`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ScoringArg {
    /// Spot's formula, unchanged: P(w | d).
    Spot,
    /// min(P(w | d), P_pop(w)).
    Blend,
}

impl From<ScoringArg> for Scoring {
    fn from(a: ScoringArg) -> Self {
        match a {
            ScoringArg::Spot => Scoring::Spot,
            ScoringArg::Blend => Scoring::Blend,
        }
    }
}

/// The name of a scoring in ranked files and output (`spot` or `blend`).
pub fn scoring_name(s: Scoring) -> &'static str {
    match s {
        Scoring::Spot => "spot",
        Scoring::Blend => "blend",
    }
}

/// What a scoring run produced.
#[derive(Debug)]
pub struct ScoreRun {
    /// The scored records.
    pub records: Records,
    /// Scores and what explains them.
    pub scored: Scored,
    /// Indices of the selected events, most suspicious first.
    pub selected: Vec<usize>,
    /// The ranked segment written.
    pub path: PathBuf,
}

/// Scores `records` with `model` and `scoring`, selects with `cfg`, and
/// writes the ranked segment.
pub fn score_records(data: &Path, records: Records, model: &Model, scoring: Scoring, run: RankedRun) -> Result<ScoreRun> {
    // The run's provenance comes from what is actually used here, so a
    // ranked file always names its model content, training window and scoring.
    let run = RankedRun {
        scoring: scoring_name(scoring).to_string(),
        model_id: model.id().context("model identity")?,
        train_window: TimeRange { from: model.meta.train_from_ns, to: model.meta.train_to_ns },
        ..run
    };
    let settings = WordSettings::from_model(model)?;
    let events = settings.events(&records);
    let scored = score_all_with(model, &events, &FoldInConfig::for_model(model), scoring);
    let selected = rank(&scored.scores, &RankConfig { threshold: run.threshold, max_results: run.max_results });
    let mut rows = RankedRows::default();
    for (r, &i) in selected.iter().enumerate() {
        let ex = scored.explain(model, i, TOP_TOPICS).context("a selected event has no words")?;
        let (ip, word) = &events[i][ex.pair];
        rows.rank.push(r as u64 + 1);
        rows.score.push(scored.scores[i]);
        rows.word.push(word.clone());
        rows.document.push(*ip);
        rows.topics.push(ex.topics);
    }
    let batch = ranked_batch(records.kind(), &records.batch_of(&selected)?, &rows)?;
    let path = write_ranked(data, "osprey", &run, &batch)?;
    Ok(ScoreRun { records, scored, selected, path })
}

/// Runs `osprey score`.
pub fn run(global: &Global, args: ScoreArgs) -> Result<Outcome> {
    let data = data_dir(global, args.data)?;
    let kind: Kind = args.kind.into();
    let w = window(&data, kind, args.from.as_deref(), args.to.as_deref())?;
    let say = |m: String| {
        if !global.quiet {
            println!("{m}");
        }
    };
    let t = Instant::now();
    let (records, clean) = read_window(&data, kind, w)?;
    anyhow::ensure!(!records.is_empty(), "no {kind} records in {}", show_window(&w));
    let (model, desc, mode) = if args.spot {
        let settings = args.words.settings(&records)?;
        let (m, st) = train_records(&records, &settings, &args.train.trainer(), &w)?;
        say(format!("trained on the scored window (Spot mode): {}", speed_line(&st)));
        (m, "trained on the scored window (--spot)".to_string(), "spot")
    } else {
        let path = match args.model {
            Some(p) => p,
            None => latest_model(&data, kind)?.ok_or_else(|| {
                anyhow::anyhow!(
                    "no model under {}/models/{kind}: run `osprey train --data {} --kind {kind}` first, or pass --model or --spot",
                    data.display(),
                    data.display()
                )
            })?,
        };
        let m = Model::load(&path).with_context(|| format!("loading model {}", path.display()))?;
        anyhow::ensure!(m.meta.kind == kind.as_str(), "{} is a {} model, not {kind}", path.display(), m.meta.kind);
        let tw = TimeRange { from: m.meta.train_from_ns, to: m.meta.train_to_ns };
        say(format!("model {} ({} K={}, trained on {})", path.display(), m.meta.trainer, m.meta.k, show_window(&tw)));
        (m, path.display().to_string(), "model")
    };
    let n = records.len();
    let run = RankedRun {
        kind,
        window: w,
        events_scored: n as u64,
        threshold: args.tol,
        max_results: args.max_results,
        model: desc,
        mode: mode.to_string(),
        scoring: String::new(),
        model_id: String::new(),
        train_window: TimeRange::default(),
    };
    let out = score_records(&data, records, &model, args.scoring.into(), run)?;
    say(format!(
        "scored {n} {kind} events of {} in {:.2} s ({} scoring, {} documents folded in); {} selected (score <= {}{}) -> {}",
        show_window(&w),
        t.elapsed().as_secs_f64(),
        match args.scoring {
            ScoringArg::Spot => "Spot's",
            ScoringArg::Blend => "blended",
        },
        out.scored.folded.len(),
        out.selected.len(),
        args.tol,
        if args.max_results > 0 { format!(", at most {}", args.max_results) } else { String::new() },
        out.path.display()
    ));
    Ok(if clean { Outcome::Clean } else { Outcome::Problems })
}

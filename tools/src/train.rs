//! `osprey train`: build the corpus of a training window, train LDA (the
//! fast Gibbs sampler or Spot's MAP-EM), report held-out document-completion
//! log-likelihood and speed, and save a versioned model file.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::{Args, ValueEnum};

use osprey_scorer::corpus::Corpus;
use osprey_scorer::heldout::{document_completion, split_documents};
use osprey_scorer::kinds::{Records, WordSettings};
use osprey_scorer::lda::TrainStats;
use osprey_scorer::lda::em::EmConfig;
use osprey_scorer::lda::gibbs::GibbsConfig;
use osprey_scorer::model::Model;
use osprey_scorer::pipeline::{Trainer, corpus_from_events, train_model};
use osprey_scorer::score::FoldInConfig;
use osprey_segment::Kind;
use osprey_segment::partition::TimeRange;
use osprey_segment::time::civil;

use crate::records::KindArg;
use crate::words::{WordArgs, read_window, show_window, window};
use crate::{Global, Outcome, data_dir};

/// Which trainer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TrainerArg {
    /// Multi-threaded collapsed Gibbs sampling (default).
    Gibbs,
    /// Spark MLlib's MAP-EM, as Spot ran it.
    SpotEm,
}

/// Options of the topic model (shared by `train` and `score --spot`).
#[derive(Debug, Clone, Args)]
pub struct ModelArgs {
    /// Number of topics K.
    #[arg(long, default_value_t = 20)]
    pub topics: usize,
    /// Trainer.
    #[arg(long, value_enum, default_value = "gibbs")]
    pub trainer: TrainerArg,
    /// Sweeps (gibbs, default 100) or EM iterations (spot-em, default 20).
    #[arg(long)]
    pub iterations: Option<usize>,
    /// Random seed (a run is reproducible for a given seed and thread count).
    #[arg(long, default_value_t = 0x05B0_7E57)]
    pub seed: u64,
    /// Training threads (0: all cores).
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
    /// Document–topic prior (default: gibbs 0.02, spot-em 1.02; see the scorer docs).
    #[arg(long)]
    pub alpha: Option<f64>,
    /// Topic–word prior (default: gibbs 0.001, spot-em 1.001).
    #[arg(long)]
    pub eta: Option<f64>,
}

impl ModelArgs {
    /// The trainer configuration.
    pub fn trainer(&self) -> Trainer {
        match self.trainer {
            TrainerArg::Gibbs => {
                let d = GibbsConfig::default();
                Trainer::Gibbs(GibbsConfig {
                    k: self.topics,
                    alpha: self.alpha.unwrap_or(d.alpha),
                    eta: self.eta.unwrap_or(d.eta),
                    iterations: self.iterations.unwrap_or(d.iterations),
                    seed: self.seed,
                    threads: self.threads,
                })
            }
            TrainerArg::SpotEm => {
                let d = EmConfig::default();
                Trainer::SpotEm(EmConfig {
                    k: self.topics,
                    alpha: self.alpha.unwrap_or(d.alpha),
                    eta: self.eta.unwrap_or(d.eta),
                    iterations: self.iterations.unwrap_or(d.iterations),
                    seed: self.seed,
                    threads: self.threads,
                })
            }
        }
    }
}

/// Arguments of `osprey train`.
#[derive(Debug, Args)]
pub struct TrainArgs {
    /// Data directory.
    #[arg(long, value_name = "DIR")]
    pub data: Option<PathBuf>,
    /// Which records.
    #[arg(long, value_enum)]
    pub kind: KindArg,
    /// Training window start (RFC 3339 or YYYY-MM-DD); default: the latest day with data.
    #[arg(long, value_name = "TIME")]
    pub train_from: Option<String>,
    /// Training window end (exclusive).
    #[arg(long, value_name = "TIME")]
    pub train_to: Option<String>,
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub words: WordArgs,
    /// Where to save the model (default: DIR/models/<kind>/<window>-<trainer>-k<K>.model).
    #[arg(long = "model", value_name = "FILE")]
    pub model_file: Option<PathBuf>,
    /// Fraction of documents held out to report document-completion
    /// log-likelihood (an extra training run on the rest); 0 disables.
    #[arg(long, default_value_t = 0.1)]
    pub heldout: f64,
    /// Train on a corpus file (`osprey words` TSV) instead of records;
    /// `--data` is then only used for the default model path.
    #[arg(long, value_name = "FILE")]
    pub corpus: Option<PathBuf>,
}

/// The trainer's name as in model files.
pub fn trainer_name(t: &Trainer) -> &'static str {
    match t {
        Trainer::Gibbs(_) => "gibbs",
        Trainer::SpotEm(_) => "spot-em",
    }
}

fn stamp(ts: Option<i64>) -> String {
    ts.map_or_else(
        || "open".to_string(),
        |t| {
            let c = civil(t);
            format!("{:04}{:02}{:02}T{:02}{:02}", c.year, c.month, c.day, c.hour, c.minute)
        },
    )
}

/// The default model path of a training run.
pub fn default_model_path(data: &Path, kind: Kind, w: &TimeRange, trainer: &Trainer, k: usize) -> PathBuf {
    data.join("models")
        .join(kind.as_str())
        .join(format!("{}_{}-{}-k{k}.model", stamp(w.from), stamp(w.to), trainer_name(trainer)))
}

/// The most recently written model of `kind` under `DIR/models/<kind>/`.
pub fn latest_model(data: &Path, kind: Kind) -> Result<Option<PathBuf>> {
    let dir = data.join("models").join(kind.as_str());
    if !dir.is_dir() {
        return Ok(None);
    }
    let mut best: Option<(std::time::SystemTime, PathBuf)> = None;
    for e in std::fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))? {
        let e = e?;
        let p = e.path();
        if p.extension().is_some_and(|x| x == "model") {
            let t = e.metadata()?.modified()?;
            if best.as_ref().is_none_or(|(bt, bp)| (t, &p) > (*bt, bp)) {
                best = Some((t, p));
            }
        }
    }
    Ok(best.map(|(_, p)| p))
}

/// Trains a model on a corpus and attaches the word settings and window.
pub fn train_corpus(
    kind: Kind,
    corpus: &Corpus,
    trainer: &Trainer,
    settings: &WordSettings,
    w: &TimeRange,
) -> Result<(Model, TrainStats)> {
    let (mut model, stats) = train_model(kind, corpus, trainer, (w.from, w.to)).context("training")?;
    model.meta.settings = settings.to_settings();
    Ok((model, stats))
}

/// Trains on a window's records (what `score --spot` and the demo use).
pub fn train_records(
    records: &Records,
    settings: &WordSettings,
    trainer: &Trainer,
    w: &TimeRange,
) -> Result<(Model, TrainStats)> {
    let corpus = corpus_from_events(&settings.events(records));
    anyhow::ensure!(corpus.num_tokens() > 0, "no {} words to train on in {}", records.kind(), show_window(w));
    train_corpus(records.kind(), &corpus, trainer, settings, w)
}

/// One line on a training run's speed.
pub fn speed_line(s: &TrainStats) -> String {
    let tis = s.token_iterations_per_sec();
    format!(
        "{} tokens x {} iterations in {:.2} s on {} thread(s): {:.2} M token-iterations/s ({:.2} M per thread)",
        s.tokens,
        s.iterations,
        s.seconds,
        s.threads,
        tis / 1e6,
        tis / 1e6 / s.threads.max(1) as f64
    )
}

/// Runs `osprey train`.
pub fn run(global: &Global, args: TrainArgs) -> Result<Outcome> {
    let kind: Kind = args.kind.into();
    let trainer = args.model.trainer();
    let (corpus, settings, w, clean, data) = if let Some(path) = &args.corpus {
        let f = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
        let corpus = Corpus::read_tsv(std::io::BufReader::new(f)).with_context(|| format!("reading {}", path.display()))?;
        let data = args.data.clone().or_else(|| global.config.data.dir.clone());
        (corpus, WordSettings::default(), TimeRange::default(), true, data)
    } else {
        let data = data_dir(global, args.data.clone())?;
        let w = window(&data, kind, args.train_from.as_deref(), args.train_to.as_deref())?;
        let (records, clean) = read_window(&data, kind, w)?;
        let settings = args.words.settings(&records)?;
        let corpus = corpus_from_events(&settings.events(&records));
        (corpus, settings, w, clean, Some(data))
    };
    anyhow::ensure!(corpus.num_tokens() > 0, "no {kind} words to train on in {}", show_window(&w));
    let s = corpus.stats();
    let say = |m: String| {
        if !global.quiet {
            println!("{m}");
        }
    };
    say(format!(
        "{kind} corpus {}: {} documents, {} words, {} tokens",
        if args.corpus.is_some() { "from file".to_string() } else { show_window(&w) },
        s.documents,
        s.vocabulary,
        s.tokens
    ));
    if args.heldout > 0.0 {
        anyhow::ensure!(args.heldout < 1.0, "--heldout must be in [0, 1)");
        let (train, test) = split_documents(&corpus, args.heldout, args.model.seed);
        if train.num_tokens() > 0 && test.num_tokens() > 0 {
            let (m, st) = train_corpus(kind, &train, &trainer, &settings, &w)?;
            let h = document_completion(&m, &test, &FoldInConfig::for_model(&m));
            say(format!(
                "held-out log-likelihood (document completion, {} of {} documents held out): {:.4} per token over {} tokens ({} tokens of unseen words skipped); that run: {}",
                test.docs.len(),
                corpus.docs.len(),
                h.mean_log_likelihood,
                h.tokens,
                h.unseen_tokens,
                speed_line(&st)
            ));
        } else {
            say("held-out log-likelihood: corpus too small to hold documents out".to_string());
        }
    }
    let (model, stats) = train_corpus(kind, &corpus, &trainer, &settings, &w)?;
    let m = &model.meta;
    say(format!(
        "trained {} K={} alpha={} eta={}: {}",
        m.trainer,
        m.k,
        m.alpha,
        m.eta,
        speed_line(&stats)
    ));
    if let Some(ll) = m.mean_log_likelihood {
        say(format!("training log-likelihood: {ll:.4} per token"));
    }
    let path = match (&args.model_file, &data) {
        (Some(p), _) => p.clone(),
        (None, Some(d)) => default_model_path(d, kind, &w, &trainer, args.model.topics),
        (None, None) => anyhow::bail!("pass --model FILE (or --data DIR for the default path)"),
    };
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    }
    model.save(&path).with_context(|| format!("saving {}", path.display()))?;
    say(format!("model: {} ({:.1} MB)", path.display(), std::fs::metadata(&path)?.len() as f64 / 1e6));
    Ok(if clean { Outcome::Clean } else { Outcome::Problems })
}

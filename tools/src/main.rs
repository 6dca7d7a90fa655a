//! `osprey`: the command-line tool. `main` only parses arguments, sets up
//! logging and configuration, and dispatches to one module per verb.
//!
//! Exit codes: 0 = success; 1 = the command ran but some input was damaged or
//! skipped (the summary says which); 2 = the command could not run (usage,
//! configuration, I/O error).

mod capture;
mod config;
mod demo;
mod export;
mod ingest;
mod records;
mod score;
mod top;
mod train;
mod words;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::Config;

/// Osprey finds the few suspicious connections among billions of flow and DNS
/// events: capture or ingest telemetry into Arrow segments, then score and triage.
#[derive(Debug, Parser)]
#[command(name = "osprey", version, about, long_about = None, propagate_version = true)]
#[command(after_help = "Exit codes: 0 success, 1 finished but some input was damaged or skipped, 2 error.\n\
Configuration: --config FILE (TOML) or OSPREY_CONFIG; any field can be overridden with\n\
OSPREY_<SECTION>__<FIELD>, e.g. OSPREY_FLOW__IDLE_TIMEOUT_SECS=30. Logs: RUST_LOG=debug.")]
struct Cli {
    /// TOML configuration file.
    #[arg(long, global = true, env = "OSPREY_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,

    /// Only print errors (no progress bar, no summary).
    #[arg(long, short, global = true)]
    quiet: bool,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Read capture files (or other telemetry) into flow and DNS segments.
    #[command(subcommand)]
    Ingest(ingest::IngestCommand),
    /// Print stored records as JSON lines or CSV.
    Records(records::RecordsArgs),
    /// Write stored records in another format.
    #[command(subcommand)]
    Export(export::ExportCommand),
    /// Export the LDA corpus (document, word, count) of a window as TSV or Parquet.
    Words(words::WordsArgs),
    /// Train a topic model on a window and save it.
    Train(train::TrainArgs),
    /// Score a window's events with a model and write ranked results.
    Score(score::ScoreArgs),
    /// Print the most suspicious events of the latest scoring run.
    Top(top::TopArgs),
    /// Capture an interface live into flow and DNS segments until SIGINT/SIGTERM,
    /// serving Prometheus metrics.
    Capture(capture::CaptureArgs),
    /// Generate a synthetic office day with injected anomalies, ingest it and report.
    Demo(demo::DemoArgs),
    /// Print the effective configuration (file + environment) as TOML.
    Config,
}

/// Outcome of a verb that ran: did it meet damaged or skipped input?
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Everything was read.
    Clean,
    /// Some input was damaged or skipped (exit code 1).
    Problems,
}

/// Settings every verb sees.
#[derive(Debug)]
pub struct Global {
    /// Effective configuration.
    pub config: Config,
    /// No progress or summary output.
    pub quiet: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(if cli.quiet { "error" } else { "warn" })),
        )
        .with_writer(std::io::stderr)
        .init();
    match run(cli) {
        Ok(Outcome::Clean) => ExitCode::SUCCESS,
        Ok(Outcome::Problems) => ExitCode::from(1),
        Err(e) => {
            // A closed pipe (`osprey records | head`) is not an error.
            if e.chain().any(|c| c.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)) {
                return ExitCode::SUCCESS;
            }
            eprintln!("osprey: error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<Outcome> {
    let config = Config::load(cli.config.as_deref(), std::env::vars())?;
    let global = Global { config, quiet: cli.quiet };
    match cli.command {
        Command::Ingest(cmd) => ingest::run(&global, cmd),
        Command::Records(args) => records::run(&global, args),
        Command::Export(cmd) => export::run(&global, cmd),
        Command::Words(args) => words::run(&global, args),
        Command::Train(args) => train::run(&global, args),
        Command::Score(args) => score::run(&global, args),
        Command::Top(args) => top::run(&global, args),
        Command::Capture(args) => capture::run(&global, args),
        Command::Demo(args) => demo::run(&global, args),
        Command::Config => {
            print!("{}", toml::to_string_pretty(&global.config)?);
            Ok(Outcome::Clean)
        }
    }
}

/// The data directory: `--data`, else `[data] dir` from the configuration.
pub fn data_dir(global: &Global, flag: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    flag.or_else(|| global.config.data.dir.clone())
        .ok_or_else(|| anyhow::anyhow!("no data directory: pass --data DIR or set [data] dir in the configuration"))
}

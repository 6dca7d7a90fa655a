//! `osprey export parquet`: segments to Parquet, partitioned like the segments.

use std::path::PathBuf;

use anyhow::Result;
use clap::{Args, Subcommand, ValueEnum};

use osprey_segment::Kind;
use osprey_segment::export::{IpFormat, export_parquet};

use crate::records::KindArg;
use crate::{Global, Outcome, data_dir};

/// Export formats.
#[derive(Debug, Subcommand)]
pub enum ExportCommand {
    /// Write Parquet files (zstd) mirroring the segment layout:
    /// OUT/<kind>/YYYY/MM/DD/HH/<sensor>-<seq>.parquet.
    Parquet(ParquetArgs),
}

/// How IP columns are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum IpFormatArg {
    /// Text ("192.0.2.1"): readable by every engine.
    Text,
    /// 16 bytes, IPv4 as IPv4-mapped IPv6.
    Binary,
}

/// Arguments of `osprey export parquet`.
#[derive(Debug, Args)]
pub struct ParquetArgs {
    /// Data directory.
    #[arg(long, value_name = "DIR")]
    pub data: Option<PathBuf>,
    /// Which records (all kinds if omitted).
    #[arg(long, value_enum)]
    pub kind: Option<KindArg>,
    /// Output directory.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// How to write IP address columns.
    #[arg(long, value_enum, default_value = "text")]
    pub ip_format: IpFormatArg,
}

/// Runs `osprey export ...`.
pub fn run(global: &Global, cmd: ExportCommand) -> Result<Outcome> {
    let ExportCommand::Parquet(args) = cmd;
    let data = data_dir(global, args.data)?;
    anyhow::ensure!(data.is_dir(), "data directory {} does not exist", data.display());
    let kinds: Vec<Kind> = match args.kind {
        Some(k) => vec![k.into()],
        None => Kind::ALL.to_vec(),
    };
    let ip = match args.ip_format {
        IpFormatArg::Text => IpFormat::Text,
        IpFormatArg::Binary => IpFormat::Binary,
    };
    let mut outcome = Outcome::Clean;
    for kind in kinds {
        let s = export_parquet(&data, kind, &args.out, ip)?;
        if !global.quiet {
            eprintln!("{kind}: {} rows in {} Parquet file(s) under {}", s.rows, s.files.len(), args.out.display());
        }
        for sk in &s.skipped {
            eprintln!("osprey: skipped damaged segment {}: {}", sk.path.display(), sk.reason);
            outcome = Outcome::Problems;
        }
    }
    Ok(outcome)
}

//! `osprey records`: print stored records. Column names and value formats come
//! from the segment crate's schema and printer, so scripts can rely on them.

use std::io::{BufWriter, Write};
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Args, ValueEnum};

use osprey_segment::Kind;
use osprey_segment::partition::{DataReader, TimeRange};
use osprey_segment::print::{Format, RecordPrinter};
use osprey_segment::time::parse_rfc3339;

use crate::{Global, Outcome, data_dir};

/// A record kind on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum KindArg {
    /// Bidirectional flows.
    Flow,
    /// DNS messages.
    Dns,
    /// Proxy log lines.
    Proxy,
}

impl From<KindArg> for Kind {
    fn from(k: KindArg) -> Kind {
        match k {
            KindArg::Flow => Kind::Flow,
            KindArg::Dns => Kind::Dns,
            KindArg::Proxy => Kind::Proxy,
        }
    }
}

/// Output format on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FormatArg {
    /// One JSON object per line.
    Jsonl,
    /// CSV with a header line.
    Csv,
}

/// Arguments of `osprey records`.
#[derive(Debug, Args)]
pub struct RecordsArgs {
    /// Data directory.
    #[arg(long, value_name = "DIR")]
    pub data: Option<PathBuf>,
    /// Which records.
    #[arg(long, value_enum)]
    pub kind: KindArg,
    /// Output format.
    #[arg(long, value_enum, default_value = "jsonl")]
    pub format: FormatArg,
    /// Only records at or after this time (RFC 3339, or YYYY-MM-DD).
    #[arg(long, value_name = "TIME")]
    pub from: Option<String>,
    /// Only records before this time (RFC 3339, or YYYY-MM-DD).
    #[arg(long, value_name = "TIME")]
    pub to: Option<String>,
    /// Print at most this many records.
    #[arg(long, short = 'n')]
    pub limit: Option<u64>,
}

/// Parses `--from/--to` values.
pub fn time_range(from: Option<&str>, to: Option<&str>) -> Result<TimeRange> {
    let parse = |s: &str| parse_rfc3339(s).with_context(|| format!("{s:?} is not an RFC 3339 time or YYYY-MM-DD date"));
    Ok(TimeRange { from: from.map(parse).transpose()?, to: to.map(parse).transpose()? })
}

/// Runs `osprey records`.
pub fn run(global: &Global, args: RecordsArgs) -> Result<Outcome> {
    let data = data_dir(global, args.data)?;
    anyhow::ensure!(data.is_dir(), "data directory {} does not exist", data.display());
    let range = time_range(args.from.as_deref(), args.to.as_deref())?;
    let format = match args.format {
        FormatArg::Jsonl => Format::Jsonl,
        FormatArg::Csv => Format::Csv,
    };
    let mut reader = DataReader::open(&data, args.kind.into(), range)?;
    let stdout = std::io::stdout().lock();
    let mut printer = RecordPrinter::new(BufWriter::with_capacity(1 << 16, stdout), format);
    let mut left = args.limit.unwrap_or(u64::MAX);
    for batch in reader.by_ref() {
        if left == 0 {
            break;
        }
        let n = (batch.num_rows() as u64).min(left) as usize;
        printer.print_rows(&batch, 0..n)?;
        left -= n as u64;
    }
    printer.finish()?.flush()?;
    for s in reader.skipped() {
        eprintln!("osprey: skipped damaged segment {}: {}", s.path.display(), s.reason);
    }
    Ok(if reader.skipped().is_empty() { Outcome::Clean } else { Outcome::Problems })
}

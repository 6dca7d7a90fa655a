//! Osprey's record contract.
//!
//! This crate owns what every other part of Osprey agrees on, and nothing else:
//!
//! - [`records`]: the flow, DNS and proxy record types;
//! - [`schema`]: their Arrow schemas (the only definition of column names) and
//!   the conversions between records and record batches;
//! - [`segment`]: the segment file format (Arrow IPC, zstd-compressed buffers,
//!   metadata) with atomic writes and a reader that reports and skips damaged files;
//! - [`partition`]: where segments live on disk (`DATA/<kind>/YYYY/MM/DD/HH/`)
//!   and a writer that routes records into hourly partitions;
//! - [`ranked`]: the scorer's ranked results, stored as derived-table segments;
//! - [`print`](mod@print): rendering of any segment batch as JSON lines or CSV;
//! - [`export`]: Parquet export for Spark, DuckDB and pyarrow users;
//! - [`time`]: RFC 3339 formatting of nanosecond timestamps.
//!
//! It depends on Arrow and nothing of the capture engine, so the scorer and the
//! UI build and test without BPF.

pub mod export;
pub mod partition;
pub mod print;
pub mod ranked;
pub mod records;
pub mod schema;
pub mod segment;
pub mod time;

use std::path::PathBuf;

pub use records::{DnsAnswer, DnsRecord, DnsTransport, EndReason, FlowRecord, Kind, ProxyRecord};

/// Errors of the segment layer. Every I/O error names the file it concerns.
#[derive(Debug, thiserror::Error)]
pub enum SegmentError {
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory concerned.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// Arrow rejected data (corrupt IPC, bad compression, mismatched arrays).
    #[error("arrow: {0}")]
    Arrow(#[from] arrow_schema::ArrowError),
    /// Parquet writing failed.
    #[error("parquet: {0}")]
    Parquet(#[from] parquet::errors::ParquetError),
    /// A segment's content does not match the contract (schema, metadata, values).
    #[error("invalid segment: {0}")]
    Invalid(String),
}

impl SegmentError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        SegmentError::Io { path: path.into(), source }
    }
}

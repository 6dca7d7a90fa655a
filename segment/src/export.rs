//! Parquet export for Spark, DuckDB, Trino and pyarrow users.
//!
//! Each segment becomes one Parquet file at the same relative path
//! (`OUT/<kind>/YYYY/MM/DD/HH/<sensor>-<seq>.parquet`), zstd-compressed, so a
//! directory of exports is partitioned exactly like the segments. Column names
//! and types are the segment's, except that IP columns are written as text
//! (`"192.0.2.1"`, `"2001:db8::1"`) by default, because no engine has a
//! standard 16-byte IP type; `IpFormat::Binary` keeps the 16 bytes.
//! Files are written atomically (partial file, fsync, rename).

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::{Array, ArrayRef, ListArray, RecordBatch, StringArray, StructArray};
use arrow_schema::{DataType, Field, FieldRef, Fields, Schema};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;

use crate::SegmentError;
use crate::partition::{Skipped, list_segments};
use crate::records::Kind;
use crate::schema::{META_LOGICAL_TYPE, ip_from_bytes};
use crate::segment::{PARTIAL_SUFFIX, SegmentReader};

/// How IP columns are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IpFormat {
    /// Text (default): readable by every engine.
    #[default]
    Text,
    /// The stored 16 bytes (IPv4-mapped IPv6).
    Binary,
}

/// What an export did.
#[derive(Debug, Default)]
pub struct ExportSummary {
    /// Parquet files written.
    pub files: Vec<PathBuf>,
    /// Rows written.
    pub rows: u64,
    /// Segments that could not be exported, with reasons.
    pub skipped: Vec<Skipped>,
}

/// Exports every segment of `kind` under `data` to Parquet under `out`.
pub fn export_parquet(data: &Path, kind: Kind, out: &Path, ip: IpFormat) -> Result<ExportSummary, SegmentError> {
    let mut summary = ExportSummary::default();
    for seg in list_segments(data, kind)? {
        let rel = seg.strip_prefix(data).unwrap_or(&seg).with_extension("parquet");
        let dest = out.join(rel);
        match export_one(&seg, &dest, ip) {
            Ok(rows) => {
                summary.rows += rows;
                summary.files.push(dest);
            }
            Err(e) => summary.skipped.push(Skipped { path: seg, reason: e.to_string(), batches_read: 0 }),
        }
    }
    Ok(summary)
}

fn export_one(seg: &Path, dest: &Path, ip: IpFormat) -> Result<u64, SegmentError> {
    let mut reader = SegmentReader::open(seg)?;
    let mut batches = Vec::with_capacity(reader.num_batches());
    // Read the whole segment before writing anything, so a corrupt segment
    // produces no Parquet file at all rather than a silently short one.
    while let Some(b) = reader.next_batch() {
        batches.push(convert(&b?, ip)?);
    }
    let dir = dest.parent().ok_or_else(|| SegmentError::Invalid("export path has no parent".into()))?;
    fs::create_dir_all(dir).map_err(|e| SegmentError::io(dir, e))?;
    let partial = dest.with_extension(format!("parquet{PARTIAL_SUFFIX}"));
    let file = File::create(&partial).map_err(|e| SegmentError::io(&partial, e))?;
    let props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(3)?))
        .build();
    let schema = match batches.first() {
        Some(b) => b.schema(),
        None => Arc::new(convert_schema(&reader_schema(seg)?, ip)),
    };
    let mut w = ArrowWriter::try_new(file, schema, Some(props))?;
    let mut rows = 0u64;
    for b in &batches {
        w.write(b)?;
        rows += b.num_rows() as u64;
    }
    let file = w.into_inner()?;
    file.sync_all().map_err(|e| SegmentError::io(&partial, e))?;
    fs::rename(&partial, dest).map_err(|e| SegmentError::io(dest, e))?;
    Ok(rows)
}

fn reader_schema(seg: &Path) -> Result<Schema, SegmentError> {
    let kind = SegmentReader::open(seg)?.meta().kind;
    Ok(crate::schema::schema(kind).as_ref().clone())
}

fn is_ip(f: &Field) -> bool {
    f.metadata().get(META_LOGICAL_TYPE).is_some_and(|t| t == "ip")
}

fn convert_field(f: &Field, ip: IpFormat) -> Field {
    match f.data_type() {
        DataType::FixedSizeBinary(16) if ip == IpFormat::Text && is_ip(f) => {
            Field::new(f.name(), DataType::Utf8, f.is_nullable()).with_metadata(f.metadata().clone())
        }
        DataType::List(item) => Field::new(
            f.name(),
            DataType::List(Arc::new(convert_field(item, ip))),
            f.is_nullable(),
        ),
        DataType::Struct(children) => Field::new(
            f.name(),
            DataType::Struct(children.iter().map(|c| convert_field(c, ip)).collect::<Fields>()),
            f.is_nullable(),
        ),
        _ => f.clone(),
    }
}

fn convert_schema(s: &Schema, ip: IpFormat) -> Schema {
    Schema::new_with_metadata(
        s.fields().iter().map(|f| convert_field(f, ip)).collect::<Fields>(),
        s.metadata().clone(),
    )
}

fn convert_array(a: &ArrayRef, f: &Field, ip: IpFormat) -> Result<ArrayRef, SegmentError> {
    Ok(match f.data_type() {
        DataType::FixedSizeBinary(16) if ip == IpFormat::Text && is_ip(f) => {
            let b = a.as_fixed_size_binary();
            let s: StringArray =
                (0..b.len()).map(|i| b.is_valid(i).then(|| ip_from_bytes(b.value(i)).to_string())).collect();
            Arc::new(s)
        }
        DataType::List(item) => {
            let l = a.as_list::<i32>();
            let values = convert_array(l.values(), item, ip)?;
            let new_item: FieldRef = Arc::new(convert_field(item, ip));
            Arc::new(ListArray::try_new(new_item, l.offsets().clone(), values, l.nulls().cloned())?)
        }
        DataType::Struct(children) => {
            let s = a.as_struct();
            let cols = children
                .iter()
                .zip(s.columns())
                .map(|(c, col)| convert_array(col, c, ip))
                .collect::<Result<Vec<_>, _>>()?;
            let fields: Fields = children.iter().map(|c| convert_field(c, ip)).collect();
            Arc::new(StructArray::try_new(fields, cols, s.nulls().cloned())?)
        }
        _ => a.clone(),
    })
}

fn convert(b: &RecordBatch, ip: IpFormat) -> Result<RecordBatch, SegmentError> {
    let schema = b.schema();
    let cols = schema
        .fields()
        .iter()
        .zip(b.columns())
        .map(|(f, c)| convert_array(c, f, ip))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(RecordBatch::try_new(Arc::new(convert_schema(&schema, ip)), cols)?)
}

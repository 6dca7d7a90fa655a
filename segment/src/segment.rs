//! The segment file: one Arrow IPC file of one record kind, with
//! zstd-compressed buffers and Osprey metadata.
//!
//! Metadata lives in two places because of when it is known:
//! - the **schema metadata** (written first) holds what is fixed when the file
//!   is opened: `osprey.kind`, `osprey.schema_version`, `osprey.sensor`,
//!   `osprey.writer_version`;
//! - the **footer custom metadata** (written last) holds what is only known at
//!   the end: `osprey.record_count`, `osprey.ts_min`, `osprey.ts_max` (ns since
//!   the epoch, decimal), `osprey.data_len` + `osprey.data_crc32`: the length
//!   and CRC-32 (8 lowercase hex digits) of every byte before the end-of-stream
//!   marker (`FF FF FF FF 00 00 00 00`) that precedes the footer, and
//!   `osprey.meta_crc32`: the CRC-32 of those five footer values (see
//!   [`footer_meta_crc32`] for the exact bytes). Arrow IPC itself has no
//!   checksum, so without these a flipped bit in a compressed buffer or in the
//!   footer could decode to wrong values silently.
//!
//! # Reading
//!
//! Arrow's `FileReader` trusts the footer (block offsets and lengths), and a
//! damaged footer can make it panic. [`SegmentReader::open`] therefore checks
//! the whole file itself before arrow sees it:
//! 1. the framing: `ARROW1` at both ends and a footer length that fits;
//! 2. the footer, parsed with the *verified* flatbuffer accessor;
//! 3. `osprey.meta_crc32` over the footer values;
//! 4. `osprey.data_len` + 8 == where the footer starts, the 8 bytes between
//!    are the end-of-stream marker, and `osprey.data_crc32` matches the CRC-32
//!    of the first `osprey.data_len` bytes;
//! 5. the chain of IPC messages in that (now verified) data region: schema
//!    message first, every message framed, 8-byte aligned and in bounds, the
//!    last one ending exactly at `osprey.data_len`. The dictionary and
//!    record-batch blocks found this way must equal the footer's blocks, and
//!    the schema message must equal the footer's schema (with its metadata);
//! 6. `osprey.record_count` == the rows the record-batch headers declare.
//!
//! The schema metadata is thus protected by the data checksum (in the schema
//! message) and the equality of the footer's copy with it; the footer blocks
//! by their equality with the message chain; the footer values by
//! `osprey.meta_crc32`. Any mismatch is an [`SegmentError::Invalid`] naming
//! the file and the problem.
//!
//! Writes are atomic: data goes to a hidden `.<name>.partial` file in the
//! target directory, which is fsynced, then hard-linked to its final name
//! (which fails rather than replaces if that name exists), unlinked, and the
//! directory fsynced. A crash at any point leaves either no file under the
//! final name or a complete one; readers ignore `*.partial` files.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{BufWriter, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use arrow_array::RecordBatch;
use arrow_ipc::CompressionType;
use arrow_ipc::reader::FileReader;
use arrow_ipc::writer::{FileWriter, IpcWriteOptions};
use arrow_schema::Schema;

use crate::SegmentError;
use crate::records::{Kind, TimestampNs};
use crate::schema::{OLDEST_SCHEMA_VERSION, SCHEMA_VERSION, check_schema_version, older_columns, schema_of_version, upgrade_batch};

/// Extension of segment files.
pub const EXTENSION: &str = "arrow";
/// Suffix of files being written (never read).
pub const PARTIAL_SUFFIX: &str = ".partial";

const KEY_KIND: &str = "osprey.kind";
const KEY_SCHEMA_VERSION: &str = "osprey.schema_version";
const KEY_SENSOR: &str = "osprey.sensor";
const KEY_WRITER_VERSION: &str = "osprey.writer_version";
const KEY_RECORD_COUNT: &str = "osprey.record_count";
const KEY_TS_MIN: &str = "osprey.ts_min";
const KEY_TS_MAX: &str = "osprey.ts_max";
const KEY_DATA_LEN: &str = "osprey.data_len";
const KEY_DATA_CRC32: &str = "osprey.data_crc32";
const KEY_META_CRC32: &str = "osprey.meta_crc32";

/// The footer values covered by `osprey.meta_crc32`, in hashing order.
const META_CRC_KEYS: [&str; 5] = [KEY_RECORD_COUNT, KEY_TS_MIN, KEY_TS_MAX, KEY_DATA_LEN, KEY_DATA_CRC32];

/// The `osprey.meta_crc32` of a footer: CRC-32 over, for each of
/// `osprey.record_count`, `osprey.ts_min`, `osprey.ts_max`, `osprey.data_len`,
/// `osprey.data_crc32` in that order, the bytes `key NUL value NUL` (an absent
/// value as empty). `value` looks a footer value up by key.
pub fn footer_meta_crc32<'a>(value: impl Fn(&str) -> Option<&'a str>) -> u32 {
    let mut h = crc32fast::Hasher::new();
    for key in META_CRC_KEYS {
        h.update(key.as_bytes());
        h.update(&[0]);
        h.update(value(key).unwrap_or("").as_bytes());
        h.update(&[0]);
    }
    h.finalize()
}

/// Checks that `found` has exactly the columns (names, types, nullability)
/// of `want`, ignoring metadata.
fn check_same_columns(want: &Schema, found: &Schema) -> Result<(), SegmentError> {
    let same = want.fields().len() == found.fields().len()
        && want.fields().iter().zip(found.fields()).all(|(w, f)| {
            w.name() == f.name() && w.data_type() == f.data_type() && w.is_nullable() == f.is_nullable()
        });
    if same {
        Ok(())
    } else {
        let names = |s: &Schema| s.fields().iter().map(|f| format!("{} {}", f.name(), f.data_type())).collect::<Vec<_>>().join(", ");
        Err(SegmentError::Invalid(format!("columns [{}] do not match the expected [{}]", names(found), names(want))))
    }
}

/// zstd level of record-batch buffers. Level 1 rather than arrow's default 3:
/// each buffer is one column of one batch, and on flow records level 3 costs
/// ~25% more time for ~3% less size (shared captures, rows sorted by start:
/// 16.3 vs 15.7 B per flow; synthetic flows: 18.4 vs 18.8). Negative (fast)
/// levels were no faster on these buffers and 10-20% larger.
const ZSTD_LEVEL: i32 = 1;

/// Alignment of IPC messages and body buffers: 8 bytes, what the Arrow format
/// requires, rather than arrow-rs's default 64 (a recommendation for SIMD on
/// *uncompressed* buffers; compressed buffers are decompressed into fresh,
/// aligned memory anyway). Each of a record batch's ~30 buffers is padded to
/// it, so 64 cost up to ~2 KB per batch and made an almost empty segment 4 KB.
const IPC_ALIGNMENT: usize = 8;

/// What the writer puts in `osprey.writer_version`.
pub const WRITER_VERSION: &str = concat!("osprey-segment ", env!("CARGO_PKG_VERSION"));

/// A segment's metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentMeta {
    /// Record kind.
    pub kind: Kind,
    /// Column layout version.
    pub schema_version: u32,
    /// Name of the sensor (or ingest job) that wrote it.
    pub sensor: String,
    /// Software that wrote it.
    pub writer_version: String,
    /// Number of records.
    pub record_count: u64,
    /// Smallest record time (partition time: flow start, DNS/proxy ts), if any record.
    pub ts_min: Option<TimestampNs>,
    /// Largest record time, if any record.
    pub ts_max: Option<TimestampNs>,
}

/// Checks a sensor name: it becomes part of file names.
pub fn validate_sensor(sensor: &str) -> Result<(), SegmentError> {
    let ok = !sensor.is_empty()
        && sensor.len() <= 64
        && sensor.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.')
        && !sensor.starts_with('.');
    if ok {
        Ok(())
    } else {
        Err(SegmentError::Invalid(format!(
            "sensor name {sensor:?} must be 1-64 chars of [A-Za-z0-9_.], not starting with '.'"
        )))
    }
}

/// Writes one segment. Call [`SegmentWriter::finish`] to publish it; dropping
/// an unfinished writer removes its partial file.
pub struct SegmentWriter {
    kind: Kind,
    /// `None` for a record segment (columns = `schema(kind)`); the columns of
    /// a derived table otherwise.
    derived: Option<arrow_schema::SchemaRef>,
    /// Column layout version written (always [`SCHEMA_VERSION`] outside tests).
    version: u32,
    dir: PathBuf,
    sensor: String,
    partial: PathBuf,
    writer: Option<FileWriter<HashingWriter>>,
    records: u64,
    ts_min: Option<TimestampNs>,
    ts_max: Option<TimestampNs>,
}

impl SegmentWriter {
    /// Opens a new segment of `kind` in directory `dir` (created if missing).
    pub fn create(dir: &Path, kind: Kind, sensor: &str) -> Result<Self, SegmentError> {
        Self::create_inner(dir, kind, sensor, None, std::collections::HashMap::new(), SCHEMA_VERSION)
    }

    /// Opens a record segment in an older column layout, as an earlier
    /// Osprey wrote it: for tests of the readers' upgrade path only.
    #[doc(hidden)]
    pub fn create_older(dir: &Path, kind: Kind, sensor: &str, version: u32) -> Result<Self, SegmentError> {
        if !(OLDEST_SCHEMA_VERSION..=SCHEMA_VERSION).contains(&version) {
            return Err(SegmentError::Invalid(format!("no column layout version {version}")));
        }
        Self::create_inner(dir, kind, sensor, None, std::collections::HashMap::new(), version)
    }

    /// Opens a segment holding a table *derived* from `kind`'s records (for
    /// example the scorer's ranked results) with its own `columns`, written
    /// with the same atomic publication, checksums and footer as record
    /// segments. `extra` entries are added to the schema metadata (they must
    /// not use the `osprey.kind/schema_version/sensor/writer_version` keys).
    /// Read such files with [`SegmentReader::open_derived`]; the plain
    /// [`SegmentReader::open`] rejects them because their columns are not the kind's.
    pub fn create_derived(
        dir: &Path,
        kind: Kind,
        sensor: &str,
        columns: arrow_schema::SchemaRef,
        extra: std::collections::HashMap<String, String>,
    ) -> Result<Self, SegmentError> {
        Self::create_inner(dir, kind, sensor, Some(columns), extra, SCHEMA_VERSION)
    }

    fn create_inner(
        dir: &Path,
        kind: Kind,
        sensor: &str,
        derived: Option<arrow_schema::SchemaRef>,
        extra: std::collections::HashMap<String, String>,
        version: u32,
    ) -> Result<Self, SegmentError> {
        validate_sensor(sensor)?;
        fs::create_dir_all(dir).map_err(|e| SegmentError::io(dir, e))?;
        let partial = partial_path(dir, sensor);
        let file = File::create(&partial).map_err(|e| SegmentError::io(&partial, e))?;
        let mut meta = extra;
        meta.insert(KEY_KIND.to_string(), kind.as_str().to_string());
        meta.insert(KEY_SCHEMA_VERSION.to_string(), version.to_string());
        meta.insert(KEY_SENSOR.to_string(), sensor.to_string());
        meta.insert(KEY_WRITER_VERSION.to_string(), WRITER_VERSION.to_string());
        let fields = derived.as_ref().map_or_else(|| schema_of_version(kind, version).fields().clone(), |s| s.fields().clone());
        let sch = Schema::new_with_metadata(fields, meta);
        let options = IpcWriteOptions::try_new(IPC_ALIGNMENT, false, arrow_ipc::MetadataVersion::V5)
            .and_then(|o| o.try_with_compression(Some(CompressionType::ZSTD)))
            .and_then(|o| o.try_with_compression_level(Some(ZSTD_LEVEL)))
            .map_err(SegmentError::Arrow)?;
        let sink = HashingWriter { inner: BufWriter::with_capacity(1 << 20, file), hasher: crc32fast::Hasher::new(), len: 0 };
        let writer = FileWriter::try_new_with_options(sink, &sch, options).map_err(SegmentError::Arrow)?;
        Ok(SegmentWriter {
            kind,
            derived,
            version,
            dir: dir.to_path_buf(),
            sensor: sensor.to_string(),
            partial,
            writer: Some(writer),
            records: 0,
            ts_min: None,
            ts_max: None,
        })
    }

    /// The record kind.
    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// Records written so far.
    pub fn records(&self) -> u64 {
        self.records
    }

    /// Appends a batch whose schema is the kind's schema; `ts_range` is the
    /// smallest and largest partition time in it (for the footer metadata).
    pub fn write(&mut self, batch: &RecordBatch, ts_range: Option<(TimestampNs, TimestampNs)>) -> Result<(), SegmentError> {
        match &self.derived {
            None => check_schema_version(self.kind, self.version, &batch.schema())?,
            Some(cols) => check_same_columns(cols, &batch.schema())?,
        }
        let w = self.writer.as_mut().ok_or_else(|| SegmentError::Invalid("segment already finished".into()))?;
        // The batch's own schema lacks the segment metadata; re-wrap it.
        let b = RecordBatch::try_new(w.schema().clone(), batch.columns().to_vec())?;
        w.write(&b)?;
        self.records += batch.num_rows() as u64;
        if let Some((lo, hi)) = ts_range {
            self.ts_min = Some(self.ts_min.map_or(lo, |m| m.min(lo)));
            self.ts_max = Some(self.ts_max.map_or(hi, |m| m.max(hi)));
        }
        Ok(())
    }

    /// Bytes of the file so far (compressed batches; the footer comes on top).
    pub fn bytes_written(&self) -> u64 {
        self.writer.as_ref().map_or(0, |w| w.get_ref().len)
    }

    /// Writes the footer, fsyncs and publishes the segment under
    /// `<sensor>-<seq>.arrow` with the lowest free `seq` in the directory.
    /// Returns the final path.
    pub fn finish(mut self) -> Result<PathBuf, SegmentError> {
        let mut w = self.writer.take().ok_or_else(|| SegmentError::Invalid("segment already finished".into()))?;
        // Everything written so far (all messages) is covered by the data
        // checksum; `finish` then writes the 8-byte end-of-stream marker and
        // the footer that carries the checksum.
        let mut footer = std::collections::BTreeMap::new();
        footer.insert(KEY_RECORD_COUNT, self.records.to_string());
        if let (Some(lo), Some(hi)) = (self.ts_min, self.ts_max) {
            footer.insert(KEY_TS_MIN, lo.to_string());
            footer.insert(KEY_TS_MAX, hi.to_string());
        }
        let (len, crc) = (w.get_ref().len, w.get_ref().hasher.clone().finalize());
        footer.insert(KEY_DATA_LEN, len.to_string());
        footer.insert(KEY_DATA_CRC32, format!("{crc:08x}"));
        let meta_crc = footer_meta_crc32(|k| footer.get(k).map(String::as_str));
        footer.insert(KEY_META_CRC32, format!("{meta_crc:08x}"));
        for (k, v) in footer {
            w.write_metadata(k, v);
        }
        w.finish()?;
        let buf = w.into_inner()?.inner;
        let file = buf.into_inner().map_err(|e| SegmentError::io(&self.partial, e.into_error()))?;
        file.sync_all().map_err(|e| SegmentError::io(&self.partial, e))?;
        drop(file);
        publish(&self.partial, &self.dir, &self.sensor, EXTENSION)
    }
}

impl std::fmt::Debug for SegmentWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SegmentWriter")
            .field("kind", &self.kind)
            .field("partial", &self.partial)
            .field("records", &self.records)
            .finish()
    }
}

impl Drop for SegmentWriter {
    fn drop(&mut self) {
        if self.writer.is_some() {
            // Abandoned (error path or panic): the partial file is not a segment.
            let _ = fs::remove_file(&self.partial);
        }
    }
}

/// Counts and checksums every byte on its way to the file.
struct HashingWriter {
    inner: BufWriter<File>,
    hasher: crc32fast::Hasher,
    len: u64,
}

impl std::io::Write for HashingWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.len += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// A name part no other writer (in this or another process) is using.
fn next_unique() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("{}-{nanos}-{}", std::process::id(), COUNTER.fetch_add(1, Ordering::Relaxed))
}

/// `<sensor>-<seq>.arrow`, seq zero-padded to 6 digits so names sort.
pub fn segment_file_name(sensor: &str, seq: u64) -> String {
    file_name(sensor, seq, EXTENSION)
}

fn file_name(sensor: &str, seq: u64, extension: &str) -> String {
    format!("{sensor}-{seq:06}.{extension}")
}

/// A fresh hidden name in `dir` to write a segment of `sensor` under until
/// [`publish`] gives it its final name. Readers never list such files, and a
/// crashed writer's leftovers are recognisable by [`PARTIAL_SUFFIX`].
pub fn partial_path(dir: &Path, sensor: &str) -> PathBuf {
    dir.join(format!(".{sensor}-{}{PARTIAL_SUFFIX}", next_unique()))
}

/// Publishes a complete, already fsynced file written at `partial` (in `dir`)
/// as `<sensor>-<seq>.<extension>` with the lowest free `seq`, then removes the
/// partial name and fsyncs the directory. The final name is taken by a hard
/// link, which fails if the name exists: a published file is never replaced,
/// even by a concurrent writer using the same sensor name. Every kind of
/// segment file (Arrow, pcapng) is published this way.
pub fn publish(partial: &Path, dir: &Path, sensor: &str, extension: &str) -> Result<PathBuf, SegmentError> {
    let mut seq = next_seq(dir, sensor, extension)?;
    let final_path = loop {
        let candidate = dir.join(file_name(sensor, seq, extension));
        match fs::hard_link(partial, &candidate) {
            Ok(()) => break candidate,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => seq += 1,
            Err(e) => return Err(SegmentError::io(&candidate, e)),
        }
    };
    fs::remove_file(partial).map_err(|e| SegmentError::io(partial, e))?;
    sync_dir(dir)?;
    Ok(final_path)
}

/// Parses `<sensor>-<seq>.arrow` into its parts.
pub fn parse_segment_file_name(name: &str) -> Option<(&str, u64)> {
    parse_file_name(name, EXTENSION)
}

fn parse_file_name<'a>(name: &'a str, extension: &str) -> Option<(&'a str, u64)> {
    let stem = name.strip_suffix(extension)?.strip_suffix('.')?;
    let (sensor, seq) = stem.rsplit_once('-')?;
    Some((sensor, seq.parse().ok()?))
}

fn next_seq(dir: &Path, sensor: &str, extension: &str) -> Result<u64, SegmentError> {
    let mut max = 0;
    for entry in fs::read_dir(dir).map_err(|e| SegmentError::io(dir, e))? {
        let entry = entry.map_err(|e| SegmentError::io(dir, e))?;
        if let Some(name) = entry.file_name().to_str()
            && let Some((s, seq)) = parse_file_name(name, extension)
            && s == sensor
        {
            max = max.max(seq);
        }
    }
    Ok(max + 1)
}

fn sync_dir(dir: &Path) -> Result<(), SegmentError> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(|e| SegmentError::io(dir, e))
}

/// An open segment, validated: intact framing, footer and data (checksums),
/// footer consistent with the messages, known schema version, the kind's exact
/// columns.
#[derive(Debug)]
pub struct SegmentReader {
    path: PathBuf,
    meta: SegmentMeta,
    reader: FileReader<File>,
    next_batch: usize,
}

impl SegmentReader {
    /// Opens and validates a segment (see the [module docs](self) for what is
    /// checked). Errors say what is wrong with which file.
    pub fn open(path: &Path) -> Result<Self, SegmentError> {
        Self::open_inner(path, None)
    }

    /// Opens and validates a derived-table segment (written by
    /// [`SegmentWriter::create_derived`]) whose columns must be `columns`
    /// (names and types; metadata ignored). The same checks as
    /// [`SegmentReader::open`] apply otherwise.
    pub fn open_derived(path: &Path, columns: &Schema) -> Result<Self, SegmentError> {
        Self::open_inner(path, Some(columns))
    }

    /// The file's schema as written (an older layout keeps its column types;
    /// [`SegmentReader::next_batch`] upgrades the batches), with its metadata
    /// (including a derived table's extra entries).
    pub fn schema(&self) -> arrow_schema::SchemaRef {
        self.reader.schema()
    }

    fn open_inner(path: &Path, derived: Option<&Schema>) -> Result<Self, SegmentError> {
        let bad = |m: String| SegmentError::Invalid(format!("{}: {m}", path.display()));
        let mut file = File::open(path).map_err(|e| SegmentError::io(path, e))?;
        let len = file.metadata().map_err(|e| SegmentError::io(path, e))?.len();
        // Everything arrow's reader will trust is checked first: it panics on
        // some malformed footers instead of returning an error.
        let checked = validate(&mut file, len).map_err(|f| match f {
            Fault::Io(e) => SegmentError::io(path, e),
            Fault::Bad(m) => bad(m),
        })?;
        let meta = read_meta(&checked).map_err(bad)?;
        // An older layout is checked as it was written and upgraded batch
        // by batch in `next_batch`.
        match derived {
            None => check_schema_version(meta.kind, meta.schema_version, &checked.schema),
            Some(cols) => check_same_columns(&older_columns(meta.kind, meta.schema_version, cols), &checked.schema),
        }
        .map_err(|e| bad(e.to_string()))?;
        file.seek(SeekFrom::Start(0)).map_err(|e| SegmentError::io(path, e))?;
        let reader = FileReader::try_new(file, None).map_err(|e| bad(e.to_string()))?;
        if reader.num_batches() != checked.batches.len() || *reader.schema() != checked.schema {
            // Only possible if the file changed while being opened.
            return Err(bad("file changed while being opened".into()));
        }
        Ok(SegmentReader { path: path.to_path_buf(), meta, reader, next_batch: 0 })
    }

    /// The segment's metadata.
    pub fn meta(&self) -> &SegmentMeta {
        &self.meta
    }

    /// The file path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Number of record batches in the file.
    pub fn num_batches(&self) -> usize {
        self.reader.num_batches()
    }

    /// Reads the next batch, in the current layout whatever version wrote
    /// it; `None` at the end. A damaged batch is an error naming the file and
    /// batch index.
    pub fn next_batch(&mut self) -> Option<Result<RecordBatch, SegmentError>> {
        let idx = self.next_batch;
        self.next_batch += 1;
        match self.reader.next()? {
            Ok(b) => Some(
                upgrade_batch(self.meta.kind, self.meta.schema_version, b)
                    .map_err(|e| SegmentError::Invalid(format!("{}: batch {idx}: {e}", self.path.display()))),
            ),
            Err(e) => {
                // After a bad batch the reader's position is unreliable: stop.
                self.next_batch = usize::MAX;
                Some(Err(SegmentError::Invalid(format!("{}: batch {idx}: {e}", self.path.display()))))
            }
        }
    }
}

/// Why a segment failed validation.
enum Fault {
    /// Reading the file failed.
    Io(std::io::Error),
    /// The content is wrong: what is wrong.
    Bad(String),
}

impl From<std::io::Error> for Fault {
    fn from(e: std::io::Error) -> Self {
        Fault::Io(e)
    }
}

impl From<String> for Fault {
    fn from(m: String) -> Self {
        Fault::Bad(m)
    }
}

impl From<&str> for Fault {
    fn from(m: &str) -> Self {
        Fault::Bad(m.to_string())
    }
}

fn fail<T>(m: impl Into<String>) -> Result<T, Fault> {
    Err(Fault::Bad(m.into()))
}

/// A message's place in the file as the footer records it:
/// (offset, metadata length incl. the 8-byte prefix and padding, body length).
type BlockPos = (i64, i32, i64);

/// What [`validate`] established about a segment.
struct Checked {
    /// The schema (message and footer agree), with its metadata.
    schema: Schema,
    /// The footer custom metadata (checksum-verified).
    footer: BTreeMap<String, String>,
    /// Record-batch blocks (message chain and footer agree).
    batches: Vec<BlockPos>,
    /// Rows the record-batch headers declare.
    rows: u64,
}

const MAGIC: &[u8; 6] = b"ARROW1";
const CONTINUATION: [u8; 4] = [0xff; 4];
/// The end-of-stream marker arrow writes between the last message and the footer.
const EOS: [u8; 8] = [0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0];
/// Trailer: footer length (i32) and magic.
const TRAILER_LEN: u64 = 4 + MAGIC.len() as u64;

/// Checks everything arrow's `FileReader` relies on (module docs, steps 1–6),
/// reading only within the file's length.
fn validate(file: &mut File, len: u64) -> Result<Checked, Fault> {
    // 1. Framing.
    let footer_start = check_ipc_framing(file, len)?;
    let footer_len = len - TRAILER_LEN - footer_start;

    // 2. Footer, with the verifying flatbuffer parser; bounded by the file size.
    let mut footer_bytes = vec![0u8; usize::try_from(footer_len).map_err(|_| "footer too large")?];
    read_at(file, footer_start, &mut footer_bytes)?;
    let footer = arrow_ipc::root_as_footer(&footer_bytes)
        .map_err(|e| format!("footer is not a valid Arrow IPC footer: {e}"))?;
    let custom = footer_custom_metadata(&footer)?;

    // 3. The footer values' own checksum.
    let want_meta_crc = hex_u32(&custom, KEY_META_CRC32)?;
    let got_meta_crc = footer_meta_crc32(|k| custom.get(k).map(String::as_str));
    if got_meta_crc != want_meta_crc {
        return fail(format!(
            "footer metadata checksum mismatch (computed {got_meta_crc:08x}, footer says \
             {want_meta_crc:08x}): footer is corrupt"
        ));
    }

    // 4. The data region: ends with the end-of-stream marker right before the
    // footer, and its checksum matches.
    let data_len: u64 = custom
        .get(KEY_DATA_LEN)
        .ok_or("footer lacks osprey.data_len")?
        .parse()
        .map_err(|_| "bad osprey.data_len")?;
    if data_len.checked_add(EOS.len() as u64) != Some(footer_start) {
        return fail(format!(
            "footer says {data_len} data bytes but the footer starts at byte {footer_start} (expected {} + 8)",
            footer_start.saturating_sub(EOS.len() as u64)
        ));
    }
    let mut eos = [0u8; 8];
    read_at(file, data_len, &mut eos)?;
    if eos != EOS {
        return fail(format!("no end-of-stream marker at byte {data_len} before the footer"));
    }
    let want_crc = hex_u32(&custom, KEY_DATA_CRC32)?;
    let got_crc = data_crc32(file, data_len)?;
    if got_crc != want_crc {
        return fail(format!(
            "checksum mismatch (data crc32 {got_crc:08x}, footer says {want_crc:08x}): file is corrupt"
        ));
    }

    // 5. The message chain against the footer.
    let chain = walk_messages(file, data_len)?;
    if footer.version() != chain.version {
        return fail(format!(
            "footer metadata version {:?} differs from the messages' {:?}",
            footer.version(),
            chain.version
        ));
    }
    let footer_schema = footer.schema().ok_or("footer has no schema")?;
    if !footer_schema.endianness().equals_to_target_endianness() {
        return fail("footer schema has the wrong endianness");
    }
    let footer_schema = arrow_ipc::convert::try_fb_to_schema(footer_schema)
        .map_err(|e| format!("footer schema is invalid: {e}"))?;
    if footer_schema != chain.schema {
        return fail("footer schema differs from the schema message");
    }
    let Some(footer_batches) = footer.recordBatches() else {
        return fail("footer has no record batch list");
    };
    let footer_batches = block_positions(footer_batches.iter());
    if footer_batches != chain.batches {
        return fail(format!(
            "footer lists record batches {} that do not match the {} record batch messages in the file {}",
            fmt_blocks(&footer_batches),
            chain.batches.len(),
            fmt_blocks(&chain.batches)
        ));
    }
    let footer_dicts = block_positions(footer.dictionaries().iter().flat_map(|v| v.iter()));
    if footer_dicts != chain.dictionaries {
        return fail(format!(
            "footer lists dictionary batches {} that do not match the {} dictionary messages in the file {}",
            fmt_blocks(&footer_dicts),
            chain.dictionaries.len(),
            fmt_blocks(&chain.dictionaries)
        ));
    }
    Ok(Checked { schema: chain.schema, footer: custom, batches: chain.batches, rows: chain.rows })
}

fn block_positions<'a>(blocks: impl Iterator<Item = &'a arrow_ipc::Block>) -> Vec<BlockPos> {
    blocks.map(|b| (b.offset(), b.metaDataLength(), b.bodyLength())).collect()
}

fn fmt_blocks(blocks: &[BlockPos]) -> String {
    const SHOWN: usize = 4;
    let mut s: Vec<String> = blocks.iter().take(SHOWN).map(|(o, m, b)| format!("@{o}+{m}+{b}")).collect();
    if blocks.len() > SHOWN {
        s.push(format!("… ({} in all)", blocks.len()));
    }
    format!("[{}]", s.join(", "))
}

/// The footer's custom metadata; a key without value, or a key twice, is an error.
fn footer_custom_metadata(footer: &arrow_ipc::Footer<'_>) -> Result<BTreeMap<String, String>, Fault> {
    let mut out = BTreeMap::new();
    for kv in footer.custom_metadata().iter().flatten() {
        let (Some(k), Some(v)) = (kv.key(), kv.value()) else {
            return fail("footer custom metadata has an entry without key or value");
        };
        if out.insert(k.to_string(), v.to_string()).is_some() {
            return fail(format!("footer custom metadata has {k:?} twice"));
        }
    }
    Ok(out)
}

/// A footer value written as 8 hex digits.
fn hex_u32(footer: &BTreeMap<String, String>, key: &str) -> Result<u32, Fault> {
    let v = footer.get(key).ok_or_else(|| format!("footer lacks {key}"))?;
    if v.len() != 8 || !v.bytes().all(|b| b.is_ascii_hexdigit()) {
        return fail(format!("bad {key} {v:?}"));
    }
    u32::from_str_radix(v, 16).map_err(|_| Fault::Bad(format!("bad {key} {v:?}")))
}

fn read_at(file: &mut File, pos: u64, buf: &mut [u8]) -> std::io::Result<()> {
    file.seek(SeekFrom::Start(pos))?;
    file.read_exact(buf)
}

/// CRC-32 of the first `len` bytes of the file (which has at least that many).
fn data_crc32(file: &mut File, len: u64) -> Result<u32, Fault> {
    file.seek(SeekFrom::Start(0))?;
    let mut hasher = crc32fast::Hasher::new();
    let mut buf = vec![0u8; usize::try_from(len.min(1 << 20)).unwrap_or(1 << 20)];
    let mut left = len;
    while left > 0 {
        let n = usize::try_from(left).map_or(buf.len(), |l| l.min(buf.len()));
        file.read_exact(&mut buf[..n])?;
        hasher.update(&buf[..n]);
        left -= n as u64;
    }
    Ok(hasher.finalize())
}

/// What the chain of IPC messages holds.
struct Chain {
    schema: Schema,
    version: arrow_ipc::MetadataVersion,
    dictionaries: Vec<BlockPos>,
    batches: Vec<BlockPos>,
    rows: u64,
}

/// Walks the encapsulated IPC messages in `[0, data_len)`: the leading magic
/// and its zero padding, a schema message, then dictionary and record batch
/// messages, each `FF FF FF FF`, metadata length (i32, incl. padding), verified
/// flatbuffer `Message`, body of `bodyLength` bytes; the last one must end
/// exactly at `data_len`. Every length is checked against `data_len` before it
/// is used.
fn walk_messages(file: &mut File, data_len: u64) -> Result<Chain, Fault> {
    // Arrow pads the leading magic with zeros to its alignment (64 bytes for
    // arrow-rs, 8 in the format spec): the first message starts at the first
    // non-zero byte, which must be 8-byte aligned.
    const MAX_PREFIX: usize = 64;
    let mut head = [0u8; MAX_PREFIX + 1];
    let head_len = usize::try_from(data_len).map_or(head.len(), |l| l.min(head.len()));
    let head = &mut head[..head_len];
    read_at(file, 0, head)?;
    if head.len() < MAGIC.len() || &head[..MAGIC.len()] != MAGIC {
        return fail("not an Arrow IPC file (bad leading magic)");
    }
    let first = head[MAGIC.len()..]
        .iter()
        .position(|&b| b != 0)
        .map(|i| i + MAGIC.len())
        .ok_or("no schema message after the leading magic")?;
    if !first.is_multiple_of(8) {
        return fail(format!("first message at byte {first} is not 8-byte aligned"));
    }

    let mut pos = first as u64;
    let mut schema: Option<(Schema, arrow_ipc::MetadataVersion)> = None;
    let (mut dictionaries, mut batches, mut rows) = (Vec::new(), Vec::new(), 0u64);
    let mut meta = Vec::new();
    while pos < data_len {
        let at = |m: &str| format!("message at byte {pos}: {m}");
        let offset = i64::try_from(pos).map_err(|_| at("offset too large"))?;
        let mut prefix = [0u8; 8];
        if data_len - pos < prefix.len() as u64 {
            return fail(at("truncated prefix"));
        }
        read_at(file, pos, &mut prefix)?;
        if prefix[..4] != CONTINUATION {
            return fail(at("no continuation marker"));
        }
        let meta_len = i32::from_le_bytes([prefix[4], prefix[5], prefix[6], prefix[7]]);
        let meta_start = pos + 8;
        let meta_len_u = u64::try_from(meta_len).map_err(|_| at(&format!("negative metadata length {meta_len}")))?;
        if meta_len_u == 0 {
            return fail(at("unexpected end-of-stream marker inside the data"));
        }
        if meta_len_u > data_len - meta_start {
            return fail(at(&format!("metadata length {meta_len} runs past the data end {data_len}")));
        }
        if !(meta_start + meta_len_u).is_multiple_of(8) {
            return fail(at(&format!("metadata length {meta_len} leaves the body unaligned")));
        }
        let header_len = meta_len.checked_add(8).ok_or_else(|| at("metadata length too large"))?;
        // Bounded by the data region, i.e. by the file size.
        meta.resize(usize::try_from(meta_len_u).map_err(|_| at("metadata too large"))?, 0);
        read_at(file, meta_start, &mut meta)?;
        let msg = arrow_ipc::root_as_message(&meta).map_err(|e| at(&format!("invalid message metadata: {e}")))?;
        let body_len = msg.bodyLength();
        let body_start = meta_start + meta_len_u;
        let body_len_u = u64::try_from(body_len).map_err(|_| at(&format!("negative body length {body_len}")))?;
        if body_len_u > data_len - body_start {
            return fail(at(&format!("body length {body_len} runs past the data end {data_len}")));
        }
        if !body_len_u.is_multiple_of(8) {
            return fail(at(&format!("body length {body_len} is not a multiple of 8")));
        }
        let block = (offset, header_len, body_len);
        match (&schema, msg.header_type()) {
            (None, arrow_ipc::MessageHeader::Schema) => {
                let fb = msg.header_as_schema().ok_or_else(|| at("schema header missing"))?;
                if body_len != 0 {
                    return fail(at("schema message has a body"));
                }
                if !fb.endianness().equals_to_target_endianness() {
                    return fail(at("schema has the wrong endianness"));
                }
                let s = arrow_ipc::convert::try_fb_to_schema(fb).map_err(|e| at(&format!("invalid schema: {e}")))?;
                schema = Some((s, msg.version()));
            }
            (None, t) => return fail(at(&format!("first message is {t:?}, not the schema"))),
            (Some((_, version)), t) if msg.version() != *version => {
                let v = msg.version();
                return fail(at(&format!("{t:?} message has metadata version {v:?}, schema has {version:?}")));
            }
            (Some(_), arrow_ipc::MessageHeader::DictionaryBatch) => {
                msg.header_as_dictionary_batch().ok_or_else(|| at("dictionary batch header missing"))?;
                dictionaries.push(block);
            }
            (Some(_), arrow_ipc::MessageHeader::RecordBatch) => {
                let rb = msg.header_as_record_batch().ok_or_else(|| at("record batch header missing"))?;
                let n = u64::try_from(rb.length()).map_err(|_| at(&format!("negative row count {}", rb.length())))?;
                rows = rows.checked_add(n).ok_or_else(|| at("row count overflows"))?;
                batches.push(block);
            }
            (Some(_), t) => return fail(at(&format!("unexpected {t:?} message"))),
        }
        pos = body_start + body_len_u;
    }
    let (schema, version) = schema.ok_or("no schema message")?;
    Ok(Chain { schema, version, dictionaries, batches, rows })
}

/// Verifies the Arrow IPC file magic at both ends and a footer length that
/// fits; returns where the footer starts.
fn check_ipc_framing(file: &mut File, len: u64) -> Result<u64, Fault> {
    // Leading magic + padding, end-of-stream marker, footer, trailer.
    if len < 8 + EOS.len() as u64 + TRAILER_LEN + 1 {
        return fail(format!("file is {len} bytes: too short for an Arrow IPC file (truncated?)"));
    }
    let mut head = [0u8; 6];
    read_at(file, 0, &mut head)?;
    if &head != MAGIC {
        return fail("not an Arrow IPC file (bad leading magic)");
    }
    let mut tail = [0u8; TRAILER_LEN as usize];
    read_at(file, len - TRAILER_LEN, &mut tail)?;
    if &tail[4..] != MAGIC {
        return fail("no Arrow IPC footer (file truncated or still being written)");
    }
    let footer_len = i32::from_le_bytes([tail[0], tail[1], tail[2], tail[3]]);
    let max = len - TRAILER_LEN - 8 - EOS.len() as u64;
    match u64::try_from(footer_len) {
        Ok(n) if n > 0 && n <= max => Ok(len - TRAILER_LEN - n),
        _ => fail(format!("footer length {footer_len} is impossible for a {len}-byte file")),
    }
}

fn read_meta(checked: &Checked) -> Result<SegmentMeta, String> {
    let m = checked.schema.metadata();
    let get = |k: &str| m.get(k).ok_or_else(|| format!("schema metadata lacks {k}"));
    let kind = Kind::parse(get(KEY_KIND)?).ok_or_else(|| format!("unknown kind {:?}", m.get(KEY_KIND)))?;
    let schema_version: u32 = get(KEY_SCHEMA_VERSION)?.parse().map_err(|_| "bad schema version".to_string())?;
    if !(OLDEST_SCHEMA_VERSION..=SCHEMA_VERSION).contains(&schema_version) {
        return Err(format!(
            "schema version {schema_version} is not supported by this reader (supports {OLDEST_SCHEMA_VERSION} to {SCHEMA_VERSION})"
        ));
    }
    let footer = &checked.footer;
    let record_count: u64 = footer
        .get(KEY_RECORD_COUNT)
        .ok_or("footer lacks osprey.record_count")?
        .parse()
        .map_err(|_| "bad record count".to_string())?;
    // 6. The count must be what the batches hold.
    if record_count != checked.rows {
        return Err(format!(
            "footer says {record_count} records but the record batches hold {}",
            checked.rows
        ));
    }
    let ts = |k: &str| -> Result<Option<i64>, String> {
        footer.get(k).map(|v| v.parse::<i64>().map_err(|_| format!("bad {k}"))).transpose()
    };
    let (ts_min, ts_max) = (ts(KEY_TS_MIN)?, ts(KEY_TS_MAX)?);
    match (ts_min, ts_max) {
        (Some(lo), Some(hi)) if lo > hi => return Err(format!("footer time range is inverted ({lo} > {hi})")),
        (Some(_), None) | (None, Some(_)) => return Err("footer has only one of osprey.ts_min/osprey.ts_max".into()),
        _ => {}
    }
    Ok(SegmentMeta {
        kind,
        schema_version,
        sensor: get(KEY_SENSOR)?.clone(),
        writer_version: get(KEY_WRITER_VERSION)?.clone(),
        record_count,
        ts_min,
        ts_max,
    })
}

//! Ranked results: what `osprey score` writes and `osprey top` reads.
//!
//! A ranked segment is an ordinary segment file (Arrow IPC, zstd, the same
//! atomic write, checksums and footer as [`crate::segment`]) written with
//! [`SegmentWriter::create_derived`], holding one scoring run's selected events
//! of one kind, most suspicious first. Its columns are:
//!
//! | column | type | meaning |
//! |---|---|---|
//! | `rank` | UInt64 | 1 = most suspicious |
//! | `score` | Float64 | P(word \| document) under the model (the f32 value, printed shortest) |
//! | `word` | Utf8 | the Spot word that gave the score (for flows: the lowest-scoring of the event's words) |
//! | *event columns* | | exactly the kind's record columns ([`crate::schema::schema`]), same names as `osprey records` |
//! | `document` | FixedSizeBinary(16), `osprey.type = ip` | the IP whose document gave the score |
//! | `topics` | List\<UInt16\> | that document's dominant topics (up to [`TOP_TOPICS`], heaviest first) |
//! | `topic_weights` | List\<Float64\> | their θ weights |
//!
//! Layout: `DATA/ranked/<kind>/YYYY/MM/DD/HH/<sensor>-<seq>.arrow`, where the
//! hour is the **start of the scored window** (one run = one file; a new run
//! over the same window replaces the earlier file). The run's parameters
//! are in the schema metadata (`osprey.ranked.*`, see [`RankedRun`]).

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::builder::{FixedSizeBinaryBuilder, Float64Builder, ListBuilder, UInt16Builder};
use arrow_array::{ArrayRef, Float64Array, RecordBatch, StringArray, UInt64Array};
use arrow_schema::{DataType, Field, Schema, SchemaRef};

use crate::SegmentError;
use crate::partition::{TimeRange, list_segments, partition_column, partition_dir};
use crate::records::{Kind, TimestampNs};
use crate::schema::{META_LOGICAL_TYPE, ip_to_bytes, schema, timestamps_ns};
use crate::segment::{SegmentReader, SegmentWriter};

/// Directory (under the data directory) of ranked results.
pub const RANKED_DIR: &str = "ranked";
/// Version of the ranked column layout.
pub const RANKED_VERSION: u32 = 1;
/// Dominant topics kept per event.
pub const TOP_TOPICS: usize = 3;
/// Columns before the event's own.
pub const LEAD_COLUMNS: [&str; 3] = ["rank", "score", "word"];
/// Columns after the event's own.
pub const TAIL_COLUMNS: [&str; 3] = ["document", "topics", "topic_weights"];

const KEY_VERSION: &str = "osprey.ranked.version";
const KEY_FROM: &str = "osprey.ranked.window_from";
const KEY_TO: &str = "osprey.ranked.window_to";
const KEY_EVENTS: &str = "osprey.ranked.events_scored";
const KEY_THRESHOLD: &str = "osprey.ranked.threshold";
const KEY_MAX: &str = "osprey.ranked.max_results";
const KEY_MODEL: &str = "osprey.ranked.model";
const KEY_MODE: &str = "osprey.ranked.mode";
// Provenance keys added after version 1 shipped: optional on read, so
// earlier ranked files still open (their values then read as empty/None).
const KEY_SCORING: &str = "osprey.ranked.scoring";
const KEY_MODEL_ID: &str = "osprey.ranked.model_id";
const KEY_TRAIN_FROM: &str = "osprey.ranked.train_from";
const KEY_TRAIN_TO: &str = "osprey.ranked.train_to";

/// The columns of ranked segments of `kind`.
pub fn ranked_schema(kind: Kind) -> SchemaRef {
    let mut fields =
        vec![Field::new("rank", DataType::UInt64, false), Field::new("score", DataType::Float64, false), Field::new("word", DataType::Utf8, false)];
    fields.extend(schema(kind).fields().iter().map(|f| f.as_ref().clone()));
    fields.push(
        Field::new("document", DataType::FixedSizeBinary(16), false)
            .with_metadata(HashMap::from([(META_LOGICAL_TYPE.to_string(), "ip".to_string())])),
    );
    fields.push(Field::new("topics", DataType::List(Arc::new(Field::new("item", DataType::UInt16, false))), false));
    fields.push(Field::new("topic_weights", DataType::List(Arc::new(Field::new("item", DataType::Float64, false))), false));
    Arc::new(Schema::new(fields))
}

/// The ranking columns of selected events, in rank order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RankedRows {
    /// Ranks (1 = most suspicious).
    pub rank: Vec<u64>,
    /// Scores.
    pub score: Vec<f32>,
    /// The word that gave each score.
    pub word: Vec<String>,
    /// The document (IP) of that word.
    pub document: Vec<IpAddr>,
    /// Dominant topics of the document: (topic id, weight), heaviest first.
    pub topics: Vec<Vec<(u16, f32)>>,
}

/// An f32 as the f64 with the same shortest decimal form (so 1e-7f32 prints
/// as `1e-7`, not `1.0000000116860974e-7`).
pub fn f32_to_f64_exact_text(x: f32) -> f64 {
    if x.is_finite() { x.to_string().parse().unwrap_or(f64::from(x)) } else { f64::from(x) }
}

/// Builds a ranked batch from the selected events (`events`: a batch of the
/// kind's records, row i being the event ranked `rows.rank[i]`).
pub fn ranked_batch(kind: Kind, events: &RecordBatch, rows: &RankedRows) -> Result<RecordBatch, SegmentError> {
    let n = events.num_rows();
    if [rows.rank.len(), rows.score.len(), rows.word.len(), rows.document.len(), rows.topics.len()].iter().any(|&l| l != n) {
        return Err(SegmentError::Invalid(format!("ranked columns do not all have the {n} rows of the events")));
    }
    let mut cols: Vec<ArrayRef> = vec![
        Arc::new(UInt64Array::from(rows.rank.clone())),
        Arc::new(Float64Array::from(rows.score.iter().map(|&s| f32_to_f64_exact_text(s)).collect::<Vec<_>>())),
        Arc::new(StringArray::from_iter_values(rows.word.iter())),
    ];
    cols.extend(events.columns().iter().cloned());
    let mut doc = FixedSizeBinaryBuilder::with_capacity(n, 16);
    for ip in &rows.document {
        doc.append_value(ip_to_bytes(*ip))?;
    }
    cols.push(Arc::new(doc.finish()));
    let sch = ranked_schema(kind);
    let item = |i: usize| match sch.field(sch.fields().len() - 2 + i).data_type() {
        DataType::List(f) => f.clone(),
        _ => unreachable!("topics columns are lists"),
    };
    let mut topics = ListBuilder::new(UInt16Builder::new()).with_field(item(0));
    let mut weights = ListBuilder::new(Float64Builder::new()).with_field(item(1));
    for t in &rows.topics {
        for &(id, w) in t {
            topics.values().append_value(id);
            weights.values().append_value(f32_to_f64_exact_text(w));
        }
        topics.append(true);
        weights.append(true);
    }
    cols.push(Arc::new(topics.finish()));
    cols.push(Arc::new(weights.finish()));
    Ok(RecordBatch::try_new(sch, cols)?)
}

/// The event columns of a ranked batch, as a batch of the kind's records.
pub fn event_batch(kind: Kind, ranked: &RecordBatch) -> Result<RecordBatch, SegmentError> {
    let n = schema(kind).fields().len();
    let cols = ranked.columns()[LEAD_COLUMNS.len()..LEAD_COLUMNS.len() + n].to_vec();
    Ok(RecordBatch::try_new(schema(kind), cols)?)
}

/// One scoring run: what was scored and how the events were selected.
#[derive(Debug, Clone, PartialEq)]
pub struct RankedRun {
    /// Record kind.
    pub kind: Kind,
    /// The scored window.
    pub window: TimeRange,
    /// Events scored in the window.
    pub events_scored: u64,
    /// Spot's threshold (tol): only scores ≤ it were kept.
    pub threshold: f64,
    /// Spot's max-results (≤ 0: all).
    pub max_results: i64,
    /// The model used (path, or a description for `--spot` runs).
    pub model: String,
    /// `model` (train on one window, score another) or `spot` (train and score the same window).
    pub mode: String,
    /// How pairs were scored: `spot` (P(w | d)) or `blend` (empty: not
    /// recorded, a file from before this key existed).
    pub scoring: String,
    /// Identity of the model's content (e.g. `crc32:…` of the model file),
    /// so two runs can be told to use the same model even if it moved.
    pub model_id: String,
    /// The model's training window (`[from, to)`, ns; open ends are None).
    pub train_window: TimeRange,
}

impl RankedRun {
    fn to_meta(&self) -> HashMap<String, String> {
        let opt = |v: Option<i64>| v.map_or_else(String::new, |x| x.to_string());
        HashMap::from([
            (KEY_VERSION.to_string(), RANKED_VERSION.to_string()),
            (KEY_FROM.to_string(), opt(self.window.from)),
            (KEY_TO.to_string(), opt(self.window.to)),
            (KEY_EVENTS.to_string(), self.events_scored.to_string()),
            (KEY_THRESHOLD.to_string(), self.threshold.to_string()),
            (KEY_MAX.to_string(), self.max_results.to_string()),
            (KEY_MODEL.to_string(), self.model.clone()),
            (KEY_MODE.to_string(), self.mode.clone()),
            (KEY_SCORING.to_string(), self.scoring.clone()),
            (KEY_MODEL_ID.to_string(), self.model_id.clone()),
            (KEY_TRAIN_FROM.to_string(), opt(self.train_window.from)),
            (KEY_TRAIN_TO.to_string(), opt(self.train_window.to)),
        ])
    }

    fn from_meta(kind: Kind, m: &Schema) -> Result<Self, String> {
        let get = |k: &str| m.metadata().get(k).cloned().ok_or_else(|| format!("not a ranked segment: metadata lacks {k}"));
        let version: u32 = get(KEY_VERSION)?.parse().map_err(|_| "bad ranked version".to_string())?;
        if version != RANKED_VERSION {
            return Err(format!("ranked layout version {version} is not supported (this build reads {RANKED_VERSION})"));
        }
        let opt = |k: &str| -> Result<Option<i64>, String> {
            let v = get(k)?;
            if v.is_empty() { Ok(None) } else { v.parse().map(Some).map_err(|_| format!("bad {k}")) }
        };
        let optional = |k: &str| m.metadata().get(k).cloned().unwrap_or_default();
        let optional_ns = |k: &str| -> Result<Option<i64>, String> {
            let v = optional(k);
            if v.is_empty() { Ok(None) } else { v.parse().map(Some).map_err(|_| format!("bad {k}")) }
        };
        Ok(RankedRun {
            kind,
            window: TimeRange { from: opt(KEY_FROM)?, to: opt(KEY_TO)? },
            events_scored: get(KEY_EVENTS)?.parse().map_err(|_| format!("bad {KEY_EVENTS}"))?,
            threshold: get(KEY_THRESHOLD)?.parse().map_err(|_| format!("bad {KEY_THRESHOLD}"))?,
            max_results: get(KEY_MAX)?.parse().map_err(|_| format!("bad {KEY_MAX}"))?,
            model: get(KEY_MODEL)?,
            mode: get(KEY_MODE)?,
            scoring: optional(KEY_SCORING),
            model_id: optional(KEY_MODEL_ID),
            train_window: TimeRange { from: optional_ns(KEY_TRAIN_FROM)?, to: optional_ns(KEY_TRAIN_TO)? },
        })
    }
}

/// Smallest and largest partition time of a kind's record batch.
fn ts_range(kind: Kind, batch: &RecordBatch) -> Option<(TimestampNs, TimestampNs)> {
    let v = timestamps_ns(batch.column_by_name(partition_column(kind))?.as_ref())?;
    Some((*v.iter().min()?, *v.iter().max()?))
}

/// Writes one run's ranked batch under `DATA/ranked/<kind>/…` (see the
/// module docs) and removes earlier files of a run over the same window in
/// that partition. Returns the new file.
pub fn write_ranked(data: &Path, sensor: &str, run: &RankedRun, batch: &RecordBatch) -> Result<PathBuf, SegmentError> {
    let events = event_batch(run.kind, batch)?;
    let range = ts_range(run.kind, &events);
    let anchor = run.window.from.or(range.map(|r| r.0)).unwrap_or(0);
    let dir = partition_dir(&data.join(RANKED_DIR), run.kind, anchor);
    let earlier: Vec<PathBuf> = if dir.is_dir() {
        list_ranked(data, run.kind)?
            .into_iter()
            .filter(|p| p.parent() == Some(dir.as_path()))
            .filter(|p| read_ranked_run(p).is_ok_and(|r| r.window == run.window))
            .collect()
    } else {
        Vec::new()
    };
    let mut w = SegmentWriter::create_derived(&dir, run.kind, sensor, ranked_schema(run.kind), run.to_meta())?;
    if batch.num_rows() > 0 {
        w.write(batch, range)?;
    }
    let path = w.finish()?;
    for p in earlier {
        std::fs::remove_file(&p).map_err(|e| SegmentError::io(&p, e))?;
    }
    Ok(path)
}

/// Ranked files of `kind`, oldest partition first (within a partition, by name).
pub fn list_ranked(data: &Path, kind: Kind) -> Result<Vec<PathBuf>, SegmentError> {
    list_segments(&data.join(RANKED_DIR), kind)
}

fn open(path: &Path) -> Result<(SegmentReader, RankedRun), SegmentError> {
    let r = SegmentReader::open_derived(path, &ranked_schema_for_path(path)?)?;
    let run = RankedRun::from_meta(r.meta().kind, &r.schema()).map_err(|m| SegmentError::Invalid(format!("{}: {m}", path.display())))?;
    Ok((r, run))
}

/// The kind of a ranked file from its path (`…/ranked/<kind>/YYYY/MM/DD/HH/file`).
fn ranked_schema_for_path(path: &Path) -> Result<Schema, SegmentError> {
    let kind = path
        .ancestors()
        .nth(5)
        .and_then(|p| p.file_name())
        .and_then(|n| n.to_str())
        .and_then(Kind::parse)
        .ok_or_else(|| SegmentError::Invalid(format!("{}: not under ranked/<kind>/YYYY/MM/DD/HH/", path.display())))?;
    Ok(ranked_schema(kind).as_ref().clone())
}

/// The run parameters of a ranked file.
pub fn read_ranked_run(path: &Path) -> Result<RankedRun, SegmentError> {
    open(path).map(|(_, run)| run)
}

/// Reads a ranked file: its run parameters and batches (rows in rank order).
pub fn read_ranked(path: &Path) -> Result<(RankedRun, Vec<RecordBatch>), SegmentError> {
    let (mut r, run) = open(path)?;
    let mut out = Vec::new();
    while let Some(b) = r.next_batch() {
        out.push(b?);
    }
    Ok((run, out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::{EndReason, FlowRecord};
    use crate::schema::flows_to_batch;
    use arrow_array::cast::AsArray;

    fn flow(ts: i64, port: u16) -> FlowRecord {
        FlowRecord {
            ts_start: ts,
            ts_end: ts + 5,
            proto: 6,
            src_ip: IpAddr::from([10, 0, 0, 1]),
            src_port: 40000,
            dst_ip: IpAddr::from([10, 0, 0, 2]),
            dst_port: port,
            vlan: 0,
            packets: 1,
            bytes: 44,
            rev_packets: 0,
            rev_bytes: 0,
            tcp_flags: 2,
            rev_tcp_flags: 0,
            end_reason: EndReason::Idle,
        }
    }

    #[test]
    fn ranked_round_trip_and_replacement() {
        let dir = tempfile::tempdir().expect("tempdir");
        let day = 1_700_000_000_000_000_000i64;
        let events = flows_to_batch(&[flow(day + 10, 22), flow(day + 20, 23)]).expect("batch");
        let rows = RankedRows {
            rank: vec![1, 2],
            score: vec![1e-7, 0.25],
            word: vec!["22_TCP_0_6_1".into(), "23_TCP_0_6_1".into()],
            document: vec![IpAddr::from([10, 0, 0, 1]), IpAddr::from([10, 0, 0, 2])],
            topics: vec![vec![(3, 0.9), (1, 0.05)], vec![(0, 1.0)]],
        };
        let batch = ranked_batch(Kind::Flow, &events, &rows).expect("ranked");
        assert_eq!(batch.schema().field(0).name(), "rank");
        assert_eq!(batch.schema().field(3).name(), "ts_start");
        let run = RankedRun {
            kind: Kind::Flow,
            window: TimeRange { from: Some(day), to: Some(day + 86_400_000_000_000) },
            events_scored: 2,
            threshold: 1.0,
            max_results: -1,
            model: "m.model".into(),
            mode: "model".into(),
            scoring: "blend".into(),
            model_id: "crc32:0123abcd".into(),
            train_window: TimeRange { from: Some(day - 86_400_000_000_000), to: Some(day) },
        };
        let p1 = write_ranked(dir.path(), "t", &run, &batch).expect("write");
        let p2 = write_ranked(dir.path(), "t", &run, &batch).expect("rewrite");
        assert_ne!(p1, p2);
        assert!(!p1.exists(), "earlier run over the same window is replaced");
        let files = list_ranked(dir.path(), Kind::Flow).expect("list");
        assert_eq!(files, vec![p2.clone()]);
        let (back_run, batches) = read_ranked(&p2).expect("read");
        assert_eq!(back_run, run);
        assert_eq!(batches.len(), 1);
        let b = &batches[0];
        let score = b.column(1).as_primitive::<arrow_array::types::Float64Type>();
        assert_eq!(score.value(0), 1e-7);
        let ev = event_batch(Kind::Flow, b).expect("events");
        assert_eq!(crate::schema::flows_from_batch(&ev).expect("flows")[1].dst_port, 23);
        // A ranked file is not a record segment.
        assert!(SegmentReader::open(&p2).is_err());
    }

    /// Files written before the provenance keys existed still read, with
    /// the new fields empty; a malformed training bound is an error.
    #[test]
    fn provenance_keys_are_optional_on_read() {
        let run = RankedRun {
            kind: Kind::Dns,
            window: TimeRange { from: Some(5), to: None },
            events_scored: 3,
            threshold: 1e-6,
            max_results: 10,
            model: "x".into(),
            mode: "spot".into(),
            scoring: "spot".into(),
            model_id: "id".into(),
            train_window: TimeRange { from: Some(1), to: Some(2) },
        };
        let mut meta = run.to_meta();
        let schema = |m: &HashMap<String, String>| Schema::new(Vec::<Field>::new()).with_metadata(m.clone());
        assert_eq!(RankedRun::from_meta(Kind::Dns, &schema(&meta)), Ok(run.clone()));
        for k in [KEY_SCORING, KEY_MODEL_ID, KEY_TRAIN_FROM, KEY_TRAIN_TO] {
            meta.remove(k);
        }
        let old = RankedRun::from_meta(Kind::Dns, &schema(&meta)).expect("old layout reads");
        assert_eq!(old.scoring, "");
        assert_eq!(old.model_id, "");
        assert_eq!(old.train_window, TimeRange::default());
        assert_eq!(old.model, run.model);
        meta.insert(KEY_TRAIN_FROM.to_string(), "yesterday".into());
        assert!(RankedRun::from_meta(Kind::Dns, &schema(&meta)).is_err());
    }
}

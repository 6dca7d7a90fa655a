//! Renders segment batches as JSON lines or CSV, driven by the schema alone:
//! column names come from [`crate::schema`], IP columns (field metadata
//! `osprey.type = ip`) print as text, timestamps as RFC 3339 with nanoseconds.
//! `osprey records`, `osprey top` and the UI's JSON use this, so every
//! consumer sees the same names and formats.

use std::fmt::Write as _;
use std::io::{self, Write};

use arrow_array::cast::AsArray;
use arrow_array::types::{
    Int8Type, Int16Type, Int32Type, Int64Type, TimestampMicrosecondType, TimestampNanosecondType, UInt8Type, UInt16Type,
    UInt32Type, UInt64Type,
};
use arrow_array::{Array, ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, TimeUnit};

use crate::schema::{META_LOGICAL_TYPE, ip_from_bytes};
use crate::time::rfc3339;

/// Output format of record printing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// One JSON object per line.
    Jsonl,
    /// RFC 4180 CSV with a header line; nested values are JSON text.
    Csv,
}

/// A scalar or nested value of one cell, ready to render.
enum Cell {
    Null,
    Bool(bool),
    Int(i128),
    Float(f64),
    Str(String),
    List(Vec<Cell>),
    Object(Vec<(String, Cell)>),
}

fn is_ip(field: &Field) -> bool {
    field.metadata().get(META_LOGICAL_TYPE).is_some_and(|t| t == "ip")
}

fn cell(array: &ArrayRef, field: &Field, i: usize) -> Cell {
    if array.is_null(i) {
        return Cell::Null;
    }
    match array.data_type() {
        DataType::Boolean => Cell::Bool(array.as_boolean().value(i)),
        DataType::Int8 => Cell::Int(array.as_primitive::<Int8Type>().value(i).into()),
        DataType::Int16 => Cell::Int(array.as_primitive::<Int16Type>().value(i).into()),
        DataType::Int32 => Cell::Int(array.as_primitive::<Int32Type>().value(i).into()),
        DataType::Int64 => Cell::Int(array.as_primitive::<Int64Type>().value(i).into()),
        DataType::UInt8 => Cell::Int(array.as_primitive::<UInt8Type>().value(i).into()),
        DataType::UInt16 => Cell::Int(array.as_primitive::<UInt16Type>().value(i).into()),
        DataType::UInt32 => Cell::Int(array.as_primitive::<UInt32Type>().value(i).into()),
        DataType::UInt64 => Cell::Int(array.as_primitive::<UInt64Type>().value(i).into()),
        DataType::Float32 => Cell::Float(array.as_primitive::<arrow_array::types::Float32Type>().value(i).into()),
        DataType::Float64 => Cell::Float(array.as_primitive::<arrow_array::types::Float64Type>().value(i)),
        DataType::Timestamp(TimeUnit::Nanosecond, _) => {
            Cell::Str(rfc3339(array.as_primitive::<TimestampNanosecondType>().value(i)))
        }
        DataType::Timestamp(TimeUnit::Microsecond, _) => {
            Cell::Str(rfc3339(array.as_primitive::<TimestampMicrosecondType>().value(i).saturating_mul(1000)))
        }
        DataType::Utf8 => Cell::Str(array.as_string::<i32>().value(i).to_string()),
        DataType::FixedSizeBinary(16) if is_ip(field) => {
            Cell::Str(ip_from_bytes(array.as_fixed_size_binary().value(i)).to_string())
        }
        DataType::FixedSizeBinary(_) | DataType::Binary => {
            let bytes: &[u8] = match array.data_type() {
                DataType::Binary => array.as_binary::<i32>().value(i),
                _ => array.as_fixed_size_binary().value(i),
            };
            Cell::Str(bytes.iter().fold(String::new(), |mut s, b| {
                let _ = write!(s, "{b:02x}");
                s
            }))
        }
        DataType::Dictionary(_, _) => {
            let dict = array.as_any_dictionary();
            let key = dict.normalized_keys()[i];
            let values = dict.values();
            let value_field = Field::new("v", values.data_type().clone(), true);
            cell(values, &value_field, key)
        }
        DataType::List(item) => {
            let list = array.as_list::<i32>();
            let values = list.value(i);
            Cell::List((0..values.len()).map(|j| cell(&values, item, j)).collect())
        }
        DataType::Struct(fields) => {
            let s = array.as_struct();
            Cell::Object(
                fields.iter().zip(s.columns()).map(|(f, c)| (f.name().clone(), cell(c, f, i))).collect(),
            )
        }
        other => Cell::Str(format!("<unsupported {other}>")),
    }
}

/// Appends `s` as a JSON string literal.
pub fn json_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

fn json(out: &mut String, c: &Cell) {
    match c {
        Cell::Null => out.push_str("null"),
        Cell::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Cell::Int(v) => {
            let _ = write!(out, "{v}");
        }
        Cell::Float(v) if v.is_finite() => {
            let _ = write!(out, "{v}");
        }
        Cell::Float(_) => out.push_str("null"),
        Cell::Str(s) => json_string(out, s),
        Cell::List(items) => {
            out.push('[');
            for (k, item) in items.iter().enumerate() {
                if k > 0 {
                    out.push(',');
                }
                json(out, item);
            }
            out.push(']');
        }
        Cell::Object(fields) => {
            out.push('{');
            for (k, (name, v)) in fields.iter().enumerate() {
                if k > 0 {
                    out.push(',');
                }
                json_string(out, name);
                out.push(':');
                json(out, v);
            }
            out.push('}');
        }
    }
}

fn csv_field(out: &mut String, s: &str) {
    if s.contains([',', '"', '\n', '\r']) {
        out.push('"');
        out.push_str(&s.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(s);
    }
}

fn csv(out: &mut String, c: &Cell) {
    match c {
        Cell::Null => {}
        Cell::Str(s) => csv_field(out, s),
        other => {
            let mut j = String::new();
            json(&mut j, other);
            csv_field(out, &j);
        }
    }
}

/// Writes batches in one format; for CSV the header is written before the first row.
#[derive(Debug)]
pub struct RecordPrinter<W: Write> {
    out: W,
    format: Format,
    header_done: bool,
    line: String,
}

impl<W: Write> RecordPrinter<W> {
    /// A printer writing to `out`.
    pub fn new(out: W, format: Format) -> Self {
        RecordPrinter { out, format, header_done: false, line: String::new() }
    }

    /// Prints every row of `batch`.
    pub fn print_batch(&mut self, batch: &RecordBatch) -> io::Result<()> {
        self.print_rows(batch, 0..batch.num_rows())
    }

    /// Prints the given rows of `batch`.
    pub fn print_rows(&mut self, batch: &RecordBatch, rows: impl IntoIterator<Item = usize>) -> io::Result<()> {
        let schema = batch.schema();
        if self.format == Format::Csv && !self.header_done {
            let header: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
            writeln!(self.out, "{}", header.join(","))?;
            self.header_done = true;
        }
        for i in rows {
            self.line.clear();
            match self.format {
                Format::Jsonl => {
                    self.line.push('{');
                    for (k, (f, col)) in schema.fields().iter().zip(batch.columns()).enumerate() {
                        if k > 0 {
                            self.line.push(',');
                        }
                        json_string(&mut self.line, f.name());
                        self.line.push(':');
                        json(&mut self.line, &cell(col, f, i));
                    }
                    self.line.push('}');
                }
                Format::Csv => {
                    for (k, (f, col)) in schema.fields().iter().zip(batch.columns()).enumerate() {
                        if k > 0 {
                            self.line.push(',');
                        }
                        csv(&mut self.line, &cell(col, f, i));
                    }
                }
            }
            self.line.push('\n');
            self.out.write_all(self.line.as_bytes())?;
        }
        Ok(())
    }

    /// Flushes and returns the writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.out.flush()?;
        Ok(self.out)
    }
}

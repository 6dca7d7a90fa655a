//! Arrow schemas of the three record kinds, and conversion between records and
//! Arrow record batches.
//!
//! This module is the only definition of column names and types: `osprey
//! records`, Parquet export, the scorer and the UI all read them from here.
//!
//! Conventions:
//! - Times are `Timestamp(Nanosecond, "UTC")`, except a flow's `ts_start` and
//!   `ts_end`, which are `Timestamp(Microsecond, "UTC")` (since schema
//!   version 2). Flow times come from pcap's microsecond clock, NetFlow's
//!   milliseconds or the kernel's tick-cached clock, so nanoseconds carried
//!   no information but cost ~3 of the ~16 compressed bytes of a flow (zstd
//!   sees the low 10 bits as noise); microseconds are also what Spark and
//!   DuckDB timestamps hold natively. Records keep nanoseconds in memory: a
//!   flow time is floored to the microsecond when written.
//! - IP addresses are `FixedSizeBinary(16)`: IPv6, with IPv4 stored as the
//!   IPv4-mapped address `::ffff:a.b.c.d`. Such fields carry the field metadata
//!   `osprey.type = ip` so generic printers render them as text.
//! - Small enumerations (`end_reason`, `transport`) are dictionary-encoded strings.

use std::borrow::Cow;
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::{Arc, OnceLock};

use arrow_array::builder::{
    BooleanBuilder, FixedSizeBinaryBuilder, Int64Builder, StringBuilder,
    TimestampNanosecondBuilder, UInt8Builder, UInt16Builder, UInt32Builder,
};
use arrow_array::cast::AsArray;
use arrow_array::types::{
    Int64Type, TimestampMicrosecondType, TimestampNanosecondType, UInt8Type, UInt16Type, UInt32Type, UInt64Type,
};
use arrow_array::{
    Array, ArrayRef, DictionaryArray, FixedSizeBinaryArray, ListArray, RecordBatch, StringArray,
    StructArray, UInt8Array,
};
use arrow_buffer::{NullBuffer, OffsetBuffer};
use arrow_schema::{DataType, Field, Fields, Schema, SchemaRef, TimeUnit};

use crate::SegmentError;
use crate::records::{
    DnsAnswer, DnsRecord, DnsTransport, EndReason, FlowRecord, Kind, ProxyRecord,
};

/// Version of the column layout. Bumped on any incompatible change; readers
/// refuse segments with a version they do not know. 2: flow times are
/// microseconds (1: nanoseconds).
pub const SCHEMA_VERSION: u32 = 2;

/// The oldest layout readers still accept; [`upgrade_batch`] brings its
/// batches to the current one.
pub const OLDEST_SCHEMA_VERSION: u32 = 1;

/// Flow columns whose unit changed in version 2.
const FLOW_TIME_COLUMNS: [&str; 2] = ["ts_start", "ts_end"];

/// The first layout with microsecond flow times.
const FLOW_MICROS_VERSION: u32 = 2;

/// Whether layout `version` of `kind` kept flow times in nanoseconds.
fn flow_times_in_ns(kind: Kind, version: u32) -> bool {
    kind == Kind::Flow && version < FLOW_MICROS_VERSION
}

/// Field-metadata key marking the logical type of a column.
pub const META_LOGICAL_TYPE: &str = "osprey.type";

fn ts_type() -> DataType {
    DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into()))
}

fn ts(name: &str) -> Field {
    Field::new(name, ts_type(), false)
}

fn flow_ts_type() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
}

fn ip_field(name: &str, nullable: bool) -> Field {
    Field::new(name, DataType::FixedSizeBinary(16), nullable).with_metadata(HashMap::from([(
        META_LOGICAL_TYPE.to_string(),
        "ip".to_string(),
    )]))
}

fn dict_field(name: &str) -> Field {
    Field::new_dictionary(name, DataType::UInt8, DataType::Utf8, false)
}

fn answer_fields() -> Fields {
    Fields::from(vec![
        Field::new("name", DataType::Utf8, false),
        Field::new("type", DataType::UInt16, false),
        Field::new("class", DataType::UInt16, false),
        Field::new("ttl", DataType::UInt32, false),
        ip_field("ip", true),
        Field::new("target", DataType::Utf8, true),
        Field::new("data", DataType::Utf8, false),
    ])
}

/// Dictionary values of `end_reason`, indexed by code − 1. Fixed, because an
/// Arrow IPC *file* allows one dictionary per column for the whole file.
fn end_reason_values() -> Vec<&'static str> {
    EndReason::ALL.iter().map(|r| r.as_str()).collect()
}

/// Dictionary values of `transport`.
const TRANSPORT_VALUES: [&str; 2] = ["udp", "tcp"];

/// A dictionary array over a fixed value list.
fn fixed_dict(keys: Vec<u8>, values: &[&str]) -> Result<ArrayRef, SegmentError> {
    let dict = DictionaryArray::<UInt8Type>::try_new(
        UInt8Array::from(keys),
        Arc::new(StringArray::from(values.to_vec())),
    )?;
    Ok(Arc::new(dict))
}

fn answers_item() -> Arc<Field> {
    Arc::new(Field::new("item", DataType::Struct(answer_fields()), false))
}

type ProxyGet = fn(&ProxyRecord) -> &str;
type ProxySet = fn(&mut ProxyRecord, String);

/// The proxy text columns: name, getter and setter, so building and reading
/// batches share one list.
const PROXY_TEXT: [(&str, ProxyGet, ProxySet); 23] = [
    ("p_date", |r| &r.p_date, |r, v| r.p_date = v),
    ("p_time", |r| &r.p_time, |r, v| r.p_time = v),
    ("host", |r| &r.host, |r, v| r.host = v),
    ("reqmethod", |r| &r.reqmethod, |r, v| r.reqmethod = v),
    ("useragent", |r| &r.useragent, |r, v| r.useragent = v),
    ("resconttype", |r| &r.resconttype, |r, v| r.resconttype = v),
    ("username", |r| &r.username, |r, v| r.username = v),
    ("authgroup", |r| &r.authgroup, |r, v| r.authgroup = v),
    ("exceptionid", |r| &r.exceptionid, |r, v| r.exceptionid = v),
    ("filterresult", |r| &r.filterresult, |r, v| r.filterresult = v),
    ("webcat", |r| &r.webcat, |r, v| r.webcat = v),
    ("referer", |r| &r.referer, |r, v| r.referer = v),
    ("respcode", |r| &r.respcode, |r, v| r.respcode = v),
    ("action", |r| &r.action, |r, v| r.action = v),
    ("urischeme", |r| &r.urischeme, |r, v| r.urischeme = v),
    ("uriport", |r| &r.uriport, |r, v| r.uriport = v),
    ("uripath", |r| &r.uripath, |r, v| r.uripath = v),
    ("uriquery", |r| &r.uriquery, |r, v| r.uriquery = v),
    ("uriextension", |r| &r.uriextension, |r, v| r.uriextension = v),
    ("virusid", |r| &r.virusid, |r, v| r.virusid = v),
    ("bcappname", |r| &r.bcappname, |r, v| r.bcappname = v),
    ("bcappoper", |r| &r.bcappoper, |r, v| r.bcappoper = v),
    ("fulluri", |r| &r.fulluri, |r, v| r.fulluri = v),
];

/// The Arrow schema of a kind (without segment metadata).
pub fn schema(kind: Kind) -> SchemaRef {
    static FLOW: OnceLock<SchemaRef> = OnceLock::new();
    static DNS: OnceLock<SchemaRef> = OnceLock::new();
    static PROXY: OnceLock<SchemaRef> = OnceLock::new();
    match kind {
        Kind::Flow => FLOW.get_or_init(flow_schema).clone(),
        Kind::Dns => DNS.get_or_init(dns_schema).clone(),
        Kind::Proxy => PROXY.get_or_init(proxy_schema).clone(),
    }
}

fn flow_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("ts_start", flow_ts_type(), false),
        Field::new("ts_end", flow_ts_type(), false),
        Field::new("proto", DataType::UInt8, false),
        ip_field("src_ip", false),
        Field::new("src_port", DataType::UInt16, false),
        ip_field("dst_ip", false),
        Field::new("dst_port", DataType::UInt16, false),
        Field::new("vlan", DataType::UInt16, false),
        Field::new("packets", DataType::UInt64, false),
        Field::new("bytes", DataType::UInt64, false),
        Field::new("rev_packets", DataType::UInt64, false),
        Field::new("rev_bytes", DataType::UInt64, false),
        Field::new("tcp_flags", DataType::UInt8, false),
        Field::new("rev_tcp_flags", DataType::UInt8, false),
        dict_field("end_reason"),
    ]))
}

fn dns_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        ts("ts"),
        ip_field("client_ip", false),
        Field::new("client_port", DataType::UInt16, false),
        ip_field("server_ip", false),
        Field::new("server_port", DataType::UInt16, false),
        dict_field("transport"),
        Field::new("id", DataType::UInt16, false),
        Field::new("is_response", DataType::Boolean, false),
        Field::new("opcode", DataType::UInt8, false),
        Field::new("rcode", DataType::UInt8, false),
        Field::new("flags", DataType::UInt16, false),
        Field::new("qname", DataType::Utf8, false),
        Field::new("qtype", DataType::UInt16, false),
        Field::new("qclass", DataType::UInt16, false),
        Field::new("an_count", DataType::UInt16, false),
        Field::new("ns_count", DataType::UInt16, false),
        Field::new("ar_count", DataType::UInt16, false),
        Field::new("answers", DataType::List(answers_item()), false),
        Field::new("size", DataType::UInt32, false),
        Field::new("frame_len", DataType::UInt32, false),
        Field::new("latency_ns", DataType::Int64, true),
    ]))
}

/// Proxy columns: Spot's Blue Coat table (§1.3) with `ts` first and the IPs typed.
fn proxy_schema() -> SchemaRef {
    let s = |n: &str| Field::new(n, DataType::Utf8, false);
    let i = |n: &str| Field::new(n, DataType::Int64, false);
    Arc::new(Schema::new(vec![
        ts("ts"),
        s("p_date"),
        s("p_time"),
        ip_field("clientip", true),
        s("host"),
        s("reqmethod"),
        s("useragent"),
        s("resconttype"),
        i("duration"),
        s("username"),
        s("authgroup"),
        s("exceptionid"),
        s("filterresult"),
        s("webcat"),
        s("referer"),
        s("respcode"),
        s("action"),
        s("urischeme"),
        s("uriport"),
        s("uripath"),
        s("uriquery"),
        s("uriextension"),
        ip_field("serverip", true),
        i("scbytes"),
        i("csbytes"),
        s("virusid"),
        s("bcappname"),
        s("bcappoper"),
        s("fulluri"),
    ]))
}

/// An address as the 16 bytes stored in segments.
pub fn ip_to_bytes(ip: IpAddr) -> [u8; 16] {
    match ip {
        IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
        IpAddr::V6(v6) => v6.octets(),
    }
}

/// The 16 stored bytes back to an address (IPv4-mapped → IPv4).
pub fn ip_from_bytes(b: &[u8]) -> IpAddr {
    let mut a = [0u8; 16];
    a.copy_from_slice(&b[..16]);
    let v6 = Ipv6Addr::from(a);
    match v6.to_ipv4_mapped() {
        Some(v4) => IpAddr::V4(v4),
        None => IpAddr::V6(v6),
    }
}

/// Parses an address printed in text form back to the stored form.
pub fn ip_from_text(s: &str) -> Option<IpAddr> {
    s.parse::<Ipv4Addr>().map(IpAddr::V4).ok().or_else(|| s.parse::<Ipv6Addr>().ok().map(IpAddr::V6))
}

fn batch(kind: Kind, columns: Vec<ArrayRef>) -> Result<RecordBatch, SegmentError> {
    RecordBatch::try_new(schema(kind), columns).map_err(SegmentError::Arrow)
}

/// A non-null primitive array over `values` (no builder, no copy).
fn prim_array<T: arrow_array::ArrowPrimitiveType>(values: Vec<T::Native>) -> arrow_array::PrimitiveArray<T> {
    arrow_array::PrimitiveArray::<T>::new(values.into(), None)
}

/// A non-null `Timestamp(Microsecond, "UTC")` array over `values`.
fn flow_ts_array(values: Vec<i64>) -> ArrayRef {
    Arc::new(prim_array::<TimestampMicrosecondType>(values).with_timezone("UTC"))
}

/// A flow time as stored: nanoseconds floored to the microsecond.
fn ns_to_us(ns: i64) -> i64 {
    ns.div_euclid(1000)
}

/// A stored flow time back in nanoseconds; `None` past the range of i64
/// nanoseconds (only a damaged or foreign file holds such a value).
fn us_to_ns(us: i64) -> Option<i64> {
    us.checked_mul(1000)
}

/// The values of a timestamp column in nanoseconds: a nanosecond column's
/// own buffer, a microsecond column scaled into a new one (saturating at the
/// ends of the range); `None` for another type.
pub fn timestamps_ns(col: &dyn Array) -> Option<Cow<'_, [i64]>> {
    match col.data_type() {
        DataType::Timestamp(TimeUnit::Nanosecond, _) => Some(Cow::Borrowed(col.as_primitive_opt::<TimestampNanosecondType>()?.values())),
        DataType::Timestamp(TimeUnit::Microsecond, _) => {
            Some(Cow::Owned(col.as_primitive_opt::<TimestampMicrosecondType>()?.values().iter().map(|&v| v.saturating_mul(1000)).collect()))
        }
        _ => None,
    }
}

/// A non-null `FixedSizeBinary(16)` array over `n` addresses packed in `bytes`.
fn ip_array(bytes: Vec<u8>) -> Result<ArrayRef, SegmentError> {
    Ok(Arc::new(FixedSizeBinaryArray::try_new(16, bytes.into(), None)?))
}

/// Builds a record batch from flow records.
///
/// Every column is filled in one pass over the rows into a plain `Vec` that
/// becomes the Arrow buffer without a copy: per value this is one store,
/// where Arrow's builders add a capacity check and null bookkeeping (this
/// halved the cost per record; see BENCHMARKS.md, issue 4).
pub fn flows_to_batch(rows: &[FlowRecord]) -> Result<RecordBatch, SegmentError> {
    let n = rows.len();
    let mut ts_start = Vec::with_capacity(n);
    let mut ts_end = Vec::with_capacity(n);
    let mut proto = Vec::with_capacity(n);
    let mut src_ip = Vec::with_capacity(n * 16);
    let mut src_port = Vec::with_capacity(n);
    let mut dst_ip = Vec::with_capacity(n * 16);
    let mut dst_port = Vec::with_capacity(n);
    let mut vlan = Vec::with_capacity(n);
    let mut packets = Vec::with_capacity(n);
    let mut bytes = Vec::with_capacity(n);
    let mut rev_packets = Vec::with_capacity(n);
    let mut rev_bytes = Vec::with_capacity(n);
    let mut flags = Vec::with_capacity(n);
    let mut rev_flags = Vec::with_capacity(n);
    let mut end: Vec<u8> = Vec::with_capacity(n);
    for r in rows {
        ts_start.push(ns_to_us(r.ts_start));
        ts_end.push(ns_to_us(r.ts_end));
        proto.push(r.proto);
        src_ip.extend_from_slice(&ip_to_bytes(r.src_ip));
        src_port.push(r.src_port);
        dst_ip.extend_from_slice(&ip_to_bytes(r.dst_ip));
        dst_port.push(r.dst_port);
        vlan.push(r.vlan);
        packets.push(r.packets);
        bytes.push(r.bytes);
        rev_packets.push(r.rev_packets);
        rev_bytes.push(r.rev_bytes);
        flags.push(r.tcp_flags);
        rev_flags.push(r.rev_tcp_flags);
        end.push(r.end_reason as u8 - 1);
    }
    batch(
        Kind::Flow,
        vec![
            flow_ts_array(ts_start),
            flow_ts_array(ts_end),
            Arc::new(prim_array::<UInt8Type>(proto)),
            ip_array(src_ip)?,
            Arc::new(prim_array::<UInt16Type>(src_port)),
            ip_array(dst_ip)?,
            Arc::new(prim_array::<UInt16Type>(dst_port)),
            Arc::new(prim_array::<UInt16Type>(vlan)),
            Arc::new(prim_array::<UInt64Type>(packets)),
            Arc::new(prim_array::<UInt64Type>(bytes)),
            Arc::new(prim_array::<UInt64Type>(rev_packets)),
            Arc::new(prim_array::<UInt64Type>(rev_bytes)),
            Arc::new(prim_array::<UInt8Type>(flags)),
            Arc::new(prim_array::<UInt8Type>(rev_flags)),
            fixed_dict(end, &end_reason_values())?,
        ],
    )
}

/// Builds a record batch from DNS records.
pub fn dns_to_batch(rows: &[DnsRecord]) -> Result<RecordBatch, SegmentError> {
    let n = rows.len();
    let mut ts = TimestampNanosecondBuilder::with_capacity(n).with_timezone("UTC");
    let mut client_ip = FixedSizeBinaryBuilder::with_capacity(n, 16);
    let mut client_port = UInt16Builder::with_capacity(n);
    let mut server_ip = FixedSizeBinaryBuilder::with_capacity(n, 16);
    let mut server_port = UInt16Builder::with_capacity(n);
    let mut transport: Vec<u8> = Vec::with_capacity(n);
    let mut id = UInt16Builder::with_capacity(n);
    let mut is_response = BooleanBuilder::with_capacity(n);
    let mut opcode = UInt8Builder::with_capacity(n);
    let mut rcode = UInt8Builder::with_capacity(n);
    let mut flags = UInt16Builder::with_capacity(n);
    let mut qname = StringBuilder::with_capacity(n, n * 24);
    let mut qtype = UInt16Builder::with_capacity(n);
    let mut qclass = UInt16Builder::with_capacity(n);
    let mut an = UInt16Builder::with_capacity(n);
    let mut ns = UInt16Builder::with_capacity(n);
    let mut ar = UInt16Builder::with_capacity(n);
    let mut size = UInt32Builder::with_capacity(n);
    let mut frame_len = UInt32Builder::with_capacity(n);
    let mut latency = Int64Builder::with_capacity(n);
    // The answers list is built from flat child columns plus offsets: simpler
    // and faster than nested builders.
    let mut offsets: Vec<i32> = Vec::with_capacity(n + 1);
    offsets.push(0);
    let mut a_name = StringBuilder::new();
    let mut a_type = UInt16Builder::new();
    let mut a_class = UInt16Builder::new();
    let mut a_ttl = UInt32Builder::new();
    let mut a_ip = FixedSizeBinaryBuilder::new(16);
    let mut a_target = StringBuilder::new();
    let mut a_data = StringBuilder::new();
    let mut total_answers: usize = 0;
    for r in rows {
        ts.append_value(r.ts);
        client_ip.append_value(ip_to_bytes(r.client_ip)).map_err(SegmentError::Arrow)?;
        client_port.append_value(r.client_port);
        server_ip.append_value(ip_to_bytes(r.server_ip)).map_err(SegmentError::Arrow)?;
        server_port.append_value(r.server_port);
        transport.push(u8::from(r.transport == DnsTransport::Tcp));
        id.append_value(r.id);
        is_response.append_value(r.is_response);
        opcode.append_value(r.opcode);
        rcode.append_value(r.rcode);
        flags.append_value(r.flags);
        qname.append_value(&r.qname);
        qtype.append_value(r.qtype);
        qclass.append_value(r.qclass);
        an.append_value(r.an_count);
        ns.append_value(r.ns_count);
        ar.append_value(r.ar_count);
        size.append_value(r.size);
        frame_len.append_value(r.frame_len);
        latency.append_option(r.latency_ns);
        for a in &r.answers {
            a_name.append_value(&a.name);
            a_type.append_value(a.rtype);
            a_class.append_value(a.rclass);
            a_ttl.append_value(a.ttl);
            match a.ip {
                Some(ip) => a_ip.append_value(ip_to_bytes(ip)).map_err(SegmentError::Arrow)?,
                None => a_ip.append_null(),
            }
            a_target.append_option(a.target.as_deref());
            a_data.append_value(&a.data);
        }
        total_answers += r.answers.len();
        let off = i32::try_from(total_answers)
            .map_err(|_| SegmentError::Invalid("too many DNS answers in one batch".into()))?;
        offsets.push(off);
    }
    let answers_struct = StructArray::try_new(
        answer_fields(),
        vec![
            Arc::new(a_name.finish()),
            Arc::new(a_type.finish()),
            Arc::new(a_class.finish()),
            Arc::new(a_ttl.finish()),
            Arc::new(a_ip.finish()),
            Arc::new(a_target.finish()),
            Arc::new(a_data.finish()),
        ],
        None,
    )
    .map_err(SegmentError::Arrow)?;
    let answers = ListArray::try_new(
        answers_item(),
        OffsetBuffer::new(offsets.into()),
        Arc::new(answers_struct),
        None::<NullBuffer>,
    )
    .map_err(SegmentError::Arrow)?;
    batch(
        Kind::Dns,
        vec![
            Arc::new(ts.finish()),
            Arc::new(client_ip.finish()),
            Arc::new(client_port.finish()),
            Arc::new(server_ip.finish()),
            Arc::new(server_port.finish()),
            fixed_dict(transport, &TRANSPORT_VALUES)?,
            Arc::new(id.finish()),
            Arc::new(is_response.finish()),
            Arc::new(opcode.finish()),
            Arc::new(rcode.finish()),
            Arc::new(flags.finish()),
            Arc::new(qname.finish()),
            Arc::new(qtype.finish()),
            Arc::new(qclass.finish()),
            Arc::new(an.finish()),
            Arc::new(ns.finish()),
            Arc::new(ar.finish()),
            Arc::new(answers),
            Arc::new(size.finish()),
            Arc::new(frame_len.finish()),
            Arc::new(latency.finish()),
        ],
    )
}

/// Builds a record batch from proxy records.
pub fn proxy_to_batch(rows: &[ProxyRecord]) -> Result<RecordBatch, SegmentError> {
    let n = rows.len();
    let mut ts = TimestampNanosecondBuilder::with_capacity(n).with_timezone("UTC");
    let mut clientip = FixedSizeBinaryBuilder::with_capacity(n, 16);
    let mut serverip = FixedSizeBinaryBuilder::with_capacity(n, 16);
    let mut duration = Int64Builder::with_capacity(n);
    let mut scbytes = Int64Builder::with_capacity(n);
    let mut csbytes = Int64Builder::with_capacity(n);
    let mut text: Vec<StringBuilder> =
        PROXY_TEXT.iter().map(|_| StringBuilder::with_capacity(n, n * 8)).collect();
    for r in rows {
        ts.append_value(r.ts);
        match r.clientip {
            Some(ip) => clientip.append_value(ip_to_bytes(ip)).map_err(SegmentError::Arrow)?,
            None => clientip.append_null(),
        }
        match r.serverip {
            Some(ip) => serverip.append_value(ip_to_bytes(ip)).map_err(SegmentError::Arrow)?,
            None => serverip.append_null(),
        }
        duration.append_value(r.duration);
        scbytes.append_value(r.scbytes);
        csbytes.append_value(r.csbytes);
        for ((_, get, _), b) in PROXY_TEXT.iter().zip(&mut text) {
            b.append_value(get(r));
        }
    }
    let sch = schema(Kind::Proxy);
    let mut columns: Vec<ArrayRef> = Vec::with_capacity(sch.fields().len());
    for f in sch.fields() {
        let col: ArrayRef = match f.name().as_str() {
            "ts" => Arc::new(ts.finish()),
            "clientip" => Arc::new(clientip.finish()),
            "serverip" => Arc::new(serverip.finish()),
            "duration" => Arc::new(duration.finish()),
            "scbytes" => Arc::new(scbytes.finish()),
            "csbytes" => Arc::new(csbytes.finish()),
            name => {
                let pos = PROXY_TEXT
                    .iter()
                    .position(|(n, _, _)| *n == name)
                    .ok_or_else(|| SegmentError::Invalid(format!("no builder for proxy column {name}")))?;
                Arc::new(text[pos].finish())
            }
        };
        columns.push(col);
    }
    batch(Kind::Proxy, columns)
}

fn column<'a>(batch: &'a RecordBatch, name: &str) -> Result<&'a ArrayRef, SegmentError> {
    batch
        .column_by_name(name)
        .ok_or_else(|| SegmentError::Invalid(format!("missing column {name}")))
}

fn prim<'a, T: arrow_array::ArrowPrimitiveType>(
    batch: &'a RecordBatch,
    name: &str,
) -> Result<&'a arrow_array::PrimitiveArray<T>, SegmentError> {
    column(batch, name)?
        .as_primitive_opt::<T>()
        .ok_or_else(|| SegmentError::Invalid(format!("column {name} has type {}", column(batch, name).map(|c| c.data_type().to_string()).unwrap_or_default())))
}

fn fsb<'a>(batch: &'a RecordBatch, name: &str) -> Result<&'a FixedSizeBinaryArray, SegmentError> {
    column(batch, name)?
        .as_fixed_size_binary_opt()
        .filter(|a| a.value_length() == 16)
        .ok_or_else(|| SegmentError::Invalid(format!("column {name} is not FixedSizeBinary(16)")))
}

fn opt_ip(a: &FixedSizeBinaryArray, i: usize) -> Option<IpAddr> {
    a.is_valid(i).then(|| ip_from_bytes(a.value(i)))
}

fn strings<'a>(batch: &'a RecordBatch, name: &str) -> Result<&'a StringArray, SegmentError> {
    column(batch, name)?
        .as_string_opt::<i32>()
        .ok_or_else(|| SegmentError::Invalid(format!("column {name} is not Utf8")))
}

/// Reads the values of a dictionary-encoded string column as `&str` per row.
fn dict_values(batch: &RecordBatch, name: &str) -> Result<Vec<String>, SegmentError> {
    let col = column(batch, name)?;
    let dict = col
        .as_dictionary_opt::<UInt8Type>()
        .ok_or_else(|| SegmentError::Invalid(format!("column {name} is not a UInt8 dictionary")))?;
    let values = dict
        .values()
        .as_string_opt::<i32>()
        .ok_or_else(|| SegmentError::Invalid(format!("column {name} dictionary is not Utf8")))?;
    dict.keys()
        .iter()
        .map(|k| {
            let k = k.ok_or_else(|| SegmentError::Invalid(format!("null in {name}")))? as usize;
            if k >= values.len() {
                return Err(SegmentError::Invalid(format!("dictionary key out of range in {name}")));
            }
            Ok(values.value(k).to_string())
        })
        .collect()
}

/// Reads flow records back from a batch (used by the scorer and tests).
pub fn flows_from_batch(batch: &RecordBatch) -> Result<Vec<FlowRecord>, SegmentError> {
    let ts_start = prim::<TimestampMicrosecondType>(batch, "ts_start")?;
    let ts_end = prim::<TimestampMicrosecondType>(batch, "ts_end")?;
    let ns = |us: i64| us_to_ns(us).ok_or_else(|| SegmentError::Invalid(format!("flow time {us} µs is out of range")));
    let proto = prim::<UInt8Type>(batch, "proto")?;
    let src_ip = fsb(batch, "src_ip")?;
    let src_port = prim::<UInt16Type>(batch, "src_port")?;
    let dst_ip = fsb(batch, "dst_ip")?;
    let dst_port = prim::<UInt16Type>(batch, "dst_port")?;
    let vlan = prim::<UInt16Type>(batch, "vlan")?;
    let packets = prim::<UInt64Type>(batch, "packets")?;
    let bytes = prim::<UInt64Type>(batch, "bytes")?;
    let rev_packets = prim::<UInt64Type>(batch, "rev_packets")?;
    let rev_bytes = prim::<UInt64Type>(batch, "rev_bytes")?;
    let flags = prim::<UInt8Type>(batch, "tcp_flags")?;
    let rev_flags = prim::<UInt8Type>(batch, "rev_tcp_flags")?;
    let end = dict_values(batch, "end_reason")?;
    (0..batch.num_rows())
        .map(|i| {
            Ok(FlowRecord {
                ts_start: ns(ts_start.value(i))?,
                ts_end: ns(ts_end.value(i))?,
                proto: proto.value(i),
                src_ip: ip_from_bytes(src_ip.value(i)),
                src_port: src_port.value(i),
                dst_ip: ip_from_bytes(dst_ip.value(i)),
                dst_port: dst_port.value(i),
                vlan: vlan.value(i),
                packets: packets.value(i),
                bytes: bytes.value(i),
                rev_packets: rev_packets.value(i),
                rev_bytes: rev_bytes.value(i),
                tcp_flags: flags.value(i),
                rev_tcp_flags: rev_flags.value(i),
                end_reason: EndReason::parse(&end[i])
                    .ok_or_else(|| SegmentError::Invalid(format!("unknown end_reason {:?}", end[i])))?,
            })
        })
        .collect()
}

/// Reads DNS records back from a batch.
pub fn dns_from_batch(batch: &RecordBatch) -> Result<Vec<DnsRecord>, SegmentError> {
    let ts = prim::<TimestampNanosecondType>(batch, "ts")?;
    let client_ip = fsb(batch, "client_ip")?;
    let client_port = prim::<UInt16Type>(batch, "client_port")?;
    let server_ip = fsb(batch, "server_ip")?;
    let server_port = prim::<UInt16Type>(batch, "server_port")?;
    let transport = dict_values(batch, "transport")?;
    let id = prim::<UInt16Type>(batch, "id")?;
    let is_response = column(batch, "is_response")?
        .as_boolean_opt()
        .ok_or_else(|| SegmentError::Invalid("is_response is not Boolean".into()))?;
    let opcode = prim::<UInt8Type>(batch, "opcode")?;
    let rcode = prim::<UInt8Type>(batch, "rcode")?;
    let flags = prim::<UInt16Type>(batch, "flags")?;
    let qname = strings(batch, "qname")?;
    let qtype = prim::<UInt16Type>(batch, "qtype")?;
    let qclass = prim::<UInt16Type>(batch, "qclass")?;
    let an = prim::<UInt16Type>(batch, "an_count")?;
    let ns = prim::<UInt16Type>(batch, "ns_count")?;
    let ar = prim::<UInt16Type>(batch, "ar_count")?;
    let size = prim::<UInt32Type>(batch, "size")?;
    let frame_len = prim::<UInt32Type>(batch, "frame_len")?;
    let latency = prim::<Int64Type>(batch, "latency_ns")?;
    let answers = column(batch, "answers")?
        .as_list_opt::<i32>()
        .ok_or_else(|| SegmentError::Invalid("answers is not a List".into()))?;
    let items = answers
        .values()
        .as_struct_opt()
        .ok_or_else(|| SegmentError::Invalid("answers items are not Struct".into()))?;
    let item_batch = RecordBatch::from(items.clone());
    let a_name = strings(&item_batch, "name")?;
    let a_type = prim::<UInt16Type>(&item_batch, "type")?;
    let a_class = prim::<UInt16Type>(&item_batch, "class")?;
    let a_ttl = prim::<UInt32Type>(&item_batch, "ttl")?;
    let a_ip = fsb(&item_batch, "ip")?;
    let a_target = strings(&item_batch, "target")?;
    let a_data = strings(&item_batch, "data")?;
    let offsets = answers.value_offsets();
    (0..batch.num_rows())
        .map(|i| {
            let (lo, hi) = (offsets[i] as usize, offsets[i + 1] as usize);
            if lo > hi || hi > item_batch.num_rows() {
                return Err(SegmentError::Invalid("answers offsets out of range".into()));
            }
            let answers = (lo..hi)
                .map(|j| DnsAnswer {
                    name: a_name.value(j).to_string(),
                    rtype: a_type.value(j),
                    rclass: a_class.value(j),
                    ttl: a_ttl.value(j),
                    ip: opt_ip(a_ip, j),
                    target: a_target.is_valid(j).then(|| a_target.value(j).to_string()),
                    data: a_data.value(j).to_string(),
                })
                .collect();
            Ok(DnsRecord {
                ts: ts.value(i),
                client_ip: ip_from_bytes(client_ip.value(i)),
                client_port: client_port.value(i),
                server_ip: ip_from_bytes(server_ip.value(i)),
                server_port: server_port.value(i),
                transport: DnsTransport::parse(&transport[i])
                    .ok_or_else(|| SegmentError::Invalid(format!("unknown transport {:?}", transport[i])))?,
                id: id.value(i),
                is_response: is_response.value(i),
                opcode: opcode.value(i),
                rcode: rcode.value(i),
                flags: flags.value(i),
                qname: qname.value(i).to_string(),
                qtype: qtype.value(i),
                qclass: qclass.value(i),
                an_count: an.value(i),
                ns_count: ns.value(i),
                ar_count: ar.value(i),
                answers,
                size: size.value(i),
                frame_len: frame_len.value(i),
                latency_ns: latency.is_valid(i).then(|| latency.value(i)),
            })
        })
        .collect()
}

/// Reads proxy records back from a batch.
pub fn proxy_from_batch(batch: &RecordBatch) -> Result<Vec<ProxyRecord>, SegmentError> {
    let ts = prim::<TimestampNanosecondType>(batch, "ts")?;
    let clientip = fsb(batch, "clientip")?;
    let serverip = fsb(batch, "serverip")?;
    let duration = prim::<Int64Type>(batch, "duration")?;
    let scbytes = prim::<Int64Type>(batch, "scbytes")?;
    let csbytes = prim::<Int64Type>(batch, "csbytes")?;
    let text: Vec<&StringArray> =
        PROXY_TEXT.iter().map(|(name, _, _)| strings(batch, name)).collect::<Result<_, _>>()?;
    Ok((0..batch.num_rows())
        .map(|i| {
            let mut r = ProxyRecord {
                ts: ts.value(i),
                clientip: opt_ip(clientip, i),
                serverip: opt_ip(serverip, i),
                duration: duration.value(i),
                scbytes: scbytes.value(i),
                csbytes: csbytes.value(i),
                ..ProxyRecord::default()
            };
            for ((_, _, set), col) in PROXY_TEXT.iter().zip(&text) {
                set(&mut r, col.value(i).to_string());
            }
            r
        })
        .collect())
}

/// The columns of `kind` as layout `version` wrote them (`version` between
/// [`OLDEST_SCHEMA_VERSION`] and [`SCHEMA_VERSION`]).
pub fn schema_of_version(kind: Kind, version: u32) -> SchemaRef {
    let current = schema(kind);
    if flow_times_in_ns(kind, version) { Arc::new(older_columns(kind, version, &current)) } else { current }
}

/// `columns` (a kind's schema, or a derived table's that includes its
/// columns) with the types layout `version` used.
pub fn older_columns(kind: Kind, version: u32, columns: &Schema) -> Schema {
    if flow_times_in_ns(kind, version) { with_flow_time_type(columns, ts_type()) } else { columns.clone() }
}

/// `columns` with the flow time columns' type set to `ty`.
fn with_flow_time_type(columns: &Schema, ty: DataType) -> Schema {
    let fields: Vec<Field> = columns
        .fields()
        .iter()
        .map(|f| {
            let f = f.as_ref().clone();
            if FLOW_TIME_COLUMNS.contains(&f.name().as_str()) { f.with_data_type(ty.clone()) } else { f }
        })
        .collect();
    Schema::new_with_metadata(fields, columns.metadata().clone())
}

/// Brings a batch written with layout `version` to the current one: version
/// 1 flow times (nanoseconds) are floored to microseconds. Works on a
/// derived table's batches too (columns are found by name).
pub fn upgrade_batch(kind: Kind, version: u32, batch: RecordBatch) -> Result<RecordBatch, SegmentError> {
    if !flow_times_in_ns(kind, version) {
        return Ok(batch);
    }
    let schema = batch.schema();
    let columns = schema
        .fields()
        .iter()
        .zip(batch.columns())
        .map(|(f, c)| {
            if !FLOW_TIME_COLUMNS.contains(&f.name().as_str()) {
                return Ok(c.clone());
            }
            let old = c
                .as_primitive_opt::<TimestampNanosecondType>()
                .ok_or_else(|| SegmentError::Invalid(format!("version {version} column {} is not nanoseconds", f.name())))?;
            Ok(flow_ts_array(old.values().iter().map(|&v| ns_to_us(v)).collect()))
        })
        .collect::<Result<Vec<ArrayRef>, SegmentError>>()?;
    Ok(RecordBatch::try_new(Arc::new(with_flow_time_type(&schema, flow_ts_type())), columns)?)
}

/// Checks that a batch read from disk has exactly the columns of `kind`
/// (names, types, nullability), ignoring metadata.
pub fn check_schema(kind: Kind, found: &Schema) -> Result<(), SegmentError> {
    check_schema_version(kind, SCHEMA_VERSION, found)
}

/// [`check_schema`] against the columns of layout `version`.
pub fn check_schema_version(kind: Kind, version: u32, found: &Schema) -> Result<(), SegmentError> {
    let want = schema_of_version(kind, version);
    if want.fields().len() != found.fields().len() {
        return Err(SegmentError::Invalid(format!(
            "{kind} schema has {} columns, expected {}",
            found.fields().len(),
            want.fields().len()
        )));
    }
    for (w, f) in want.fields().iter().zip(found.fields()) {
        if w.name() != f.name() || !same_type(w.data_type(), f.data_type()) {
            return Err(SegmentError::Invalid(format!(
                "column {} ({}) does not match expected {} ({})",
                f.name(),
                f.data_type(),
                w.name(),
                w.data_type()
            )));
        }
    }
    Ok(())
}

/// Type equality that ignores field metadata inside nested types.
fn same_type(a: &DataType, b: &DataType) -> bool {
    match (a, b) {
        (DataType::List(x), DataType::List(y)) => same_type(x.data_type(), y.data_type()),
        (DataType::Struct(x), DataType::Struct(y)) => {
            x.len() == y.len()
                && x.iter().zip(y.iter()).all(|(p, q)| p.name() == q.name() && same_type(p.data_type(), q.data_type()))
        }
        _ => a == b,
    }
}

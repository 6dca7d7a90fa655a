//! Operational metrics: one typed catalogue of names, one registry of live
//! values, Prometheus text exposition, and a tiny `/metrics` HTTP endpoint.
//!
//! Every metric Osprey exports is a variant of [`Metric`], with its type,
//! help text and label set declared once in [`Metric::desc`]. The naming
//! rules (checked by a unit test over [`Metric::ALL`]):
//!
//! - `osprey_<what>_<unit>_total` for counters; gauges and summaries carry no
//!   `_total`; units are base units (`seconds`, `bytes`, `ratio`) or the
//!   counted thing in the plural (`packets`, `flows`, `records`, ...);
//! - labels have bounded values: either a fixed list declared with the metric
//!   (skip reasons, record kinds, ring names) or values fixed by the
//!   configuration at start-up (interface names);
//! - counters are monotonic, totals since the process started; rates are
//!   Prometheus's job.
//!
//! Hot paths never touch the registry: a stage holds [`Counter`] and [`Gauge`]
//! handles (one atomic each) and updates them once per batch, not per packet.
//! Registration validates names and label values and is idempotent (the same
//! series registered twice shares one value).

use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use hdrhistogram::Histogram;

use crate::dns::{DnsError, TcpDnsSkip};
use crate::packet::SkipReason;

/// Prometheus metric types used by Osprey.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricType {
    /// Monotonic total.
    Counter,
    /// A value that goes up and down.
    Gauge,
    /// Quantiles plus `_sum` and `_count`.
    Summary,
}

impl MetricType {
    fn as_str(self) -> &'static str {
        match self {
            MetricType::Counter => "counter",
            MetricType::Gauge => "gauge",
            MetricType::Summary => "summary",
        }
    }
}

/// The values a label may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LabelValues {
    /// Exactly these values.
    Fixed(&'static [&'static str]),
    /// Values fixed by the configuration when the process starts (interface
    /// names, the build version): a handful, never derived from traffic.
    Configured,
}

/// One label of a metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LabelDesc {
    /// Label name.
    pub name: &'static str,
    /// Allowed values.
    pub values: LabelValues,
}

/// The declaration of one metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetricDesc {
    /// Full exposition name.
    pub name: &'static str,
    /// `# HELP` text (one sentence).
    pub help: &'static str,
    /// Type.
    pub kind: MetricType,
    /// Labels, in exposition order.
    pub labels: &'static [LabelDesc],
}

/// Names of the DNS decode error kinds, as label values.
pub const DNS_ERROR_KINDS: [&str; DnsError::KINDS.len()] = DnsError::KINDS;

const fn skip_reason_names() -> [&'static str; SkipReason::COUNT] {
    let mut out = [""; SkipReason::COUNT];
    let mut i = 0;
    while i < SkipReason::COUNT {
        out[i] = SkipReason::ALL[i].as_str();
        i += 1;
    }
    out
}

/// [`SkipReason`] names, as label values.
pub const SKIP_REASONS: [&str; SkipReason::COUNT] = skip_reason_names();

/// [`TcpDnsSkip`] names, as label values.
pub const TCP_DNS_SKIPS: [&str; TcpDnsSkip::ALL.len()] = ["retransmission", "gap", "bad_length", "abandoned"];

/// Capture sources, as label values.
pub const SOURCES: [&str; 3] = ["afpacket", "xdp", "replay"];

/// Capture modes, as label values: how packets reach userspace.
pub const CAPTURE_MODES: [&str; 7] =
    ["socket", "tpacket_v3", "xdp_native", "xdp_generic", "af_xdp_copy", "af_xdp_zerocopy", "replay"];

/// Why the capture side lost a packet, as label values: `socket_buffer`
/// (the kernel's socket queue was full), `interface` (the interface's own
/// `rx_dropped` grew while capturing), `ring_full` (the ring towards the
/// decoder was full).
pub const CAPTURE_DROP_REASONS: [&str; 3] = ["socket_buffer", "interface", "ring_full"];

/// Record kinds, as label values.
pub const RECORD_KINDS: [&str; 2] = ["flow", "dns"];

/// Pipeline rings, as label values.
pub const RINGS: [&str; 2] = ["packets", "records"];

/// Kernel rings (the XDP path), as label values.
pub const KERNEL_RINGS: [&str; 2] = ["dns", "flow_ends"];

/// AF_XDP socket binding modes, as label values.
pub const AF_XDP_MODES: [&str; 2] = ["copy", "zerocopy"];

/// Classes of packets the XDP program redirects to AF_XDP sockets
/// (`OSPREY_XSK_CLASS_*`), as label values.
pub const AF_XDP_CLASSES: [&str; 4] = ["tcp_dns", "fragment", "large_dns", "sample"];

const IFACE: LabelDesc = LabelDesc { name: "iface", values: LabelValues::Configured };
const KIND: LabelDesc = LabelDesc { name: "kind", values: LabelValues::Fixed(&RECORD_KINDS) };
const RING: LabelDesc = LabelDesc { name: "ring", values: LabelValues::Fixed(&RINGS) };

/// Every metric Osprey exports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Metric {
    /// `osprey_build_info`
    BuildInfo,
    /// `osprey_capture_info`
    CaptureInfo,
    /// `osprey_capture_received_packets_total`
    CaptureReceivedPackets,
    /// `osprey_capture_received_bytes_total`
    CaptureReceivedBytes,
    /// `osprey_capture_dropped_packets_total`
    CaptureDroppedPackets,
    /// `osprey_decode_skipped_packets_total`
    DecodeSkippedPackets,
    /// `osprey_flow_table_active_flows`
    FlowTableActiveFlows,
    /// `osprey_flow_table_exported_flows_total`
    FlowTableExportedFlows,
    /// `osprey_flow_table_refused_packets_total`
    FlowTableRefusedPackets,
    /// `osprey_dns_decoded_messages_total`
    DnsDecodedMessages,
    /// `osprey_dns_undecodable_messages_total`
    DnsUndecodableMessages,
    /// `osprey_dns_tcp_skipped_segments_total`
    DnsTcpSkippedSegments,
    /// `osprey_ring_dropped_records_total`
    RingDroppedRecords,
    /// `osprey_ring_occupancy_ratio`
    RingOccupancy,
    /// `osprey_ring_capacity_slots`
    RingCapacity,
    /// `osprey_kernel_ring_dropped_records_total`
    KernelRingDroppedRecords,
    /// `osprey_kernel_skipped_packets_total`
    KernelSkippedPackets,
    /// `osprey_kernel_flow_table_refused_packets_total`
    KernelFlowTableRefusedPackets,
    /// `osprey_af_xdp_info`
    AfXdpInfo,
    /// `osprey_af_xdp_redirected_packets_total`
    AfXdpRedirectedPackets,
    /// `osprey_sample_written_packets_total`
    SampleWrittenPackets,
    /// `osprey_sample_dropped_packets_total`
    SampleDroppedPackets,
    /// `osprey_writer_segments_total`
    WriterSegments,
    /// `osprey_writer_bytes_total`
    WriterBytes,
    /// `osprey_writer_records_total`
    WriterRecords,
    /// `osprey_capture_to_segment_latency_seconds`
    CaptureToSegmentLatency,
}

impl Metric {
    /// Every metric, in exposition order.
    pub const ALL: [Metric; 26] = [
        Metric::BuildInfo,
        Metric::CaptureInfo,
        Metric::CaptureReceivedPackets,
        Metric::CaptureReceivedBytes,
        Metric::CaptureDroppedPackets,
        Metric::DecodeSkippedPackets,
        Metric::FlowTableActiveFlows,
        Metric::FlowTableExportedFlows,
        Metric::FlowTableRefusedPackets,
        Metric::DnsDecodedMessages,
        Metric::DnsUndecodableMessages,
        Metric::DnsTcpSkippedSegments,
        Metric::RingDroppedRecords,
        Metric::RingOccupancy,
        Metric::RingCapacity,
        Metric::KernelRingDroppedRecords,
        Metric::KernelSkippedPackets,
        Metric::KernelFlowTableRefusedPackets,
        Metric::AfXdpInfo,
        Metric::AfXdpRedirectedPackets,
        Metric::SampleWrittenPackets,
        Metric::SampleDroppedPackets,
        Metric::WriterSegments,
        Metric::WriterBytes,
        Metric::WriterRecords,
        Metric::CaptureToSegmentLatency,
    ];

    /// The declaration.
    pub const fn desc(self) -> MetricDesc {
        use LabelValues::Fixed;
        use MetricType::{Counter, Gauge, Summary};
        let (name, help, kind, labels): (&str, &str, MetricType, &'static [LabelDesc]) = match self {
            Metric::BuildInfo => (
                "osprey_build_info",
                "Always 1; the version label says which Osprey is running.",
                Gauge,
                &[LabelDesc { name: "version", values: LabelValues::Configured }],
            ),
            Metric::CaptureInfo => (
                "osprey_capture_info",
                "Always 1 per capturing interface; labels say which source and mode deliver its packets.",
                Gauge,
                &[
                    IFACE,
                    LabelDesc { name: "source", values: Fixed(&SOURCES) },
                    LabelDesc { name: "mode", values: Fixed(&CAPTURE_MODES) },
                ],
            ),
            Metric::CaptureReceivedPackets => (
                "osprey_capture_received_packets_total",
                "Packets the capture source delivered to the pipeline.",
                Counter,
                &[IFACE],
            ),
            Metric::CaptureReceivedBytes => (
                "osprey_capture_received_bytes_total",
                "Wire bytes of the packets the capture source delivered.",
                Counter,
                &[IFACE],
            ),
            Metric::CaptureDroppedPackets => (
                "osprey_capture_dropped_packets_total",
                "Packets lost before decoding, by where they were lost.",
                Counter,
                &[IFACE, LabelDesc { name: "reason", values: Fixed(&CAPTURE_DROP_REASONS) }],
            ),
            Metric::DecodeSkippedPackets => (
                "osprey_decode_skipped_packets_total",
                "Packets not accounted to any flow, by decoder reason.",
                Counter,
                &[LabelDesc { name: "reason", values: Fixed(&SKIP_REASONS) }],
            ),
            Metric::FlowTableActiveFlows => {
                ("osprey_flow_table_active_flows", "Flows currently open in the flow table.", Gauge, &[])
            }
            Metric::FlowTableExportedFlows => {
                ("osprey_flow_table_exported_flows_total", "Flow records the flow table ended and exported.", Counter, &[])
            }
            Metric::FlowTableRefusedPackets => (
                "osprey_flow_table_refused_packets_total",
                "Packets not accounted because they would have created a flow in a full flow table.",
                Counter,
                &[],
            ),
            Metric::DnsDecodedMessages => {
                ("osprey_dns_decoded_messages_total", "DNS messages decoded into DNS records.", Counter, &[])
            }
            Metric::DnsUndecodableMessages => (
                "osprey_dns_undecodable_messages_total",
                "DNS payloads that could not be decoded, by error kind.",
                Counter,
                &[LabelDesc { name: "reason", values: Fixed(&DNS_ERROR_KINDS) }],
            ),
            Metric::DnsTcpSkippedSegments => (
                "osprey_dns_tcp_skipped_segments_total",
                "DNS-over-TCP segments that contributed nothing, by reason.",
                Counter,
                &[LabelDesc { name: "reason", values: Fixed(&TCP_DNS_SKIPS) }],
            ),
            Metric::RingDroppedRecords => (
                "osprey_ring_dropped_records_total",
                "Records dropped because the ring towards the segment writer was full.",
                Counter,
                &[KIND],
            ),
            Metric::RingOccupancy => (
                "osprey_ring_occupancy_ratio",
                "Fraction of a pipeline ring's slots in use when scraped.",
                Gauge,
                &[RING],
            ),
            Metric::RingCapacity => ("osprey_ring_capacity_slots", "Slots of a pipeline ring.", Gauge, &[RING]),
            Metric::KernelRingDroppedRecords => (
                "osprey_kernel_ring_dropped_records_total",
                "Records the kernel programs could not put on a full kernel ring.",
                Counter,
                &[IFACE, LabelDesc { name: "ring", values: Fixed(&KERNEL_RINGS) }],
            ),
            Metric::KernelSkippedPackets => (
                "osprey_kernel_skipped_packets_total",
                "Packets the XDP program did not account to any flow, by decoder reason.",
                Counter,
                &[IFACE, LabelDesc { name: "reason", values: Fixed(&SKIP_REASONS) }],
            ),
            Metric::KernelFlowTableRefusedPackets => (
                "osprey_kernel_flow_table_refused_packets_total",
                "Packets the XDP program could not account because they would have created a flow in a full flow map.",
                Counter,
                &[IFACE],
            ),
            Metric::AfXdpInfo => (
                "osprey_af_xdp_info",
                "Always 1 per AF_XDP socket mode in use on an interface (copy or zero-copy).",
                Gauge,
                &[IFACE, LabelDesc { name: "mode", values: Fixed(&AF_XDP_MODES) }],
            ),
            Metric::AfXdpRedirectedPackets => (
                "osprey_af_xdp_redirected_packets_total",
                "Packets the XDP program handed to AF_XDP sockets, by class (a packet may be in several).",
                Counter,
                &[IFACE, LabelDesc { name: "class", values: Fixed(&AF_XDP_CLASSES) }],
            ),
            Metric::SampleWrittenPackets => (
                "osprey_sample_written_packets_total",
                "Sampled packets written into pcapng segments.",
                Counter,
                &[IFACE],
            ),
            Metric::SampleDroppedPackets => (
                "osprey_sample_dropped_packets_total",
                "Sampled packets dropped because the pcapng writer's queue was full.",
                Counter,
                &[IFACE],
            ),
            Metric::WriterSegments => {
                ("osprey_writer_segments_total", "Segment files published under their final names.", Counter, &[KIND])
            }
            Metric::WriterBytes => ("osprey_writer_bytes_total", "Bytes of the segment files published.", Counter, &[KIND]),
            Metric::WriterRecords => {
                ("osprey_writer_records_total", "Records in the segment files published.", Counter, &[KIND])
            }
            Metric::CaptureToSegmentLatency => (
                "osprey_capture_to_segment_latency_seconds",
                "Time from a packet entering the pipeline to the segment holding its record being published.",
                Summary,
                &[],
            ),
        };
        MetricDesc { name, help, kind, labels }
    }
}

/// Errors of metric registration and of the metrics endpoint.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MetricsError {
    /// A series was registered with the wrong handle type.
    #[error("{name} is a {declared}, not a {requested}")]
    WrongType {
        /// Metric name.
        name: &'static str,
        /// Its declared type.
        declared: &'static str,
        /// The type asked for.
        requested: &'static str,
    },
    /// The label names differ from the declaration.
    #[error("{name} takes labels {expected:?}, got {got:?}")]
    Labels {
        /// Metric name.
        name: &'static str,
        /// Declared label names.
        expected: Vec<&'static str>,
        /// Given label names.
        got: Vec<String>,
    },
    /// A label value is not one of the declared values.
    #[error("{name}: label {label}={value:?} is not one of the declared values")]
    LabelValue {
        /// Metric name.
        name: &'static str,
        /// Label name.
        label: &'static str,
        /// The rejected value.
        value: String,
    },
    /// The endpoint could not listen.
    #[error("listening on {addr}")]
    Listen {
        /// The address.
        addr: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// A monotonic counter handle (clone freely; all clones share the value).
#[derive(Debug, Clone, Default)]
pub struct Counter(Arc<AtomicU64>);

impl Counter {
    /// Adds `n`.
    #[inline]
    pub fn add(&self, n: u64) {
        if n != 0 {
            self.0.fetch_add(n, Ordering::Relaxed);
        }
    }
    /// Adds one.
    #[inline]
    pub fn inc(&self) {
        self.add(1);
    }
    /// The current value.
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A gauge handle holding an `f64`.
#[derive(Debug, Clone, Default)]
pub struct Gauge(Arc<AtomicU64>);

impl Gauge {
    /// Sets the value.
    #[inline]
    pub fn set(&self, v: f64) {
        self.0.store(v.to_bits(), Ordering::Relaxed);
    }
    /// The current value.
    pub fn get(&self) -> f64 {
        f64::from_bits(self.0.load(Ordering::Relaxed))
    }
}

/// Quantiles exported for summaries.
pub const QUANTILES: [f64; 4] = [0.5, 0.9, 0.99, 0.999];

/// A latency recorder backed by an HDR histogram (nanosecond values, 3
/// significant digits, 1 µs .. 1 h; larger values are clamped). Exported as a
/// summary in seconds, cumulative since start-up.
#[derive(Clone)]
pub struct Latency(Arc<Mutex<LatencyInner>>);

struct LatencyInner {
    hist: Histogram<u64>,
    sum_ns: u128,
}

impl std::fmt::Debug for Latency {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Latency").field("count", &self.count()).finish()
    }
}

const LATENCY_MIN_NS: u64 = 1_000;
const LATENCY_MAX_NS: u64 = 3_600_000_000_000;

impl Default for Latency {
    fn default() -> Self {
        Latency::new()
    }
}

impl Latency {
    /// An empty recorder.
    pub fn new() -> Self {
        let hist = Histogram::new_with_bounds(LATENCY_MIN_NS, LATENCY_MAX_NS, 3).expect("static bounds are valid");
        Latency(Arc::new(Mutex::new(LatencyInner { hist, sum_ns: 0 })))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, LatencyInner> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records `count` observations of `ns` nanoseconds.
    pub fn record_n(&self, ns: u64, count: u64) {
        let mut g = self.lock();
        let v = ns.clamp(LATENCY_MIN_NS, LATENCY_MAX_NS);
        let _ = g.hist.record_n(v, count);
        g.sum_ns += u128::from(ns) * u128::from(count);
    }

    /// Records many `(ns, count)` observations under one lock.
    pub fn record_all(&self, obs: impl IntoIterator<Item = (u64, u64)>) {
        let mut g = self.lock();
        for (ns, count) in obs {
            let v = ns.clamp(LATENCY_MIN_NS, LATENCY_MAX_NS);
            let _ = g.hist.record_n(v, count);
            g.sum_ns += u128::from(ns) * u128::from(count);
        }
    }

    /// Observations so far.
    pub fn count(&self) -> u64 {
        self.lock().hist.len()
    }

    /// The value at quantile `q` (0..=1), in nanoseconds (0 when empty).
    pub fn quantile_ns(&self, q: f64) -> u64 {
        let g = self.lock();
        if g.hist.is_empty() { 0 } else { g.hist.value_at_quantile(q) }
    }

    fn snapshot(&self) -> (Vec<(f64, f64)>, f64, u64) {
        let g = self.lock();
        let qs = QUANTILES
            .iter()
            .map(|&q| (q, if g.hist.is_empty() { f64::NAN } else { g.hist.value_at_quantile(q) as f64 / 1e9 }))
            .collect();
        (qs, g.sum_ns as f64 / 1e9, g.hist.len())
    }
}

enum Value {
    Counter(Counter),
    Gauge(Gauge),
    GaugeFn(Box<dyn Fn() -> f64 + Send + Sync>),
    Summary(Latency),
}

struct Series {
    metric: Metric,
    labels: Vec<(&'static str, String)>,
    value: Value,
}

/// The set of live series. Cheap to share (`Arc` inside); registration takes
/// a lock, updates through handles do not.
#[derive(Clone, Default)]
pub struct Registry(Arc<Mutex<Vec<Series>>>);

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry").field("series", &self.lock().len()).finish()
    }
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Registry::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Series>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn check(metric: Metric, want: MetricType, labels: &[(&str, &str)]) -> Result<Vec<(&'static str, String)>, MetricsError> {
        let d = metric.desc();
        if d.kind != want {
            return Err(MetricsError::WrongType { name: d.name, declared: d.kind.as_str(), requested: want.as_str() });
        }
        if d.labels.len() != labels.len() || d.labels.iter().zip(labels).any(|(l, (n, _))| l.name != *n) {
            return Err(MetricsError::Labels {
                name: d.name,
                expected: d.labels.iter().map(|l| l.name).collect(),
                got: labels.iter().map(|(n, _)| (*n).to_string()).collect(),
            });
        }
        let mut out = Vec::with_capacity(labels.len());
        for (l, (_, v)) in d.labels.iter().zip(labels) {
            if let LabelValues::Fixed(allowed) = l.values
                && !allowed.contains(v)
            {
                return Err(MetricsError::LabelValue { name: d.name, label: l.name, value: (*v).to_string() });
            }
            out.push((l.name, (*v).to_string()));
        }
        Ok(out)
    }

    fn find(&self, metric: Metric, labels: &[(&'static str, String)]) -> Option<usize> {
        self.lock().iter().position(|s| s.metric == metric && s.labels == labels)
    }

    /// The counter `metric{labels}` (registered on first use).
    pub fn counter(&self, metric: Metric, labels: &[(&str, &str)]) -> Result<Counter, MetricsError> {
        let labels = Self::check(metric, MetricType::Counter, labels)?;
        let mut g = self.lock();
        if let Some(s) = g.iter().find(|s| s.metric == metric && s.labels == labels)
            && let Value::Counter(c) = &s.value
        {
            return Ok(c.clone());
        }
        let c = Counter::default();
        g.push(Series { metric, labels, value: Value::Counter(c.clone()) });
        Ok(c)
    }

    /// The gauge `metric{labels}` (registered on first use).
    pub fn gauge(&self, metric: Metric, labels: &[(&str, &str)]) -> Result<Gauge, MetricsError> {
        let labels = Self::check(metric, MetricType::Gauge, labels)?;
        let mut g = self.lock();
        if let Some(s) = g.iter().find(|s| s.metric == metric && s.labels == labels)
            && let Value::Gauge(v) = &s.value
        {
            return Ok(v.clone());
        }
        let v = Gauge::default();
        g.push(Series { metric, labels, value: Value::Gauge(v.clone()) });
        Ok(v)
    }

    /// A gauge computed when scraped (ring occupancy). Replaces an earlier one
    /// with the same labels.
    pub fn gauge_fn(
        &self,
        metric: Metric,
        labels: &[(&str, &str)],
        f: impl Fn() -> f64 + Send + Sync + 'static,
    ) -> Result<(), MetricsError> {
        let labels = Self::check(metric, MetricType::Gauge, labels)?;
        if let Some(i) = self.find(metric, &labels) {
            self.lock().remove(i);
        }
        self.lock().push(Series { metric, labels, value: Value::GaugeFn(Box::new(f)) });
        Ok(())
    }

    /// The summary `metric` (registered on first use).
    pub fn latency(&self, metric: Metric) -> Result<Latency, MetricsError> {
        let labels = Self::check(metric, MetricType::Summary, &[])?;
        let mut g = self.lock();
        if let Some(s) = g.iter().find(|s| s.metric == metric && s.labels == labels)
            && let Value::Summary(l) = &s.value
        {
            return Ok(l.clone());
        }
        let l = Latency::new();
        g.push(Series { metric, labels, value: Value::Summary(l.clone()) });
        Ok(l)
    }

    /// Names of the metrics with at least one series.
    pub fn registered(&self) -> Vec<&'static str> {
        let g = self.lock();
        Metric::ALL.iter().filter(|m| g.iter().any(|s| s.metric == **m)).map(|m| m.desc().name).collect()
    }

    /// The Prometheus text exposition (format 0.0.4) of every series.
    pub fn render(&self) -> String {
        let g = self.lock();
        let mut out = String::with_capacity(8 * 1024);
        for m in Metric::ALL {
            let series: Vec<&Series> = g.iter().filter(|s| s.metric == m).collect();
            if series.is_empty() {
                continue;
            }
            let d = m.desc();
            let _ = writeln!(out, "# HELP {} {}", d.name, d.help);
            let _ = writeln!(out, "# TYPE {} {}", d.name, d.kind.as_str());
            for s in series {
                match &s.value {
                    Value::Counter(c) => line(&mut out, d.name, &s.labels, None, c.get() as f64),
                    Value::Gauge(v) => line(&mut out, d.name, &s.labels, None, v.get()),
                    Value::GaugeFn(f) => line(&mut out, d.name, &s.labels, None, f()),
                    Value::Summary(l) => {
                        let (qs, sum, count) = l.snapshot();
                        for (q, v) in qs {
                            line(&mut out, d.name, &s.labels, Some(q), v);
                        }
                        line(&mut out, &format!("{}_sum", d.name), &s.labels, None, sum);
                        line(&mut out, &format!("{}_count", d.name), &s.labels, None, count as f64);
                    }
                }
            }
        }
        out
    }
}

fn line(out: &mut String, name: &str, labels: &[(&'static str, String)], quantile: Option<f64>, v: f64) {
    out.push_str(name);
    if !labels.is_empty() || quantile.is_some() {
        out.push('{');
        let mut first = true;
        for (k, val) in labels {
            if !first {
                out.push(',');
            }
            first = false;
            let _ = write!(out, "{k}=\"");
            for ch in val.chars() {
                match ch {
                    '\\' => out.push_str("\\\\"),
                    '"' => out.push_str("\\\""),
                    '\n' => out.push_str("\\n"),
                    c => out.push(c),
                }
            }
            out.push('"');
        }
        if let Some(q) = quantile {
            if !first {
                out.push(',');
            }
            let _ = write!(out, "quantile=\"{q}\"");
        }
        out.push('}');
    }
    out.push(' ');
    if v.is_nan() {
        out.push_str("NaN");
    } else if v.fract() == 0.0 && v.abs() < 1e15 {
        let _ = write!(out, "{}", v as i64);
    } else {
        let _ = write!(out, "{v}");
    }
    out.push('\n');
}

/// A running `/metrics` endpoint; stops when dropped or on [`MetricsServer::stop`].
#[derive(Debug)]
pub struct MetricsServer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl MetricsServer {
    /// Serves `registry` on `addr` (`host:port`; port 0 picks a free one).
    /// One small thread, HTTP/1.0-style: each request gets the exposition of
    /// `GET /metrics` (anything else is 404) and the connection is closed.
    pub fn start(addr: &str, registry: Registry) -> Result<MetricsServer, MetricsError> {
        let listener = TcpListener::bind(addr).map_err(|source| MetricsError::Listen { addr: addr.to_string(), source })?;
        let local = listener.local_addr().map_err(|source| MetricsError::Listen { addr: addr.to_string(), source })?;
        listener.set_nonblocking(true).map_err(|source| MetricsError::Listen { addr: addr.to_string(), source })?;
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = stop.clone();
        let thread = std::thread::Builder::new()
            .name("osprey-metrics".into())
            .spawn(move || {
                while !stop2.load(Ordering::Relaxed) {
                    match listener.accept() {
                        Ok((stream, _)) => {
                            if let Err(e) = respond(stream, &registry) {
                                tracing::debug!("metrics request: {e}");
                            }
                        }
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                            std::thread::sleep(Duration::from_millis(50));
                        }
                        Err(e) => {
                            tracing::warn!("metrics accept: {e}");
                            std::thread::sleep(Duration::from_millis(200));
                        }
                    }
                }
            })
            .map_err(|source| MetricsError::Listen { addr: addr.to_string(), source })?;
        Ok(MetricsServer { addr: local, stop, thread: Some(thread) })
    }

    /// The address actually bound.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops serving and waits for the thread.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn respond(mut stream: TcpStream, registry: &Registry) -> std::io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    stream.set_write_timeout(Some(Duration::from_secs(5)))?;
    // Read the request head (bounded); only the request line matters.
    let mut buf = [0u8; 4096];
    let mut n = 0;
    while n < buf.len() {
        let k = stream.read(&mut buf[n..])?;
        if k == 0 {
            break;
        }
        n += k;
        if buf[..n].windows(4).any(|w| w == b"\r\n\r\n") || buf[..n].windows(2).any(|w| w == b"\n\n") {
            break;
        }
    }
    let head = String::from_utf8_lossy(&buf[..n]);
    let mut parts = head.split_whitespace();
    let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let path = path.split('?').next().unwrap_or("");
    let (status, ctype, body) = if (method == "GET" || method == "HEAD") && path == "/metrics" {
        ("200 OK", "text/plain; version=0.0.4; charset=utf-8", registry.render())
    } else if method == "GET" && path == "/" {
        ("200 OK", "text/plain; charset=utf-8", "osprey: metrics at /metrics\n".to_string())
    } else {
        ("404 Not Found", "text/plain; charset=utf-8", "not found\n".to_string())
    };
    let head = format!("HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len());
    stream.write_all(head.as_bytes())?;
    if method != "HEAD" {
        stream.write_all(body.as_bytes())?;
    }
    stream.flush()
}

/// Fetches `http://addr/metrics` (tests and `osprey capture` self-checks).
pub fn scrape(addr: SocketAddr) -> std::io::Result<String> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: osprey\r\nConnection: close\r\n\r\n")?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    match out.split_once("\r\n\r\n") {
        Some((head, body)) if head.starts_with("HTTP/1.1 200") => Ok(body.to_string()),
        _ => Err(std::io::Error::other(format!("unexpected response: {}", out.lines().next().unwrap_or("")))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Units a counter may count (the token before `_total`).
    const COUNTER_UNITS: [&str; 8] = ["packets", "bytes", "flows", "records", "messages", "segments", "seconds", "errors"];
    /// Units a gauge or summary name may end with.
    const GAUGE_UNITS: [&str; 8] = ["info", "ratio", "bytes", "seconds", "flows", "slots", "packets", "records"];
    /// Tokens that betray a non-base unit.
    const NON_BASE: [&str; 18] = [
        "ms", "milliseconds", "us", "microseconds", "ns", "nanoseconds", "kb", "mb", "gb", "kib", "mib", "gib", "kilobytes",
        "megabytes", "percent", "minutes", "hours", "bits",
    ];

    fn is_snake(s: &str) -> bool {
        !s.is_empty()
            && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
            && !s.starts_with('_')
            && !s.ends_with('_')
            && !s.contains("__")
    }

    #[test]
    fn every_metric_name_follows_the_rules() {
        let mut names = std::collections::HashSet::new();
        for m in Metric::ALL {
            let d = m.desc();
            assert!(names.insert(d.name), "{} declared twice", d.name);
            assert!(d.name.starts_with("osprey_") && is_snake(d.name), "{}: not osprey_snake_case", d.name);
            let tokens: Vec<&str> = d.name.split('_').collect();
            for t in &tokens {
                assert!(!NON_BASE.contains(t), "{}: `{t}` is not a base unit", d.name);
            }
            let last = tokens[tokens.len() - 1];
            match d.kind {
                MetricType::Counter => {
                    assert_eq!(last, "total", "{}: counters end in _total", d.name);
                    assert!(tokens.len() >= 4, "{}: osprey_<what>_<unit>_total", d.name);
                    let unit = tokens[tokens.len() - 2];
                    assert!(COUNTER_UNITS.contains(&unit), "{}: `{unit}` is not a counted unit", d.name);
                }
                MetricType::Gauge | MetricType::Summary => {
                    assert!(!tokens.contains(&"total"), "{}: only counters say total", d.name);
                    assert!(GAUGE_UNITS.contains(&last), "{}: `{last}` is not a unit", d.name);
                    if last == "info" {
                        assert_eq!(d.kind, MetricType::Gauge, "{}", d.name);
                    }
                    if d.kind == MetricType::Summary {
                        assert!(last == "seconds" || last == "bytes", "{}: summaries are in base units", d.name);
                    }
                }
            }
            assert!(d.help.ends_with('.') && d.help.len() > 10, "{}: help is one sentence", d.name);
            let mut series_bound = 1usize;
            for l in d.labels {
                assert!(is_snake(l.name), "{}: label {}", d.name, l.name);
                assert!(!["le", "quantile", "job", "instance"].contains(&l.name), "{}: reserved label {}", d.name, l.name);
                if let LabelValues::Fixed(vals) = l.values {
                    assert!(!vals.is_empty(), "{}: label {} has no values", d.name, l.name);
                    for v in vals {
                        assert!(is_snake(v), "{}: label value {v:?}", d.name);
                    }
                    series_bound *= vals.len();
                }
            }
            assert!(series_bound <= 64, "{}: {series_bound} series per configured label value is not bounded enough", d.name);
        }
        // No name may collide with another's derived series.
        for a in &names {
            for suffix in ["_sum", "_count", "_total", "_bucket"] {
                let derived = format!("{a}{suffix}");
                assert!(!names.contains(derived.as_str()), "{derived} collides");
            }
        }
    }

    #[test]
    fn label_sets_match_the_source_enums() {
        assert_eq!(SKIP_REASONS.len(), SkipReason::ALL.len());
        for (r, n) in SkipReason::ALL.iter().zip(SKIP_REASONS) {
            assert_eq!(r.as_str(), n);
        }
        for (r, n) in TcpDnsSkip::ALL.iter().zip(TCP_DNS_SKIPS) {
            assert_eq!(r.as_str(), n);
        }
    }

    #[test]
    fn registration_checks_types_labels_and_values() {
        let r = Registry::new();
        assert!(r.counter(Metric::CaptureReceivedPackets, &[("iface", "eth0")]).is_ok());
        assert!(matches!(r.gauge(Metric::CaptureReceivedPackets, &[("iface", "eth0")]), Err(MetricsError::WrongType { .. })));
        assert!(matches!(r.counter(Metric::CaptureReceivedPackets, &[]), Err(MetricsError::Labels { .. })));
        assert!(matches!(
            r.counter(Metric::DecodeSkippedPackets, &[("reason", "cosmic_rays")]),
            Err(MetricsError::LabelValue { .. })
        ));
        // Idempotent: the same series is one value.
        let a = r.counter(Metric::WriterSegments, &[("kind", "flow")]).expect("ok");
        let b = r.counter(Metric::WriterSegments, &[("kind", "flow")]).expect("ok");
        a.add(2);
        b.inc();
        assert_eq!(a.get(), 3);
    }

    fn sample_registry() -> Registry {
        let r = Registry::new();
        r.gauge(Metric::BuildInfo, &[("version", "0.1.0")]).expect("ok").set(1.0);
        r.gauge(Metric::CaptureInfo, &[("iface", "eth0"), ("source", "afpacket"), ("mode", "socket")]).expect("ok").set(1.0);
        r.counter(Metric::CaptureReceivedPackets, &[("iface", "eth0")]).expect("ok").add(42);
        r.counter(Metric::CaptureReceivedBytes, &[("iface", "eth0")]).expect("ok").add(4200);
        for reason in CAPTURE_DROP_REASONS {
            r.counter(Metric::CaptureDroppedPackets, &[("iface", "eth0"), ("reason", reason)]).expect("ok");
        }
        for reason in SKIP_REASONS {
            r.counter(Metric::DecodeSkippedPackets, &[("reason", reason)]).expect("ok").inc();
        }
        r.gauge(Metric::FlowTableActiveFlows, &[]).expect("ok").set(7.0);
        r.counter(Metric::FlowTableExportedFlows, &[]).expect("ok").add(3);
        r.counter(Metric::FlowTableRefusedPackets, &[]).expect("ok");
        r.counter(Metric::DnsDecodedMessages, &[]).expect("ok").add(5);
        for reason in DNS_ERROR_KINDS {
            r.counter(Metric::DnsUndecodableMessages, &[("reason", reason)]).expect("ok");
        }
        for reason in TCP_DNS_SKIPS {
            r.counter(Metric::DnsTcpSkippedSegments, &[("reason", reason)]).expect("ok");
        }
        for ring in RINGS {
            r.gauge_fn(Metric::RingOccupancy, &[("ring", ring)], || 0.25).expect("ok");
            r.gauge(Metric::RingCapacity, &[("ring", ring)]).expect("ok").set(1024.0);
        }
        for ring in KERNEL_RINGS {
            r.counter(Metric::KernelRingDroppedRecords, &[("iface", "eth0"), ("ring", ring)]).expect("ok");
        }
        for reason in SKIP_REASONS {
            r.counter(Metric::KernelSkippedPackets, &[("iface", "eth0"), ("reason", reason)]).expect("ok");
        }
        r.counter(Metric::KernelFlowTableRefusedPackets, &[("iface", "eth0")]).expect("ok");
        r.gauge(Metric::AfXdpInfo, &[("iface", "eth0"), ("mode", "copy")]).expect("ok").set(1.0);
        for class in AF_XDP_CLASSES {
            r.counter(Metric::AfXdpRedirectedPackets, &[("iface", "eth0"), ("class", class)]).expect("ok").inc();
        }
        r.counter(Metric::SampleWrittenPackets, &[("iface", "eth0")]).expect("ok").add(9);
        r.counter(Metric::SampleDroppedPackets, &[("iface", "eth0")]).expect("ok");
        for kind in RECORD_KINDS {
            r.counter(Metric::RingDroppedRecords, &[("kind", kind)]).expect("ok");
            r.counter(Metric::WriterSegments, &[("kind", kind)]).expect("ok").inc();
            r.counter(Metric::WriterBytes, &[("kind", kind)]).expect("ok").add(1000);
            r.counter(Metric::WriterRecords, &[("kind", kind)]).expect("ok").add(10);
        }
        let l = r.latency(Metric::CaptureToSegmentLatency).expect("ok");
        l.record_n(2_000_000, 10);
        l.record_n(900_000_000, 1);
        r
    }

    #[test]
    fn exposition_has_help_type_and_every_series() {
        let r = sample_registry();
        assert_eq!(r.registered().len(), Metric::ALL.len(), "the sample covers every metric");
        let text = r.render();
        for m in Metric::ALL {
            let d = m.desc();
            assert!(text.contains(&format!("# TYPE {} {}\n", d.name, d.kind.as_str())), "{}", d.name);
        }
        assert!(text.contains("osprey_capture_received_packets_total{iface=\"eth0\"} 42\n"), "{text}");
        assert!(text.contains("osprey_capture_to_segment_latency_seconds{quantile=\"0.5\"} 0.002"), "{text}");
        assert!(text.contains("osprey_capture_to_segment_latency_seconds_count 11\n"), "{text}");
        assert!(text.contains("osprey_ring_occupancy_ratio{ring=\"packets\"} 0.25\n"), "{text}");
    }

    #[test]
    fn promtool_accepts_the_exposition() {
        let Ok(out) = std::process::Command::new("promtool").arg("--version").output() else {
            eprintln!("skipped: promtool not installed (apt-get install prometheus)");
            return;
        };
        assert!(out.status.success());
        let text = sample_registry().render();
        let mut child = std::process::Command::new("promtool")
            .args(["check", "metrics"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn promtool");
        child.stdin.take().expect("stdin").write_all(text.as_bytes()).expect("write");
        let out = child.wait_with_output().expect("promtool");
        let msg = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(out.status.success() && msg.trim().is_empty(), "promtool check metrics:\n{msg}\n---\n{text}");
    }

    #[test]
    fn the_endpoint_serves_metrics_and_404s() {
        let r = sample_registry();
        let server = MetricsServer::start("127.0.0.1:0", r).expect("listen");
        let body = scrape(server.local_addr()).expect("scrape");
        assert!(body.contains("osprey_build_info{version=\"0.1.0\"} 1"));
        let mut s = TcpStream::connect(server.local_addr()).expect("connect");
        s.write_all(b"GET /nope HTTP/1.1\r\n\r\n").expect("write");
        let mut resp = String::new();
        s.read_to_string(&mut resp).expect("read");
        assert!(resp.starts_with("HTTP/1.1 404"), "{resp}");
        server.stop();
    }
}

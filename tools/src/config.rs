//! Typed configuration: a TOML file (optional) plus environment overrides,
//! plus command-line flags on top.
//!
//! Every field can be overridden from the environment as
//! `OSPREY_<SECTION>__<FIELD>` (upper case, double underscore between section
//! and field), e.g. `OSPREY_FLOW__IDLE_TIMEOUT_SECS=30` or
//! `OSPREY_DNS__PORTS=[53,853]`. The value is parsed as a TOML value, falling
//! back to a string. Unknown sections or fields are errors, so a typo never
//! silently does nothing.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

use osprey_capture::flow::FlowConfig;
use osprey_capture::ingest::IngestConfig;
use osprey_segment::partition::WriterConfig;

/// The whole configuration file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Where data lives and who writes it.
    pub data: DataSection,
    /// Flow aggregation.
    pub flow: FlowSection,
    /// DNS extraction.
    pub dns: DnsSection,
    /// Segment files.
    pub segment: SegmentSection,
    /// Live capture (`osprey capture`).
    pub capture: CaptureSection,
}

/// `[data]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DataSection {
    /// Data directory (`--data` overrides).
    pub dir: Option<PathBuf>,
    /// Sensor name written into segment names and metadata.
    pub sensor: String,
}

/// `[flow]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FlowSection {
    /// End a flow after this long without packets.
    pub idle_timeout_secs: u64,
    /// End (and continue) a flow older than this.
    pub active_timeout_secs: u64,
    /// Keep counting late packets this long after RST or FIN both ways.
    pub tcp_linger_secs: u64,
    /// Flow table capacity.
    pub max_flows: usize,
}

/// `[dns]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DnsSection {
    /// UDP/TCP ports decoded as DNS.
    pub ports: Vec<u16>,
}

/// `[segment]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SegmentSection {
    /// Records per Arrow record batch.
    pub batch_rows: usize,
    /// Close a segment after this many records.
    pub max_segment_records: u64,
    /// Close a segment after this many bytes.
    pub max_segment_bytes: u64,
}

/// Where live packets come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum CaptureSource {
    /// A packet socket (`AF_PACKET`) on the interface: works everywhere.
    Afpacket,
    /// The XDP kernel path (flow map and DNS ring in the kernel, AF_XDP sockets).
    Xdp,
}

/// `[capture]`: the live capture daemon. Segment batch size and record limit
/// come from `[segment]`, the flow table from `[flow]`, DNS ports from `[dns]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CaptureSection {
    /// Interface to capture on (`--iface` overrides).
    pub interface: Option<String>,
    /// Capture source: `afpacket` or `xdp` (`--source` overrides).
    pub source: CaptureSource,
    /// Segments are also cut at every multiple of this many seconds of wall-clock time.
    pub rotate_interval_secs: u64,
    /// Records are published in segments at most this many seconds after they
    /// reach the writer: the most a crash (SIGKILL, power loss) can lose.
    pub flush_interval_secs: u64,
    /// Close a live segment once it holds this many compressed bytes.
    pub max_segment_bytes: u64,
    /// Packets the capture → decoder ring holds (a full ring drops and counts).
    pub ring_capacity: usize,
    /// Chunks of up to 1024 records the decoder → writer ring holds.
    pub record_ring_capacity: usize,
    /// Bytes kept of each packet.
    pub snaplen_bytes: u32,
    /// Kernel receive buffer of the packet socket.
    pub socket_buffer_bytes: u64,
    /// Put the interface in promiscuous mode while capturing (needed on a mirror port).
    pub promiscuous: bool,
    /// Skip packets this host sends itself.
    pub ignore_outgoing: bool,
    /// Address of the Prometheus `/metrics` endpoint (`--metrics-listen` overrides).
    pub metrics_listen: String,
}

impl Default for CaptureSection {
    fn default() -> Self {
        let p = osprey_capture::live::PipelineConfig::new(Path::new("."));
        let s = osprey_capture::live::SourceConfig::new("");
        CaptureSection {
            interface: None,
            source: CaptureSource::Afpacket,
            rotate_interval_secs: p.rotate_interval.as_secs(),
            flush_interval_secs: p.flush_interval.as_secs(),
            max_segment_bytes: p.writer.max_segment_bytes,
            ring_capacity: p.ring_capacity,
            record_ring_capacity: p.record_ring_capacity,
            snaplen_bytes: s.snaplen_bytes,
            socket_buffer_bytes: s.socket_buffer_bytes,
            promiscuous: s.promiscuous,
            ignore_outgoing: s.ignore_outgoing,
            metrics_listen: "127.0.0.1:9477".into(),
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        let ingest = IngestConfig::default();
        let flow = FlowConfig::default();
        let w = WriterConfig::default();
        Config {
            data: DataSection { dir: None, sensor: w.sensor.clone() },
            flow: FlowSection {
                idle_timeout_secs: flow.idle_timeout_secs,
                active_timeout_secs: flow.active_timeout_secs,
                tcp_linger_secs: flow.tcp_linger_secs,
                max_flows: flow.max_flows,
            },
            dns: DnsSection { ports: ingest.dns_ports },
            segment: SegmentSection {
                batch_rows: w.batch_rows,
                max_segment_records: w.max_segment_records,
                max_segment_bytes: w.max_segment_bytes,
            },
            capture: CaptureSection::default(),
        }
    }
}

impl Default for DataSection {
    fn default() -> Self {
        Config::default().data
    }
}
impl Default for FlowSection {
    fn default() -> Self {
        Config::default().flow
    }
}
impl Default for DnsSection {
    fn default() -> Self {
        Config::default().dns
    }
}
impl Default for SegmentSection {
    fn default() -> Self {
        Config::default().segment
    }
}

const ENV_PREFIX: &str = "OSPREY_";

impl Config {
    /// Loads `file` (if given) and applies `OSPREY_<SECTION>__<FIELD>` variables from `env`.
    pub fn load(file: Option<&Path>, env: impl IntoIterator<Item = (String, String)>) -> Result<Config> {
        let mut table: toml::Table = match file {
            Some(p) => {
                let text = std::fs::read_to_string(p).with_context(|| format!("reading config {}", p.display()))?;
                text.parse().with_context(|| format!("parsing config {}", p.display()))?
            }
            None => toml::Table::new(),
        };
        for (key, value) in env {
            let Some(rest) = key.strip_prefix(ENV_PREFIX) else { continue };
            let Some((section, field)) = rest.split_once("__") else { continue };
            let (section, field) = (section.to_ascii_lowercase(), field.to_ascii_lowercase());
            let parsed = parse_env_value(&value);
            let entry = table.entry(section.clone()).or_insert_with(|| toml::Value::Table(toml::Table::new()));
            let Some(t) = entry.as_table_mut() else {
                bail!("environment variable {key}: [{section}] is not a table in the config file");
            };
            t.insert(field, parsed);
        }
        let cfg: Config = toml::Value::Table(table).try_into().context("invalid configuration")?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Rejects values that cannot work, with a message naming the field.
    pub fn validate(&self) -> Result<()> {
        osprey_segment::segment::validate_sensor(&self.data.sensor).context("data.sensor")?;
        if self.flow.idle_timeout_secs == 0 {
            bail!("flow.idle_timeout_secs must be > 0");
        }
        if self.flow.active_timeout_secs == 0 {
            bail!("flow.active_timeout_secs must be > 0");
        }
        if self.flow.max_flows == 0 {
            bail!("flow.max_flows must be > 0");
        }
        if self.segment.batch_rows == 0 || self.segment.max_segment_records == 0 || self.segment.max_segment_bytes == 0 {
            bail!("segment.batch_rows, segment.max_segment_records and segment.max_segment_bytes must be > 0");
        }
        let c = &self.capture;
        if c.rotate_interval_secs == 0 || c.flush_interval_secs == 0 {
            bail!("capture.rotate_interval_secs and capture.flush_interval_secs must be > 0");
        }
        if c.max_segment_bytes == 0 || c.ring_capacity == 0 || c.record_ring_capacity == 0 {
            bail!("capture.max_segment_bytes, capture.ring_capacity and capture.record_ring_capacity must be > 0");
        }
        if c.snaplen_bytes < 64 {
            bail!("capture.snaplen_bytes must be at least 64");
        }
        Ok(())
    }

    /// The ingest settings this configuration describes.
    pub fn ingest(&self) -> IngestConfig {
        IngestConfig {
            flow: FlowConfig {
                idle_timeout_secs: self.flow.idle_timeout_secs,
                active_timeout_secs: self.flow.active_timeout_secs,
                tcp_linger_secs: self.flow.tcp_linger_secs,
                max_flows: self.flow.max_flows,
                ..FlowConfig::default()
            },
            dns_ports: self.dns.ports.clone(),
            writer: WriterConfig {
                sensor: self.data.sensor.clone(),
                batch_rows: self.segment.batch_rows,
                max_segment_records: self.segment.max_segment_records,
                max_segment_bytes: self.segment.max_segment_bytes,
                ..WriterConfig::default()
            },
            ..IngestConfig::default()
        }
    }
}

impl Config {
    /// The live pipeline settings this configuration describes, writing into `data`.
    pub fn pipeline(&self, data: &Path) -> osprey_capture::live::PipelineConfig {
        let ingest = self.ingest();
        let c = &self.capture;
        let mut p = osprey_capture::live::PipelineConfig::new(data);
        p.writer = WriterConfig { max_segment_bytes: c.max_segment_bytes, ..ingest.writer.clone() };
        p.decode = osprey_capture::decode::DecodeConfig::from(&ingest);
        p.ring_capacity = c.ring_capacity;
        p.record_ring_capacity = c.record_ring_capacity;
        p.flush_interval = std::time::Duration::from_secs(c.flush_interval_secs);
        p.rotate_interval = std::time::Duration::from_secs(c.rotate_interval_secs);
        p
    }

    /// The capture source settings for `iface`.
    pub fn source(&self, iface: &str) -> osprey_capture::live::SourceConfig {
        let c = &self.capture;
        osprey_capture::live::SourceConfig {
            iface: iface.to_string(),
            snaplen_bytes: c.snaplen_bytes,
            socket_buffer_bytes: c.socket_buffer_bytes,
            promiscuous: c.promiscuous,
            ignore_outgoing: c.ignore_outgoing,
        }
    }
}

fn parse_env_value(v: &str) -> toml::Value {
    // Parse as the right-hand side of a TOML assignment; anything that is not
    // valid TOML (a bare word, a path) is taken as a string.
    format!("v = {v}")
        .parse::<toml::Table>()
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(v.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn defaults_come_from_the_shared_header() {
        let c = Config::load(None, env(&[])).expect("defaults load");
        assert_eq!(c.flow.idle_timeout_secs, 60);
        assert_eq!(c.flow.active_timeout_secs, 300);
        assert_eq!(c.dns.ports, [53, 5353, 5355]);
    }

    #[test]
    fn file_then_environment() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("osprey.toml");
        std::fs::write(&p, "[flow]\nidle_timeout_secs = 15\n[data]\nsensor = \"edge1\"\n").expect("write");
        let c = Config::load(
            Some(&p),
            env(&[("OSPREY_FLOW__IDLE_TIMEOUT_SECS", "30"), ("OSPREY_DNS__PORTS", "[53, 853]"), ("PATH", "x")]),
        )
        .expect("load");
        assert_eq!(c.flow.idle_timeout_secs, 30);
        assert_eq!(c.data.sensor, "edge1");
        assert_eq!(c.dns.ports, [53, 853]);
        assert_eq!(c.ingest().flow.idle_timeout_secs, 30);
    }

    #[test]
    fn capture_section_defaults_overrides_and_validation() {
        let c = Config::load(None, env(&[])).expect("defaults");
        assert_eq!(c.capture.source, CaptureSource::Afpacket);
        assert_eq!(c.capture.metrics_listen, "127.0.0.1:9477");
        assert!(c.capture.flush_interval_secs <= c.capture.rotate_interval_secs);
        let c = Config::load(
            None,
            env(&[("OSPREY_CAPTURE__FLUSH_INTERVAL_SECS", "5"), ("OSPREY_CAPTURE__SOURCE", "xdp"), ("OSPREY_CAPTURE__INTERFACE", "eth1")]),
        )
        .expect("env");
        assert_eq!(c.capture.flush_interval_secs, 5);
        assert_eq!(c.capture.source, CaptureSource::Xdp);
        assert_eq!(c.capture.interface.as_deref(), Some("eth1"));
        let p = c.pipeline(Path::new("/d"));
        assert_eq!(p.flush_interval, std::time::Duration::from_secs(5));
        assert_eq!(p.writer.max_segment_bytes, c.capture.max_segment_bytes);
        let err = |e: Vec<(String, String)>| format!("{:#}", Config::load(None, e).expect_err("must fail"));
        assert!(err(env(&[("OSPREY_CAPTURE__FLUSH_INTERVAL_SECS", "0")])).contains("flush_interval_secs"));
        assert!(err(env(&[("OSPREY_CAPTURE__SOURCE", "pcap")])).contains("source"));
        assert!(err(env(&[("OSPREY_CAPTURE__RING_SLOTS", "5")])).contains("ring_slots"));
    }

    #[test]
    fn the_sample_deploy_config_parses() {
        let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/osprey.toml");
        let c = Config::load(Some(&p), env(&[])).expect("deploy/osprey.toml parses with the typed config");
        assert!(c.capture.interface.is_some(), "the sample names an interface");
        assert!(c.data.dir.is_some(), "the sample names a data directory");
    }

    #[test]
    fn mistakes_are_errors_naming_the_field() {
        let err = |e: Vec<(String, String)>| format!("{:#}", Config::load(None, e).expect_err("must fail"));
        assert!(err(env(&[("OSPREY_FLOW__IDLE_TIMEOUT", "30")])).contains("idle_timeout"));
        assert!(err(env(&[("OSPREY_FLOW__IDLE_TIMEOUT_SECS", "soon")])).contains("idle_timeout_secs"));
        assert!(err(env(&[("OSPREY_FLOW__IDLE_TIMEOUT_SECS", "0")])).contains("idle_timeout_secs"));
        assert!(err(env(&[("OSPREY_DATA__SENSOR", "../etc")])).contains("sensor"));
        assert!(err(env(&[("OSPREY_NOPE__X", "1")])).contains("nope"));
    }
}

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
    /// Flow table capacity (on the XDP path, of each of the IPv4 and IPv6
    /// maps). Size it to about twice the expected peak of active flows: a
    /// much larger kernel table costs per-packet time (see BENCHMARKS.md).
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

/// How the XDP program is attached (`[capture] xdp_attach`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum XdpAttach {
    /// Native (in the driver) if the driver supports it, else generic.
    Auto,
    /// Native only (fail otherwise).
    Native,
    /// Generic (skb) only: works on any interface, slower.
    Generic,
}

/// `[capture]`: the live capture daemon. Segment batch size and record limit
/// come from `[segment]`, the flow table from `[flow]`, DNS ports from `[dns]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CaptureSection {
    /// Interface to capture on (`--iface` overrides).
    pub interface: Option<String>,
    /// Capture source: `afpacket` or `xdp` (`--source` overrides). The
    /// default stays `afpacket` even where root and BPF are available: it
    /// changes nothing on the interface, while `xdp` attaches a program to
    /// it (exclusive: it fails if another XDP program is attached) and its
    /// generic-mode fallback slows every packet of that interface. `osprey
    /// capture --iface IF` alone works everywhere; `--source xdp` is one flag.
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
    /// `xdp` source: attach natively (driver), generically, or native-then-generic.
    pub xdp_attach: XdpAttach,
    /// `xdp` source: size of the kernel's DNS ring (a power of two, whole pages).
    pub xdp_dns_ring_bytes: u32,
    /// `xdp` source: hand DNS over TCP, UDP IP fragments and UDP DNS messages
    /// longer than 512 bytes to AF_XDP sockets so they are decoded completely.
    /// XDP cannot copy a packet: these packets no longer reach this host's
    /// own network stack. Only for a mirror/SPAN port or TAP, never for an
    /// interface the host itself uses (its own DNS over TCP would break).
    pub af_xdp_dns: bool,
    /// `xdp` source: TCP ports whose traffic is DNS (at most 4; each also in `[dns] ports`).
    pub af_xdp_tcp_dns_ports: Vec<u16>,
    /// `xdp` source: write 1 in this many packets (per CPU) as pcapng
    /// segments under DATA/pcap/ (0: off). Like `af_xdp_dns`, sampled
    /// packets are taken from the host stack: mirror ports only.
    pub af_xdp_sample_every_packets: u32,
    /// `xdp` source: UMEM frames (2 KiB each) per AF_XDP socket, a power of two.
    pub af_xdp_frames: u32,
    /// `xdp` source: try a zero-copy AF_XDP binding first (falls back to copy mode).
    pub af_xdp_zero_copy: bool,
    /// Close a pcapng sample segment once it holds this many bytes.
    pub sample_max_segment_bytes: u64,
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
            xdp_attach: XdpAttach::Auto,
            xdp_dns_ring_bytes: s.xdp.dns_ring_bytes,
            af_xdp_dns: s.xdp.af_xdp_dns,
            af_xdp_tcp_dns_ports: s.xdp.tcp_dns_ports.clone(),
            af_xdp_sample_every_packets: s.xdp.sample_every,
            af_xdp_frames: s.xdp.af_xdp_frames,
            af_xdp_zero_copy: true,
            sample_max_segment_bytes: 256 << 20,
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
        if c.af_xdp_tcp_dns_ports.len() > 4 || c.af_xdp_tcp_dns_ports.iter().any(|p| !self.dns.ports.contains(p)) {
            bail!("capture.af_xdp_tcp_dns_ports: at most 4 ports, each also listed in dns.ports");
        }
        if !c.af_xdp_frames.is_power_of_two() || c.af_xdp_frames < 64 {
            bail!("capture.af_xdp_frames must be a power of two >= 64");
        }
        if !c.xdp_dns_ring_bytes.is_power_of_two() || c.xdp_dns_ring_bytes < 4096 {
            bail!("capture.xdp_dns_ring_bytes must be a power of two >= 4096");
        }
        if c.sample_max_segment_bytes == 0 {
            bail!("capture.sample_max_segment_bytes must be > 0");
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

    /// The capture source settings for `iface` (pcapng samples, if any,
    /// go under `data` as `sensor`).
    pub fn source(&self, iface: &str, data: &Path) -> osprey_capture::live::SourceConfig {
        use osprey_capture::kernel::AttachRequest;
        use osprey_capture::live::afxdp::ZeroCopy;
        let c = &self.capture;
        let ingest = self.ingest();
        let xdp = osprey_capture::live::xdp::XdpConfig {
            attach: match c.xdp_attach {
                XdpAttach::Auto => AttachRequest::Auto,
                XdpAttach::Native => AttachRequest::Native,
                XdpAttach::Generic => AttachRequest::Generic,
            },
            flow: ingest.flow.clone(),
            dns_ports: self.dns.ports.clone(),
            dns_ring_bytes: c.xdp_dns_ring_bytes,
            af_xdp_dns: c.af_xdp_dns,
            tcp_dns_ports: c.af_xdp_tcp_dns_ports.clone(),
            sample_every: c.af_xdp_sample_every_packets,
            sample: (c.af_xdp_sample_every_packets > 0).then(|| osprey_capture::live::pcapng_segments::SampleConfig {
                data: data.to_path_buf(),
                sensor: self.data.sensor.clone(),
                max_segment_bytes: c.sample_max_segment_bytes,
                rotate_interval: std::time::Duration::from_secs(c.rotate_interval_secs),
                queue_packets: 65_536,
            }),
            af_xdp_frames: c.af_xdp_frames,
            zero_copy: if c.af_xdp_zero_copy { ZeroCopy::Auto } else { ZeroCopy::Off },
            ..osprey_capture::live::xdp::XdpConfig::default()
        };
        osprey_capture::live::SourceConfig {
            iface: iface.to_string(),
            snaplen_bytes: c.snaplen_bytes,
            socket_buffer_bytes: c.socket_buffer_bytes,
            promiscuous: c.promiscuous,
            ignore_outgoing: c.ignore_outgoing,
            xdp,
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
    fn xdp_settings_are_safe_by_default_and_reach_the_source() {
        let c = Config::load(None, env(&[])).expect("defaults");
        assert!(!c.capture.af_xdp_dns, "nothing is taken from the host stack unless asked");
        assert_eq!(c.capture.af_xdp_sample_every_packets, 0);
        let s = c.source("eth1", Path::new("/d"));
        assert!(!s.xdp.af_xdp_dns && s.xdp.sample.is_none());
        let c = Config::load(
            None,
            env(&[
                ("OSPREY_CAPTURE__AF_XDP_DNS", "true"),
                ("OSPREY_CAPTURE__AF_XDP_SAMPLE_EVERY_PACKETS", "100"),
                ("OSPREY_CAPTURE__XDP_ATTACH", "generic"),
                ("OSPREY_DATA__SENSOR", "edge7"),
            ]),
        )
        .expect("env");
        let s = c.source("eth1", Path::new("/d"));
        assert!(s.xdp.af_xdp_dns);
        assert_eq!(s.xdp.sample_every, 100);
        assert_eq!(s.xdp.attach, osprey_capture::kernel::AttachRequest::Generic);
        let sample = s.xdp.sample.expect("sample config");
        assert_eq!((sample.data.as_path(), sample.sensor.as_str()), (Path::new("/d"), "edge7"));
        assert_eq!(s.xdp.dns_ports, c.dns.ports);
        let err = |e: Vec<(String, String)>| format!("{:#}", Config::load(None, e).expect_err("must fail"));
        assert!(err(env(&[("OSPREY_CAPTURE__AF_XDP_TCP_DNS_PORTS", "[853]")])).contains("af_xdp_tcp_dns_ports"));
        assert!(err(env(&[("OSPREY_CAPTURE__AF_XDP_FRAMES", "1000")])).contains("af_xdp_frames"));
        assert!(err(env(&[("OSPREY_CAPTURE__XDP_ATTACH", "offload")])).contains("xdp_attach"));
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

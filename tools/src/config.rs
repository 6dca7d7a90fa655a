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
    fn mistakes_are_errors_naming_the_field() {
        let err = |e: Vec<(String, String)>| format!("{:#}", Config::load(None, e).expect_err("must fail"));
        assert!(err(env(&[("OSPREY_FLOW__IDLE_TIMEOUT", "30")])).contains("idle_timeout"));
        assert!(err(env(&[("OSPREY_FLOW__IDLE_TIMEOUT_SECS", "soon")])).contains("idle_timeout_secs"));
        assert!(err(env(&[("OSPREY_FLOW__IDLE_TIMEOUT_SECS", "0")])).contains("idle_timeout_secs"));
        assert!(err(env(&[("OSPREY_DATA__SENSOR", "../etc")])).contains("sensor"));
        assert!(err(env(&[("OSPREY_NOPE__X", "1")])).contains("nope"));
    }
}

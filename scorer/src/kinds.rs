//! Kind-generic glue for the CLI and tests: a window of records of any kind,
//! the word-creation settings learned at training time and saved in the
//! model, and records → events with those settings.
//!
//! # Settings carried by the model
//!
//! Words must be built the same way when training and when scoring, so what
//! word creation learns from the training window travels in the model's
//! `settings` map:
//!
//! * `user_domain`: the user's own domain label (class 2), empty for none;
//! * `popularity_source`: `learned` (domains queried by many distinct
//!   clients of the training window, [`PopularityThreshold::default`]) or
//!   the path of a Tranco/Alexa `rank,domain` list;
//! * `popular_domains`: the popular labels themselves, `\n`-separated, so a
//!   model scores the same way wherever it is loaded;
//! * `domain_rules`: how names were split ([`DomainRules`]; absent in models
//!   saved before it existed, which used Spot's rules).
//!
//! DNS popularity is learned from the DNS queries' (client, name) pairs;
//! proxy popularity from the (client, host) pairs. Proxy user-agent counts
//! are recounted over the records being turned into words, as Spot did
//! (training counts over the training frame, scoring over the scored frame).

use std::collections::BTreeMap;
use std::path::Path;

use arrow_array::RecordBatch;

use osprey_segment::SegmentError;
use osprey_segment::partition::{Skipped, StoredRecord, TimeRange, read_all};
use osprey_segment::records::{DnsRecord, FlowRecord, Kind, ProxyRecord, TimestampNs};

use crate::model::Model;
use crate::pipeline::{dns_events, flow_events, proxy_events};
use crate::score::EventWords;
use crate::words::dns::DnsWordConfig;
use crate::words::domain::{DomainPopularity, DomainRules, PopularityThreshold};
use crate::words::proxy::{ProxyWordConfig, UserAgentCounts};

/// The records of one kind in a window, in storage order.
#[derive(Debug, Clone, PartialEq)]
pub enum Records {
    /// Flows.
    Flow(Vec<FlowRecord>),
    /// DNS messages.
    Dns(Vec<DnsRecord>),
    /// Proxy lines.
    Proxy(Vec<ProxyRecord>),
}

impl Records {
    /// Reads every record of `kind` in `range` under `data` (damaged
    /// segments are skipped and returned).
    pub fn read(data: &Path, kind: Kind, range: TimeRange) -> Result<(Records, Vec<Skipped>), SegmentError> {
        Ok(match kind {
            Kind::Flow => {
                let (r, s) = read_all::<FlowRecord>(data, range)?;
                (Records::Flow(r), s)
            }
            Kind::Dns => {
                let (r, s) = read_all::<DnsRecord>(data, range)?;
                (Records::Dns(r), s)
            }
            Kind::Proxy => {
                let (r, s) = read_all::<ProxyRecord>(data, range)?;
                (Records::Proxy(r), s)
            }
        })
    }

    /// The kind.
    pub fn kind(&self) -> Kind {
        match self {
            Records::Flow(_) => Kind::Flow,
            Records::Dns(_) => Kind::Dns,
            Records::Proxy(_) => Kind::Proxy,
        }
    }

    /// Number of records.
    pub fn len(&self) -> usize {
        match self {
            Records::Flow(r) => r.len(),
            Records::Dns(r) => r.len(),
            Records::Proxy(r) => r.len(),
        }
    }

    /// Whether there is no record.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Partition time of record `i`.
    pub fn ts(&self, i: usize) -> TimestampNs {
        match self {
            Records::Flow(r) => r[i].partition_ts(),
            Records::Dns(r) => r[i].partition_ts(),
            Records::Proxy(r) => r[i].partition_ts(),
        }
    }

    /// Smallest and largest partition time, if any record.
    pub fn ts_range(&self) -> Option<(TimestampNs, TimestampNs)> {
        (0..self.len()).map(|i| self.ts(i)).fold(None, |acc, t| match acc {
            None => Some((t, t)),
            Some((lo, hi)) => Some((lo.min(t), hi.max(t))),
        })
    }

    /// A record batch of the records at `idx`, in that order.
    pub fn batch_of(&self, idx: &[usize]) -> Result<RecordBatch, SegmentError> {
        fn pick<R: StoredRecord + Clone>(r: &[R], idx: &[usize]) -> Result<RecordBatch, SegmentError> {
            let rows: Vec<R> = idx.iter().map(|&i| r[i].clone()).collect();
            R::to_batch(&rows)
        }
        match self {
            Records::Flow(r) => pick(r, idx),
            Records::Dns(r) => pick(r, idx),
            Records::Proxy(r) => pick(r, idx),
        }
    }
}

/// Settings of word creation that must be equal at training and scoring
/// (see the module docs).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WordSettings {
    /// The user's own domain label (class 2); empty for none.
    pub user_domain: String,
    /// `learned` or the path of the list that was loaded.
    pub popularity_source: String,
    /// The popular domain labels.
    pub popularity: DomainPopularity,
    /// How names are split into domain and subdomain.
    pub domain_rules: DomainRules,
}

/// A model names domain rules this build does not know.
#[derive(Debug, thiserror::Error)]
#[error("the model was trained with unknown domain rules {0:?} (this build knows spot and osprey)")]
pub struct UnknownDomainRules(pub String);

const KEY_USER_DOMAIN: &str = "user_domain";
const KEY_DOMAIN_RULES: &str = "domain_rules";
const KEY_POP_SOURCE: &str = "popularity_source";
const KEY_POP: &str = "popular_domains";

impl WordSettings {
    /// Settings for training on `records`: popularity from `list` when given
    /// (with `source` naming it), else learned from the records with
    /// `domain_rules`.
    pub fn learn(records: &Records, user_domain: &str, list: Option<(DomainPopularity, String)>, domain_rules: DomainRules) -> Self {
        let (popularity, popularity_source) = match list {
            Some((p, src)) => (p, src),
            None => {
                let p = match records {
                    Records::Flow(_) => DomainPopularity::empty(),
                    Records::Dns(r) => DomainPopularity::learn(r.iter(), PopularityThreshold::default(), domain_rules),
                    Records::Proxy(r) => DomainPopularity::learn_from_pairs(
                        r.iter().filter_map(|p| p.clientip.map(|ip| (ip, p.host.as_str()))),
                        PopularityThreshold::default(),
                        domain_rules,
                    ),
                };
                (p, "learned".to_string())
            }
        };
        WordSettings { user_domain: user_domain.to_string(), popularity_source, popularity, domain_rules }
    }

    /// The entries saved in a model's `settings`.
    pub fn to_settings(&self) -> BTreeMap<String, String> {
        BTreeMap::from([
            (KEY_USER_DOMAIN.to_string(), self.user_domain.clone()),
            (KEY_POP_SOURCE.to_string(), self.popularity_source.clone()),
            (KEY_POP.to_string(), self.popularity.labels().join("\n")),
            (KEY_DOMAIN_RULES.to_string(), self.domain_rules.as_str().to_string()),
        ])
    }

    /// The settings a model was trained with. A model saved before domain
    /// rules were recorded was trained with Spot's; an unknown name is an
    /// error rather than a silent change of words.
    pub fn from_model(model: &Model) -> Result<Self, UnknownDomainRules> {
        let s = &model.meta.settings;
        let get = |k: &str| s.get(k).cloned().unwrap_or_default();
        let pop = get(KEY_POP);
        let domain_rules = match s.get(KEY_DOMAIN_RULES) {
            None => DomainRules::Spot,
            Some(name) => DomainRules::from_name(name).ok_or_else(|| UnknownDomainRules(name.clone()))?,
        };
        Ok(WordSettings {
            user_domain: get(KEY_USER_DOMAIN),
            popularity_source: get(KEY_POP_SOURCE),
            popularity: DomainPopularity::from_labels(pop.split('\n').filter(|l| !l.is_empty())),
            domain_rules,
        })
    }

    /// The events of `records` (one per record, input order).
    pub fn events(&self, records: &Records) -> Vec<EventWords> {
        match records {
            Records::Flow(r) => flow_events(r),
            Records::Dns(r) => dns_events(
                r,
                &self.popularity,
                &DnsWordConfig { user_domain: self.user_domain.clone(), domain_rules: self.domain_rules, ..DnsWordConfig::default() },
            ),
            Records::Proxy(r) => proxy_events(
                r,
                &self.popularity,
                &UserAgentCounts::count(r.iter()),
                &ProxyWordConfig { user_domain: self.user_domain.clone(), domain_rules: self.domain_rules },
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::IpAddr;

    #[test]
    fn settings_round_trip_through_model_settings() {
        let mut dns = Vec::new();
        for c in 0..5u8 {
            dns.push(DnsRecord {
                ts: 0,
                client_ip: IpAddr::from([10, 0, 0, c]),
                client_port: 5000,
                server_ip: IpAddr::from([10, 0, 0, 53]),
                server_port: 53,
                transport: osprey_segment::DnsTransport::Udp,
                id: 1,
                is_response: true,
                opcode: 0,
                rcode: 0,
                flags: 0x8180,
                qname: "www.example.com".into(),
                qtype: 1,
                qclass: 1,
                an_count: 0,
                ns_count: 0,
                ar_count: 0,
                answers: vec![],
                size: 40,
                frame_len: 80,
                latency_ns: None,
            });
        }
        let recs = Records::Dns(dns);
        let ws = WordSettings::learn(&recs, "corp", None, DomainRules::Osprey);
        assert!(ws.popularity.contains("example"));
        let map = ws.to_settings();
        let back = WordSettings {
            user_domain: map[KEY_USER_DOMAIN].clone(),
            popularity_source: map[KEY_POP_SOURCE].clone(),
            popularity: DomainPopularity::from_labels(map[KEY_POP].split('\n')),
            domain_rules: DomainRules::from_name(&map[KEY_DOMAIN_RULES]).expect("known rules"),
        };
        assert_eq!(back, ws);
        let ev = ws.events(&recs);
        assert_eq!(ev.len(), 5);
        assert!(ev[0][0].1.starts_with("1_"), "{:?}", ev[0]);
        assert_eq!(recs.batch_of(&[4, 0]).expect("batch").num_rows(), 2);
    }
}

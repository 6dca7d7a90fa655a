//! Glue from in-memory records to events, corpus and a saved-ready model:
//! what `osprey words/train/score` need, independent of how records are read.
//!
//! Events keep the input order (one [`EventWords`] per record, empty when the
//! record is dropped by Spot's input hygiene), so a score vector lines up with
//! the records it came from.

use rayon::prelude::*;

use osprey_segment::records::{DnsRecord, FlowRecord, Kind, ProxyRecord};

use crate::corpus::{Corpus, CorpusBuilder};
use crate::lda::em::{EmConfig, train_spot_em};
use crate::lda::gibbs::{GibbsConfig, train_gibbs};
use crate::lda::{LdaError, TrainStats};
use crate::model::{Model, ModelMeta};
use crate::score::EventWords;
use crate::words::dns::{DnsWordConfig, dns_record_word};
use crate::words::domain::DomainPopularity;
use crate::words::flow::flow_record_words;
use crate::words::proxy::{ProxyWordConfig, UserAgentCounts, proxy_record_word};

/// Flow events (2 pairs per direction; see [`crate::words::flow`]).
pub fn flow_events(records: &[FlowRecord]) -> Vec<EventWords> {
    records.par_iter().map(flow_record_words).collect()
}

/// DNS events (one pair, or none for a dropped record).
pub fn dns_events(
    records: &[DnsRecord],
    top: &DomainPopularity,
    cfg: &DnsWordConfig,
) -> Vec<EventWords> {
    records
        .par_iter()
        .map(|r| dns_record_word(r, top, cfg).into_iter().collect())
        .collect()
}

/// Proxy events (one pair, or none for a dropped record).
pub fn proxy_events(
    records: &[ProxyRecord],
    top: &DomainPopularity,
    agents: &UserAgentCounts,
    cfg: &ProxyWordConfig,
) -> Vec<EventWords> {
    records
        .par_iter()
        .map(|r| proxy_record_word(r, top, agents, cfg).into_iter().collect())
        .collect()
}

/// The corpus of a set of events (`word_error` dropped).
pub fn corpus_from_events(events: &[EventWords]) -> Corpus {
    let mut b = CorpusBuilder::new();
    for ev in events {
        for (ip, w) in ev {
            b.add_ip(*ip, w);
        }
    }
    b.build()
}

/// Which trainer to run.
#[derive(Debug, Clone, PartialEq)]
pub enum Trainer {
    /// The default collapsed Gibbs sampler.
    Gibbs(GibbsConfig),
    /// Spark-style MAP-EM as Spot ran it.
    SpotEm(EmConfig),
}

impl Default for Trainer {
    fn default() -> Self {
        Trainer::Gibbs(GibbsConfig::default())
    }
}

/// Trains on a corpus and packages the result as a [`Model`].
/// `window` is the training window `[from, to)` in ns, recorded in the file.
pub fn train_model(
    kind: Kind,
    corpus: &Corpus,
    trainer: &Trainer,
    window: (Option<i64>, Option<i64>),
) -> Result<(Model, TrainStats), LdaError> {
    let (topics, stats, name, alpha, eta, iterations, seed) = match trainer {
        Trainer::Gibbs(c) => {
            let (m, s) = train_gibbs(corpus, c)?;
            (m, s, "gibbs", c.alpha, c.eta, c.iterations, c.seed)
        }
        Trainer::SpotEm(c) => {
            let (m, s) = train_spot_em(corpus, c)?;
            (m, s, "spot-em", c.alpha, c.eta, c.iterations, c.seed)
        }
    };
    let ll = topics.mean_log_likelihood(corpus);
    let meta = ModelMeta {
        kind: kind.as_str().to_string(),
        trainer: name.to_string(),
        k: topics.k as u32,
        alpha,
        eta,
        iterations: iterations as u32,
        seed,
        threads: stats.threads as u32,
        train_from_ns: window.0,
        train_to_ns: window.1,
        corpus: corpus.stats(),
        mean_log_likelihood: Some(ll),
        settings: Default::default(),
    };
    let model = Model::new(meta, corpus.words.clone(), corpus.docs.clone(), topics)
        .map_err(|e| LdaError::Inconsistent(e.to_string()))?;
    Ok((model, stats))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::score::{FoldInConfig, RankConfig, rank, score_events};
    use osprey_segment::records::EndReason;
    use std::net::IpAddr;

    fn flow(
        src: [u8; 4],
        sport: u16,
        dst: [u8; 4],
        dport: u16,
        packets: u64,
        bytes: u64,
        rev: u64,
    ) -> FlowRecord {
        FlowRecord {
            ts_start: 10 * 3_600_000_000_000,
            ts_end: 10 * 3_600_000_000_000 + 1,
            proto: 6,
            src_ip: IpAddr::from(src),
            src_port: sport,
            dst_ip: IpAddr::from(dst),
            dst_port: dport,
            vlan: 0,
            packets,
            bytes,
            rev_packets: rev,
            rev_bytes: rev * 500,
            tcp_flags: 0,
            rev_tcp_flags: 0,
            end_reason: EndReason::Fin,
        }
    }

    /// End to end on flows: many clients browse a web server; one host
    /// SYN-scans ports without answers. The scan's words are rare, so the
    /// scan flows must be ranked above every normal flow.
    #[test]
    fn scan_flows_rank_first_end_to_end() {
        let mut records = Vec::new();
        for c in 0..40u8 {
            for i in 0..30u16 {
                records.push(flow(
                    [10, 0, 1, c],
                    40000 + i,
                    [10, 0, 0, 80],
                    443,
                    12,
                    2000,
                    10,
                ));
            }
        }
        let scan_start = records.len();
        for p in 1..=25u16 {
            records.push(flow([10, 0, 9, 9], 55555, [10, 0, 0, 80], p * 37, 1, 44, 0));
        }
        let events = flow_events(&records);
        let corpus = corpus_from_events(&events);
        let trainer = Trainer::Gibbs(GibbsConfig {
            k: 4,
            iterations: 50,
            threads: 1,
            ..GibbsConfig::default()
        });
        let (model, _) = train_model(Kind::Flow, &corpus, &trainer, (None, None)).expect("train");
        assert_eq!(model.meta.kind, "flow");
        assert_eq!(model.vocab.len(), corpus.words.len());
        let scores = score_events(&model, &events, &FoldInConfig::for_model(&model));
        let ranked = rank(
            &scores,
            &RankConfig {
                threshold: 1.0,
                max_results: 25,
            },
        );
        assert_eq!(ranked.len(), 25);
        assert!(ranked.iter().all(|&i| i >= scan_start), "{ranked:?}");
    }

    #[test]
    fn both_trainers_package_models() {
        let events: Vec<EventWords> = (0..20u8)
            .map(|i| vec![(IpAddr::from([10, 0, 0, i % 4]), format!("w{}", i % 3))])
            .collect();
        let corpus = corpus_from_events(&events);
        for trainer in [
            Trainer::Gibbs(GibbsConfig {
                k: 2,
                iterations: 5,
                threads: 1,
                ..GibbsConfig::default()
            }),
            Trainer::SpotEm(EmConfig {
                k: 2,
                threads: 1,
                ..EmConfig::default()
            }),
        ] {
            let (m, stats) =
                train_model(Kind::Dns, &corpus, &trainer, (Some(1), Some(2))).expect("train");
            assert_eq!(stats.tokens, 20);
            assert_eq!(m.meta.train_from_ns, Some(1));
            assert_eq!(m.docs.len(), 4);
            assert_eq!(m.vocab.len(), 3);
            assert!(m.meta.mean_log_likelihood.is_some_and(|x| x < 0.0));
            let back = Model::from_bytes(&m.to_bytes().expect("encode")).expect("decode");
            assert_eq!(back, m);
        }
    }
}

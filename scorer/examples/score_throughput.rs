//! Measures scoring throughput on 2 cores: the raw θ·φ kernel on resolved
//! (document, word) ids, and the end-to-end path from flow records (word
//! creation, id resolution, fold-in, scoring, ranking).
//!
//! Run: `cargo run --release -p osprey-scorer --example score_throughput`

use std::net::IpAddr;
use std::time::Instant;

use osprey_scorer::corpus::{CorpusStats, Vocab};
use osprey_scorer::lda::TopicModel;
use osprey_scorer::model::{Model, ModelMeta};
use osprey_scorer::pipeline::flow_events;
use osprey_scorer::rng::Rng;
use osprey_scorer::score::{FoldInConfig, RankConfig, rank, resolve, score_pairs, score_resolved};
use osprey_segment::records::{EndReason, FlowRecord};

fn main() {
    let (v, d, k) = (20_000usize, 20_000usize, 20usize);
    let mut rng = Rng::new(3);
    let mut phi = vec![0f32; v * k];
    for x in phi.iter_mut() {
        *x = rng.next_f32();
    }
    for t in 0..k {
        let s: f32 = (0..v).map(|w| phi[w * k + t]).sum();
        for w in 0..v {
            phi[w * k + t] /= s;
        }
    }
    let mut theta = vec![0f32; d * k];
    for row in theta.chunks_mut(k) {
        for x in row.iter_mut() {
            *x = rng.next_f32();
        }
        let s: f32 = row.iter().sum();
        row.iter_mut().for_each(|x| *x /= s);
    }
    // Vocabulary: flow-like words; documents: 10.x.y.z.
    let words: Vec<String> = (0..v)
        .map(|i| format!("{}_TCP_{}_{}_{}", i % 1000, i % 24, i % 20, i % 7))
        .collect();
    let docs: Vec<String> = (0..d)
        .map(|i| format!("10.{}.{}.{}", i / 65536, (i / 256) % 256, i % 256))
        .collect();
    let meta = ModelMeta {
        kind: "flow".into(),
        trainer: "gibbs".into(),
        k: k as u32,
        alpha: 0.02,
        eta: 0.001,
        iterations: 0,
        seed: 0,
        threads: 2,
        train_from_ns: None,
        train_to_ns: None,
        corpus: CorpusStats::default(),
        mean_log_likelihood: None,
        settings: Default::default(),
    };
    let model = Model::new(
        meta,
        Vocab::from_names(words),
        Vocab::from_names(docs),
        TopicModel { k, phi, theta },
    )
    .expect("model");
    println!("threads: {}", rayon::current_num_threads());

    // 1. Raw kernel.
    let n = 20_000_000usize;
    let pairs: Vec<(u32, u32)> = (0..n)
        .map(|_| (rng.below(d as u32), rng.below(v as u32)))
        .collect();
    let mut out = vec![0f32; n];
    score_pairs(&model, &pairs, &mut out); // warm-up
    let reps = 5;
    let t = Instant::now();
    for _ in 0..reps {
        score_pairs(&model, &pairs, &mut out);
    }
    let secs = t.elapsed().as_secs_f64();
    println!(
        "kernel: {:.1} M events/s ({} × {} events in {:.2}s)",
        (n * reps) as f64 / secs / 1e6,
        reps,
        n,
        secs
    );

    // 2. End to end from flow records (1 M records, half answered).
    let m = 1_000_000usize;
    let records: Vec<FlowRecord> = (0..m)
        .map(|i| {
            let s = rng.below(25_000) as usize; // ~20% unseen documents
            FlowRecord {
                ts_start: (i as i64) * 86_400_000_000_000 / m as i64,
                ts_end: 0,
                proto: 6,
                src_ip: IpAddr::from([
                    10,
                    (s / 65536) as u8,
                    ((s / 256) % 256) as u8,
                    (s % 256) as u8,
                ]),
                src_port: 40_000 + (i % 1000) as u16,
                dst_ip: IpAddr::from([10, 0, 0, (i % 200) as u8]),
                dst_port: (i % 1000) as u16 + 1,
                vlan: 0,
                packets: 1 + (i % 50) as u64,
                bytes: 40 + (i % 5000) as u64,
                rev_packets: (i % 2) as u64 * 3,
                rev_bytes: 300,
                tcp_flags: 0,
                rev_tcp_flags: 0,
                end_reason: EndReason::Fin,
            }
        })
        .collect();
    let t = Instant::now();
    let events = flow_events(&records);
    let t_words = t.elapsed().as_secs_f64();
    let (folded, r) = resolve(&model, &events, &FoldInConfig::for_model(&model));
    let t_resolve = t.elapsed().as_secs_f64() - t_words;
    let t2 = Instant::now();
    let scores = score_resolved(&model, &folded, &r);
    let t_score = t2.elapsed().as_secs_f64();
    let ranked = rank(
        &scores,
        &RankConfig {
            threshold: 1.0,
            max_results: 3000,
        },
    );
    let total = t.elapsed().as_secs_f64();
    println!(
        "flow end-to-end: {m} records ({} pairs, {} folded-in docs): words {:.2}s, resolve+fold-in {:.2}s, score {:.3}s ({:.1} M events/s), total {:.2}s = {:.2} M records/s; top score {:.3e}",
        r.pairs.len(),
        folded.len(),
        t_words,
        t_resolve,
        t_score,
        m as f64 / t_score / 1e6,
        total,
        m as f64 / total / 1e6,
        scores[ranked[0]]
    );
}

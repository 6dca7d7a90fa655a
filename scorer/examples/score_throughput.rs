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
use osprey_scorer::score::{FoldInConfig, RankConfig, ScoreTables, Scoring, dot, others_share, rank, resolve, score_all_with, score_resolved};
use osprey_segment::records::{EndReason, FlowRecord};
use rayon::prelude::*;

/// CPU seconds this process has used (all threads, user + system), from
/// `/proc/self/stat` (10 ms ticks); None off Linux. On a shared, loaded
/// machine wall-clock rates understate the kernel, so both are printed.
fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the parenthesised command name; utime and stime are the
    // 14th and 15th fields of the whole line.
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split(' ').collect();
    let ticks: f64 = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}

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
    // Flow records (1 M, half answered) for the end-to-end runs; their own
    // words make most of the vocabulary, as a model trained on the same
    // network would.
    let m = 1_000_000usize;
    let records: Vec<FlowRecord> = (0..m)
        .map(|i| {
            let s = rng.below(25_000) as usize; // ~20% unseen documents
            FlowRecord {
                ts_start: (i as i64) * 86_400_000_000_000 / m as i64,
                ts_end: 0,
                proto: 6,
                src_ip: IpAddr::from([10, (s / 65536) as u8, ((s / 256) % 256) as u8, (s % 256) as u8]),
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
    // Vocabulary: the records' words (first seen first), then flow-like
    // filler up to V; documents: 10.x.y.z.
    let mut words: Vec<String> = Vec::with_capacity(v);
    let mut seen = std::collections::HashSet::new();
    for (_, w) in flow_events(&records).iter().flatten() {
        if words.len() < v * 9 / 10 && seen.insert(w.clone()) {
            words.push(w.clone());
        }
    }
    let mut i = 0;
    while words.len() < v {
        let w = format!("{}_XTP_{}_{}_{}", i % 1000, i % 24, i % 20, i % 7);
        if seen.insert(w.clone()) {
            words.push(w);
        }
        i += 1;
    }
    let docs: Vec<String> = (0..d).map(|i| format!("10.{}.{}.{}", i / 65536, (i / 256) % 256, i % 256)).collect();
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
    let model = Model::new(meta, Vocab::from_names(words), Vocab::from_names(docs), TopicModel { k, phi, theta }).expect("model");
    println!("threads: {}", rayon::current_num_threads());

    // 1. Raw kernel: the padded, aligned tables (built once per scoring
    // run), against the unpadded K-wide rows of the model file scored with
    // the plain 8-lane `dot` in the same run (same pairs, same threads).
    let n = 20_000_000usize;
    let pairs: Vec<(u32, u32)> = (0..n).map(|_| (rng.below(d as u32), rng.below(v as u32))).collect();
    let t = Instant::now();
    let tables = ScoreTables::of_model(&model);
    println!("tables: K={} padded to {} in {:.1} ms", k, tables.padded_k(), t.elapsed().as_secs_f64() * 1e3);
    let mut out = vec![0f32; n];
    let mut plain = vec![0f32; n];
    let reps = 5;
    let unpadded = |out: &mut [f32]| {
        out.par_chunks_mut(1 << 15).zip(pairs.par_chunks(1 << 15)).for_each(|(o, p)| {
            for (o, &(dd, ww)) in o.iter_mut().zip(p) {
                *o = dot(model.topics.theta_row(dd as usize), model.topics.phi_row(ww as usize));
            }
        })
    };
    tables.score_pairs(&pairs, &mut out); // warm-up
    unpadded(&mut plain);
    let mut best = (0f64, 0f64);
    let mut cpu = 0f64;
    for _ in 0..reps {
        let t = Instant::now();
        let c = cpu_seconds();
        tables.score_pairs(&pairs, &mut out);
        cpu += cpu_seconds().zip(c).map_or(f64::NAN, |(b, a)| b - a);
        best.0 = best.0.max(n as f64 / t.elapsed().as_secs_f64() / 1e6);
        let t = Instant::now();
        unpadded(&mut plain);
        best.1 = best.1.max(n as f64 / t.elapsed().as_secs_f64() / 1e6);
    }
    let max_diff = out.iter().zip(&plain).map(|(a, b)| (a - b).abs() / b.abs().max(1e-30)).fold(0f32, f32::max);
    println!(
        "kernel (padded tables, best of {reps} x {n} events): {:.1} M events/s; unpadded rows + 8-lane dot: {:.1} M events/s (max rel. diff {:.1e})",
        best.0, best.1, max_diff
    );
    println!(
        "kernel per CPU-second (padded tables, {reps} x {n} events in {cpu:.2} CPU s): {:.1} M events/s per core",
        (reps * n) as f64 / cpu / 1e6
    );

    // 1b. The same kernel on skewed pairs: real traffic is Zipf-like (a few
    // hosts and words make most events), so rows repeat and stay in cache.
    // Ids are log-uniform (P(id) ∝ 1/(id+1), Zipf with s = 1), the uniform
    // pairs above being the worst case.
    let skewed: Vec<(u32, u32)> = (0..n)
        .map(|_| {
            let z = |n: usize, u: f32| ((n as f32 + 1.0).powf(u) as u32).saturating_sub(1).min(n as u32 - 1);
            (z(d, rng.next_f32()), z(v, rng.next_f32()))
        })
        .collect();
    tables.score_pairs(&skewed, &mut out);
    let mut best_skewed = 0f64;
    for _ in 0..reps {
        let t = Instant::now();
        tables.score_pairs(&skewed, &mut out);
        best_skewed = best_skewed.max(n as f64 / t.elapsed().as_secs_f64() / 1e6);
    }
    println!("kernel on Zipf-like pairs (best of {reps} x {n} events): {best_skewed:.1} M events/s");

    // 2. End to end from flow records (1 M records, half answered).
    let t = Instant::now();
    let events = flow_events(&records);
    let t_words = t.elapsed().as_secs_f64();
    let (folded, r) = resolve(&model, &events, &FoldInConfig::for_model(&model));
    let t_resolve = t.elapsed().as_secs_f64() - t_words;
    let t2 = Instant::now();
    let scores = score_resolved(&model, &folded, &r);
    let t_score = t2.elapsed().as_secs_f64();
    let ranked = rank(&scores, &RankConfig { threshold: 1.0, max_results: 3000 });
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

    // 3. The same records through the default scoring (`osprey score`'s
    // path: fold-in, resolution, back-off of unseen words, population cap,
    // tables, kernel), words included.
    let t = Instant::now();
    let events = flow_events(&records);
    let t_words = t.elapsed().as_secs_f64();
    let scored = score_all_with(&model, &events, &FoldInConfig::for_model(&model), Scoring::Blend);
    let total = t.elapsed().as_secs_f64();
    println!(
        "flow end-to-end, blend: words {:.2}s, fold-in+resolve+back-off+score {:.2}s ({} backed-off words), total {:.2}s = {:.2} M records/s",
        t_words,
        total - t_words,
        scored.backoff.len(),
        total,
        m as f64 / total / 1e6
    );
    // The part of it that counts each word's hosts in the window.
    let t = Instant::now();
    let shares = others_share(&scored.resolved);
    println!(
        "  of which others' share: {:.3}s for {} pairs ({:.0} ns per pair)",
        t.elapsed().as_secs_f64(),
        shares.len(),
        t.elapsed().as_secs_f64() * 1e9 / shares.len().max(1) as f64
    );
}

//! Measures the trainers' token-iterations/s on a synthetic Spot-sized
//! corpus (≈2.2 M tokens, K = 20), and scoring events/s.
//!
//! Run: `cargo run --release -p osprey-scorer --example lda_throughput [tokens]`

use osprey_scorer::corpus::CorpusBuilder;
use osprey_scorer::lda::em::{EmConfig, train_spot_em};
use osprey_scorer::lda::gibbs::{GibbsConfig, train_gibbs};
use osprey_scorer::rng::Rng;

fn main() {
    let tokens: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(2_200_000);
    // 20 source topics, each a Zipf distribution over its own permutation of
    // a 20 000-word vocabulary; 20 000 documents with heavy-tailed sizes.
    let (v, k, docs) = (20_000usize, 20usize, 20_000usize);
    let mut rng = Rng::new(42);
    let mut perms: Vec<Vec<u32>> = Vec::new();
    for _ in 0..k {
        let mut p: Vec<u32> = (0..v as u32).collect();
        for i in (1..v).rev() {
            let j = rng.below(i as u32 + 1) as usize;
            p.swap(i, j);
        }
        perms.push(p);
    }
    let zipf_cdf: Vec<f64> = {
        let mut acc = 0.0;
        let w: Vec<f64> = (1..=v).map(|r| 1.0 / r as f64).collect();
        let s: f64 = w.iter().sum();
        w.iter()
            .map(|x| {
                acc += x / s;
                acc
            })
            .collect()
    };
    let mut b = CorpusBuilder::new();
    let weights: Vec<f64> = (0..docs)
        .map(|d| 1.0 / (1.0 + d as f64).powf(0.8))
        .collect();
    let wsum: f64 = weights.iter().sum();
    for (d, w) in weights.iter().enumerate() {
        let n = ((w / wsum) * tokens as f64).ceil() as usize;
        let t1 = rng.below(k as u32) as usize;
        let t2 = rng.below(k as u32) as usize;
        for _ in 0..n {
            let t = if rng.next_f32() < 0.8 { t1 } else { t2 };
            let u = rng.next_f64();
            let r = zipf_cdf.partition_point(|&c| c < u).min(v - 1);
            b.add(
                &format!("10.0.{}.{}", d / 256, d % 256),
                &format!("w{}", perms[t][r]),
                1,
            );
        }
    }
    let corpus = b.build();
    let st = corpus.stats();
    println!(
        "corpus: {} docs, {} words, {} entries, {} tokens",
        st.documents, st.vocabulary, st.entries, st.tokens
    );

    for threads in [1, 2] {
        let cfg = GibbsConfig {
            iterations: 30,
            threads,
            ..GibbsConfig::default()
        };
        let (m, s) = train_gibbs(&corpus, &cfg).expect("gibbs");
        println!(
            "gibbs threads={threads}: {:.1} M token-iter/s total, {:.1} M/s per thread, {:.2}s, mean ll {:.4}",
            s.token_iterations_per_sec() / 1e6,
            s.token_iterations_per_sec() / 1e6 / threads as f64,
            s.seconds,
            m.mean_log_likelihood(&corpus)
        );
    }
    let cfg = EmConfig {
        threads: 2,
        ..EmConfig::default()
    };
    let (m, s) = train_spot_em(&corpus, &cfg).expect("em");
    println!(
        "spot-em threads=2: {:.1} M token-iter/s, {} iterations in {:.2}s, mean ll {:.4}",
        s.token_iterations_per_sec() / 1e6,
        s.iterations,
        s.seconds,
        m.mean_log_likelihood(&corpus)
    );
}

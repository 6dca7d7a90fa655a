//! Measures the trainers' token-iterations/s on a synthetic Spot-sized
//! corpus (≈2.2 M tokens, K = 20) or on an exported corpus.
//!
//! Run: `cargo run --release -p osprey-scorer --example lda_throughput --
//! [tokens] [--corpus FILE] [--tsv FILE] [--iterations N] [--threads 1,2] [--no-em]`
//!
//! * `--corpus FILE` reads an `osprey words` TSV instead of generating one.
//! * `--tsv FILE` writes the (generated) corpus as TSV, so
//!   `benches/lda_compare.py --corpus FILE` can run the other LDA tools on it.

use osprey_scorer::corpus::{Corpus, CorpusBuilder};
use osprey_scorer::lda::em::{EmConfig, train_spot_em};
use osprey_scorer::lda::gibbs::{GibbsConfig, train_gibbs};
use osprey_scorer::rng::Rng;

/// The value after `--name`, if any.
fn opt(args: &[String], name: &str) -> Option<String> {
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1).cloned())
}

/// CPU seconds (user + system) used by this process so far, from
/// /proc/self/stat (clock ticks of 1/100 s), to tell a slow run from a run
/// that was not given the CPU on a shared machine.
fn cpu_seconds() -> f64 {
    std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| {
            let rest = &s[s.rfind(')')? + 2..];
            let f: Vec<&str> = rest.split_whitespace().collect();
            let ticks = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
            Some(ticks / 100.0)
        })
        .unwrap_or(f64::NAN)
}

fn load_avg() -> String {
    std::fs::read_to_string("/proc/loadavg").ok().and_then(|s| s.split_whitespace().next().map(str::to_string)).unwrap_or_else(|| "?".into())
}

/// 20 source topics, each a Zipf distribution over its own permutation of a
/// 20 000-word vocabulary; 20 000 documents with heavy-tailed sizes.
fn synthetic(tokens: usize) -> Corpus {
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
    let weights: Vec<f64> = (0..docs).map(|d| 1.0 / (1.0 + d as f64).powf(0.8)).collect();
    let wsum: f64 = weights.iter().sum();
    for (d, w) in weights.iter().enumerate() {
        let n = ((w / wsum) * tokens as f64).ceil() as usize;
        let t1 = rng.below(k as u32) as usize;
        let t2 = rng.below(k as u32) as usize;
        for _ in 0..n {
            let t = if rng.next_f32() < 0.8 { t1 } else { t2 };
            let u = rng.next_f64();
            let r = zipf_cdf.partition_point(|&c| c < u).min(v - 1);
            b.add(&format!("10.0.{}.{}", d / 256, d % 256), &format!("w{}", perms[t][r]), 1);
        }
    }
    b.build()
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let corpus = if let Some(path) = opt(&args, "--corpus") {
        let f = std::fs::File::open(&path).expect("open the corpus file");
        Corpus::read_tsv(std::io::BufReader::new(f)).expect("read the corpus file")
    } else {
        let tokens: usize = args.first().and_then(|s| s.parse().ok()).unwrap_or(2_200_000);
        synthetic(tokens)
    };
    if let Some(path) = opt(&args, "--tsv") {
        let f = std::fs::File::create(&path).expect("create the TSV file");
        corpus.write_tsv(std::io::BufWriter::new(f)).expect("write the TSV file");
        println!("wrote {path}");
    }
    let iterations: usize = opt(&args, "--iterations").and_then(|s| s.parse().ok()).unwrap_or(30);
    let threads: Vec<usize> = opt(&args, "--threads").map(|s| s.split(',').filter_map(|t| t.parse().ok()).collect()).unwrap_or_else(|| vec![1, 2]);
    let st = corpus.stats();
    println!("corpus: {} docs, {} words, {} entries, {} tokens", st.documents, st.vocabulary, st.entries, st.tokens);

    for &threads in &threads {
        let cfg = GibbsConfig { iterations, threads, ..GibbsConfig::default() };
        let load = load_avg();
        let cpu0 = cpu_seconds();
        let (m, s) = train_gibbs(&corpus, &cfg).expect("gibbs");
        let cpu = cpu_seconds() - cpu0;
        println!(
            "gibbs threads={threads}: {:.1} M token-iter/s total, {:.1} M/s per thread, {:.2} s wall, \
             {:.2} s CPU (incl. setup), mean ll {:.4} (load {load})",
            s.token_iterations_per_sec() / 1e6,
            s.token_iterations_per_sec() / 1e6 / threads as f64,
            s.seconds,
            cpu,
            m.mean_log_likelihood(&corpus)
        );
    }
    if args.iter().any(|a| a == "--no-em") {
        return;
    }
    let cfg = EmConfig { threads: 2, ..EmConfig::default() };
    let (m, s) = train_spot_em(&corpus, &cfg).expect("em");
    println!(
        "spot-em threads=2: {:.1} M token-iter/s, {} iterations in {:.2}s, mean ll {:.4}",
        s.token_iterations_per_sec() / 1e6,
        s.iterations,
        s.seconds,
        m.mean_log_likelihood(&corpus)
    );
}

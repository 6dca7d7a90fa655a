//! The default trainer: collapsed Gibbs sampling for LDA, parallelised the
//! AD-LDA way, with a dense f32 inner loop tuned for Spot's small K.
//!
//! # Algorithm
//!
//! Each token's topic z is resampled from
//! p(z = t) ∝ (n_dt + α)(n_wt + η)/(n_t + Vη), the exact collapsed conditional.
//! For K = 20 a dense pass over the topics is cheaper than SparseLDA's bucket
//! bookkeeping or alias-table Metropolis–Hastings (those win when K is in the
//! hundreds or thousands, where their O(k_d) or O(1) cost beats O(K)): the
//! K products are independent f32 lanes the compiler vectorises, the word's
//! count row is K contiguous u32 (80 bytes) and the document's row stays in L1
//! while its tokens are swept. The draw takes the total by lane-parallel sums
//! and then walks the K masses subtracting, which stops early when the
//! document's mass sits in few topics (the common case at small α).
//!
//! Parallelism (AD-LDA, Newman et al. 2009): documents are split into one
//! contiguous partition per thread, balanced by tokens. In each sweep every
//! partition samples against its own copy of the topic–word and topic totals
//! (starting from the global ones), and the copies are merged after the sweep
//! (global += Σ partition deltas). With one thread this is the exact sequential
//! sampler. Each partition's random stream depends only on (seed, sweep,
//! partition), so a run is deterministic for a given seed **and** thread
//! count.
//!
//! # Priors
//!
//! Spot ran Spark's MAP-EM with α = 1.02 (document concentration) and
//! η = 1.001 (topic concentration). MAP estimation of a Dirichlet-multinomial
//! uses counts plus (prior − 1), while collapsed Gibbs uses counts plus the
//! prior itself (Asuncion et al. 2009, "On smoothing and inference for topic
//! models", §3: MAP ≈ CGS with the hyperparameters shifted by one). So the
//! same effective smoothing is α = 1.02 − 1 = **0.02** and η = 1.001 − 1 =
//! **0.001** here; these are the defaults. (The commit that introduced Spark
//! LDA in Spot also states the intent as "documentConcentration 0.02,
//! topicConcentration 1.001", i.e. tight priors.)
//!
//! # Estimates
//!
//! After the last sweep, θ_d\[t\] = (n_dt + α)/(n_d + Kα) and
//! φ_t(w) = (n_wt + η)/(n_t + Vη) (posterior means given the final sample).

use std::ops::Range;
use std::time::Instant;

use rayon::prelude::*;

use super::{LdaError, TopicModel, TrainStats, partition_docs, with_pool};
use crate::corpus::Corpus;
use crate::rng::{Rng, mix};

/// Settings of the Gibbs trainer.
#[derive(Debug, Clone, PartialEq)]
pub struct GibbsConfig {
    /// Number of topics (Spot: 20).
    pub k: usize,
    /// Document–topic prior α (see the module doc for the translation).
    pub alpha: f64,
    /// Topic–word prior η.
    pub eta: f64,
    /// Full sweeps over the corpus.
    pub iterations: usize,
    /// Random seed.
    pub seed: u64,
    /// Threads = partitions; 0 uses rayon's default (all cores). Results
    /// are reproducible for a fixed (seed, threads).
    pub threads: usize,
}

impl Default for GibbsConfig {
    fn default() -> Self {
        GibbsConfig {
            k: 20,
            alpha: 0.02,
            eta: 0.001,
            iterations: 100,
            seed: 0x05B0_7E57,
            threads: 0,
        }
    }
}

/// One thread's share: a contiguous range of documents and their state.
struct Part {
    docs: Range<usize>,
    /// Index of the partition's first token in the global token arrays.
    tok_start: usize,
    /// Topic of each token of the partition.
    z: Vec<u16>,
    /// Document–topic counts of the partition's documents. Counts are i32
    /// (the corpus is limited to < 2^31 tokens) because i32 → f32 is one
    /// vector instruction on every x86-64, while u32 → f32 is not.
    ndk: Vec<i32>,
    /// This sweep's copy of the word–topic counts (V × K).
    nwk: Vec<i32>,
    /// This sweep's copy of the topic totals.
    nk: Vec<i32>,
}

/// Trains LDA by collapsed Gibbs sampling.
pub fn train_gibbs(
    corpus: &Corpus,
    cfg: &GibbsConfig,
) -> Result<(TopicModel, TrainStats), LdaError> {
    train_gibbs_impl(corpus, cfg, false)
}

/// `generic_only` bypasses the K-specialised kernels (for testing that they
/// are the same sampler).
fn train_gibbs_impl(
    corpus: &Corpus,
    cfg: &GibbsConfig,
    generic_only: bool,
) -> Result<(TopicModel, TrainStats), LdaError> {
    let k = cfg.k;
    if k == 0 || k > usize::from(u16::MAX) {
        return Err(LdaError::BadTopicCount(k));
    }
    if !(cfg.alpha > 0.0 && cfg.eta > 0.0) {
        return Err(LdaError::BadPrior(format!(
            "Gibbs needs alpha > 0 and eta > 0, got {} and {}",
            cfg.alpha, cfg.eta
        )));
    }
    let tokens = corpus.num_tokens();
    if tokens == 0 {
        return Err(LdaError::EmptyCorpus);
    }
    if tokens > i32::MAX as u64 {
        return Err(LdaError::TooLarge);
    }
    let v = corpus.words.len();
    let n_docs = corpus.docs.len();

    // Expand counts to tokens: doc d's tokens are words[doc_tok[d]..doc_tok[d+1]],
    // repeated words adjacent so the word's row stays hot.
    let mut words = Vec::with_capacity(tokens as usize);
    let mut doc_tok = Vec::with_capacity(n_docs + 1);
    doc_tok.push(0usize);
    for d in 0..n_docs {
        for e in corpus.doc_entries(d as u32) {
            words.extend(std::iter::repeat_n(e.word, e.count as usize));
        }
        doc_tok.push(words.len());
    }

    with_pool(cfg.threads, |threads| {
        let ranges = partition_docs(n_docs, threads, |d| (doc_tok[d + 1] - doc_tok[d]) as u64);
        let mut parts: Vec<Part> = ranges
            .into_iter()
            .enumerate()
            .map(|(p, docs)| {
                let tok = doc_tok[docs.start]..doc_tok[docs.end];
                let mut rng = Rng::new(mix(&[cfg.seed, u64::MAX, p as u64]));
                let z: Vec<u16> = (0..tok.len()).map(|_| rng.below(k as u32) as u16).collect();
                let mut ndk = vec![0i32; docs.len() * k];
                for (dl, d) in docs.clone().enumerate() {
                    for t in doc_tok[d]..doc_tok[d + 1] {
                        ndk[dl * k + z[t - tok.start] as usize] += 1;
                    }
                }
                Part {
                    docs,
                    tok_start: tok.start,
                    z,
                    ndk,
                    nwk: Vec::new(),
                    nk: Vec::new(),
                }
            })
            .collect();
        let mut nwk = vec![0i32; v * k];
        let mut nk = vec![0i32; k];
        for part in &parts {
            for (i, &z) in part.z.iter().enumerate() {
                let w = words[part.tok_start + i] as usize;
                nwk[w * k + z as usize] += 1;
                nk[z as usize] += 1;
            }
        }

        let alpha = cfg.alpha as f32;
        let eta = cfg.eta as f32;
        let veta = (v as f64 * cfg.eta) as f32;
        let start = Instant::now();
        for sweep in 0..cfg.iterations {
            parts.par_iter_mut().enumerate().for_each(|(p, part)| {
                part.nwk.clone_from(&nwk);
                part.nk.clone_from(&nk);
                let mut rng = Rng::new(mix(&[cfg.seed, sweep as u64, p as u64]));
                let params = Params { alpha, eta, veta };
                match k {
                    20 if !generic_only => sweep_part_k20(part, &words, &doc_tok, params, &mut rng),
                    _ => sweep_part(k, part, &words, &doc_tok, params, &mut rng),
                }
            });
            if parts.len() == 1 {
                std::mem::swap(&mut nwk, &mut parts[0].nwk);
                std::mem::swap(&mut nk, &mut parts[0].nk);
            } else {
                merge(&mut nwk, parts.iter().map(|p| p.nwk.as_slice()));
                merge(&mut nk, parts.iter().map(|p| p.nk.as_slice()));
            }
        }
        let seconds = start.elapsed().as_secs_f64();

        // Estimates from the final sample.
        let mut theta = vec![0f32; n_docs * k];
        for part in &parts {
            for (dl, d) in part.docs.clone().enumerate() {
                let nd = (doc_tok[d + 1] - doc_tok[d]) as f64;
                let denom = nd + k as f64 * cfg.alpha;
                for t in 0..k {
                    theta[d * k + t] =
                        ((f64::from(part.ndk[dl * k + t]) + cfg.alpha) / denom) as f32;
                }
            }
        }
        let mut phi = vec![0f32; v * k];
        for w in 0..v {
            for t in 0..k {
                phi[w * k + t] = ((f64::from(nwk[w * k + t]) + cfg.eta)
                    / (f64::from(nk[t]) + v as f64 * cfg.eta))
                    as f32;
            }
        }
        let stats = TrainStats {
            iterations: cfg.iterations,
            tokens,
            threads: parts.len(),
            seconds,
        };
        (TopicModel { k, phi, theta }, stats)
    })
}

/// global ← global + Σ_p (local_p − global). Wrapping arithmetic is exact
/// because the true result is a non-negative count.
fn merge<'a>(global: &mut [i32], locals: impl Iterator<Item = &'a [i32]>) {
    let snapshot = global.to_vec();
    for local in locals {
        for ((g, &l), &s) in global.iter_mut().zip(local).zip(&snapshot) {
            *g = g.wrapping_add(l.wrapping_sub(s));
        }
    }
}

#[derive(Clone, Copy)]
struct Params {
    alpha: f32,
    eta: f32,
    veta: f32,
}

/// K = 20 specialisation: [`sweep_part_const`] with K known at compile
/// time, compiled for AVX2 too and chosen at run time when the CPU has it.
fn sweep_part_k20(part: &mut Part, words: &[u32], doc_tok: &[usize], prm: Params, rng: &mut Rng) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports the feature the function was compiled for.
        unsafe { sweep_part_k20_avx2(part, words, doc_tok, prm, rng) };
        return;
    }
    sweep_part_const::<20>(part, words, doc_tok, prm, rng);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn sweep_part_k20_avx2(
    part: &mut Part,
    words: &[u32],
    doc_tok: &[usize],
    prm: Params,
    rng: &mut Rng,
) {
    sweep_part_const::<20>(part, words, doc_tok, prm, rng);
}

/// [`sweep_part`] with K a compile-time constant: rows become fixed-size
/// arrays, so bounds checks vanish and the K products run in full vector
/// lanes. Same arithmetic in the same order as the generic version (a test
/// checks the two give identical models).
#[inline(always)]
fn sweep_part_const<const K: usize>(
    part: &mut Part,
    words: &[u32],
    doc_tok: &[usize],
    prm: Params,
    rng: &mut Rng,
) {
    let Part {
        docs,
        tok_start,
        z,
        ndk,
        nwk,
        nk,
        ..
    } = part;
    let nk: &mut [i32; K] = nk.as_mut_slice().try_into().expect("nk has K entries");
    let mut inv = [0f32; K];
    for j in 0..K {
        inv[j] = 1.0 / (nk[j] as f32 + prm.veta);
    }
    let mut p = [0f32; K];
    for (dl, d) in docs.clone().enumerate() {
        let nd: &mut [i32; K] = (&mut ndk[dl * K..(dl + 1) * K])
            .try_into()
            .expect("row of K");
        let toks = doc_tok[d]..doc_tok[d + 1];
        let zs = &mut z[toks.start - *tok_start..toks.end - *tok_start];
        for (&w, zi) in words[toks].iter().zip(zs.iter_mut()) {
            let w = w as usize;
            let old = *zi as usize;
            let row: &mut [i32; K] = (&mut nwk[w * K..(w + 1) * K]).try_into().expect("row of K");
            nd[old] -= 1;
            row[old] -= 1;
            nk[old] -= 1;
            inv[old] = 1.0 / (nk[old] as f32 + prm.veta);

            for j in 0..K {
                p[j] = (nd[j] as f32 + prm.alpha) * (row[j] as f32 + prm.eta) * inv[j];
            }
            let total = lane_sum(&p);
            let mut u = rng.next_f32() * total;
            let mut new = K - 1;
            for (j, &pj) in p[..K - 1].iter().enumerate() {
                if u < pj {
                    new = j;
                    break;
                }
                u -= pj;
            }

            nd[new] += 1;
            row[new] += 1;
            nk[new] += 1;
            inv[new] = 1.0 / (nk[new] as f32 + prm.veta);
            *zi = new as u16;
        }
    }
}

/// One sweep over a partition's tokens.
#[inline(always)]
fn sweep_part(
    k: usize,
    part: &mut Part,
    words: &[u32],
    doc_tok: &[usize],
    prm: Params,
    rng: &mut Rng,
) {
    let Part {
        docs,
        tok_start,
        z,
        ndk,
        nwk,
        nk,
        ..
    } = part;
    // 1/(n_t + Vη), kept up to date as counts change.
    let mut inv: Vec<f32> = nk.iter().map(|&n| 1.0 / (n as f32 + prm.veta)).collect();
    let mut p = vec![0f32; k];
    for (dl, d) in docs.clone().enumerate() {
        let nd = &mut ndk[dl * k..(dl + 1) * k];
        for t in doc_tok[d]..doc_tok[d + 1] {
            let w = words[t] as usize;
            let zi = &mut z[t - *tok_start];
            let old = *zi as usize;
            let row = &mut nwk[w * k..(w + 1) * k];
            nd[old] -= 1;
            row[old] -= 1;
            nk[old] -= 1;
            inv[old] = 1.0 / (nk[old] as f32 + prm.veta);

            for j in 0..k {
                p[j] = (nd[j] as f32 + prm.alpha) * (row[j] as f32 + prm.eta) * inv[j];
            }
            let total = lane_sum(&p);
            let mut u = rng.next_f32() * total;
            let mut new = k - 1;
            for (j, &pj) in p[..k - 1].iter().enumerate() {
                if u < pj {
                    new = j;
                    break;
                }
                u -= pj;
            }

            nd[new] += 1;
            row[new] += 1;
            nk[new] += 1;
            inv[new] = 1.0 / (nk[new] as f32 + prm.veta);
            *zi = new as u16;
        }
    }
}

/// Sum of a slice with 8 independent accumulators (vectorises; the order is
/// fixed, so the result is deterministic).
#[inline(always)]
fn lane_sum(xs: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let chunks = xs.chunks_exact(8);
    let rest = chunks.remainder();
    for c in chunks {
        for i in 0..8 {
            acc[i] += c[i];
        }
    }
    let mut s = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
    for &r in rest {
        s += r;
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lda::planted::{generate, matched_l1};

    #[test]
    fn rejects_bad_settings() {
        let p = generate(2, 3, 4, 5, 1);
        let bad_k = GibbsConfig {
            k: 0,
            ..GibbsConfig::default()
        };
        assert!(matches!(
            train_gibbs(&p.corpus, &bad_k),
            Err(LdaError::BadTopicCount(0))
        ));
        let bad_a = GibbsConfig {
            alpha: 0.0,
            ..GibbsConfig::default()
        };
        assert!(matches!(
            train_gibbs(&p.corpus, &bad_a),
            Err(LdaError::BadPrior(_))
        ));
        let empty = crate::corpus::CorpusBuilder::new().build();
        assert!(matches!(
            train_gibbs(&empty, &GibbsConfig::default()),
            Err(LdaError::EmptyCorpus)
        ));
    }

    #[test]
    fn distributions_are_normalised() {
        let p = generate(3, 5, 30, 40, 2);
        let cfg = GibbsConfig {
            k: 3,
            iterations: 5,
            threads: 1,
            ..GibbsConfig::default()
        };
        let (m, stats) = train_gibbs(&p.corpus, &cfg).expect("train");
        assert_eq!(stats.tokens, 30 * 40);
        for d in 0..m.num_docs() {
            let s: f32 = m.theta_row(d).iter().sum();
            assert!((s - 1.0).abs() < 1e-4);
        }
        for t in 0..3 {
            let s: f32 = m.topic(t).iter().sum();
            assert!((s - 1.0).abs() < 1e-4);
        }
    }

    #[test]
    fn deterministic_for_seed_and_threads() {
        let p = generate(4, 6, 60, 50, 3);
        let cfg = GibbsConfig {
            k: 4,
            iterations: 10,
            threads: 2,
            ..GibbsConfig::default()
        };
        let (a, _) = train_gibbs(&p.corpus, &cfg).expect("train");
        let (b, _) = train_gibbs(&p.corpus, &cfg).expect("train");
        assert_eq!(a, b);
        let other = GibbsConfig { seed: 99, ..cfg };
        let (c, _) = train_gibbs(&p.corpus, &other).expect("train");
        assert_ne!(a, c);
    }

    /// Planted topics: 5 topics over 50 words (95% of each topic's mass on
    /// its own block of 10 words), 300 documents × 80 tokens = 24 000 tokens,
    /// about 4 800 per topic. The learned φ of each matched topic must be
    /// within L1 0.25 of the planted one. Sampling noise alone gives
    /// E|p̂ − p| summed over 50 words ≈ Σ sqrt(2p/(πn)) ≈ 0.15 for n ≈ 4 800
    /// (most mass on 10 words of p = 0.095, the rest tiny), and a wrong
    /// recovery (two planted topics merged or split) costs at least ~0.9, so
    /// 0.25 separates the two cleanly. Checked with 1 and 2 threads.
    #[test]
    fn planted_topics_are_recovered() {
        let p = generate(5, 10, 300, 80, 11);
        for threads in [1, 2] {
            let cfg = GibbsConfig {
                k: 5,
                iterations: 150,
                threads,
                seed: 5,
                ..GibbsConfig::default()
            };
            let (m, _) = train_gibbs(&p.corpus, &cfg).expect("train");
            let learned: Vec<Vec<f32>> = (0..5).map(|t| m.topic(t)).collect();
            let l1 = matched_l1(&p.topics, &learned);
            for (t, d) in l1.iter().enumerate() {
                assert!(
                    *d < 0.25,
                    "threads {threads}: planted topic {t} matched at L1 {d} ({l1:?})"
                );
            }
        }
    }

    #[test]
    fn k20_kernel_is_the_generic_sampler() {
        let p = generate(20, 5, 100, 40, 21);
        let cfg = GibbsConfig {
            k: 20,
            iterations: 5,
            threads: 2,
            seed: 1,
            ..GibbsConfig::default()
        };
        let (fast, _) = train_gibbs(&p.corpus, &cfg).expect("train");
        let (generic, _) = train_gibbs_impl(&p.corpus, &cfg, true).expect("train");
        assert_eq!(fast, generic);
    }
}

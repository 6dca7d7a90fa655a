//! Topic models over a [`Corpus`]: the trained φ (topic–word) and θ
//! (document–topic) tables, and the two trainers.
//!
//! * [`gibbs`]: the default, a multi-threaded collapsed Gibbs sampler
//!   (AD-LDA partitioning; for K ≤ 32 a register-resident SIMD kernel that
//!   works per (document, word) run).
//! * [`em`]: `spot-em`, Spark MLlib's MAP-EM exactly as Spot ran it.
//!
//! Both produce a [`TopicModel`] whose φ is stored **word-major** (for each
//! word, K contiguous f32), so scoring one event is a K-length dot product
//! over two contiguous rows.
//!
//! [`Corpus`]: crate::corpus::Corpus

pub mod em;
pub mod gibbs;

use crate::corpus::Corpus;

/// Errors of training.
#[derive(Debug, thiserror::Error)]
pub enum LdaError {
    /// K must be in 1..=65535.
    #[error("topic count must be between 1 and 65535, got {0}")]
    BadTopicCount(usize),
    /// A prior is out of the algorithm's range.
    #[error("invalid prior: {0}")]
    BadPrior(String),
    /// No tokens to learn from.
    #[error("the corpus has no tokens")]
    EmptyCorpus,
    /// A corpus count does not fit the sampler's 32-bit counters.
    #[error("the corpus is too large for 32-bit topic counters")]
    TooLarge,
    /// The trained tables do not fit the corpus (a bug).
    #[error("trained model is inconsistent with its corpus: {0}")]
    Inconsistent(String),
    /// The rayon pool could not be built.
    #[error("building the thread pool: {0}")]
    ThreadPool(String),
}

/// A trained model: φ word-major (V × K) and θ (D × K), both f32.
#[derive(Debug, Clone, PartialEq)]
pub struct TopicModel {
    /// Number of topics.
    pub k: usize,
    /// `phi[w * k + t]` = P(w | topic t).
    pub phi: Vec<f32>,
    /// `theta[d * k + t]` = P(topic t | document d).
    pub theta: Vec<f32>,
}

impl TopicModel {
    /// Vocabulary size.
    pub fn num_words(&self) -> usize {
        self.phi.len().checked_div(self.k).unwrap_or(0)
    }

    /// Number of documents.
    pub fn num_docs(&self) -> usize {
        self.theta.len().checked_div(self.k).unwrap_or(0)
    }

    /// P(w | t) for every topic t.
    pub fn phi_row(&self, w: usize) -> &[f32] {
        &self.phi[w * self.k..(w + 1) * self.k]
    }

    /// θ of document `d`.
    pub fn theta_row(&self, d: usize) -> &[f32] {
        &self.theta[d * self.k..(d + 1) * self.k]
    }

    /// Topic `t` as a distribution over words (a column of φ).
    pub fn topic(&self, t: usize) -> Vec<f32> {
        (0..self.num_words()).map(|w| self.phi[w * self.k + t]).collect()
    }

    /// Mean per-token log-likelihood of a corpus under the model,
    /// Σ count·ln Σ_t θ_d\[t\]·φ_t(w) / tokens, for documents and words the
    /// model knows by id (the training corpus).
    pub fn mean_log_likelihood(&self, corpus: &Corpus) -> f64 {
        let mut ll = 0.0;
        let mut n = 0u64;
        for e in &corpus.entries {
            let p: f64 = crate::score::dot(self.theta_row(e.doc as usize), self.phi_row(e.word as usize)).into();
            ll += e.count as f64 * p.max(1e-300).ln();
            n += e.count;
        }
        if n == 0 { 0.0 } else { ll / n as f64 }
    }
}

/// Timing and size of one training run.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct TrainStats {
    /// Sweeps (Gibbs) or EM iterations run.
    pub iterations: usize,
    /// Tokens in the corpus.
    pub tokens: u64,
    /// Threads (partitions) used.
    pub threads: usize,
    /// Wall-clock seconds of the iterations (initialisation excluded).
    pub seconds: f64,
}

impl TrainStats {
    /// Token-iterations per second over all threads.
    pub fn token_iterations_per_sec(&self) -> f64 {
        if self.seconds > 0.0 { self.tokens as f64 * self.iterations as f64 / self.seconds } else { 0.0 }
    }
}

/// Splits documents `0..n` into `parts` contiguous ranges of about equal
/// weight (`weight(d)`), so each thread gets a similar number of tokens.
pub(crate) fn partition_docs(n: usize, parts: usize, weight: impl Fn(usize) -> u64) -> Vec<std::ops::Range<usize>> {
    let parts = parts.max(1);
    let total: u64 = (0..n).map(&weight).sum();
    let mut out = Vec::with_capacity(parts);
    let mut start = 0;
    let mut acc = 0u64;
    for p in 1..=parts {
        let target = (total as u128 * p as u128 / parts as u128) as u64;
        let mut end = start;
        while end < n && (acc < target || p == parts) {
            acc += weight(end);
            end += 1;
        }
        out.push(start..end);
        start = end;
    }
    out
}

/// Runs `f` on a rayon pool with `threads` threads (0 = rayon's default),
/// returning the effective thread count too.
pub(crate) fn with_pool<T: Send>(threads: usize, f: impl FnOnce(usize) -> T + Send) -> Result<T, LdaError> {
    let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().map_err(|e| LdaError::ThreadPool(e.to_string()))?;
    let n = pool.current_num_threads();
    Ok(pool.install(|| f(n)))
}

#[cfg(test)]
pub(crate) mod planted {
    //! A corpus generated from known topics, shared by both trainers' tests.

    use crate::corpus::{Corpus, CorpusBuilder};
    use crate::rng::Rng;

    /// Planted topics (K × V, rows sum to 1) and a corpus drawn from them.
    pub struct Planted {
        pub topics: Vec<Vec<f32>>,
        pub corpus: Corpus,
    }

    /// K topics over V = K·block words: topic t puts 95% of its mass evenly
    /// on its own block of words and 5% evenly on all others. Each document
    /// mixes one or two topics, has `len` tokens.
    pub fn generate(k: usize, block: usize, docs: usize, len: usize, seed: u64) -> Planted {
        let v = k * block;
        let mut topics = vec![vec![0f32; v]; k];
        for (t, row) in topics.iter_mut().enumerate() {
            for (w, p) in row.iter_mut().enumerate() {
                *p = if w / block == t { 0.95 / block as f32 } else { 0.05 / (v - block) as f32 };
            }
        }
        let mut rng = Rng::new(seed);
        let mut b = CorpusBuilder::new();
        for d in 0..docs {
            let t1 = rng.below(k as u32) as usize;
            let t2 = rng.below(k as u32) as usize;
            let mix = if rng.next_f32() < 0.5 { 1.0 } else { 0.7 };
            for _ in 0..len {
                let t = if rng.next_f32() < mix { t1 } else { t2 };
                // Inverse-CDF draw from topic t.
                let u = rng.next_f32();
                let mut acc = 0.0;
                let mut word = v - 1;
                for (w, &p) in topics[t].iter().enumerate() {
                    acc += p;
                    if u < acc {
                        word = w;
                        break;
                    }
                }
                b.add(&format!("doc{d}"), &format!("w{word}"), 1);
            }
        }
        let corpus = b.build();
        // Reorder planted topics to the corpus's word ids.
        let topics = topics
            .into_iter()
            .map(|row| {
                let mut out = vec![0f32; corpus.words.len()];
                for (w, p) in row.into_iter().enumerate() {
                    if let Some(id) = corpus.words.id(&format!("w{w}")) {
                        out[id as usize] = p;
                    }
                }
                out
            })
            .collect();
        Planted { topics, corpus }
    }

    /// For each planted topic, the L1 distance to its learned match under the
    /// best one-to-one matching (greedy on the smallest distances; with
    /// well-separated topics greedy and optimal agree).
    pub fn matched_l1(planted: &[Vec<f32>], learned: &[Vec<f32>]) -> Vec<f32> {
        let k = planted.len();
        let mut pairs = Vec::new();
        for (i, p) in planted.iter().enumerate() {
            for (j, l) in learned.iter().enumerate() {
                let d: f32 = p.iter().zip(l).map(|(a, b)| (a - b).abs()).sum();
                pairs.push((d, i, j));
            }
        }
        pairs.sort_by(|a, b| a.0.total_cmp(&b.0));
        let mut used_p = vec![false; k];
        let mut used_l = vec![false; learned.len()];
        let mut out = vec![f32::INFINITY; k];
        for (d, i, j) in pairs {
            if !used_p[i] && !used_l[j] {
                used_p[i] = true;
                used_l[j] = true;
                out[i] = d;
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_balances_weight_and_covers_all_docs() {
        let w = |d: usize| if d < 2 { 100 } else { 1 };
        let parts = partition_docs(102, 2, w);
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0].start, 0);
        assert_eq!(parts[1].end, 102);
        assert_eq!(parts[0].end, parts[1].start);
        assert_eq!(parts[0], 0..2);
        let parts = partition_docs(3, 5, |_| 1);
        assert_eq!(parts.len(), 5);
        assert_eq!(parts.iter().map(|r| r.len()).sum::<usize>(), 3);
    }
}

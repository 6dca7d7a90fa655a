//! The default trainer: collapsed Gibbs sampling for LDA, parallelised the
//! AD-LDA way, with a register-resident lane kernel for Spot's small K.
//!
//! # Algorithm
//!
//! Each token's topic z is resampled from
//! p(z = t) ∝ (n_dt + α)(n_wt + η)/(n_t + Vη), the exact collapsed conditional.
//! For K ≤ 32 (Spot uses 20) a dense pass over the topics is cheaper than
//! SparseLDA's bucket bookkeeping or alias-table Metropolis–Hastings (those
//! win when K is in the hundreds or thousands, where their O(k_d) or O(1)
//! cost beats O(K)). The lane kernel (below, `sweep_lanes_portable` and its
//! AVX2 twin) samples one (document, word) run at a time: it computes the K
//! masses of the full state and their prefix sums once, gives each token the
//! exact conditional without itself by a one-lane correction δ, accepts
//! "keeps its topic" with two scalar compares, and otherwise counts the
//! prefix sums ≤ u across the lanes; a move patches two masses. Larger K uses
//! a plain per-token loop.
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
use crate::corpus::{Corpus, Entry};
use crate::rng::{Rng, Rng4, mix};

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
        GibbsConfig { k: 20, alpha: 0.02, eta: 0.001, iterations: 100, seed: 0x05B0_7E57, threads: 0 }
    }
}

/// One thread's share: a contiguous range of documents and their state.
struct Part {
    docs: Range<usize>,
    /// Index of the partition's first token in the global token arrays.
    tok_start: usize,
    /// Topic of each token of the partition.
    z: Vec<u16>,
    /// Document–topic counts of the partition's documents (stride K).
    /// Counts are i32 (the corpus is limited to < 2^31 tokens) because
    /// i32 → f32 is one vector instruction on every x86-64, while u32 → f32
    /// is not.
    ndk: Vec<i32>,
    /// This sweep's word–topic counts (V × K): a copy of the global ones
    /// with several partitions, the global ones themselves with one.
    nwk: Vec<i32>,
    /// This sweep's copy of the topic totals.
    nk: Vec<i32>,
    /// Tokens that changed topic in the partition's last sweep (the AVX2
    /// lane kernel picks its kept-topic test by it; the model does not
    /// depend on it).
    moved: usize,
}

/// Largest K the lane kernel handles (four 8-lane blocks).
const MAX_LANE_K: usize = 32;

/// Which inner loop sweeps a partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kernel {
    /// The lane kernel for K ≤ 32 (AVX2 when the CPU has it, otherwise its
    /// portable twin), the per-token loop for larger K.
    Auto,
    /// The lane kernel's portable twin even when AVX2 is there (tests check
    /// it is bit-identical to the AVX2 version).
    #[cfg_attr(not(test), allow(dead_code, reason = "only the tests ask for the portable twin"))]
    PortableLanes,
    /// The plain per-token loop for every K.
    Generic,
}

/// Trains LDA by collapsed Gibbs sampling.
pub fn train_gibbs(corpus: &Corpus, cfg: &GibbsConfig) -> Result<(TopicModel, TrainStats), LdaError> {
    train_gibbs_impl(corpus, cfg, Kernel::Auto)
}

fn train_gibbs_impl(corpus: &Corpus, cfg: &GibbsConfig, kernel: Kernel) -> Result<(TopicModel, TrainStats), LdaError> {
    let k = cfg.k;
    if k == 0 || k > usize::from(u16::MAX) {
        return Err(LdaError::BadTopicCount(k));
    }
    if !(cfg.alpha > 0.0 && cfg.eta > 0.0) {
        return Err(LdaError::BadPrior(format!("Gibbs needs alpha > 0 and eta > 0, got {} and {}", cfg.alpha, cfg.eta)));
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
    if corpus.doc_ptr.len() != n_docs + 1
        || corpus.doc_ptr.last() != Some(&corpus.entries.len())
        || corpus.entries.iter().any(|e| e.word as usize >= v)
    {
        return Err(LdaError::Inconsistent("corpus entries do not match its document and word tables".into()));
    }

    // Expand counts to tokens: doc d's tokens are words[doc_tok[d]..doc_tok[d+1]],
    // one run per (document, word) entry, in entry order.
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
                Part { docs, tok_start: tok.start, moved: z.len(), z, ndk, nwk: Vec::new(), nk: Vec::new() }
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

        let prm = Params { alpha: cfg.alpha as f32, eta: cfg.eta as f32, veta: (v as f64 * cfg.eta) as f32 };
        let runs = Runs { entries: &corpus.entries, doc_ptr: &corpus.doc_ptr };
        let start = Instant::now();
        for sweep in 0..cfg.iterations {
            if let [part] = parts.as_mut_slice() {
                // One partition samples the global tables themselves: no
                // copy, so training holds the V × K counts once.
                part.nwk = std::mem::take(&mut nwk);
                part.nk = std::mem::take(&mut nk);
                let mut rng = Rng::new(mix(&[cfg.seed, sweep as u64, 0]));
                sweep_part_with(kernel, k, part, &words, &doc_tok, runs, prm, &mut rng);
                nwk = std::mem::take(&mut part.nwk);
                nk = std::mem::take(&mut part.nk);
                continue;
            }
            parts.par_iter_mut().enumerate().for_each(|(p, part)| {
                part.nwk.clone_from(&nwk);
                part.nk.clone_from(&nk);
                let mut rng = Rng::new(mix(&[cfg.seed, sweep as u64, p as u64]));
                sweep_part_with(kernel, k, part, &words, &doc_tok, runs, prm, &mut rng);
            });
            merge(&mut nwk, parts.iter().map(|p| p.nwk.as_slice()));
            merge(&mut nk, parts.iter().map(|p| p.nk.as_slice()));
        }
        let seconds = start.elapsed().as_secs_f64();

        // Estimates from the final sample.
        let mut theta = vec![0f32; n_docs * k];
        for part in &parts {
            for (dl, d) in part.docs.clone().enumerate() {
                let nd = (doc_tok[d + 1] - doc_tok[d]) as f64;
                let denom = nd + k as f64 * cfg.alpha;
                for t in 0..k {
                    theta[d * k + t] = ((f64::from(part.ndk[dl * k + t]) + cfg.alpha) / denom) as f32;
                }
            }
        }
        let mut phi = vec![0f32; v * k];
        for w in 0..v {
            for t in 0..k {
                phi[w * k + t] = ((f64::from(nwk[w * k + t]) + cfg.eta) / (f64::from(nk[t]) + v as f64 * cfg.eta)) as f32;
            }
        }
        let stats = TrainStats { iterations: cfg.iterations, tokens, threads: parts.len(), seconds };
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

/// The corpus as runs: document d's tokens are, in order, `count` copies of
/// `word` for each entry in `entries[doc_ptr[d]..doc_ptr[d + 1]]`.
#[derive(Clone, Copy)]
struct Runs<'a> {
    entries: &'a [Entry],
    doc_ptr: &'a [usize],
}

/// One sweep over a partition with the chosen kernel.
#[allow(clippy::too_many_arguments, reason = "the per-sweep inputs of both kernels")]
fn sweep_part_with(kernel: Kernel, k: usize, part: &mut Part, words: &[u32], doc_tok: &[usize], runs: Runs<'_>, prm: Params, rng: &mut Rng) {
    if kernel == Kernel::Generic || k > MAX_LANE_K {
        sweep_part(k, part, words, doc_tok, prm, rng);
        return;
    }
    match k.div_ceil(8) {
        1 => sweep_lanes::<1>(kernel, k, part, runs, prm, rng),
        2 => sweep_lanes::<2>(kernel, k, part, runs, prm, rng),
        3 => sweep_lanes::<3>(kernel, k, part, runs, prm, rng),
        _ => sweep_lanes::<4>(kernel, k, part, runs, prm, rng),
    }
}

/// The lane kernel with N 8-lane blocks (8(N−1) < K ≤ 8N): AVX2 when the
/// CPU has it and the caller did not ask for the portable twin.
fn sweep_lanes<const N: usize>(kernel: Kernel, k: usize, part: &mut Part, runs: Runs<'_>, prm: Params, rng: &mut Rng) {
    debug_assert!(k > 8 * (N - 1) && k <= 8 * N);
    #[cfg(target_arch = "x86_64")]
    if kernel == Kernel::Auto && std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("popcnt") {
        // SAFETY: the CPU supports the feature the function was compiled for.
        unsafe {
            if 2 * part.moved > part.z.len() {
                avx2::sweep::<N, true>(k, part, runs, prm, rng);
            } else {
                avx2::sweep::<N, false>(k, part, runs, prm, rng);
            }
        }
        return;
    }
    let _ = kernel;
    sweep_lanes_portable::<N>(k, part, runs, prm, rng);
}

// The lane kernel
// ---------------
// The per-token loop of `sweep_part` spends most of its time not on the K
// products but on (1) store-to-load forwarding stalls: it decrements one
// count of the document row, the word row and the totals with a scalar
// store and then reads the whole row back with vector loads, which the CPU
// cannot forward, a stall on the token-to-token dependency chain; and (2)
// the early-exit walk over the K masses, a badly predicted branch and a
// chain of dependent subtractions. (That is the design reasoning; the
// measured result is in BENCHMARKS.md, the machine has no PMU counters.)
//
// The lane kernel works per (document, word) run (Spot's flow words repeat
// within a document: 16 tokens per entry on the demo's 2.1 M-token corpus). At the start of a
// run it computes the K masses p_t = (n_dt + α)(n_wt + η)/(n_t + Vη) of the
// *full* state (every token counted) with vector arithmetic, and their
// prefix sums (a log-step scan inside each 8-lane block plus a carry
// between blocks), kept in registers. A token of topic a sees the full state
// minus itself, which differs in lane a only, so its prefix sums are the
// kept ones plus δ = p_a(without the token) − p_a on lanes ≥ a: one masked
// vector add. With α small most tokens keep their
// topic, so the draw first checks whether u falls in the token's own
// interval [S_{a−1}, S_a + δ) (two scalar compares); only otherwise does it
// count the sums ≤ u over the lanes below K − 1 (no branch, no walk; u past
// them all picks the last topic). A kept token
// changes nothing, so consecutive tokens do not depend on each other and
// the CPU overlaps them.
//
// A token that moves from a to b changes two masses, and the prefix sums get
// two masked adds rather than a recomputation. On Spot's flow corpus about
// one token in five moves in a sweep after burn-in (nearly every token in
// the first sweeps), and each move sits on the chain the next tokens wait
// for: ~20 more cycles of latency there made a 100-sweep run ~12 % slower.
// So the move is built from values
// computed ahead: every lane keeps its mass with one token less and one
// token more of this document and word (`less`, `more`) and the differences
// δ = less − p (`removal`) and more − p (`addition`), and every topic keeps
// 1/(n_t + c + Vη) for c = −2..=2. Then a move's two mass changes are the δ
// of a (already loaded for the token's own test) and the `addition` of b,
// and a's and b's other lane values shift by one (a's new mass is its old
// `less`, its new `more` its old mass, ...): the only new products are a's
// new `less` and b's new `more`, with reciprocals from the ends of the
// window, whose two divisions refill the ends for the next move. Shifting
// gives bit for bit the values recomputing would, because every value is
// the same expression of the same integers. The total mass is kept in a
// register, and the AVX2 kernel writes the count arrays its refresh reads
// as vectors only with vector stores (a vector load cannot be forwarded
// from scalar stores still in flight).
// The masses and prefix sums are recomputed from the counts at every run
// start and after every [`REFRESH`] moves, so f32 rounding of the prefix
// sums cannot accumulate. The conditional is the exact collapsed one; only
// the rounding of the f32 sums differs from a sequential sum, and the
// portable twin below does the same f32 operations in the same order, so
// both give bit-identical models on any CPU.

/// Moves within a run after which the lane kernel recomputes its masses and
/// prefix sums from the counts.
const REFRESH: u32 = 31;

/// Uniforms the lane kernel draws at a time from its [`Rng4`] (eight per
/// step, a few vector ops in the AVX2 kernel) instead of a scalar generator
/// step per token. Token i of a partition's sweep gets the stream's i-th
/// uniform in both kernels, however they buffer it.
const UNIFORM_BATCH: usize = 256;

/// 1/(n + Vη) for a topic total n: the one expression both kernels use, so a
/// reciprocal shifted from a neighbouring count equals a recomputed one.
#[inline(always)]
fn recip(n: i32, veta: f32) -> f32 {
    1.0 / (n as f32 + veta)
}

/// The mass (n_dt + α)(n_wt + η)·inv, in the operation order of the AVX2
/// refresh.
#[inline(always)]
fn product(nd: i32, row: i32, inv: f32, prm: Params) -> f32 {
    (nd as f32 + prm.alpha) * (row as f32 + prm.eta) * inv
}

/// The lane kernel's state in lane arrays (lanes ≥ K stay zero): the counts
/// of the current document and word and the topic totals;
/// `recips[c + 2]` = 1/(n_t + c + Vη) for c = −2..=2; the mass p_t, the
/// masses with one token of this document and word less and more, and their
/// differences from p_t. `less` and `removal` are meaningful only for topics
/// with a token of this document and word (the only ones they are read for).
#[derive(Clone)]
#[repr(C, align(64))]
struct LaneState {
    nd: [i32; 32],
    row: [i32; 32],
    nk: [i32; 32],
    recips: [[f32; 32]; 5],
    mass: [f32; 32],
    less: [f32; 32],
    more: [f32; 32],
    removal: [f32; 32],
    addition: [f32; 32],
}

impl LaneState {
    fn new(k: usize, nk: &[i32], veta: f32) -> Self {
        let z = [0f32; 32];
        let mut s = LaneState { nd: [0; 32], row: [0; 32], nk: [0; 32], recips: [z; 5], mass: z, less: z, more: z, removal: z, addition: z };
        for (t, &n) in nk.iter().enumerate().take(k) {
            s.nk[t] = n;
            for (c, r) in (-2..=2).zip(&mut s.recips) {
                r[t] = recip(n + c, veta);
            }
        }
        s
    }

    /// Recomputes lane t's masses from the counts (what the AVX2 refresh
    /// does eight lanes at a time).
    #[inline(always)]
    fn refresh_lane(&mut self, t: usize, prm: Params) {
        let (nd, row) = (self.nd[t], self.row[t]);
        let m = product(nd, row, self.recips[2][t], prm);
        let l = product(nd - 1, row - 1, self.recips[1][t], prm);
        let p = product(nd + 1, row + 1, self.recips[3][t], prm);
        self.mass[t] = m;
        self.less[t] = l;
        self.more[t] = p;
        self.removal[t] = l - m;
        self.addition[t] = p - m;
    }

    /// Moves one token of this document and word from topic `a` to `b`
    /// (a ≠ b) and returns the change of the two masses, δ_a and b's
    /// `addition` before the move. The new lane values are the old ones
    /// shifted by one count, x − y = −(y − x) exactly, and the two new
    /// products use the same expressions as a refresh, so the state equals
    /// a recomputed one. The two new products take their reciprocals from
    /// the ends of the window (c = ∓2); the two divisions refill those ends
    /// and are first needed at the next move out of a or into b, so they
    /// stay off the path to the next token.
    #[inline(always)]
    fn apply_move(&mut self, a: usize, b: usize, prm: Params) -> (f32, f32) {
        let change = self.move_lanes(a, b, prm);
        self.nd[a] -= 1;
        self.row[a] -= 1;
        self.nd[b] += 1;
        self.row[b] += 1;
        change
    }

    /// [`LaneState::apply_move`] except the document and word counts, which
    /// the caller updates after it (the AVX2 kernel with vector stores).
    #[inline(always)]
    fn move_lanes(&mut self, a: usize, b: usize, prm: Params) -> (f32, f32) {
        let (da, db) = (self.removal[a], self.addition[b]);
        // The document and word counts after the move.
        let (nd_a, row_a, nd_b, row_b) = (self.nd[a] - 1, self.row[a] - 1, self.nd[b] + 1, self.row[b] + 1);
        self.nk[a] -= 1;
        self.nk[b] += 1;

        let r = &mut self.recips;
        for c in (1..5).rev() {
            r[c][a] = r[c - 1][a];
        }
        r[0][a] = recip(self.nk[a] - 2, prm.veta);
        self.more[a] = self.mass[a];
        self.mass[a] = self.less[a];
        self.addition[a] = -da;
        self.less[a] = product(nd_a - 1, row_a - 1, r[1][a], prm);
        self.removal[a] = self.less[a] - self.mass[a];

        for c in 0..4 {
            r[c][b] = r[c + 1][b];
        }
        r[4][b] = recip(self.nk[b] + 2, prm.veta);
        self.less[b] = self.mass[b];
        self.mass[b] = self.more[b];
        self.removal[b] = -db;
        self.more[b] = product(nd_b + 1, row_b + 1, r[3][b], prm);
        self.addition[b] = self.more[b] - self.mass[b];
        (da, db)
    }
}

/// The portable twin of [`avx2::sweep`]: same state, same f32 operations in
/// the same order, so the same model for a given seed.
fn sweep_lanes_portable<const N: usize>(k: usize, part: &mut Part, runs: Runs<'_>, prm: Params, rng: &mut Rng) {
    let Part { docs, z, ndk, nwk, nk, moved, .. } = part;
    *moved = 0;
    let mut st = LaneState::new(k, nk, prm.veta);
    let mut pre = [0f32; 32];
    let lanes = 8 * N;
    let refresh = |st: &mut LaneState, pre: &mut [f32; 32]| {
        for t in 0..lanes {
            st.refresh_lane(t, prm);
        }
        prefix_portable::<N>(&st.mass, pre);
    };
    let mut streams = Rng4::new(rng.next_u64());
    let mut ubuf = [0f32; UNIFORM_BATCH];
    let mut ui = UNIFORM_BATCH;
    let mut z_rest: &mut [u16] = z;
    for (dl, d) in docs.clone().enumerate() {
        let nd_row = &mut ndk[dl * k..(dl + 1) * k];
        st.nd[..k].copy_from_slice(nd_row);
        for e in &runs.entries[runs.doc_ptr[d]..runs.doc_ptr[d + 1]] {
            let w = e.word as usize;
            let row = &mut nwk[w * k..(w + 1) * k];
            st.row[..k].copy_from_slice(row);
            refresh(&mut st, &mut pre);
            let (run, rest) = std::mem::take(&mut z_rest).split_at_mut(e.count as usize);
            z_rest = rest;
            let mut moves = 0u32;
            for zt in run {
                let old = usize::from(*zt);
                let delta = st.removal[old];
                if ui == UNIFORM_BATCH {
                    for c in ubuf.as_chunks_mut::<8>().0 {
                        streams.next8(c);
                    }
                    ui = 0;
                }
                let u = ubuf[ui] * (pre[lanes - 1] + delta);
                ui += 1;
                let lo = if old > 0 { pre[old - 1] } else { 0.0 };
                if lo <= u && u < pre[old] + delta {
                    // Kept its topic (u fell in its own interval).
                    continue;
                }
                // Lanes ≥ K − 1 are not counted: u past every sum picks the
                // last topic.
                let new = (0..k - 1).filter(|&j| if j >= old { pre[j] + delta } else { pre[j] } <= u).count();
                if new != old {
                    let (da, db) = st.apply_move(old, new, prm);
                    nd_row[old] -= 1;
                    nd_row[new] += 1;
                    row[old] -= 1;
                    row[new] += 1;
                    for (j, p) in pre[..lanes].iter_mut().enumerate() {
                        if j >= old {
                            *p += da;
                        }
                        if j >= new {
                            *p += db;
                        }
                    }
                    *zt = new as u16;
                    *moved += 1;
                    moves += 1;
                    if moves == REFRESH {
                        refresh(&mut st, &mut pre);
                        moves = 0;
                    }
                }
            }
        }
    }
    nk.copy_from_slice(&st.nk[..k]);
}

/// Inclusive prefix sums of the first 8N masses, associated exactly as the
/// AVX2 scan does: inside each half-block of 4, s1 = x1 + x0,
/// s2 = (x2 + x1) + x0, s3 = (x3 + x2) + (x1 + x0); the upper half adds the
/// lower half's s3; each block adds the previous block's last prefix.
#[inline(always)]
fn prefix_portable<const N: usize>(mass: &[f32; 32], out: &mut [f32; 32]) {
    let mut carry = 0f32;
    for b in 0..N {
        let x = &mass[8 * b..8 * b + 8];
        let mut y = [0f32; 8];
        for i in 0..8 {
            y[i] = if i % 4 >= 1 { x[i] + x[i - 1] } else { x[i] };
        }
        let mut s = y;
        for i in 0..8 {
            if i % 4 >= 2 {
                s[i] = y[i] + y[i - 2];
            }
        }
        let lower = s[3];
        for v in &mut s[4..] {
            *v += lower;
        }
        for v in &mut s {
            *v += carry;
        }
        carry = s[7];
        out[8 * b..8 * b + 8].copy_from_slice(&s);
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    //! The lane kernel in AVX2 intrinsics (see the comment above
    //! [`super::LaneState`]).

    use std::arch::x86_64::*;

    use super::{LaneState, Params, Part, REFRESH, Runs, UNIFORM_BATCH};
    use crate::rng::{Rng, Rng4};

    /// The prefix sums as scalars, for the kept-topic test: `0[8 + t]` is the
    /// sum of lanes 0..=t and `0[7]` = 0, so that the vector stores are
    /// aligned and never split a cache line.
    #[repr(C, align(64))]
    struct Prefix([f32; 48]);

    /// A batch of uniforms, aligned for vector stores.
    #[repr(C, align(64))]
    struct Batch([f32; UNIFORM_BATCH]);

    /// Constants of the refresh.
    #[derive(Clone, Copy)]
    struct Consts {
        alpha: __m256,
        eta: __m256,
        zero: __m256,
        one: __m256i,
        idx3: __m256i,
        idx7: __m256i,
    }

    /// Recomputes the state's masses from its counts (the same operations
    /// as `LaneState::refresh_lane`) and their prefix sums, into registers
    /// and, shifted by one lane, `pre_s`; returns the total mass.
    #[inline]
    #[target_feature(enable = "avx2,popcnt")]
    fn refresh<const N: usize>(st: &mut LaneState, pre: &mut [__m256; N], pre_s: &mut Prefix, c: Consts) -> f32 {
        let mut carry = c.zero;
        for (b, pre_b) in pre.iter_mut().enumerate() {
            let o = 8 * b;
            // SAFETY: o + 8 ≤ 8N ≤ 32 lanes of the state arrays.
            let (nd, row, inv_less, inv, inv_more) = unsafe {
                (
                    _mm256_load_si256(st.nd.as_ptr().add(o).cast()),
                    _mm256_load_si256(st.row.as_ptr().add(o).cast()),
                    _mm256_load_ps(st.recips[1].as_ptr().add(o)),
                    _mm256_load_ps(st.recips[2].as_ptr().add(o)),
                    _mm256_load_ps(st.recips[3].as_ptr().add(o)),
                )
            };
            let product = |nd: __m256i, row: __m256i, inv: __m256| {
                _mm256_mul_ps(_mm256_mul_ps(_mm256_add_ps(_mm256_cvtepi32_ps(nd), c.alpha), _mm256_add_ps(_mm256_cvtepi32_ps(row), c.eta)), inv)
            };
            let x = product(nd, row, inv);
            let less = product(_mm256_sub_epi32(nd, c.one), _mm256_sub_epi32(row, c.one), inv_less);
            let more = product(_mm256_add_epi32(nd, c.one), _mm256_add_epi32(row, c.one), inv_more);
            // SAFETY: as above.
            unsafe {
                _mm256_store_ps(st.mass.as_mut_ptr().add(o), x);
                _mm256_store_ps(st.less.as_mut_ptr().add(o), less);
                _mm256_store_ps(st.more.as_mut_ptr().add(o), more);
                _mm256_store_ps(st.removal.as_mut_ptr().add(o), _mm256_sub_ps(less, x));
                _mm256_store_ps(st.addition.as_mut_ptr().add(o), _mm256_sub_ps(more, x));
            }
            let x = _mm256_add_ps(x, _mm256_castsi256_ps(_mm256_slli_si256::<4>(_mm256_castps_si256(x))));
            let x = _mm256_add_ps(x, _mm256_castsi256_ps(_mm256_slli_si256::<8>(_mm256_castps_si256(x))));
            let lower = _mm256_permutevar8x32_ps(x, c.idx3);
            let x = _mm256_add_ps(x, _mm256_blend_ps::<0xF0>(c.zero, lower));
            // The next carry is this one plus the block's own sum (lane 7
            // before the carry), the same addition as lane 7 of x + carry
            // but without waiting for the whole block.
            let next = _mm256_add_ps(_mm256_permutevar8x32_ps(x, c.idx7), carry);
            let x = _mm256_add_ps(x, carry);
            carry = next;
            *pre_b = x;
            // SAFETY: 8 + o + 8 ≤ 40 lanes of pre_s.
            unsafe { _mm256_store_ps(pre_s.0.as_mut_ptr().add(8 + o), x) };
        }
        _mm256_cvtss_f32(carry)
    }

    /// Eight uniforms from the four xoshiro256++ streams of `s` (word i of
    /// the four states in `s[i]`): [`Rng4::next8`] with one vector op per
    /// scalar op.
    #[inline]
    #[target_feature(enable = "avx2,popcnt")]
    fn next8(s: &mut [__m256i; 4]) -> __m256 {
        let sum = _mm256_add_epi64(s[0], s[3]);
        let result = _mm256_add_epi64(_mm256_or_si256(_mm256_slli_epi64::<23>(sum), _mm256_srli_epi64::<41>(sum)), s[0]);
        let t = _mm256_slli_epi64::<17>(s[1]);
        s[2] = _mm256_xor_si256(s[2], s[0]);
        s[3] = _mm256_xor_si256(s[3], s[1]);
        s[1] = _mm256_xor_si256(s[1], s[2]);
        s[0] = _mm256_xor_si256(s[0], s[3]);
        s[2] = _mm256_xor_si256(s[2], t);
        s[3] = _mm256_or_si256(_mm256_slli_epi64::<45>(s[3]), _mm256_srli_epi64::<19>(s[3]));
        _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_srli_epi32::<8>(result)), _mm256_set1_ps(1.0 / (1u32 << 24) as f32))
    }

    /// Moves one count from lane `a` to lane `b` of a lane array with a
    /// vector load and store of each one's block: the arrays the refresh
    /// reads as vectors are only ever written whole blocks at a time, since a
    /// vector load cannot be forwarded from a recent scalar store and would
    /// wait for it to retire.
    #[inline]
    #[target_feature(enable = "avx2,popcnt")]
    fn bump(counts: &mut [i32; 32], a: usize, b: usize, iota: __m256i) {
        for (t, sign) in [(a, -1), (b, 1)] {
            let p = counts[t & !7..].as_mut_ptr();
            let one_hot = _mm256_and_si256(_mm256_cmpeq_epi32(iota, _mm256_set1_epi32((t & 7) as i32)), _mm256_set1_epi32(sign));
            // SAFETY: t < 32, so the block t & !7 .. + 8 is inside the array,
            // which the 64-byte alignment of `LaneState` aligns to 32 bytes.
            unsafe { _mm256_store_si256(p.cast(), _mm256_add_epi32(_mm256_load_si256(p.cast()), one_hot)) };
        }
    }

    /// One sweep over a partition (8(N−1) < K ≤ 8N ≤ 32).
    #[target_feature(enable = "avx2,popcnt")]
    ///
    /// `BUSY`: most tokens are expected to move (the first sweeps from the
    /// random start): the kept-topic test is then one branch instead of
    /// two. The two scalar compares give two branches, each random when
    /// most tokens move; when most stay they are both well predicted and
    /// resolve sooner than one branch on the combined vector compare, which
    /// matters more then. Both tests are the same comparison.
    pub(super) fn sweep<const N: usize, const BUSY: bool>(k: usize, part: &mut Part, runs: Runs<'_>, prm: Params, rng: &mut Rng) {
        let Part { docs, z, ndk, nwk, nk, moved, .. } = part;
        *moved = 0;
        assert!(k > 8 * (N - 1) && k <= 8 * N && N <= 4 && nk.len() == k, "lane kernel: K does not fit N blocks");
        let mut lane = [_mm256_setzero_si256(); N];
        let mut valid = [_mm256_setzero_si256(); N];
        for (b, (l, v)) in lane.iter_mut().zip(&mut valid).enumerate() {
            let base = 8 * b as i32;
            *l = _mm256_setr_epi32(base, base + 1, base + 2, base + 3, base + 4, base + 5, base + 6, base + 7);
            *v = _mm256_cmpgt_epi32(_mm256_set1_epi32(k as i32), *l);
        }
        let iota = lane[0];
        // Which lanes of each block the search counts: those < K − 1 (u
        // past every sum picks the last topic without a clamp on the chain).
        let counted: [u32; N] = std::array::from_fn(|b| ((1u64 << (k - 1).saturating_sub(8 * b).min(8)) - 1) as u32);
        let mut st = LaneState::new(k, nk, prm.veta);
        let c = Consts {
            alpha: _mm256_set1_ps(prm.alpha),
            eta: _mm256_set1_ps(prm.eta),
            zero: _mm256_setzero_ps(),
            one: _mm256_set1_epi32(1),
            idx3: _mm256_set1_epi32(3),
            idx7: _mm256_set1_epi32(7),
        };

        let mut pre = [c.zero; N];
        let mut pre_s = Prefix([0f32; 48]);
        // The generators' state stays in registers for the whole sweep.
        let streams = Rng4::new(rng.next_u64());
        // SAFETY: each row of the state is four u64.
        let mut gs = streams.s.map(|w| unsafe { _mm256_loadu_si256(w.as_ptr().cast()) });
        let mut ubuf = Batch([0f32; UNIFORM_BATCH]);
        let mut ui = UNIFORM_BATCH;
        // The total mass, the last prefix sum, also as a scalar: a move
        // updates it as ((T + δ_a) + Δ_b), the same operations as the last
        // lane of the vector update, without a trip through `pre_s`.
        let mut total;
        let mut z_rest: &mut [u16] = z;
        let entries = runs.entries;
        for (dl, d) in docs.clone().enumerate() {
            let nd_row = &mut ndk[dl * k..(dl + 1) * k];
            for (b, &v) in valid.iter().enumerate() {
                // SAFETY: 8b < K, so the pointer is inside the row, and the
                // masked load reads only its lanes < K; 8b + 8 ≤ 32 lanes.
                unsafe { _mm256_store_si256(st.nd.as_mut_ptr().add(8 * b).cast(), _mm256_maskload_epi32(nd_row.as_ptr().add(8 * b), v)) };
            }
            for ei in runs.doc_ptr[d]..runs.doc_ptr[d + 1] {
                let e = &entries[ei];
                // The next run's word row (two cache lines): the rows are
                // visited in no useful order for the hardware prefetcher.
                if let Some(next) = entries.get(ei + 1) {
                    let p = nwk.as_ptr().wrapping_add(next.word as usize * k);
                    _mm_prefetch::<_MM_HINT_T0>(p.cast());
                    _mm_prefetch::<_MM_HINT_T0>(p.wrapping_add(k - 1).cast());
                }
                let w = e.word as usize;
                let row = &mut nwk[w * k..(w + 1) * k];
                for (b, &v) in valid.iter().enumerate() {
                    // SAFETY: as for the document row.
                    unsafe { _mm256_store_si256(st.row.as_mut_ptr().add(8 * b).cast(), _mm256_maskload_epi32(row.as_ptr().add(8 * b), v)) };
                }
                total = refresh::<N>(&mut st, &mut pre, &mut pre_s, c);
                let (run, rest) = std::mem::take(&mut z_rest).split_at_mut(e.count as usize);
                z_rest = rest;
                let mut moves = 0u32;
                // The run in chunks that fit the uniforms left in the batch,
                // so that the token loop has no refill test.
                let mut chunks = run;
                while !chunks.is_empty() {
                    if ui == UNIFORM_BATCH {
                        for c in ubuf.0.as_chunks_mut::<8>().0 {
                            // SAFETY: eight f32 of an aligned array.
                            unsafe { _mm256_store_ps(c.as_mut_ptr(), next8(&mut gs)) };
                        }
                        ui = 0;
                    }
                    let m = chunks.len().min(UNIFORM_BATCH - ui);
                    let (chunk, later) = std::mem::take(&mut chunks).split_at_mut(m);
                    chunks = later;
                    let uniforms = &ubuf.0[ui..ui + m];
                    ui += m;
                    for (zt, &r) in chunk.iter_mut().zip(uniforms) {
                        // z < K ≤ 32; the mask only spares the bounds checks.
                        let old = usize::from(*zt) & 31;
                        let delta = st.removal[old];
                        let us = r * (total + delta);
                        let (lo, hi) = (pre_s.0[7 + old], pre_s.0[8 + old] + delta);
                        let kept = if BUSY {
                            // The compiler splits `&&` and `&` of scalar
                            // compares into two branches; vector compares
                            // keep them one.
                            let u1 = _mm_set_ss(us);
                            let inside = _mm_and_ps(_mm_cmp_ss::<_CMP_LE_OQ>(_mm_set_ss(lo), u1), _mm_cmp_ss::<_CMP_LT_OQ>(u1, _mm_set_ss(hi)));
                            _mm_movemask_ps(inside) & 1 != 0
                        } else {
                            lo <= us && us < hi
                        };
                        if kept {
                            // Kept its topic (u fell in its own interval).
                            continue;
                        }
                        let dv = _mm256_set1_ps(delta);
                        // Lanes ≥ old, i.e. lane > old − 1.
                        let from = _mm256_set1_epi32(old as i32 - 1);
                        let u = _mm256_set1_ps(us);
                        let mut below = 0u32;
                        for b in 0..N {
                            let ge = _mm256_castsi256_ps(_mm256_cmpgt_epi32(lane[b], from));
                            let p = _mm256_add_ps(pre[b], _mm256_and_ps(dv, ge));
                            let le = _mm256_cmp_ps::<_CMP_LE_OQ>(p, u);
                            below += (_mm256_movemask_ps(le) as u32 & counted[b]).count_ones();
                        }
                        let new = below as usize;
                        if new != old {
                            // Δ_b straight into a vector (a broadcast load is
                            // quicker than a load and a broadcast), read
                            // before the move changes it.
                            let vb = _mm256_broadcast_ss(&st.addition[new]);
                            let (da, db) = st.move_lanes(old, new, prm);
                            bump(&mut st.nd, old, new, iota);
                            bump(&mut st.row, old, new, iota);
                            let va = _mm256_set1_ps(da);
                            let from_b = _mm256_set1_epi32(new as i32 - 1);
                            for b in 0..N {
                                let ga = _mm256_castsi256_ps(_mm256_cmpgt_epi32(lane[b], from));
                                let gb = _mm256_castsi256_ps(_mm256_cmpgt_epi32(lane[b], from_b));
                                pre[b] = _mm256_add_ps(_mm256_add_ps(pre[b], _mm256_and_ps(va, ga)), _mm256_and_ps(vb, gb));
                                // SAFETY: 8 + 8b + 8 ≤ 40 lanes of pre_s.
                                unsafe { _mm256_store_ps(pre_s.0.as_mut_ptr().add(8 + 8 * b), pre[b]) };
                            }
                            total = (total + da) + db;
                            *zt = new as u16;
                            *moved += 1;
                            moves += 1;
                            if moves == REFRESH {
                                total = refresh::<N>(&mut st, &mut pre, &mut pre_s, c);
                                moves = 0;
                            }
                        }
                    }
                }
                for (b, &v) in valid.iter().enumerate() {
                    // SAFETY: as for the loads.
                    unsafe { _mm256_maskstore_epi32(row.as_mut_ptr().add(8 * b), v, _mm256_load_si256(st.row.as_ptr().add(8 * b).cast())) };
                }
            }
            for (b, &v) in valid.iter().enumerate() {
                // SAFETY: as for the loads.
                unsafe { _mm256_maskstore_epi32(nd_row.as_mut_ptr().add(8 * b), v, _mm256_load_si256(st.nd.as_ptr().add(8 * b).cast())) };
            }
        }
        nk.copy_from_slice(&st.nk[..k]);
    }
}

/// One sweep over a partition's tokens.
#[inline(always)]
fn sweep_part(k: usize, part: &mut Part, words: &[u32], doc_tok: &[usize], prm: Params, rng: &mut Rng) {
    let Part { docs, tok_start, z, ndk, nwk, nk, .. } = part;
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
        let bad_k = GibbsConfig { k: 0, ..GibbsConfig::default() };
        assert!(matches!(train_gibbs(&p.corpus, &bad_k), Err(LdaError::BadTopicCount(0))));
        let bad_a = GibbsConfig { alpha: 0.0, ..GibbsConfig::default() };
        assert!(matches!(train_gibbs(&p.corpus, &bad_a), Err(LdaError::BadPrior(_))));
        let empty = crate::corpus::CorpusBuilder::new().build();
        assert!(matches!(train_gibbs(&empty, &GibbsConfig::default()), Err(LdaError::EmptyCorpus)));
    }

    #[test]
    fn distributions_are_normalised() {
        let p = generate(3, 5, 30, 40, 2);
        let cfg = GibbsConfig { k: 3, iterations: 5, threads: 1, ..GibbsConfig::default() };
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
        let cfg = GibbsConfig { k: 4, iterations: 10, threads: 2, ..GibbsConfig::default() };
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
            let cfg = GibbsConfig { k: 5, iterations: 150, threads, seed: 5, ..GibbsConfig::default() };
            let (m, _) = train_gibbs(&p.corpus, &cfg).expect("train");
            let learned: Vec<Vec<f32>> = (0..5).map(|t| m.topic(t)).collect();
            let l1 = matched_l1(&p.topics, &learned);
            for (t, d) in l1.iter().enumerate() {
                assert!(*d < 0.25, "threads {threads}: planted topic {t} matched at L1 {d} ({l1:?})");
            }
        }
    }

    /// The AVX2 lane kernel and its portable twin must be the same sampler
    /// bit for bit, for every block count (K = 5, 13, 20, 29), full last
    /// blocks (K = 8, 32) and with one and two partitions; the early sweeps
    /// from the random start also take the AVX2 kernel's one-branch test.
    /// (On a CPU without AVX2 both runs take the portable path and the test
    /// checks only determinism.)
    #[test]
    fn lane_kernel_matches_its_portable_twin() {
        for (k, threads) in [(5, 1), (8, 1), (13, 2), (20, 1), (20, 2), (29, 2), (32, 1)] {
            let p = generate(k, 4, 80, 60, 21 + k as u64);
            let cfg = GibbsConfig { k, iterations: 12, threads, seed: 1, ..GibbsConfig::default() };
            let (fast, _) = train_gibbs(&p.corpus, &cfg).expect("train");
            let (portable, _) = train_gibbs_impl(&p.corpus, &cfg, Kernel::PortableLanes).expect("train");
            assert_eq!(fast, portable, "K = {k}, threads = {threads}");
        }
    }

    /// The cached full-state prefix sums plus δ on lanes ≥ a are the
    /// prefix sums of the state without one token of topic a (up to f32
    /// rounding), for every a and for rows with zeros and large counts; and
    /// a move's shifted lane values equal those recomputed from the new
    /// counts.
    #[test]
    fn delta_gives_the_conditional_without_the_token() {
        let prm = Params { alpha: 0.02, eta: 0.001, veta: 7.5 };
        let k = 20;
        let mut rng = Rng::new(4);
        let nk: Vec<i32> = (0..k).map(|_| 1 + rng.below(50_000) as i32).collect();
        let base = LaneState::new(k, &nk, prm.veta);
        let inv = |n: i32| 1.0 / (n as f32 + prm.veta);
        let mass = |nd: &[i32; 32], row: &[i32; 32], nk: &[i32]| {
            let mut m = [0f32; 32];
            for t in 0..k {
                m[t] = (nd[t] as f32 + prm.alpha) * (row[t] as f32 + prm.eta) * inv(nk[t]);
            }
            m
        };
        let refreshed = |mut s: LaneState| {
            for t in 0..24 {
                s.refresh_lane(t, prm);
            }
            s
        };
        for trial in 0..50 {
            let mut sc = base.clone();
            for (t, &n) in nk.iter().enumerate() {
                let nd = if rng.below(3) == 0 { 0 } else { rng.below(400) as i32 };
                let row = if trial % 2 == 0 { rng.below(5) as i32 } else { rng.below(3000) as i32 };
                sc.nd[t] = nd.min(n);
                sc.row[t] = row.min(n);
            }
            let sc = refreshed(sc);
            assert_eq!(sc.mass, mass(&sc.nd, &sc.row, &nk));
            let mut full = [0f32; 32];
            prefix_portable::<3>(&sc.mass, &mut full);
            for a in (0..k).filter(|&a| sc.nd[a] > 0 && sc.row[a] > 0) {
                let (mut nd, mut row, mut nk2) = (sc.nd, sc.row, nk.clone());
                nd[a] -= 1;
                row[a] -= 1;
                nk2[a] -= 1;
                let mut want = [0f32; 32];
                prefix_portable::<3>(&mass(&nd, &row, &nk2), &mut want);
                let d = sc.removal[a];
                for j in 0..24 {
                    let got = if j >= a { full[j] + d } else { full[j] };
                    let tol = 1e-5 * want[23].abs() + 1e-30;
                    assert!((got - want[j]).abs() <= tol, "a {a} lane {j}: {got} vs {}", want[j]);
                }
                // Moving the token to b leaves every lane value equal to
                // the one recomputed from the new counts.
                let b = (a + 1) % k;
                let mut moved = sc.clone();
                let (da, db) = moved.apply_move(a, b, prm);
                nd[b] += 1;
                row[b] += 1;
                nk2[b] += 1;
                assert_eq!((moved.nd, moved.row, &moved.nk[..k]), (nd, row, &nk2[..]));
                let m2 = mass(&nd, &row, &nk2);
                assert_eq!(moved.mass, m2);
                assert_eq!(da, m2[a] - sc.mass[a]);
                assert_eq!(db, m2[b] - sc.mass[b]);
                let fresh = refreshed(LaneState { nd, row, ..LaneState::new(k, &nk2, prm.veta) });
                assert_eq!(moved.recips, fresh.recips);
                assert_eq!((moved.mass, moved.less, moved.more), (fresh.mass, fresh.less, fresh.more));
                assert_eq!((moved.removal, moved.addition), (fresh.removal, fresh.addition));
            }
        }
    }

    /// The per-token loop (used for K > 32) recovers planted topics too.
    #[test]
    fn generic_kernel_recovers_planted_topics() {
        let p = generate(5, 10, 300, 80, 11);
        let cfg = GibbsConfig { k: 5, iterations: 150, threads: 1, seed: 5, ..GibbsConfig::default() };
        let (m, _) = train_gibbs_impl(&p.corpus, &cfg, Kernel::Generic).expect("train");
        let learned: Vec<Vec<f32>> = (0..5).map(|t| m.topic(t)).collect();
        let l1 = matched_l1(&p.topics, &learned);
        assert!(l1.iter().all(|d| *d < 0.25), "{l1:?}");
    }

    /// K = 40 takes the per-token loop through the public entry point.
    #[test]
    fn large_k_uses_the_generic_kernel() {
        let p = generate(40, 3, 60, 40, 8);
        let cfg = GibbsConfig { k: 40, iterations: 3, threads: 1, ..GibbsConfig::default() };
        let (a, _) = train_gibbs(&p.corpus, &cfg).expect("train");
        let (b, _) = train_gibbs_impl(&p.corpus, &cfg, Kernel::Generic).expect("train");
        assert_eq!(a, b);
    }
}

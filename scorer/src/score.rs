//! Scoring events with a trained model, and Spot's ranking.
//!
//! score(d, w) = Σ_t θ_d\[t\]·φ_t(w) = P(w | d) (`spot-reference.md` §3.2).
//! φ is stored word-major, so a score is a K-length dot product of two
//! contiguous f32 rows ([`dot`], 8 lanes).
//!
//! * [`Scoring::Blend`] (the default) caps each pair's score with the word's
//!   population score P_pop(w) = Σ_t θ̄\[t\]·φ_t(w) (θ̄: mean θ row, every
//!   host weighing the same), so a host's bulk behaviour that no other host
//!   shares (tunnel, DGA, beacon; `spot-reference.md` §7.2) is not scored as
//!   normal for that host. [`Scoring::Spot`] is Spot's formula, unchanged.
//! * An event is a list of (document, word) pairs; its score is the **min**
//!   over its pairs (Spot's flow rule; DNS and proxy events have one pair,
//!   flows two per direction, see [`crate::words::flow`]).
//! * `word_error` scores **−1** (never reported).
//! * A word missing from the model's vocabulary scores **0**, as in Spot: its
//!   φ is all zeros, i.e. it is maximally suspicious. This is deliberate:
//!   a word never seen in training is exactly the novelty the analysis hunts.
//! * A document (IP) missing from the model gets θ by **fold-in**
//!   ([`FoldInConfig`]): a few Gibbs sweeps over that document's own words
//!   with φ fixed, instead of Spot's uniform 1/K guess. It is deterministic:
//!   the random stream depends on the seed and the document's name.
//! * An event with no pairs (its record was dropped by input hygiene) scores
//!   NaN and is never ranked.
//!
//! [`rank`] applies Spot's selection: keep scores in (−1, threshold], sort
//! ascending, truncate to max-results (≤ 0: all).

use std::collections::HashMap;
use std::net::IpAddr;

use rayon::prelude::*;

use crate::corpus::doc_name;
use crate::model::Model;
use crate::rng::{Rng, hash_str, mix};
use crate::words::WORD_ERROR;

/// Score of a `word_error` pair.
pub const ERROR_SCORE: f32 = -1.0;
/// Score of a word the model has never seen.
pub const UNSEEN_WORD_SCORE: f32 = 0.0;

/// The (document, word) pairs of one event.
pub type EventWords = Vec<(IpAddr, String)>;

/// Dot product of two equal-length f32 slices with 8 independent lanes
/// (vectorises; fixed summation order, so results are reproducible).
#[inline(always)]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let ca = a.chunks_exact(8);
    let cb = b.chunks_exact(8);
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for i in 0..8 {
            acc[i] += x[i] * y[i];
        }
    }
    let mut s = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
    for (x, y) in ra.iter().zip(rb) {
        s += x * y;
    }
    s
}

/// Settings of fold-in inference for unseen documents.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FoldInConfig {
    /// Total Gibbs sweeps over the document's tokens.
    pub sweeps: usize,
    /// Sweeps discarded before θ is averaged.
    pub burn_in: usize,
    /// Document–topic prior α in Gibbs form (counts + α).
    pub alpha: f32,
    /// At most this many tokens per document are sampled; larger documents
    /// are scaled down proportionally per word (each word keeps ≥ 1 token),
    /// which bounds the cost while keeping the word mix.
    pub max_tokens: usize,
    /// Seed of the per-document random streams.
    pub seed: u64,
}

impl Default for FoldInConfig {
    fn default() -> Self {
        FoldInConfig {
            sweeps: 20,
            burn_in: 10,
            alpha: 0.02,
            max_tokens: 4096,
            seed: 0x05B0_7E57,
        }
    }
}

impl FoldInConfig {
    /// Defaults with the model's α in Gibbs form (α − 1 for a `spot-em`
    /// model, whose α is a MAP-EM concentration).
    pub fn for_model(model: &Model) -> Self {
        let a = if model.meta.trainer == "spot-em" {
            model.meta.alpha - 1.0
        } else {
            model.meta.alpha
        };
        FoldInConfig {
            alpha: a.max(1e-3) as f32,
            ..Self::default()
        }
    }
}

/// θ of a document from its known word ids, with φ fixed.
pub fn fold_in(
    model: &Model,
    word_counts: &[(u32, u64)],
    cfg: &FoldInConfig,
    stream: u64,
) -> Vec<f32> {
    let k = model.topics.k;
    let total: u64 = word_counts.iter().map(|&(_, c)| c).sum();
    if total == 0 {
        return vec![1.0 / k as f32; k];
    }
    let scale = if total as usize > cfg.max_tokens {
        cfg.max_tokens as f64 / total as f64
    } else {
        1.0
    };
    let mut tokens: Vec<u32> = Vec::new();
    for &(w, c) in word_counts {
        let n = ((c as f64 * scale).round() as usize).max(1);
        tokens.extend(std::iter::repeat_n(w, n));
    }
    let mut rng = Rng::new(mix(&[cfg.seed, stream]));
    let mut z: Vec<u16> = (0..tokens.len())
        .map(|_| rng.below(k as u32) as u16)
        .collect();
    let mut nd = vec![0u32; k];
    for &t in &z {
        nd[t as usize] += 1;
    }
    let mut acc = vec![0f64; k];
    let mut kept = 0usize;
    let mut p = vec![0f32; k];
    for sweep in 0..cfg.sweeps.max(1) {
        for (i, &w) in tokens.iter().enumerate() {
            let old = z[i] as usize;
            nd[old] -= 1;
            let phi = model.topics.phi_row(w as usize);
            let mut total = 0.0;
            for t in 0..k {
                p[t] = (nd[t] as f32 + cfg.alpha) * phi[t];
                total += p[t];
            }
            let mut new = old;
            if total > 0.0 {
                let mut u = rng.next_f32() * total;
                new = k - 1;
                for (t, &pt) in p[..k - 1].iter().enumerate() {
                    if u < pt {
                        new = t;
                        break;
                    }
                    u -= pt;
                }
            }
            nd[new] += 1;
            z[i] = new as u16;
        }
        if sweep >= cfg.burn_in.min(cfg.sweeps.max(1) - 1) {
            for t in 0..k {
                acc[t] += f64::from(nd[t]);
            }
            kept += 1;
        }
    }
    let n = tokens.len() as f64;
    let denom = n + k as f64 * f64::from(cfg.alpha);
    acc.iter()
        .map(|&s| ((s / kept as f64 + f64::from(cfg.alpha)) / denom) as f32)
        .collect()
}

const WORD_UNSEEN: u32 = u32::MAX;
const WORD_ERR: u32 = u32::MAX - 1;

/// The model's documents keyed by address, so events are resolved without
/// formatting every IP as text (names that are not IPs are skipped: they
/// cannot match an event).
#[derive(Debug, Clone, Default)]
pub struct DocIndex {
    ips: HashMap<IpAddr, u32>,
}

impl DocIndex {
    /// Indexes a model's documents.
    pub fn new(model: &Model) -> Self {
        let ips = model
            .docs
            .names()
            .iter()
            .enumerate()
            .filter_map(|(i, n)| {
                n.parse::<IpAddr>()
                    .ok()
                    .map(|ip| (ip.to_canonical(), i as u32))
            })
            .collect();
        DocIndex { ips }
    }

    /// The model's row of a document.
    pub fn get(&self, ip: IpAddr) -> Option<u32> {
        self.ips.get(&ip.to_canonical()).copied()
    }
}

/// The known words of documents the model has not seen, collected over any
/// number of batches (e.g. a first pass over every segment to be scored), so
/// each unseen document is folded in once from all of its events.
#[derive(Debug, Clone, Default)]
pub struct UnseenDocs {
    words: HashMap<IpAddr, HashMap<u32, u64>>,
}

impl UnseenDocs {
    /// An empty collection.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds the pairs of `events` whose document the model does not know.
    pub fn add_events(&mut self, model: &Model, index: &DocIndex, events: &[EventWords]) {
        for (ip, word) in events.iter().flatten() {
            if index.get(*ip).is_some() {
                continue;
            }
            let words = self.words.entry(ip.to_canonical()).or_default();
            if let Some(w) = model.vocab.id(word) {
                *words.entry(w).or_default() += 1;
            }
        }
    }

    /// Number of unseen documents collected.
    pub fn len(&self) -> usize {
        self.words.len()
    }

    /// Whether none was collected.
    pub fn is_empty(&self) -> bool {
        self.words.is_empty()
    }

    /// Folds every collected document in (in parallel; each document's
    /// random stream depends only on the seed and its name, so the result
    /// does not depend on batch or thread order).
    pub fn fold_in(self, model: &Model, cfg: &FoldInConfig) -> FoldedDocs {
        let k = model.topics.k;
        let mut docs: Vec<(IpAddr, HashMap<u32, u64>)> = self.words.into_iter().collect();
        docs.sort_unstable_by_key(|(ip, _)| *ip);
        let thetas: Vec<Vec<f32>> = docs
            .par_iter()
            .map(|(ip, words)| {
                let mut wc: Vec<(u32, u64)> = words.iter().map(|(&w, &c)| (w, c)).collect();
                wc.sort_unstable();
                fold_in(model, &wc, cfg, hash_str(&doc_name(*ip)))
            })
            .collect();
        let mut folded = FoldedDocs::empty(k);
        for ((ip, _), t) in docs.into_iter().zip(thetas) {
            folded.index.insert(ip, (folded.theta.len() / k) as u32);
            folded.theta.extend_from_slice(&t);
        }
        folded
    }
}

/// θ rows of folded-in documents. Row 0 is the uniform 1/K row, used for a
/// document found neither in the model nor here (Spot's old guess; it only
/// happens when events were not collected before folding in).
#[derive(Debug, Clone, PartialEq)]
pub struct FoldedDocs {
    k: usize,
    index: HashMap<IpAddr, u32>,
    theta: Vec<f32>,
}

impl FoldedDocs {
    /// No folded document (only the uniform row).
    pub fn empty(k: usize) -> Self {
        FoldedDocs {
            k,
            index: HashMap::new(),
            theta: vec![1.0 / k as f32; k],
        }
    }

    /// Number of folded documents.
    pub fn len(&self) -> usize {
        self.index.len()
    }

    /// Whether no document was folded in.
    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// θ of a folded document.
    pub fn theta(&self, ip: IpAddr) -> Option<&[f32]> {
        let k = self.k;
        self.index
            .get(&ip.to_canonical())
            .map(|&r| &self.theta[r as usize * k..(r as usize + 1) * k])
    }
}

/// Events resolved to (θ row, word id) pairs, ready for the scoring kernel.
/// θ rows below the model's document count are the model's; the rest index
/// a [`FoldedDocs`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resolved {
    /// Pairs of all events: (θ row, word id or a marker).
    pub pairs: Vec<(u32, u32)>,
    /// `event_ptr[e]..event_ptr[e+1]` indexes `pairs` of event `e`.
    pub event_ptr: Vec<usize>,
}

/// Resolves events against a model and already folded-in documents
/// (in parallel over blocks of events).
pub fn resolve_with(
    model: &Model,
    index: &DocIndex,
    folded: &FoldedDocs,
    events: &[EventWords],
) -> Resolved {
    let n_known = model.docs.len() as u32;
    // Per block: its pairs and each event's pair count.
    type Block = (Vec<(u32, u32)>, Vec<u32>);
    let blocks: Vec<Block> = events
        .par_chunks(16_384)
        .map(|block| {
            let mut pairs = Vec::with_capacity(block.len() * 2);
            let mut lens = Vec::with_capacity(block.len());
            for ev in block {
                for (ip, word) in ev {
                    let w = if word == WORD_ERROR {
                        WORD_ERR
                    } else {
                        model.vocab.id(word).unwrap_or(WORD_UNSEEN)
                    };
                    let row = match index.get(*ip) {
                        Some(d) => d,
                        None => {
                            n_known + folded.index.get(&ip.to_canonical()).copied().unwrap_or(0)
                        }
                    };
                    pairs.push((row, w));
                }
                lens.push(ev.len() as u32);
            }
            (pairs, lens)
        })
        .collect();
    let total: usize = blocks.iter().map(|(p, _)| p.len()).sum();
    let mut pairs = Vec::with_capacity(total);
    let mut event_ptr = Vec::with_capacity(events.len() + 1);
    event_ptr.push(0);
    for (p, lens) in blocks {
        pairs.extend_from_slice(&p);
        for l in lens {
            let last = event_ptr[event_ptr.len() - 1];
            event_ptr.push(last + l as usize);
        }
    }
    Resolved { pairs, event_ptr }
}

/// Folds in the unseen documents of `events` and resolves them: the
/// one-batch path (Spot's train-and-score-the-same-day included).
pub fn resolve(model: &Model, events: &[EventWords], cfg: &FoldInConfig) -> (FoldedDocs, Resolved) {
    let index = DocIndex::new(model);
    let mut unseen = UnseenDocs::new();
    unseen.add_events(model, &index, events);
    let folded = unseen.fold_in(model, cfg);
    let r = resolve_with(model, &index, &folded, events);
    (folded, r)
}

/// How a (document, word) pair is scored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Scoring {
    /// Spot's formula, unchanged: P(w | d) = Σ_k θ_d\[k\]·φ_k(w).
    Spot,
    /// min(P(w | d), P_pop(w)), where P_pop(w) = Σ_k θ̄\[k\]·φ_k(w) and θ̄
    /// is the mean of the model's θ rows (every host weighs the same). A word
    /// that is rare across hosts stays suspicious even when its own host uses
    /// it a lot (a tunnel, DGA or beacon that dominates its host's traffic,
    /// `spot-reference.md` §7.2), while a word that is rare for its host but
    /// common elsewhere keeps Spot's low score.
    #[default]
    Blend,
}

/// P_pop(w) of every vocabulary word (see [`Scoring::Blend`]): V dot
/// products with the mean θ row, computed once per model.
pub fn population_scores(model: &Model) -> Vec<f32> {
    let k = model.topics.k;
    let n_docs = model.docs.len();
    let mut mean = vec![0f64; k];
    for d in 0..n_docs {
        for (m, &t) in mean.iter_mut().zip(model.topics.theta_row(d)) {
            *m += f64::from(t);
        }
    }
    let mean: Vec<f32> = if n_docs == 0 {
        vec![1.0 / k as f32; k]
    } else {
        mean.iter().map(|&m| (m / n_docs as f64) as f32).collect()
    };
    (0..model.vocab.len())
        .into_par_iter()
        .with_min_len(4096)
        .map(|w| dot(&mean, model.topics.phi_row(w)))
        .collect()
}

/// The per-word population table of a scoring (empty for Spot's).
pub fn population_for(model: &Model, scoring: Scoring) -> Vec<f32> {
    match scoring {
        Scoring::Spot => Vec::new(),
        Scoring::Blend => population_scores(model),
    }
}

/// Scores one resolved pair: Spot's score, capped by the word's population
/// score when `population` is not empty ([`Scoring::Blend`]).
#[inline(always)]
fn pair_score(model: &Model, extra_theta: &[f32], population: &[f32], p: (u32, u32)) -> f32 {
    let s = spot_pair_score(model, extra_theta, p);
    match population.get(p.1 as usize) {
        Some(&pop) if p.1 < WORD_ERR => s.min(pop),
        _ => s,
    }
}

/// Spot's score of one resolved pair.
#[inline(always)]
fn spot_pair_score(model: &Model, extra_theta: &[f32], (row, w): (u32, u32)) -> f32 {
    match w {
        WORD_ERR => ERROR_SCORE,
        WORD_UNSEEN => UNSEEN_WORD_SCORE,
        _ => {
            let k = model.topics.k;
            let n_known = model.docs.len();
            let row = row as usize;
            let theta = if row < n_known {
                model.topics.theta_row(row)
            } else {
                &extra_theta[(row - n_known) * k..(row - n_known + 1) * k]
            };
            dot(theta, model.topics.phi_row(w as usize))
        }
    }
}

/// Scores resolved events with Spot's formula (min over each event's
/// pairs), in parallel.
pub fn score_resolved(model: &Model, folded: &FoldedDocs, r: &Resolved) -> Vec<f32> {
    score_resolved_with(model, folded, r, &[])
}

/// Scores resolved events (min over each event's pairs), in parallel, with
/// the population table of [`population_for`] (empty: Spot's formula).
pub fn score_resolved_with(
    model: &Model,
    folded: &FoldedDocs,
    r: &Resolved,
    population: &[f32],
) -> Vec<f32> {
    let n = r.event_ptr.len().saturating_sub(1);
    let mut out = vec![0f32; n];
    out.par_chunks_mut(4096).enumerate().for_each(|(c, chunk)| {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports the feature the function was compiled for.
            unsafe { score_events_chunk_avx2(model, folded, r, population, c * 4096, chunk) };
            return;
        }
        score_events_chunk(model, folded, r, population, c * 4096, chunk);
    });
    out
}

#[inline(always)]
fn score_events_chunk(
    model: &Model,
    folded: &FoldedDocs,
    r: &Resolved,
    population: &[f32],
    base: usize,
    out: &mut [f32],
) {
    const AHEAD: usize = 16;
    let k = model.topics.k;
    let n_known = model.docs.len();
    for (i, o) in out.iter_mut().enumerate() {
        let e = base + i;
        let (lo, hi) = (r.event_ptr[e], r.event_ptr[e + 1]);
        if let Some(&(d, w)) = r.pairs.get(lo + AHEAD)
            && (d as usize) < n_known
            && w < WORD_ERR
        {
            prefetch(model.topics.theta.as_ptr().wrapping_add(d as usize * k));
            prefetch(model.topics.phi.as_ptr().wrapping_add(w as usize * k));
        }
        *o = r.pairs[lo..hi]
            .iter()
            .map(|&p| pair_score(model, &folded.theta, population, p))
            .reduce(f32::min)
            .unwrap_or(f32::NAN);
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn score_events_chunk_avx2(
    model: &Model,
    folded: &FoldedDocs,
    r: &Resolved,
    population: &[f32],
    base: usize,
    out: &mut [f32],
) {
    score_events_chunk(model, folded, r, population, base, out);
}

/// Scores single-pair events given as (θ row, word id) with no markers:
/// the raw kernel, for callers that resolved ids themselves and for
/// measuring throughput.
pub fn score_pairs(model: &Model, pairs: &[(u32, u32)], out: &mut [f32]) {
    out.par_chunks_mut(8192)
        .zip(pairs.par_chunks(8192))
        .for_each(|(o, p)| {
            #[cfg(target_arch = "x86_64")]
            if std::arch::is_x86_feature_detected!("avx2") {
                // SAFETY: the CPU supports the feature the function was compiled for.
                unsafe { score_chunk_avx2(model, p, o) };
                return;
            }
            score_chunk(model, p, o);
        });
}

/// The scoring loop, inlined into a baseline and an AVX2 build of itself
/// (no FMA: plain mul/add keep results identical across the two).
#[inline(always)]
fn score_chunk(model: &Model, pairs: &[(u32, u32)], out: &mut [f32]) {
    const AHEAD: usize = 16;
    let k = model.topics.k;
    for (i, (o, &p)) in out.iter_mut().zip(pairs).enumerate() {
        // The rows are random accesses into tables larger than L2: ask for
        // the rows of a pair a few iterations ahead so their misses overlap.
        if let Some(&(d, w)) = pairs.get(i + AHEAD) {
            prefetch(model.topics.theta.as_ptr().wrapping_add(d as usize * k));
            prefetch(model.topics.phi.as_ptr().wrapping_add(w as usize * k));
        }
        *o = spot_pair_score(model, &[], p);
    }
}

/// Hints the CPU to load the cache lines at `p` (and the next one, since a
/// K = 20 row spans two); a no-op elsewhere. Never dereferences `p`.
#[inline(always)]
fn prefetch(p: *const f32) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        // SAFETY: prefetch is a hint; it does not fault on any address.
        unsafe {
            _mm_prefetch::<_MM_HINT_T0>(p.cast::<i8>());
            _mm_prefetch::<_MM_HINT_T0>(p.cast::<i8>().wrapping_add(64));
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn score_chunk_avx2(model: &Model, pairs: &[(u32, u32)], out: &mut [f32]) {
    score_chunk(model, pairs, out);
}

/// Resolves and scores events in one call, with Spot's formula.
pub fn score_events(model: &Model, events: &[EventWords], cfg: &FoldInConfig) -> Vec<f32> {
    let (folded, r) = resolve(model, events, cfg);
    score_resolved(model, &folded, &r)
}

/// Spot's selection settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RankConfig {
    /// Keep scores ≤ this (Spot's TOL, default 1e-6).
    pub threshold: f64,
    /// Keep at most this many (≤ 0: all).
    pub max_results: i64,
}

impl Default for RankConfig {
    fn default() -> Self {
        RankConfig {
            threshold: 1e-6,
            max_results: -1,
        }
    }
}

/// Indices of the events to report, most suspicious first: scores in
/// (−1, threshold], ascending (ties in input order), truncated to
/// `max_results` when it is positive.
pub fn rank(scores: &[f32], cfg: &RankConfig) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..scores.len())
        .filter(|&i| {
            let s = f64::from(scores[i]);
            s <= cfg.threshold && s > -1.0
        })
        .collect();
    idx.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]).then(a.cmp(&b)));
    if cfg.max_results > 0 {
        idx.truncate(cfg.max_results as usize);
    }
    idx
}

/// Everything one scoring pass produced: the scores (one per event, input
/// order) and what is needed to explain them afterwards.
#[derive(Debug, Clone)]
pub struct Scored {
    /// θ of the documents folded in.
    pub folded: FoldedDocs,
    /// The events' resolved pairs.
    pub resolved: Resolved,
    /// Score of each event (NaN: no pair).
    pub scores: Vec<f32>,
    /// The per-word population table used (empty: Spot's formula).
    pub population: Vec<f32>,
}

/// Folds in, resolves and scores `events` with the default [`Scoring`],
/// keeping the intermediate tables.
pub fn score_all(model: &Model, events: &[EventWords], cfg: &FoldInConfig) -> Scored {
    score_all_with(model, events, cfg, Scoring::default())
}

/// Folds in, resolves and scores `events` with `scoring`, keeping the
/// intermediate tables.
pub fn score_all_with(
    model: &Model,
    events: &[EventWords],
    cfg: &FoldInConfig,
    scoring: Scoring,
) -> Scored {
    let (folded, resolved) = resolve(model, events, cfg);
    let population = population_for(model, scoring);
    let scores = score_resolved_with(model, &folded, &resolved, &population);
    Scored { folded, resolved, scores, population }
}

/// Why an event got its score.
#[derive(Debug, Clone, PartialEq)]
pub struct Explanation {
    /// Index, within the event's pairs, of the pair that gave the score
    /// (the lowest-scoring one).
    pub pair: usize,
    /// That pair's score.
    pub score: f32,
    /// The dominant topics of that pair's document: (topic, θ weight),
    /// heaviest first, at most `top` of them.
    pub topics: Vec<(u16, f32)>,
}

impl Scored {
    /// Explains event `e` (None if it has no pair).
    pub fn explain(&self, model: &Model, e: usize, top: usize) -> Option<Explanation> {
        let r = &self.resolved;
        let pairs = &r.pairs[r.event_ptr[e]..r.event_ptr[e + 1]];
        let (pair, score) = pairs
            .iter()
            .map(|&p| pair_score(model, &self.folded.theta, &self.population, p))
            .enumerate()
            .min_by(|a, b| a.1.total_cmp(&b.1))?;
        let k = model.topics.k;
        let row = pairs[pair].0 as usize;
        let n_known = model.docs.len();
        let theta = if row < n_known {
            model.topics.theta_row(row)
        } else {
            &self.folded.theta[(row - n_known) * k..(row - n_known + 1) * k]
        };
        let mut t: Vec<(u16, f32)> = theta.iter().enumerate().map(|(i, &w)| (i as u16, w)).collect();
        t.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        t.truncate(top);
        Some(Explanation { pair, score, topics: t })
    }
}

/// Where events stand among all rankable events (score in (−1, ∞), not NaN),
/// for evaluation: `better` = how many events score strictly lower (so the
/// event's best possible rank is `better + 1`) and `ties` = how many others
/// share its exact score (its worst possible rank is `better + ties + 1`).
/// Unrankable events get `None`.
pub fn standings(scores: &[f32]) -> Vec<Option<(u64, u64)>> {
    let mut sorted: Vec<f32> = scores.iter().copied().filter(|s| !s.is_nan() && *s > -1.0).collect();
    sorted.sort_by(f32::total_cmp);
    scores
        .iter()
        .map(|&s| {
            if s.is_nan() || s <= -1.0 {
                return None;
            }
            let lo = sorted.partition_point(|&x| x < s) as u64;
            let hi = sorted.partition_point(|&x| x <= s) as u64;
            Some((lo, hi - lo - 1))
        })
        .collect()
}

/// Number of rankable events (see [`standings`]).
pub fn rankable(scores: &[f32]) -> usize {
    scores.iter().filter(|s| !s.is_nan() && **s > -1.0).count()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::corpus::{CorpusStats, Vocab};
    use crate::lda::TopicModel;
    use crate::model::ModelMeta;

    fn meta(k: u32) -> ModelMeta {
        ModelMeta {
            kind: "flow".into(),
            trainer: "gibbs".into(),
            k,
            alpha: 0.02,
            eta: 0.001,
            iterations: 1,
            seed: 1,
            threads: 1,
            train_from_ns: None,
            train_to_ns: None,
            corpus: CorpusStats::default(),
            mean_log_likelihood: None,
            settings: Default::default(),
        }
    }

    /// K = 2: topic 0 is words a/b, topic 1 is word c.
    fn model() -> Model {
        let vocab = Vocab::from_names(vec!["a".into(), "b".into(), "c".into()]);
        let docs = Vocab::from_names(vec!["10.0.0.1".into(), "10.0.0.2".into()]);
        let topics = TopicModel {
            k: 2,
            phi: vec![0.6, 0.0, 0.4, 0.0, 0.0, 1.0],
            theta: vec![1.0, 0.0, 0.25, 0.75],
        };
        Model::new(meta(2), vocab, docs, topics).expect("model")
    }

    fn ip(i: u8) -> IpAddr {
        IpAddr::from([10, 0, 0, i])
    }

    #[test]
    fn dot_matches_naive_for_all_lengths() {
        for n in 0..40 {
            let a: Vec<f32> = (0..n).map(|i| i as f32 * 0.5).collect();
            let b: Vec<f32> = (0..n).map(|i| 1.0 - i as f32 * 0.01).collect();
            let naive: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
            assert!(
                (dot(&a, &b) - naive).abs() <= 1e-3 * naive.abs().max(1.0),
                "n = {n}"
            );
        }
    }

    #[test]
    fn known_document_scores_are_theta_dot_phi() {
        let m = model();
        let events: Vec<EventWords> = vec![
            vec![(ip(1), "a".into())],
            vec![(ip(1), "c".into())],
            vec![(ip(2), "c".into())],
            vec![(ip(2), "b".into())],
        ];
        let s = score_events(&m, &events, &FoldInConfig::default());
        assert!((s[0] - 0.6).abs() < 1e-6);
        assert!(s[1].abs() < 1e-6);
        assert!((s[2] - 0.75).abs() < 1e-6);
        assert!((s[3] - 0.1).abs() < 1e-6);
    }

    #[test]
    fn blend_caps_spot_scores_with_the_population_score() {
        let m = model();
        // θ̄ = (0.625, 0.375): P_pop(a) = 0.375, P_pop(b) = 0.25, P_pop(c) = 0.375.
        let pop = population_scores(&m);
        for (got, want) in pop.iter().zip([0.375f32, 0.25, 0.375]) {
            assert!((got - want).abs() < 1e-6, "{pop:?}");
        }
        let events: Vec<EventWords> = vec![
            vec![(ip(1), "a".into())],
            vec![(ip(1), "c".into())],
            vec![(ip(2), "c".into())],
            vec![(ip(2), "b".into())],
            vec![(ip(1), "zzz".into())],
            vec![(ip(1), WORD_ERROR.into())],
            vec![(ip(1), "a".into()), (ip(2), "c".into())],
            vec![],
        ];
        let cfg = FoldInConfig::default();
        let spot = score_all_with(&m, &events, &cfg, Scoring::Spot);
        assert!(spot.population.is_empty());
        assert_eq!(spot.scores[..4], score_events(&m, &events[..4], &cfg)[..]);
        let blend = score_all_with(&m, &events, &cfg, Scoring::Blend);
        // Host 1 uses a all the time (0.6) but a is rarer across hosts.
        let want = [0.375, 0.0, 0.375, 0.1, UNSEEN_WORD_SCORE, ERROR_SCORE, 0.375];
        for (i, w) in want.iter().enumerate() {
            assert!((blend.scores[i] - w).abs() < 1e-6, "event {i}: {} != {w}", blend.scores[i]);
            assert!(blend.scores[i] <= spot.scores[i]);
        }
        assert!(blend.scores[7].is_nan());
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&score_all(&m, &events, &cfg).scores), bits(&blend.scores), "blend is the default");
        // The explanation agrees with the blended score.
        let ex = blend.explain(&m, 6, 2).expect("explained");
        assert_eq!(ex.score, blend.scores[6]);
    }

    #[test]
    fn unseen_word_error_min_and_empty_events() {
        let m = model();
        let events: Vec<EventWords> = vec![
            vec![(ip(1), "zzz".into())],
            vec![(ip(1), WORD_ERROR.into())],
            vec![(ip(1), "a".into()), (ip(2), "c".into())],
            vec![],
        ];
        let s = score_events(&m, &events, &FoldInConfig::default());
        assert_eq!(s[0], UNSEEN_WORD_SCORE);
        assert_eq!(s[1], ERROR_SCORE);
        assert!((s[2] - 0.6).abs() < 1e-6, "min of 0.6 and 0.75");
        assert!(s[3].is_nan());
    }

    #[test]
    fn fold_in_learns_the_unseen_documents_topic_deterministically() {
        let m = model();
        // 10.0.0.9 only ever uses word c (topic 1): its θ must lean to topic 1.
        let mut events: Vec<EventWords> = (0..20).map(|_| vec![(ip(9), "c".to_string())]).collect();
        events.push(vec![(ip(9), "a".to_string())]);
        let (folded, r) = resolve(&m, &events, &FoldInConfig::default());
        assert_eq!(folded.len(), 1);
        let theta = folded.theta(ip(9)).expect("folded");
        assert!(theta[1] > 0.9, "{theta:?}");
        assert!((theta[0] + theta[1] - 1.0).abs() < 1e-4);
        let s = score_resolved(&m, &folded, &r);
        assert!(s[0] > 0.9);
        // The rare word a is suspicious for this document.
        assert!(s[20] < 0.1, "{}", s[20]);
        let (again, r2) = resolve(&m, &events, &FoldInConfig::default());
        assert_eq!(again, folded);
        assert_eq!(r2, r);
    }

    #[test]
    fn batches_share_one_fold_in_and_uncollected_docs_get_uniform_theta() {
        let m = model();
        let batch1: Vec<EventWords> = (0..10).map(|_| vec![(ip(9), "c".to_string())]).collect();
        let batch2: Vec<EventWords> = vec![
            vec![(ip(9), "c".to_string())],
            vec![(ip(7), "a".to_string())],
        ];
        let index = DocIndex::new(&m);
        let mut unseen = UnseenDocs::new();
        unseen.add_events(&m, &index, &batch1);
        let folded = unseen.fold_in(&m, &FoldInConfig::default());
        let s = score_resolved(&m, &folded, &resolve_with(&m, &index, &folded, &batch2));
        // 10.0.0.9 keeps its folded θ in the later batch.
        assert!(s[0] > 0.9, "{s:?}");
        // 10.0.0.7 was never collected: uniform θ, so 0.5 · 0.6.
        assert!((s[1] - 0.3).abs() < 1e-6, "{s:?}");
    }

    #[test]
    fn parallel_resolution_keeps_event_order_across_blocks() {
        let m = model();
        let events: Vec<EventWords> = (0..40_000)
            .map(|i| match i % 3 {
                0 => vec![(ip(1), "a".to_string())],
                1 => vec![(ip(2), "c".to_string()), (ip(1), "b".to_string())],
                _ => vec![],
            })
            .collect();
        let (folded, r) = resolve(&m, &events, &FoldInConfig::default());
        assert_eq!(r.event_ptr.len(), 40_001);
        assert_eq!(r.pairs.len(), 40_000 / 3 * 3 + 1);
        let s = score_resolved(&m, &folded, &r);
        for (i, x) in s.iter().enumerate() {
            match i % 3 {
                0 => assert!((x - 0.6).abs() < 1e-6, "{i}"),
                1 => assert!((x - 0.4).abs() < 1e-6, "{i}: min(0.75, 0.4)"),
                _ => assert!(x.is_nan(), "{i}"),
            }
        }
    }

    #[test]
    fn fold_in_without_known_words_is_uniform() {
        let m = model();
        let theta = fold_in(&m, &[], &FoldInConfig::default(), 1);
        assert_eq!(theta, vec![0.5, 0.5]);
    }

    #[test]
    fn fold_in_of_a_huge_document_is_bounded_and_keeps_the_mix() {
        let m = model();
        let cfg = FoldInConfig {
            max_tokens: 100,
            ..FoldInConfig::default()
        };
        let theta = fold_in(&m, &[(0, 1_000_000), (2, 3_000_000)], &cfg, 3);
        assert!((theta[1] - 0.75).abs() < 0.1, "{theta:?}");
    }

    #[test]
    fn rank_applies_spot_threshold_order_and_limit() {
        let scores = [0.5, 1e-7, -1.0, 0.0, 1e-6, 2e-6, 1e-7, f32::NAN];
        let all = rank(&scores, &RankConfig::default());
        assert_eq!(all, vec![3, 1, 6, 4]);
        let top2 = rank(
            &scores,
            &RankConfig {
                max_results: 2,
                ..RankConfig::default()
            },
        );
        assert_eq!(top2, vec![3, 1]);
        let loose = rank(
            &scores,
            &RankConfig {
                threshold: 1.0,
                max_results: 0,
            },
        );
        assert_eq!(loose, vec![3, 1, 6, 4, 5, 0]);
    }

    proptest::proptest! {
        /// Ranked indices are exactly the in-range scores, ascending, capped.
        #[test]
        fn rank_properties(scores in proptest::collection::vec(-1.5f32..1.5, 0..200), max in -2i64..50) {
            let cfg = RankConfig { threshold: 0.5, max_results: max };
            let r = rank(&scores, &cfg);
            let eligible = scores.iter().filter(|&&s| s > -1.0 && f64::from(s) <= 0.5).count();
            let want = if max > 0 { eligible.min(max as usize) } else { eligible };
            proptest::prop_assert_eq!(r.len(), want);
            for pair in r.windows(2) {
                proptest::prop_assert!(scores[pair[0]] <= scores[pair[1]]);
            }
            for &i in &r {
                proptest::prop_assert!(scores[i] > -1.0 && scores[i] <= 0.5);
            }
        }
    }

    #[test]
    fn score_pairs_kernel_matches_resolved_path() {
        let m = model();
        let pairs = vec![(0u32, 0u32), (1, 2), (1, 1), (0, 2)];
        let mut out = vec![0f32; 4];
        score_pairs(&m, &pairs, &mut out);
        let events: Vec<EventWords> = vec![
            vec![(ip(1), "a".into())],
            vec![(ip(2), "c".into())],
            vec![(ip(2), "b".into())],
            vec![(ip(1), "c".into())],
        ];
        assert_eq!(out, score_events(&m, &events, &FoldInConfig::default()));
    }
}

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
//!   normal for that host. The initiating host's cap is further scaled by
//!   [`others_share`]: the share of the word's occurrences in the scored
//!   window that come from hosts outside the event. [`Scoring::Spot`] is
//!   Spot's formula, unchanged.
//! * An event is a list of (document, word) pairs; its score is the **min**
//!   over its pairs (Spot's flow rule; DNS and proxy events have one pair,
//!   flows two per direction, see [`crate::words::flow`]).
//! * `word_error` scores **−1** (never reported).
//! * A word missing from the model's vocabulary scores **0**, as in Spot: its
//!   φ is all zeros, i.e. it is maximally suspicious. This is deliberate:
//!   a word never seen in training is exactly the novelty the analysis hunts.
//!   [`Scoring::Blend`] first smooths it over its adjacent bins
//!   ([`BackoffWords`]): only a word with no seen neighbour keeps the 0.
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
use crate::words::{WORD_ERROR, adjacent_words};

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
        FoldInConfig { sweeps: 20, burn_in: 10, alpha: 0.02, max_tokens: 4096, seed: 0x05B0_7E57 }
    }
}

impl FoldInConfig {
    /// Defaults with the model's α in Gibbs form (α − 1 for a `spot-em`
    /// model, whose α is a MAP-EM concentration).
    pub fn for_model(model: &Model) -> Self {
        let a = if model.meta.trainer == "spot-em" { model.meta.alpha - 1.0 } else { model.meta.alpha };
        FoldInConfig { alpha: a.max(1e-3) as f32, ..Self::default() }
    }
}

/// θ of a document from its known word ids, with φ fixed.
pub fn fold_in(model: &Model, word_counts: &[(u32, u64)], cfg: &FoldInConfig, stream: u64) -> Vec<f32> {
    let k = model.topics.k;
    let total: u64 = word_counts.iter().map(|&(_, c)| c).sum();
    if total == 0 {
        return vec![1.0 / k as f32; k];
    }
    let scale = if total as usize > cfg.max_tokens { cfg.max_tokens as f64 / total as f64 } else { 1.0 };
    let mut tokens: Vec<u32> = Vec::new();
    for &(w, c) in word_counts {
        let n = ((c as f64 * scale).round() as usize).max(1);
        tokens.extend(std::iter::repeat_n(w, n));
    }
    let mut rng = Rng::new(mix(&[cfg.seed, stream]));
    let mut z: Vec<u16> = (0..tokens.len()).map(|_| rng.below(k as u32) as u16).collect();
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
    acc.iter().map(|&s| ((s / kept as f64 + f64::from(cfg.alpha)) / denom) as f32).collect()
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
        let ips =
            model.docs.names().iter().enumerate().filter_map(|(i, n)| n.parse::<IpAddr>().ok().map(|ip| (ip.to_canonical(), i as u32))).collect();
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
        FoldedDocs { k, index: HashMap::new(), theta: vec![1.0 / k as f32; k] }
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
        self.index.get(&ip.to_canonical()).map(|&r| &self.theta[r as usize * k..(r as usize + 1) * k])
    }
}

/// Smoothed φ rows for words the model never saw (the default scoring's
/// "back-off"): an unseen word's φ is the mean of the φ rows of its
/// [`adjacent_words`] (one ordinal bin away: an hour, a size or length bin),
/// counting unseen neighbours as zero. A word next to common behaviour thus
/// scores like a slightly rarer version of it, while a word with no seen
/// neighbour (a new port, query type or response code, or a size far from
/// anything seen) keeps Spot's 0. This matters when the model was trained
/// on another window: Spot's combinatorial words (port × hour × two size
/// bins) leave many ordinary events of a new day with an unseen word, and a
/// flat 0 for all of them would bury the novel ones in ties.
///
/// Rows get word ids from the model's vocabulary size up, in [`Resolved`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BackoffWords {
    index: HashMap<String, u32>,
    phi: Vec<f32>,
}

impl BackoffWords {
    /// No backed-off word (Spot's flat 0 for every unseen word).
    pub fn none() -> Self {
        Self::default()
    }

    /// Builds the rows of every unseen word of `events` that has at least
    /// one seen neighbour.
    pub fn collect(model: &Model, events: &[EventWords]) -> Self {
        let unseen: Vec<&str> =
            events.iter().flatten().map(|(_, w)| w.as_str()).filter(|w| *w != WORD_ERROR && model.vocab.id(w).is_none()).collect();
        Self::build(model, unseen)
    }

    /// [`BackoffWords::collect`] for events already resolved without
    /// back-off: only the pairs marked unseen are looked at, so the
    /// vocabulary is not searched a second time.
    pub fn collect_resolved(model: &Model, events: &[EventWords], r: &Resolved) -> Self {
        let mut unseen = Vec::new();
        for (e, ev) in events.iter().enumerate() {
            let Some(pairs) = r.event_pairs(e) else { continue };
            for ((_, w), &(_, id)) in ev.iter().zip(pairs) {
                if id == WORD_UNSEEN {
                    unseen.push(w.as_str());
                }
            }
        }
        Self::build(model, unseen)
    }

    /// Gives the unseen pairs of `r` (resolved from `events`) the ids of
    /// their backed-off rows.
    pub fn patch(&self, events: &[EventWords], r: &mut Resolved) {
        if self.is_empty() {
            return;
        }
        for (e, ev) in events.iter().enumerate() {
            let (Some(&lo), Some(&hi)) = (r.event_ptr.get(e), r.event_ptr.get(e + 1)) else { break };
            for ((_, w), p) in ev.iter().zip(&mut r.pairs[lo..hi]) {
                if p.1 == WORD_UNSEEN
                    && let Some(id) = self.id(w)
                {
                    p.1 = id;
                }
            }
        }
    }

    fn build(model: &Model, mut unseen: Vec<&str>) -> Self {
        let k = model.topics.k;
        unseen.sort_unstable();
        unseen.dedup();
        let rows: Vec<Option<Vec<f32>>> = unseen
            .par_iter()
            .map(|w| {
                let near = adjacent_words(&model.meta.kind, w);
                let mut row = vec![0f32; k];
                let mut seen = 0;
                for id in near.iter().filter_map(|n| model.vocab.id(n)) {
                    seen += 1;
                    for (r, &p) in row.iter_mut().zip(model.topics.phi_row(id as usize)) {
                        *r += p;
                    }
                }
                (seen > 0).then(|| {
                    let n = near.len() as f32;
                    row.iter_mut().for_each(|r| *r /= n);
                    row
                })
            })
            .collect();
        let v = model.vocab.len() as u32;
        let mut out = BackoffWords::default();
        for (w, row) in unseen.into_iter().zip(rows) {
            if let Some(row) = row {
                out.index.insert(w.to_string(), v + out.index.len() as u32);
                out.phi.extend_from_slice(&row);
            }
        }
        out
    }

    /// Number of backed-off words.
    pub fn len(&self) -> usize {
        self.index.len()
    }

    /// Whether there is none.
    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// The word id of a backed-off word.
    pub fn id(&self, word: &str) -> Option<u32> {
        self.index.get(word).copied()
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

impl Resolved {
    /// The pairs of event `e` (None past the end).
    pub fn event_pairs(&self, e: usize) -> Option<&[(u32, u32)]> {
        self.pairs.get(*self.event_ptr.get(e)?..*self.event_ptr.get(e + 1)?)
    }
}

/// Resolves events against a model and already folded-in documents
/// (in parallel over blocks of events).
pub fn resolve_with(model: &Model, index: &DocIndex, folded: &FoldedDocs, events: &[EventWords]) -> Resolved {
    resolve_with_backoff(model, index, folded, &BackoffWords::none(), events)
}

/// [`resolve_with`], giving the words of `backoff` their smoothed rows.
pub fn resolve_with_backoff(model: &Model, index: &DocIndex, folded: &FoldedDocs, backoff: &BackoffWords, events: &[EventWords]) -> Resolved {
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
                    let w = if word == WORD_ERROR { WORD_ERR } else { model.vocab.id(word).or_else(|| backoff.id(word)).unwrap_or(WORD_UNSEEN) };
                    let row = match index.get(*ip) {
                        Some(d) => d,
                        None => n_known + folded.index.get(&ip.to_canonical()).copied().unwrap_or(0),
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
    /// common elsewhere keeps Spot's low score. A word missing from the
    /// vocabulary is smoothed over its adjacent bins ([`BackoffWords`])
    /// before it falls back to Spot's 0.
    ///
    /// P_pop alone is not enough when one host's bulk behaviour is a large
    /// part of the corpus: its words then make up a topic of their own, and
    /// every host that shares that topic for other reasons lifts P_pop (a
    /// 212-event iodine tunnel in 18 K DNS events kept a median rank of
    /// 6,228). So the cap of the event's initiating host (the DNS or proxy
    /// client, the flow's initiator) is multiplied by [`others_share`], the
    /// smoothed share of the word's occurrences in the scored window that
    /// come from hosts outside the event: about 1 for a word many hosts use,
    /// and 0.5 / (n + 0.5) for a word only this event's hosts used n times.
    /// Only the initiator's pairs get it, because a server is naturally the
    /// only host holding its service's words.
    #[default]
    Blend,
}

/// The pseudo-count of [`others_share`]: the Krichevsky–Trofimov ½, which
/// also measured best of {0.5, 1, 2, 5} on the real-capture detection test
/// (`tests/tests/detection.rs`).
pub const OTHERS_SHARE_PSEUDO_COUNT: f32 = 0.5;

/// Per resolved pair: the multiplier of its population cap under
/// [`Scoring::Blend`]. For a pair (h, w) of the event's initiating host h
/// (the document of its first pair) it is (n(w) − own + ½) / (n(w) + ½),
/// where n counts the pairs of `r` (the scored window) and own = n(h, w) plus
/// n(d, w) of every other document d that has w in this same event (a scan
/// whose probes give the scanner and the target the same word: neither is an
/// "other host" for the other). Every other pair, and every word marker,
/// gets 1. Deterministic and independent of the thread count (integer counts
/// from one sort of the pairs).
pub fn others_share(r: &Resolved) -> Vec<f32> {
    let n = r.pairs.len();
    // Every real pair as (word << 32 | document, index), sorted: a word's
    // pairs are one run, and a (word, document)'s pairs a run inside it.
    let mut keyed: Vec<(u64, u32)> = r
        .pairs
        .par_iter()
        .enumerate()
        .filter(|(_, p)| p.1 < WORD_ERR)
        .map(|(i, &(row, w))| ((u64::from(w) << 32) | u64::from(row), i as u32))
        .collect();
    keyed.par_sort_unstable();
    // n(w) and n(d, w) of each pair, scattered back to pair order.
    let mut n_w = vec![0u32; n];
    let mut n_dw = vec![0u32; n];
    let mut i = 0;
    while i < keyed.len() {
        let word = keyed[i].0 >> 32;
        let end = i + keyed[i..].partition_point(|k| k.0 >> 32 == word);
        let mut a = i;
        while a < end {
            let b = a + keyed[a..end].partition_point(|k| k.0 == keyed[a].0);
            for &(_, idx) in &keyed[a..b] {
                n_w[idx as usize] = (end - i) as u32;
                n_dw[idx as usize] = (b - a) as u32;
            }
            a = b;
        }
        i = end;
    }
    drop(keyed);
    let events = r.event_ptr.len().saturating_sub(1);
    const BLOCK: usize = 16_384;
    let blocks: Vec<Vec<f32>> = (0..events.div_ceil(BLOCK))
        .into_par_iter()
        .map(|c| {
            let (lo, hi) = (r.event_ptr[c * BLOCK], r.event_ptr[events.min((c + 1) * BLOCK)]);
            let mut out = vec![1.0f32; hi - lo];
            for e in c * BLOCK..events.min((c + 1) * BLOCK) {
                let (a, b) = (r.event_ptr[e], r.event_ptr[e + 1]);
                let event = &r.pairs[a..b];
                let Some(&(initiator, _)) = event.first() else { continue };
                for j in a..b {
                    let (row, w) = r.pairs[j];
                    if row != initiator || w >= WORD_ERR {
                        continue;
                    }
                    // The initiator's own count, plus each other document
                    // of the event holding the same word, counted once.
                    let mut own = n_dw[j];
                    for (q, (&(d, wq), &count)) in event.iter().zip(&n_dw[a..b]).enumerate() {
                        if wq == w && d != initiator && !event[..q].iter().any(|&(d2, w2)| d2 == d && w2 == w) {
                            own += count;
                        }
                    }
                    let beta = OTHERS_SHARE_PSEUDO_COUNT;
                    out[j - lo] = (n_w[j].saturating_sub(own) as f32 + beta) / (n_w[j] as f32 + beta);
                }
            }
            out
        })
        .collect();
    blocks.concat()
}

/// P_pop(w) of every vocabulary word (see [`Scoring::Blend`]): V dot
/// products with the mean θ row, computed once per model.
pub fn population_scores(model: &Model) -> Vec<f32> {
    let mean = mean_theta(model);
    (0..model.vocab.len()).into_par_iter().with_min_len(4096).map(|w| dot(&mean, model.topics.phi_row(w))).collect()
}

/// θ̄: the mean of the model's θ rows (uniform for a model without documents).
pub fn mean_theta(model: &Model) -> Vec<f32> {
    let k = model.topics.k;
    let n_docs = model.docs.len();
    let mut mean = vec![0f64; k];
    for d in 0..n_docs {
        for (m, &t) in mean.iter_mut().zip(model.topics.theta_row(d)) {
            *m += f64::from(t);
        }
    }
    if n_docs == 0 { vec![1.0 / k as f32; k] } else { mean.iter().map(|&m| (m / n_docs as f64) as f32).collect() }
}

/// The per-word population table of a scoring (empty for Spot's).
pub fn population_for(model: &Model, scoring: Scoring) -> Vec<f32> {
    match scoring {
        Scoring::Spot => Vec::new(),
        Scoring::Blend => population_scores(model),
    }
}

/// Lanes of a padded row: K is rounded up to a multiple of this, so a row
/// is a whole number of 64-byte cache lines and the dot product has no
/// remainder loop.
pub const LANES: usize = 16;

/// A table of f32 rows, each padded with zeros to `kp` (a multiple of
/// [`LANES`]) values and starting on a 64-byte boundary.
#[derive(Debug, Clone, PartialEq)]
struct PaddedRows {
    kp: usize,
    /// Where row 0 starts in `buf` (the first 64-byte aligned value).
    offset: usize,
    rows: usize,
    buf: Vec<f32>,
}

impl PaddedRows {
    /// Copies `rows` rows of `k` values from each of `parts` in turn.
    fn new(k: usize, kp: usize, parts: &[&[f32]]) -> Self {
        let rows: usize = parts.iter().map(|p| p.len() / k).sum();
        // One spare line lets row 0 start on a cache-line boundary (the
        // allocation itself is only 4-byte aligned); `buf` never grows, so
        // the alignment holds for its lifetime.
        let mut buf = vec![0f32; rows * kp + LANES];
        let misalign = (buf.as_ptr() as usize / 4) % LANES;
        let offset = (LANES - misalign) % LANES;
        let mut r = 0;
        for part in parts {
            for row in part.chunks_exact(k) {
                let at = offset + r * kp;
                buf[at..at + k].copy_from_slice(row);
                r += 1;
            }
        }
        PaddedRows { kp, offset, rows, buf }
    }

    #[inline(always)]
    fn row(&self, r: usize) -> &[f32] {
        let at = self.offset + r * self.kp;
        &self.buf[at..at + self.kp]
    }

    #[inline(always)]
    fn row_ptr(&self, r: usize) -> *const f32 {
        self.buf.as_ptr().wrapping_add(self.offset + r * self.kp)
    }
}

/// Dot product of two padded rows (length a multiple of [`LANES`]) with 16
/// independent lanes and a fixed reduction order: vectorises to two AVX2
/// (or four SSE) accumulators, and gives the same bits on every build.
#[inline(always)]
fn dot_padded(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; LANES];
    for (x, y) in a.chunks_exact(LANES).zip(b.chunks_exact(LANES)) {
        for i in 0..LANES {
            acc[i] += x[i] * y[i];
        }
    }
    let mut h = [0f32; 8];
    for i in 0..8 {
        h[i] = acc[i] + acc[i + 8];
    }
    ((h[0] + h[4]) + (h[1] + h[5])) + ((h[2] + h[6]) + (h[3] + h[7]))
}

/// The scoring kernel's view of a model: θ (the model's documents, then the
/// folded-in ones, in [`Resolved`] row order) and word-major φ as contiguous
/// f32 rows padded to a multiple of [`LANES`] and cache-line aligned, so one
/// score is whole-line loads and a fixed-width dot product. Built once per
/// scoring run (a copy of θ and φ).
#[derive(Debug, Clone, PartialEq)]
pub struct ScoreTables {
    theta: PaddedRows,
    phi: PaddedRows,
    /// Per-word population score ([`Scoring::Blend`]); empty for Spot's.
    population: Vec<f32>,
}

impl ScoreTables {
    /// Tables of `model` and `folded` (whose rows follow the model's), with
    /// the population table of [`population_for`] (empty: Spot's formula).
    pub fn new(model: &Model, folded: &FoldedDocs, population: Vec<f32>) -> Self {
        Self::with_backoff(model, folded, &BackoffWords::none(), population)
    }

    /// [`ScoreTables::new`] with the smoothed rows of unseen words after the
    /// model's φ rows; their population scores are added when `population`
    /// covers the model's vocabulary.
    pub fn with_backoff(model: &Model, folded: &FoldedDocs, backoff: &BackoffWords, mut population: Vec<f32>) -> Self {
        let k = model.topics.k;
        let kp = k.div_ceil(LANES) * LANES;
        if !population.is_empty() && !backoff.is_empty() {
            let mean = mean_theta(model);
            population.extend(backoff.phi.chunks_exact(k).map(|row| dot(&mean, row)));
        }
        ScoreTables {
            theta: PaddedRows::new(k, kp, &[&model.topics.theta, &folded.theta]),
            phi: PaddedRows::new(k, kp, &[&model.topics.phi, &backoff.phi]),
            population,
        }
    }

    /// Tables of the model alone (no folded documents: θ rows are the
    /// model's), with Spot's formula.
    pub fn of_model(model: &Model) -> Self {
        Self::new(model, &FoldedDocs { k: model.topics.k, index: HashMap::new(), theta: Vec::new() }, Vec::new())
    }

    /// Padded row width (K rounded up to a multiple of [`LANES`]).
    pub fn padded_k(&self) -> usize {
        self.theta.kp
    }

    /// θ of a resolved row.
    fn theta_row(&self, row: u32) -> &[f32] {
        self.theta.row(row as usize)
    }

    /// Scores one resolved pair: Spot's score, capped by the word's
    /// population score under [`Scoring::Blend`]. A row outside θ (cannot
    /// come from [`resolve_with`]) scores NaN rather than panicking.
    #[inline(always)]
    fn pair(&self, p: (u32, u32)) -> f32 {
        self.pair_with_share(p, 1.0)
    }

    /// Resolved pair `i` of `r` with its share (`shares[i]`, 1 when
    /// `shares` is empty): what the kernel and [`Scored::explain`] both score.
    #[inline(always)]
    fn resolved_pair(&self, r: &Resolved, shares: &[f32], i: usize) -> f32 {
        self.pair_with_share(r.pairs[i], shares.get(i).copied().unwrap_or(1.0))
    }

    /// [`ScoreTables::pair`] with the population cap multiplied by `share`
    /// (see [`others_share`]).
    #[inline(always)]
    fn pair_with_share(&self, (row, w): (u32, u32), share: f32) -> f32 {
        match w {
            WORD_ERR => ERROR_SCORE,
            WORD_UNSEEN => UNSEEN_WORD_SCORE,
            _ if row as usize >= self.theta.rows || w as usize >= self.phi.rows => f32::NAN,
            _ => {
                let s = dot_padded(self.theta.row(row as usize), self.phi.row(w as usize));
                match self.population.get(w as usize) {
                    Some(&pop) => s.min(pop * share),
                    None => s,
                }
            }
        }
    }

    /// Asks for the rows of a pair to be loaded (see [`prefetch`]).
    #[inline(always)]
    fn prefetch_pair(&self, (row, w): (u32, u32)) {
        if (row as usize) < self.theta.rows && (w as usize) < self.phi.rows {
            let lines = self.theta.kp / LANES;
            for l in 0..lines {
                prefetch(self.theta.row_ptr(row as usize).wrapping_add(l * LANES));
                prefetch(self.phi.row_ptr(w as usize).wrapping_add(l * LANES));
            }
        }
    }

    /// Scores resolved events (min over each event's pairs; NaN for an
    /// event without pairs), in parallel.
    pub fn score_resolved(&self, r: &Resolved) -> Vec<f32> {
        self.score_resolved_shared(r, &[])
    }

    /// [`ScoreTables::score_resolved`] with each pair's population cap
    /// multiplied by `shares[pair]` ([`others_share`]; empty: all 1).
    pub fn score_resolved_shared(&self, r: &Resolved, shares: &[f32]) -> Vec<f32> {
        let n = r.event_ptr.len().saturating_sub(1);
        let mut out = vec![0f32; n];
        out.par_chunks_mut(CHUNK).enumerate().for_each(|(c, chunk)| {
            #[cfg(target_arch = "x86_64")]
            if std::arch::is_x86_feature_detected!("avx2") {
                // SAFETY: the CPU supports the feature the function was compiled for.
                unsafe { score_events_chunk_avx2(self, r, shares, c * CHUNK, chunk) };
                return;
            }
            score_events_chunk(self, r, shares, c * CHUNK, chunk);
        });
        out
    }

    /// Scores single-pair events given as (θ row, word id): the raw kernel,
    /// for callers that resolved ids themselves and for measuring throughput.
    /// `out` gets one score per pair (pairs beyond `out` are ignored).
    pub fn score_pairs(&self, pairs: &[(u32, u32)], out: &mut [f32]) {
        out.par_chunks_mut(CHUNK).zip(pairs.par_chunks(CHUNK)).for_each(|(o, p)| {
            #[cfg(target_arch = "x86_64")]
            if std::arch::is_x86_feature_detected!("avx2") {
                // SAFETY: the CPU supports the feature the function was compiled for.
                unsafe { score_chunk_avx2(self, p, o) };
                return;
            }
            score_chunk(self, p, o);
        });
    }
}

/// Events per parallel task: large enough that rayon's per-task cost is
/// negligible against ~10 ns per event, small enough to balance 2–64 cores.
const CHUNK: usize = 1 << 15;

/// Pairs looked ahead by the prefetch: the rows are random accesses into
/// tables larger than L2, so asking early lets their misses overlap.
const AHEAD: usize = 8;

/// Scores resolved events with Spot's formula (min over each event's
/// pairs), in parallel.
pub fn score_resolved(model: &Model, folded: &FoldedDocs, r: &Resolved) -> Vec<f32> {
    score_resolved_with(model, folded, r, &[])
}

/// Scores resolved events (min over each event's pairs), in parallel, with
/// the population table of [`population_for`] (empty: Spot's formula).
pub fn score_resolved_with(model: &Model, folded: &FoldedDocs, r: &Resolved, population: &[f32]) -> Vec<f32> {
    ScoreTables::new(model, folded, population.to_vec()).score_resolved(r)
}

#[inline(always)]
fn score_events_chunk(t: &ScoreTables, r: &Resolved, shares: &[f32], base: usize, out: &mut [f32]) {
    for (i, o) in out.iter_mut().enumerate() {
        let e = base + i;
        let (lo, hi) = (r.event_ptr[e], r.event_ptr[e + 1]);
        if let Some(&p) = r.pairs.get(lo + AHEAD) {
            t.prefetch_pair(p);
        }
        let mut s = f32::NAN;
        for i in lo..hi {
            // f32::min ignores the NaN start, so the first pair sets s.
            s = s.min(t.resolved_pair(r, shares, i));
        }
        *o = s;
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn score_events_chunk_avx2(t: &ScoreTables, r: &Resolved, shares: &[f32], base: usize, out: &mut [f32]) {
    score_events_chunk(t, r, shares, base, out);
}

/// Scores single-pair events given as (θ row, word id) with no markers,
/// building the tables first (see [`ScoreTables::score_pairs`] to reuse them).
pub fn score_pairs(model: &Model, pairs: &[(u32, u32)], out: &mut [f32]) {
    ScoreTables::of_model(model).score_pairs(pairs, out);
}

/// The scoring loop, inlined into a baseline and an AVX2 build of itself
/// (no FMA: plain mul/add keep results identical across the two).
#[inline(always)]
fn score_chunk(t: &ScoreTables, pairs: &[(u32, u32)], out: &mut [f32]) {
    for (i, (o, &p)) in out.iter_mut().zip(pairs).enumerate() {
        if let Some(&ahead) = pairs.get(i + AHEAD) {
            t.prefetch_pair(ahead);
        }
        *o = t.pair(p);
    }
}

/// Hints the CPU to load the cache line at `p`; a no-op elsewhere. Never
/// dereferences `p`.
#[inline(always)]
fn prefetch(p: *const f32) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        // SAFETY: prefetch is a hint; it does not fault on any address.
        unsafe {
            _mm_prefetch::<_MM_HINT_T0>(p.cast::<i8>());
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn score_chunk_avx2(t: &ScoreTables, pairs: &[(u32, u32)], out: &mut [f32]) {
    score_chunk(t, pairs, out);
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
        RankConfig { threshold: 1e-6, max_results: -1 }
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
    /// Unseen words given smoothed rows (none for Spot's formula).
    pub backoff: BackoffWords,
    /// The kernel's tables (θ, φ and the per-word population table used;
    /// the latter is empty for Spot's formula).
    pub tables: ScoreTables,
    /// Per pair of `resolved`, the multiplier of its population cap
    /// ([`others_share`]; empty for Spot's formula).
    pub shares: Vec<f32>,
}

impl Scored {
    /// The per-word population table used (empty: Spot's formula).
    pub fn population(&self) -> &[f32] {
        &self.tables.population
    }
}

/// Folds in, resolves and scores `events` with the default [`Scoring`],
/// keeping the intermediate tables.
pub fn score_all(model: &Model, events: &[EventWords], cfg: &FoldInConfig) -> Scored {
    score_all_with(model, events, cfg, Scoring::default())
}

/// Folds in, resolves and scores `events` with `scoring`, keeping the
/// intermediate tables.
pub fn score_all_with(model: &Model, events: &[EventWords], cfg: &FoldInConfig, scoring: Scoring) -> Scored {
    let index = DocIndex::new(model);
    let mut unseen = UnseenDocs::new();
    unseen.add_events(model, &index, events);
    let folded = unseen.fold_in(model, cfg);
    let mut resolved = resolve_with(model, &index, &folded, events);
    let backoff = match scoring {
        Scoring::Spot => BackoffWords::none(),
        Scoring::Blend => BackoffWords::collect_resolved(model, events, &resolved),
    };
    backoff.patch(events, &mut resolved);
    let tables = ScoreTables::with_backoff(model, &folded, &backoff, population_for(model, scoring));
    let shares = match scoring {
        Scoring::Spot => Vec::new(),
        Scoring::Blend => others_share(&resolved),
    };
    let scores = tables.score_resolved_shared(&resolved, &shares);
    Scored { folded, resolved, scores, backoff, tables, shares }
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
        let pairs = r.event_pairs(e)?;
        let lo = r.event_ptr[e];
        let (pair, score) = (0..pairs.len()).map(|j| (j, self.tables.resolved_pair(r, &self.shares, lo + j))).min_by(|a, b| a.1.total_cmp(&b.1))?;
        let theta = &self.tables.theta_row(pairs[pair].0)[..model.topics.k];
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
        let topics = TopicModel { k: 2, phi: vec![0.6, 0.0, 0.4, 0.0, 0.0, 1.0], theta: vec![1.0, 0.0, 0.25, 0.75] };
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
            assert!((dot(&a, &b) - naive).abs() <= 1e-3 * naive.abs().max(1.0), "n = {n}");
        }
    }

    #[test]
    fn known_document_scores_are_theta_dot_phi() {
        let m = model();
        let events: Vec<EventWords> =
            vec![vec![(ip(1), "a".into())], vec![(ip(1), "c".into())], vec![(ip(2), "c".into())], vec![(ip(2), "b".into())]];
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
        assert!(spot.population().is_empty());
        assert_eq!(spot.scores[..4], score_events(&m, &events[..4], &cfg)[..]);
        let blend = score_all_with(&m, &events, &cfg, Scoring::Blend);
        // Counts in this window: a twice by host 1; c once by host 1 and
        // twice by host 2; b once by host 2. The initiator's cap is scaled by
        // (others + ½) / (all + ½).
        let share = |others: f32, all: f32| (others + 0.5) / (all + 0.5);
        assert_eq!(
            blend.shares,
            [share(0.0, 2.0), share(2.0, 3.0), share(1.0, 3.0), share(0.0, 1.0), 1.0, 1.0, share(0.0, 2.0), 1.0],
            "markers and the second host's pair of event 6 keep 1"
        );
        // Host 1 uses a all the time (0.6) but only host 1 uses a: capped at
        // P_pop(a) · ½ / 2½. Event 6: its own host pair decides, the other
        // pair is capped by P_pop(c) alone.
        let want = [0.375 * 0.2, 0.0, 0.375 * share(1.0, 3.0), 0.25 * share(0.0, 1.0), UNSEEN_WORD_SCORE, ERROR_SCORE, 0.375 * 0.2];
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
        let events: Vec<EventWords> =
            vec![vec![(ip(1), "zzz".into())], vec![(ip(1), WORD_ERROR.into())], vec![(ip(1), "a".into()), (ip(2), "c".into())], vec![]];
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
        let batch2: Vec<EventWords> = vec![vec![(ip(9), "c".to_string())], vec![(ip(7), "a".to_string())]];
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
        let cfg = FoldInConfig { max_tokens: 100, ..FoldInConfig::default() };
        let theta = fold_in(&m, &[(0, 1_000_000), (2, 3_000_000)], &cfg, 3);
        assert!((theta[1] - 0.75).abs() < 0.1, "{theta:?}");
    }

    #[test]
    fn rank_applies_spot_threshold_order_and_limit() {
        let scores = [0.5, 1e-7, -1.0, 0.0, 1e-6, 2e-6, 1e-7, f32::NAN];
        let all = rank(&scores, &RankConfig::default());
        assert_eq!(all, vec![3, 1, 6, 4]);
        let top2 = rank(&scores, &RankConfig { max_results: 2, ..RankConfig::default() });
        assert_eq!(top2, vec![3, 1]);
        let loose = rank(&scores, &RankConfig { threshold: 1.0, max_results: 0 });
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

    /// Padded, aligned rows give the plain dot product for any K, including
    /// K not a multiple of the lanes and K spanning several cache lines.
    #[test]
    fn padded_tables_match_plain_dot_for_any_k() {
        for k in [1usize, 7, 16, 17, 20, 33, 64] {
            let mut rng = Rng::new(k as u64);
            let (v, d) = (5usize, 4usize);
            let vocab = Vocab::from_names((0..v).map(|i| format!("w{i}")).collect());
            let docs = Vocab::from_names((0..d).map(|i| format!("10.0.0.{i}")).collect());
            let topics = TopicModel { k, phi: (0..v * k).map(|_| rng.next_f32()).collect(), theta: (0..d * k).map(|_| rng.next_f32()).collect() };
            let m = Model::new(meta(k as u32), vocab, docs, topics).expect("model");
            let t = ScoreTables::of_model(&m);
            assert_eq!(t.padded_k() % LANES, 0);
            assert!(t.padded_k() >= k && t.padded_k() < k + LANES);
            for r in 0..d {
                assert_eq!(t.theta.row_ptr(r) as usize % 64, 0, "θ row {r} is cache-line aligned");
            }
            let pairs: Vec<(u32, u32)> = (0..d as u32).flat_map(|r| (0..v as u32).map(move |w| (r, w))).collect();
            let mut out = vec![0f32; pairs.len()];
            t.score_pairs(&pairs, &mut out);
            for (&(r, w), &got) in pairs.iter().zip(&out) {
                let naive: f32 = m.topics.theta_row(r as usize).iter().zip(m.topics.phi_row(w as usize)).map(|(a, b)| a * b).sum();
                assert!((got - naive).abs() <= 1e-5 * naive.max(1.0), "K {k}: {got} vs {naive}");
            }
            // A row the tables do not have scores NaN instead of panicking.
            let mut bad = [0f32; 1];
            t.score_pairs(&[(d as u32 + 5, 0)], &mut bad);
            assert!(bad[0].is_nan());
        }
    }

    /// Flow words: an unseen word one bin from seen ones gets their mean φ
    /// (unseen neighbours counting zero); one with no seen neighbour keeps 0;
    /// Spot's scoring keeps Spot's 0 for both.
    #[test]
    fn unseen_words_back_off_to_adjacent_bins() {
        let vocab = Vocab::from_names(vec!["443_TCP_10_12_5".into(), "443_TCP_11_12_5".into(), "53_UDP_3_7_1".into()]);
        let docs = Vocab::from_names(vec!["10.0.0.1".into(), "10.0.0.2".into()]);
        let topics = TopicModel { k: 2, phi: vec![0.5, 0.0, 0.5, 0.0, 0.0, 1.0], theta: vec![1.0, 0.0, 0.0, 1.0] };
        let m = Model::new(meta(2), vocab, docs, topics).expect("model");
        let events: Vec<EventWords> = vec![
            // Between the two seen hours: neighbours 10 and 11 of 6 candidates are seen.
            vec![(ip(1), "443_TCP_10_13_5".into())],
            vec![(ip(1), "443_TCP_12_12_5".into())],
            // A new port: nothing adjacent.
            vec![(ip(1), "8443_TCP_10_12_5".into())],
            vec![(ip(2), "443_TCP_10_13_5".into())],
        ];
        let cfg = FoldInConfig::default();
        let blend = score_all_with(&m, &events, &cfg, Scoring::Blend);
        assert_eq!(blend.backoff.len(), 2, "{:?}", blend.backoff);
        // 443_TCP_10_13_5: neighbours 9/11 h (11 seen), B 12/14 (12 seen... the seen
        // word 443_TCP_10_12_5), P 4/6: 1 seen of 6 → φ = (0.5/6, 0).
        // θ̄ = (0.5, 0.5): P_pop = 0.5 · 0.5/6; host 1: 0.5/6. Host 2 uses the
        // word once too, so host 1's cap keeps (1 + ½) / (2 + ½) of P_pop.
        assert!((blend.scores[0] - 0.25 / 6.0 * 0.6).abs() < 1e-6, "{:?}", blend.scores);
        // 443_TCP_12_12_5: neighbour hour 11 seen (1 of 6); only host 1 uses
        // it, once: ½ / 1½ of P_pop.
        assert!((blend.scores[1] - 0.25 / 6.0 / 3.0).abs() < 1e-6, "{:?}", blend.scores);
        assert_eq!(blend.scores[2], UNSEEN_WORD_SCORE);
        // Host 2 never uses topic 0: the smoothed word is still novel for it.
        assert_eq!(blend.scores[3], 0.0);
        let ex = blend.explain(&m, 0, 1).expect("explained");
        assert_eq!(ex.score, blend.scores[0]);
        // The one-pass and the resolved-pairs collections agree.
        let direct = BackoffWords::collect(&m, &events);
        assert_eq!(direct, blend.backoff);
        let index = DocIndex::new(&m);
        let folded = FoldedDocs::empty(2);
        assert_eq!(resolve_with_backoff(&m, &index, &folded, &direct, &events), {
            let mut r = resolve_with(&m, &index, &folded, &events);
            direct.patch(&events, &mut r);
            r
        });
        let spot = score_all_with(&m, &events, &cfg, Scoring::Spot);
        assert!(spot.backoff.is_empty());
        assert!(spot.scores.iter().all(|&s| s == UNSEEN_WORD_SCORE), "{:?}", spot.scores);
    }

    #[test]
    fn others_share_counts_the_events_hosts_as_own() {
        // Pairs are (document row, word id); a scan-like event gives both
        // hosts word 0, a third host uses it once; host 1 uses word 1 twice,
        // once as the initiator and once beside initiator 0's word 2.
        let events: [&[(u32, u32)]; 6] = [&[(0, 0), (1, 0)], &[(0, 0), (1, 0)], &[(0, 0), (1, 0)], &[(2, 0)], &[(1, 1)], &[(0, 2), (1, 1)]];
        let mut r = Resolved { pairs: Vec::new(), event_ptr: vec![0] };
        for ev in events {
            r.pairs.extend_from_slice(ev);
            r.event_ptr.push(r.pairs.len());
        }
        r.pairs.push((0, WORD_UNSEEN));
        r.event_ptr.push(r.pairs.len());
        let share = |others: f32, all: f32| (others + 0.5) / (all + 0.5);
        let s = others_share(&r);
        // Word 0: 7 uses, 6 of them by hosts 0 and 1 together.
        let scan = [share(1.0, 7.0), 1.0];
        let want = [&scan[..], &scan, &scan, &[share(6.0, 7.0)], &[share(0.0, 2.0)], &[share(0.0, 1.0), 1.0], &[1.0]].concat();
        assert_eq!(s, want);
        assert!(others_share(&Resolved::default()).is_empty());
    }

    #[test]
    fn score_pairs_kernel_matches_resolved_path() {
        let m = model();
        let pairs = vec![(0u32, 0u32), (1, 2), (1, 1), (0, 2)];
        let mut out = vec![0f32; 4];
        score_pairs(&m, &pairs, &mut out);
        let events: Vec<EventWords> =
            vec![vec![(ip(1), "a".into())], vec![(ip(2), "c".into())], vec![(ip(2), "b".into())], vec![(ip(1), "c".into())]];
        assert_eq!(out, score_events(&m, &events, &FoldInConfig::default()));
    }
}

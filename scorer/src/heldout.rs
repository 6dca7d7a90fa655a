//! Held-out evaluation by document completion (Wallach et al. 2009): hold
//! out whole documents, fold in θ from half of each held-out document's
//! tokens with φ fixed, and report the mean log-likelihood of the other half.
//! This compares trainers (and other LDA tools on the exported corpus) on
//! the same footing.

use crate::corpus::{Corpus, CorpusBuilder};
use crate::model::Model;
use crate::rng::{Rng, mix};
use crate::score::{FoldInConfig, dot, fold_in};

/// Splits a corpus into (training, held-out) by whole documents: each
/// document goes to held-out with probability `fraction` (deterministic in
/// `seed` and the document's position).
pub fn split_documents(corpus: &Corpus, fraction: f64, seed: u64) -> (Corpus, Corpus) {
    let mut train = CorpusBuilder::new();
    let mut test = CorpusBuilder::new();
    for d in 0..corpus.docs.len() as u32 {
        let held = Rng::new(mix(&[seed, u64::from(d)])).next_f64() < fraction;
        let target = if held { &mut test } else { &mut train };
        for e in corpus.doc_entries(d) {
            target.add(corpus.docs.name(d), corpus.words.name(e.word), e.count);
        }
    }
    (train.build(), test.build())
}

/// Result of a document-completion evaluation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HeldOut {
    /// Mean log-likelihood (natural log) per evaluated token.
    pub mean_log_likelihood: f64,
    /// Tokens evaluated.
    pub tokens: u64,
    /// Tokens of held-out documents (either half) skipped because the
    /// model's vocabulary lacks their word.
    pub unseen_tokens: u64,
}

/// Document completion: for each held-out document, every other token
/// (per word, alternating) is observed and used for fold-in; the rest are
/// scored as ln Σ_t θ\[t\]·φ_t(w).
pub fn document_completion(model: &Model, heldout: &Corpus, cfg: &FoldInConfig) -> HeldOut {
    let mut ll = 0.0;
    let mut tokens = 0u64;
    let mut unseen = 0u64;
    for d in 0..heldout.docs.len() as u32 {
        let mut observed = Vec::new();
        let mut evaluate = Vec::new();
        let mut parity = 0u64;
        for e in heldout.doc_entries(d) {
            let Some(w) = model.vocab.id(heldout.words.name(e.word)) else {
                unseen += e.count;
                parity += e.count;
                continue;
            };
            // Alternate tokens between the halves across the whole document.
            let first_obs = parity.is_multiple_of(2);
            let obs = e.count / 2 + if first_obs { e.count % 2 } else { 0 };
            let ev = e.count - obs;
            parity += e.count;
            if obs > 0 {
                observed.push((w, obs));
            }
            if ev > 0 {
                evaluate.push((w, ev));
            }
        }
        if evaluate.is_empty() {
            continue;
        }
        let theta = fold_in(model, &observed, cfg, u64::from(d));
        for (w, c) in evaluate {
            let p = f64::from(dot(&theta, model.topics.phi_row(w as usize)));
            ll += c as f64 * p.max(1e-30).ln();
            tokens += c;
        }
    }
    HeldOut {
        mean_log_likelihood: if tokens > 0 { ll / tokens as f64 } else { 0.0 },
        tokens,
        unseen_tokens: unseen,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lda::gibbs::GibbsConfig;
    use crate::lda::planted::generate;
    use crate::pipeline::{Trainer, train_model};
    use osprey_segment::records::Kind;

    #[test]
    fn split_is_by_whole_documents_and_deterministic() {
        let p = generate(3, 4, 100, 10, 1);
        let (a, b) = split_documents(&p.corpus, 0.2, 9);
        assert_eq!(a.num_tokens() + b.num_tokens(), p.corpus.num_tokens());
        assert_eq!(a.docs.len() + b.docs.len(), p.corpus.docs.len());
        assert!((10..=35).contains(&b.docs.len()), "{}", b.docs.len());
        for name in b.docs.names() {
            assert!(a.docs.id(name).is_none());
        }
        let (a2, _) = split_documents(&p.corpus, 0.2, 9);
        assert_eq!(a, a2);
    }

    /// A model of the planted topics must predict held-out documents much
    /// better than a 1-topic model (which can only learn the word marginal).
    #[test]
    fn completion_prefers_the_true_structure() {
        let p = generate(5, 10, 400, 60, 4);
        let (train, test) = split_documents(&p.corpus, 0.2, 1);
        let cfg = |k| {
            Trainer::Gibbs(GibbsConfig {
                k,
                iterations: 80,
                threads: 1,
                ..GibbsConfig::default()
            })
        };
        let (m5, _) = train_model(Kind::Dns, &train, &cfg(5), (None, None)).expect("k5");
        let (m1, _) = train_model(Kind::Dns, &train, &cfg(1), (None, None)).expect("k1");
        let fold = FoldInConfig::for_model(&m5);
        let h5 = document_completion(&m5, &test, &fold);
        let h1 = document_completion(&m1, &test, &fold);
        assert!(h5.tokens > 1000);
        assert_eq!(h5.tokens, h1.tokens);
        // Uniform over 50 words is ln(1/50) ≈ −3.9; a block of 10 is ≈ −2.4.
        assert!(h1.mean_log_likelihood < -3.5, "{h1:?}");
        assert!(
            h5.mean_log_likelihood > h1.mean_log_likelihood + 0.7,
            "{h5:?} vs {h1:?}"
        );
    }
}

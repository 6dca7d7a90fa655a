//! Osprey's scorer: Apache Spot's suspicious-connects analysis without Spark.
//!
//! The pipeline is the one `spot-reference.md` §2–3 describes:
//!
//! 1. [`words`]: each event becomes one word per document (IP), exactly as
//!    Spot's master code builds them;
//! 2. [`corpus`]: the (document, word) → count table, interned to ids, and
//!    exportable as TSV so other LDA tools can run on the same input;
//! 3. [`lda`]: topic models, a fast multi-threaded collapsed Gibbs sampler
//!    (default) and Spot's MAP-EM (`spot-em`) for comparison;
//! 4. [`model`]: the versioned, checksummed model file;
//! 5. [`score`]: score(d, w) = Σ_k θ_d\[k\]·φ_k(w), fold-in for unseen
//!    documents, and Spot's threshold/sort/max-results ranking;
//! 6. [`pipeline`]: records → events → corpus → model glue, and
//!    [`heldout`]: document-completion log-likelihood on held-out documents;
//! 7. [`kinds`]: a window of records of any kind → events, with the word
//!    settings (domain popularity, user domain) that travel in the model.
//!
//! The core API works on in-memory records and iterators so it does not
//! depend on how segments are read.

pub mod corpus;
pub mod heldout;
pub mod kinds;
pub mod lda;
pub mod model;
pub mod pipeline;
pub mod rng;
pub mod score;
pub mod words;

//! The model file: everything `osprey score` needs from `osprey train`.
//!
//! Layout (all integers little-endian):
//!
//! | bytes | content |
//! |---|---|
//! | 8 | magic `OSPRYLDA` |
//! | 4 | format version (u32, currently [`FORMAT_VERSION`]) |
//! | 4 | header length H (u32) |
//! | H | header: JSON [`ModelMeta`] (K, priors, trainer, training window, corpus statistics, …) |
//! | … | vocabulary: u32 count, then per word u32 byte length + UTF-8 |
//! | … | documents: same encoding |
//! | 4·V·K | φ, f32, word-major (`phi[w·K + t]`) |
//! | 4·D·K | θ, f32 (`theta[d·K + t]`) |
//! | 4 | CRC-32 (IEEE) of every preceding byte |
//!
//! The binary body keeps φ and θ compact (4 bytes per value) and loadable
//! without parsing; the JSON header keeps the parameters readable with any
//! tool. Loading checks magic, version, checksum and every length, and
//! reports which one failed.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::corpus::{CorpusStats, Vocab};
use crate::lda::TopicModel;

/// File magic.
pub const MAGIC: &[u8; 8] = b"OSPRYLDA";
/// Current format version.
pub const FORMAT_VERSION: u32 = 1;

/// Parameters and provenance of a model (the file's JSON header).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelMeta {
    /// Record kind the model scores: `flow`, `dns` or `proxy`.
    pub kind: String,
    /// `gibbs` or `spot-em`.
    pub trainer: String,
    /// Number of topics.
    pub k: u32,
    /// Document–topic prior as the trainer used it.
    pub alpha: f64,
    /// Topic–word prior as the trainer used it.
    pub eta: f64,
    /// Sweeps or EM iterations.
    pub iterations: u32,
    /// Seed.
    pub seed: u64,
    /// Threads (partitions) used; with the seed, fixes the result.
    pub threads: u32,
    /// Start of the training window, ns since the epoch (inclusive).
    pub train_from_ns: Option<i64>,
    /// End of the training window, ns since the epoch (exclusive).
    pub train_to_ns: Option<i64>,
    /// Corpus size figures.
    pub corpus: CorpusStats,
    /// Mean per-token training log-likelihood, if computed.
    pub mean_log_likelihood: Option<f64>,
    /// Free-form settings callers need at scoring time (user domain,
    /// popularity source, …).
    #[serde(default)]
    pub settings: BTreeMap<String, String>,
}

/// A trained model with its vocabulary and documents.
#[derive(Debug, Clone, PartialEq)]
pub struct Model {
    /// Header.
    pub meta: ModelMeta,
    /// Words, in φ row order.
    pub vocab: Vocab,
    /// Documents, in θ row order.
    pub docs: Vocab,
    /// φ and θ.
    pub topics: TopicModel,
}

/// Errors reading or writing a model file.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// File I/O failed.
    #[error("model file I/O: {0}")]
    Io(#[from] std::io::Error),
    /// Not a model file.
    #[error("not an Osprey model file (bad magic)")]
    BadMagic,
    /// Written by another format version.
    #[error("model format version {found} is not supported (this build reads version {supported})")]
    UnsupportedVersion {
        /// Version in the file.
        found: u32,
        /// Version this build reads.
        supported: u32,
    },
    /// The checksum does not match: the file is corrupt.
    #[error("model file is corrupt: checksum {found:08x} does not match {expected:08x}")]
    Checksum {
        /// Stored checksum.
        expected: u32,
        /// Computed checksum.
        found: u32,
    },
    /// The file ends early.
    #[error("model file is truncated")]
    Truncated,
    /// The content is inconsistent.
    #[error("model file is corrupt: {0}")]
    Corrupt(String),
    /// The header cannot be (de)serialised.
    #[error("model header: {0}")]
    Header(#[from] serde_json::Error),
}

impl Model {
    /// Assembles a model; checks the table sizes agree.
    pub fn new(meta: ModelMeta, vocab: Vocab, docs: Vocab, topics: TopicModel) -> Result<Self, ModelError> {
        let m = Model { meta, vocab, docs, topics };
        m.check()?;
        Ok(m)
    }

    fn check(&self) -> Result<(), ModelError> {
        let k = self.topics.k;
        if k == 0 || k != self.meta.k as usize {
            return Err(ModelError::Corrupt(format!("K is {k} in the tables and {} in the header", self.meta.k)));
        }
        if self.topics.phi.len() != self.vocab.len() * k {
            return Err(ModelError::Corrupt("φ size does not match the vocabulary".into()));
        }
        if self.topics.theta.len() != self.docs.len() * k {
            return Err(ModelError::Corrupt("θ size does not match the documents".into()));
        }
        Ok(())
    }

    /// The encoded file.
    pub fn to_bytes(&self) -> Result<Vec<u8>, ModelError> {
        let header = serde_json::to_vec(&self.meta)?;
        let mut b = Vec::with_capacity(32 + header.len() + 4 * (self.topics.phi.len() + self.topics.theta.len()) + 16 * self.vocab.len());
        b.extend_from_slice(MAGIC);
        b.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        b.extend_from_slice(&(header.len() as u32).to_le_bytes());
        b.extend_from_slice(&header);
        for table in [&self.vocab, &self.docs] {
            b.extend_from_slice(&(table.len() as u32).to_le_bytes());
            for name in table.names() {
                b.extend_from_slice(&(name.len() as u32).to_le_bytes());
                b.extend_from_slice(name.as_bytes());
            }
        }
        for x in self.topics.phi.iter().chain(&self.topics.theta) {
            b.extend_from_slice(&x.to_le_bytes());
        }
        let crc = crc32(&b);
        b.extend_from_slice(&crc.to_le_bytes());
        Ok(b)
    }

    /// The CRC-32 the file of this model ends with: an identity of the
    /// model's content (parameters, vocabulary, documents, φ and θ) that
    /// does not depend on where the file is.
    pub fn checksum(&self) -> Result<u32, ModelError> {
        let b = self.to_bytes()?;
        let mut c = [0u8; 4];
        c.copy_from_slice(&b[b.len() - 4..]);
        Ok(u32::from_le_bytes(c))
    }

    /// A short text identity of the model: `crc32:` and [`Model::checksum`]
    /// in hex.
    pub fn id(&self) -> Result<String, ModelError> {
        Ok(format!("crc32:{:08x}", self.checksum()?))
    }

    /// Writes the file (via a temporary file renamed into place, so a reader
    /// never sees a half-written model).
    pub fn save(&self, path: &Path) -> Result<(), ModelError> {
        let bytes = self.to_bytes()?;
        let tmp = path.with_extension("tmp");
        {
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(&bytes)?;
            f.sync_all()?;
        }
        std::fs::rename(&tmp, path)?;
        Ok(())
    }

    /// Reads a model file.
    pub fn load(path: &Path) -> Result<Self, ModelError> {
        Self::from_bytes(&std::fs::read(path)?)
    }

    /// Decodes a model file's bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ModelError> {
        if bytes.len() < 8 || &bytes[..8] != MAGIC {
            return Err(ModelError::BadMagic);
        }
        let mut r = Reader { b: bytes, pos: 8 };
        let version = r.u32()?;
        if version != FORMAT_VERSION {
            return Err(ModelError::UnsupportedVersion { found: version, supported: FORMAT_VERSION });
        }
        if bytes.len() < 16 + 4 {
            return Err(ModelError::Truncated);
        }
        let body = &bytes[..bytes.len() - 4];
        let mut crc_bytes = [0u8; 4];
        crc_bytes.copy_from_slice(&bytes[bytes.len() - 4..]);
        let expected = u32::from_le_bytes(crc_bytes);
        let found = crc32(body);
        if expected != found {
            return Err(ModelError::Checksum { expected, found });
        }
        let mut r = Reader { b: body, pos: 12 };
        let hlen = r.u32()? as usize;
        let meta: ModelMeta = serde_json::from_slice(r.take(hlen)?)?;
        let vocab = Vocab::from_names(r.names()?);
        let docs = Vocab::from_names(r.names()?);
        let k = meta.k as usize;
        let phi = r.f32s(vocab.len() * k)?;
        let theta = r.f32s(docs.len() * k)?;
        if r.pos != body.len() {
            return Err(ModelError::Corrupt(format!("{} trailing bytes", body.len() - r.pos)));
        }
        let m = Model { meta, vocab, docs, topics: TopicModel { k, phi, theta } };
        m.check()?;
        Ok(m)
    }
}

struct Reader<'a> {
    b: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], ModelError> {
        let end = self.pos.checked_add(n).ok_or(ModelError::Truncated)?;
        let s = self.b.get(self.pos..end).ok_or(ModelError::Truncated)?;
        self.pos = end;
        Ok(s)
    }

    fn u32(&mut self) -> Result<u32, ModelError> {
        let s = self.take(4)?;
        Ok(u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
    }

    fn names(&mut self) -> Result<Vec<String>, ModelError> {
        let n = self.u32()? as usize;
        // Each name needs at least 4 bytes: bound the allocation by the file.
        if n > self.b.len().saturating_sub(self.pos) / 4 {
            return Err(ModelError::Truncated);
        }
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            let len = self.u32()? as usize;
            let s = std::str::from_utf8(self.take(len)?).map_err(|_| ModelError::Corrupt("a name is not UTF-8".into()))?;
            out.push(s.to_string());
        }
        Ok(out)
    }

    fn f32s(&mut self, n: usize) -> Result<Vec<f32>, ModelError> {
        let bytes = self.take(n.checked_mul(4).ok_or(ModelError::Truncated)?)?;
        Ok(bytes.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect())
    }
}

const CRC_TABLE: [u32; 256] = {
    let mut t = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut j = 0;
        while j < 8 {
            c = if c & 1 != 0 { 0xEDB8_8320 ^ (c >> 1) } else { c >> 1 };
            j += 1;
        }
        t[i] = c;
        i += 1;
    }
    t
};

/// CRC-32 (IEEE 802.3, as zlib computes it).
pub fn crc32(data: &[u8]) -> u32 {
    let mut c = !0u32;
    for &b in data {
        c = CRC_TABLE[((c ^ u32::from(b)) & 0xFF) as usize] ^ (c >> 8);
    }
    !c
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn sample_model() -> Model {
        let meta = ModelMeta {
            kind: "dns".into(),
            trainer: "gibbs".into(),
            k: 2,
            alpha: 0.02,
            eta: 0.001,
            iterations: 10,
            seed: 7,
            threads: 2,
            train_from_ns: Some(1_700_000_000_000_000_000),
            train_to_ns: Some(1_700_086_400_000_000_000),
            corpus: CorpusStats { documents: 2, vocabulary: 3, entries: 4, tokens: 9, dropped_errors: 1 },
            mean_log_likelihood: Some(-1.5),
            settings: BTreeMap::from([("user_domain".to_string(), "example".to_string())]),
        };
        let vocab = Vocab::from_names(vec!["a_1".into(), "b_2".into(), "ü_3".into()]);
        let docs = Vocab::from_names(vec!["10.0.0.1".into(), "2001:db8::1".into()]);
        let topics = TopicModel { k: 2, phi: vec![0.5, 0.1, 0.25, 0.1, 0.25, 0.8], theta: vec![0.9, 0.1, 0.3, 0.7] };
        Model::new(meta, vocab, docs, topics).expect("consistent")
    }

    #[test]
    fn model_id_is_the_file_checksum_and_follows_the_content() {
        let m = sample_model();
        let bytes = m.to_bytes().expect("encode");
        let stored = u32::from_le_bytes(bytes[bytes.len() - 4..].try_into().expect("4 bytes"));
        assert_eq!(m.checksum().expect("checksum"), stored);
        assert_eq!(m.id().expect("id"), format!("crc32:{stored:08x}"));
        let mut other = m.clone();
        other.topics.theta[0] = 0.8;
        assert_ne!(other.id().expect("id"), m.id().expect("id"));
    }

    #[test]
    fn crc32_known_value() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    }

    #[test]
    fn round_trip_through_a_file() {
        let m = sample_model();
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("dns.model");
        m.save(&path).expect("save");
        let back = Model::load(&path).expect("load");
        assert_eq!(back, m);
        assert_eq!(back.vocab.id("ü_3"), Some(2));
    }

    #[test]
    fn wrong_magic_version_and_corruption_are_reported() {
        let good = sample_model().to_bytes().expect("encode");
        let mut bad = good.clone();
        bad[0] = b'X';
        assert!(matches!(Model::from_bytes(&bad), Err(ModelError::BadMagic)));
        let mut v2 = good.clone();
        v2[8..12].copy_from_slice(&2u32.to_le_bytes());
        let err = Model::from_bytes(&v2).expect_err("version");
        assert!(matches!(err, ModelError::UnsupportedVersion { found: 2, supported: 1 }));
        assert!(err.to_string().contains("version 2"));
        let mut flipped = good.clone();
        let mid = good.len() / 2;
        flipped[mid] ^= 0x40;
        assert!(matches!(Model::from_bytes(&flipped), Err(ModelError::Checksum { .. })));
        assert!(matches!(Model::from_bytes(&good[..good.len() - 9]), Err(ModelError::Checksum { .. })));
        assert!(matches!(Model::from_bytes(&good[..14]), Err(ModelError::Truncated)));
        assert!(matches!(Model::from_bytes(b""), Err(ModelError::BadMagic)));
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_models_round_trip(
            words in proptest::collection::vec(".{0,12}", 0..20),
            docs in proptest::collection::vec("[0-9a-f:.]{1,20}", 0..10),
            k in 1usize..5,
            seed in 0u64..1000,
        ) {
            let mut rng = crate::rng::Rng::new(seed);
            let vocab = Vocab::from_names(words);
            let docs = Vocab::from_names(docs);
            let phi = (0..vocab.len() * k).map(|_| rng.next_f32()).collect();
            let theta = (0..docs.len() * k).map(|_| rng.next_f32()).collect();
            let mut meta = sample_model().meta;
            meta.k = k as u32;
            let m = Model::new(meta, vocab, docs, TopicModel { k, phi, theta }).expect("consistent");
            let back = Model::from_bytes(&m.to_bytes().expect("encode")).expect("decode");
            proptest::prop_assert_eq!(back, m);
        }
    }

    #[test]
    fn inconsistent_tables_are_rejected() {
        let m = sample_model();
        let mut topics = m.topics.clone();
        topics.phi.pop();
        assert!(matches!(Model::new(m.meta.clone(), m.vocab.clone(), m.docs.clone(), topics), Err(ModelError::Corrupt(_))));
    }

    #[test]
    fn a_consistent_checksum_over_bad_lengths_is_still_caught() {
        // Rewrite the vocabulary count to a huge value and fix the checksum:
        // the length checks must catch what the checksum cannot.
        let good = sample_model().to_bytes().expect("encode");
        let hlen = u32::from_le_bytes([good[12], good[13], good[14], good[15]]) as usize;
        let mut bad = good[..good.len() - 4].to_vec();
        let at = 16 + hlen;
        bad[at..at + 4].copy_from_slice(&u32::MAX.to_le_bytes());
        let crc = crc32(&bad);
        bad.extend_from_slice(&crc.to_le_bytes());
        assert!(matches!(Model::from_bytes(&bad), Err(ModelError::Truncated)));
    }
}

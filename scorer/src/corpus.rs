//! The LDA input: a (document, word) → count table with documents and words
//! interned to dense `u32` ids.
//!
//! Documents are IP addresses as text (IPv4-mapped IPv6 shown as IPv4).
//! `word_error` pairs are dropped here, as Spot dropped them before LDA.
//! [`Corpus::write_tsv`] exports `doc\tword\tcount` so any other LDA tool can
//! be run on exactly the same input.

use std::collections::HashMap;
use std::io::{self, Write};
use std::net::IpAddr;

use crate::words::WORD_ERROR;

/// A string ↔ dense id table.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Vocab {
    names: Vec<String>,
    index: HashMap<String, u32>,
}

impl Vocab {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Builds from names in id order. Duplicates keep their first id.
    pub fn from_names(names: Vec<String>) -> Self {
        let mut index = HashMap::with_capacity(names.len());
        for (i, n) in names.iter().enumerate() {
            index.entry(n.clone()).or_insert(i as u32);
        }
        Vocab { names, index }
    }

    /// The id of `name`, adding it if new.
    pub fn intern(&mut self, name: &str) -> u32 {
        if let Some(&id) = self.index.get(name) {
            return id;
        }
        let id = self.names.len() as u32;
        self.names.push(name.to_string());
        self.index.insert(name.to_string(), id);
        id
    }

    /// The id of `name`, if known.
    pub fn id(&self, name: &str) -> Option<u32> {
        self.index.get(name).copied()
    }

    /// The name of `id`.
    pub fn name(&self, id: u32) -> &str {
        &self.names[id as usize]
    }

    /// All names in id order.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }
}

/// The text of an IP used as a document name.
pub fn doc_name(ip: IpAddr) -> String {
    ip.to_canonical().to_string()
}

/// Accumulates (document, word) counts.
#[derive(Debug, Default)]
pub struct CorpusBuilder {
    docs: Vocab,
    words: Vocab,
    counts: HashMap<(u32, u32), u64>,
    dropped_errors: u64,
}

impl CorpusBuilder {
    /// An empty builder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `count` occurrences of `word` in document `doc`; `word_error` is
    /// counted as dropped instead.
    pub fn add(&mut self, doc: &str, word: &str, count: u64) {
        if word == WORD_ERROR {
            self.dropped_errors += count;
            return;
        }
        if count == 0 {
            return;
        }
        let d = self.docs.intern(doc);
        let w = self.words.intern(word);
        *self.counts.entry((d, w)).or_default() += count;
    }

    /// Adds one occurrence for an IP document.
    pub fn add_ip(&mut self, ip: IpAddr, word: &str) {
        self.add(&doc_name(ip), word, 1);
    }

    /// Adds every (IP, word) pair of an iterator.
    pub fn extend_pairs<I: IntoIterator<Item = (IpAddr, String)>>(&mut self, pairs: I) {
        for (ip, w) in pairs {
            self.add_ip(ip, &w);
        }
    }

    /// Finishes: entries sorted by (document id, word id).
    pub fn build(self) -> Corpus {
        let mut entries: Vec<Entry> = self
            .counts
            .into_iter()
            .map(|((doc, word), count)| Entry { doc, word, count })
            .collect();
        entries.sort_unstable_by_key(|e| (e.doc, e.word));
        Corpus::from_parts(self.docs, self.words, entries, self.dropped_errors)
    }
}

/// One (document, word, count) cell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    /// Document id.
    pub doc: u32,
    /// Word id.
    pub word: u32,
    /// Occurrences (> 0).
    pub count: u64,
}

/// An interned corpus: entries sorted by document, with per-document ranges.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Corpus {
    /// Document names (IPs as text).
    pub docs: Vocab,
    /// Word strings.
    pub words: Vocab,
    /// Cells sorted by (doc, word).
    pub entries: Vec<Entry>,
    /// `doc_ptr[d]..doc_ptr[d+1]` indexes `entries` of document `d`.
    pub doc_ptr: Vec<usize>,
    /// `word_error` occurrences dropped.
    pub dropped_errors: u64,
}

impl Corpus {
    /// Builds from interned parts; `entries` must be sorted by doc and every
    /// doc id must be `< docs.len()`.
    pub fn from_parts(docs: Vocab, words: Vocab, entries: Vec<Entry>, dropped_errors: u64) -> Self {
        let mut doc_ptr = vec![0usize; docs.len() + 1];
        for e in &entries {
            doc_ptr[e.doc as usize + 1] += 1;
        }
        for i in 0..docs.len() {
            doc_ptr[i + 1] += doc_ptr[i];
        }
        Corpus {
            docs,
            words,
            entries,
            doc_ptr,
            dropped_errors,
        }
    }

    /// The entries of document `d`.
    pub fn doc_entries(&self, d: u32) -> &[Entry] {
        &self.entries[self.doc_ptr[d as usize]..self.doc_ptr[d as usize + 1]]
    }

    /// Total number of tokens (sum of counts).
    pub fn num_tokens(&self) -> u64 {
        self.entries.iter().map(|e| e.count).sum()
    }

    /// Summary numbers for logs and model files.
    pub fn stats(&self) -> CorpusStats {
        CorpusStats {
            documents: self.docs.len() as u64,
            vocabulary: self.words.len() as u64,
            entries: self.entries.len() as u64,
            tokens: self.num_tokens(),
            dropped_errors: self.dropped_errors,
        }
    }

    /// Writes `doc\tword\tcount` lines, in (doc id, word id) order, no header.
    pub fn write_tsv<W: Write>(&self, mut out: W) -> io::Result<()> {
        for e in &self.entries {
            writeln!(
                out,
                "{}\t{}\t{}",
                self.docs.name(e.doc),
                self.words.name(e.word),
                e.count
            )?;
        }
        out.flush()
    }
}

impl Corpus {
    /// Reads `doc\tword\tcount` lines (the [`Corpus::write_tsv`] format;
    /// a `document\tword\tcount` header line is skipped).
    pub fn read_tsv<R: io::BufRead>(input: R) -> io::Result<Corpus> {
        let mut b = CorpusBuilder::new();
        for (i, line) in input.lines().enumerate() {
            let line = line?;
            if line.is_empty() || (i == 0 && line == "document\tword\tcount") {
                continue;
            }
            let mut f = line.split('\t');
            let (Some(d), Some(w), Some(c), None) = (f.next(), f.next(), f.next(), f.next()) else {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("line {}: expected document<TAB>word<TAB>count", i + 1),
                ));
            };
            let c: u64 = c.parse().map_err(|_| {
                io::Error::new(io::ErrorKind::InvalidData, format!("line {}: bad count {c:?}", i + 1))
            })?;
            b.add(d, w, c);
        }
        Ok(b.build())
    }

    /// Writes the corpus as a Parquet file with columns `document` (utf8),
    /// `word` (utf8) and `count` (uint64), zstd-compressed, in TSV order.
    pub fn write_parquet<W: Write + Send>(&self, out: W) -> Result<(), parquet::errors::ParquetError> {
        use arrow_array::{ArrayRef, RecordBatch, StringArray, UInt64Array};
        use arrow_schema::{DataType, Field, Schema};
        use std::sync::Arc;
        let schema = Arc::new(Schema::new(vec![
            Field::new("document", DataType::Utf8, false),
            Field::new("word", DataType::Utf8, false),
            Field::new("count", DataType::UInt64, false),
        ]));
        let props = parquet::file::properties::WriterProperties::builder()
            .set_compression(parquet::basic::Compression::ZSTD(Default::default()))
            .build();
        let mut w = parquet::arrow::ArrowWriter::try_new(out, schema.clone(), Some(props))?;
        for chunk in self.entries.chunks(1 << 20) {
            let cols: Vec<ArrayRef> = vec![
                Arc::new(StringArray::from_iter_values(chunk.iter().map(|e| self.docs.name(e.doc)))),
                Arc::new(StringArray::from_iter_values(chunk.iter().map(|e| self.words.name(e.word)))),
                Arc::new(UInt64Array::from_iter_values(chunk.iter().map(|e| e.count))),
            ];
            w.write(&RecordBatch::try_new(schema.clone(), cols)?)?;
        }
        w.close()?;
        Ok(())
    }
}

/// Size figures of a corpus.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CorpusStats {
    /// Distinct documents.
    pub documents: u64,
    /// Distinct words.
    pub vocabulary: u64,
    /// Distinct (document, word) pairs.
    pub entries: u64,
    /// Tokens (sum of counts).
    pub tokens: u64,
    /// `word_error` occurrences dropped.
    pub dropped_errors: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_are_summed_per_doc_word_and_errors_dropped() {
        let mut b = CorpusBuilder::new();
        let a = IpAddr::from([10, 0, 0, 1]);
        let c: IpAddr = "::ffff:10.0.0.2".parse().expect("ip");
        b.extend_pairs(vec![
            (a, "w1".to_string()),
            (a, "w1".to_string()),
            (a, "w2".to_string()),
            (c, "w1".to_string()),
            (c, WORD_ERROR.to_string()),
        ]);
        let corpus = b.build();
        assert_eq!(
            corpus.docs.names(),
            &["10.0.0.1".to_string(), "10.0.0.2".to_string()]
        );
        assert_eq!(corpus.words.len(), 2);
        assert_eq!(corpus.num_tokens(), 4);
        assert_eq!(corpus.dropped_errors, 1);
        let d0 = corpus.doc_entries(0);
        assert_eq!(d0.len(), 2);
        assert_eq!(
            d0[0],
            Entry {
                doc: 0,
                word: 0,
                count: 2
            }
        );
        assert_eq!(
            corpus.doc_entries(1),
            &[Entry {
                doc: 1,
                word: 0,
                count: 1
            }]
        );
        let s = corpus.stats();
        assert_eq!(
            (s.documents, s.vocabulary, s.entries, s.tokens),
            (2, 2, 3, 4)
        );
    }

    #[test]
    fn tsv_export() {
        let mut b = CorpusBuilder::new();
        b.add("1.2.3.4", "x_y", 3);
        b.add("5.6.7.8", "z", 1);
        b.add("1.2.3.4", "z", 2);
        let mut out = Vec::new();
        b.build().write_tsv(&mut out).expect("write");
        assert_eq!(
            String::from_utf8(out).expect("utf8"),
            "1.2.3.4\tx_y\t3\n1.2.3.4\tz\t2\n5.6.7.8\tz\t1\n"
        );
    }

    #[test]
    fn tsv_round_trip_and_parquet() {
        let mut b = CorpusBuilder::new();
        b.add("1.2.3.4", "x_y", 3);
        b.add("5.6.7.8", "z", 1);
        let c = b.build();
        let mut out = Vec::new();
        c.write_tsv(&mut out).expect("write");
        let back = Corpus::read_tsv(&out[..]).expect("read");
        assert_eq!(back, c);
        assert!(Corpus::read_tsv(&b"a\tb\n"[..]).is_err());
        let mut pq = Vec::new();
        c.write_parquet(&mut pq).expect("parquet");
        assert_eq!(&pq[..4], b"PAR1");
    }

    #[test]
    fn vocab_round_trip() {
        let mut v = Vocab::new();
        assert_eq!(v.intern("a"), 0);
        assert_eq!(v.intern("b"), 1);
        assert_eq!(v.intern("a"), 0);
        let w = Vocab::from_names(v.names().to_vec());
        assert_eq!(w.id("b"), Some(1));
        assert_eq!(w.id("c"), None);
        assert_eq!(w.name(0), "a");
    }
}

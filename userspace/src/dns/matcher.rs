//! Query→response matching, to fill `DnsRecord::latency_ns`.
//!
//! A pending query is keyed by the transport endpoints and the message id;
//! a hash of the question (case-folded name and type) is stored alongside
//! so that an id collision on a busy resolver port does not pair unrelated
//! messages. Responses without a question section (some FORMERR/SERVFAIL
//! responses) match on the key alone. The table is bounded: queries expire
//! after a timeout of packet time, and when full the oldest is evicted.

use hashbrown::HashMap;
use std::collections::VecDeque;
use std::net::IpAddr;

/// Identifies one outstanding query. Use the same orientation for the query
/// and its response (client = the side that sent the query).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MatchKey {
    /// Client address.
    pub client_ip: IpAddr,
    /// Client port.
    pub client_port: u16,
    /// Server address.
    pub server_ip: IpAddr,
    /// Server port.
    pub server_port: u16,
    /// DNS message id.
    pub id: u16,
}

/// Bounds of a [`QueryMatcher`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MatchConfig {
    /// A query unanswered for this long (packet time) is forgotten.
    pub timeout_ns: i64,
    /// Pending queries kept at most; the oldest is evicted beyond.
    pub capacity: usize,
}

impl Default for MatchConfig {
    /// 30 s, 65 536 pending queries (a few MiB).
    fn default() -> Self {
        MatchConfig {
            timeout_ns: 30_000_000_000,
            capacity: 65_536,
        }
    }
}

/// Counters of a [`QueryMatcher`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MatchStats {
    /// Queries recorded.
    pub queries: u64,
    /// Queries ignored because the same key was already pending (a client
    /// retransmission; the first one's time is kept).
    pub duplicate_queries: u64,
    /// Responses matched.
    pub matched: u64,
    /// Responses with no pending query (query not captured, expired, or a
    /// duplicate response).
    pub unmatched_responses: u64,
    /// Responses whose key matched but whose question did not.
    pub question_mismatch: u64,
    /// Queries dropped after `timeout_ns`.
    pub expired: u64,
    /// Queries dropped to stay within `capacity`.
    pub evicted: u64,
}

#[derive(Debug, Clone, Copy)]
struct Pending {
    ts: i64,
    question: u64,
    /// Insertion number, to tell this entry from a stale queue element.
    generation: u64,
}

/// Pending queries, bounded by time and count.
#[derive(Debug)]
pub struct QueryMatcher {
    pending: HashMap<MatchKey, Pending>,
    /// Insertion order for expiry/eviction. Matched entries are removed from
    /// `pending` only; their queue elements go stale and are skipped (or
    /// compacted away when the queue grows past twice the capacity).
    order: VecDeque<(u64, MatchKey)>,
    next_generation: u64,
    cfg: MatchConfig,
    stats: MatchStats,
}

impl QueryMatcher {
    /// An empty table.
    pub fn new(cfg: MatchConfig) -> Self {
        QueryMatcher {
            pending: HashMap::new(),
            order: VecDeque::new(),
            next_generation: 0,
            cfg,
            stats: MatchStats::default(),
        }
    }

    /// Records a query seen at `ts_ns`. Returns false if a query with the same
    /// key is already pending (it is kept: latency is then measured from the
    /// client's first attempt).
    pub fn on_query(&mut self, key: MatchKey, qname: &str, qtype: u16, ts_ns: i64) -> bool {
        self.expire(ts_ns);
        if self.pending.contains_key(&key) {
            self.stats.duplicate_queries += 1;
            return false;
        }
        while self.pending.len() >= self.cfg.capacity.max(1) {
            let Some((generation, old)) = self.order.pop_front() else {
                break;
            };
            if self
                .pending
                .get(&old)
                .is_some_and(|p| p.generation == generation)
            {
                self.pending.remove(&old);
                self.stats.evicted += 1;
            }
        }
        let generation = self.next_generation;
        self.next_generation += 1;
        self.pending.insert(
            key,
            Pending {
                ts: ts_ns,
                question: question_hash(qname, qtype),
                generation,
            },
        );
        self.order.push_back((generation, key));
        if self.order.len() > 2 * self.cfg.capacity.max(16) {
            let pending = &self.pending;
            self.order
                .retain(|(g, k)| pending.get(k).is_some_and(|p| p.generation == *g));
        }
        self.stats.queries += 1;
        true
    }

    /// Looks up the query of a response seen at `ts_ns`; on a match, forgets
    /// the query and returns `ts_ns − query ts` (negative only if capture
    /// timestamps run backwards). `qname`/`qtype` are the response's first
    /// question (empty/0 if it has none, which matches on the key alone).
    pub fn on_response(
        &mut self,
        key: &MatchKey,
        qname: &str,
        qtype: u16,
        ts_ns: i64,
    ) -> Option<i64> {
        self.expire(ts_ns);
        let Some(p) = self.pending.get(key) else {
            self.stats.unmatched_responses += 1;
            return None;
        };
        let no_question = qname.is_empty() && qtype == 0;
        if !no_question && p.question != question_hash(qname, qtype) {
            self.stats.question_mismatch += 1;
            return None;
        }
        let ts = p.ts;
        self.pending.remove(key);
        self.stats.matched += 1;
        Some(ts_ns.saturating_sub(ts))
    }

    /// Forgets queries older than the timeout as of `now_ns`; returns how
    /// many. Called by `on_query`/`on_response`.
    pub fn expire(&mut self, now_ns: i64) -> usize {
        let mut n = 0;
        while let Some(&(generation, key)) = self.order.front() {
            match self.pending.get(&key) {
                Some(p) if p.generation == generation => {
                    if p.ts.saturating_add(self.cfg.timeout_ns) > now_ns {
                        break;
                    }
                    self.pending.remove(&key);
                    n += 1;
                }
                // Stale: already matched, or the key was re-used later.
                _ => {}
            }
            self.order.pop_front();
        }
        self.stats.expired += n as u64;
        n
    }

    /// Pending queries.
    pub fn len(&self) -> usize {
        self.pending.len()
    }

    /// No pending query.
    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// Counters so far.
    pub fn stats(&self) -> MatchStats {
        self.stats
    }

    #[cfg(test)]
    pub(super) fn queue_len(&self) -> usize {
        self.order.len()
    }
}

/// FNV-1a over the ASCII-lower-cased name and the type. Case-folded because
/// resolvers randomise query case (DNS 0x20) and some servers do not echo it
/// exactly; not cryptographic, since the key already has to match.
fn question_hash(qname: &str, qtype: u16) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |b: u8| {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    };
    qname.bytes().for_each(|b| eat(b.to_ascii_lowercase()));
    qtype.to_be_bytes().into_iter().for_each(eat);
    h
}

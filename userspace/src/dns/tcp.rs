//! DNS over TCP: RFC 1035 §4.2.2 (and RFC 7766) frames each message with a
//! two-byte length. A segment may carry several messages, or part of one.
//!
//! [`TcpDnsStream`] reassembles one direction of one connection from
//! in-order segments. It is deliberately not a general TCP reassembler:
//! retransmitted bytes are dropped by sequence number, but a hole (lost or
//! reordered segment) ends the stream, because message boundaries after a
//! hole cannot be found again and guessing would produce garbage records.
//! Such cases are reported as a [`TcpDnsSkip`] so callers can count them.
//!
//! [`TcpDnsReassembler`] keys streams by whatever the caller uses (normally
//! the directional 5-tuple) and bounds their number, evicting the least
//! recently used stream when full and expiring idle ones by packet time.

use hashbrown::HashMap;
use std::collections::BTreeMap;
use std::hash::Hash;

/// Why a segment contributed nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum TcpDnsSkip {
    /// Every byte was already seen (a retransmission or duplicate).
    #[error("segment holds only already-seen bytes")]
    Retransmission,
    /// The segment starts after the next expected byte: data is missing
    /// (loss, reordering, or capture started mid-stream). The stream is
    /// abandoned until a new SYN.
    #[error("gap in the stream; stream abandoned")]
    Gap,
    /// A length prefix smaller than a DNS header: the stream is not aligned
    /// on message boundaries (or is not DNS). The stream is abandoned.
    #[error("length prefix shorter than a DNS header; stream abandoned")]
    BadLength,
    /// The stream was abandoned earlier; its later segments are ignored.
    #[error("stream was abandoned earlier")]
    Abandoned,
}

impl TcpDnsSkip {
    /// All reasons, in counter order.
    pub const ALL: [TcpDnsSkip; 4] = [
        TcpDnsSkip::Retransmission,
        TcpDnsSkip::Gap,
        TcpDnsSkip::BadLength,
        TcpDnsSkip::Abandoned,
    ];

    /// A short, stable name for counters and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            TcpDnsSkip::Retransmission => "retransmission",
            TcpDnsSkip::Gap => "gap",
            TcpDnsSkip::BadLength => "bad_length",
            TcpDnsSkip::Abandoned => "abandoned",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Smallest sensible message: a bare header.
const MIN_MESSAGE: usize = super::HEADER_LEN;

/// One direction of one TCP connection.
///
/// Buffered data is at most one incomplete message plus its prefix
/// (65 537 bytes), because the length prefix cannot announce more; complete
/// messages are handed out and dropped at the next [`push`](Self::push).
#[derive(Debug, Clone, Default)]
pub struct TcpDnsStream {
    /// Sequence number of the next byte expected; `None` until the first
    /// SYN or data segment.
    next_seq: Option<u32>,
    /// Bytes not yet handed out, starting at a length prefix.
    buf: Vec<u8>,
    /// Prefix of `buf` handed out by the last push (dropped at the next one,
    /// so the returned slices can borrow `buf`).
    consumed: usize,
    /// Set once the stream was abandoned.
    abandoned: Option<TcpDnsSkip>,
    /// Packet time of the last segment.
    last_ts: i64,
}

impl TcpDnsStream {
    /// A stream whose first data segment is assumed to start at a message
    /// boundary (true when the capture saw the connection start).
    pub fn new() -> Self {
        Self::default()
    }

    /// Records a SYN with sequence number `seq`: data starts at `seq + 1`.
    /// Also restarts an abandoned stream (a new connection on the same tuple).
    pub fn syn(&mut self, seq: u32) {
        *self = TcpDnsStream {
            next_seq: Some(seq.wrapping_add(1)),
            last_ts: self.last_ts,
            ..Self::default()
        };
    }

    /// Feeds one segment: `seq` is the sequence number of `payload[0]`.
    /// Returns the messages it completed (without their length prefixes), or
    /// why the segment was skipped. A segment may complete several messages
    /// and still leave a partial one buffered.
    pub fn push(
        &mut self,
        seq: u32,
        payload: &[u8],
        ts_ns: i64,
    ) -> Result<TcpDnsMessages<'_>, TcpDnsSkip> {
        self.buf.drain(..self.consumed);
        self.consumed = 0;
        self.last_ts = ts_ns;
        if self.abandoned.is_some() {
            return Err(TcpDnsSkip::Abandoned);
        }
        if payload.is_empty() {
            return Ok(TcpDnsMessages::EMPTY);
        }
        let new = match self.next_seq {
            None => payload,
            Some(next) => {
                // Serial-number arithmetic (RFC 1982 style) so wrap-around works.
                let ahead = seq.wrapping_sub(next) as i32;
                if ahead > 0 {
                    self.abandon(TcpDnsSkip::Gap);
                    return Err(TcpDnsSkip::Gap);
                }
                let behind = next.wrapping_sub(seq) as usize;
                if behind >= payload.len() {
                    return Err(TcpDnsSkip::Retransmission);
                }
                // Partial overlap (a retransmission that also carries new
                // bytes): keep only the new part. The overlapping bytes are
                // not compared; the first copy wins, as in most stacks.
                &payload[behind..]
            }
        };
        self.next_seq = Some(seq.wrapping_add(payload.len() as u32));
        self.buf.extend_from_slice(new);

        // Find the complete messages; they stay in `buf` until the next push.
        let mut pos = 0;
        let mut count = 0;
        while let Some(p) = self.buf.get(pos..pos + 2) {
            let len = usize::from(u16::from_be_bytes([p[0], p[1]]));
            if len < MIN_MESSAGE {
                self.abandoned = Some(TcpDnsSkip::BadLength);
                break;
            }
            if self.buf.len() - pos - 2 < len {
                break;
            }
            pos += 2 + len;
            count += 1;
        }
        self.consumed = pos;
        if self.abandoned.is_some() {
            // Keep the complete messages found before the bad prefix, drop the rest.
            self.buf.truncate(pos);
        }
        Ok(TcpDnsMessages {
            buf: &self.buf[..pos],
            remaining: count,
            abandoned: self.abandoned,
        })
    }

    /// Bytes buffered for an incomplete message.
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.consumed
    }

    /// Why the stream was abandoned, if it was.
    pub fn abandoned(&self) -> Option<TcpDnsSkip> {
        self.abandoned
    }

    /// Packet time of the last segment pushed.
    pub fn last_ts(&self) -> i64 {
        self.last_ts
    }

    fn abandon(&mut self, why: TcpDnsSkip) {
        self.abandoned = Some(why);
        self.buf = Vec::new();
        self.consumed = 0;
    }
}

/// The messages completed by one segment, in stream order, each without its
/// length prefix.
#[derive(Debug, Clone)]
pub struct TcpDnsMessages<'a> {
    buf: &'a [u8],
    remaining: usize,
    abandoned: Option<TcpDnsSkip>,
}

impl TcpDnsMessages<'_> {
    const EMPTY: TcpDnsMessages<'static> = TcpDnsMessages {
        buf: &[],
        remaining: 0,
        abandoned: None,
    };

    /// Set if the stream was abandoned while reading this segment (after
    /// the messages yielded here): the reason, [`TcpDnsSkip::BadLength`].
    pub fn abandoned(&self) -> Option<TcpDnsSkip> {
        self.abandoned
    }
}

impl<'a> Iterator for TcpDnsMessages<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        let [hi, lo, rest @ ..] = self.buf else {
            return None;
        };
        let len = usize::from(u16::from_be_bytes([*hi, *lo]));
        // push() only hands out complete messages, so this split is in bounds;
        // `get` keeps it panic-free regardless.
        let msg = rest.get(..len)?;
        self.buf = &rest[len..];
        self.remaining -= 1;
        Some(msg)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.remaining, Some(self.remaining))
    }
}

impl ExactSizeIterator for TcpDnsMessages<'_> {}

/// Bounds of a [`TcpDnsReassembler`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpDnsConfig {
    /// Streams tracked at most; the least recently used is evicted beyond.
    /// Each holds at most ~64 KiB, so this also bounds memory.
    pub max_streams: usize,
    /// A stream without segments for this long (packet time) is dropped.
    pub idle_timeout_ns: i64,
}

impl Default for TcpDnsConfig {
    /// 4096 streams (≤ 256 MiB in the worst case, typically a few KiB each);
    /// the flow idle timeout (`OSPREY_FLOW_IDLE_TIMEOUT_SECS`) as idle timeout.
    fn default() -> Self {
        TcpDnsConfig {
            max_streams: 4096,
            idle_timeout_ns: osprey_ebpf::consts::FLOW_IDLE_TIMEOUT_SECS as i64 * 1_000_000_000,
        }
    }
}

/// Counters of a [`TcpDnsReassembler`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TcpDnsStats {
    /// Messages yielded.
    pub messages: u64,
    /// Segments skipped, indexed like [`TcpDnsSkip::ALL`] (use [`Self::skipped`]).
    pub skipped_by_reason: [u64; TcpDnsSkip::ALL.len()],
    /// Streams dropped to stay within `max_streams`.
    pub streams_evicted: u64,
    /// Streams dropped after `idle_timeout_ns` without segments.
    pub streams_expired: u64,
}

impl TcpDnsStats {
    /// Count for one skip reason.
    pub fn skipped(&self, why: TcpDnsSkip) -> u64 {
        self.skipped_by_reason[why.index()]
    }
}

#[derive(Debug)]
struct Slot {
    stream: TcpDnsStream,
    /// Position in the LRU order.
    tick: u64,
}

/// DNS-over-TCP streams keyed by `K` (normally the directional 5-tuple:
/// each direction of a connection is its own stream).
#[derive(Debug)]
pub struct TcpDnsReassembler<K> {
    streams: HashMap<K, Slot>,
    /// LRU order: tick of the last use → key. Ticks are unique and increasing.
    lru: BTreeMap<u64, K>,
    tick: u64,
    cfg: TcpDnsConfig,
    stats: TcpDnsStats,
}

impl<K: Hash + Eq + Clone> TcpDnsReassembler<K> {
    /// An empty reassembler.
    pub fn new(cfg: TcpDnsConfig) -> Self {
        TcpDnsReassembler {
            streams: HashMap::new(),
            lru: BTreeMap::new(),
            tick: 0,
            cfg,
            stats: TcpDnsStats::default(),
        }
    }

    /// Records a SYN for the stream `key` (data starts at `seq + 1`),
    /// creating or restarting it.
    pub fn syn(&mut self, key: K, seq: u32, ts_ns: i64) {
        self.expire(ts_ns);
        self.slot(key).stream.syn(seq);
    }

    /// Feeds one segment of stream `key`; see [`TcpDnsStream::push`].
    /// Segments without payload are accepted and create no state.
    pub fn push(
        &mut self,
        key: K,
        seq: u32,
        payload: &[u8],
        ts_ns: i64,
    ) -> Result<TcpDnsMessages<'_>, TcpDnsSkip> {
        self.expire(ts_ns);
        if payload.is_empty() && !self.streams.contains_key(&key) {
            return Ok(TcpDnsMessages::EMPTY);
        }
        let stats = &mut self.stats;
        let cfg = self.cfg;
        let slot = Self::slot_in(
            &mut self.streams,
            &mut self.lru,
            &mut self.tick,
            stats,
            cfg,
            key,
        );
        let res = slot.stream.push(seq, payload, ts_ns);
        match &res {
            Ok(msgs) => {
                stats.messages += msgs.len() as u64;
                if let Some(why) = msgs.abandoned() {
                    stats.skipped_by_reason[why.index()] += 1;
                }
            }
            Err(why) => stats.skipped_by_reason[why.index()] += 1,
        }
        res
    }

    /// Forgets stream `key` (after FIN or RST). Returns whether it existed.
    pub fn remove(&mut self, key: &K) -> bool {
        match self.streams.remove(key) {
            Some(slot) => {
                self.lru.remove(&slot.tick);
                true
            }
            None => false,
        }
    }

    /// Drops streams idle for `idle_timeout_ns` as of packet time `now_ns`;
    /// returns how many. Called by `push`/`syn`; call it yourself when
    /// packets stop arriving. Streams are visited in least-recently-used
    /// order and the walk stops at the first live one, so a stream whose
    /// timestamps went backwards may outlive its timeout a little.
    pub fn expire(&mut self, now_ns: i64) -> usize {
        let mut n = 0;
        while let Some((&tick, key)) = self.lru.first_key_value() {
            let expired = self.streams.get(key).is_none_or(|s| {
                s.stream.last_ts().saturating_add(self.cfg.idle_timeout_ns) <= now_ns
            });
            if !expired {
                break;
            }
            if let Some(key) = self.lru.remove(&tick) {
                self.streams.remove(&key);
            }
            n += 1;
        }
        self.stats.streams_expired += n as u64;
        n
    }

    /// Streams tracked.
    pub fn len(&self) -> usize {
        self.streams.len()
    }

    /// No stream tracked.
    pub fn is_empty(&self) -> bool {
        self.streams.is_empty()
    }

    /// The stream for `key`, if tracked.
    pub fn get(&self, key: &K) -> Option<&TcpDnsStream> {
        self.streams.get(key).map(|s| &s.stream)
    }

    /// Counters so far.
    pub fn stats(&self) -> TcpDnsStats {
        self.stats
    }

    fn slot(&mut self, key: K) -> &mut Slot {
        Self::slot_in(
            &mut self.streams,
            &mut self.lru,
            &mut self.tick,
            &mut self.stats,
            self.cfg,
            key,
        )
    }

    /// Finds or creates the slot for `key` and marks it most recently used.
    /// (Split borrows: the caller keeps using `stats` while holding the slot.)
    fn slot_in<'a>(
        streams: &'a mut HashMap<K, Slot>,
        lru: &mut BTreeMap<u64, K>,
        tick: &mut u64,
        stats: &mut TcpDnsStats,
        cfg: TcpDnsConfig,
        key: K,
    ) -> &'a mut Slot {
        *tick += 1;
        let t = *tick;
        if !streams.contains_key(&key) {
            while streams.len() >= cfg.max_streams.max(1) {
                let Some((_, old)) = lru.pop_first() else {
                    break;
                };
                streams.remove(&old);
                stats.streams_evicted += 1;
            }
        }
        lru.insert(t, key.clone());
        match streams.entry(key) {
            hashbrown::hash_map::Entry::Occupied(e) => {
                let slot = e.into_mut();
                lru.remove(&slot.tick);
                slot.tick = t;
                slot
            }
            hashbrown::hash_map::Entry::Vacant(v) => v.insert(Slot {
                stream: TcpDnsStream::new(),
                tick: t,
            }),
        }
    }
}

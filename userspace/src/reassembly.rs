//! IP fragment reassembly, for the one use that needs it: DNS messages
//! larger than the path MTU (big DNSSEC or TXT responses over UDP).
//!
//! Flow accounting does not reassemble (see `docs/flow-semantics.md`: the
//! kernel cannot, so neither does offline ingest); this only rebuilds
//! fragmented datagrams so their DNS payload can be decoded. It is bounded in
//! every direction, because fragments are a classic resource-exhaustion vector:
//! at most `max_datagrams` datagrams in progress (the oldest is dropped beyond),
//! at most 65 535 bytes each, and a datagram not completed within `timeout_ns`
//! of packet time is dropped. Overlapping fragments whose bytes disagree make
//! the datagram invalid (the evasion case RFC 5722 forbids for IPv6); exact
//! duplicates are accepted.

use hashbrown::HashMap;
use std::collections::VecDeque;

/// Largest datagram payload (IP payload after the fragmentable part).
const MAX_DATAGRAM: u32 = 65_535;

/// Identifies one fragmented datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FragmentKey {
    /// Source address (16 bytes, IPv4-mapped for IPv4).
    pub src: [u8; 16],
    /// Destination address.
    pub dst: [u8; 16],
    /// Upper-layer protocol.
    pub proto: u8,
    /// IPv4 Identification or IPv6 fragment id.
    pub id: u32,
}

/// Bounds of a [`Reassembler`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReassemblyConfig {
    /// Datagrams in progress at most.
    pub max_datagrams: usize,
    /// Drop a datagram not completed within this long (packet time).
    pub timeout_ns: i64,
}

impl Default for ReassemblyConfig {
    /// 256 datagrams (≤ 16 MiB), 30 s (the usual IPv4 reassembly timeout).
    fn default() -> Self {
        ReassemblyConfig { max_datagrams: 256, timeout_ns: 30_000_000_000 }
    }
}

/// Counters of a [`Reassembler`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReassemblyStats {
    /// Datagrams completed.
    pub completed: u64,
    /// Datagrams dropped after the timeout.
    pub timed_out: u64,
    /// Datagrams dropped to stay within `max_datagrams`.
    pub evicted: u64,
    /// Datagrams dropped for conflicting overlaps or impossible lengths.
    pub invalid: u64,
}

#[derive(Debug)]
struct Pending {
    first_ts: i64,
    /// Reassembled bytes so far, grown as fragments arrive.
    data: Vec<u8>,
    /// Which bytes of `data` are filled: sorted, non-overlapping ranges.
    filled: Vec<(u32, u32)>,
    /// Total length, known once the last fragment (more = false) arrived.
    total: Option<u32>,
    invalid: bool,
}

/// Rebuilds fragmented datagrams.
#[derive(Debug, Default)]
pub struct Reassembler {
    cfg: ReassemblyConfig,
    pending: HashMap<FragmentKey, Pending>,
    /// Arrival order of datagrams, for eviction and expiry.
    order: VecDeque<(i64, FragmentKey)>,
    stats: ReassemblyStats,
}

impl Reassembler {
    /// An empty reassembler.
    pub fn new(cfg: ReassemblyConfig) -> Self {
        Reassembler { cfg, ..Reassembler::default() }
    }

    /// Counters so far.
    pub fn stats(&self) -> ReassemblyStats {
        self.stats
    }

    /// Datagrams in progress.
    pub fn len(&self) -> usize {
        self.pending.len()
    }

    /// Whether nothing is in progress.
    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// Adds one fragment: `data` is its part of the datagram (starting with
    /// the transport header for the first fragment), `offset` its position in
    /// bytes. Returns the whole datagram payload when this fragment completes it.
    pub fn push(&mut self, key: FragmentKey, offset: u32, more: bool, data: &[u8], ts_ns: i64) -> Option<Vec<u8>> {
        self.expire(ts_ns);
        let Ok(len) = u32::try_from(data.len()) else {
            self.stats.invalid += 1;
            return None;
        };
        let end = offset.checked_add(len).filter(|e| *e <= MAX_DATAGRAM);
        if !self.pending.contains_key(&key) {
            while self.pending.len() >= self.cfg.max_datagrams.max(1) {
                let Some((_, old)) = self.order.pop_front() else { break };
                if self.pending.remove(&old).is_some() {
                    self.stats.evicted += 1;
                }
            }
            self.pending.insert(key, Pending { first_ts: ts_ns, data: Vec::new(), filled: Vec::new(), total: None, invalid: false });
            self.order.push_back((ts_ns, key));
        }
        let p = self.pending.get_mut(&key).expect("inserted above");
        match end {
            Some(end) => add_fragment(p, offset, end, more, data),
            None => p.invalid = true,
        }
        if p.invalid {
            self.pending.remove(&key);
            self.stats.invalid += 1;
            return None;
        }
        let total = p.total?;
        if p.filled.as_slice() != [(0, total)] {
            return None;
        }
        let done = self.pending.remove(&key).expect("present");
        self.stats.completed += 1;
        let mut data = done.data;
        data.truncate(total as usize);
        Some(data)
    }

    /// Drops datagrams older than the timeout at packet time `now_ns`.
    pub fn expire(&mut self, now_ns: i64) {
        while let Some(&(ts, key)) = self.order.front() {
            if now_ns - ts <= self.cfg.timeout_ns {
                break;
            }
            self.order.pop_front();
            // The entry may be a newer datagram reusing the key; only drop
            // the one this order entry stands for.
            if self.pending.get(&key).is_some_and(|p| p.first_ts == ts) {
                self.pending.remove(&key);
                self.stats.timed_out += 1;
            }
        }
    }
}

fn add_fragment(p: &mut Pending, offset: u32, end: u32, more: bool, data: &[u8]) {
    if !more {
        if p.total.is_some_and(|t| t != end) || p.filled.last().is_some_and(|&(_, e)| e > end) {
            p.invalid = true;
            return;
        }
        p.total = Some(end);
    } else if p.total.is_some_and(|t| end > t) || !(end - offset).is_multiple_of(8) {
        // Non-last fragments carry multiples of 8 bytes, inside the total.
        p.invalid = true;
        return;
    }
    if p.data.len() < end as usize {
        p.data.resize(end as usize, 0);
    }
    // Overlap with filled ranges must carry the same bytes.
    for &(s, e) in &p.filled {
        let (lo, hi) = (s.max(offset), e.min(end));
        if lo < hi && p.data[lo as usize..hi as usize] != data[(lo - offset) as usize..(hi - offset) as usize] {
            p.invalid = true;
            return;
        }
    }
    p.data[offset as usize..end as usize].copy_from_slice(data);
    p.filled.push((offset, end));
    p.filled.sort_unstable();
    let mut merged: Vec<(u32, u32)> = Vec::with_capacity(p.filled.len());
    for &(s, e) in &p.filled {
        match merged.last_mut() {
            Some(last) if s <= last.1 => last.1 = last.1.max(e),
            _ => merged.push((s, e)),
        }
    }
    p.filled = merged;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(id: u32) -> FragmentKey {
        FragmentKey { src: [1; 16], dst: [2; 16], proto: 17, id }
    }

    fn datagram(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i * 7 % 251) as u8).collect()
    }

    #[test]
    fn in_order_and_out_of_order_fragments_complete() {
        let d = datagram(3000);
        for order in [[0usize, 1, 2], [2, 0, 1], [1, 2, 0]] {
            let mut r = Reassembler::new(ReassemblyConfig::default());
            let parts = [(0u32, &d[..1480]), (1480, &d[1480..2960]), (2960, &d[2960..])];
            let mut out = None;
            for (k, &i) in order.iter().enumerate() {
                let (off, data) = parts[i];
                let got = r.push(key(1), off, i != 2, data, k as i64);
                if k < 2 {
                    assert!(got.is_none());
                } else {
                    out = got;
                }
            }
            assert_eq!(out.as_deref(), Some(&d[..]), "order {order:?}");
            assert!(r.is_empty());
        }
    }

    #[test]
    fn duplicates_are_fine_conflicting_overlaps_are_not() {
        let d = datagram(2000);
        let mut r = Reassembler::new(ReassemblyConfig::default());
        assert!(r.push(key(1), 0, true, &d[..1000], 0).is_none());
        assert!(r.push(key(1), 0, true, &d[..1000], 1).is_none());
        assert_eq!(r.push(key(1), 1000, false, &d[1000..], 2).as_deref(), Some(&d[..]));

        let mut bad = d[992..].to_vec();
        bad[0] ^= 1;
        assert!(r.push(key(2), 0, true, &d[..1000], 0).is_none());
        assert!(r.push(key(2), 992, false, &bad, 1).is_none());
        assert_eq!(r.stats().invalid, 1);
        assert!(r.is_empty());
    }

    #[test]
    fn bounds_hold() {
        let mut r = Reassembler::new(ReassemblyConfig { max_datagrams: 2, timeout_ns: 10 });
        let d = datagram(16);
        r.push(key(1), 0, true, &d[..8], 0);
        r.push(key(2), 0, true, &d[..8], 1);
        r.push(key(3), 0, true, &d[..8], 2);
        assert_eq!((r.len(), r.stats().evicted), (2, 1));
        r.expire(100);
        assert_eq!((r.len(), r.stats().timed_out), (0, 2));
        // Beyond 64 KiB, or a non-last fragment that is not a multiple of 8.
        assert!(r.push(key(4), 65_530, false, &d, 0).is_none());
        assert!(r.push(key(5), 0, true, &d[..7], 0).is_none());
        assert_eq!(r.stats().invalid, 2);
        // A last fragment ending before data already seen.
        r.push(key(6), 8, true, &d[..8], 0);
        assert!(r.push(key(6), 0, false, &d[..4], 0).is_none());
        assert_eq!(r.stats().invalid, 3);
    }
}

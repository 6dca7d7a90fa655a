//! The offline flow table: turns packets into bidirectional flow records with
//! the semantics written down in `docs/flow-semantics.md` (key, direction,
//! timeouts, end reasons). The kernel programs implement the same rules; the
//! constants come from the shared header through `osprey_ebpf::consts`.
//!
//! Time is the packet clock (the largest timestamp seen so far), so reading a
//! capture yields the same records however fast it is read. Every expiry rule
//! is checked both lazily, when a packet for the flow arrives, and by a sweep
//! every `sweep_interval_secs` of packet time, so the result does not depend on
//! when the sweep happens to run.
//!
//! The sweep does not scan the table: each flow has an entry in a min-heap of
//! *check times*, the earliest moment its expiry could hold given its state
//! when the entry was made. A sweep pops only the due entries; a flow that
//! got packets since is pushed again with its new check time. A flow starting
//! to close gets an extra, earlier entry (its linger deadline). The result is
//! what a full scan at the same ticks would give, at a cost that follows the
//! flows due rather than the table size (a full scan every second of packet
//! time was a third of ingest time on a day-long capture).

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;

use hashbrown::HashMap;
use osprey_ebpf::{FlowKey, consts};
use osprey_segment::schema::ip_from_bytes;
use osprey_segment::{EndReason, FlowRecord};

const NS: i64 = 1_000_000_000;
const TCP: u8 = 6;
const UDP: u8 = 17;
const ICMP: u8 = 1;
const ICMPV6: u8 = 58;
const SCTP: u8 = 132;
const UDPLITE: u8 = 136;

const FIN: u8 = consts::TCP_FIN as u8;
const SYN: u8 = consts::TCP_SYN as u8;
const RST: u8 = consts::TCP_RST as u8;
const ACK: u8 = consts::TCP_ACK as u8;

/// Flow-table settings. Defaults come from `ebpf/include/osprey_kern_user.h`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowConfig {
    /// End a flow after this long without a packet.
    pub idle_timeout_secs: u64,
    /// End (and continue in a new record) a flow older than this.
    pub active_timeout_secs: u64,
    /// After RST or FIN both ways, keep counting late packets this long.
    pub tcp_linger_secs: u64,
    /// How often (packet time) the whole table is checked for expiry.
    pub sweep_interval_secs: u64,
    /// Capacity; packets that would create a flow beyond it are counted, not accounted.
    pub max_flows: usize,
}

impl Default for FlowConfig {
    fn default() -> Self {
        FlowConfig {
            idle_timeout_secs: consts::FLOW_IDLE_TIMEOUT_SECS,
            active_timeout_secs: consts::FLOW_ACTIVE_TIMEOUT_SECS,
            tcp_linger_secs: consts::FLOW_TCP_LINGER_SECS,
            sweep_interval_secs: consts::FLOW_SWEEP_INTERVAL_SECS,
            max_flows: 1 << 20,
        }
    }
}

/// What the flow table needs to know about one packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlowPacket {
    /// Capture time, ns since the epoch.
    pub ts_ns: i64,
    /// Outermost VLAN id (0 untagged).
    pub vlan: u16,
    /// Source address, 16 bytes (IPv4-mapped for IPv4).
    pub src: [u8; 16],
    /// Destination address, 16 bytes.
    pub dst: [u8; 16],
    /// IP protocol.
    pub proto: u8,
    /// Source port (0 without ports).
    pub src_port: u16,
    /// Destination port, or ICMP `type << 8 | code`.
    pub dst_port: u16,
    /// IP-layer length.
    pub ip_len: u32,
    /// TCP flags (0 if not TCP).
    pub tcp_flags: u8,
}

impl FlowPacket {
    /// The flow-relevant part of a decoded packet captured at `ts_ns`.
    pub fn from_meta(ts_ns: i64, m: &crate::packet::PacketMeta<'_>) -> Self {
        FlowPacket {
            ts_ns,
            vlan: m.vlan,
            src: m.src,
            dst: m.dst,
            proto: m.proto,
            src_port: m.src_port,
            dst_port: m.dst_port,
            ip_len: m.ip_len,
            tcp_flags: m.tcp_flags,
        }
    }
}

/// The state of one flow under its canonical key (the shared header's
/// `osprey_flow_key`: endpoint `a` is the smaller `(address, port)`). The
/// kernel path merges its per-CPU slots into this same state, so expiry and
/// the conversion to a record are written once, here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlowState {
    /// First packet, ns.
    pub ts_start: i64,
    /// Last packet, ns.
    pub ts_end: i64,
    /// When the flow started closing (RST or second FIN); 0 = open.
    pub close_ts: i64,
    /// `Rst` or `Fin`, meaningful when `close_ts != 0`.
    pub close_reason: EndReason,
    /// Whether endpoint `a` of the key is the initiator.
    pub a_initiated: bool,
    /// ICMP type/code of the first packet (reported as `dst_port`).
    pub icmp_type_code: u16,
    /// Packets; index 0: initiator → responder, 1: reverse.
    pub packets: [u64; 2],
    /// IP-layer bytes, same indexing.
    pub bytes: [u64; 2],
    /// OR of TCP flags, same indexing.
    pub flags: [u8; 2],
    /// FIN seen, same indexing.
    pub fin_seen: [bool; 2],
}

impl FlowState {
    /// The earliest time at which [`FlowState::expiry`] can hold for this
    /// state (each rule's boundary: idle and linger are strict, active is not).
    pub fn next_check(&self, idle_ns: i64, active_ns: i64, linger_ns: i64) -> i64 {
        let mut t = self.ts_end.saturating_add(idle_ns).saturating_add(1).min(self.ts_start.saturating_add(active_ns));
        if self.close_ts != 0 {
            t = t.min(self.close_ts.saturating_add(linger_ns).saturating_add(1));
        }
        t
    }

    /// Why the flow ends at `now` with these timeouts (ns), if it does: the
    /// sweep's rules in their order (`docs/flow-semantics.md`).
    pub fn expiry(&self, now: i64, idle_ns: i64, active_ns: i64, linger_ns: i64) -> Option<EndReason> {
        if self.close_ts != 0 && now - self.close_ts > linger_ns {
            Some(self.close_reason)
        } else if now - self.ts_end > idle_ns {
            Some(EndReason::Idle)
        } else if now - self.ts_start >= active_ns {
            Some(EndReason::Active)
        } else {
            None
        }
    }

    /// The flow record, `src` being the initiator.
    pub fn to_record(&self, k: &FlowKey, reason: EndReason) -> FlowRecord {
        let (src, sport, dst, dport) = if self.a_initiated {
            (k.a, k.a_port, k.b, k.b_port)
        } else {
            (k.b, k.b_port, k.a, k.a_port)
        };
        let dport = if matches!(k.proto, ICMP | ICMPV6) { self.icmp_type_code } else { dport };
        FlowRecord {
            ts_start: self.ts_start,
            ts_end: self.ts_end,
            proto: k.proto,
            src_ip: ip_from_bytes(&src),
            src_port: sport,
            dst_ip: ip_from_bytes(&dst),
            dst_port: dport,
            vlan: k.vlan,
            packets: self.packets[0],
            bytes: self.bytes[0],
            rev_packets: self.packets[1],
            rev_bytes: self.bytes[1],
            tcp_flags: self.flags[0],
            rev_tcp_flags: self.flags[1],
            end_reason: reason,
        }
    }
}

/// Counters of the flow table.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FlowStats {
    /// Flows created.
    pub flows_created: u64,
    /// Flow records emitted.
    pub flows_ended: u64,
    /// Packets not accounted because the table was full.
    pub table_full_packets: u64,
    /// Largest number of flows held at once.
    pub peak_flows: u64,
}

/// When to look at a flow again: its check time, and its start to recognise
/// an entry left over from an earlier flow under the same key.
#[derive(Debug, Clone, Copy)]
struct Check {
    at: i64,
    ts_start: i64,
    key: FlowKey,
}

impl PartialEq for Check {
    fn eq(&self, o: &Self) -> bool {
        (self.at, self.ts_start) == (o.at, o.ts_start)
    }
}
impl Eq for Check {}
impl PartialOrd for Check {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Check {
    fn cmp(&self, o: &Self) -> Ordering {
        (self.at, self.ts_start).cmp(&(o.at, o.ts_start))
    }
}

/// The flow table.
#[derive(Debug)]
pub struct FlowTable {
    cfg: FlowConfig,
    idle_ns: i64,
    active_ns: i64,
    linger_ns: i64,
    sweep_ns: i64,
    flows: HashMap<FlowKey, FlowState>,
    checks: BinaryHeap<Reverse<Check>>,
    /// Tests: sweep by scanning every flow (the reference the heap must match).
    #[cfg(test)]
    full_scan: bool,
    clock: i64,
    next_sweep: i64,
    ended: Vec<FlowRecord>,
    stats: FlowStats,
}

fn has_ports(proto: u8) -> bool {
    matches!(proto, TCP | UDP | SCTP | UDPLITE)
}

fn secs(s: u64) -> i64 {
    i64::try_from(s).unwrap_or(i64::MAX / NS).saturating_mul(NS)
}

impl FlowTable {
    /// An empty table.
    pub fn new(cfg: FlowConfig) -> Self {
        FlowTable {
            idle_ns: secs(cfg.idle_timeout_secs),
            active_ns: secs(cfg.active_timeout_secs),
            linger_ns: secs(cfg.tcp_linger_secs),
            sweep_ns: secs(cfg.sweep_interval_secs.max(1)),
            flows: HashMap::with_capacity(cfg.max_flows.min(1 << 16)),
            checks: BinaryHeap::new(),
            #[cfg(test)]
            full_scan: false,
            cfg,
            clock: i64::MIN,
            next_sweep: i64::MIN,
            ended: Vec::new(),
            stats: FlowStats::default(),
        }
    }

    /// The settings.
    pub fn config(&self) -> &FlowConfig {
        &self.cfg
    }

    /// Counters so far.
    pub fn stats(&self) -> FlowStats {
        self.stats
    }

    /// Flows currently held.
    pub fn active_flows(&self) -> usize {
        self.flows.len()
    }

    /// The packet clock (largest timestamp seen), if any packet was seen.
    pub fn clock(&self) -> Option<i64> {
        (self.clock != i64::MIN).then_some(self.clock)
    }

    /// Accounts one packet. Ended flows accumulate until [`FlowTable::take_ended`].
    /// Returns false if the packet was not accounted because the table is full.
    pub fn observe(&mut self, p: &FlowPacket) -> bool {
        if p.ts_ns > self.clock {
            self.clock = p.ts_ns;
            if self.clock >= self.next_sweep {
                self.sweep(self.clock);
                self.next_sweep = self.clock.saturating_add(self.sweep_ns);
            }
        }
        let (sp, dp) = if has_ports(p.proto) { (p.src_port, p.dst_port) } else { (0, 0) };
        let src_is_a = (p.src, sp) <= (p.dst, dp);
        let key = if src_is_a {
            FlowKey { a: p.src, b: p.dst, a_port: sp, b_port: dp, vlan: p.vlan, proto: p.proto, pad: 0 }
        } else {
            FlowKey { a: p.dst, b: p.src, a_port: dp, b_port: sp, vlan: p.vlan, proto: p.proto, pad: 0 }
        };
        let flags = if p.proto == TCP { p.tcp_flags } else { 0 };
        let pure_syn = flags & (SYN | ACK) == SYN;
        let now = self.clock;
        if let Some(st) = self.flows.get_mut(&key) {
            // Lazy expiry: the same rules as the sweep, so results do not
            // depend on when the sweep last ran.
            let reason = if st.close_ts != 0 && (pure_syn || now - st.close_ts > self.linger_ns) {
                Some(st.close_reason)
            } else if now - st.ts_end > self.idle_ns {
                Some(EndReason::Idle)
            } else if p.ts_ns - st.ts_start >= self.active_ns {
                Some(EndReason::Active)
            } else {
                None
            };
            match reason {
                None => {
                    let was_open = st.close_ts == 0;
                    update(st, p, src_is_a, flags);
                    if was_open && st.close_ts != 0 {
                        let at = st.close_ts.saturating_add(self.linger_ns).saturating_add(1);
                        self.checks.push(Reverse(Check { at, ts_start: st.ts_start, key }));
                    }
                    return true;
                }
                Some(reason) => {
                    let old = *st;
                    self.ended.push(old.to_record(&key, reason));
                    self.stats.flows_ended += 1;
                    // An active-timeout continuation keeps the initiator.
                    let a_initiated = if reason == EndReason::Active { Some(old.a_initiated) } else { None };
                    let fresh = new_state(p, src_is_a, flags, a_initiated);
                    let st = self.flows.get_mut(&key).expect("present");
                    *st = fresh;
                    update(st, p, src_is_a, flags);
                    let check = Check { at: st.next_check(self.idle_ns, self.active_ns, self.linger_ns), ts_start: st.ts_start, key };
                    self.checks.push(Reverse(check));
                    self.stats.flows_created += 1;
                    return true;
                }
            }
        }
        if self.flows.len() >= self.cfg.max_flows {
            self.stats.table_full_packets += 1;
            return false;
        }
        let mut st = new_state(p, src_is_a, flags, None);
        update(&mut st, p, src_is_a, flags);
        let check = Check { at: st.next_check(self.idle_ns, self.active_ns, self.linger_ns), ts_start: st.ts_start, key };
        self.checks.push(Reverse(check));
        self.flows.insert(key, st);
        self.stats.flows_created += 1;
        self.stats.peak_flows = self.stats.peak_flows.max(self.flows.len() as u64);
        true
    }

    /// Ends every flow whose time is up at `now`: pops the due checks; a flow
    /// not yet expired (it got packets since) is checked again later.
    fn sweep(&mut self, now: i64) {
        let (idle, active, linger) = (self.idle_ns, self.active_ns, self.linger_ns);
        #[cfg(test)]
        if self.full_scan {
            let ended = &mut self.ended;
            let before = self.flows.len();
            self.flows.retain(|k, st| match st.expiry(now, idle, active, linger) {
                Some(r) => {
                    ended.push(st.to_record(k, r));
                    false
                }
                None => true,
            });
            self.stats.flows_ended += (before - self.flows.len()) as u64;
            return;
        }
        while let Some(Reverse(c)) = self.checks.peek().copied() {
            if c.at > now {
                break;
            }
            self.checks.pop();
            let Some(st) = self.flows.get(&c.key) else { continue };
            if st.ts_start != c.ts_start {
                continue; // an entry of an earlier flow under the same key
            }
            match st.expiry(now, idle, active, linger) {
                Some(r) => {
                    self.ended.push(st.to_record(&c.key, r));
                    self.stats.flows_ended += 1;
                    self.flows.remove(&c.key);
                }
                None => {
                    let at = st.next_check(idle, active, linger);
                    self.checks.push(Reverse(Check { at, ..c }));
                }
            }
        }
    }

    /// Moves the clock to `now_ns` without a packet (if it is later) and runs
    /// the sweep if one is due: on a quiet link, flows still end on time.
    pub fn advance(&mut self, now_ns: i64) {
        if now_ns > self.clock && self.clock != i64::MIN {
            self.clock = now_ns;
            if self.clock >= self.next_sweep {
                self.sweep(self.clock);
                self.next_sweep = self.clock.saturating_add(self.sweep_ns);
            }
        }
    }

    /// Moves out the flow records ended so far.
    pub fn take_ended(&mut self) -> std::vec::Drain<'_, FlowRecord> {
        self.ended.drain(..)
    }

    /// Number of ended records waiting in [`FlowTable::take_ended`].
    pub fn ended_len(&self) -> usize {
        self.ended.len()
    }

    /// Ends every open flow with reason `flush` (end of input) and resets the
    /// clock, so a following input may start at any time.
    pub fn flush(&mut self) {
        for (k, st) in self.flows.drain() {
            self.ended.push(st.to_record(&k, EndReason::Flush));
            self.stats.flows_ended += 1;
        }
        self.checks.clear();
        self.clock = i64::MIN;
        self.next_sweep = i64::MIN;
    }
}

fn new_state(p: &FlowPacket, src_is_a: bool, flags: u8, a_initiated: Option<bool>) -> FlowState {
    // A SYN+ACK that opens a flow is the responder's reply to a SYN we missed.
    let sender_initiates = !(p.proto == TCP && flags & (SYN | ACK) == (SYN | ACK));
    let icmp = matches!(p.proto, ICMP | ICMPV6);
    FlowState {
        ts_start: p.ts_ns,
        ts_end: p.ts_ns,
        close_ts: 0,
        close_reason: EndReason::Fin,
        a_initiated: a_initiated.unwrap_or(src_is_a == sender_initiates),
        icmp_type_code: if icmp { p.dst_port } else { 0 },
        packets: [0; 2],
        bytes: [0; 2],
        flags: [0; 2],
        fin_seen: [false; 2],
    }
}

fn update(st: &mut FlowState, p: &FlowPacket, src_is_a: bool, flags: u8) {
    let dir = usize::from(src_is_a != st.a_initiated);
    st.packets[dir] += 1;
    st.bytes[dir] += u64::from(p.ip_len);
    st.flags[dir] |= flags;
    st.ts_start = st.ts_start.min(p.ts_ns);
    st.ts_end = st.ts_end.max(p.ts_ns);
    if flags & FIN != 0 {
        st.fin_seen[dir] = true;
    }
    if st.close_ts == 0 {
        if flags & RST != 0 {
            st.close_ts = p.ts_ns;
            st.close_reason = EndReason::Rst;
        } else if st.fin_seen[0] && st.fin_seen[1] {
            st.close_ts = p.ts_ns;
            st.close_reason = EndReason::Fin;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{IpAddr, Ipv4Addr};

    const A: [u8; 4] = [198, 18, 0, 1];
    const B: [u8; 4] = [198, 18, 0, 2];

    fn v4(a: [u8; 4]) -> [u8; 16] {
        osprey_segment::schema::ip_to_bytes(IpAddr::V4(Ipv4Addr::from(a)))
    }

    fn tcp(ts_s: f64, from: [u8; 4], sp: u16, to: [u8; 4], dp: u16, flags: u8) -> FlowPacket {
        FlowPacket {
            ts_ns: (ts_s * 1e9) as i64,
            vlan: 0,
            src: v4(from),
            dst: v4(to),
            proto: TCP,
            src_port: sp,
            dst_port: dp,
            ip_len: 60,
            tcp_flags: flags,
        }
    }

    fn run(cfg: FlowConfig, pkts: &[FlowPacket]) -> (Vec<FlowRecord>, FlowStats) {
        let mut t = FlowTable::new(cfg);
        for p in pkts {
            t.observe(p);
        }
        t.flush();
        let recs = t.take_ended().collect();
        (recs, t.stats())
    }

    fn handshake_and_close(t0: f64) -> Vec<FlowPacket> {
        vec![
            tcp(t0, A, 40000, B, 443, SYN),
            tcp(t0 + 0.01, B, 443, A, 40000, SYN | ACK),
            tcp(t0 + 0.02, A, 40000, B, 443, ACK),
            tcp(t0 + 0.03, A, 40000, B, 443, ACK | 0x08),
            tcp(t0 + 0.04, B, 443, A, 40000, ACK | 0x08),
            tcp(t0 + 0.05, A, 40000, B, 443, FIN | ACK),
            tcp(t0 + 0.06, B, 443, A, 40000, FIN | ACK),
            tcp(t0 + 0.07, A, 40000, B, 443, ACK),
        ]
    }

    #[test]
    fn tcp_connection_is_one_bidirectional_flow_ending_fin() {
        let mut pkts = handshake_and_close(100.0);
        // Something later so the linger time passes on the packet clock.
        pkts.push(tcp(110.0, A, 1, B, 2, SYN));
        let (recs, _) = run(FlowConfig::default(), &pkts);
        let f = recs.iter().find(|r| r.dst_port == 443).expect("flow");
        assert_eq!(f.src_ip, IpAddr::V4(Ipv4Addr::from(A)));
        assert_eq!((f.src_port, f.dst_port), (40000, 443));
        assert_eq!((f.packets, f.rev_packets), (5, 3));
        assert_eq!((f.bytes, f.rev_bytes), (300, 180));
        assert_eq!(f.tcp_flags, SYN | ACK | FIN | 0x08);
        assert_eq!(f.rev_tcp_flags, SYN | ACK | FIN | 0x08);
        assert_eq!(f.end_reason, EndReason::Fin);
        assert_eq!((f.ts_start, f.ts_end), (100_000_000_000, 100_070_000_000));
    }

    #[test]
    fn synack_first_makes_its_destination_the_initiator() {
        let pkts = [tcp(1.0, B, 443, A, 40000, SYN | ACK), tcp(1.1, A, 40000, B, 443, ACK)];
        let (recs, _) = run(FlowConfig::default(), &pkts);
        assert_eq!(recs.len(), 1);
        assert_eq!(recs[0].src_ip, IpAddr::V4(Ipv4Addr::from(A)));
        assert_eq!((recs[0].packets, recs[0].rev_packets), (1, 1));
        assert_eq!(recs[0].end_reason, EndReason::Flush);
    }

    #[test]
    fn rst_ends_after_linger_and_new_syn_reuses_port() {
        let pkts = [
            tcp(1.0, A, 40000, B, 80, SYN),
            tcp(1.1, B, 80, A, 40000, RST | ACK),
            // Port reuse within the linger time: a new flow.
            tcp(1.5, A, 40000, B, 80, SYN),
            tcp(1.6, B, 80, A, 40000, SYN | ACK),
        ];
        let (recs, stats) = run(FlowConfig::default(), &pkts);
        assert_eq!(recs.len(), 2);
        assert_eq!(recs[0].end_reason, EndReason::Rst);
        assert_eq!((recs[0].packets, recs[0].rev_packets), (1, 1));
        assert_eq!(recs[1].end_reason, EndReason::Flush);
        assert_eq!((recs[1].packets, recs[1].rev_packets), (1, 1));
        assert_eq!(stats.flows_created, 2);
    }

    #[test]
    fn late_ack_within_linger_is_counted_in_the_closed_flow() {
        let mut pkts = handshake_and_close(0.0);
        pkts.push(tcp(1.5, B, 443, A, 40000, ACK)); // within 2 s linger
        pkts.push(tcp(5.0, B, 443, A, 40000, ACK)); // after linger: new flow
        let (recs, _) = run(FlowConfig::default(), &pkts);
        assert_eq!(recs.len(), 2, "{recs:?}");
        assert_eq!(recs[0].packets + recs[0].rev_packets, 9);
        assert_eq!(recs[0].end_reason, EndReason::Fin);
        assert_eq!(recs[1].packets + recs[1].rev_packets, 1);
    }

    #[test]
    fn idle_and_active_timeouts() {
        let cfg = FlowConfig { idle_timeout_secs: 10, active_timeout_secs: 30, ..FlowConfig::default() };
        let mut pkts = Vec::new();
        // Keep-alive every 5 s for 70 s: active timeout cuts it at 30 s and 60 s.
        for i in 0..15 {
            pkts.push(tcp(f64::from(i) * 5.0, A, 1000, B, 2000, ACK));
        }
        // Then silence of 11 s > idle, then one packet.
        pkts.push(tcp(70.0 + 11.0, A, 1000, B, 2000, ACK));
        let (recs, _) = run(cfg, &pkts);
        let reasons: Vec<EndReason> = recs.iter().map(|r| r.end_reason).collect();
        assert_eq!(reasons, [EndReason::Active, EndReason::Active, EndReason::Idle, EndReason::Flush]);
        let total: u64 = recs.iter().map(|r| r.packets).sum();
        assert_eq!(total, 16);
        assert!(recs.iter().all(|r| r.src_port == 1000), "continuations keep the initiator");
    }

    #[test]
    fn sweep_expires_flows_without_their_own_packets() {
        let cfg = FlowConfig { idle_timeout_secs: 10, ..FlowConfig::default() };
        let mut t = FlowTable::new(cfg);
        t.observe(&tcp(0.0, A, 1, B, 2, ACK));
        t.observe(&tcp(5.0, A, 3, B, 4, ACK));
        assert_eq!(t.take_ended().count(), 0);
        t.observe(&tcp(10.5, A, 3, B, 4, ACK));
        assert_eq!(t.take_ended().count(), 1, "first flow idle > 10 s");
        assert_eq!(t.active_flows(), 1);
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig { cases: 256, ..Default::default() })]

        /// The heap of check times gives exactly the records a scan of the
        /// whole table at every sweep tick gives.
        #[test]
        fn check_heap_matches_a_full_scan(
            pkts in proptest::collection::vec((0u64..4_000, 0u8..4, 0u8..4, proptest::bits::u8::masked(0x17)), 1..300),
            idle in 1u64..20, active in 5u64..60, linger in 0u64..5,
        ) {
            let cfg = FlowConfig { idle_timeout_secs: idle, active_timeout_secs: active, tcp_linger_secs: linger, ..FlowConfig::default() };
            let run = |full_scan: bool| {
                let mut t = FlowTable::new(cfg.clone());
                t.full_scan = full_scan;
                let mut ts = 0.0;
                for &(gap_ms, from, to, flags) in &pkts {
                    ts += gap_ms as f64 / 100.0; // up to 40 s between packets
                    let (f, o) = ([198, 18, 0, from], [198, 18, 1, to]);
                    let p = if flags & 0x10 == 0 { tcp(ts, f, 1000 + u16::from(to), o, 80, flags) } else { tcp(ts, o, 80, f, 1000 + u16::from(to), flags) };
                    t.observe(&p);
                }
                t.flush();
                let mut recs: Vec<String> = t.take_ended().map(|r| format!("{r:?}")).collect();
                recs.sort();
                recs
            };
            proptest::prop_assert_eq!(run(true), run(false));
        }
    }

    #[test]
    fn advance_ends_flows_on_a_quiet_link() {
        let cfg = FlowConfig { idle_timeout_secs: 10, ..FlowConfig::default() };
        let mut t = FlowTable::new(cfg);
        t.advance(100 * NS); // no packet yet: nothing to do, the clock stays unset
        assert_eq!(t.clock(), None);
        t.observe(&tcp(0.0, A, 1, B, 2, ACK));
        t.advance(5 * NS);
        assert_eq!(t.take_ended().count(), 0);
        t.advance(11 * NS);
        let ended: Vec<FlowRecord> = t.take_ended().collect();
        assert_eq!(ended.len(), 1);
        assert_eq!(ended[0].end_reason, EndReason::Idle);
    }

    #[test]
    fn icmp_request_and_reply_are_one_flow_with_type_code() {
        let mk = |ts: f64, from, to, tc: u16| FlowPacket {
            ts_ns: (ts * 1e9) as i64,
            vlan: 0,
            src: v4(from),
            dst: v4(to),
            proto: ICMP,
            src_port: 0,
            dst_port: tc,
            ip_len: 84,
            tcp_flags: 0,
        };
        let (recs, _) = run(FlowConfig::default(), &[mk(0.0, A, B, 0x0800), mk(0.001, B, A, 0x0000)]);
        assert_eq!(recs.len(), 1);
        assert_eq!(recs[0].dst_port, 0x0800);
        assert_eq!((recs[0].packets, recs[0].rev_packets), (1, 1));
    }

    #[test]
    fn vlans_separate_flows() {
        let mut p1 = tcp(0.0, A, 1, B, 2, ACK);
        let mut p2 = p1;
        p1.vlan = 10;
        p2.vlan = 20;
        let (recs, _) = run(FlowConfig::default(), &[p1, p2]);
        assert_eq!(recs.len(), 2);
    }

    #[test]
    fn full_table_counts_instead_of_accounting() {
        let cfg = FlowConfig { max_flows: 2, ..FlowConfig::default() };
        let pkts: Vec<FlowPacket> = (0..5).map(|i| tcp(0.0, A, 1000 + i, B, 80, SYN)).collect();
        let (recs, stats) = run(cfg, &pkts);
        assert_eq!(recs.len(), 2);
        assert_eq!(stats.table_full_packets, 3);
        // Existing flows keep being updated while full.
        let cfg = FlowConfig { max_flows: 1, ..FlowConfig::default() };
        let pkts = [tcp(0.0, A, 1, B, 2, SYN), tcp(0.1, A, 3, B, 4, SYN), tcp(0.2, B, 2, A, 1, SYN | ACK)];
        let (recs, stats) = run(cfg, &pkts);
        assert_eq!((recs[0].packets, recs[0].rev_packets), (1, 1));
        assert_eq!(stats.table_full_packets, 1);
    }

    #[test]
    fn flush_resets_clock_for_an_earlier_input() {
        let mut t = FlowTable::new(FlowConfig::default());
        t.observe(&tcp(1000.0, A, 1, B, 2, ACK));
        t.flush();
        t.observe(&tcp(10.0, A, 1, B, 2, ACK));
        t.observe(&tcp(11.0, A, 1, B, 2, ACK));
        t.flush();
        let recs: Vec<FlowRecord> = t.take_ended().collect();
        assert_eq!(recs.len(), 2);
        assert_eq!(recs[1].packets, 2);
    }
}

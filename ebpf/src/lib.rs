//! Osprey's kernel side: the C XDP program `src/osprey.bpf.c` (compiled by
//! `build.rs` with clang and embedded as [`OBJECT`]) and
//! `include/osprey_kern_user.h`, the one header whose definitions both the
//! kernel and userspace use.
//!
//! [`consts`] is generated at build time from the header's `#define OSPREY_*`
//! lines; nothing in Rust restates those values. The structs below are
//! `#[repr(C)]` mirrors of the header's structs, guarded by size and
//! field-offset tests. With the `aya` feature they implement `aya::Pod`.

/// Constants generated from `include/osprey_kern_user.h` (without the `OSPREY_` prefix).
pub mod consts {
    include!(concat!(env!("OUT_DIR"), "/kern_user_consts.rs"));
}

#[repr(C, align(8))]
struct Aligned<B: ?Sized>(B);

static OBJECT_ALIGNED: &Aligned<[u8]> = &Aligned(*include_bytes!(concat!(env!("OUT_DIR"), "/osprey.bpf.o")));

/// The compiled BPF object (ELF, 8-byte aligned): programs `osprey_xdp` and
/// `osprey_noop`; maps `flows4`, `flows6`, `counters`, `dns_events`,
/// `flow_ends`; the `.rodata` global `cfg` ([`OspreyConfig`]).
pub static OBJECT: &[u8] = &OBJECT_ALIGNED.0;

/// Name of the capture program in [`OBJECT`].
pub const PROG_XDP: &str = "osprey_xdp";
/// Name of the XDP_PASS no-op in [`OBJECT`] (benchmark baseline).
pub const PROG_NOOP: &str = "osprey_noop";
/// IPv4 flow map (per-CPU hash of [`FlowKey4`] → [`FlowVal`]).
pub const MAP_FLOWS4: &str = "flows4";
/// IPv6 flow map (per-CPU hash of [`FlowKey`] → [`FlowVal`]).
pub const MAP_FLOWS6: &str = "flows6";
/// Per-CPU counter array (one [`Counters`] element).
pub const MAP_COUNTERS: &str = "counters";
/// Ring of [`DnsEvent`]s.
pub const MAP_DNS_EVENTS: &str = "dns_events";
/// Ring of [`FlowEnd`]s (flows the kernel ended).
pub const MAP_FLOW_ENDS: &str = "flow_ends";
/// The `.rodata` configuration global.
pub const GLOBAL_CONFIG: &str = "cfg";
/// XSKMAP of AF_XDP sockets, one slot per receive queue (`src/xsk.bpf.h`).
pub const MAP_XSKS: &str = "xsks";
/// Per-CPU AF_XDP redirect counters (one [`XskCounters`] element).
pub const MAP_XSK_COUNTERS: &str = "xsk_counters";
/// The `.rodata` AF_XDP redirect configuration global ([`XskConfig`]).
pub const GLOBAL_XSK_CONFIG: &str = "xsk_cfg";

/// `struct osprey_flow_key`: the canonical flow key (endpoint `a` is the
/// smaller `(address, port)`).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct FlowKey {
    /// Endpoint a (IPv4 as IPv4-mapped IPv6).
    pub a: [u8; 16],
    /// Endpoint b.
    pub b: [u8; 16],
    /// Port of a (0 for protocols without ports).
    pub a_port: u16,
    /// Port of b.
    pub b_port: u16,
    /// Outermost VLAN id.
    pub vlan: u16,
    /// IP protocol.
    pub proto: u8,
    /// Padding (0).
    pub pad: u8,
}

/// `struct osprey_flow_key4`: the key of an IPv4 flow in the kernel's
/// IPv4 map (the fields of [`FlowKey`] with 4-byte addresses).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct FlowKey4 {
    /// Endpoint a (as on the wire).
    pub a: [u8; 4],
    /// Endpoint b.
    pub b: [u8; 4],
    /// Port of a (0 for protocols without ports).
    pub a_port: u16,
    /// Port of b.
    pub b_port: u16,
    /// Outermost VLAN id.
    pub vlan: u16,
    /// IP protocol.
    pub proto: u8,
    /// Padding (0).
    pub pad: u8,
}

impl FlowKey4 {
    /// The same flow's [`FlowKey`] (addresses IPv4-mapped, as the kernel
    /// writes them into flow-end records and userspace keys every flow).
    pub fn to_key(&self) -> FlowKey {
        let mapped = |v4: [u8; 4]| {
            let mut m = [0u8; 16];
            m[10] = 0xff;
            m[11] = 0xff;
            m[12..].copy_from_slice(&v4);
            m
        };
        FlowKey { a: mapped(self.a), b: mapped(self.b), a_port: self.a_port, b_port: self.b_port, vlan: self.vlan, proto: self.proto, pad: 0 }
    }
}

/// `struct osprey_flow_val`: one CPU's slot of a flow.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FlowVal {
    /// Kernel clock of the first packet; 0 = empty slot.
    pub first_ns: u64,
    /// Kernel clock of the last packet.
    pub last_ns: u64,
    /// When closing began (RST or FIN both ways); 0 = open.
    pub close_ns: u64,
    /// Packets initiator → responder, reverse.
    pub packets: [u64; 2],
    /// IP bytes initiator → responder, reverse.
    pub bytes: [u64; 2],
    /// Generation: bumped each time the kernel ends the slot and restarts it.
    pub generation: u32,
    /// ICMP `type << 8 | code` of the first packet.
    pub icmp_type_code: u16,
    /// OR of TCP flags per direction.
    pub flags: [u8; 2],
    /// 1 if endpoint a is the initiator.
    pub a_initiated: u8,
    /// Bit 0: initiator sent FIN; bit 1: responder did.
    pub fin_seen: u8,
    /// `END_FIN` / `END_RST` while closing.
    pub close_reason: u8,
    /// Padding.
    pub pad: [u8; 5],
}

/// `struct osprey_flow_end`: a flow slot the kernel ended.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FlowEnd {
    /// The flow.
    pub key: FlowKey,
    /// The slot as it was when ended.
    pub val: FlowVal,
    /// CPU whose slot it was.
    pub cpu: u32,
    /// `END_*` code.
    pub reason: u8,
    /// Padding.
    pub pad: [u8; 3],
}

/// Length of [`DnsEvent::msg`].
pub const DNS_MAX_COPY: usize = consts::DNS_MAX_COPY as usize;

/// `struct osprey_dns_event`: one DNS-over-UDP message.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DnsEvent {
    /// Kernel clock.
    pub ts_ns: u64,
    /// Packet source (IPv4-mapped for IPv4).
    pub src: [u8; 16],
    /// Packet destination.
    pub dst: [u8; 16],
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// Outermost VLAN id.
    pub vlan: u16,
    /// 1 for IPv4.
    pub is_v4: u8,
    /// `DNS_*` status bits.
    pub status: u8,
    /// Frame bytes the program saw.
    pub frame_len: u32,
    /// DNS message length.
    pub msg_len: u16,
    /// Bytes valid in `msg`.
    pub copy_len: u16,
    /// Header id.
    pub id: u16,
    /// Header flags word.
    pub flags: u16,
    /// QDCOUNT.
    pub qdcount: u16,
    /// ANCOUNT.
    pub ancount: u16,
    /// NSCOUNT.
    pub nscount: u16,
    /// ARCOUNT.
    pub arcount: u16,
    /// Wire length of the question name (in `msg[12..]`).
    pub qname_len: u16,
    /// QTYPE.
    pub qtype: u16,
    /// QCLASS.
    pub qclass: u16,
    /// Offset of the answer section in `msg` (0 if the question did not parse).
    pub answer_off: u16,
    /// RCODE (header, 4 bits).
    pub rcode: u8,
    /// Padding.
    pub pad: [u8; 3],
    /// The message from its first byte (`copy_len` valid).
    pub msg: [u8; DNS_MAX_COPY],
}

/// Bytes of [`DnsEvent`] before `msg`.
pub const DNS_EVENT_HEADER: usize = std::mem::offset_of!(DnsEvent, msg);

impl DnsEvent {
    /// The copied message bytes.
    pub fn message(&self) -> &[u8] {
        &self.msg[..usize::from(self.copy_len).min(DNS_MAX_COPY)]
    }

    /// Reads a DNS ring record: the struct, possibly cut after
    /// `msg[DNS_SMALL_COPY - 1]` or `msg[DNS_MEDIUM_COPY - 1]` (the rest of
    /// `msg` reads as zeros). `None` if the record is shorter than the header
    /// or than the `copy_len` bytes it claims.
    pub fn from_record(record: &[u8]) -> Option<DnsEvent> {
        if record.len() < DNS_EVENT_HEADER {
            return None;
        }
        let n = record.len().min(size_of::<DnsEvent>());
        let mut ev = DnsEvent::zeroed();
        // SAFETY: DnsEvent is #[repr(C)] of integers and byte arrays (every
        // bit pattern is valid) and `n` is at most its size.
        unsafe { std::ptr::copy_nonoverlapping(record.as_ptr(), (&mut ev as *mut DnsEvent).cast::<u8>(), n) };
        (usize::from(ev.copy_len) <= n - DNS_EVENT_HEADER).then_some(ev)
    }

    fn zeroed() -> DnsEvent {
        DnsEvent {
            ts_ns: 0,
            src: [0; 16],
            dst: [0; 16],
            src_port: 0,
            dst_port: 0,
            vlan: 0,
            is_v4: 0,
            status: 0,
            frame_len: 0,
            msg_len: 0,
            copy_len: 0,
            id: 0,
            flags: 0,
            qdcount: 0,
            ancount: 0,
            nscount: 0,
            arcount: 0,
            qname_len: 0,
            qtype: 0,
            qclass: 0,
            answer_off: 0,
            rcode: 0,
            pad: [0; 3],
            msg: [0; DNS_MAX_COPY],
        }
    }
}

/// Number of per-CPU counters.
pub const CNT_MAX: usize = consts::CNT_MAX as usize;

/// `struct osprey_counters`: one CPU's counters, indexed by `SKIP_*` / `CNT_*`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counters {
    /// The counters.
    pub c: [u64; CNT_MAX],
}

/// Ports in [`OspreyConfig::dns_ports`].
pub const DNS_MAX_PORTS: usize = consts::DNS_MAX_PORTS as usize;

/// `struct osprey_config`: the program's load-time configuration (`.rodata`).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OspreyConfig {
    /// Idle timeout, ns.
    pub idle_ns: u64,
    /// Active timeout, ns.
    pub active_ns: u64,
    /// TCP linger, ns.
    pub linger_ns: u64,
    /// 1: `bpf_ktime_get_coarse_ns`, 0: `bpf_ktime_get_ns`.
    pub coarse_clock: u32,
    /// 1: extract DNS.
    pub dns_enabled: u32,
    /// Ring bytes pending before a forced wake-up.
    pub wakeup_bytes: u32,
    /// UDP ports decoded as DNS (0 = unused).
    pub dns_ports: [u16; DNS_MAX_PORTS],
    /// Padding.
    pub pad: u32,
}

impl Default for OspreyConfig {
    fn default() -> Self {
        let mut dns_ports = [0; DNS_MAX_PORTS];
        dns_ports[0] = consts::DNS_PORT as u16;
        OspreyConfig {
            idle_ns: consts::FLOW_IDLE_TIMEOUT_SECS * 1_000_000_000,
            active_ns: consts::FLOW_ACTIVE_TIMEOUT_SECS * 1_000_000_000,
            linger_ns: consts::FLOW_TCP_LINGER_SECS * 1_000_000_000,
            coarse_clock: 1,
            dns_enabled: 1,
            wakeup_bytes: consts::RING_WAKEUP_BYTES as u32,
            dns_ports,
            pad: 0,
        }
    }
}

/// Number of AF_XDP redirect counters.
pub const XSK_CNT_MAX: usize = consts::XSK_CNT_MAX as usize;

/// `struct osprey_xsk_config`: which packets go to AF_XDP sockets (`.rodata`).
/// All zero (the default) redirects nothing.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct XskConfig {
    /// `XSK_CLASS_*` bits.
    pub classes: u32,
    /// Redirect 1 in this many packets per CPU; 0 = no sample.
    pub sample_every: u32,
    /// TCP ports whose segments are DNS (0 = unused).
    pub tcp_dns_ports: [u16; DNS_MAX_PORTS],
    /// UDP DNS ports (for the large-message class).
    pub udp_dns_ports: [u16; DNS_MAX_PORTS],
}

/// `struct osprey_xsk_counters`: one CPU's AF_XDP redirect counters, indexed by `XSK_CNT_*`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct XskCounters {
    /// The counters.
    pub c: [u64; XSK_CNT_MAX],
}

#[cfg(feature = "aya")]
mod pod {
    // SAFETY: all of these are #[repr(C)], contain only integers and byte
    // arrays, and have explicit padding (checked by the layout tests), so
    // every bit pattern is valid and there are no uninitialised bytes.
    unsafe impl aya::Pod for super::FlowKey {}
    unsafe impl aya::Pod for super::FlowKey4 {}
    unsafe impl aya::Pod for super::FlowVal {}
    unsafe impl aya::Pod for super::FlowEnd {}
    unsafe impl aya::Pod for super::DnsEvent {}
    unsafe impl aya::Pod for super::Counters {}
    unsafe impl aya::Pod for super::OspreyConfig {}
    unsafe impl aya::Pod for super::XskConfig {}
    unsafe impl aya::Pod for super::XskCounters {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::mem::{offset_of, size_of};

    #[test]
    fn header_constants_are_generated() {
        assert_eq!(consts::FLOW_IDLE_TIMEOUT_SECS, 60);
        assert_eq!(consts::TCP_SYN, 0x02);
        assert_eq!(consts::END_EVICTED, 6);
        assert_eq!(consts::SKIP_FRAGMENT, 11);
        assert!(consts::DNS_MAX_COPY.is_power_of_two(), "the kernel masks offsets with DNS_MAX_COPY - 1");
    }

    #[test]
    fn object_is_an_aligned_bpf_elf() {
        assert_eq!(&OBJECT[..4], b"\x7fELF");
        assert_eq!(OBJECT.as_ptr() as usize % 8, 0);
        assert_eq!(u16::from_le_bytes([OBJECT[18], OBJECT[19]]), 247, "EM_BPF");
    }

    #[test]
    fn flow_key_layout() {
        assert_eq!(size_of::<FlowKey>(), 40);
        assert_eq!(offset_of!(FlowKey, b), 16);
        assert_eq!(offset_of!(FlowKey, a_port), 32);
        assert_eq!(offset_of!(FlowKey, b_port), 34);
        assert_eq!(offset_of!(FlowKey, vlan), 36);
        assert_eq!(offset_of!(FlowKey, proto), 38);
        assert_eq!(offset_of!(FlowKey, pad), 39);
    }

    #[test]
    fn flow_key4_layout_and_mapping() {
        assert_eq!(size_of::<FlowKey4>(), 16);
        assert_eq!(offset_of!(FlowKey4, b), 4);
        assert_eq!(offset_of!(FlowKey4, a_port), 8);
        assert_eq!(offset_of!(FlowKey4, b_port), 10);
        assert_eq!(offset_of!(FlowKey4, vlan), 12);
        assert_eq!(offset_of!(FlowKey4, proto), 14);
        assert_eq!(offset_of!(FlowKey4, pad), 15);
        let k = FlowKey4 { a: [198, 18, 0, 1], b: [198, 19, 0, 2], a_port: 1000, b_port: 53, vlan: 7, proto: 17, pad: 0 };
        let full = k.to_key();
        assert_eq!(full.a, std::net::Ipv4Addr::new(198, 18, 0, 1).to_ipv6_mapped().octets());
        assert_eq!(full.b, std::net::Ipv4Addr::new(198, 19, 0, 2).to_ipv6_mapped().octets());
        assert_eq!((full.a_port, full.b_port, full.vlan, full.proto, full.pad), (1000, 53, 7, 17, 0));
    }

    #[test]
    fn clock_cache_slots_are_not_counters() {
        const { assert!(consts::CNT_RING_WAKEUPS < consts::CLOCK_JIFFIES) };
        // The two slots are the last two of the struct.
        assert_eq!((consts::CLOCK_JIFFIES, consts::CLOCK_NS), (CNT_MAX as u64 - 2, CNT_MAX as u64 - 1));
    }

    #[test]
    fn flow_val_layout() {
        assert_eq!(size_of::<FlowVal>(), 72);
        assert_eq!(offset_of!(FlowVal, last_ns), 8);
        assert_eq!(offset_of!(FlowVal, close_ns), 16);
        assert_eq!(offset_of!(FlowVal, packets), 24);
        assert_eq!(offset_of!(FlowVal, bytes), 40);
        assert_eq!(offset_of!(FlowVal, generation), 56);
        assert_eq!(offset_of!(FlowVal, icmp_type_code), 60);
        assert_eq!(offset_of!(FlowVal, flags), 62);
        assert_eq!(offset_of!(FlowVal, a_initiated), 64);
        assert_eq!(offset_of!(FlowVal, fin_seen), 65);
        assert_eq!(offset_of!(FlowVal, close_reason), 66);
        assert_eq!(offset_of!(FlowVal, pad), 67);
        assert_eq!(size_of::<FlowEnd>(), 120);
        assert_eq!(offset_of!(FlowEnd, val), 40);
        assert_eq!(offset_of!(FlowEnd, cpu), 112);
        assert_eq!(offset_of!(FlowEnd, reason), 116);
    }

    #[test]
    fn dns_event_layout() {
        assert_eq!(offset_of!(DnsEvent, src), 8);
        assert_eq!(offset_of!(DnsEvent, dst), 24);
        assert_eq!(offset_of!(DnsEvent, src_port), 40);
        assert_eq!(offset_of!(DnsEvent, dst_port), 42);
        assert_eq!(offset_of!(DnsEvent, vlan), 44);
        assert_eq!(offset_of!(DnsEvent, is_v4), 46);
        assert_eq!(offset_of!(DnsEvent, status), 47);
        assert_eq!(offset_of!(DnsEvent, frame_len), 48);
        assert_eq!(offset_of!(DnsEvent, msg_len), 52);
        assert_eq!(offset_of!(DnsEvent, copy_len), 54);
        assert_eq!(offset_of!(DnsEvent, id), 56);
        assert_eq!(offset_of!(DnsEvent, flags), 58);
        assert_eq!(offset_of!(DnsEvent, qdcount), 60);
        assert_eq!(offset_of!(DnsEvent, arcount), 66);
        assert_eq!(offset_of!(DnsEvent, qname_len), 68);
        assert_eq!(offset_of!(DnsEvent, qtype), 70);
        assert_eq!(offset_of!(DnsEvent, qclass), 72);
        assert_eq!(offset_of!(DnsEvent, answer_off), 74);
        assert_eq!(offset_of!(DnsEvent, rcode), 76);
        assert_eq!(offset_of!(DnsEvent, msg), 80);
        assert_eq!(size_of::<DnsEvent>(), 80 + DNS_MAX_COPY);
    }

    #[test]
    fn short_dns_records_read_with_zeros_behind() {
        const { assert!(consts::DNS_SMALL_COPY < consts::DNS_MEDIUM_COPY && consts::DNS_MEDIUM_COPY < consts::DNS_MAX_COPY) };
        assert!(consts::DNS_SMALL_COPY.is_power_of_two() && consts::DNS_MEDIUM_COPY.is_power_of_two(), "masks");
        let small = DNS_EVENT_HEADER + consts::DNS_SMALL_COPY as usize;
        let mut rec = vec![0xabu8; small];
        rec[offset_of!(DnsEvent, copy_len)..][..2].copy_from_slice(&33u16.to_ne_bytes());
        let ev = DnsEvent::from_record(&rec).expect("a small record");
        assert_eq!(ev.message(), &[0xab; 33][..]);
        assert_eq!(ev.msg[small - DNS_EVENT_HEADER - 1], 0xab);
        assert!(ev.msg[small - DNS_EVENT_HEADER..].iter().all(|b| *b == 0), "zeros behind the cut");
        // copy_len beyond the record, or a record shorter than the header: rejected.
        rec[offset_of!(DnsEvent, copy_len)..][..2].copy_from_slice(&129u16.to_ne_bytes());
        assert!(DnsEvent::from_record(&rec).is_none());
        assert!(DnsEvent::from_record(&rec[..DNS_EVENT_HEADER - 1]).is_none());
        // A whole record (or a longer one) reads as the struct.
        let mut full = vec![1u8; size_of::<DnsEvent>() + 8];
        full[offset_of!(DnsEvent, copy_len)..][..2].copy_from_slice(&512u16.to_ne_bytes());
        assert_eq!(DnsEvent::from_record(&full).expect("full").message().len(), 512);
    }

    #[test]
    fn counters_and_config_layout() {
        assert_eq!(size_of::<Counters>(), 8 * CNT_MAX);
        const { assert!(consts::CNT_RING_WAKEUPS < consts::CNT_MAX) };
        assert_eq!(size_of::<OspreyConfig>(), 48);
        assert_eq!(offset_of!(OspreyConfig, coarse_clock), 24);
        assert_eq!(offset_of!(OspreyConfig, dns_enabled), 28);
        assert_eq!(offset_of!(OspreyConfig, wakeup_bytes), 32);
        assert_eq!(offset_of!(OspreyConfig, dns_ports), 36);
        assert_eq!(offset_of!(OspreyConfig, pad), 44);
    }

    #[test]
    fn xsk_config_and_counters_layout() {
        assert_eq!(size_of::<XskConfig>(), 24);
        assert_eq!(offset_of!(XskConfig, sample_every), 4);
        assert_eq!(offset_of!(XskConfig, tcp_dns_ports), 8);
        assert_eq!(offset_of!(XskConfig, udp_dns_ports), 8 + 2 * DNS_MAX_PORTS);
        assert_eq!(size_of::<XskCounters>(), 8 * XSK_CNT_MAX);
        const { assert!(consts::XSK_CNT_SEEN < consts::XSK_CNT_MAX) };
        // Class bits fit the metadata word's low byte, clear of the magic.
        let all = consts::XSK_CLASS_TCP_DNS | consts::XSK_CLASS_FRAGMENT | consts::XSK_CLASS_LARGE_DNS | consts::XSK_CLASS_SAMPLE;
        assert!(all <= 0xff && consts::XSK_META_MAGIC & 0xff == 0);
    }

    /// The BTF of the compiled object agrees with the mirrors (sizes).
    #[test]
    fn btf_sizes_match_when_bpftool_is_available() {
        let dir = std::env::temp_dir().join(format!("osprey-btf-{}", std::process::id()));
        let obj = dir.with_extension("o");
        if std::fs::write(&obj, OBJECT).is_err() {
            return;
        }
        let out = std::process::Command::new("bpftool").args(["btf", "dump", "file"]).arg(&obj).output();
        let _ = std::fs::remove_file(&obj);
        let Ok(out) = out else {
            eprintln!("skipping: bpftool not available");
            return;
        };
        let text = String::from_utf8_lossy(&out.stdout);
        for (name, size) in [
            ("osprey_flow_key", size_of::<FlowKey>()),
            ("osprey_flow_key4", size_of::<FlowKey4>()),
            ("osprey_flow_val", size_of::<FlowVal>()),
            ("osprey_flow_end", size_of::<FlowEnd>()),
            ("osprey_dns_event", size_of::<DnsEvent>()),
            ("osprey_counters", size_of::<Counters>()),
            ("osprey_config", size_of::<OspreyConfig>()),
            ("osprey_xsk_config", size_of::<XskConfig>()),
            ("osprey_xsk_counters", size_of::<XskCounters>()),
        ] {
            // Ring record types are not always kept in BTF by clang 14; the
            // map key/value and config types always are.
            let named = format!("STRUCT '{name}' ");
            let required = !matches!(name, "osprey_flow_end" | "osprey_dns_event");
            if required || text.contains(&named) {
                let needle = format!("STRUCT '{name}' size={size} ");
                assert!(text.contains(&needle), "BTF lacks {needle:?}");
            }
        }
    }
}

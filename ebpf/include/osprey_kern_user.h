/* SPDX-License-Identifier: Apache-2.0 */
/*
 * osprey_kern_user.h: the one definition of everything the kernel programs and
 * userspace share. Fixed-width types only, explicit padding, no bool.
 *
 * The Rust side does not copy these by hand: osprey-ebpf's build.rs reads every
 * `#define OSPREY_<NAME> <integer>` line below and generates Rust constants from
 * it, and structs added here get #[repr(C)] mirrors guarded by size/offset tests.
 *
 * Flow semantics (key, direction, timeouts, end reasons) are described in
 * docs/flow-semantics.md; the constants below are their single source.
 */
#ifndef OSPREY_KERN_USER_H
#define OSPREY_KERN_USER_H

/* ---- flow timeouts (defaults; both paths take overrides from config) ---- */
#define OSPREY_FLOW_IDLE_TIMEOUT_SECS      60   /* no packet for this long: end "idle" */
#define OSPREY_FLOW_ACTIVE_TIMEOUT_SECS    300  /* older than this: end "active", continue in a new record */
#define OSPREY_FLOW_TCP_LINGER_SECS        2    /* after RST or FIN both ways: keep counting late ACKs this long */
#define OSPREY_FLOW_SWEEP_INTERVAL_SECS    1    /* how often expiry is checked (packet clock offline) */

/* ---- flow end reasons (stored in records as names; codes shared) ---- */
#define OSPREY_END_IDLE     1
#define OSPREY_END_ACTIVE   2
#define OSPREY_END_FIN      3
#define OSPREY_END_RST      4
#define OSPREY_END_FLUSH    5
#define OSPREY_END_EVICTED  6

/* ---- TCP flag bits as on the wire (byte 13 of the TCP header) ---- */
#define OSPREY_TCP_FIN  0x01
#define OSPREY_TCP_SYN  0x02
#define OSPREY_TCP_RST  0x04
#define OSPREY_TCP_PSH  0x08
#define OSPREY_TCP_ACK  0x10
#define OSPREY_TCP_URG  0x20
#define OSPREY_TCP_ECE  0x40
#define OSPREY_TCP_CWR  0x80

/* ---- parser bounds, identical in kernel and userspace decoders ---- */
#define OSPREY_MAX_VLAN_TAGS        3   /* 802.1Q / 802.1ad tags followed */
#define OSPREY_MAX_MPLS_LABELS      8
#define OSPREY_MAX_IPV6_EXT_HEADERS 8   /* extension headers walked before giving up */
#define OSPREY_DNS_PORT             53
#define OSPREY_DNS_MAX_NAME_LEN     255 /* wire-format name bound (RFC 1035) */

/* ---- kernel program limits and defaults ---- */
#define OSPREY_DNS_MAX_PORTS        4     /* UDP ports decoded as DNS in the kernel (0 = unused slot) */
#define OSPREY_DNS_MAX_COPY         512   /* DNS message bytes copied into a ring record (from offset 0) */
#define OSPREY_DNS_SMALL_COPY       128   /* messages up to this long go in records cut after msg[127] */
#define OSPREY_DNS_MEDIUM_COPY      256   /* ... up to this long, after msg[255]; longer: the whole struct */
#define OSPREY_DNS_RING_BYTES       4194304 /* default DNS ring buffer size */
#define OSPREY_FLOW_END_RING_BYTES  1048576 /* default ring of flows ended by the kernel */
#define OSPREY_RING_WAKEUP_BYTES    65536 /* force a consumer wake-up once this much is pending */
#define OSPREY_FLOW_MAP_ENTRIES     1048576 /* default flow map capacity */
#define OSPREY_MAX_HDR_OFFSET       16383 /* headers ending beyond this are "truncated" (linear XDP data is smaller) */

/* ---- per-CPU counter indexes (struct osprey_counters.c[]) ----
 * 0..11 are the skip reasons, in the order of userspace's packet::SkipReason. */
#define OSPREY_SKIP_TRUNCATED_LINK        0
#define OSPREY_SKIP_TRUNCATED_VLAN        1
#define OSPREY_SKIP_TRUNCATED_MPLS        2
#define OSPREY_SKIP_TRUNCATED_IP          3
#define OSPREY_SKIP_TRUNCATED_TRANSPORT   4
#define OSPREY_SKIP_NOT_IP                5
#define OSPREY_SKIP_BAD_IP_VERSION        6
#define OSPREY_SKIP_BAD_IP_HEADER         7
#define OSPREY_SKIP_BAD_TRANSPORT_HEADER  8
#define OSPREY_SKIP_UNSUPPORTED_LINK_TYPE 9  /* never counted by XDP (always Ethernet) */
#define OSPREY_SKIP_TOO_MANY_HEADERS      10
#define OSPREY_SKIP_FRAGMENT              11
#define OSPREY_SKIP_COUNT                 12
#define OSPREY_CNT_FLOW_TABLE_FULL        12 /* packet would have created a flow in a full map */
#define OSPREY_CNT_PACKETS                13 /* every packet the program saw */
#define OSPREY_CNT_FLOW_PACKETS           14 /* packets accounted to a flow */
#define OSPREY_CNT_FLOWS_CREATED          15 /* flow map entries (or per-CPU slots) started */
#define OSPREY_CNT_FLOW_RESTARTS          16 /* flows ended by the kernel (records sent to the flow-end ring) */
#define OSPREY_CNT_FLOW_END_RING_FULL     17 /* a restart found the flow-end ring full: the flow went on (merged), not lost */
#define OSPREY_CNT_DNS_MESSAGES           18 /* DNS records submitted */
#define OSPREY_CNT_DNS_RING_FULL          19 /* DNS messages dropped: ring full */
#define OSPREY_CNT_DNS_SHORT              20 /* DNS-port payloads shorter than the 12-byte header (no record) */
#define OSPREY_CNT_RING_WAKEUPS           21 /* forced consumer wake-ups (both rings) */
/* Not counters: the XDP program's per-CPU clock cache (the jiffies value,
 * and the coarse clock read at that jiffy); see now_ns() in osprey.bpf.c. */
#define OSPREY_CLOCK_JIFFIES              22
#define OSPREY_CLOCK_NS                   23
#define OSPREY_CNT_MAX                    24

/* ---- AF_XDP redirect (ebpf/src/xsk.bpf.h; opt-in, see userspace/src/live/afxdp.rs) ----
 * Packet classes the XDP program may redirect to the AF_XDP socket of the
 * receiving queue (struct osprey_xsk_config.classes bits). A redirected packet
 * no longer reaches the host stack: only for mirror/SPAN interfaces. */
#define OSPREY_XSK_MAX_QUEUES          64   /* XSKMAP slots (one per receive queue) */
#define OSPREY_XSK_CLASS_TCP_DNS       0x01 /* TCP to or from a TCP DNS port */
#define OSPREY_XSK_CLASS_FRAGMENT      0x02 /* every UDP IP fragment (non-first ones carry no ports) */
#define OSPREY_XSK_CLASS_LARGE_DNS     0x04 /* UDP DNS messages longer than OSPREY_DNS_MAX_COPY */
#define OSPREY_XSK_CLASS_SAMPLE        0x08 /* 1 in sample_every packets of any kind */
#define OSPREY_XSK_META_MAGIC          0x05b70000 /* high half of the 4-byte XDP metadata word; low byte = class bits */
/* struct osprey_xsk_counters.c[] indexes */
#define OSPREY_XSK_CNT_TCP_DNS         0  /* packets of each class (a packet may be in several) */
#define OSPREY_XSK_CNT_FRAGMENT        1
#define OSPREY_XSK_CNT_LARGE_DNS       2
#define OSPREY_XSK_CNT_SAMPLE          3
#define OSPREY_XSK_CNT_REDIRECTED      4  /* packets handed to a socket (XDP_REDIRECT) */
#define OSPREY_XSK_CNT_NO_SOCKET       5  /* wanted, but no socket bound on the queue: passed */
#define OSPREY_XSK_CNT_SEEN            6  /* packets the decision looked at (the sample clock) */
#define OSPREY_XSK_CNT_MAX             8

/* ---- struct osprey_dns_event.status bits (kernel's view of the question) ---- */
#define OSPREY_DNS_Q_OK            0x01 /* question name and qtype/qclass read */
#define OSPREY_DNS_Q_POINTER       0x02 /* compression pointer in the question name (not followed) */
#define OSPREY_DNS_Q_TOO_LONG      0x04 /* question name longer than 255 wire bytes */
#define OSPREY_DNS_Q_BAD_LABEL     0x08 /* label type 0x40/0x80 */
#define OSPREY_DNS_Q_TRUNCATED     0x10 /* name or qtype/qclass beyond the message (or the copy) */
#define OSPREY_DNS_COPY_TRUNCATED  0x20 /* message longer than OSPREY_DNS_MAX_COPY: msg[] holds its start */
#define OSPREY_DNS_FIRST_FRAGMENT  0x40 /* first fragment of a fragmented datagram: msg[] holds only what that fragment carries */

#ifndef OSPREY_NO_STRUCTS
#include <linux/types.h>

/* Canonical, direction-free flow key: endpoint a is the smaller (address, port).
 * The key of the kernel's IPv6 flow map, of flow-end records, and userspace's
 * key for every flow (IPv4 flows as IPv4-mapped). 40 bytes. */
struct osprey_flow_key {
	__u8  a[16];      /* IPv4 as IPv4-mapped IPv6 */
	__u8  b[16];
	__u16 a_port;     /* host byte order; 0 for protocols without ports */
	__u16 b_port;
	__u16 vlan;       /* outermost VLAN id, 0 untagged */
	__u8  proto;
	__u8  pad;
};

/* The key of an IPv4 flow: the same fields with IPv4 addresses, in a map
 * of its own (a 16-byte key hashes and compares in a fraction of the time
 * of a 40-byte one). Addresses as on the wire; endpoint a is the smaller
 * (address, port), as in struct osprey_flow_key. 16 bytes. */
struct osprey_flow_key4 {
	__u8  a[4];
	__u8  b[4];
	__u16 a_port;     /* host byte order; 0 for protocols without ports */
	__u16 b_port;
	__u16 vlan;       /* outermost VLAN id, 0 untagged */
	__u8  proto;
	__u8  pad;
};

/* One CPU's slot of a flow (the flow map is a per-CPU hash). 72 bytes.
 * Index 0 of packets/bytes/flags = initiator -> responder, 1 = reverse. */
struct osprey_flow_val {
	__u64 first_ns;       /* kernel clock (see osprey_config.coarse_clock); 0 = empty slot */
	__u64 last_ns;
	__u64 close_ns;       /* when closing began (RST, or FIN both ways); 0 = open */
	__u64 packets[2];
	__u64 bytes[2];       /* IP-layer bytes */
	__u32 generation;            /* bumped each time the kernel ends this slot and starts it again */
	__u16 icmp_type_code; /* type << 8 | code of the first ICMP packet */
	__u8  flags[2];       /* OR of TCP flags per direction */
	__u8  a_initiated;    /* 1 if endpoint a of the key is the initiator */
	__u8  fin_seen;       /* bit 0: initiator sent FIN, bit 1: responder did */
	__u8  close_reason;   /* OSPREY_END_FIN / OSPREY_END_RST while closing */
	__u8  pad[5];
};

/* A flow slot the kernel ended (port reuse after close, late packet after a
 * timeout), sent on the flow-end ring. 120 bytes. */
struct osprey_flow_end {
	struct osprey_flow_key key;
	struct osprey_flow_val val;
	__u32 cpu;
	__u8  reason;         /* OSPREY_END_* */
	__u8  pad[3];
};

/* One DNS-over-UDP message, on the DNS ring. Header fields are host order.
 * A ring record is this struct cut after msg[OSPREY_DNS_SMALL_COPY - 1] or
 * msg[OSPREY_DNS_MEDIUM_COPY - 1] when the message fits there (less ring
 * memory written per message); copy_len bytes of msg[] are always present. */
struct osprey_dns_event {
	__u64 ts_ns;          /* kernel clock */
	__u8  src[16];        /* packet source, IPv4-mapped for IPv4 */
	__u8  dst[16];
	__u16 src_port;
	__u16 dst_port;
	__u16 vlan;
	__u8  is_v4;
	__u8  status;         /* OSPREY_DNS_* bits */
	__u32 frame_len;      /* bytes the program saw (data_end - data) */
	__u16 msg_len;        /* DNS message length (UDP payload) */
	__u16 copy_len;       /* bytes valid in msg[] */
	__u16 id;
	__u16 flags;
	__u16 qdcount;
	__u16 ancount;
	__u16 nscount;
	__u16 arcount;
	__u16 qname_len;      /* wire length of the question name incl. the root label (in msg[12..]) */
	__u16 qtype;
	__u16 qclass;
	__u16 answer_off;     /* offset of the answer section in msg[] (0 if the question did not parse) */
	__u8  rcode;
	__u8  pad[3];
	__u8  msg[OSPREY_DNS_MAX_COPY]; /* the message from its first byte: answers' compression pointers stay valid */
};

/* Per-CPU counters: one array element. */
struct osprey_counters {
	__u64 c[OSPREY_CNT_MAX];
};

/* Load-time configuration (.rodata, set by the loader before verification). */
struct osprey_config {
	__u64 idle_ns;        /* OSPREY_FLOW_IDLE_TIMEOUT_SECS in ns */
	__u64 active_ns;
	__u64 linger_ns;
	__u32 coarse_clock;   /* 1: bpf_ktime_get_coarse_ns, 0: bpf_ktime_get_ns */
	__u32 dns_enabled;
	__u32 wakeup_bytes;   /* ring data pending before a forced wake-up */
	__u16 dns_ports[OSPREY_DNS_MAX_PORTS];
	__u32 pad;
};
/* AF_XDP redirect configuration (.rodata `xsk_cfg`, set by the loader). 24 bytes. */
struct osprey_xsk_config {
	__u32 classes;        /* OSPREY_XSK_CLASS_* bits (SAMPLE is implied by sample_every) */
	__u32 sample_every;   /* redirect 1 in this many packets per CPU; 0 = no sample */
	__u16 tcp_dns_ports[OSPREY_DNS_MAX_PORTS]; /* 0 = unused slot */
	__u16 udp_dns_ports[OSPREY_DNS_MAX_PORTS];
};

/* Per-CPU AF_XDP redirect counters: one array element. */
struct osprey_xsk_counters {
	__u64 c[OSPREY_XSK_CNT_MAX];
};
#endif /* OSPREY_NO_STRUCTS */

#endif /* OSPREY_KERN_USER_H */

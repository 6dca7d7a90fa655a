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

#endif /* OSPREY_KERN_USER_H */

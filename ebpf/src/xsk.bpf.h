/* SPDX-License-Identifier: (Apache-2.0 OR GPL-2.0) */
/*
 * xsk.bpf.h: the AF_XDP half of Osprey's XDP program: which packets are
 * handed to the AF_XDP socket of the receiving queue (userspace decodes them
 * with the offline parsers) instead of continuing to the host stack.
 *
 * The capture program's contract is "always XDP_PASS, never harm host
 * traffic". XDP cannot clone a packet: a redirected packet is consumed by
 * the socket and the host stack never sees it. So redirection is opt-in and
 * off by default (xsk_cfg all zero: the verifier prunes this code entirely),
 * meant for mirror/SPAN/TAP interfaces whose traffic is not the host's own;
 * the loader sets it from `[capture] af_xdp_dns` / `af_xdp_sample_every_packets`.
 *
 * Classes (OSPREY_XSK_CLASS_*), decided on the packet alone:
 * - TCP_DNS: TCP with a source or destination port in tcp_dns_ports (every
 *   segment of the connection: the reassembler needs the SYN and the data);
 * - FRAGMENT: every UDP IP fragment, IPv4 or IPv6. Non-first fragments
 *   carry no ports, and tracking first fragments in a map would miss
 *   fragments that arrive before the first one; UDP fragments are rare, so
 *   all of them go to userspace, whose reassembler keeps only DNS datagrams;
 * - LARGE_DNS: UDP on a DNS port whose payload is longer than the kernel's
 *   DNS copy (OSPREY_DNS_MAX_COPY): the kernel's DNS record would lack the
 *   message's end, userspace decodes the whole message instead;
 * - SAMPLE: 1 in sample_every packets per CPU, of any kind (pcapng segments).
 *
 * The flow accounting of osprey_xdp has already counted the packet when this
 * runs: redirection changes where the packet's bytes go, never the flows.
 * The class bits travel to userspace in a 4-byte XDP metadata word
 * (OSPREY_XSK_META_MAGIC | classes) in front of the packet.
 *
 * Everything here is prefixed xsk_ (or osprey_xsk_) and depends only on the shared header,
 * so the capture program's own code can change freely around the one call.
 */
#ifndef OSPREY_XSK_BPF_H
#define OSPREY_XSK_BPF_H

struct {
	__uint(type, BPF_MAP_TYPE_XSKMAP);
	__uint(max_entries, OSPREY_XSK_MAX_QUEUES);
	__type(key, __u32);
	__type(value, __u32);
} xsks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct osprey_xsk_counters);
} xsk_counters SEC(".maps");

/* Off by default: nothing is ever redirected unless the loader asks. */
const volatile struct osprey_xsk_config xsk_cfg = {
	.classes = 0,
	.sample_every = 0,
	.tcp_dns_ports = { OSPREY_DNS_PORT, 0, 0, 0 },
	.udp_dns_ports = { OSPREY_DNS_PORT, 0, 0, 0 },
};

#define XSK_BE16(p) ((__u16)(((__u16)(p)[0] << 8) | (p)[1]))

static __always_inline int xsk_port_in(const volatile __u16 *ports, __u16 p)
{
#pragma unroll
	for (int i = 0; i < OSPREY_DNS_MAX_PORTS; i++)
		if (ports[i] && ports[i] == p)
			return 1;
	return 0;
}

/* Classes of the packet (before masking with xsk_cfg.classes); 0 if it is
 * not IP or its headers are cut. */
static __always_inline __u32 xsk_classify(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u8 *p = data;
	if ((void *)p + 14 > data_end)
		return 0;
	__u16 et = XSK_BE16(p + 12);
	__u32 off = 14;
#pragma unroll
	for (int i = 0; i < OSPREY_MAX_VLAN_TAGS; i++) {
		if (et != 0x8100 && et != 0x88a8 && et != 0x9100)
			break;
		__u8 *tag = data + off;
		if ((void *)tag + 4 > data_end)
			return 0;
		et = XSK_BE16(tag + 2);
		off += 4;
	}
	__u8 proto;
	int frag = 0;
	__u32 l4, dgram_end;
	__u32 wire = (__u32)(data_end - data);
	if (et == 0x0800) {
		__u8 *ip = data + off;
		if ((void *)ip + 20 > data_end)
			return 0;
		__u32 ihl = (ip[0] & 0x0f) * 4;
		if (ihl < 20)
			return 0;
		__u32 total = XSK_BE16(ip + 2);
		if (total == 0)
			total = wire - off;
		frag = (XSK_BE16(ip + 6) & 0x3fff) != 0; /* MF or an offset */
		proto = ip[9];
		l4 = off + ihl;
		dgram_end = off + total;
	} else if (et == 0x86dd) {
		__u8 *ip = data + off;
		if ((void *)ip + 40 > data_end)
			return 0;
		__u8 nh = ip[6];
		dgram_end = off + 40 + XSK_BE16(ip + 4);
		__u32 q = off + 40;
#pragma unroll
		for (int i = 0; i < OSPREY_MAX_IPV6_EXT_HEADERS; i++) {
			if (nh != 0 && nh != 43 && nh != 44 && nh != 60 && nh != 51 && nh != 135)
				break;
			if (q > OSPREY_MAX_HDR_OFFSET)
				return 0;
			__u8 *x = data + q;
			if ((void *)x + 8 > data_end)
				return 0;
			__u32 hlen;
			if (nh == 44) {
				frag = 1;
				hlen = 8;
			} else if (nh == 51) {
				hlen = ((__u32)x[1] + 2) * 4;
			} else {
				hlen = ((__u32)x[1] + 1) * 8;
			}
			nh = x[0];
			q += hlen;
			if (frag)
				break;
		}
		proto = nh;
		l4 = q;
	} else {
		return 0;
	}
	if (frag)
		return proto == 17 ? OSPREY_XSK_CLASS_FRAGMENT : 0;
	if (l4 > OSPREY_MAX_HDR_OFFSET)
		return 0;
	__u8 *t = data + l4;
	if ((void *)t + 8 > data_end)
		return 0;
	__u16 sport = XSK_BE16(t), dport = XSK_BE16(t + 2);
	if (proto == 6)
		return (xsk_port_in(xsk_cfg.tcp_dns_ports, sport) || xsk_port_in(xsk_cfg.tcp_dns_ports, dport))
			       ? OSPREY_XSK_CLASS_TCP_DNS
			       : 0;
	if (proto != 17 || !(xsk_port_in(xsk_cfg.udp_dns_ports, sport) || xsk_port_in(xsk_cfg.udp_dns_ports, dport)))
		return 0;
	/* The payload length exactly as the capture program's DNS extraction
	 * computes it (the datagram, cut by the capture and by the UDP length). */
	__u32 end = dgram_end < wire ? dgram_end : wire;
	__u32 ulen = XSK_BE16(t + 4);
	if (ulen >= 8 && l4 + ulen < end)
		end = l4 + ulen;
	if (end > l4 + 8 && end - (l4 + 8) > OSPREY_DNS_MAX_COPY)
		return OSPREY_XSK_CLASS_LARGE_DNS;
	return 0;
}

/*
 * The verdict of the capture program, given what it decided (always
 * XDP_PASS today): XDP_REDIRECT to the receiving queue's socket for the
 * configured classes, XDP_PASS when no socket is bound there.
 *
 * A global (non-inlined) function on purpose: the verifier checks it once,
 * on its own, instead of once per path through the capture program's
 * parser, which would take the program past the verifier's budget.
 */
__attribute__((noinline)) int osprey_xsk_verdict(struct xdp_md *ctx, int verdict)
{
	if (verdict != XDP_PASS || (xsk_cfg.classes == 0 && xsk_cfg.sample_every == 0))
		return verdict;
	__u32 zero = 0;
	struct osprey_xsk_counters *c = bpf_map_lookup_elem(&xsk_counters, &zero);
	if (!c)
		return verdict;
	__u32 classes = xsk_cfg.classes ? (xsk_classify(ctx) & xsk_cfg.classes) : 0;
	if (xsk_cfg.sample_every) {
		__u64 seen = c->c[OSPREY_XSK_CNT_SEEN];
		if (seen % xsk_cfg.sample_every == 0)
			classes |= OSPREY_XSK_CLASS_SAMPLE;
	}
	c->c[OSPREY_XSK_CNT_SEEN]++;
	classes &= 0xff;
	if (!classes)
		return verdict;
	if (classes & OSPREY_XSK_CLASS_TCP_DNS)
		c->c[OSPREY_XSK_CNT_TCP_DNS]++;
	if (classes & OSPREY_XSK_CLASS_FRAGMENT)
		c->c[OSPREY_XSK_CNT_FRAGMENT]++;
	if (classes & OSPREY_XSK_CLASS_LARGE_DNS)
		c->c[OSPREY_XSK_CNT_LARGE_DNS]++;
	if (classes & OSPREY_XSK_CLASS_SAMPLE)
		c->c[OSPREY_XSK_CNT_SAMPLE]++;
	int meta = bpf_xdp_adjust_meta(ctx, -4) == 0;
	if (meta) {
		void *m = (void *)(long)ctx->data_meta;
		void *d = (void *)(long)ctx->data;
		if (m + 4 <= d) {
			__u32 word = OSPREY_XSK_META_MAGIC | classes;
			__builtin_memcpy(m, &word, 4);
		}
	}
	int r = bpf_redirect_map(&xsks, ctx->rx_queue_index, XDP_PASS);
	if (r == XDP_REDIRECT) {
		c->c[OSPREY_XSK_CNT_REDIRECTED]++;
	} else {
		c->c[OSPREY_XSK_CNT_NO_SOCKET]++;
		if (meta)
			bpf_xdp_adjust_meta(ctx, 4);
	}
	return r;
}

#endif /* OSPREY_XSK_BPF_H */

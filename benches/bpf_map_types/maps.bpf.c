// The flow map alone: cost of one flow lookup/update at N active flows, per
// map type, for comparison with the full program (kernel_bench). Built and
// run by run.sh (bpftool prog run; root).
#include <linux/bpf.h>
#include <linux/types.h>
#include <bpf/bpf_helpers.h>

struct key { __u32 a, b; __u16 sp, dp; __u8 proto, pad[3]; };  /* 16 bytes */
#ifdef VAL72
/* the size of struct osprey_flow_val */
struct val { __u64 first, last, close, pkts[2], bytes[2]; __u32 gen; __u16 icmp; __u8 flags[2], ai, fin, cr, pad[5]; };
#else
struct val { __u64 first, last, pkts[2], bytes[2]; __u8 flags[2], pad[6]; }; /* 56 bytes */
#endif

#ifndef N_MAX
#define N_MAX (1u << 20)
#endif
#ifndef NFLOWS
#define NFLOWS 65536
#endif
#define n_flows NFLOWS

struct { __uint(type, BPF_MAP_TYPE_PERCPU_HASH); __uint(max_entries, N_MAX); __type(key, struct key); __type(value, struct val); } pc SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_HASH); __uint(max_entries, N_MAX); __type(key, struct key); __type(value, struct val); } sh SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_LRU_HASH); __uint(max_entries, N_MAX); __type(key, struct key); __type(value, struct val); } lru SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY); __uint(max_entries, 1); __type(key, __u32); __type(value, __u64); } ctr SEC(".maps");

static __always_inline int mk(struct key *k)
{
	__u32 z = 0;
	__u64 *c = bpf_map_lookup_elem(&ctr, &z);
	if (!c)
		return -1;
	__u32 i = (__u32)((*c)++ * 2654435761u) % n_flows;
	k->a = i; k->b = 0x0a000001; k->sp = 1000; k->dp = 443; k->proto = 6;
	k->pad[0] = k->pad[1] = k->pad[2] = 0;
	return 0;
}

SEC("xdp") int noop(struct xdp_md *ctx) { struct key k; mk(&k); return XDP_PASS; }

SEC("xdp") int percpu(struct xdp_md *ctx)
{
	struct key k; if (mk(&k)) return XDP_PASS;
	struct val *v = bpf_map_lookup_elem(&pc, &k);
	if (v) { v->last = 1; v->pkts[0]++; v->bytes[0] += 60; v->flags[0] |= 2; }
	else { struct val n = { .first = 1, .last = 1, .pkts = {1, 0}, .bytes = {60, 0}, .flags = {2, 0} }; bpf_map_update_elem(&pc, &k, &n, BPF_NOEXIST); }
	return XDP_PASS;
}

SEC("xdp") int shared(struct xdp_md *ctx)
{
	struct key k; if (mk(&k)) return XDP_PASS;
	struct val *v = bpf_map_lookup_elem(&sh, &k);
	if (v) { v->last = 1; __sync_fetch_and_add(&v->pkts[0], 1); __sync_fetch_and_add(&v->bytes[0], 60); v->flags[0] |= 2; }
	else { struct val n = { .first = 1, .last = 1, .pkts = {1, 0}, .bytes = {60, 0}, .flags = {2, 0} }; bpf_map_update_elem(&sh, &k, &n, BPF_NOEXIST); }
	return XDP_PASS;
}

SEC("xdp") int lruh(struct xdp_md *ctx)
{
	struct key k; if (mk(&k)) return XDP_PASS;
	struct val *v = bpf_map_lookup_elem(&lru, &k);
	if (v) { v->last = 1; __sync_fetch_and_add(&v->pkts[0], 1); __sync_fetch_and_add(&v->bytes[0], 60); v->flags[0] |= 2; }
	else { struct val n = { .first = 1, .last = 1, .pkts = {1, 0}, .bytes = {60, 0}, .flags = {2, 0} }; bpf_map_update_elem(&lru, &k, &n, BPF_NOEXIST); }
	return XDP_PASS;
}
char LICENSE[] SEC("license") = "GPL";

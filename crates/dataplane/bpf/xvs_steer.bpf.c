// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * xvs_steer: the XDP program in front of the xvs AF_XDP sockets.
 *
 * It redirects to the AF_XDP socket of the receive queue ONLY the frames the
 * director must handle, and returns XDP_PASS for everything else, so that ARP,
 * neighbour discovery, SSH, routing protocols and the host's own traffic keep
 * reaching the kernel.
 *
 * A frame is redirected when one of these holds:
 *   1. its (protocol, destination address, destination port) is a VIP:
 *      `vips` holds (proto, dst, dport), (proto, dst, 0) or (0, dst, 0);
 *   2. its (protocol, source address, source port) is a NAT real server:
 *      `reals` holds (proto, src, sport) or (proto, src, 0) (NAT replies),
 *      and its destination is not one of the director's own addresses
 *      (`addrs` flag ADDR_LOCAL): the director's own connections to a real
 *      server, its health checks, stay with the kernel;
 *   3. it is an IP fragment (IPv4 MF/offset, IPv6 fragment header) whose
 *      destination address is a VIP address or whose source address is a
 *      real-server address (`addrs`, keyed by address only, flags ADDR_VIP /
 *      ADDR_REAL): non-first fragments carry no ports;
 *   4. it is an ICMP error (v4 types 3, 4, 11, 12; v6 types 1 to 4) whose
 *      quoted packet has a source or destination address in `addrs`, or any
 *      ICMP error when `config.flags` has CFG_ALL_ICMP_ERRORS.
 *
 * The socket is looked up in `xsks` at slot * XVS_MAX_QUEUES + rx_queue_index,
 * where slot is `ifslots[ingress ifindex]` (0 when absent): one program and one
 * set of maps serve several interfaces, each with its own sockets. When the
 * slot holds no socket the frame is passed to the kernel and counted as
 * STAT_NO_SOCKET.
 *
 * VLAN-tagged frames (802.1Q / 802.1ad) are the kernel's: xvsd serves
 * untagged ports, and a tagged frame taken as if untagged would reach the
 * real servers with its tag, on whatever VLAN the sender chose; the kernel
 * drops it, or gives it to the VLAN device it belongs to, as with IPVS.
 *
 * Parsing: Ethernet, IPv4 with
 * options, IPv6 with up to XVS_MAX_EXT_HDRS extension headers (hop-by-hop,
 * routing, destination options, fragment, AH). Everything that does not
 * parse is passed to the kernel (STAT_PASSED).
 *
 * The key layouts below are mirrored in crates/dataplane/src/xdp.rs.
 */
#include <linux/bpf.h>
#include <linux/types.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define XVS_MAX_QUEUES 64
#define XVS_MAX_IFACES 16
#define XVS_MAX_EXT_HDRS 6

#define ETH_HLEN 14
#define ETH_P_IP 0x0800
#define ETH_P_IPV6 0x86DD
#define ETH_P_8021Q 0x8100
#define ETH_P_8021AD 0x88A8

#define PROTO_ICMP 1
#define PROTO_TCP 6
#define PROTO_UDP 17
#define PROTO_ICMPV6 58
#define PROTO_SCTP 132

#define NH_HOP 0
#define NH_ROUTING 43
#define NH_FRAGMENT 44
#define NH_AH 51
#define NH_DSTOPTS 60

#define ADDR_VIP 1
#define ADDR_REAL 2
#define ADDR_LOCAL 4

#define CFG_ALL_ICMP_ERRORS 1

enum {
	STAT_REDIRECTED = 0,
	STAT_PASSED = 1,
	STAT_NO_SOCKET = 2,
	STAT_MAX = 3,
};

/* Key of `vips` and `reals`: 20 bytes, no implicit padding. */
struct steer_key {
	__u8 proto;   /* 6, 17, 132, or 0 for "any protocol" */
	__u8 pad;     /* always 0 */
	__be16 port;  /* network order; 0 = every port */
	__u8 addr[16];/* IPv6, or IPv4-mapped ::ffff:a.b.c.d */
};

struct addr_key {
	__u8 addr[16];
};

struct config {
	__u32 flags;
};

struct {
	__uint(type, BPF_MAP_TYPE_XSKMAP);
	__uint(max_entries, XVS_MAX_QUEUES * XVS_MAX_IFACES);
	__type(key, __u32);
	__type(value, __u32);
} xsks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, XVS_MAX_IFACES);
	__type(key, __u32);
	__type(value, __u32);
} ifslots SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, struct steer_key);
	__type(value, __u32);
} vips SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, struct steer_key);
	__type(value, __u32);
} reals SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, struct addr_key);
	__type(value, __u32);
} addrs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct config);
} config SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, STAT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} stats SEC(".maps");

/* What the parser found; addresses in the 16-byte form. */
struct flow {
	struct addr_key src;
	struct addr_key dst;
	__be16 sport;
	__be16 dport;
	__u8 proto;
	__u8 frag;       /* any fragment (first or not) */
	__u8 has_ports;  /* sport/dport valid */
	__u8 icmp_error; /* ICMP(v6) error: inner addresses in isrc/idst */
	struct addr_key isrc;
	struct addr_key idst;
};

static __always_inline void count(__u32 idx)
{
	__u64 *c = bpf_map_lookup_elem(&stats, &idx);

	if (c)
		*c += 1;
}

static __always_inline void v4_mapped(struct addr_key *k, const void *v4)
{
	__builtin_memset(k->addr, 0, 10);
	k->addr[10] = 0xff;
	k->addr[11] = 0xff;
	__builtin_memcpy(&k->addr[12], v4, 4);
}

static __always_inline __u32 addr_flags(const struct addr_key *k)
{
	__u32 *f = bpf_map_lookup_elem(&addrs, k);

	return f ? *f : 0;
}

static __always_inline int steer_lookup(void *map, __u8 proto,
					const struct addr_key *a, __be16 port)
{
	struct steer_key k = {};

	k.proto = proto;
	k.port = port;
	__builtin_memcpy(k.addr, a->addr, 16);
	return bpf_map_lookup_elem(map, &k) != NULL;
}

static __always_inline int is_ported(__u8 proto)
{
	return proto == PROTO_TCP || proto == PROTO_UDP || proto == PROTO_SCTP;
}

/* Reads the two ports of TCP, UDP and SCTP (same first 4 bytes). */
static __always_inline int read_ports(struct flow *f, void *l4, void *end)
{
	__be16 *p = l4;

	if ((void *)(p + 2) > end)
		return -1;
	f->sport = p[0];
	f->dport = p[1];
	f->has_ports = 1;
	return 0;
}

static __always_inline int icmp4_is_error(__u8 type)
{
	return type == 3 || type == 4 || type == 11 || type == 12;
}

static __always_inline int icmp6_is_error(__u8 type)
{
	return type >= 1 && type <= 4;
}

static __always_inline int parse_ipv4(struct flow *f, void *l3, void *end)
{
	__u8 *ip = l3;
	__u32 ihl;
	__u16 frag_off;
	void *l4;

	if ((void *)(ip + 20) > end)
		return -1;
	if ((ip[0] >> 4) != 4)
		return -1;
	ihl = (ip[0] & 0x0f) * 4;
	if (ihl < 20)
		return -1;
	f->proto = ip[9];
	v4_mapped(&f->src, ip + 12);
	v4_mapped(&f->dst, ip + 16);
	frag_off = ((__u16)ip[6] << 8 | ip[7]);
	if (frag_off & 0x3fff) {
		/* MF set or offset != 0 */
		f->frag = 1;
		if (frag_off & 0x1fff)
			return 0; /* non-first fragment: no L4 header */
	}
	l4 = l3 + ihl;
	if (is_ported(f->proto))
		return read_ports(f, l4, end);
	if (f->proto == PROTO_ICMP) {
		__u8 *icmp = l4;
		__u8 *inner;

		if ((void *)(icmp + 8) > end)
			return 0;
		if (!icmp4_is_error(icmp[0]))
			return 0;
		f->icmp_error = 1;
		inner = icmp + 8;
		if ((void *)(inner + 20) > end)
			return 0;
		v4_mapped(&f->isrc, inner + 12);
		v4_mapped(&f->idst, inner + 16);
	}
	return 0;
}

static __always_inline int parse_ipv6(struct flow *f, void *l3, void *end)
{
	__u8 *ip = l3;
	__u8 nh;
	void *p;
	int i;

	if ((void *)(ip + 40) > end)
		return -1;
	if ((ip[0] >> 4) != 6)
		return -1;
	__builtin_memcpy(f->src.addr, ip + 8, 16);
	__builtin_memcpy(f->dst.addr, ip + 24, 16);
	nh = ip[6];
	p = ip + 40;

#pragma unroll
	for (i = 0; i < XVS_MAX_EXT_HDRS; i++) {
		__u8 *h = p;

		if (nh != NH_HOP && nh != NH_ROUTING && nh != NH_DSTOPTS &&
		    nh != NH_FRAGMENT && nh != NH_AH)
			break;
		if ((void *)(h + 8) > end)
			return -1;
		if (nh == NH_FRAGMENT) {
			__u16 off = ((__u16)h[2] << 8 | h[3]);

			f->frag = 1;
			if (off & 0xfff8) {
				/* non-first fragment: no L4 header */
				f->proto = h[0];
				return 0;
			}
			nh = h[0];
			p = h + 8;
		} else if (nh == NH_AH) {
			nh = h[0];
			p = h + ((__u32)h[1] + 2) * 4;
		} else {
			nh = h[0];
			p = h + ((__u32)h[1] + 1) * 8;
		}
	}
	f->proto = nh;
	if (is_ported(nh))
		return read_ports(f, p, end);
	if (nh == PROTO_ICMPV6) {
		__u8 *icmp = p;
		__u8 *inner;

		if ((void *)(icmp + 8) > end)
			return 0;
		if (!icmp6_is_error(icmp[0]))
			return 0;
		f->icmp_error = 1;
		inner = icmp + 8;
		if ((void *)(inner + 40) > end)
			return 0;
		__builtin_memcpy(f->isrc.addr, inner + 8, 16);
		__builtin_memcpy(f->idst.addr, inner + 24, 16);
	}
	return 0;
}

/* Whether the director must see this flow. */
static __always_inline int wanted(struct flow *f)
{
	if (f->has_ports) {
		if (steer_lookup(&vips, f->proto, &f->dst, f->dport) ||
		    steer_lookup(&vips, f->proto, &f->dst, 0) ||
		    steer_lookup(&vips, 0, &f->dst, 0))
			return 1;
		if (steer_lookup(&reals, f->proto, &f->src, f->sport) ||
		    steer_lookup(&reals, f->proto, &f->src, 0))
			return !(addr_flags(&f->dst) & ADDR_LOCAL);
		if (!f->frag)
			return 0;
	}
	if (f->frag)
		return (addr_flags(&f->dst) & ADDR_VIP) ||
		       (addr_flags(&f->src) & ADDR_REAL);
	if (f->icmp_error) {
		__u32 key = 0;
		struct config *cfg = bpf_map_lookup_elem(&config, &key);

		if (cfg && (cfg->flags & CFG_ALL_ICMP_ERRORS))
			return 1;
		return ((addr_flags(&f->isrc) | addr_flags(&f->idst)) &
			(ADDR_VIP | ADDR_REAL)) != 0;
	}
	/* Other protocols (ICMP echo, GRE, ...) to a VIP of "any protocol". */
	return steer_lookup(&vips, 0, &f->dst, 0);
}

SEC("xdp")
int xvs_steer(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	struct flow f = {};
	__u8 *eth = data;
	void *l3;
	__u16 type;
	__u32 slot = 0, *slotp, idx, ifindex;
	long act;
	int err;

	if ((void *)(eth + ETH_HLEN) > end)
		goto pass;
	type = ((__u16)eth[12] << 8) | eth[13];
	l3 = eth + ETH_HLEN;

	if (type == ETH_P_IP)
		err = parse_ipv4(&f, l3, end);
	else if (type == ETH_P_IPV6)
		err = parse_ipv6(&f, l3, end);
	else
		goto pass;
	if (err || !wanted(&f))
		goto pass;

	ifindex = ctx->ingress_ifindex;
	slotp = bpf_map_lookup_elem(&ifslots, &ifindex);
	if (slotp)
		slot = *slotp;
	if (slot >= XVS_MAX_IFACES || ctx->rx_queue_index >= XVS_MAX_QUEUES) {
		count(STAT_NO_SOCKET);
		return XDP_PASS;
	}
	idx = slot * XVS_MAX_QUEUES + ctx->rx_queue_index;
	act = bpf_redirect_map(&xsks, idx, XDP_PASS);
	if (act == XDP_REDIRECT) {
		count(STAT_REDIRECTED);
		return XDP_REDIRECT;
	}
	count(STAT_NO_SOCKET);
	return XDP_PASS;

pass:
	count(STAT_PASSED);
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";

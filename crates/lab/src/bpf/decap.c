// SPDX-License-Identifier: GPL-2.0-or-later
//
// xvs-lab TUN decapsulator: an XDP program for a real server's interface.
//
// The kernel of this lab has no `ipip`/`sit`/`ip6_tunnel` modules, so a real
// server cannot decapsulate the IP-in-IP packets that an LVS director in TUN
// mode sends it. This program does it in XDP instead: a frame whose outer
// header is IPv4 (protocol 4 or 41) or IPv6 (next header 4 or 41) loses that
// outer header, the Ethernet header is moved up against the inner packet and
// its EtherType is set to the inner family. The kernel then receives the
// inner packet as if it had arrived on the interface unencapsulated.
//
// Everything else (ARP, ND, plain IP, fragments of tunnel packets, outer IPv6
// headers with extension headers) is passed untouched.
//
// Self-contained on purpose (no libbpf or kernel headers): it builds with a
// bare `clang -target bpf`. Attach with
//   ip link set dev eth0 xdp obj xvs_decap.o sec xdp

typedef unsigned char u8;
typedef unsigned short u16;
typedef unsigned int u32;

// Layout of the UAPI `struct xdp_md` (include/uapi/linux/bpf.h).
struct xdp_md {
	u32 data;
	u32 data_end;
	u32 data_meta;
	u32 ingress_ifindex;
	u32 rx_queue_index;
	u32 egress_ifindex;
};

#define SEC(name) __attribute__((section(name), used))
#define XDP_DROP 1
#define XDP_PASS 2

#define ETH_HLEN 14
#define ETH_P_IP 0x0800
#define ETH_P_IPV6 0x86dd
#define IPPROTO_IPIP 4
#define IPPROTO_IPV6 41

// BPF_FUNC_xdp_adjust_head is helper number 44 in the UAPI helper list.
static long (*bpf_xdp_adjust_head)(struct xdp_md *ctx, int delta) = (void *)44;

SEC("xdp")
int xvs_decap(struct xdp_md *ctx)
{
	u8 *data = (u8 *)(long)ctx->data;
	u8 *end = (u8 *)(long)ctx->data_end;
	int outer_len;
	u8 inner;

	if (data + ETH_HLEN > end)
		return XDP_PASS;
	u16 ethertype = (u16)data[12] << 8 | data[13];
	u8 *ip = data + ETH_HLEN;

	if (ethertype == ETH_P_IP) {
		if (ip + 20 > end)
			return XDP_PASS;
		if ((ip[0] >> 4) != 4)
			return XDP_PASS;
		outer_len = (ip[0] & 0x0f) * 4;
		if (outer_len < 20)
			return XDP_PASS;
		// A fragment (MF set or offset non-zero) cannot be decapsulated
		// alone: leave it to the kernel, which will drop it.
		if ((ip[6] & 0x3f) != 0 || ip[7] != 0)
			return XDP_PASS;
		inner = ip[9];
	} else if (ethertype == ETH_P_IPV6) {
		if (ip + 40 > end)
			return XDP_PASS;
		if ((ip[0] >> 4) != 6)
			return XDP_PASS;
		outer_len = 40;
		inner = ip[6];
	} else {
		return XDP_PASS;
	}

	u16 inner_type;
	if (inner == IPPROTO_IPIP)
		inner_type = ETH_P_IP;
	else if (inner == IPPROTO_IPV6)
		inner_type = ETH_P_IPV6;
	else
		return XDP_PASS;

	// The inner packet must at least hold its own minimal header.
	if (ip + outer_len + 20 > end)
		return XDP_PASS;

	u8 macs[12];
	__builtin_memcpy(macs, data, 12);

	if (bpf_xdp_adjust_head(ctx, outer_len))
		return XDP_PASS;

	data = (u8 *)(long)ctx->data;
	end = (u8 *)(long)ctx->data_end;
	if (data + ETH_HLEN > end)
		return XDP_DROP;
	__builtin_memcpy(data, macs, 12);
	data[12] = inner_type >> 8;
	data[13] = inner_type & 0xff;
	return XDP_PASS;
}

char _license[] SEC("license") = "GPL";

/* packet_counter.c: a packet filter with counters (hook net/filter).
 *
 * Context: struct packet_ctx, the parsed headers of one packet. Returns 1 to accept the
 * packet, 0 to drop it: TCP to a port on the block list (a hash map filled by the kernel)
 * is dropped, everything else accepted. Counts packets per IP protocol in an array map and
 * the drops per core in a per-CPU array.
 */
#include "anneal_bpf.h"

struct packet_ctx {
    __u32 len;      /* bytes on the wire */
    __u8 protocol;  /* IP protocol: 6 TCP, 17 UDP, 1 ICMP */
    __u8 pad[3];
    __u16 src_port;
    __u16 dst_port;
};

ANNEAL_MAP(proto_count, BPF_MAP_TYPE_ARRAY, sizeof(__u32), sizeof(__u64), 256);
ANNEAL_MAP(blocked_ports, BPF_MAP_TYPE_HASH, sizeof(__u16), sizeof(__u8), 64);
ANNEAL_MAP(drops, BPF_MAP_TYPE_PERCPU_ARRAY, sizeof(__u32), sizeof(__u64), 1);

SEC("net/filter")
int filter(struct packet_ctx *ctx)
{
    __u32 proto = ctx->protocol;
    __u64 *count = bpf_map_lookup_elem(&proto_count, &proto);
    if (count)
        __sync_fetch_and_add(count, 1);

    if (proto == 6) {
        __u16 port = ctx->dst_port;
        if (bpf_map_lookup_elem(&blocked_ports, &port)) {
            __u32 zero = 0;
            __u64 *d = bpf_map_lookup_elem(&drops, &zero);
            if (d)
                *d += 1;
            return 0;
        }
    }
    return 1;
}

char LICENSE[] SEC("license") = "GPL";

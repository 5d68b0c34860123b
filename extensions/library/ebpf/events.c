/* events.c: an event producer (hook syscall/enter).
 *
 * Context: struct syscall_ctx. For every syscall whose number is at least the threshold in
 * the global `min_nr` (a .data variable the kernel may change), writes a struct event to the
 * ring buffer `events` with a timestamp and the core, and logs one trace line. Returns 0, or
 * 1 when the ring buffer was full. Also keeps each task's last event in a hash map. Maps are
 * declared BTF style (SEC(".maps")), so build with -g.
 */
#include "anneal_bpf.h"

struct syscall_ctx {
    __u32 nr;
    __u32 task_id;
    __u64 arg0;
};

struct event {
    __u64 time_ns;
    __u32 nr;
    __u32 task_id;
    __u32 cpu;
    __u32 pad;
    __u64 arg0;
};

/* BTF-style definition (the other samples use the legacy section). */
struct {
    __uint(type, BPF_MAP_TYPE_RINGBUF);
    __uint(max_entries, 4096);
} events SEC(".maps");

/* Tasks seen, BTF style with typed key and value. */
struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __type(key, __u32);
    __type(value, struct event);
    __uint(max_entries, 64);
} last_event SEC(".maps");

__u32 min_nr = 2;

SEC("syscall/enter")
int on_syscall(struct syscall_ctx *ctx)
{
    if (ctx->nr < min_nr)
        return 0;
    struct event e = {};
    e.time_ns = bpf_ktime_get_ns();
    e.nr = ctx->nr;
    e.task_id = ctx->task_id;
    e.cpu = bpf_get_smp_processor_id();
    e.arg0 = ctx->arg0;
    char fmt[] = "syscall %u by task %u on core %u";
    /* The helper takes exactly five arguments (fmt, size, three values): pass all of them,
     * since the verifier rejects a call that reads an uninitialised argument register. */
    bpf_trace_printk(fmt, sizeof(fmt), e.nr, e.task_id, e.cpu);
    bpf_map_update_elem(&last_event, &e.task_id, &e, BPF_ANY);
    if (bpf_ringbuf_output(&events, &e, sizeof(e), 0) < 0)
        return 1;
    return 0;
}

char LICENSE[] SEC("license") = "GPL";

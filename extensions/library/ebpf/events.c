/* events.c: an event producer (hook syscall/enter).
 *
 * Context: struct syscall_ctx. For every syscall whose number is at least the threshold in
 * the global `min_nr` (a .data variable the kernel may change), writes a struct event to the
 * ring buffer `events` with a timestamp and the core, and logs one trace line. Returns 0, or
 * 1 when the ring buffer was full.
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

ANNEAL_MAP(events, BPF_MAP_TYPE_RINGBUF, 0, 0, 4096);

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
    char fmt[] = "syscall %u by task %u";
    bpf_trace_printk(fmt, sizeof(fmt), e.nr, e.task_id);
    if (bpf_ringbuf_output(&events, &e, sizeof(e), 0) < 0)
        return 1;
    return 0;
}

char LICENSE[] SEC("license") = "GPL";

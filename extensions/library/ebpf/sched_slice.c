/* sched_slice.c: a scheduler time-slice policy (hook sched/slice).
 *
 * Context: struct sched_slice_ctx (read-only). Returns the slice in microseconds:
 * interactive tasks (that waited longer than they ran) get a short slice so they respond
 * fast; CPU-bound tasks get a longer one scaled down by the number of runnable tasks.
 * Per-task history lives in a hash map (task id -> times scheduled), and a noinline helper
 * function shows a BPF-to-BPF call.
 */
#include "anneal_bpf.h"

struct sched_slice_ctx {
    __u32 task_id;
    __u32 priority;   /* 0 (highest) .. 39 */
    __u64 runtime_ns; /* time run in the last period */
    __u64 wait_ns;    /* time waited runnable in the last period */
    __u32 nr_running; /* runnable tasks on this core */
    __u32 pad;
};

ANNEAL_MAP(times_scheduled, BPF_MAP_TYPE_HASH, sizeof(__u32), sizeof(__u64), 1024);

static __noinline __u64 clamp_slice(__u64 slice_us)
{
    if (slice_us < 500)
        return 500;
    if (slice_us > 20000)
        return 20000;
    return slice_us;
}

SEC("sched/slice")
int slice_policy(struct sched_slice_ctx *ctx)
{
    __u32 task = ctx->task_id;
    __u64 one = 1;
    __u64 *count = bpf_map_lookup_elem(&times_scheduled, &task);
    if (count)
        __sync_fetch_and_add(count, 1);
    else
        bpf_map_update_elem(&times_scheduled, &task, &one, BPF_NOEXIST);

    __u64 base = 10000 - ctx->priority * 200; /* 10 ms at priority 0, 2.2 ms at 39 */
    if (ctx->wait_ns > ctx->runtime_ns)
        base = base / 4; /* interactive */
    __u32 n = ctx->nr_running ? ctx->nr_running : 1;
    return clamp_slice(base / n);
}

char LICENSE[] SEC("license") = "GPL";

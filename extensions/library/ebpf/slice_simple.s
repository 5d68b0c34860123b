# slice_simple.s: scheduler slice policy in assembly (hook sched/slice).
# Context (struct sched_slice_ctx, see sched_slice.c): u32 task_id @0, u32 priority @4,
# u64 runtime_ns @8, u64 wait_ns @16, u32 nr_running @24.
# Returns the slice in microseconds: 10000 - 200 * priority, quartered for interactive
# tasks (waited longer than they ran), divided by the runnable count, clamped to
# [500, 20000] in a local function.
ldxw %r2, [%r1+4]          # priority
mul %r2, 200
mov %r0, 10000
sub %r0, %r2
ldxdw %r3, [%r1+8]         # runtime_ns
ldxdw %r4, [%r1+16]        # wait_ns
jle %r4, %r3, cpu_bound
rsh %r0, 2                 # interactive: a quarter of the slice
cpu_bound:
ldxw %r5, [%r1+24]         # nr_running
jne %r5, 0, divide
mov %r5, 1
divide:
div %r0, %r5
mov %r1, %r0
call local clamp
exit

clamp:                     # r0 = min(max(r1, 500), 20000)
mov %r0, %r1
jge %r0, 500, not_low
mov %r0, 500
not_low:
jle %r0, 20000, done
mov %r0, 20000
done:
exit

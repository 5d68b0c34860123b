// switch: the context switch. Two copies on one core (`spawn switch CORE 2`, queued together)
// yield to each other 5 000 times each: every `yield` saves one task's frame, picks the other
// and loads its frame and TTBR0, so one round of a copy is two switches. Each copy logs
// "bench case=switch ops=10000 elapsed_ns=E" (its own first to last yield) and exits. Alone
// on a core the same loop measures a yield that returns to its caller.
#include "common.S"

    .global _start
_start:
    TIMED_SYSCALL_LOOP SYS_YIELD, 5000, switch, 10000

// syscall: the syscall round trip. Makes 10 000 `get_time` calls (the lightest real call:
// decode, the scheduler's preemption check, result registers) between two time stamps and logs
// "bench case=syscall ops=10000 elapsed_ns=E", then exits. Under QEMU's -icount shift=0 a
// guest nanosecond is one instruction, so E / 10000 is instructions per round trip.
#include "common.S"

    .global _start
_start:
    TIMED_SYSCALL_LOOP SYS_GET_TIME, 10000, syscall, 10000

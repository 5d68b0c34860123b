// latency: a latency-sensitive task. ROUNDS times: read the time (`get_time`), `sleep` for
// 2 ms, read the time again; the wake-up delay is (after - before - 2 ms), kept in `samples`.
// Then sorts the samples and logs "bench case=wakeup ops=ROUNDS sleep_ns=2000000 p50_ns=P
// p99_ns=Q max_ns=M mean_ns=A" (nearest rank: p50 is the 50th of 100, p99 the 99th) and exits.
#include "common.S"
    .equ    ROUNDS, 100
    .equ    SLEEP_NS, 2000000

    .global _start
_start:
    mov     x19, #0                 // round
    mov     x20, #0                 // sum of delays (ns)
    ldr     x22, =SLEEP_NS
    adr     x25, samples
round:
    GET_TIME x23                    // before
    mov     x0, x22
    mov     x8, #SYS_SLEEP
    svc     #0
    GET_TIME x9
    sub     x9, x9, x23
    subs    x9, x9, x22
    csel    x9, xzr, x9, lo         // never negative
    str     x9, [x25, x19, lsl #3]
    add     x20, x20, x9
    add     x19, x19, #1
    cmp     x19, #ROUNDS
    b.ne    round
    bl      sort_samples
    LINE_START
    APPEND_TEXT "bench case=wakeup ops="
    mov     x0, #ROUNDS
    bl      append_decimal
    APPEND_TEXT " sleep_ns="
    APPEND_NUMBER x22
    APPEND_TEXT " p50_ns="
    ldr     x0, [x25, #((ROUNDS / 2 - 1) * 8)]
    bl      append_decimal
    APPEND_TEXT " p99_ns="
    ldr     x0, [x25, #((ROUNDS * 99 / 100 - 1) * 8)]
    bl      append_decimal
    APPEND_TEXT " max_ns="
    ldr     x0, [x25, #((ROUNDS - 1) * 8)]
    bl      append_decimal
    APPEND_TEXT " mean_ns="
    mov     x9, #ROUNDS
    udiv    x0, x20, x9
    bl      append_decimal
    LOG_LINE
    EXIT    0
9:  b       9b

sort_samples:                       // insertion sort of the ROUNDS words at x25, ascending
    mov     x2, #1                  // i
1:  cmp     x2, #ROUNDS
    b.hs    4f
    ldr     x3, [x25, x2, lsl #3]   // key
    sub     x4, x2, #1              // j
2:  tbnz    x4, #63, 3f             // j < 0
    ldr     x5, [x25, x4, lsl #3]
    cmp     x5, x3
    b.ls    3f
    add     x6, x4, #1
    str     x5, [x25, x6, lsl #3]
    sub     x4, x4, #1
    b       2b
3:  add     x6, x4, #1
    str     x3, [x25, x6, lsl #3]
    add     x2, x2, #1
    b       1b
4:  ret

    .section .bss
    .balign 16
samples:
    .space  (ROUNDS * 8)

// latency: a latency-sensitive task. 100 times: read the time (`get_time`, 7), `sleep` (5) for
// 2 ms, read the time again; the wake-up delay is (after - before - 2 ms). Logs
// "wakeup delay us: mean=M max=X" and exits. Delays include the scheduler tick granularity.
    .section .text
    .global _start
_start:
    mov     x19, #100               // rounds left
    mov     x20, #0                 // sum of delays (ns)
    mov     x21, #0                 // max delay (ns)
    ldr     x22, =2000000           // requested sleep (ns)
round:
    mov     x8, #7
    svc     #0
    mov     x23, x1                 // before
    mov     x0, x22
    mov     x8, #5
    svc     #0
    mov     x8, #7
    svc     #0
    sub     x9, x1, x23
    subs    x9, x9, x22
    csel    x9, xzr, x9, lo         // never negative
    add     x20, x20, x9
    cmp     x9, x21
    csel    x21, x9, x21, hi
    subs    x19, x19, #1
    b.ne    round
    // Build the message in `text`: prefix, mean (us), " max=", max (us).
    adr     x24, text
    adr     x0, prefix
    mov     x1, #(prefix_end - prefix)
    bl      append
    mov     x9, #100
    udiv    x0, x20, x9
    mov     x9, #1000
    udiv    x0, x0, x9
    bl      append_decimal
    adr     x0, middle
    mov     x1, #(middle_end - middle)
    bl      append
    mov     x9, #1000
    udiv    x0, x21, x9
    bl      append_decimal
    adr     x0, text
    sub     x1, x24, x0
    mov     x8, #9
    svc     #0
    mov     x0, #0
    mov     x8, #8
    svc     #0
1:  b       1b

append:                             // copy x1 bytes from x0 to x24 (advanced)
    cbz     x1, 2f
    ldrb    w9, [x0], #1
    strb    w9, [x24], #1
    sub     x1, x1, #1
    b       append
2:  ret

append_decimal:                     // write x0 in decimal at x24 (advanced)
    adr     x10, digits_end
    mov     x11, x10
    mov     x12, #10
3:  udiv    x13, x0, x12
    msub    x14, x13, x12, x0
    add     x14, x14, #'0'
    strb    w14, [x11, #-1]!
    mov     x0, x13
    cbnz    x0, 3b
4:  cmp     x11, x10
    b.eq    5f
    ldrb    w9, [x11], #1
    strb    w9, [x24], #1
    b       4b
5:  ret

    .section .rodata
prefix:
    .ascii  "wakeup delay us: mean="
prefix_end:
middle:
    .ascii  " max="
middle_end:

    .section .bss
    .balign 16
text:
    .space  128
digits:
    .space  32
digits_end:

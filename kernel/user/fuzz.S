// fuzz: 20 000 syscalls with random numbers (0..15, except send 0, receive 1 and exit 8, which
// would block forever or end the run) and random registers (xorshift64 in x19; lengths masked
// to 9 bits half the time, sleep times to about 1 ms), then logs "fuzz: done" and exits 0. Every
// call must come back with a result or an error code; the kernel must stay up.
    .section .text
    .global _start
_start:
    ldr     x19, =0x9e3779b97f4a7c15
    mov     x20, #20000
    adr     x21, buffer
next:
    bl      random
    and     x8, x0, #15
    cmp     x8, #0
    b.eq    next
    cmp     x8, #1
    b.eq    next
    cmp     x8, #8
    b.eq    next
    bl      random
    mov     x22, x0                 // x0 argument
    bl      random
    and     x23, x0, #0x1ff         // x1: a small length or id
    bl      random
    tst     x0, #1
    csel    x24, x21, x0, ne        // x2: the task's own buffer half the time
    bl      random
    and     x25, x0, #0x1ff         // x3
    bl      random
    mov     x26, x0                 // x4
    bl      random
    mov     x5, x0
    mov     x0, x22
    cmp     x8, #5                  // sleep: at most ~1 ms
    b.ne    1f
    and     x0, x0, #0xfffff
1:  cmp     x8, #6                  // set_timer: a deadline in the past or near future
    b.ne    2f
    and     x0, x0, #0xffffff
2:  tst     x22, #2
    csel    x1, x21, x23, ne        // x1: the buffer address for log/task_info half the time
    mov     x2, x24
    mov     x3, x25
    mov     x4, x26
    svc     #0
    subs    x20, x20, #1
    b.ne    next
    adr     x0, message
    mov     x1, #(message_end - message)
    mov     x8, #9
    svc     #0
    mov     x0, #0
    mov     x8, #8
    svc     #0
3:  b       3b

random:                             // xorshift64: x19 state, result in x0
    eor     x19, x19, x19, lsl #13
    eor     x19, x19, x19, lsr #7
    eor     x19, x19, x19, lsl #17
    mov     x0, x19
    ret

    .section .rodata
message:
    .ascii  "fuzz: done"
message_end:

    .section .bss
    .balign 16
buffer:
    .space  4096

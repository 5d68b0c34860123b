// ping: an IPC client. Finds the task named "pong" with `task_info` (10) over the task table,
// then makes 1000 `send` (0) round trips carrying a counter and checks every reply is the
// counter plus one. Logs "1000 round trips ok, N ns each" (guest time from `get_time`) or what
// went wrong, and exits.
    .section .text
    .global _start
_start:
    adr     x19, record
    mov     x20, #0                 // task index
    ldr     x22, name               // "pong\0\0\0\0"
find:
    mov     x0, x20
    mov     x1, x19
    mov     x2, #48
    mov     x8, #10
    svc     #0
    cbnz    x0, not_found           // past the last task: NoSuchTask
    ldr     x9, [x19, #24]
    cmp     x9, x22
    b.eq    found
    add     x20, x20, #1
    b       find
found:
    ldr     w21, [x19]              // pong's current id
    mov     x8, #7
    svc     #0
    mov     x26, x1                 // start time (ns)
    mov     x23, #0                 // counter
    adr     x24, request
    adr     x25, response
round:
    str     x23, [x24]
    mov     x0, x21
    mov     x1, #1                  // operation 1
    mov     x2, x24
    mov     x3, #8
    mov     x4, x25
    mov     x5, #8
    mov     x8, #0
    svc     #0
    cbnz    x0, failed
    cmp     x1, #8
    b.ne    failed
    ldr     x9, [x25]
    add     x10, x23, #1
    cmp     x9, x10
    b.ne    failed
    mov     x23, x10
    cmp     x23, #1000
    b.ne    round
    mov     x8, #7
    svc     #0
    sub     x26, x1, x26            // elapsed ns
    adr     x24, text
    adr     x0, ok_message
    mov     x1, #(ok_end - ok_message)
    bl      append
    mov     x9, #1000
    udiv    x0, x26, x9
    bl      append_decimal
    adr     x0, ns_message
    mov     x1, #(ns_end - ns_message)
    bl      append
    adr     x0, text
    sub     x1, x24, x0
    b       log_and_exit
failed:
    adr     x0, failed_message
    mov     x1, #(failed_end - failed_message)
    b       log_and_exit
not_found:
    adr     x0, missing_message
    mov     x1, #(missing_end - missing_message)
log_and_exit:
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
    .balign 8
name:
    .ascii  "pong\0\0\0\0"
ok_message:
    .ascii  "1000 round trips ok, "
ok_end:
ns_message:
    .ascii  " ns each"
ns_end:
failed_message:
    .ascii  "round trip failed"
failed_end:
missing_message:
    .ascii  "no task named pong"
missing_end:

    .section .bss
    .balign 16
record:
    .space  64
request:
    .space  16
response:
    .space  16
text:
    .space  128
digits:
    .space  32
digits_end:

// ping: an IPC client. Finds the task named "pong" with `task_info` over the task table (every
// slot index below the table size; vacant slots answer NoSuchTask), then makes 1000 `send`
// round trips carrying a counter and checks every reply is the counter plus one. Logs
// "1000 round trips ok: bench case=ipc ops=1000 elapsed_ns=E" (guest time from `get_time`) or
// what went wrong, and exits.
#include "common.S"
    .equ    ROUNDS, 1000

    .global _start
_start:
    adr     x19, record
    mov     x20, #0                 // task index
    mov     x27, #64                // slots to look at (the ABI's table size)
    ldr     x22, name               // "pong\0\0\0\0"
find:
    cmp     x20, x27
    b.hs    not_found
    mov     x0, x20
    mov     x1, x19
    mov     x2, #TASK_INFO_BYTES
    mov     x8, #SYS_TASK_INFO
    svc     #0
    add     x20, x20, #1
    cbnz    x0, find                // a vacant slot
    ldr     w9, [x19, #4]           // state: 5 faulted, 6 exited
    cmp     w9, #5
    b.hs    find
    ldr     x9, [x19, #24]
    cmp     x9, x22
    b.ne    find
    ldr     w21, [x19]              // pong's current id
    SETTLE
    GET_TIME x26                    // start time (ns)
    mov     x23, #0                 // counter
    adr     x25, response
round:
    adr     x9, request
    str     x23, [x9]
    mov     x0, x21
    mov     x1, #1                  // operation 1
    mov     x2, x9
    mov     x3, #8
    mov     x4, x25
    mov     x5, #8
    mov     x8, #SYS_SEND
    svc     #0
    cbnz    x0, failed
    cmp     x1, #8
    b.ne    failed
    ldr     x9, [x25]
    add     x10, x23, #1
    cmp     x9, x10
    b.ne    failed
    mov     x23, x10
    cmp     x23, #ROUNDS
    b.ne    round
    GET_TIME x9
    sub     x26, x9, x26            // elapsed ns
    LINE_START
    APPEND_TEXT "1000 round trips ok: bench case=ipc ops=1000 elapsed_ns="
    APPEND_NUMBER x26
    b       log_and_exit
failed:
    LINE_START
    APPEND_TEXT "round trip failed"
    b       log_and_exit
not_found:
    LINE_START
    APPEND_TEXT "no task named pong"
log_and_exit:
    LOG_LINE
    EXIT    0
9:  b       9b

    .section .rodata
    .balign 8
name:
    .ascii  "pong\0\0\0\0"

    .section .bss
    .balign 16
record:
    .space  64
request:
    .space  16
response:
    .space  16

// supervisor: the fault supervisor task (Hubris-style recovery outside the kernel). The kernel
// starts it with the task table (supervisor flag, priority 0) and restarts it if it dies. It
// waits in `receive` for SUPERVISOR_FAULT_BIT (the kernel posts it when any task faults, exits
// or is killed) and for its own timer bit; on each wake-up it:
//
// 1. reads `read_fault` of every slot of the table (`task_info` of itself gives the table size);
//    a stopped incarnation it has not seen before is handled once: exited (kind 0) and killed
//    (kind 7) tasks stay stopped (the kernel frees their slots); a fault schedules a restart
//    with exponential back-off: 10 ms after the first fault, doubling up to 10 s, from 10 ms
//    again once the task ran 30 s since its last restart (tasking::supervisor's policy). It
//    logs "fault index=I id=0xID kind=K restart_in_ms=D".
// 2. restarts every slot whose time has come (`restart_task`), after checking with
//    `read_fault` that it is still the incarnation it scheduled and not killed meanwhile;
// 3. arms `set_timer` for the earliest pending restart (or cancels it).
//
// A message from a task gets reply code 1 (no operations). State per slot, in .bss: faults,
// restart due time, last restart time, the stopped id last handled, the id it restarted.
#include "common.S"
    .equ    MAX_SLOTS, 64
    .equ    FAULT_BIT, 0x80000000
    .equ    TIMER_BIT, 1
    .equ    INITIAL_BACKOFF_NS, 10000000
    .equ    MAX_BACKOFF_NS, 10000000000
    .equ    HEALTHY_NS, 30000000000
    .equ    MAX_DOUBLINGS, 20
    .equ    KIND_EXITED, 0
    .equ    KIND_KILLED, 7
    .equ    ANY, 0xffffffff         // ANY_SENDER, KERNEL, CURRENT - 1, "no id"
    .equ    CURRENT, 0xfffffffe

    .global _start
_start:
    adr     x9, seen
    adr     x10, restarted
    mov     x11, #MAX_SLOTS
    mov     w12, #ANY
1:  str     w12, [x9], #4
    str     w12, [x10], #4
    subs    x11, x11, #1
    b.ne    1b
    LINE_START
    APPEND_TEXT "up"
    LOG_LINE

pass:
    GET_TIME x19                    // now
    ldr     x0, =CURRENT            // table size: x2 of task_info
    adr     x1, record
    mov     x2, #TASK_INFO_BYTES
    mov     x8, #SYS_TASK_INFO
    svc     #0
    mov     x26, #MAX_SLOTS
    cbnz    x0, 2f
    cmp     x2, x26
    csel    x26, x2, x26, lo        // slots to look at
2:  mov     x20, #0
scan:
    cmp     x20, x26
    b.hs    scan_done
    mov     x0, x20
    mov     x8, #SYS_READ_FAULT
    svc     #0
    cbnz    x0, next_scan           // running, vacant or past the table
    adr     x9, seen
    ldr     w10, [x9, x20, lsl #2]
    cmp     w10, w4
    b.eq    next_scan               // this stop is already handled
    str     w4, [x9, x20, lsl #2]
    cbz     x1, next_scan           // exited: stays stopped
    cmp     x1, #KIND_KILLED
    b.eq    next_scan               // killed: stays stopped
    mov     x21, x1                 // kind
    mov     x22, x4                 // id
    // Not the incarnation we restarted: a new task in this slot, with no history.
    adr     x9, restarted
    ldr     w10, [x9, x20, lsl #2]
    cmp     w10, w22
    b.eq    3f
    adr     x9, faults
    str     wzr, [x9, x20, lsl #2]
    adr     x9, last_restart
    str     xzr, [x9, x20, lsl #3]
3:  // Healthy for long enough since its last restart: back-off from the start.
    adr     x9, last_restart
    ldr     x10, [x9, x20, lsl #3]
    cbz     x10, 4f
    sub     x10, x19, x10
    ldr     x11, =HEALTHY_NS
    cmp     x10, x11
    b.lo    4f
    adr     x9, faults
    str     wzr, [x9, x20, lsl #2]
4:  adr     x9, faults
    ldr     w10, [x9, x20, lsl #2]
    add     w10, w10, #1
    str     w10, [x9, x20, lsl #2]
    sub     w10, w10, #1            // doublings = min(faults - 1, MAX_DOUBLINGS)
    mov     w11, #MAX_DOUBLINGS
    cmp     w10, w11
    csel    w10, w11, w10, hi
    ldr     x11, =INITIAL_BACKOFF_NS
    lsl     x11, x11, x10
    ldr     x12, =MAX_BACKOFF_NS
    cmp     x11, x12
    csel    x23, x12, x11, hi       // delay
    add     x10, x19, x23
    adr     x9, due
    str     x10, [x9, x20, lsl #3]
    LINE_START
    APPEND_TEXT "fault index="
    APPEND_NUMBER x20
    APPEND_TEXT " id=0x"
    mov     x0, x22
    bl      append_hex
    APPEND_TEXT " kind="
    APPEND_NUMBER x21
    APPEND_TEXT " restart_in_ms="
    ldr     x9, =1000000
    udiv    x0, x23, x9
    bl      append_decimal
    LOG_LINE
next_scan:
    add     x20, x20, #1
    b       scan
scan_done:
    mov     x20, #0
    mov     x25, #-1                // earliest pending restart
restarts:
    cmp     x20, #MAX_SLOTS
    b.hs    restarts_done
    adr     x9, due
    ldr     x10, [x9, x20, lsl #3]
    cbz     x10, next_restart
    cmp     x10, x19
    b.hi    later
    str     xzr, [x9, x20, lsl #3]
    mov     x0, x20                 // still the stop we scheduled, and not killed since?
    mov     x8, #SYS_READ_FAULT
    svc     #0
    cbnz    x0, next_restart
    cbz     x1, next_restart
    cmp     x1, #KIND_KILLED
    b.eq    next_restart
    adr     x9, seen
    ldr     w10, [x9, x20, lsl #2]
    cmp     w10, w4
    b.ne    next_restart
    mov     x0, x20
    mov     x8, #SYS_RESTART_TASK
    svc     #0
    cbnz    x0, next_restart
    adr     x9, restarted
    str     w1, [x9, x20, lsl #2]
    adr     x9, last_restart
    str     x19, [x9, x20, lsl #3]
    b       next_restart
later:
    cmp     x10, x25
    csel    x25, x10, x25, lo
next_restart:
    add     x20, x20, #1
    b       restarts
restarts_done:
    mov     x0, #0                  // no restart pending: cancel the timer
    mov     x1, #0
    cmn     x25, #1
    b.eq    5f
    mov     x0, x25
    mov     x1, #TIMER_BIT
5:  mov     x8, #SYS_SET_TIMER
    svc     #0
wait:
    adr     x0, message
    mov     x1, #16
    ldr     x2, =(FAULT_BIT | TIMER_BIT)
    mov     x3, #ANY
    mov     x8, #SYS_RECEIVE
    svc     #0
    cbnz    x0, pass
    mov     x9, #ANY
    cmp     x1, x9
    b.eq    pass                    // a notification: the fault bit or the timer
    mov     x0, x1                  // a message: no operations, reply code 1
    mov     x1, #1
    adr     x2, message
    mov     x3, #0
    mov     x8, #SYS_REPLY
    svc     #0
    b       wait

    .section .bss
    .balign 16
record:
    .space  64
message:
    .space  16
due:
    .space  (MAX_SLOTS * 8)
last_restart:
    .space  (MAX_SLOTS * 8)
faults:
    .space  (MAX_SLOTS * 4)
seen:
    .space  (MAX_SLOTS * 4)
restarted:
    .space  (MAX_SLOTS * 4)

// common.S: what the task programs share, included first (`#include "common.S"`; .S files go
// through the C preprocessor). Syscall numbers of ../abi/SYSCALLS.md, macros for the common
// call shapes, and two text helpers for building one log line in `line_buffer`:
//
//   LINE_START                x24 = start of line_buffer (x24 is the output cursor)
//   APPEND_TEXT "literal"     copies the literal at x24
//   APPEND_NUMBER xN          writes xN in decimal at x24 (`bl append_hex`: x0 in hex)
//   LOG_LINE                  `log` of line_buffer..x24
//
// The helpers clobber x0, x1 and x9-x14 only, so a program keeps its state in x15-x23 and
// x25-x28 (x24 is the cursor). Result lines of benchmarks read `bench case=NAME key=value ...`
// (cargo xtask bench kernel parses them).

    .equ    SYS_SEND, 0
    .equ    SYS_RECEIVE, 1
    .equ    SYS_REPLY, 2
    .equ    SYS_POST, 3
    .equ    SYS_YIELD, 4
    .equ    SYS_SLEEP, 5
    .equ    SYS_SET_TIMER, 6
    .equ    SYS_GET_TIME, 7
    .equ    SYS_EXIT, 8
    .equ    SYS_LOG, 9
    .equ    SYS_TASK_INFO, 10
    .equ    SYS_READ_FAULT, 11
    .equ    SYS_RESTART_TASK, 12
    .equ    TASK_INFO_BYTES, 48
    .equ    LINE_BYTES, 256

// x\reg = monotonic ns (get_time's x1).
.macro GET_TIME reg
    mov     x8, #SYS_GET_TIME
    svc     #0
    mov     \reg, x1
.endm

.macro EXIT code
    mov     x0, #\code
    mov     x8, #SYS_EXIT
    svc     #0
.endm

.macro LINE_START
    adr     x24, line_buffer
.endm

.macro APPEND_TEXT text
    .pushsection .rodata
.Ltext\@:
    .ascii  "\text"
.Ltext_end\@:
    .popsection
    adr     x0, .Ltext\@
    mov     x1, #(.Ltext_end\@ - .Ltext\@)
    bl      append
.endm

.macro APPEND_NUMBER reg
    mov     x0, \reg
    bl      append_decimal
.endm

.macro LOG_LINE
    adr     x0, line_buffer
    sub     x1, x24, x0
    mov     x8, #SYS_LOG
    svc     #0
.endm

// Sleeps 20 ms before a measurement, so that the console has finished answering the `spawn`
// that started the task: under -icount every core's instructions advance the one guest clock.
.macro SETTLE
    ldr     x0, =20000000
    mov     x8, #SYS_SLEEP
    svc     #0
.endm

// The benchmark loop of `syscall` and `switch`: \rounds calls of syscall \number between two
// time stamps, then logs "bench case=\case ops=\ops elapsed_ns=E" and exits.
.macro TIMED_SYSCALL_LOOP number, rounds, case, ops
    SETTLE
    GET_TIME x19
    ldr     x20, =\rounds
.Lloop\@:
    mov     x8, #\number
    svc     #0
    subs    x20, x20, #1
    b.ne    .Lloop\@
    GET_TIME x21
    sub     x21, x21, x19
    LINE_START
    APPEND_TEXT "bench case=\case ops="
    ldr     x0, =\ops
    bl      append_decimal
    APPEND_TEXT " elapsed_ns="
    APPEND_NUMBER x21
    LOG_LINE
    EXIT    0
.Lhang\@:
    b       .Lhang\@
.endm

    .section .text
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

append_hex:                         // write x0 in hexadecimal (no 0x, no leading zeros) at x24
    mov     x10, #60
    mov     x11, #0                 // a digit was written
6:  lsr     x12, x0, x10
    and     x12, x12, #15
    orr     x13, x12, x11
    cbnz    x13, 7f
    cbnz    x10, 8f                 // skip a leading zero (but not the last digit)
7:  mov     x11, #1
    add     x13, x12, #'0'
    add     x14, x12, #('a' - 10)
    cmp     x12, #10
    csel    x12, x14, x13, hs
    strb    w12, [x24], #1
8:  subs    x10, x10, #4
    b.pl    6b
    ret

    .section .bss
    .balign 16
line_buffer:
    .space  LINE_BYTES
digits:
    .space  32
digits_end:
    .section .text

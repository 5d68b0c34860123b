// spin: a CPU-bound batch task. Counts forever in x19 (preserved across syscalls) and logs a
// line every 2^27 iterations, so a console can see it is still being scheduled.
    .section .text
    .global _start
_start:
    mov     x19, #0
1:  add     x19, x19, #1
    tst     x19, #0x7ffffff
    b.ne    1b
    adr     x0, message
    mov     x1, #(message_end - message)
    mov     x8, #9
    svc     #0
    b       1b

    .section .rodata
message:
    .ascii  "still spinning"
message_end:

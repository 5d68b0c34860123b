// fault: logs, then loads from a kernel address. The load is a data abort from EL0 (TTBR1
// addresses are not accessible to EL0); the kernel stops the task, reports it and restarts it
// with back-off. The `exit` after it is never reached.
    .section .text
    .global _start
_start:
    adr     x0, message
    mov     x1, #(message_end - message)
    mov     x8, #9
    svc     #0
    ldr     x1, =0xffffff8000080000
    ldr     x2, [x1]
    mov     x0, #1
    mov     x8, #8
    svc     #0
1:  b       1b

    .section .rodata
message:
    .ascii  "reading kernel memory"
message_end:

// hello: the smallest task. Logs one line through the `log` syscall (9), then `exit(0)` (8).
    .section .text
    .global _start
_start:
    adr     x0, message
    mov     x1, #(message_end - message)
    mov     x8, #9
    svc     #0
    mov     x0, #0
    mov     x8, #8
    svc     #0
1:  b       1b

    .section .rodata
message:
    .ascii  "hello from EL0"
message_end:

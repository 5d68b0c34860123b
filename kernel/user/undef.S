// undef: executes an undefined instruction; the kernel reports an illegal-instruction fault.
    .section .text
    .global _start
_start:
    adr     x0, message
    mov     x1, #(message_end - message)
    mov     x8, #9
    svc     #0
    udf     #0
    mov     x0, #1
    mov     x8, #8
    svc     #0
1:  b       1b

    .section .rodata
message:
    .ascii  "executing udf"
message_end:

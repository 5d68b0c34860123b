// pong: an IPC server. Receives 8-byte requests from anyone (`receive`, 1), replies (`reply`,
// 2) with the request's value plus one. Runs until killed.
    .section .text
    .global _start
_start:
    adr     x19, request
    adr     x20, response
serve:
    mov     x0, x19
    mov     x1, #8
    mov     x2, #0                  // no notifications
    mov     x3, #0xffffffff         // ANY_SENDER
    mov     x8, #1
    svc     #0
    cbnz    x0, serve               // an error: receive again
    mov     x21, x1                 // the client
    ldr     x9, [x19]
    add     x9, x9, #1
    str     x9, [x20]
    mov     x0, x21
    mov     x1, #0                  // reply code 0
    mov     x2, x20
    mov     x3, #8
    mov     x8, #2
    svc     #0
    b       serve

    .section .bss
    .balign 16
request:
    .space  16
response:
    .space  16

// EL1 exception vector table (Arm ARM D1.10.2): 16 entries of 0x80 bytes, 2 KiB aligned.
//
// Every entry saves the full interrupted context (x0-x30, ELR, SPSR, SP_EL0, TPIDR_EL0, q0-q31,
// FPCR, FPSR; SP_EL0 and TPIDR_EL0 are an EL0 task's stack and thread pointer) into a
// TrapFrame on the current stack and calls exception_dispatch(frame) in Rust
// (kernel/src/arch/aarch64/exceptions.rs). The FP/SIMD registers are saved too because Rust code
// in any handler may use NEON registers (memcpy, formatting) and the interrupted code may be a
// NEON kernel of the inference engine. The frame layout must match TrapFrame.

.equ FRAME_SIZE, 816        // 31*8 + ELR + SPSR + kind = 272, + SP_EL0 + TPIDR_EL0 = 288, + q0-q31 (512) + FPCR/FPSR (16)
.equ FP_OFFSET, 288

.macro VECTOR kind
.balign 0x80
    sub     sp, sp, #FRAME_SIZE
    stp     x0, x1, [sp, #0]
    mov     x0, #\kind
    b       exception_common
.endm

.section .text
.balign 0x800
.global exception_vectors
exception_vectors:
    VECTOR 0    // current EL with SP_EL0: synchronous
    VECTOR 1    //   IRQ
    VECTOR 2    //   FIQ
    VECTOR 3    //   SError
    VECTOR 4    // current EL with SP_ELx: synchronous
    VECTOR 5    //   IRQ
    VECTOR 6    //   FIQ
    VECTOR 7    //   SError
    VECTOR 8    // lower EL, AArch64: synchronous
    VECTOR 9    //   IRQ
    VECTOR 10   //   FIQ
    VECTOR 11   //   SError
    VECTOR 12   // lower EL, AArch32: synchronous
    VECTOR 13   //   IRQ
    VECTOR 14   //   FIQ
    VECTOR 15   //   SError

exception_common:
    stp     x2, x3, [sp, #16]
    stp     x4, x5, [sp, #32]
    stp     x6, x7, [sp, #48]
    stp     x8, x9, [sp, #64]
    stp     x10, x11, [sp, #80]
    stp     x12, x13, [sp, #96]
    stp     x14, x15, [sp, #112]
    stp     x16, x17, [sp, #128]
    stp     x18, x19, [sp, #144]
    stp     x20, x21, [sp, #160]
    stp     x22, x23, [sp, #176]
    stp     x24, x25, [sp, #192]
    stp     x26, x27, [sp, #208]
    stp     x28, x29, [sp, #224]
    mrs     x1, elr_el1
    stp     x30, x1, [sp, #240]
    mrs     x1, spsr_el1
    stp     x1, x0, [sp, #256]          // SPSR, kind
    mrs     x1, sp_el0
    mrs     x2, tpidr_el0
    stp     x1, x2, [sp, #272]          // SP_EL0, TPIDR_EL0
    add     x1, sp, #FP_OFFSET
    stp     q0, q1, [x1, #0]
    stp     q2, q3, [x1, #32]
    stp     q4, q5, [x1, #64]
    stp     q6, q7, [x1, #96]
    stp     q8, q9, [x1, #128]
    stp     q10, q11, [x1, #160]
    stp     q12, q13, [x1, #192]
    stp     q14, q15, [x1, #224]
    stp     q16, q17, [x1, #256]
    stp     q18, q19, [x1, #288]
    stp     q20, q21, [x1, #320]
    stp     q22, q23, [x1, #352]
    stp     q24, q25, [x1, #384]
    stp     q26, q27, [x1, #416]
    stp     q28, q29, [x1, #448]
    stp     q30, q31, [x1, #480]
    mrs     x2, fpcr
    mrs     x3, fpsr
    str     x2, [x1, #512]
    str     x3, [x1, #520]
    mov     x0, sp
    bl      exception_dispatch

// Restores the frame at sp and returns from the exception. task_enter jumps here with a task's
// frame copied onto the stack.
exception_return:
    add     x1, sp, #FP_OFFSET
    ldr     x2, [x1, #512]
    ldr     x3, [x1, #520]
    msr     fpcr, x2
    msr     fpsr, x3
    ldp     q0, q1, [x1, #0]
    ldp     q2, q3, [x1, #32]
    ldp     q4, q5, [x1, #64]
    ldp     q6, q7, [x1, #96]
    ldp     q8, q9, [x1, #128]
    ldp     q10, q11, [x1, #160]
    ldp     q12, q13, [x1, #192]
    ldp     q14, q15, [x1, #224]
    ldp     q16, q17, [x1, #256]
    ldp     q18, q19, [x1, #288]
    ldp     q20, q21, [x1, #320]
    ldp     q22, q23, [x1, #352]
    ldp     q24, q25, [x1, #384]
    ldp     q26, q27, [x1, #416]
    ldp     q28, q29, [x1, #448]
    ldp     q30, q31, [x1, #480]
    ldp     x1, x2, [sp, #272]
    msr     sp_el0, x1
    msr     tpidr_el0, x2
    ldr     x1, [sp, #256]
    msr     spsr_el1, x1
    ldp     x30, x1, [sp, #240]
    msr     elr_el1, x1
    ldp     x0, x1, [sp, #0]
    ldp     x2, x3, [sp, #16]
    ldp     x4, x5, [sp, #32]
    ldp     x6, x7, [sp, #48]
    ldp     x8, x9, [sp, #64]
    ldp     x10, x11, [sp, #80]
    ldp     x12, x13, [sp, #96]
    ldp     x14, x15, [sp, #112]
    ldp     x16, x17, [sp, #128]
    ldp     x18, x19, [sp, #144]
    ldp     x20, x21, [sp, #160]
    ldp     x22, x23, [sp, #176]
    ldp     x24, x25, [sp, #192]
    ldp     x26, x27, [sp, #208]
    ldp     x28, x29, [sp, #224]
    add     sp, sp, #FRAME_SIZE
    eret

// Entering an EL0 task from a kernel idle loop, and leaving it again (kernel/src/task/mod.rs).
//
// task_enter(x0 = frame to resume, x1 = KernelContext of this core): saves the kernel's
// callee-saved registers (x19-x30, sp, d8-d15, DAIF) into the context, copies the frame onto the
// stack and returns through exception_return (eret to EL0). SP_EL1 after the eret is the sp of
// this call, so the task's exceptions push their frames below the idle loop's stack, never over
// it. task_leave(x0 = the same context) abandons whatever exception handler runs on that stack
// and returns from task_enter: the core is back in its idle loop, IRQs masked as it left it.
.equ CONTEXT_SP, 96
.equ CONTEXT_FP, 104
.equ CONTEXT_DAIF, 168

.global task_enter
task_enter:
    stp     x19, x20, [x1, #0]
    stp     x21, x22, [x1, #16]
    stp     x23, x24, [x1, #32]
    stp     x25, x26, [x1, #48]
    stp     x27, x28, [x1, #64]
    stp     x29, x30, [x1, #80]
    mov     x2, sp
    str     x2, [x1, #CONTEXT_SP]
    stp     d8, d9, [x1, #CONTEXT_FP]
    stp     d10, d11, [x1, #CONTEXT_FP + 16]
    stp     d12, d13, [x1, #CONTEXT_FP + 32]
    stp     d14, d15, [x1, #CONTEXT_FP + 48]
    mrs     x2, daif
    str     x2, [x1, #CONTEXT_DAIF]
    sub     sp, sp, #FRAME_SIZE
    mov     x2, sp
    mov     x3, #(FRAME_SIZE / 16)
1:  ldp     x4, x5, [x0], #16
    stp     x4, x5, [x2], #16
    subs    x3, x3, #1
    b.ne    1b
    b       exception_return

.global task_leave
task_leave:
    ldp     x19, x20, [x0, #0]
    ldp     x21, x22, [x0, #16]
    ldp     x23, x24, [x0, #32]
    ldp     x25, x26, [x0, #48]
    ldp     x27, x28, [x0, #64]
    ldp     x29, x30, [x0, #80]
    ldr     x2, [x0, #CONTEXT_SP]
    mov     sp, x2
    ldp     d8, d9, [x0, #CONTEXT_FP]
    ldp     d10, d11, [x0, #CONTEXT_FP + 16]
    ldp     d12, d13, [x0, #CONTEXT_FP + 32]
    ldp     d14, d15, [x0, #CONTEXT_FP + 48]
    ldr     x2, [x0, #CONTEXT_DAIF]
    msr     daif, x2
    ret

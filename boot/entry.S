// Anneal boot entry: arm64 Image header, exception-level drop, boot page tables, MMU on, jump high.
//
// This file is included into the kernel crate with global_asm! (kernel/src/arch/aarch64/boot.rs).
// Until the MMU is on, everything here is position-independent: the image runs at whatever
// physical address the loader chose (0x4008_0000 on QEMU virt, 0x8_0000 on the Pi and QEMU
// raspi4b), and addresses come from adr/adrp (PC-relative, so they are physical). Absolute
// (higher-half) addresses are only loaded with `ldr xN, =symbol` right before jumping high.
//
// Boot flow of the primary core:
//   1. remember x0 (DTB physical address) and the load address;
//   2. drop to EL1 from EL3, EL2 or EL1 (configure what the lower level needs: AArch64 at EL1,
//      timer access, no FP traps, GICv3 system-register access);
//   3. FP/SIMD on (CPACR_EL1.FPEN) before any Rust code runs (Rust uses NEON registers anywhere);
//   4. zero .bss, set the boot stack (core 0's slot in .stacks);
//   5. build the boot page tables: TTBR0 identity-maps the 1 GiB around the load address (so the
//      instructions right after the MMU switch still fetch), TTBR1 maps the image at its link
//      address with 2 MiB blocks;
//   6. MMU and caches on, jump to the link address, move SP high, install the vectors, call
//      kernel_main(dtb_physical, load_physical).
// Secondary cores enter at secondary_entry (PSCI CPU_ON or spin-table release) and share steps
// 2, 3 and 6 with the final TTBR1 tables the primary built (see kernel/src/arch/aarch64/smp.rs).

.equ PAGE_DESC_NORMAL_BLOCK, 0x701          // valid block, AttrIndx 0 (normal WB), SH inner, AF
.equ PAGE_DESC_TABLE, 0x3
.equ MAIR_VALUE, 0x4404ff                   // attr0 normal WB RA/WA, attr1 Device-nGnRE, attr2 normal NC
// TCR_EL1: T0SZ=16 (48-bit task VAs in TTBR0, 4 levels: what kernel/tasking builds),
// T1SZ=25 (39-bit kernel VAs in TTBR1, 3 levels: kcore::page_table), 4 KiB granules,
// inner/outer write-back RA/WA table walks, inner shareable, 8-bit ASIDs from TTBR0.
.equ TCR_VALUE, (16 | (1 << 8) | (1 << 10) | (3 << 12) | (0 << 14) | (25 << 16) | (1 << 24) | (1 << 26) | (3 << 28) | (2 << 30))
// SCTLR_EL1: RES1 bits of ARMv8.0 (11, 20, 22, 23, 28, 29) with MMU off, caches off.
.equ SCTLR_EL1_RES1, 0x30d00800
// SCTLR_EL1 with M (MMU), C (data cache), SA (stack alignment check), I (instruction cache).
.equ SCTLR_EL1_ON, (SCTLR_EL1_RES1 | (1 << 0) | (1 << 2) | (1 << 3) | (1 << 12))
.equ SPSR_EL1H_MASKED, 0x3c5                // EL1h, D A I F masked
.equ HCR_EL2_RW, (1 << 31)                  // EL1 is AArch64
.equ SCR_EL3_VALUE, ((1 << 0) | (1 << 8) | (1 << 10))  // NS, HVC enabled, RW (lower levels AArch64)
.equ CPTR_EL2_VALUE, 0x33ff                 // RES1 bits, TFP=0: no FP/SIMD traps
.equ CPACR_EL1_FPEN, (3 << 20)

.section .text.boot.header, "ax"
.global _start
_start:
    b       primary_entry                   // code0: branch over the header
    .long   0                               // code1
    .quad   0x80000                         // text_offset: load 512 KiB above a 2 MiB boundary
    .quad   __image_size                    // image_size, including .bss and stacks
    .quad   0xa                             // flags: little-endian, 4 KiB pages, place anywhere
    .quad   0                               // res2
    .quad   0                               // res3
    .quad   0                               // res4
    .ascii  "ARM\x64"                       // magic
    .long   0                               // res5 (no PE header)

.section .text.boot, "ax"
primary_entry:
    mov     x19, x0                         // DTB physical address (0 when none)
    adr     x20, _start                     // physical load address
    bl      drop_to_el1
    bl      enable_fp_simd

    // Zero .bss (physical addresses: the MMU is off).
    adrp    x0, __bss_start
    add     x0, x0, :lo12:__bss_start
    adrp    x1, __bss_end
    add     x1, x1, :lo12:__bss_end
1:  cmp     x0, x1
    b.hs    2f
    stp     xzr, xzr, [x0], #16
    b       1b
2:
    // Boot stack: the top of core 0's slot in .stacks.
    ldr     x0, =__boot_stack_top_offset
    add     x0, x20, x0
    mov     sp, x0

    bl      build_boot_tables
    adrp    x0, boot_ttbr0_level0
    add     x0, x0, :lo12:boot_ttbr0_level0
    adrp    x1, boot_ttbr1_level1
    add     x1, x1, :lo12:boot_ttbr1_level1
    bl      enable_mmu
    ldr     x0, =primary_high
    br      x0

primary_high:
    // Now at the link address. SP still holds a physical address: move it high.
    ldr     x1, =_start
    sub     x1, x1, x20                     // virtual - physical offset of the image
    add     sp, sp, x1
    ldr     x2, =exception_vectors
    msr     vbar_el1, x2
    msr     tpidr_el1, xzr                  // core index 0
    isb
    mov     x0, x19
    mov     x1, x20
    bl      kernel_main
    b       park_forever

// Secondary cores: x0 is the PSCI context id (unused) or 0 from a spin table. The primary has
// filled SECONDARY_BOOT (kernel/src/arch/aarch64/smp.rs) and cleaned it to memory:
//   [0] TTBR1 physical address, [8] stack top (virtual), [16] core index.
.global secondary_entry
secondary_entry:
    bl      drop_to_el1
    bl      enable_fp_simd
    adrp    x21, SECONDARY_BOOT
    add     x21, x21, :lo12:SECONDARY_BOOT
    ldr     x1, [x21, #0]
    adrp    x0, boot_ttbr0_level0
    add     x0, x0, :lo12:boot_ttbr0_level0
    bl      enable_mmu
    ldr     x0, =secondary_high
    br      x0
secondary_high:
    ldr     x21, =SECONDARY_BOOT
    ldr     x1, [x21, #8]
    mov     sp, x1
    ldr     x2, =exception_vectors
    msr     vbar_el1, x2
    ldr     x0, [x21, #16]
    msr     tpidr_el1, x0
    isb
    bl      secondary_main
    b       park_forever

park_forever:
    wfe
    b       park_forever

// Drop from the current exception level to EL1h with interrupts masked; returns to x30 at EL1.
// Uses x0-x2 only; touches no memory.
drop_to_el1:
    mrs     x0, CurrentEL
    ubfx    x0, x0, #2, #2
    cmp     x0, #1
    b.eq    3f
    cmp     x0, #2
    b.eq    1f
    // EL3: lower levels non-secure AArch64, HVC allowed, no FP traps; then EL2 setup below.
    ldr     x1, =SCR_EL3_VALUE
    msr     scr_el3, x1
    msr     cptr_el3, xzr
    mrs     x1, id_aa64pfr0_el1
    ubfx    x1, x1, #24, #4                 // GIC system register interface implemented?
    cbz     x1, 4f
    mov     x1, #0xf                        // ICC_SRE_EL3: SRE, DFB, DIB, Enable (lower ELs)
    msr     S3_6_C12_C12_5, x1
    isb
4:  mrs     x1, id_aa64pfr0_el1
    ubfx    x1, x1, #8, #4                  // EL2 implemented? (its registers UNDEF otherwise)
    cbz     x1, 5f
    mov     x2, x30
    bl      configure_el2
    mov     x30, x2
    b       6f
5:  ldr     x0, =SCTLR_EL1_RES1
    msr     sctlr_el1, x0
6:  ldr     x1, =SPSR_EL1H_MASKED
    msr     spsr_el3, x1
    msr     elr_el3, x30
    eret
1:  // EL2
    mov     x2, x30
    bl      configure_el2
    mov     x30, x2
    ldr     x1, =SPSR_EL1H_MASKED
    msr     spsr_el2, x1
    msr     elr_el2, x30
    eret
3:  ret

// What EL1 needs from EL2: AArch64, counter and timer access, no FP traps, GICv3 system
// registers, MIDR/MPIDR reads that return the real values. Uses x0, x1.
configure_el2:
    ldr     x0, =HCR_EL2_RW
    msr     hcr_el2, x0
    mov     x0, #3                          // CNTHCTL_EL2: EL1PCTEN | EL1PCEN
    msr     cnthctl_el2, x0
    msr     cntvoff_el2, xzr
    ldr     x0, =CPTR_EL2_VALUE
    msr     cptr_el2, x0
    msr     hstr_el2, xzr
    mrs     x0, midr_el1
    msr     vpidr_el2, x0
    mrs     x0, mpidr_el1
    msr     vmpidr_el2, x0
    mrs     x0, id_aa64pfr0_el1
    ubfx    x0, x0, #24, #4
    cbz     x0, 1f
    mrs     x0, S3_4_C12_C9_5               // ICC_SRE_EL2
    orr     x0, x0, #0x1                    // SRE
    orr     x0, x0, #0x8                    // Enable: EL1 may use ICC_SRE_EL1
    msr     S3_4_C12_C9_5, x0
    isb
1:  ldr     x0, =SCTLR_EL1_RES1
    msr     sctlr_el1, x0
    ret

enable_fp_simd:
    mov     x0, #CPACR_EL1_FPEN
    msr     cpacr_el1, x0
    isb
    ret

// Boot tables (MMU off, physical addresses). x20 = physical load address.
//   TTBR0 level 0 -> level 1: one 1 GiB identity block containing the load address.
//   TTBR1 level 1 [0] -> level 2; level 2 [i] = 2 MiB block at (load & ~2MiB-1) + i*2MiB, for as
//   many blocks as the image (with .bss and stacks) needs.
build_boot_tables:
    adrp    x0, boot_ttbr0_level0
    add     x0, x0, :lo12:boot_ttbr0_level0
    adrp    x1, boot_ttbr0_level1
    add     x1, x1, :lo12:boot_ttbr0_level1
    lsr     x2, x20, #39                    // level-0 index of the load address
    orr     x3, x1, #PAGE_DESC_TABLE
    str     x3, [x0, x2, lsl #3]
    ubfx    x2, x20, #30, #9                // level-1 index of the load address
    lsr     x3, x20, #30
    lsl     x3, x3, #30                     // 1 GiB-aligned base
    ldr     x4, =PAGE_DESC_NORMAL_BLOCK
    orr     x3, x3, x4
    str     x3, [x1, x2, lsl #3]
    mov     x3, x4

    adrp    x0, boot_ttbr1_level1
    add     x0, x0, :lo12:boot_ttbr1_level1
    adrp    x1, boot_ttbr1_level2
    add     x1, x1, :lo12:boot_ttbr1_level2
    orr     x2, x1, #PAGE_DESC_TABLE
    str     x2, [x0]                        // level-1 entry 0 covers the first GiB of TTBR1

    ldr     x4, =__kernel_end
    ldr     x5, =__kernel_virtual_base
    sub     x4, x4, x5
    ldr     x6, =0x1fffff
    add     x4, x4, x6
    lsr     x4, x4, #21                     // number of 2 MiB blocks to map
    and     x2, x20, #~0x1fffff             // physical base of the first block
    orr     x2, x2, x3
    mov     x5, #0
1:  str     x2, [x1, x5, lsl #3]
    add     x2, x2, #0x200000
    add     x5, x5, #1
    cmp     x5, x4
    b.lo    1b
    dsb     sy
    ret

// x0 = TTBR0 physical, x1 = TTBR1 physical. Turns the MMU and caches on. Uses x0-x3.
enable_mmu:
    ldr     x2, =MAIR_VALUE
    msr     mair_el1, x2
    ldr     x2, =TCR_VALUE
    mrs     x3, id_aa64mmfr0_el1
    and     x3, x3, #0x7                    // PARange
    cmp     x3, #5
    b.ls    1f
    mov     x3, #5                          // at most 48-bit physical addresses
1:  orr     x2, x2, x3, lsl #32             // TCR_EL1.IPS
    msr     tcr_el1, x2
    msr     ttbr0_el1, x0
    msr     ttbr1_el1, x1
    isb
    tlbi    vmalle1
    dsb     nsh
    isb
    ldr     x2, =SCTLR_EL1_ON
    msr     sctlr_el1, x2
    isb
    ret

// Switches TTBR1 to x0. Called at its *physical* (identity-mapped) address by
// kernel/src/arch/aarch64/mmu.rs so no instruction fetch goes through TTBR1 while the old and new
// tables (2 MiB blocks vs 4 KiB pages for the same addresses) could both be in the TLB.
.global switch_ttbr1_identity
switch_ttbr1_identity:
    dsb     ishst
    msr     ttbr1_el1, x0
    isb
    tlbi    vmalle1is
    dsb     ish
    isb
    ret

.section .bss.boot_tables, "aw", %nobits
.balign 4096
.global boot_ttbr0_level0
boot_ttbr0_level0:
    .space 4096
.global boot_ttbr0_level1
boot_ttbr0_level1:
    .space 4096
.global boot_ttbr1_level1
boot_ttbr1_level1:
    .space 4096
.global boot_ttbr1_level2
boot_ttbr1_level2:
    .space 4096

# (a) ALU64-heavy loop: 1,000,000 rounds of splitmix64 folded into a rotating accumulator.
# r1 = buffer (seed = first 8 bytes, little endian), r2 = length (unused).
ldxdw %r3, [%r1+0]
lddw %r4, 0x9e3779b97f4a7c15
lddw %r5, 0xbf58476d1ce4e5b9
lddw %r6, 0x94d049bb133111eb
mov %r0, 0
mov %r7, 0
loop:
add %r3, %r4
mov %r8, %r3
mov %r9, %r8
rsh %r9, 30
xor %r8, %r9
mul %r8, %r5
mov %r9, %r8
rsh %r9, 27
xor %r8, %r9
mul %r8, %r6
mov %r9, %r8
rsh %r9, 31
xor %r8, %r9
mov %r9, %r0
lsh %r0, 5
rsh %r9, 59
or %r0, %r9
xor %r0, %r8
add %r7, 1
jne %r7, 1000000, loop
exit

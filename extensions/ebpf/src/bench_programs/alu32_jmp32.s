# (d) 32-bit ALU / JMP32 loop: 1,000,000 rounds of xorshift32 with data-dependent
# JMP32 branches (signed, bit-test, unsigned). r0 = (negatives << 32) | acc32.
ldxw %r3, [%r1+8]
or32 %r3, 1
mov32 %r0, 0
mov32 %r4, 0
mov32 %r5, 0
loop:
mov32 %r6, %r3
lsh32 %r6, 13
xor32 %r3, %r6
mov32 %r6, %r3
rsh32 %r6, 17
xor32 %r3, %r6
mov32 %r6, %r3
lsh32 %r6, 5
xor32 %r3, %r6
jslt32 %r3, 0, negative
add32 %r0, %r3
ja mix
negative:
mov32 %r6, %r3
arsh32 %r6, 7
xor32 %r0, %r6
add32 %r5, 1
mix:
mul32 %r0, 0x01000193
jset32 %r3, 0x100, skip
sub32 %r0, %r4
skip:
add32 %r4, 1
jlt32 %r4, 1000000, loop
lsh %r5, 32
or %r0, %r5
exit

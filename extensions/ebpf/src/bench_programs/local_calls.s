# (e) BPF-to-BPF local calls: for each 8-byte word of the buffer, main calls mix(word, acc),
# which spills acc to its stack frame and calls fold(word). Call depth 2, 2 calls per word.
mov %r6, %r1
mov %r7, %r2
mov %r8, 0
mov %r9, 0
loop:
mov %r3, %r8
add %r3, 8
jgt %r3, %r7, done
mov %r3, %r6
add %r3, %r8
ldxdw %r1, [%r3+0]
mov %r2, %r9
call local mix
mov %r9, %r0
add %r8, 8
ja loop
done:
mov %r0, %r9
exit
mix:
stxdw [%r10-8], %r2
call local fold
ldxdw %r2, [%r10-8]
xor %r0, %r2
mov %r3, %r0
lsh %r0, 7
rsh %r3, 57
or %r0, %r3
exit
fold:
mov %r0, %r1
rsh %r0, 32
mov32 %r1, %r1
mul %r1, 0x2545f491
mul %r0, 0x61c88647
xor %r0, %r1
add %r0, 0x1234567
exit

# (c) Branchy state machine: classify every byte (letter / digit / space / newline / other)
# and count tokens. States: 0 = between tokens, 1 = in word (letters, then alnum),
# 2 = in number. r0 = fold of (words, numbers, puncts, lines, spaces) with multiplier 65599.
add %r2, %r1
mov %r4, 0
mov %r5, 0
mov %r6, 0
mov %r7, 0
mov %r8, 0
mov %r9, 0
loop:
jge %r1, %r2, done
ldxb %r0, [%r1+0]
add %r1, 1
mov %r3, %r0
or %r3, 0x20
sub %r3, 0x61
jlt %r3, 26, letter
mov %r3, %r0
sub %r3, 0x30
jlt %r3, 10, digit
jeq %r0, 0x20, space
jeq %r0, 0x0a, newline
add %r7, 1
mov %r4, 0
ja loop
letter:
jeq %r4, 1, loop
add %r5, 1
mov %r4, 1
ja loop
digit:
jne %r4, 0, loop
add %r6, 1
mov %r4, 2
ja loop
space:
add %r9, 1
mov %r4, 0
ja loop
newline:
add %r8, 1
mov %r4, 0
ja loop
done:
mov %r0, %r5
mul %r0, 65599
add %r0, %r6
mul %r0, 65599
add %r0, %r7
mul %r0, 65599
add %r0, %r8
mul %r0, 65599
add %r0, %r9
exit

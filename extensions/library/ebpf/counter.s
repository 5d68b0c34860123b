# counter.s: count invocations per core class in an array map (any hook).
# Map 0 (lddw %r1, map:0) must be an array map with 4-byte keys and 8-byte values, at
# least 2 entries. Key = 0 for even task ids, 1 for odd ones (task id = u32 at ctx+0).
# Returns the new count for that key, or 0 when the lookup failed.
ldxw %r2, [%r1+0]
and %r2, 1
stxw [%r10-4], %r2
mov %r2, %r10
add %r2, -4
lddw %r1, map:0
call 1                     # map_lookup_elem(map, &key)
jeq %r0, 0, missing
mov %r1, 1
lock fetch add [%r0+0], %r1   # r1 = old value
add %r1, 1
mov %r0, %r1
exit
missing:
mov %r0, 0
exit

;; roundtrip: exercises every host function once per call, for the host-call tests.
;; run: logs, reads counter `sched.switches`, bumps key 7 of map 0 (`counts`, u64 values),
;; echoes hook input 0 + 1 to output 0 and the input count to output 1, prints the counter
;; value's low decimal digit, and returns the new map value.
(module
  (import "anneal" "console_write" (func $console_write (param i32 i32)))
  (import "anneal" "log" (func $log (param i32 i32 i32)))
  (import "anneal" "telemetry_read" (func $telemetry_read (param i32 i32) (result i64)))
  (import "anneal" "map_lookup" (func $map_lookup (param i32 i32 i32 i32 i32) (result i32)))
  (import "anneal" "map_update" (func $map_update (param i32 i32 i32 i32 i32) (result i32)))
  (import "anneal" "hook_input_len" (func $input_len (result i32)))
  (import "anneal" "hook_input" (func $input (param i32) (result i64)))
  (import "anneal" "hook_output" (func $output (param i32 i64)))
  (memory (export "memory") 1)
  (data (i32.const 0) "sched.switches")
  (data (i32.const 32) "roundtrip called")
  (data (i32.const 64) "\07\00\00\00")
  (func (export "run") (result i64)
    (local $counter i64) (local $value i64)
    (call $log (i32.const 2) (i32.const 32) (i32.const 16))
    (local.set $counter (call $telemetry_read (i32.const 0) (i32.const 14)))
    ;; digit = '0' + counter % 10, stored at 96
    (i32.store8 offset=96 (i32.const 0)
      (i32.add (i32.const 48) (i32.wrap_i64 (i64.rem_u (local.get $counter) (i64.const 10)))))
    (call $console_write (i32.const 96) (i32.const 1))
    ;; value = map[7] (0 when absent) + 1
    (if (i32.eq (call $map_lookup (i32.const 0) (i32.const 64) (i32.const 4) (i32.const 128) (i32.const 8))
                (i32.const 8))
      (then (local.set $value (i64.load (i32.const 128)))))
    (local.set $value (i64.add (local.get $value) (i64.const 1)))
    (i64.store (i32.const 128) (local.get $value))
    (drop (call $map_update (i32.const 0) (i32.const 64) (i32.const 4) (i32.const 128) (i32.const 8)))
    (if (i32.gt_s (call $input_len) (i32.const 0))
      (then (call $output (i32.const 0) (i64.add (call $input (i32.const 0)) (i64.const 1)))))
    (call $output (i32.const 1) (i64.extend_i32_s (call $input_len)))
    (local.get $value))
  ;; bad_pointer: asks the console to print past the end of memory.
  (func (export "bad_pointer")
    (call $console_write (i32.const 65530) (i32.const 100)))
  ;; sneaky_counter: reads a counter its manifest does not list.
  (func (export "sneaky_counter") (result i64)
    (call $telemetry_read (i32.const 32) (i32.const 9)))
  ;; recurse: unbounded recursion, must end by the call-depth limit.
  (func $recurse (export "recurse") (param $n i32) (result i32)
    (i32.add (call $recurse (i32.add (local.get $n) (i32.const 1))) (i32.const 1)))
  ;; divide: traps on division by zero.
  (func (export "divide") (param $a i32) (param $b i32) (result i32)
    (i32.div_s (local.get $a) (local.get $b))))

;; forbidden: imports a host function (telemetry_read) its manifest does not grant. Loading
;; it must fail to link with an error naming `anneal.telemetry_read`.
(module
  (import "anneal" "console_write" (func $console_write (param i32 i32)))
  (import "anneal" "telemetry_read" (func $telemetry_read (param i32 i32) (result i64)))
  (memory (export "memory") 1)
  (data (i32.const 0) "sched.switches")
  (func (export "run") (result i64)
    (call $telemetry_read (i32.const 0) (i32.const 14))))

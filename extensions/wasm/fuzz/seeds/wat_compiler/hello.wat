;; hello: prints one line through the console capability.
(module
  (import "anneal" "console_write" (func $console_write (param i32 i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "hello from wasm\n")
  (func (export "run") (result i32)
    (call $console_write (i32.const 16) (i32.const 16))
    (i32.const 0)))

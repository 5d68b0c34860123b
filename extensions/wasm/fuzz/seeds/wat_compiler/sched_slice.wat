;; sched_slice: scheduler time-slice policy for hook `sched.slice`.
;;
;; Input words (hook context):
;;   0 runnable   tasks ready to run on this core (>= 0)
;;   1 priority   0 (background) .. 7 (most important); out-of-range values are clamped
;;   2 used_us    how much of its previous slice the task ran before it blocked or was preempted
;;   3 prev_us    length of that previous slice
;; Output word 0 (and the return value): the next slice in microseconds.
;;
;; Policy: a 12 ms period is shared among runnable tasks (at least 1 task); priority p scales
;; the share by (4 + p) / 4; a task that blocked before using half its previous slice is
;; interactive and gets half of that (short, frequent slices keep it responsive); the result
;; is clamped to 1 ms .. 20 ms.
(module
  (import "anneal" "hook_input" (func $input (param i32) (result i64)))
  (import "anneal" "hook_output" (func $output (param i32 i64)))
  (func $clamp (param $v i64) (param $lo i64) (param $hi i64) (result i64)
    (if (result i64) (i64.lt_s (local.get $v) (local.get $lo))
      (then (local.get $lo))
      (else
        (if (result i64) (i64.gt_s (local.get $v) (local.get $hi))
          (then (local.get $hi))
          (else (local.get $v))))))
  (func (export "run") (result i64)
    (local $runnable i64) (local $priority i64) (local $slice i64)
    (local.set $runnable (call $clamp (call $input (i32.const 0)) (i64.const 1) (i64.const 1000)))
    (local.set $priority (call $clamp (call $input (i32.const 1)) (i64.const 0) (i64.const 7)))
    ;; share of the 12 ms period, scaled by priority
    (local.set $slice
      (i64.div_s
        (i64.mul
          (i64.div_s (i64.const 12000) (local.get $runnable))
          (i64.add (i64.const 4) (local.get $priority)))
        (i64.const 4)))
    ;; interactive: used less than half of the previous slice
    (if (i64.lt_s
          (i64.mul (call $input (i32.const 2)) (i64.const 2))
          (call $input (i32.const 3)))
      (then
        (local.set $slice (i64.shr_s (local.get $slice) (i64.const 1)))))
    (local.set $slice (call $clamp (local.get $slice) (i64.const 1000) (i64.const 20000)))
    (call $output (i32.const 0) (local.get $slice))
    (local.get $slice)))

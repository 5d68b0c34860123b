;; spin: an endless loop. It must end by running out of fuel, reported as its own fault.
(module
  (func (export "run") (result i32)
    (loop $forever
      (br $forever))
    (i32.const 0)))

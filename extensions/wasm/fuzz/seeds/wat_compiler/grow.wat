;; grow: grows memory one page at a time until growth is refused. The manifest allows two
;; pages; the host's resource limiter refuses the third and traps the module, reported as
;; `memory-limit requested_pages=3 limit_pages=2`.
(module
  (memory (export "memory") 1)
  (func (export "run") (result i32)
    (loop $more
      (br_if $more
        (i32.ne (memory.grow (i32.const 1)) (i32.const -1))))
    (memory.size)))

//! The in-kernel WAT-subset compiler against the host `wat` crate: identical bytes (after
//! dropping the `name` custom section, which `wat` writes and we do not) for the library
//! modules, a hand-written set covering every construct of the subset, and a corpus of
//! generated programs, which also run under wasmi with the same results.

use wasm::manifest::{strip_custom_sections, with_manifest};
use wasm::wat::{compile, WatErrorKind};
use wasm::{InMemoryServices, Manifest, Runtime, Value};

fn assert_same_as_wat(name: &str, text: &str) -> Vec<u8> {
    let ours = compile(text).unwrap_or_else(|e| panic!("{name}: our compiler failed: {e}"));
    let theirs = wat::parse_str(text).unwrap_or_else(|e| panic!("{name}: wat failed: {e}"));
    let theirs = strip_custom_sections(&theirs).unwrap();
    assert_eq!(ours, theirs, "{name}: bytes differ\n{text}");
    ours
}

#[test]
fn library_modules_compile_to_the_same_bytes() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/modules");
    let mut count = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) == Some("wat") {
            let text = std::fs::read_to_string(&path).unwrap();
            assert_same_as_wat(&path.display().to_string(), &text);
            count += 1;
        }
    }
    assert!(count >= 6, "found {count} modules");
}

/// Hand-written modules, one construct family each.
const SUBSET_CASES: &[(&str, &str)] = &[
    ("empty", "(module)"),
    ("named module", "(module $m (func))"),
    (
        "flat arithmetic",
        "(module (func (export \"f\") (param i32 i32) (result i32)
            local.get 0 local.get 1 i32.add i32.const 3 i32.mul))",
    ),
    (
        "folded and flat mixed",
        "(module (func $f (param $a i64) (result i64)
            (i64.mul (local.get $a) (i64.const 0x10))
            i64.const -1 i64.xor))",
    ),
    (
        "locals runs",
        "(module (func (local i32 i32) (local $x i64) (local i32) (local.set 0 (i32.const 1))))",
    ),
    (
        "blocks loops branches",
        "(module (func (export \"sum\") (param $n i32) (result i32) (local $acc i32)
            (block $done
              (loop $next
                (br_if $done (i32.eqz (local.get $n)))
                (local.set $acc (i32.add (local.get $acc) (local.get $n)))
                (local.set $n (i32.sub (local.get $n) (i32.const 1)))
                (br $next)))
            (local.get $acc)))",
    ),
    (
        "flat blocks with labels",
        "(module (func (param i32) (result i32)
            block $b (result i32)
              i32.const 7
              local.get 0
              br_if $b
              drop
              i32.const 9
            end
            loop $l
              nop
            end $l))",
    ),
    (
        "if else both forms",
        "(module (func (param i32) (result i32)
            (if (result i32) (local.get 0) (then (i32.const 1)) (else (i32.const 2)))
            local.get 0
            if (result i32) i32.const 3 else i32.const 4 end
            i32.add
            (if (i32.const 0) (then (unreachable)))
            local.get 0 if nop end))",
    ),
    (
        "br_table",
        "(module (func (param i32) (result i32)
            (block $c (block $b (block $a
              (br_table $a $b $c (local.get 0)))
              (return (i32.const 10)))
              (return (i32.const 20)))
            (i32.const 30)))",
    ),
    (
        "memory loads stores",
        "(module (memory $mem (export \"memory\") 1 4)
          (func (param i32) (result i64)
            (i32.store offset=4 align=2 (local.get 0) (i32.const 5))
            (i64.store8 (i32.const 0) (i64.const 255))
            (i32.store16 offset=2 (i32.const 0) (i32.const 65535))
            (i64.store32 offset=8 align=4 (i32.const 0) (i64.const -1))
            (drop (i32.load8_s (i32.const 0)))
            (drop (i32.load16_u offset=2 (i32.const 0)))
            (drop (i64.load32_s offset=8 (i32.const 0)))
            (drop (memory.grow (i32.const 1)))
            (drop (memory.size))
            (i64.add (i64.load offset=8 align=8 (i32.const 0)) (i64.load16_s (i32.const 2)))))",
    ),
    (
        "globals and exports",
        "(module
          (global $counter (export \"counter\") (mut i32) (i32.const 0))
          (global $k i64 (i64.const 42))
          (memory 1)
          (func $bump (result i32)
            (global.set $counter (i32.add (global.get $counter) (i32.const 1)))
            (global.get $counter))
          (export \"bump\" (func $bump))
          (export \"mem\" (memory 0))
          (export \"k\" (global $k)))",
    ),
    (
        "imports calls start",
        "(module
          (import \"anneal\" \"log\" (func $log (param i32 i32 i32)))
          (import \"anneal\" \"hook_input\" (func $in (param i32) (result i64)))
          (func $init)
          (func $twice (param i64) (result i64) (i64.shl (local.get 0) (i64.const 1)))
          (func (export \"run\") (result i64) (call $twice (call $in (i32.const 0))))
          (start $init))",
    ),
    (
        "data segments",
        "(module (memory 1)
          (data (i32.const 0) \"abc\" \"\\01\\ff\")
          (data $d (offset (i32.const 100)) \"\\u{1F600}\\n\\t\\\"\"))",
    ),
    (
        "select drop return nop",
        "(module (func (param i32) (result i64)
            (select (i64.const 1) (i64.const 2) (local.get 0))
            (drop)
            nop
            (return (i64.const 3))))",
    ),
    (
        "conversions and sign extension",
        "(module (func (param i64) (result i64)
            (i64.extend_i32_u (i32.wrap_i64 (local.get 0)))
            (i64.extend_i32_s (i32.extend8_s (i32.const 200)))
            i64.add
            i64.extend32_s
            (i64.extend16_s (i64.const 70000))
            i64.sub))",
    ),
    (
        "unary and comparisons",
        "(module (func (param i32 i64) (result i32)
            (i32.clz (local.get 0)) (i32.ctz (local.get 0)) i32.add (i32.popcnt (local.get 0)) i32.add
            (i32.wrap_i64 (i64.clz (local.get 1))) i32.add
            (i64.lt_u (local.get 1) (i64.const 5)) i32.add
            (i32.ge_s (local.get 0) (i32.const -5)) i32.add
            (i32.rotl (local.get 0) (i32.const 3)) i32.xor
            (i64.ne (i64.rotr (local.get 1) (i64.const 1)) (i64.const 0)) i32.or))",
    ),
    (
        "numeric literal forms",
        "(module (func (result i64)
            (drop (i32.const 0xffff_ffff)) (drop (i32.const -2147483648)) (drop (i32.const 4294967295))
            (drop (i32.const +7)) (drop (i32.const 1_000))
            (i64.const 18446744073709551615)))",
    ),
    (
        "tee and forward call",
        "(module (func $a (result i32) (local i32) (local.tee 0 (call $b)))
                 (func $b (result i32) (i32.const 1)))",
    ),
    (
        "comments everywhere",
        "(module ;; line\n (; block (; nested ;) ;) (func (; inline ;) (result i32) (i32.const 1)))",
    ),
];

#[test]
fn every_construct_compiles_to_the_same_bytes() {
    for (name, text) in SUBSET_CASES {
        assert_same_as_wat(name, text);
    }
}

#[test]
fn errors_point_at_line_and_column() {
    let cases: &[(&str, u32, u32, WatErrorKind)] = &[
        ("(module)\n  (module)", 2, 3, WatErrorKind::ExpectedModule),
        (
            "(module\n  (func (result i32)\n    (i32.add (i32.const 1) (i64.const 2))))",
            3,
            6,
            WatErrorKind::TypeMismatch {
                instruction: "i32.add".into(),
                expected: "i32",
                found: "i64",
            },
        ),
        (
            "(module (func\n  i32.add))",
            2,
            3,
            WatErrorKind::StackUnderflow {
                instruction: "i32.add".into(),
            },
        ),
        (
            "(module (func (call $nope)))",
            1,
            21,
            WatErrorKind::UnknownName {
                space: "function",
                name: "$nope".into(),
            },
        ),
        (
            "(module (func (local.get $x)))",
            1,
            26,
            WatErrorKind::UnknownName {
                space: "local",
                name: "$x".into(),
            },
        ),
        (
            "(module (func (br $out)))",
            1,
            19,
            WatErrorKind::UnknownName {
                space: "label",
                name: "$out".into(),
            },
        ),
        (
            "(module (func (drop (f32.const 1))))",
            1,
            22,
            WatErrorKind::NotInSubset("f32.const".into()),
        ),
        (
            "(module (func (i32.frobnicate)))",
            1,
            16,
            WatErrorKind::UnknownInstruction("i32.frobnicate".into()),
        ),
        (
            "(module (func (drop (i32.load (i32.const 0)))))",
            1,
            22,
            WatErrorKind::NoMemory,
        ),
        (
            "(module (func\n  block\n  i32.const 1\n  drop))",
            2,
            3,
            WatErrorKind::UnclosedBlock,
        ),
        (
            "(module (func (result i32)\n  (i32.const 1) (i32.const 2)))",
            2,
            17,
            WatErrorKind::WrongResultCount {
                expected: 1,
                found: 2,
            },
        ),
        (
            "(module (func (drop (i32.const 4294967296))))",
            1,
            32,
            WatErrorKind::BadNumber("4294967296".into()),
        ),
        (
            "(module (memory 1) (func (i32.store align=8 (i32.const 0) (i32.const 0))))",
            1,
            37,
            WatErrorKind::BadAlignment("align=8".into()),
        ),
        (
            "(module (global $g i32 (i32.const 0)) (func (global.set $g (i32.const 1))))",
            1,
            57,
            WatErrorKind::ImmutableGlobal("$g".into()),
        ),
        (
            "(module (func (if (result i32) (i32.const 1) (then (i32.const 2)))))",
            1,
            16,
            WatErrorKind::IfWithoutElse,
        ),
        (
            "(module (func $f) (func $f))",
            1,
            25,
            WatErrorKind::DuplicateName {
                space: "function",
                name: "f".into(),
            },
        ),
        (
            "(module (func (export \"a\")) (func (export \"a\")))",
            1,
            35,
            WatErrorKind::DuplicateExport("a".into()),
        ),
        (
            "(module (func) (import \"anneal\" \"log\" (func)))",
            1,
            16,
            WatErrorKind::ImportAfterDefinition,
        ),
        (
            "(module (func else))",
            1,
            15,
            WatErrorKind::Unbalanced("`else` without an open `if`"),
        ),
        (
            "(module (table 1 funcref))",
            1,
            9,
            WatErrorKind::NotInSubset("table".into()),
        ),
        (
            "(module (func (block\n  block nop)))",
            2,
            3,
            WatErrorKind::UnclosedBlock,
        ),
        (
            "(module (func (if (i32.const 1) (then nop else nop))))",
            1,
            43,
            WatErrorKind::Unbalanced("flat `else`/`end` with no flat block open here"),
        ),
    ];
    for (text, line, column, kind) in cases {
        let e = compile(text).expect_err(text);
        assert_eq!(
            (&e.kind, e.line, e.column),
            (kind, *line, *column),
            "{text}: {e}"
        );
        // And wat + wasmi's validator reject them too (the subset accepts nothing invalid),
        // except the ones that are valid WAT outside our subset.
        // (`wat` also takes a flat `else` inside a folded `(then ...)`; we refuse that mix.)
        let outside_subset = matches!(e.kind, WatErrorKind::NotInSubset(_))
            || matches!(e.kind, WatErrorKind::Unbalanced(m) if m.starts_with("flat"));
        let rejected = match wat::parse_str(text) {
            Err(_) => true,
            Ok(bytes) => wasmi::Module::new(&wasmi::Engine::default(), &bytes[..]).is_err(),
        };
        assert_eq!(rejected, !outside_subset, "{text}");
    }
}

/// Deterministic xorshift generator for the corpus.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

const I32_BIN: &[&str] = &[
    "add", "sub", "mul", "and", "or", "xor", "shl", "shr_s", "shr_u", "rotl", "rotr", "eq", "ne",
    "lt_s", "lt_u", "gt_s", "gt_u", "le_s", "le_u", "ge_s", "ge_u", "div_u", "rem_u",
];

/// Generates a random typed expression of type i32 (`wide` false) or i64, in folded form.
fn expr(rng: &mut Rng, depth: u32, wide: bool, locals: u32) -> String {
    let t = if wide { "i64" } else { "i32" };
    if depth == 0 || rng.below(4) == 0 {
        return match rng.below(3) {
            0 if wide => format!("(i64.const {})", rng.next() as i64 >> rng.below(60)),
            0 => format!("(i32.const {})", rng.next() as i32 >> rng.below(28)),
            1 => format!(
                "(local.get {})",
                rng.below(u64::from(locals)) * 2 + u64::from(wide)
            ),
            _ => format!("(global.get {})", u64::from(wide)),
        };
    }
    match rng.below(8) {
        0 => format!(
            "(if (result {t}) {} (then {}) (else {}))",
            expr(rng, depth - 1, false, locals),
            expr(rng, depth - 1, wide, locals),
            expr(rng, depth - 1, wide, locals)
        ),
        1 => format!(
            "(select {} {} {})",
            expr(rng, depth - 1, wide, locals),
            expr(rng, depth - 1, wide, locals),
            expr(rng, depth - 1, false, locals)
        ),
        2 if wide => format!("(i64.extend_i32_u {})", expr(rng, depth - 1, false, locals)),
        2 => format!("(i32.wrap_i64 {})", expr(rng, depth - 1, true, locals)),
        3 if wide => format!(
            "(i64.extend_i32_s (i64.eqz {}))",
            expr(rng, depth - 1, true, locals)
        ),
        3 => format!("(i32.eqz {})", expr(rng, depth - 1, false, locals)),
        _ => {
            let op = I32_BIN[rng.below(I32_BIN.len() as u64) as usize];
            let comparison = matches!(
                op,
                "eq" | "ne" | "lt_s" | "lt_u" | "gt_s" | "gt_u" | "le_s" | "le_u" | "ge_s" | "ge_u"
            );
            // Division by a constant odd number never traps.
            let rhs = if op == "div_u" || op == "rem_u" {
                format!("({t}.const {})", rng.below(1000) * 2 + 1)
            } else {
                expr(rng, depth - 1, wide, locals)
            };
            let e = format!("({t}.{op} {} {rhs})", expr(rng, depth - 1, wide, locals));
            if comparison && wide {
                format!("(i64.extend_i32_u {e})")
            } else {
                e
            }
        }
    }
}

/// Rewrites a folded expression to flat form (children first, then the operator line).
fn flatten(text: &str) -> String {
    fn go(tree: &wasm::wat::Sexpr, out: &mut String) {
        use wasm::wat::Sexpr;
        match tree {
            Sexpr::List(items, _) => {
                let head = items[0].atom().unwrap();
                if head == "if" {
                    // (if (result t) cond (then a) (else b)) -> cond if (result t) a else b end
                    go(&items[2], out);
                    out.push_str(&format!(
                        " if (result {}) ",
                        items[1].head().unwrap().1[0].atom().unwrap()
                    ));
                    go(&items[3].head().unwrap().1[0], out);
                    out.push_str(" else ");
                    go(&items[4].head().unwrap().1[0], out);
                    out.push_str(" end");
                    return;
                }
                if head == "block" || head == "loop" {
                    // (block $l body...) -> block $l body... end
                    let Sexpr::Id(label, _) = &items[1] else {
                        unreachable!()
                    };
                    out.push_str(&format!(" {head} ${label}"));
                    for item in &items[2..] {
                        go(item, out);
                    }
                    out.push_str(" end");
                    return;
                }
                let mut immediates = String::new();
                for item in &items[1..] {
                    match item {
                        Sexpr::List(..) => go(item, out),
                        Sexpr::Atom(a, _) => immediates.push_str(&format!(" {a}")),
                        Sexpr::Id(i, _) => immediates.push_str(&format!(" ${i}")),
                        _ => unreachable!(),
                    }
                }
                out.push_str(&format!(" {head}{immediates}"));
            }
            _ => unreachable!(),
        }
    }
    let tree = wasm::wat::read(text).unwrap();
    let mut out = String::new();
    go(&tree[0], &mut out);
    out
}

#[test]
fn generated_corpus_matches_wat_in_bytes_and_behaviour() {
    let runtime = Runtime::new();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let programs = 300;
    for i in 0..programs {
        let locals = 1 + rng.below(3) as u32;
        let wide = rng.below(2) == 0;
        let t = if wide { "i64" } else { "i32" };
        let body = expr(&mut rng, 5, wide, locals);
        let body = if i % 2 == 0 { body } else { flatten(&body) };
        let params: String = (0..locals).map(|_| " i32 i64").collect();
        let text = format!(
            "(module\n  (global i32 (i32.const 77))\n  (global i64 (i64.const -5))\n  \
             (func (export \"run\") (param{params}) (result {t})\n    {body}))"
        );
        let ours = assert_same_as_wat(&format!("program {i}"), &text);
        // Run ours and wat's (with its name section) under wasmi: same result.
        let theirs = wat::parse_str(&text).unwrap();
        let args: Vec<Value> = (0..locals)
            .flat_map(|_| [Value::I32(rng.next() as i32), Value::I64(rng.next() as i64)])
            .collect();
        let mut results = Vec::new();
        for bytes in [ours, theirs] {
            let bytes = with_manifest(&bytes, &Manifest::default()).unwrap();
            let mut ext = runtime
                .load("gen", &bytes, InMemoryServices::default())
                .unwrap();
            results.push(ext.call("run", &args, &[]).unwrap().results);
        }
        assert_eq!(results[0], results[1], "program {i}\n{text}");
    }
}

#[test]
fn compiled_library_module_runs_like_the_wat_one() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/modules/sched_slice.wat"
    ))
    .unwrap();
    let manifest = Manifest::parse(
        &std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/modules/sched_slice.manifest"
        ))
        .unwrap(),
    )
    .unwrap();
    let bytes = with_manifest(&compile(&text).unwrap(), &manifest).unwrap();
    let mut ext = Runtime::new()
        .load("sched_slice", &bytes, InMemoryServices::default())
        .unwrap();
    let out = ext.call("run", &[], &[4, 0, 1000, 3000]).unwrap();
    assert_eq!(out.results, vec![Value::I64(1500)]);
}

/// Generates a statement (no value left on the stack): stores, local sets, blocks with
/// conditional exits, bounded loops. `depth` bounds nesting; loop counters use locals
/// `$c0..$c3` by nesting level so loops never interfere.
fn statement(rng: &mut Rng, depth: u32, level: u32, labels: &mut Vec<String>) -> String {
    let value = |rng: &mut Rng| expr(rng, 2, false, 1);
    if depth == 0 {
        return format!("(local.set 0 {})", value(rng));
    }
    match rng.below(6) {
        0 => format!(
            "(i32.store offset={} (i32.and {} (i32.const 0xfff0)) {})",
            rng.below(3) * 4,
            value(rng),
            value(rng)
        ),
        1 => format!(
            "(i64.store8 (i32.and {} (i32.const 0xffff)) (i64.extend_i32_u {}))",
            value(rng),
            value(rng)
        ),
        2 if level < 4 => {
            // A block whose first statement may exit it or any enclosing block.
            let label = format!("b{level}");
            labels.push(label.clone());
            let exit = labels[rng.below(labels.len() as u64) as usize].clone();
            let inner = statement(rng, depth - 1, level + 1, labels);
            labels.pop();
            format!("(block ${label} (br_if ${exit} {}) {inner})", value(rng))
        }
        3 if level < 4 => {
            // A loop running its body 1..=4 times on its own counter local.
            let counter = format!("$c{level}");
            let inner = statement(rng, depth - 1, level + 1, labels);
            format!(
                "(local.set {counter} (i32.const {})) (loop $l{level} {inner} \
                 (br_if $l{level} (i32.gt_s (local.tee {counter} (i32.sub (local.get {counter}) \
                 (i32.const 1))) (i32.const 0))))",
                1 + rng.below(4)
            )
        }
        _ => format!("(global.set 0 {})", value(rng)),
    }
}

#[test]
fn generated_statement_programs_match_wat_in_bytes_and_behaviour() {
    let runtime = Runtime::new();
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    // Programs with folded loops, flat loops, and block exits: the generator must reach them.
    let mut coverage = [0usize; 3];
    for i in 0..200 {
        let mut labels = Vec::new();
        let body: Vec<String> = (0..1 + rng.below(4))
            .map(|_| statement(&mut rng, 3, 0, &mut labels))
            .collect();
        let body = body.join("\n    ");
        let body = if i % 2 == 0 { body } else { flatten_all(&body) };
        coverage[0] += usize::from(body.contains("(loop"));
        coverage[1] += usize::from(body.contains(" loop $l") && body.contains(" end"));
        coverage[2] += usize::from(body.contains("br_if $b"));
        let text = format!(
            "(module\n  (memory (export \"memory\") 1)\n  (global (mut i32) (i32.const 77))\n  \
             (global i64 (i64.const -5))\n  \
             (func (export \"run\") (param i32 i64) (result i32)\n    \
             (local $c0 i32) (local $c1 i32) (local $c2 i32) (local $c3 i32)\n    {body}\n    \
             (i32.add (i32.load offset=4 (i32.const 16)) (i32.add (local.get 0) (global.get 0)))))"
        );
        let ours = assert_same_as_wat(&format!("statement program {i}"), &text);
        let theirs = wat::parse_str(&text).unwrap();
        let args = [Value::I32(rng.next() as i32), Value::I64(rng.next() as i64)];
        let mut results = Vec::new();
        for bytes in [ours, theirs] {
            let bytes = with_manifest(&bytes, &Manifest::default()).unwrap();
            let mut ext = runtime
                .load("gen", &bytes, InMemoryServices::default())
                .unwrap();
            results.push(
                ext.call("run", &args, &[])
                    .map(|o| o.results)
                    .map_err(|f| f.error),
            );
        }
        assert_eq!(results[0], results[1], "statement program {i}\n{text}");
    }
    assert!(
        coverage.iter().all(|&c| c >= 10),
        "generator coverage {coverage:?}"
    );
}

/// Flattens a sequence of folded statements.
fn flatten_all(text: &str) -> String {
    let tree = wasm::wat::read(text).unwrap();
    tree.iter()
        .map(|node| flatten(&serialise(node)))
        .collect::<Vec<_>>()
        .join("\n    ")
}

fn serialise(node: &wasm::wat::Sexpr) -> String {
    use wasm::wat::Sexpr;
    match node {
        Sexpr::Atom(a, _) => a.clone(),
        Sexpr::Id(i, _) => format!("${i}"),
        Sexpr::Str(..) => unreachable!(),
        Sexpr::List(items, _) => {
            format!(
                "({})",
                items.iter().map(serialise).collect::<Vec<_>>().join(" ")
            )
        }
    }
}

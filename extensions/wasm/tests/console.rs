//! `wasm list|run|info` through the portable shell, on a bundle of the library modules.

use wasm::bundle::{self, BundleEntry};
use wasm::manifest::{strip_custom_sections, with_manifest};
use wasm::{InMemoryServices, Manifest, WasmShell};

fn library_bundle() -> Vec<u8> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/modules/");
    let names = [
        "hello",
        "spin",
        "grow",
        "forbidden",
        "sched_slice",
        "roundtrip",
    ];
    let modules: Vec<(String, Vec<u8>)> = names
        .iter()
        .map(|n| {
            let wasm = wat::parse_file(format!("{dir}{n}.wat")).unwrap();
            let manifest =
                Manifest::parse(&std::fs::read(format!("{dir}{n}.manifest")).unwrap()).unwrap();
            (n.to_string(), with_manifest(&wasm, &manifest).unwrap())
        })
        .collect();
    let entries: Vec<BundleEntry> = modules
        .iter()
        .map(|(name, module)| BundleEntry { name, module })
        .collect();
    bundle::encode(&entries).unwrap()
}

fn shell() -> WasmShell<InMemoryServices> {
    let mut services = InMemoryServices::default();
    services.set_counter("sched.switches", 12);
    services.create_map("counts");
    WasmShell::from_bundle(&library_bundle(), services).unwrap()
}

#[test]
fn list_shows_every_module_with_its_manifest() {
    let lines = shell().command_line("wasm list");
    assert_eq!(lines.len(), 6);
    assert!(lines[0].starts_with("name=hello bytes="), "{}", lines[0]);
    assert!(lines[0].ends_with("hook=- fuel=10000 memory_pages=1 grants=console_write"));
    assert!(lines[4].contains("name=sched_slice") && lines[4].contains("hook=sched.slice"));
}

#[test]
fn run_prints_output_and_a_result_line() {
    let mut shell = shell();
    let lines = shell.command_line("wasm run hello");
    assert_eq!(lines[0], "hello from wasm");
    assert!(
        lines[1].starts_with("[wasm] module=hello result=0 fuel_used="),
        "{lines:?}"
    );
    let lines = shell.command(&["run", "sched_slice", "4", "0", "1000", "3000"]);
    assert!(
        lines[0].starts_with("[wasm] module=sched_slice result=1500 fuel_used=")
            && lines[0].ends_with(" hook_output=1500"),
        "{lines:?}"
    );
}

#[test]
fn run_reports_each_fault_as_one_line() {
    let mut shell = shell();
    assert_eq!(
        shell.command_line("wasm run spin"),
        ["[wasm] module=spin error=out-of-fuel budget=100000 fuel_used=100000"]
    );
    let grow = shell.command_line("wasm run grow");
    let prefix = "[wasm] module=grow error=memory-limit requested_pages=3 limit_pages=2 fuel_used=";
    assert_eq!(grow.len(), 1);
    let fuel: u64 = grow[0]
        .strip_prefix(prefix)
        .expect(&grow[0])
        .parse()
        .unwrap();
    // Two successful one-page grows and the refused third cost fuel, within the budget.
    assert!(fuel > 0 && fuel <= 10_000, "{}", grow[0]);
    assert_eq!(
        shell.command_line("wasm run forbidden"),
        ["[wasm] module=forbidden error=link-not-granted import=anneal.telemetry_read fuel_used=0"]
    );
    assert_eq!(
        shell.command_line("wasm run nothing"),
        ["[wasm] module=nothing error=no-such-module fuel_used=0"]
    );
    let bad = shell.command_line("wasm run sched_slice four");
    assert!(
        bad[0].starts_with("[wasm] module=sched_slice error=bad-arguments"),
        "{bad:?}"
    );
    // The shell keeps working after all of that.
    assert_eq!(shell.command_line("wasm run hello")[0], "hello from wasm");
}

#[test]
fn run_passes_typed_parameters_and_shows_logs() {
    let mut shell = shell();
    let lines = shell.command_line("wasm run roundtrip 41");
    assert_eq!(
        lines[..2],
        [
            "2".to_string(), // 12 % 10
            "[wasm] module=roundtrip log=info message=\"roundtrip called\"".to_string()
        ]
    );
    assert!(lines[2].starts_with("[wasm] module=roundtrip result=1 fuel_used="));
    assert!(lines[2].ends_with("hook_output=42,1"));
    // State persists across runs: the map counter increments.
    assert!(shell.command_line("wasm run roundtrip")[2]
        .starts_with("[wasm] module=roundtrip result=2 "));
}

#[test]
fn info_shows_manifest_imports_and_exports() {
    let lines = shell().command_line("wasm info forbidden");
    assert_eq!(lines[1], "manifest hook=- fuel=100000 memory_pages=1");
    assert_eq!(lines[2], "grant console_write");
    assert_eq!(
        lines[3],
        "import anneal.console_write func (i32, i32) -> ()"
    );
    assert_eq!(
        lines[4],
        "import anneal.telemetry_read func (i32, i32) -> (i64)"
    );
    assert_eq!(lines[5], "export memory memory 1..");
    assert_eq!(lines[6], "export run func () -> (i64)");
}

#[test]
fn usage_and_wat_modules() {
    let mut shell = shell();
    assert!(shell.command_line("wasm")[0].starts_with("usage: wasm list"));
    assert!(shell.command_line("wasm frobnicate")[0].starts_with("usage:"));
    let manifest = Manifest::default();
    shell
        .add_wat(
            "answer",
            "(module (func (export \"run\") (param i32) (result i32) (i32.mul (local.get 0) (i32.const 2))))",
            &manifest,
        )
        .unwrap();
    assert!(
        shell.command_line("wasm run answer 21")[0].starts_with("[wasm] module=answer result=42 ")
    );
    let err = shell
        .add_wat("broken", "(module (func (i32.add)))", &manifest)
        .unwrap_err();
    assert!(format!("{err:?}").contains("StackUnderflow"));
}

#[test]
fn compile_adds_a_module_from_wat_on_the_command_line() {
    let mut shell = shell();
    let source = "(module (import \"anneal\" \"hook_input\" (func $in (param i32) (result i64))) \
                  (func (export \"run\") (result i64) (i64.mul (call $in (i32.const 0)) (i64.const 3))))";
    // Independently: the host wat crate's bytes (names dropped) with the same manifest.
    let manifest = Manifest {
        grants: vec!["hook_input".into()],
        ..Manifest::default()
    };
    let expected = with_manifest(
        &strip_custom_sections(&wat::parse_str(source).unwrap()).unwrap(),
        &manifest,
    )
    .unwrap();
    assert_eq!(
        shell.command_line(&format!("wasm compile echo --grant hook_input {source}")),
        [format!(
            "[wasm] module=echo compiled bytes={}",
            expected.len()
        )]
    );
    assert!(shell.command_line("wasm run echo 14")[0].starts_with("[wasm] module=echo result=42 "));
    assert!(shell
        .command_line("wasm list")
        .iter()
        .any(|l| l.contains("name=echo")));
    assert_eq!(
        shell.command_line("wasm compile bad (module (func (result i32) (i64.const 1)))"),
        ["[wasm] module=bad error=wat line=1 column=28 reason=\"`end of function` expects i32 but found i64\""]
    );
    assert!(
        shell.command_line("wasm compile x --grant reboot (module)")[0].contains("error=manifest")
    );
}

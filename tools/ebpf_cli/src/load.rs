//! Reading a program file in any of the three forms the tool accepts.
//!
//! The form is chosen by extension: `.bin` raw bytecode (8-byte little-endian slots), `.s` /
//! `.asm` assembly, `.o` an ELF object from `clang -target bpf` (its first program section,
//! or the one named with `FILE.o:SECTION`). Anything else is tried as ELF if it starts with
//! the ELF magic, else as raw bytecode. Errors are strings ready to print, naming the file.

use std::path::Path;
use std::sync::Arc;

use ebpf::elf::{self, ElfMap};
use ebpf::insn::{slots_from_bytes, RawInsn};
use ebpf::maps::Map;

/// A program file: its slots and, for ELF objects, the maps it defines (index = map fd).
pub struct Loaded {
    pub slots: Vec<RawInsn>,
    pub maps: Vec<ElfMap>,
    /// ELF section the program came from.
    pub section: Option<String>,
}

impl Loaded {
    /// Creates the maps for running (per-CPU maps get one copy).
    pub fn create_maps(&self) -> Result<Vec<Arc<Map>>, String> {
        self.maps
            .iter()
            .map(|m| {
                let map = Map::new(&m.name, m.def, 1).map_err(|e| e.to_string())?;
                if let Some(data) = &m.initial {
                    map.update(&0u32.to_le_bytes(), data, 0, 0)
                        .map_err(|e| format!("map {}: {e}", m.name))?;
                }
                Ok(Arc::new(map))
            })
            .collect()
    }
}

/// Loads the instruction slots of a program file (the verifier's entry point, used by
/// `verify.rs`).
#[allow(dead_code)] // the public entry point named in the verifier's brief
pub fn load_program(path: impl AsRef<Path>) -> Result<Vec<RawInsn>, String> {
    load(path.as_ref()).map(|l| l.slots)
}

/// Loads a program file with its maps.
pub fn load(path: &Path) -> Result<Loaded, String> {
    let text = path.to_string_lossy();
    // `FILE.o:SECTION` picks a program section.
    let (file, section) = match text.rsplit_once(':') {
        Some((file, section)) if file.ends_with(".o") && !Path::new(text.as_ref()).exists() => {
            (Path::new(file).to_path_buf(), Some(section.to_string()))
        }
        _ => (path.to_path_buf(), None),
    };
    let bytes =
        std::fs::read(&file).map_err(|e| format!("{}: cannot read: {e}", file.display()))?;
    let ext = file
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    let name = file.display();
    match ext.as_str() {
        "s" | "asm" => {
            let text = String::from_utf8(bytes).map_err(|_| format!("{name}: not UTF-8 text"))?;
            let slots = ebpf::asm::assemble(&text).map_err(|e| format!("{name}:{e}"))?;
            Ok(Loaded {
                slots,
                maps: Vec::new(),
                section: None,
            })
        }
        "o" => load_elf(&bytes, section.as_deref(), &name.to_string()),
        "bin" => raw(&bytes, &name.to_string()),
        _ if bytes.starts_with(b"\x7fELF") => {
            load_elf(&bytes, section.as_deref(), &name.to_string())
        }
        _ => raw(&bytes, &name.to_string()),
    }
}

fn raw(bytes: &[u8], name: &str) -> Result<Loaded, String> {
    if bytes.is_empty() {
        return Err(format!("{name}: empty program"));
    }
    let slots = slots_from_bytes(bytes).map_err(|e| format!("{name}: {e}"))?;
    Ok(Loaded {
        slots,
        maps: Vec::new(),
        section: None,
    })
}

fn load_elf(bytes: &[u8], section: Option<&str>, name: &str) -> Result<Loaded, String> {
    let object = elf::parse(bytes).map_err(|e| format!("{name}: {e}"))?;
    let program = match section {
        Some(s) => object
            .program(s)
            .ok_or_else(|| format!("{name}: no program section `{s}`"))?,
        None => &object.programs[0],
    };
    Ok(Loaded {
        slots: program.slots.clone(),
        maps: object.maps.clone(),
        section: Some(program.section.clone()),
    })
}

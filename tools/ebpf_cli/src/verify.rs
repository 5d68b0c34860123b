//! `ebpf verify`: run the verifier on a program file (DESIGN.md interface 4).
//!
//! ```text
//! ebpf verify [--ctx-size N] [--ctx-writable] [--helpers FILE.json] [--max-insns N]
//!             [--complexity N] [--stats] FILE
//! ```
//!
//! Prints exactly `ACCEPT` or `REJECT insn=K: reason` on stdout; exit 0 accept, 1 reject,
//! 2 unreadable input or usage error. With `--stats` the summary goes to stderr.
//!
//! Entry state: r1 points to a context of N bytes (read-only unless `--ctx-writable`),
//! r10 to a 512-byte stack, nothing else initialised. The default N is 64 bytes: the size
//! of the kernel's hook context structures and of PREVAIL's test context, large enough for
//! a few counters and arguments; real hooks pass their own size.
//!
//! Helpers: without `--helpers`, the runtime's own helpers
//! ([`ebpf::helpers::HELPER_PROTOTYPES`], what `ebpf run` provides) are allowed. With
//! `--helpers FILE.json`, exactly the helpers the file declares:
//!
//! ```json
//! {"1": {"name": "map_lookup_elem", "args": ["map", "map_key"], "ret": "ptr_to_map_value_or_null"},
//!  "5": {"name": "ktime_get_ns", "args": [], "ret": "scalar"}}
//! ```
//!
//! Argument type names (aliases after the slash):
//! - `scalar` / `anything`, `int`: any initialised non-pointer value;
//! - `ptr_to_ctx` / `ctx`: the context pointer at offset 0;
//! - `map` / `map_ptr`, `const_map_ptr`: a map handle (`lddw rX, map`);
//! - `map_key` / `ptr_to_map_key`: pointer to initialised memory of the map's key size;
//! - `map_value` / `ptr_to_map_value`: pointer to initialised memory of the value size;
//! - `ptr_to_mem` / `ptr_to_stack`, `readable_mem`: pointer to readable initialised memory,
//!   its size is the next argument;
//! - `ptr_to_uninit_mem` / `writable_mem`: pointer to writable memory the helper fills, its
//!   size is the next argument;
//! - `size` / `mem_size`, `const_size`, `const_size_or_zero`: the size of the preceding
//!   memory argument (a scalar with a bound that fits the buffer).
//!
//! Return type names: `scalar` / `integer`, `int`, `void`; `ptr_to_map_value_or_null` /
//! `map_value_or_null` (needs a `map` argument).
//!
//! Maps: an ELF object's maps are given to the verifier in the object's order (the order
//! `lddw` map references use). Raw and assembly files have no maps.

use std::collections::BTreeMap;
use std::path::Path;

use ebpf_verifier::{
    verify, ArgType, ContextDescriptor, HelperSpec, MapDef, RetType, VerifierConfig,
};

const USAGE: &str = "usage: ebpf verify [--ctx-size N] [--ctx-writable] [--helpers FILE.json] [--max-insns N] [--complexity N] [--stats] FILE";

fn usage(message: &str) -> i32 {
    eprintln!("ebpf verify: {message}\n{USAGE}");
    2
}

/// Runs the subcommand on its arguments (after `verify`); returns the exit status.
pub fn run(args: &[String]) -> i32 {
    let mut ctx_size: u32 = 64;
    let mut ctx_writable = false;
    let mut helpers_file: Option<String> = None;
    let mut max_insns = ebpf_verifier::limits::DEFAULT_MAX_INSNS;
    let mut complexity = ebpf_verifier::limits::DEFAULT_COMPLEXITY_LIMIT;
    let mut stats = false;
    let mut file: Option<String> = None;
    let mut i = 0;
    while i < args.len() {
        let arg = args[i].as_str();
        let mut value = || {
            i += 1;
            args.get(i).cloned()
        };
        match arg {
            "--ctx-size" => match value().and_then(|v| v.parse().ok()) {
                Some(n) => ctx_size = n,
                None => return usage("--ctx-size needs a number of bytes"),
            },
            "--ctx-writable" => ctx_writable = true,
            "--helpers" => match value() {
                Some(f) => helpers_file = Some(f),
                None => return usage("--helpers needs a JSON file"),
            },
            "--max-insns" => match value().and_then(|v| v.parse().ok()) {
                Some(n) if n > 0 => max_insns = n,
                _ => return usage("--max-insns needs a positive number"),
            },
            "--complexity" => match value().and_then(|v| v.parse().ok()) {
                Some(n) if n > 0 => complexity = n,
                _ => return usage("--complexity needs a positive number"),
            },
            "--stats" => stats = true,
            "-h" | "--help" => {
                println!("{USAGE}");
                return 0;
            }
            flag if flag.starts_with('-') && flag.len() > 1 => {
                return usage(&format!("unknown option {flag}"))
            }
            f => {
                if file.is_some() {
                    return usage("verify takes one FILE");
                }
                file = Some(f.to_string());
            }
        }
        i += 1;
    }
    let Some(file) = file else {
        return usage("missing FILE");
    };
    let helpers = match &helpers_file {
        None => ebpf::helpers::HELPER_PROTOTYPES
            .iter()
            .map(HelperSpec::from)
            .collect(),
        Some(path) => match std::fs::read_to_string(path)
            .map_err(|e| format!("{path}: cannot read: {e}"))
            .and_then(|text| parse_helpers(&text).map_err(|e| format!("{path}: {e}")))
        {
            Ok(h) => h,
            Err(e) => {
                eprintln!("ebpf verify: {e}");
                return 2;
            }
        },
    };
    let loaded = match crate::load::load(Path::new(&file)) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("ebpf verify: {e}");
            return 2;
        }
    };
    let mut config = VerifierConfig::new(ctx_size);
    if ctx_writable {
        config.context = ContextDescriptor::read_write(ctx_size);
    }
    config.helpers = helpers;
    config.max_insns = max_insns;
    config.complexity_limit = complexity;
    config.maps = loaded
        .maps
        .iter()
        .map(|m| MapDef {
            name: m.name.clone(),
            key_size: m.def.key_size,
            value_size: m.def.value_size,
        })
        .collect();
    match verify(&loaded.slots, &config) {
        Ok(summary) => {
            println!("ACCEPT");
            if stats {
                eprintln!("{summary:?}");
            }
            0
        }
        Err(e) => {
            println!("REJECT {e}");
            1
        }
    }
}

fn arg_type(name: &str) -> Option<ArgType> {
    Some(match name {
        "scalar" | "anything" | "int" => ArgType::Scalar,
        "ptr_to_ctx" | "ctx" => ArgType::Context,
        "map" | "map_ptr" | "const_map_ptr" => ArgType::MapPointer,
        "map_key" | "ptr_to_map_key" => ArgType::MapKey,
        "map_value" | "ptr_to_map_value" => ArgType::MapValue,
        "ptr_to_mem" | "ptr_to_stack" | "readable_mem" => ArgType::ReadableMemory,
        "ptr_to_uninit_mem" | "writable_mem" => ArgType::WritableMemory,
        "size" | "mem_size" | "const_size" | "const_size_or_zero" => ArgType::MemorySize,
        _ => return None,
    })
}

fn ret_type(name: &str) -> Option<RetType> {
    Some(match name {
        "scalar" | "integer" | "int" | "void" => RetType::Scalar,
        "ptr_to_map_value_or_null" | "map_value_or_null" => RetType::MapValueOrNull,
        _ => return None,
    })
}

/// Parses the `--helpers` file into helper specs, checking the prototype rules (at most 5
/// arguments; a memory argument is followed by its size; map keys/values after a map).
pub fn parse_helpers(text: &str) -> Result<Vec<HelperSpec>, String> {
    let json = Json::parse(text)?;
    let Json::Object(entries) = json else {
        return Err("the helpers file must be a JSON object {\"ID\": {...}}".into());
    };
    let mut out = Vec::new();
    for (key, value) in entries {
        let id: u32 = key
            .trim()
            .parse()
            .map_err(|_| format!("helper id `{key}` is not a number"))?;
        let Json::Object(fields) = value else {
            return Err(format!("helper {id}: expected an object"));
        };
        let name = match fields.get("name") {
            Some(Json::String(s)) => s.clone(),
            None => format!("helper_{id}"),
            Some(_) => return Err(format!("helper {id}: name must be a string")),
        };
        let args = match fields.get("args") {
            Some(Json::Array(items)) => items
                .iter()
                .map(|item| match item {
                    Json::String(s) => arg_type(s)
                        .ok_or_else(|| format!("helper {id}: unknown argument type `{s}`")),
                    _ => Err(format!("helper {id}: argument types are strings")),
                })
                .collect::<Result<Vec<_>, _>>()?,
            None => Vec::new(),
            Some(_) => return Err(format!("helper {id}: args must be an array")),
        };
        if args.len() > 5 {
            return Err(format!("helper {id}: at most 5 arguments (r1-r5)"));
        }
        for (i, a) in args.iter().enumerate() {
            let is_mem = matches!(a, ArgType::ReadableMemory | ArgType::WritableMemory);
            if is_mem && args.get(i + 1) != Some(&ArgType::MemorySize) {
                return Err(format!(
                    "helper {id}: memory argument {} must be followed by a size argument",
                    i + 1
                ));
            }
        }
        let ret = match fields.get("ret") {
            Some(Json::String(s)) => {
                ret_type(s).ok_or_else(|| format!("helper {id}: unknown return type `{s}`"))?
            }
            None => RetType::Scalar,
            Some(_) => return Err(format!("helper {id}: ret must be a string")),
        };
        out.push(HelperSpec {
            id,
            name,
            args,
            ret,
        });
    }
    Ok(out)
}

/// Just enough JSON for the helpers file (objects, arrays, strings, numbers, literals).
#[derive(Debug, PartialEq)]
enum Json {
    Object(BTreeMap<String, Json>),
    Array(Vec<Json>),
    String(String),
    Number(f64),
    Literal,
}

/// Deepest nesting accepted: the helpers file needs 3 levels.
const MAX_JSON_DEPTH: usize = 32;

impl Json {
    fn parse(text: &str) -> Result<Json, String> {
        let mut p = Parser {
            bytes: text.as_bytes(),
            pos: 0,
        };
        let v = p.value(0)?;
        p.skip_ws();
        if p.pos != p.bytes.len() {
            return Err(format!("JSON: trailing characters at byte {}", p.pos));
        }
        Ok(v)
    }
}

struct Parser<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Parser<'_> {
    fn skip_ws(&mut self) {
        while self
            .bytes
            .get(self.pos)
            .is_some_and(|b| b.is_ascii_whitespace())
        {
            self.pos += 1;
        }
    }

    fn fail<T>(&self, what: &str) -> Result<T, String> {
        Err(format!("JSON: {what} at byte {}", self.pos))
    }

    fn expect(&mut self, c: u8) -> Result<(), String> {
        self.skip_ws();
        if self.bytes.get(self.pos) == Some(&c) {
            self.pos += 1;
            Ok(())
        } else {
            self.fail(&format!("expected `{}`", c as char))
        }
    }

    fn value(&mut self, depth: usize) -> Result<Json, String> {
        if depth > MAX_JSON_DEPTH {
            return self.fail("nesting too deep");
        }
        self.skip_ws();
        match self.bytes.get(self.pos) {
            Some(b'{') => {
                self.pos += 1;
                let mut map = BTreeMap::new();
                self.skip_ws();
                if self.bytes.get(self.pos) == Some(&b'}') {
                    self.pos += 1;
                    return Ok(Json::Object(map));
                }
                loop {
                    self.skip_ws();
                    let key = self.string()?;
                    self.expect(b':')?;
                    let v = self.value(depth + 1)?;
                    if map.insert(key.clone(), v).is_some() {
                        return self.fail(&format!("duplicate key `{key}`"));
                    }
                    self.skip_ws();
                    match self.bytes.get(self.pos) {
                        Some(b',') => self.pos += 1,
                        Some(b'}') => {
                            self.pos += 1;
                            return Ok(Json::Object(map));
                        }
                        _ => return self.fail("expected `,` or `}`"),
                    }
                }
            }
            Some(b'[') => {
                self.pos += 1;
                let mut items = Vec::new();
                self.skip_ws();
                if self.bytes.get(self.pos) == Some(&b']') {
                    self.pos += 1;
                    return Ok(Json::Array(items));
                }
                loop {
                    items.push(self.value(depth + 1)?);
                    self.skip_ws();
                    match self.bytes.get(self.pos) {
                        Some(b',') => self.pos += 1,
                        Some(b']') => {
                            self.pos += 1;
                            return Ok(Json::Array(items));
                        }
                        _ => return self.fail("expected `,` or `]`"),
                    }
                }
            }
            Some(b'"') => Ok(Json::String(self.string()?)),
            Some(b't') | Some(b'f') | Some(b'n') => {
                for lit in ["true", "false", "null"] {
                    if self.bytes[self.pos..].starts_with(lit.as_bytes()) {
                        self.pos += lit.len();
                        return Ok(Json::Literal);
                    }
                }
                self.fail("unknown literal")
            }
            Some(c) if *c == b'-' || c.is_ascii_digit() => {
                let start = self.pos;
                while self
                    .bytes
                    .get(self.pos)
                    .is_some_and(|b| b"+-.eE0123456789".contains(b))
                {
                    self.pos += 1;
                }
                let text = std::str::from_utf8(&self.bytes[start..self.pos]).unwrap_or("");
                text.parse()
                    .map(Json::Number)
                    .or_else(|_| self.fail("bad number"))
            }
            _ => self.fail("expected a value"),
        }
    }

    fn string(&mut self) -> Result<String, String> {
        if self.bytes.get(self.pos) != Some(&b'"') {
            return self.fail("expected a string");
        }
        self.pos += 1;
        let mut out = Vec::new();
        loop {
            match self.bytes.get(self.pos) {
                None => return self.fail("unterminated string"),
                Some(b'"') => {
                    self.pos += 1;
                    break;
                }
                Some(b'\\') => {
                    let c = match self.bytes.get(self.pos + 1) {
                        Some(b'"') => b'"',
                        Some(b'\\') => b'\\',
                        Some(b'/') => b'/',
                        Some(b'n') => b'\n',
                        Some(b't') => b'\t',
                        Some(b'r') => b'\r',
                        _ => return self.fail("unsupported escape"),
                    };
                    out.push(c);
                    self.pos += 2;
                }
                Some(&c) => {
                    out.push(c);
                    self.pos += 1;
                }
            }
        }
        String::from_utf8(out).or_else(|_| self.fail("string is not UTF-8"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_helpers_file() {
        let text = r#"{"1": {"name": "map_lookup_elem", "args": ["map", "map_key"],
                       "ret": "ptr_to_map_value_or_null"},
                       "6": {"name": "trace_printk", "args": ["ptr_to_mem", "size", "scalar"]},
                       "5": {"name": "ktime_get_ns", "args": [], "ret": "scalar"}}"#;
        let helpers = parse_helpers(text).unwrap();
        assert_eq!(helpers.len(), 3);
        let lookup = helpers.iter().find(|h| h.id == 1).unwrap();
        assert_eq!(lookup.args, [ArgType::MapPointer, ArgType::MapKey]);
        assert_eq!(lookup.ret, RetType::MapValueOrNull);
        let printk = helpers.iter().find(|h| h.id == 6).unwrap();
        assert_eq!(printk.ret, RetType::Scalar);
    }

    #[test]
    fn rejects_bad_helpers_files() {
        for bad in [
            "",
            "[]",
            r#"{"x": {}}"#,
            r#"{"1": {"args": ["nonsense"]}}"#,
            r#"{"1": {"args": ["ptr_to_mem"]}}"#,
            r#"{"1": {"args": ["scalar","scalar","scalar","scalar","scalar","scalar"]}}"#,
            r#"{"1": {"ret": "pointer"}}"#,
            r#"{"1": {} "#,
            r#"{"1": {}, "1": {}}"#,
        ] {
            assert!(parse_helpers(bad).is_err(), "accepted {bad:?}");
        }
    }
}

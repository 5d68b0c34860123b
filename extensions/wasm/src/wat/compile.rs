//! WAT subset → binary module: name resolution, type checking, emission with wasm-encoder.
//!
//! Two passes. The first walks the module fields in order and records imports, functions,
//! the memory, globals, exports, data and start, interning function types in first-use order
//! (the same order the `wat` crate uses, so type indices and bytes agree). The second
//! compiles each function body: it keeps a control-frame stack (labels, result types) and
//! an operand-type stack, following the validation algorithm of the WebAssembly spec
//! appendix, so a type error is reported at the instruction that causes it.

use alloc::borrow::Cow;
use alloc::string::{String, ToString};
use alloc::vec;
use alloc::vec::Vec;

use wasm_encoder::{
    BlockType, CodeSection, ConstExpr, DataSection, EntityType, ExportKind, ExportSection,
    Function, FunctionSection, GlobalSection, GlobalType, ImportSection, Instruction, MemArg,
    MemArgTarget, MemorySection, MemoryType, Module, StartSection, TypeSection, ValType,
};

use super::parse::{read, Pos, Sexpr};
use super::{WatError, WatErrorKind as K};
use crate::limits;

fn err(pos: Pos, kind: K) -> WatError {
    WatError {
        line: pos.line,
        column: pos.column,
        kind,
    }
}

/// Operand type on the checker's stack. `Unknown` is the bottom type of unreachable code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ty {
    I32,
    I64,
    Unknown,
}

impl Ty {
    fn name(self) -> &'static str {
        match self {
            Ty::I32 => "i32",
            Ty::I64 => "i64",
            Ty::Unknown => "nothing",
        }
    }

    fn val_type(self) -> ValType {
        match self {
            Ty::I64 => ValType::I64,
            _ => ValType::I32,
        }
    }
}

fn parse_val_type(node: &Sexpr) -> Result<Ty, WatError> {
    match node.atom() {
        Some("i32") => Ok(Ty::I32),
        Some("i64") => Ok(Ty::I64),
        Some(t @ ("f32" | "f64" | "v128" | "funcref" | "externref")) => {
            Err(err(node.pos(), K::NotInSubset(t.to_string())))
        }
        _ => Err(err(node.pos(), K::Expected("a value type (i32 or i64)"))),
    }
}

/// Parses an unsigned integer (decimal or 0x hex, `_` separators).
fn parse_u64(text: &str) -> Option<u64> {
    let (digits, radix) = match text.strip_prefix("0x") {
        Some(hex) => (hex, 16),
        None => (text, 10),
    };
    if digits.is_empty()
        || digits.starts_with('_')
        || digits.ends_with('_')
        || digits.contains("__")
    {
        return None;
    }
    let mut value: u64 = 0;
    for c in digits.chars().filter(|&c| c != '_') {
        let d = c.to_digit(radix)?;
        value = value.checked_mul(radix as u64)?.checked_add(u64::from(d))?;
    }
    Some(value)
}

/// Parses an integer literal for a `bits`-wide const (32 or 64): signed values down to
/// -2^(bits-1), unsigned values up to 2^bits - 1, returned as the two's-complement bits.
fn parse_int(node: &Sexpr, bits: u32) -> Result<i64, WatError> {
    let bad = || err(node.pos(), K::BadNumber(node_text(node)));
    let text = node.atom().ok_or_else(bad)?;
    let (negative, digits) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    let magnitude = parse_u64(digits).ok_or_else(bad)?;
    let max_unsigned: u64 = if bits == 32 {
        u32::MAX as u64
    } else {
        u64::MAX
    };
    let max_negative: u64 = 1u64 << (bits - 1);
    if negative {
        if magnitude > max_negative {
            return Err(bad());
        }
        Ok((magnitude as i64).wrapping_neg())
    } else {
        if magnitude > max_unsigned {
            return Err(bad());
        }
        Ok(if bits == 32 {
            i64::from(magnitude as u32 as i32)
        } else {
            magnitude as i64
        })
    }
}

fn parse_u32(node: &Sexpr) -> Result<u32, WatError> {
    node.atom()
        .and_then(parse_u64)
        .and_then(|v| u32::try_from(v).ok())
        .ok_or_else(|| err(node.pos(), K::BadNumber(node_text(node))))
}

fn node_text(node: &Sexpr) -> String {
    match node {
        Sexpr::Atom(a, _) => a.clone(),
        Sexpr::Id(i, _) => alloc::format!("${i}"),
        Sexpr::Str(..) => "string".into(),
        Sexpr::List(..) => "(...)".into(),
    }
}

/// Parameter names, parameter types, result types, and how many list items they took.
type Signature = (Vec<Option<String>>, Vec<Ty>, Vec<Ty>, usize);

struct FuncType {
    params: Vec<Ty>,
    results: Vec<Ty>,
}

struct ImportDef {
    module: String,
    field: String,
    type_index: u32,
}

struct FuncDef<'a> {
    type_index: u32,
    params: Vec<Option<String>>,
    locals: Vec<(Option<String>, Ty)>,
    body: &'a [Sexpr],
    /// Where the `(func` starts: errors about the body as a whole point here.
    pos: Pos,
}

struct GlobalDef {
    ty: Ty,
    mutable: bool,
    init: i64,
}

enum ExportTarget<'a> {
    Func(&'a Sexpr),
    Memory(&'a Sexpr),
    Global(&'a Sexpr),
    /// An inline export: the index is already known.
    Index(ExportKind, u32),
}

struct Data<'a> {
    offset: &'a Sexpr,
    bytes: Vec<u8>,
    pos: Pos,
}

#[derive(Default)]
struct ModuleBuilder<'a> {
    types: Vec<FuncType>,
    imports: Vec<ImportDef>,
    funcs: Vec<FuncDef<'a>>,
    /// Type index of every function (imports first).
    func_types: Vec<u32>,
    func_names: Vec<(String, u32)>,
    memory: Option<(u32, Option<u32>)>,
    memory_name: Option<String>,
    globals: Vec<GlobalDef>,
    global_names: Vec<(String, u32)>,
    exports: Vec<(String, ExportTarget<'a>, Pos)>,
    data: Vec<Data<'a>>,
    start: Option<&'a Sexpr>,
    defined_something: bool,
}

/// Compiles WAT subset text to a binary module.
pub fn compile(text: &str) -> Result<Vec<u8>, WatError> {
    let tree = read(text)?;
    // One `(module ...)`, or (as the text format allows) bare fields forming a module.
    let fields = match tree.as_slice() {
        [node] if matches!(node.head(), Some(("module", _))) => {
            node.head().map(|(_, rest)| rest).unwrap_or(&[])
        }
        [first, ..] if matches!(first.head(), Some(("module", _))) => {
            return Err(err(tree[1].pos(), K::ExpectedModule))
        }
        nodes => {
            if let Some(m) = nodes
                .iter()
                .find(|n| matches!(n.head(), Some(("module", _))))
            {
                return Err(err(m.pos(), K::ExpectedModule));
            }
            nodes
        }
    };
    let fields = match fields.first() {
        Some(Sexpr::Id(..)) => &fields[1..],
        _ => fields,
    };
    let mut builder = ModuleBuilder::default();
    for field in fields {
        builder.field(field)?;
    }
    builder.emit()
}

fn lookup(names: &[(String, u32)], name: &str) -> Option<u32> {
    names.iter().find(|(n, _)| n == name).map(|(_, i)| *i)
}

impl<'a> ModuleBuilder<'a> {
    fn intern_type(&mut self, params: Vec<Ty>, results: Vec<Ty>) -> u32 {
        if let Some(i) = self
            .types
            .iter()
            .position(|t| t.params == params && t.results == results)
        {
            return i as u32;
        }
        self.types.push(FuncType { params, results });
        (self.types.len() - 1) as u32
    }

    fn add_name(
        names: &mut Vec<(String, u32)>,
        space: &'static str,
        node: &Sexpr,
        index: u32,
    ) -> Result<(), WatError> {
        if let Sexpr::Id(name, pos) = node {
            if lookup(names, name).is_some() {
                return Err(err(
                    *pos,
                    K::DuplicateName {
                        space,
                        name: name.clone(),
                    },
                ));
            }
            names.push((name.clone(), index));
        }
        Ok(())
    }

    fn add_function_index(&mut self, type_index: u32, pos: Pos) -> Result<u32, WatError> {
        if self.func_types.len() >= limits::MAX_WAT_FUNCTIONS {
            return Err(err(pos, K::TooMany("functions")));
        }
        self.func_types.push(type_index);
        Ok((self.func_types.len() - 1) as u32)
    }

    fn field(&mut self, field: &'a Sexpr) -> Result<(), WatError> {
        let pos = field.pos();
        let Some((head, items)) = field.head() else {
            return Err(err(pos, K::Expected("a module field like `(func ...)`")));
        };
        match head {
            "import" => self.import(items, pos),
            "func" => self.func(items, pos),
            "memory" => self.memory_field(items, pos),
            "global" => self.global(items, pos),
            "export" => self.export(items, pos),
            "data" => self.data_field(items, pos),
            "start" => {
                if self.start.is_some() {
                    return Err(err(pos, K::Unbalanced("a module has at most one `start`")));
                }
                self.start = Some(items.first().ok_or(err(pos, K::Expected("a function")))?);
                Ok(())
            }
            "type" | "table" | "elem" | "tag" | "rec" => {
                Err(err(pos, K::NotInSubset(head.to_string())))
            }
            other => Err(err(pos, K::UnknownField(other.to_string()))),
        }
    }

    /// Reads `(param ...)*` and `(result ...)*` from the front of `items`, returning the
    /// parameter names, types, results and how many items were used.
    fn signature(items: &[Sexpr], allow_names: bool) -> Result<Signature, WatError> {
        let (mut names, mut params, mut results) = (Vec::new(), Vec::new(), Vec::new());
        let mut used = 0;
        for item in items {
            match item.head() {
                Some(("param", rest)) if results.is_empty() => {
                    if let Some(Sexpr::Id(name, pos)) = rest.first() {
                        if !allow_names {
                            return Err(err(*pos, K::Expected("a value type")));
                        }
                        let [ty] = &rest[1..] else {
                            return Err(err(*pos, K::Expected("one type after a named param")));
                        };
                        if names.iter().flatten().any(|n: &String| n == name) {
                            return Err(err(
                                *pos,
                                K::DuplicateName {
                                    space: "local",
                                    name: name.clone(),
                                },
                            ));
                        }
                        names.push(Some(name.clone()));
                        params.push(parse_val_type(ty)?);
                    } else {
                        for ty in rest {
                            names.push(None);
                            params.push(parse_val_type(ty)?);
                        }
                    }
                }
                Some(("result", rest)) => {
                    for ty in rest {
                        results.push(parse_val_type(ty)?);
                    }
                }
                _ => break,
            }
            used += 1;
        }
        Ok((names, params, results, used))
    }

    /// Reads inline `(export "name")*` at the front of `items`.
    fn inline_exports(
        &mut self,
        items: &'a [Sexpr],
        kind: ExportKind,
        index: u32,
    ) -> Result<usize, WatError> {
        let mut used = 0;
        for item in items {
            let Some(("export", rest)) = item.head() else {
                break;
            };
            let [Sexpr::Str(name, _)] = rest else {
                return Err(err(item.pos(), K::Expected("(export \"name\")")));
            };
            let name = String::from_utf8(name.clone())
                .map_err(|_| err(item.pos(), K::Expected("a UTF-8 export name")))?;
            self.exports
                .push((name, ExportTarget::Index(kind, index), item.pos()));
            used += 1;
        }
        Ok(used)
    }

    fn import(&mut self, items: &'a [Sexpr], pos: Pos) -> Result<(), WatError> {
        if self.defined_something {
            return Err(err(pos, K::ImportAfterDefinition));
        }
        let [Sexpr::Str(module, _), Sexpr::Str(field, _), desc] = items else {
            return Err(err(
                pos,
                K::Expected("(import \"module\" \"name\" (func ...))"),
            ));
        };
        let Some((kind, rest)) = desc.head() else {
            return Err(err(desc.pos(), K::Expected("(func ...)")));
        };
        if kind != "func" {
            return Err(err(
                desc.pos(),
                K::NotInSubset(alloc::format!("import of {kind}")),
            ));
        }
        let (id, rest) = match rest.first() {
            Some(id @ Sexpr::Id(..)) => (Some(id), &rest[1..]),
            _ => (None, rest),
        };
        let (_, params, results, used) = Self::signature(rest, true)?;
        if let Some(extra) = rest.get(used) {
            return Err(err(extra.pos(), K::Expected("(param ...) or (result ...)")));
        }
        let type_index = self.intern_type(params, results);
        let index = self.add_function_index(type_index, pos)?;
        if let Some(id) = id {
            Self::add_name(&mut self.func_names, "function", id, index)?;
        }
        let text = |b: &Vec<u8>| {
            String::from_utf8(b.clone()).map_err(|_| err(pos, K::Expected("UTF-8 import names")))
        };
        self.imports.push(ImportDef {
            module: text(module)?,
            field: text(field)?,
            type_index,
        });
        Ok(())
    }

    fn func(&mut self, items: &'a [Sexpr], pos: Pos) -> Result<(), WatError> {
        self.defined_something = true;
        let index = self.func_types.len() as u32;
        let mut rest = items;
        if let Some(id @ Sexpr::Id(..)) = rest.first() {
            Self::add_name(&mut self.func_names, "function", id, index)?;
            rest = &rest[1..];
        }
        let used = self.inline_exports(rest, ExportKind::Func, index)?;
        rest = &rest[used..];
        if let Some(("import", _)) = rest.first().and_then(Sexpr::head) {
            return Err(err(pos, K::NotInSubset("inline import".into())));
        }
        if let Some(("type", _)) = rest.first().and_then(Sexpr::head) {
            return Err(err(rest[0].pos(), K::NotInSubset("type".into())));
        }
        let (param_names, params, results, used) = Self::signature(rest, true)?;
        rest = &rest[used..];
        let mut locals = Vec::new();
        let mut names_seen: Vec<&str> = param_names.iter().flatten().map(String::as_str).collect();
        while let Some(("local", decl)) = rest.first().and_then(Sexpr::head) {
            if let Some(Sexpr::Id(name, npos)) = decl.first() {
                let [ty] = &decl[1..] else {
                    return Err(err(*npos, K::Expected("one type after a named local")));
                };
                if names_seen.contains(&name.as_str()) {
                    return Err(err(
                        *npos,
                        K::DuplicateName {
                            space: "local",
                            name: name.clone(),
                        },
                    ));
                }
                names_seen.push(name);
                locals.push((Some(name.clone()), parse_val_type(ty)?));
            } else {
                for ty in decl {
                    locals.push((None, parse_val_type(ty)?));
                }
            }
            if params.len() + locals.len() > limits::MAX_WAT_LOCALS {
                return Err(err(rest[0].pos(), K::TooMany("locals")));
            }
            rest = &rest[1..];
        }
        let type_index = self.intern_type(params, results);
        self.add_function_index(type_index, pos)?;
        self.funcs.push(FuncDef {
            type_index,
            params: param_names,
            locals,
            body: rest,
            pos,
        });
        Ok(())
    }

    fn memory_field(&mut self, items: &'a [Sexpr], pos: Pos) -> Result<(), WatError> {
        self.defined_something = true;
        if self.memory.is_some() {
            return Err(err(pos, K::SecondMemory));
        }
        let mut rest = items;
        if let Some(Sexpr::Id(name, _)) = rest.first() {
            self.memory_name = Some(name.clone());
            rest = &rest[1..];
        }
        let used = self.inline_exports(rest, ExportKind::Memory, 0)?;
        rest = &rest[used..];
        let (min, max) = match rest {
            [min] => (parse_u32(min)?, None),
            [min, max] => (parse_u32(min)?, Some(parse_u32(max)?)),
            _ => return Err(err(pos, K::Expected("(memory min max?)"))),
        };
        if min > 65536 || max.is_some_and(|m| m > 65536 || m < min) {
            return Err(err(pos, K::BadNumber("memory limits".into())));
        }
        self.memory = Some((min, max));
        Ok(())
    }

    fn global(&mut self, items: &'a [Sexpr], pos: Pos) -> Result<(), WatError> {
        self.defined_something = true;
        let index = self.globals.len() as u32;
        let mut rest = items;
        if let Some(id @ Sexpr::Id(..)) = rest.first() {
            Self::add_name(&mut self.global_names, "global", id, index)?;
            rest = &rest[1..];
        }
        let used = self.inline_exports(rest, ExportKind::Global, index)?;
        rest = &rest[used..];
        let [ty, init] = rest else {
            return Err(err(pos, K::Expected("(global type (const))")));
        };
        let (ty, mutable) = match ty.head() {
            Some(("mut", [t])) => (parse_val_type(t)?, true),
            _ => (parse_val_type(ty)?, false),
        };
        let init = match (ty, init.head()) {
            (Ty::I32, Some(("i32.const", [v]))) => parse_int(v, 32)?,
            (Ty::I64, Some(("i64.const", [v]))) => parse_int(v, 64)?,
            _ => {
                return Err(err(
                    init.pos(),
                    K::Expected("a constant initialiser of the global's type"),
                ))
            }
        };
        self.globals.push(GlobalDef { ty, mutable, init });
        Ok(())
    }

    fn export(&mut self, items: &'a [Sexpr], pos: Pos) -> Result<(), WatError> {
        let [Sexpr::Str(name, _), target] = items else {
            return Err(err(pos, K::Expected("(export \"name\" (func $f))")));
        };
        let target = match target.head() {
            Some(("func", [r])) => ExportTarget::Func(r),
            Some(("memory", [r])) => ExportTarget::Memory(r),
            Some(("global", [r])) => ExportTarget::Global(r),
            _ => {
                return Err(err(
                    target.pos(),
                    K::Expected("(func x), (memory x) or (global x)"),
                ))
            }
        };
        let name = String::from_utf8(name.clone())
            .map_err(|_| err(pos, K::Expected("a UTF-8 export name")))?;
        self.exports.push((name, target, pos));
        Ok(())
    }

    fn data_field(&mut self, items: &'a [Sexpr], pos: Pos) -> Result<(), WatError> {
        let mut rest = items;
        if let Some(Sexpr::Id(..)) = rest.first() {
            rest = &rest[1..];
        }
        if let Some(("memory", [_])) = rest.first().and_then(Sexpr::head) {
            rest = &rest[1..];
        }
        let Some(offset) = rest.first() else {
            return Err(err(pos, K::Expected("(data (i32.const offset) \"bytes\")")));
        };
        let offset = match offset.head() {
            Some(("offset", [inner])) => inner,
            _ => offset,
        };
        let mut bytes = Vec::new();
        for s in &rest[1..] {
            match s {
                Sexpr::Str(b, _) => bytes.extend_from_slice(b),
                other => return Err(err(other.pos(), K::Expected("a string"))),
            }
        }
        self.data.push(Data { offset, bytes, pos });
        Ok(())
    }

    fn resolve_func(&self, node: &Sexpr) -> Result<u32, WatError> {
        resolve(node, &self.func_names, self.func_types.len(), "function")
    }

    fn resolve_global(&self, node: &Sexpr) -> Result<u32, WatError> {
        resolve(node, &self.global_names, self.globals.len(), "global")
    }

    fn emit(self) -> Result<Vec<u8>, WatError> {
        let mut module = Module::new();
        if !self.types.is_empty() {
            let mut types = TypeSection::new();
            for t in &self.types {
                types.ty().function(
                    t.params.iter().map(|t| t.val_type()),
                    t.results.iter().map(|t| t.val_type()),
                );
            }
            module.section(&types);
        }
        if !self.imports.is_empty() {
            let mut imports = ImportSection::new();
            for i in &self.imports {
                imports.import(&i.module, &i.field, EntityType::Function(i.type_index));
            }
            module.section(&imports);
        }
        if !self.funcs.is_empty() {
            let mut functions = FunctionSection::new();
            for f in &self.funcs {
                functions.function(f.type_index);
            }
            module.section(&functions);
        }
        if let Some((minimum, maximum)) = self.memory {
            let mut memories = MemorySection::new();
            memories.memory(MemoryType {
                minimum: u64::from(minimum),
                maximum: maximum.map(u64::from),
                memory64: false,
                shared: false,
                page_size_log2: None,
            });
            module.section(&memories);
        }
        if !self.globals.is_empty() {
            let mut globals = GlobalSection::new();
            for g in &self.globals {
                let init = match g.ty {
                    Ty::I64 => ConstExpr::i64_const(g.init),
                    _ => ConstExpr::i32_const(g.init as i32),
                };
                globals.global(
                    GlobalType {
                        val_type: g.ty.val_type(),
                        mutable: g.mutable,
                        shared: false,
                    },
                    &init,
                );
            }
            module.section(&globals);
        }
        if !self.exports.is_empty() {
            let mut exports = ExportSection::new();
            let mut seen: Vec<&str> = Vec::new();
            for (name, target, pos) in &self.exports {
                if seen.contains(&name.as_str()) {
                    return Err(err(*pos, K::DuplicateExport(name.clone())));
                }
                seen.push(name);
                let (kind, index) = match target {
                    ExportTarget::Index(kind, index) => (*kind, *index),
                    ExportTarget::Func(r) => (ExportKind::Func, self.resolve_func(r)?),
                    ExportTarget::Global(r) => (ExportKind::Global, self.resolve_global(r)?),
                    ExportTarget::Memory(r) => {
                        let names: Vec<(String, u32)> =
                            self.memory_name.iter().map(|n| (n.clone(), 0)).collect();
                        let count = usize::from(self.memory.is_some());
                        (ExportKind::Memory, resolve(r, &names, count, "memory")?)
                    }
                };
                exports.export(name, kind, index);
            }
            module.section(&exports);
        }
        if let Some(start) = self.start {
            let function_index = self.resolve_func(start)?;
            let ty = &self.types[self.func_types[function_index as usize] as usize];
            if !ty.params.is_empty() || !ty.results.is_empty() {
                return Err(err(
                    start.pos(),
                    K::Expected("a start function of type [] -> []"),
                ));
            }
            module.section(&StartSection { function_index });
        }
        if !self.funcs.is_empty() {
            let mut code = CodeSection::new();
            for f in &self.funcs {
                code.function(&self.body(f)?);
            }
            module.section(&code);
        }
        if !self.data.is_empty() {
            if self.memory.is_none() {
                return Err(err(self.data[0].pos, K::NoMemory));
            }
            let mut data = DataSection::new();
            for d in &self.data {
                let offset = match d.offset.head() {
                    Some(("i32.const", [v])) => parse_int(v, 32)? as i32,
                    _ => return Err(err(d.offset.pos(), K::Expected("(i32.const offset)"))),
                };
                data.active(0, &ConstExpr::i32_const(offset), d.bytes.iter().copied());
            }
            module.section(&data);
        }
        Ok(module.finish())
    }

    fn body(&self, f: &FuncDef<'a>) -> Result<Function, WatError> {
        let ty = &self.types[f.type_index as usize];
        let mut locals_runs: Vec<(u32, ValType)> = Vec::new();
        for (_, t) in &f.locals {
            match locals_runs.last_mut() {
                Some((n, vt)) if *vt == t.val_type() => *n += 1,
                _ => locals_runs.push((1, t.val_type())),
            }
        }
        let mut local_types: Vec<Ty> = ty.params.clone();
        local_types.extend(f.locals.iter().map(|(_, t)| *t));
        let mut local_names: Vec<(String, u32)> = Vec::new();
        for (i, name) in f
            .params
            .iter()
            .chain(f.locals.iter().map(|(n, _)| n))
            .enumerate()
        {
            if let Some(n) = name {
                local_names.push((n.clone(), i as u32));
            }
        }
        let mut body = BodyCompiler {
            module: self,
            function: Function::new(locals_runs),
            local_types,
            local_names,
            frames: vec![Frame {
                kind: FrameKind::Function,
                label: None,
                height: 0,
                results: ty.results.clone(),
                unreachable: false,
                pos: f.pos,
                folded: false,
            }],
            stack: Vec::new(),
            results: &ty.results,
        };
        body.sequence(f.body)?;
        if body.frames.len() > 1 {
            let pos = body.frames.last().map_or(f.pos, |f| f.pos);
            return Err(err(pos, K::UnclosedBlock));
        }
        let end_pos = f.body.last().map_or(f.pos, Sexpr::pos);
        body.end_frame(end_pos)?;
        body.function.instruction(&Instruction::End);
        Ok(body.function)
    }
}

fn resolve(
    node: &Sexpr,
    names: &[(String, u32)],
    count: usize,
    space: &'static str,
) -> Result<u32, WatError> {
    match node {
        Sexpr::Id(name, pos) => lookup(names, name).ok_or_else(|| {
            err(
                *pos,
                K::UnknownName {
                    space,
                    name: alloc::format!("${name}"),
                },
            )
        }),
        Sexpr::Atom(..) => {
            let index = parse_u32(node)?;
            if (index as usize) < count {
                Ok(index)
            } else {
                Err(err(
                    node.pos(),
                    K::UnknownName {
                        space,
                        name: index.to_string(),
                    },
                ))
            }
        }
        _ => Err(err(node.pos(), K::Expected("a $name or an index"))),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FrameKind {
    Function,
    Block,
    Loop,
    If,
    Else,
}

struct Frame {
    kind: FrameKind,
    label: Option<String>,
    height: usize,
    results: Vec<Ty>,
    unreachable: bool,
    pos: Pos,
    /// Opened by a folded `(block ...)`: only the closing `)` may end it, not a flat `end`.
    folded: bool,
}

impl Frame {
    /// Types a branch to this frame carries: nothing for a loop (it has no params here).
    fn label_types(&self) -> Vec<Ty> {
        if self.kind == FrameKind::Loop {
            Vec::new()
        } else {
            self.results.clone()
        }
    }
}

struct BodyCompiler<'m, 'a> {
    module: &'m ModuleBuilder<'a>,
    function: Function,
    local_types: Vec<Ty>,
    local_names: Vec<(String, u32)>,
    frames: Vec<Frame>,
    stack: Vec<Ty>,
    results: &'m [Ty],
}

/// Memory access kinds: (value type, natural alignment log2, is store).
fn memory_op(name: &str) -> Option<(Ty, u32, bool)> {
    Some(match name {
        "i32.load" => (Ty::I32, 2, false),
        "i64.load" => (Ty::I64, 3, false),
        "i32.load8_s" | "i32.load8_u" => (Ty::I32, 0, false),
        "i32.load16_s" | "i32.load16_u" => (Ty::I32, 1, false),
        "i64.load8_s" | "i64.load8_u" => (Ty::I64, 0, false),
        "i64.load16_s" | "i64.load16_u" => (Ty::I64, 1, false),
        "i64.load32_s" | "i64.load32_u" => (Ty::I64, 2, false),
        "i32.store" => (Ty::I32, 2, true),
        "i64.store" => (Ty::I64, 3, true),
        "i32.store8" => (Ty::I32, 0, true),
        "i32.store16" => (Ty::I32, 1, true),
        "i64.store8" => (Ty::I64, 0, true),
        "i64.store16" => (Ty::I64, 1, true),
        "i64.store32" => (Ty::I64, 2, true),
        _ => return None,
    })
}

fn memory_instruction(name: &str, m: MemArg) -> Instruction<'static> {
    match name {
        "i32.load" => Instruction::I32Load(m),
        "i64.load" => Instruction::I64Load(m),
        "i32.load8_s" => Instruction::I32Load8S(m),
        "i32.load8_u" => Instruction::I32Load8U(m),
        "i32.load16_s" => Instruction::I32Load16S(m),
        "i32.load16_u" => Instruction::I32Load16U(m),
        "i64.load8_s" => Instruction::I64Load8S(m),
        "i64.load8_u" => Instruction::I64Load8U(m),
        "i64.load16_s" => Instruction::I64Load16S(m),
        "i64.load16_u" => Instruction::I64Load16U(m),
        "i64.load32_s" => Instruction::I64Load32S(m),
        "i64.load32_u" => Instruction::I64Load32U(m),
        "i32.store" => Instruction::I32Store(m),
        "i64.store" => Instruction::I64Store(m),
        "i32.store8" => Instruction::I32Store8(m),
        "i32.store16" => Instruction::I32Store16(m),
        "i64.store8" => Instruction::I64Store8(m),
        "i64.store16" => Instruction::I64Store16(m),
        _ => Instruction::I64Store32(m),
    }
}

/// Plain numeric instructions: (instruction, operand types, result type).
fn numeric_op(name: &str) -> Option<(Instruction<'static>, &'static [Ty], Ty)> {
    use Instruction as I;
    const I32_1: &[Ty] = &[Ty::I32];
    const I32_2: &[Ty] = &[Ty::I32, Ty::I32];
    const I64_1: &[Ty] = &[Ty::I64];
    const I64_2: &[Ty] = &[Ty::I64, Ty::I64];
    let (i, ops, r) = match name {
        "i32.clz" => (I::I32Clz, I32_1, Ty::I32),
        "i32.ctz" => (I::I32Ctz, I32_1, Ty::I32),
        "i32.popcnt" => (I::I32Popcnt, I32_1, Ty::I32),
        "i32.eqz" => (I::I32Eqz, I32_1, Ty::I32),
        "i32.extend8_s" => (I::I32Extend8S, I32_1, Ty::I32),
        "i32.extend16_s" => (I::I32Extend16S, I32_1, Ty::I32),
        "i32.add" => (I::I32Add, I32_2, Ty::I32),
        "i32.sub" => (I::I32Sub, I32_2, Ty::I32),
        "i32.mul" => (I::I32Mul, I32_2, Ty::I32),
        "i32.div_s" => (I::I32DivS, I32_2, Ty::I32),
        "i32.div_u" => (I::I32DivU, I32_2, Ty::I32),
        "i32.rem_s" => (I::I32RemS, I32_2, Ty::I32),
        "i32.rem_u" => (I::I32RemU, I32_2, Ty::I32),
        "i32.and" => (I::I32And, I32_2, Ty::I32),
        "i32.or" => (I::I32Or, I32_2, Ty::I32),
        "i32.xor" => (I::I32Xor, I32_2, Ty::I32),
        "i32.shl" => (I::I32Shl, I32_2, Ty::I32),
        "i32.shr_s" => (I::I32ShrS, I32_2, Ty::I32),
        "i32.shr_u" => (I::I32ShrU, I32_2, Ty::I32),
        "i32.rotl" => (I::I32Rotl, I32_2, Ty::I32),
        "i32.rotr" => (I::I32Rotr, I32_2, Ty::I32),
        "i32.eq" => (I::I32Eq, I32_2, Ty::I32),
        "i32.ne" => (I::I32Ne, I32_2, Ty::I32),
        "i32.lt_s" => (I::I32LtS, I32_2, Ty::I32),
        "i32.lt_u" => (I::I32LtU, I32_2, Ty::I32),
        "i32.gt_s" => (I::I32GtS, I32_2, Ty::I32),
        "i32.gt_u" => (I::I32GtU, I32_2, Ty::I32),
        "i32.le_s" => (I::I32LeS, I32_2, Ty::I32),
        "i32.le_u" => (I::I32LeU, I32_2, Ty::I32),
        "i32.ge_s" => (I::I32GeS, I32_2, Ty::I32),
        "i32.ge_u" => (I::I32GeU, I32_2, Ty::I32),
        "i64.clz" => (I::I64Clz, I64_1, Ty::I64),
        "i64.ctz" => (I::I64Ctz, I64_1, Ty::I64),
        "i64.popcnt" => (I::I64Popcnt, I64_1, Ty::I64),
        "i64.eqz" => (I::I64Eqz, I64_1, Ty::I32),
        "i64.extend8_s" => (I::I64Extend8S, I64_1, Ty::I64),
        "i64.extend16_s" => (I::I64Extend16S, I64_1, Ty::I64),
        "i64.extend32_s" => (I::I64Extend32S, I64_1, Ty::I64),
        "i64.add" => (I::I64Add, I64_2, Ty::I64),
        "i64.sub" => (I::I64Sub, I64_2, Ty::I64),
        "i64.mul" => (I::I64Mul, I64_2, Ty::I64),
        "i64.div_s" => (I::I64DivS, I64_2, Ty::I64),
        "i64.div_u" => (I::I64DivU, I64_2, Ty::I64),
        "i64.rem_s" => (I::I64RemS, I64_2, Ty::I64),
        "i64.rem_u" => (I::I64RemU, I64_2, Ty::I64),
        "i64.and" => (I::I64And, I64_2, Ty::I64),
        "i64.or" => (I::I64Or, I64_2, Ty::I64),
        "i64.xor" => (I::I64Xor, I64_2, Ty::I64),
        "i64.shl" => (I::I64Shl, I64_2, Ty::I64),
        "i64.shr_s" => (I::I64ShrS, I64_2, Ty::I64),
        "i64.shr_u" => (I::I64ShrU, I64_2, Ty::I64),
        "i64.rotl" => (I::I64Rotl, I64_2, Ty::I64),
        "i64.rotr" => (I::I64Rotr, I64_2, Ty::I64),
        "i64.eq" => (I::I64Eq, I64_2, Ty::I32),
        "i64.ne" => (I::I64Ne, I64_2, Ty::I32),
        "i64.lt_s" => (I::I64LtS, I64_2, Ty::I32),
        "i64.lt_u" => (I::I64LtU, I64_2, Ty::I32),
        "i64.gt_s" => (I::I64GtS, I64_2, Ty::I32),
        "i64.gt_u" => (I::I64GtU, I64_2, Ty::I32),
        "i64.le_s" => (I::I64LeS, I64_2, Ty::I32),
        "i64.le_u" => (I::I64LeU, I64_2, Ty::I32),
        "i64.ge_s" => (I::I64GeS, I64_2, Ty::I32),
        "i64.ge_u" => (I::I64GeU, I64_2, Ty::I32),
        "i32.wrap_i64" => (I::I32WrapI64, I64_1, Ty::I32),
        "i64.extend_i32_s" => (I::I64ExtendI32S, I32_1, Ty::I64),
        "i64.extend_i32_u" => (I::I64ExtendI32U, I32_1, Ty::I64),
        _ => return None,
    };
    Some((i, ops, r))
}

impl<'m, 'a> BodyCompiler<'m, 'a> {
    fn emit(&mut self, instruction: &Instruction<'_>) {
        self.function.instruction(instruction);
    }

    fn push(&mut self, t: Ty) {
        self.stack.push(t);
    }

    fn pop(&mut self, expected: Option<Ty>, op: &str, pos: Pos) -> Result<Ty, WatError> {
        let Some(frame) = self.frames.last() else {
            return Err(err(
                pos,
                K::Unbalanced("instruction after the function's end"),
            ));
        };
        if self.stack.len() <= frame.height {
            if frame.unreachable {
                return Ok(expected.unwrap_or(Ty::Unknown));
            }
            return Err(err(
                pos,
                K::StackUnderflow {
                    instruction: op.to_string(),
                },
            ));
        }
        let actual = self.stack.pop().unwrap_or(Ty::Unknown);
        if let Some(e) = expected {
            if actual != e && actual != Ty::Unknown {
                return Err(err(
                    pos,
                    K::TypeMismatch {
                        instruction: op.to_string(),
                        expected: e.name(),
                        found: actual.name(),
                    },
                ));
            }
            return Ok(e);
        }
        Ok(actual)
    }

    fn pop_all(&mut self, types: &[Ty], op: &str, pos: Pos) -> Result<(), WatError> {
        for t in types.iter().rev() {
            self.pop(Some(*t), op, pos)?;
        }
        Ok(())
    }

    fn set_unreachable(&mut self) {
        if let Some(frame) = self.frames.last_mut() {
            self.stack.truncate(frame.height);
            frame.unreachable = true;
        }
    }

    /// Checks the top frame's results are exactly on the stack, then pops the frame.
    fn end_frame(&mut self, pos: Pos) -> Result<Frame, WatError> {
        let Some(frame) = self.frames.last() else {
            return Err(err(pos, K::Unbalanced("`end` with no open block")));
        };
        let results = frame.results.clone();
        let height = frame.height;
        let found = self.stack.len().saturating_sub(height);
        if found > results.len() || (found < results.len() && !frame.unreachable) {
            return Err(err(
                pos,
                K::WrongResultCount {
                    expected: results.len(),
                    found,
                },
            ));
        }
        let what = if frame.kind == FrameKind::Function {
            "end of function"
        } else {
            "end of block"
        };
        self.pop_all(&results, what, pos)?;
        let frame = self.frames.pop().ok_or(err(pos, K::Unbalanced("`end`")))?;
        self.stack.truncate(frame.height);
        Ok(frame)
    }

    fn open(
        &mut self,
        kind: FrameKind,
        label: Option<String>,
        results: Vec<Ty>,
        pos: Pos,
        folded: bool,
    ) -> Result<(), WatError> {
        if self.frames.len() > limits::MAX_WAT_NESTING {
            return Err(err(pos, K::TooDeep));
        }
        let block_type = match results.first() {
            None => BlockType::Empty,
            Some(t) => BlockType::Result(t.val_type()),
        };
        if kind == FrameKind::If {
            self.pop(Some(Ty::I32), "if", pos)?;
        }
        self.emit(&match kind {
            FrameKind::Loop => Instruction::Loop(block_type),
            FrameKind::If => Instruction::If(block_type),
            _ => Instruction::Block(block_type),
        });
        self.frames.push(Frame {
            kind,
            label,
            height: self.stack.len(),
            results,
            unreachable: false,
            pos,
            folded,
        });
        Ok(())
    }

    fn close(&mut self, pos: Pos) -> Result<(), WatError> {
        if self.frames.len() <= 1 {
            return Err(err(pos, K::Unbalanced("`end` with no open block")));
        }
        let frame = self.end_frame(pos)?;
        if frame.kind == FrameKind::If && !frame.results.is_empty() {
            return Err(err(frame.pos, K::IfWithoutElse));
        }
        self.emit(&Instruction::End);
        for t in frame.results {
            self.push(t);
        }
        Ok(())
    }

    fn else_(&mut self, pos: Pos) -> Result<(), WatError> {
        if self.frames.last().map(|f| f.kind) != Some(FrameKind::If) {
            return Err(err(pos, K::Unbalanced("`else` without an open `if`")));
        }
        let frame = self.end_frame(pos)?;
        self.emit(&Instruction::Else);
        self.frames.push(Frame {
            kind: FrameKind::Else,
            unreachable: false,
            ..frame
        });
        Ok(())
    }

    /// Reads an optional `$label` and `(result t)` after block/loop/if.
    fn block_header(
        &self,
        items: &[Sexpr],
        at: &mut usize,
    ) -> Result<(Option<String>, Vec<Ty>), WatError> {
        let mut label = None;
        if let Some(Sexpr::Id(name, _)) = items.get(*at) {
            label = Some(name.clone());
            *at += 1;
        }
        let mut results = Vec::new();
        while let Some(node) = items.get(*at) {
            match node.head() {
                Some(("result", types)) => {
                    for t in types {
                        results.push(parse_val_type(t)?);
                    }
                    *at += 1;
                }
                Some(("param", _)) | Some(("type", _)) => {
                    return Err(err(node.pos(), K::NotInSubset("block parameters".into())))
                }
                _ => break,
            }
        }
        if results.len() > 1 {
            return Err(err(
                items
                    .get(at.saturating_sub(1))
                    .map_or(Pos { line: 1, column: 1 }, Sexpr::pos),
                K::NotInSubset("multi-value blocks".into()),
            ));
        }
        Ok((label, results))
    }

    fn label_depth(&self, node: &Sexpr) -> Result<u32, WatError> {
        match node {
            Sexpr::Id(name, pos) => self
                .frames
                .iter()
                .rev()
                .position(|f| f.label.as_deref() == Some(name.as_str()))
                .map(|d| d as u32)
                .ok_or_else(|| {
                    err(
                        *pos,
                        K::UnknownName {
                            space: "label",
                            name: alloc::format!("${name}"),
                        },
                    )
                }),
            Sexpr::Atom(..) => {
                let depth = parse_u32(node)?;
                if (depth as usize) < self.frames.len() {
                    Ok(depth)
                } else {
                    Err(err(
                        node.pos(),
                        K::UnknownName {
                            space: "label",
                            name: depth.to_string(),
                        },
                    ))
                }
            }
            _ => Err(err(node.pos(), K::Expected("a label"))),
        }
    }

    fn frame_at(&self, depth: u32) -> &Frame {
        // label_depth checked the depth is in range.
        &self.frames[self.frames.len() - 1 - depth as usize]
    }

    fn local(&self, node: &Sexpr) -> Result<(u32, Ty), WatError> {
        let index = resolve(node, &self.local_names, self.local_types.len(), "local")?;
        Ok((index, self.local_types[index as usize]))
    }

    /// Compiles a sequence of instructions in flat and/or folded form.
    fn sequence(&mut self, items: &[Sexpr]) -> Result<(), WatError> {
        let mut at = 0;
        while let Some(node) = items.get(at) {
            at += 1;
            match node {
                Sexpr::List(..) => self.folded(node)?,
                Sexpr::Atom(op, pos) => match op.as_str() {
                    "block" | "loop" | "if" => {
                        let (label, results) = self.block_header(items, &mut at)?;
                        let kind = match op.as_str() {
                            "block" => FrameKind::Block,
                            "loop" => FrameKind::Loop,
                            _ => FrameKind::If,
                        };
                        self.open(kind, label, results, *pos, false)?;
                    }
                    "else" | "end" if self.frames.last().is_some_and(|f| f.folded) => {
                        return Err(err(
                            *pos,
                            K::Unbalanced("flat `else`/`end` with no flat block open here"),
                        ))
                    }
                    "else" => {
                        self.else_(*pos)?;
                        if let Some(Sexpr::Id(..)) = items.get(at) {
                            at += 1;
                        }
                    }
                    "end" => {
                        self.close(*pos)?;
                        if let Some(Sexpr::Id(..)) = items.get(at) {
                            at += 1;
                        }
                    }
                    _ => self.plain(op, *pos, items, &mut at)?,
                },
                other => return Err(err(other.pos(), K::Expected("an instruction"))),
            }
        }
        Ok(())
    }

    /// Compiles one folded instruction `(op immediates... operands...)`.
    fn folded(&mut self, node: &Sexpr) -> Result<(), WatError> {
        let Sexpr::List(items, pos) = node else {
            return Err(err(node.pos(), K::Expected("an instruction")));
        };
        let Some(Sexpr::Atom(op, op_pos)) = items.first() else {
            return Err(err(*pos, K::Expected("an instruction name after `(`")));
        };
        let mut at = 1;
        match op.as_str() {
            "block" | "loop" => {
                let (label, results) = self.block_header(items, &mut at)?;
                let kind = if op == "block" {
                    FrameKind::Block
                } else {
                    FrameKind::Loop
                };
                self.open(kind, label, results, *op_pos, true)?;
                let depth = self.frames.len();
                self.sequence(&items[at..])?;
                self.inner_blocks_closed(depth)?;
                self.close(*pos)
            }
            "if" => {
                let (label, results) = self.block_header(items, &mut at)?;
                // Condition operands: folded instructions before `(then ...)`.
                while let Some(n) = items.get(at) {
                    if matches!(n.head(), Some(("then", _))) {
                        break;
                    }
                    self.folded(n)?;
                    at += 1;
                }
                let Some(("then", then_body)) = items.get(at).and_then(Sexpr::head) else {
                    return Err(err(*pos, K::Expected("(then ...) in a folded `if`")));
                };
                at += 1;
                self.open(FrameKind::If, label, results, *op_pos, true)?;
                let depth = self.frames.len();
                self.sequence(then_body)?;
                self.inner_blocks_closed(depth)?;
                if let Some(else_node) = items.get(at) {
                    let Some(("else", else_body)) = else_node.head() else {
                        return Err(err(else_node.pos(), K::Expected("(else ...)")));
                    };
                    at += 1;
                    self.else_(else_node.pos())?;
                    self.sequence(else_body)?;
                    self.inner_blocks_closed(depth)?;
                }
                if let Some(extra) = items.get(at) {
                    return Err(err(extra.pos(), K::Expected("`)` after (else ...)")));
                }
                self.close(*pos)
            }
            "then" | "else" | "end" => Err(err(*op_pos, K::Unbalanced("misplaced then/else/end"))),
            _ => {
                // Immediates first (they are atoms/ids), then operand sub-expressions.
                let mut args_start = at;
                let mut probe = at;
                let mut pending: Vec<&Sexpr> = Vec::new();
                while let Some(n) = items.get(probe) {
                    if matches!(n, Sexpr::List(..)) {
                        break;
                    }
                    pending.push(n);
                    probe += 1;
                }
                args_start += pending.len();
                for operand in &items[args_start..] {
                    if !matches!(operand, Sexpr::List(..)) {
                        return Err(err(operand.pos(), K::Expected("a folded operand `(...)`")));
                    }
                    self.folded(operand)?;
                }
                let mut imm_at = at;
                self.plain(op, *op_pos, &items[..args_start], &mut imm_at)?;
                if let Some(extra) = items.get(imm_at).filter(|_| imm_at < args_start) {
                    return Err(err(extra.pos(), K::Expected("`)`: too many immediates")));
                }
                Ok(())
            }
        }
    }

    /// After a folded body: every flat block opened inside it must have been ended.
    fn inner_blocks_closed(&self, depth: usize) -> Result<(), WatError> {
        match self.frames.get(depth) {
            Some(inner) => Err(err(inner.pos, K::UnclosedBlock)),
            None => Ok(()),
        }
    }

    fn memarg(&self, items: &[Sexpr], at: &mut usize, natural: u32) -> Result<MemArg, WatError> {
        let mut offset: u64 = 0;
        let mut align = natural;
        if let Some(Sexpr::Atom(a, pos)) = items.get(*at) {
            if let Some(v) = a.strip_prefix("offset=") {
                offset = parse_u64(v)
                    .filter(|&o| o <= u64::from(u32::MAX))
                    .ok_or_else(|| err(*pos, K::BadNumber(a.clone())))?;
                *at += 1;
            }
        }
        if let Some(Sexpr::Atom(a, pos)) = items.get(*at) {
            if let Some(v) = a.strip_prefix("align=") {
                let bytes = parse_u64(v).ok_or_else(|| err(*pos, K::BadNumber(a.clone())))?;
                if !bytes.is_power_of_two() || bytes.trailing_zeros() > natural {
                    return Err(err(*pos, K::BadAlignment(a.clone())));
                }
                align = bytes.trailing_zeros();
                *at += 1;
            }
        }
        Ok(MemArg {
            offset,
            align,
            target: MemArgTarget::Memory(0),
            ordering: None,
        })
    }

    fn immediate<'n>(
        &self,
        op: &str,
        pos: Pos,
        items: &'n [Sexpr],
        at: &mut usize,
    ) -> Result<&'n Sexpr, WatError> {
        let node = items
            .get(*at)
            .filter(|n| matches!(n, Sexpr::Atom(..) | Sexpr::Id(..)));
        let node = node.ok_or_else(|| {
            err(
                pos,
                K::Expected(match op {
                    "i32.const" | "i64.const" => "a number after the const",
                    "call" => "a function after `call`",
                    "br" | "br_if" | "br_table" => "a label",
                    _ => "an index or $name",
                }),
            )
        })?;
        *at += 1;
        Ok(node)
    }

    /// Compiles one plain instruction `op` whose immediates follow at `items[*at..]`.
    fn plain(
        &mut self,
        op: &str,
        pos: Pos,
        items: &[Sexpr],
        at: &mut usize,
    ) -> Result<(), WatError> {
        use Instruction as I;
        if let Some((instruction, operands, result)) = numeric_op(op) {
            self.pop_all(operands, op, pos)?;
            self.emit(&instruction);
            self.push(result);
            return Ok(());
        }
        if let Some((ty, natural, store)) = memory_op(op) {
            if self.module.memory.is_none() {
                return Err(err(pos, K::NoMemory));
            }
            let memarg = self.memarg(items, at, natural)?;
            if store {
                self.pop(Some(ty), op, pos)?;
                self.pop(Some(Ty::I32), op, pos)?;
            } else {
                self.pop(Some(Ty::I32), op, pos)?;
                self.push(ty);
            }
            self.emit(&memory_instruction(op, memarg));
            return Ok(());
        }
        match op {
            "i32.const" => {
                let v = parse_int(self.immediate(op, pos, items, at)?, 32)?;
                self.emit(&I::I32Const(v as i32));
                self.push(Ty::I32);
            }
            "i64.const" => {
                let v = parse_int(self.immediate(op, pos, items, at)?, 64)?;
                self.emit(&I::I64Const(v));
                self.push(Ty::I64);
            }
            "local.get" | "local.set" | "local.tee" => {
                let (index, ty) = self.local(self.immediate(op, pos, items, at)?)?;
                match op {
                    "local.get" => {
                        self.emit(&I::LocalGet(index));
                        self.push(ty);
                    }
                    "local.set" => {
                        self.pop(Some(ty), op, pos)?;
                        self.emit(&I::LocalSet(index));
                    }
                    _ => {
                        self.pop(Some(ty), op, pos)?;
                        self.emit(&I::LocalTee(index));
                        self.push(ty);
                    }
                }
            }
            "global.get" | "global.set" => {
                let node = self.immediate(op, pos, items, at)?;
                let index = self.module.resolve_global(node)?;
                let global = &self.module.globals[index as usize];
                if op == "global.get" {
                    self.emit(&I::GlobalGet(index));
                    self.push(global.ty);
                } else {
                    if !global.mutable {
                        return Err(err(node.pos(), K::ImmutableGlobal(node_text(node))));
                    }
                    self.pop(Some(global.ty), op, pos)?;
                    self.emit(&I::GlobalSet(index));
                }
            }
            "call" => {
                let node = self.immediate(op, pos, items, at)?;
                let index = self.module.resolve_func(node)?;
                let ty = &self.module.types[self.module.func_types[index as usize] as usize];
                self.pop_all(&ty.params, op, pos)?;
                self.emit(&I::Call(index));
                for t in &ty.results {
                    self.push(*t);
                }
            }
            "br" | "br_if" => {
                let depth = self.label_depth(self.immediate(op, pos, items, at)?)?;
                let types = self.frame_at(depth).label_types();
                if op == "br_if" {
                    self.pop(Some(Ty::I32), op, pos)?;
                    self.pop_all(&types, op, pos)?;
                    for t in types {
                        self.push(t);
                    }
                    self.emit(&I::BrIf(depth));
                } else {
                    self.pop_all(&types, op, pos)?;
                    self.emit(&I::Br(depth));
                    self.set_unreachable();
                }
            }
            "br_table" => {
                let mut depths = Vec::new();
                while let Some(n) = items.get(*at).filter(|n| match n {
                    Sexpr::Id(..) => true,
                    Sexpr::Atom(a, _) => a.starts_with(|c: char| c.is_ascii_digit()),
                    _ => false,
                }) {
                    depths.push(self.label_depth(n)?);
                    *at += 1;
                }
                let Some(default) = depths.pop() else {
                    return Err(err(pos, K::Expected("labels after `br_table`")));
                };
                let types = self.frame_at(default).label_types();
                for d in &depths {
                    if self.frame_at(*d).label_types().len() != types.len() {
                        return Err(err(
                            pos,
                            K::Unbalanced("br_table labels carry different types"),
                        ));
                    }
                }
                self.pop(Some(Ty::I32), op, pos)?;
                self.pop_all(&types, op, pos)?;
                self.emit(&I::BrTable(Cow::Owned(depths), default));
                self.set_unreachable();
            }
            "return" => {
                let results = self.results.to_vec();
                self.pop_all(&results, op, pos)?;
                self.emit(&I::Return);
                self.set_unreachable();
            }
            "unreachable" => {
                self.emit(&I::Unreachable);
                self.set_unreachable();
            }
            "nop" => self.emit(&I::Nop),
            "drop" => {
                self.pop(None, op, pos)?;
                self.emit(&I::Drop);
            }
            "select" => {
                self.pop(Some(Ty::I32), op, pos)?;
                let b = self.pop(None, op, pos)?;
                let a = self.pop(if b == Ty::Unknown { None } else { Some(b) }, op, pos)?;
                self.emit(&I::Select);
                self.push(if a == Ty::Unknown { b } else { a });
            }
            "memory.size" | "memory.grow" => {
                if self.module.memory.is_none() {
                    return Err(err(pos, K::NoMemory));
                }
                if op == "memory.grow" {
                    self.pop(Some(Ty::I32), op, pos)?;
                    self.emit(&I::MemoryGrow(0));
                } else {
                    self.emit(&I::MemorySize(0));
                }
                self.push(Ty::I32);
            }
            other
                if other.starts_with("f32.")
                    || other.starts_with("f64.")
                    || other.starts_with("v128.")
                    || other.starts_with("table.")
                    || other == "call_indirect"
                    || other.starts_with("memory.")
                    || other.contains("trunc")
                    || other.contains("convert")
                    || other.contains("reinterpret") =>
            {
                return Err(err(pos, K::NotInSubset(other.to_string())))
            }
            other => return Err(err(pos, K::UnknownInstruction(other.to_string()))),
        }
        Ok(())
    }
}

//! In-kernel compiler for a documented subset of the WebAssembly text format (WAT).
//!
//! The model writes WAT; the kernel cannot use the host `wat` crate (it needs std), so this
//! is a small compiler of its own: `parse` reads the text into an S-expression tree with
//! positions, `compile` resolves names, type-checks every instruction and
//! emits a binary module with `wasm-encoder`. Type-checking here (not only in wasmi's
//! validator later) is what lets every error name a line and column and say what was wrong
//! in words the model can act on when the message goes back into its prompt.
//!
//! The subset (see extensions/wasm/README.md for the full list): `module`; `import` of
//! functions; `func` with `$names`, inline `export`, `param`, `result`, `local`; `memory`
//! with inline export; `global` (`mut` or not) with a constant initialiser; `export` of
//! functions, memory and globals; `data` with a constant offset; `start`. Instructions:
//! i32/i64 constants, arithmetic, bitwise, shifts, comparisons, `eqz`, wrap/extend
//! conversions and sign extension; `local.*`, `global.*`; loads and stores with
//! `offset=`/`align=`; `memory.size`/`memory.grow`; `block`, `loop`, `if`/`then`/`else`,
//! `br`, `br_if`, `br_table`, `return`, `call`, `drop`, `select`, `nop`, `unreachable`.
//! Both the folded form `(i32.add (local.get 0) (i32.const 1))` and the flat form
//! `local.get 0 i32.const 1 i32.add` are accepted and may be mixed. Floats, tables,
//! `call_indirect`, explicit `(type)` definitions and multi-value blocks are not in it.
//!
//! The output equals the `wat` crate's for every module in the subset, except that no
//! `name` custom section is written (names do not change behaviour); the tests check that.

mod compile;
mod parse;

use alloc::string::String;
use core::fmt;

pub use compile::compile;
pub use parse::{read, Pos, Sexpr};

/// A compile error with the source position it is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatError {
    /// Line, from 1.
    pub line: u32,
    /// Column, from 1.
    pub column: u32,
    /// What is wrong.
    pub kind: WatErrorKind,
}

/// What is wrong with the WAT text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WatErrorKind {
    /// Source longer than `MAX_WAT_SOURCE_BYTES`.
    SourceTooLarge,
    /// `(` never closed.
    UnclosedParen,
    /// `)` with no open list.
    UnexpectedCloseParen,
    /// String literal not closed on its line.
    UnclosedString,
    /// Unknown escape in a string.
    BadEscape,
    /// `(;` never closed.
    UnclosedComment,
    /// `$` with no name.
    EmptyId,
    /// A character that cannot start a token.
    UnexpectedChar(char),
    /// Lists nested deeper than `MAX_WAT_NESTING`.
    TooDeep,
    /// The text is not one `(module ...)`.
    ExpectedModule,
    /// A module field this subset does not have.
    UnknownField(String),
    /// A keyword that is not an instruction of the subset.
    UnknownInstruction(String),
    /// Something the subset leaves out (floats, tables, ...), named.
    NotInSubset(String),
    /// A specific token was expected here.
    Expected(&'static str),
    /// A number is malformed or out of range for its type.
    BadNumber(String),
    /// A `$name` or index that refers to nothing.
    UnknownName { space: &'static str, name: String },
    /// A `$name` defined twice in the same space.
    DuplicateName { space: &'static str, name: String },
    /// Two exports with the same name.
    DuplicateExport(String),
    /// Imports must come before function, memory and global definitions.
    ImportAfterDefinition,
    /// Too many functions or locals.
    TooMany(&'static str),
    /// A memory instruction or data segment without a declared memory.
    NoMemory,
    /// More than one memory.
    SecondMemory,
    /// `align=` not a power of two or larger than the access.
    BadAlignment(String),
    /// An operand of the wrong type.
    TypeMismatch {
        instruction: String,
        expected: &'static str,
        found: &'static str,
    },
    /// An instruction needs more operands than the stack holds.
    StackUnderflow { instruction: String },
    /// A block or function ends with the wrong number of values.
    WrongResultCount { expected: usize, found: usize },
    /// `else` outside an `if`, `end` with nothing open.
    Unbalanced(&'static str),
    /// A flat `block`/`loop`/`if` never closed with `end`.
    UnclosedBlock,
    /// `if` with a result must have an `else`.
    IfWithoutElse,
    /// `global.set` on an immutable global.
    ImmutableGlobal(String),
}

impl fmt::Display for WatError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "line {} column {}: {}",
            self.line, self.column, self.kind
        )
    }
}

impl fmt::Display for WatErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::SourceTooLarge => write!(f, "source is too large"),
            Self::UnclosedParen => write!(f, "this `(` is never closed"),
            Self::UnexpectedCloseParen => write!(f, "`)` without a matching `(`"),
            Self::UnclosedString => write!(f, "string not closed on its line"),
            Self::BadEscape => write!(f, "unknown escape in string"),
            Self::UnclosedComment => write!(f, "block comment never closed"),
            Self::EmptyId => write!(f, "`$` must be followed by a name"),
            Self::UnexpectedChar(c) => write!(f, "unexpected character `{c}`"),
            Self::TooDeep => write!(f, "lists nested too deeply"),
            Self::ExpectedModule => write!(f, "expected one `(module ...)`"),
            Self::UnknownField(s) => write!(f, "unknown module field `{s}`"),
            Self::UnknownInstruction(s) => write!(f, "unknown instruction `{s}`"),
            Self::NotInSubset(s) => write!(f, "`{s}` is not in the supported WAT subset"),
            Self::Expected(s) => write!(f, "expected {s}"),
            Self::BadNumber(s) => write!(f, "bad number `{s}`"),
            Self::UnknownName { space, name } => write!(f, "unknown {space} `{name}`"),
            Self::DuplicateName { space, name } => write!(f, "{space} `${name}` defined twice"),
            Self::DuplicateExport(s) => write!(f, "export `{s}` defined twice"),
            Self::ImportAfterDefinition => {
                write!(
                    f,
                    "imports must come before functions, memories and globals"
                )
            }
            Self::TooMany(s) => write!(f, "too many {s}"),
            Self::NoMemory => write!(f, "no memory is declared"),
            Self::SecondMemory => write!(f, "only one memory is allowed"),
            Self::BadAlignment(s) => write!(f, "bad alignment `{s}`"),
            Self::TypeMismatch {
                instruction,
                expected,
                found,
            } => write!(f, "`{instruction}` expects {expected} but found {found}"),
            Self::StackUnderflow { instruction } => {
                write!(f, "`{instruction}` needs an operand but the stack is empty")
            }
            Self::WrongResultCount { expected, found } => write!(
                f,
                "block ends with {found} value(s) on the stack, its type needs {expected}"
            ),
            Self::Unbalanced(s) => write!(f, "{s}"),
            Self::UnclosedBlock => write!(f, "block is never closed with `end`"),
            Self::IfWithoutElse => write!(f, "`if` with a result needs an `else`"),
            Self::ImmutableGlobal(s) => write!(f, "global `{s}` is not mutable"),
        }
    }
}

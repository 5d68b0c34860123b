//! Why a program was rejected, in words a person (or the model's retry prompt) understands.
//!
//! Every rejection is a [`VerifyError`]: the instruction (slot index) plus a typed
//! [`VerifyErrorKind`] carrying the registers, offsets and sizes involved. `Display` renders
//! `insn=12: read of 8 bytes at stack offset -16 which is not initialised`, the exact text the
//! CLI prints after `REJECT `.

use core::fmt;

use ebpf::helpers::ArgType;
use ebpf::insn::{AluOp, DecodeErrorKind, Reg};

/// What kind of value a register held, for messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ValueClass {
    Uninitialised,
    Scalar,
    ContextPointer,
    StackPointer,
    MapValuePointer,
    MapValueOrNull,
    MapPointer,
}

impl fmt::Display for ValueClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ValueClass::Uninitialised => "uninitialised",
            ValueClass::Scalar => "a scalar",
            ValueClass::ContextPointer => "a context pointer",
            ValueClass::StackPointer => "a stack pointer",
            ValueClass::MapValuePointer => "a map value pointer",
            ValueClass::MapValueOrNull => "a map value pointer that may be null",
            ValueClass::MapPointer => "a map pointer",
        })
    }
}

/// Memory regions, for messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RegionName {
    Context,
    Stack,
    MapValue,
}

impl fmt::Display for RegionName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RegionName::Context => "context",
            RegionName::Stack => "stack",
            RegionName::MapValue => "map value",
        })
    }
}

/// Why a program is rejected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VerifyErrorKind {
    /// The program has no instructions.
    EmptyProgram,
    /// More slots than the configured limit.
    TooManyInstructions { count: usize, limit: usize },
    /// The slot does not decode (RFC 9669 leaves the encoding undefined).
    Decode(DecodeErrorKind),
    /// A jump or call target outside the program.
    JumpOutOfRange { target: i64, len: usize },
    /// A jump or call target in the second slot of an `lddw`.
    JumpIntoLddw { target: usize },
    /// Execution can continue past the last instruction.
    FallsOffEnd,
    /// No path from the entry reaches this instruction.
    Unreachable,
    /// Read of a register that holds no value on some path.
    UninitialisedRegister { reg: Reg },
    /// Write to r10.
    FramePointerWrite,
    /// Read of stack bytes not written on some path.
    UninitialisedStack { offset: i64, size: usize },
    /// Stack access outside the 512-byte frame.
    StackOutOfBounds { min: i64, max: i64, size: usize },
    /// A store into the stack whose offset is not a single known value.
    VariableStackWrite { min: i64, max: i64 },
    /// Read of part of a pointer spilled to the stack (would leak address bits).
    PartialPointerRead { offset: i64, size: usize },
    /// A pointer stored to the stack with a size other than 8 or off an 8-byte boundary.
    PartialPointerSpill { offset: i64, size: usize },
    /// A pointer to a deeper call frame's stack stored in an outer frame (it would dangle).
    StackPointerEscape,
    /// Context read outside the readable bytes.
    ContextNotReadable { min: i64, max: i64, size: usize },
    /// Context write outside the writable bytes.
    ContextNotWritable { min: i64, max: i64, size: usize },
    /// Map value access outside `[0, value_size)`.
    MapValueOutOfBounds {
        min: i64,
        max: i64,
        size: usize,
        value_size: u32,
    },
    /// Dereference of a map value pointer not yet checked against 0.
    PossiblyNullDereference { reg: Reg },
    /// Dereference of a register that is not a pointer to memory.
    NotAPointer { reg: Reg, class: ValueClass },
    /// A pointer stored into the context or a map value.
    PointerLeakStore { region: RegionName },
    /// A pointer in r0 at program exit.
    PointerLeakExit { class: ValueClass },
    /// An ALU operation other than add/sub of a scalar applied to a pointer.
    ForbiddenPointerArithmetic { op: AluOp, class: ValueClass },
    /// A 32-bit operation on a pointer (it would truncate the address into a scalar).
    PointerTruncation { reg: Reg },
    /// Arithmetic on a map value pointer before the null check.
    NullablePointerArithmetic { reg: Reg },
    /// Pointer arithmetic whose offset range exceeds the limit.
    PointerOffsetTooLarge { min: i64, max: i64 },
    /// Subtraction of pointers into different regions.
    PointerSubtractionAcrossRegions,
    /// Comparison of a pointer with a scalar other than a null check, or across regions.
    PointerComparison { reg: Reg, class: ValueClass },
    /// An atomic operation on a region that does not allow it.
    AtomicNotAllowed { region: RegionName },
    /// An atomic operation on a stack slot holding a spilled pointer.
    AtomicOnPointer { class: ValueClass },
    /// A helper id the hook does not allow.
    HelperNotAllowed { id: i64 },
    /// A helper argument of the wrong kind.
    HelperArgument {
        helper: u32,
        arg: u8,
        expected: ArgType,
        found: ValueClass,
    },
    /// A map key/value argument without a map argument before it.
    HelperArgumentWithoutMap { helper: u32, arg: u8 },
    /// A memory size argument with no upper bound small enough for its buffer.
    HelperSizeUnbounded { helper: u32, arg: u8 },
    /// `callx` whose register is not a known helper id.
    IndirectCallUnknownTarget { reg: Reg },
    /// A call of a helper by BTF id (not supported).
    BtfHelperCall { id: i32 },
    /// Legacy packet loads (LD ABS/IND) need an skb context this runtime does not have.
    LegacyPacketAccess,
    /// An `lddw` pseudo kind the loader did not resolve.
    UnsupportedLddw { src: u8 },
    /// A reference to a map the hook does not provide.
    UnknownMap { index: u32 },
    /// BPF-to-BPF calls nested deeper than the limit.
    CallDepthExceeded { limit: usize },
    /// A subprogram returns a pointer into its own (dying) stack frame.
    ReturnsStackPointer,
    /// The analysis found a loop whose state repeats: it may never end.
    InfiniteLoop,
    /// The analysis visited more states than the complexity limit.
    ComplexityLimit { limit: u64 },
    /// Too many branches pending at once.
    TooManyPendingBranches { limit: usize },
}

/// A rejection: which instruction (slot index) and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifyError {
    /// Slot index of the offending instruction.
    pub insn: usize,
    pub kind: VerifyErrorKind,
}

impl fmt::Display for VerifyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "insn={}: {}", self.insn, self.kind)
    }
}

fn arg_name(arg: ArgType) -> &'static str {
    match arg {
        ArgType::Scalar => "a scalar",
        ArgType::MapPointer => "a map pointer",
        ArgType::MapKey => "a pointer to an initialised map key",
        ArgType::MapValue => "a pointer to an initialised map value",
        ArgType::ReadableMemory => "a pointer to readable memory",
        ArgType::WritableMemory => "a pointer to writable memory",
        ArgType::MemorySize => "a bounded size",
        ArgType::Context => "the context pointer at offset 0",
    }
}

fn range(f: &mut fmt::Formatter<'_>, min: i64, max: i64) -> fmt::Result {
    if min == max {
        write!(f, "{min}")
    } else {
        write!(f, "[{min}, {max}]")
    }
}

impl fmt::Display for VerifyErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use VerifyErrorKind::*;
        match *self {
            EmptyProgram => f.write_str("the program has no instructions"),
            TooManyInstructions { count, limit } => write!(
                f,
                "the program has {count} instructions, more than the limit of {limit}"
            ),
            Decode(kind) => write!(f, "invalid instruction: {kind}"),
            JumpOutOfRange { target, len } => write!(
                f,
                "jump to instruction {target}, outside the program (0..{len})"
            ),
            JumpIntoLddw { target } => write!(
                f,
                "jump to instruction {target}, the middle of an lddw"
            ),
            FallsOffEnd => f.write_str("execution can run past the last instruction"),
            Unreachable => f.write_str("no path from the entry reaches this instruction"),
            UninitialisedRegister { reg } => write!(f, "read of {reg} which is not initialised"),
            FramePointerWrite => f.write_str("r10 (the frame pointer) is read-only"),
            UninitialisedStack { offset, size } => write!(
                f,
                "read of {size} bytes at stack offset {offset} which is not initialised"
            ),
            StackOutOfBounds { min, max, size } => {
                write!(f, "access of {size} bytes at stack offset ")?;
                range(f, min, max)?;
                write!(f, " is outside the 512-byte stack frame [-512, 0)")
            }
            VariableStackWrite { min, max } => write!(
                f,
                "write to the stack at a variable offset [{min}, {max}]; stack writes need a known offset"
            ),
            PartialPointerRead { offset, size } => write!(
                f,
                "read of {size} bytes at stack offset {offset} takes part of a spilled pointer"
            ),
            PartialPointerSpill { offset, size } => write!(
                f,
                "pointer stored with {size} bytes at stack offset {offset}; pointers spill only as 8 aligned bytes"
            ),
            StackPointerEscape => f.write_str(
                "a pointer to a called function's stack is stored in its caller's stack and would dangle",
            ),
            ContextNotReadable { min, max, size } => {
                write!(f, "read of {size} bytes at context offset ")?;
                range(f, min, max)?;
                f.write_str(" is outside the readable context")
            }
            ContextNotWritable { min, max, size } => {
                write!(f, "write of {size} bytes at context offset ")?;
                range(f, min, max)?;
                f.write_str(" is outside the writable context")
            }
            MapValueOutOfBounds {
                min,
                max,
                size,
                value_size,
            } => {
                write!(f, "access of {size} bytes at map value offset ")?;
                range(f, min, max)?;
                write!(f, " is outside the {value_size}-byte value")
            }
            PossiblyNullDereference { reg } => write!(
                f,
                "{reg} may be null (map lookup result): compare it with 0 before use"
            ),
            NotAPointer { reg, class } => {
                write!(f, "dereference of {reg} which is {class}, not a memory pointer")
            }
            PointerLeakStore { region } => write!(
                f,
                "a pointer stored into the {region} would leak a kernel address"
            ),
            PointerLeakExit { class } => write!(
                f,
                "r0 at exit is {class}; the return value must be a scalar"
            ),
            ForbiddenPointerArithmetic { op, class } => write!(
                f,
                "{op:?} on {class}: only adding or subtracting a scalar is allowed on pointers"
            ),
            PointerTruncation { reg } => write!(
                f,
                "32-bit operation on pointer {reg} would truncate it into a scalar"
            ),
            NullablePointerArithmetic { reg } => write!(
                f,
                "arithmetic on {reg} which may be null: compare it with 0 first"
            ),
            PointerOffsetTooLarge { min, max } => write!(
                f,
                "pointer offset range [{min}, {max}] is too large; bound the added scalar first"
            ),
            PointerSubtractionAcrossRegions => {
                f.write_str("subtraction of pointers into different memory regions")
            }
            PointerComparison { reg, class } => write!(
                f,
                "comparison involving {reg} which is {class}: pointers compare only with 0 (null check) or a pointer into the same region"
            ),
            AtomicNotAllowed { region } => {
                write!(f, "atomic operation on the {region} is not allowed")
            }
            AtomicOnPointer { class } => write!(
                f,
                "atomic operation on a stack slot holding {class} would turn it into a scalar"
            ),
            HelperNotAllowed { id } => {
                write!(f, "call of helper {id}, which this hook does not allow")
            }
            HelperArgument {
                helper,
                arg,
                expected,
                found,
            } => write!(
                f,
                "helper {helper} argument {arg} (r{arg}) must be {}, but is {found}",
                arg_name(expected)
            ),
            HelperArgumentWithoutMap { helper, arg } => write!(
                f,
                "helper {helper} argument {arg} needs a map argument before it"
            ),
            HelperSizeUnbounded { helper, arg } => write!(
                f,
                "helper {helper} argument {arg} (size) has no upper bound that fits its buffer"
            ),
            IndirectCallUnknownTarget { reg } => write!(
                f,
                "callx {reg}: the target is not a known constant helper id"
            ),
            BtfHelperCall { id } => write!(f, "call of kernel function by BTF id {id} is not supported"),
            LegacyPacketAccess => f.write_str(
                "legacy packet load (LD ABS/IND) needs a socket-buffer context this hook does not have",
            ),
            UnsupportedLddw { src } => write!(
                f,
                "lddw with pseudo source {src} is not supported (only immediates, maps and map values)"
            ),
            UnknownMap { index } => write!(f, "reference to map {index}, which this hook does not provide"),
            CallDepthExceeded { limit } => {
                write!(f, "BPF-to-BPF calls nested deeper than {limit} frames")
            }
            ReturnsStackPointer => f.write_str(
                "function returns a pointer into its own stack frame, which ends at return",
            ),
            InfiniteLoop => f.write_str(
                "loop with a repeating state: it cannot be proven to terminate",
            ),
            ComplexityLimit { limit } => write!(
                f,
                "analysis exceeded {limit} visited instructions (a loop may not terminate, or the program is too complex)"
            ),
            TooManyPendingBranches { limit } => {
                write!(f, "more than {limit} branches pending in the analysis")
            }
        }
    }
}

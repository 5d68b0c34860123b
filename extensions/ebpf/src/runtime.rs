//! Helper functions at run time: the helper table, what a helper may touch, and the
//! standard helpers (maps, time, current core, logging, ring-buffer output).
//!
//! A helper is a plain function pointer taking a [`HelperContext`] and r1..r5. The context
//! is the helper's whole view of the world: the memory regions of the current run (every
//! pointer argument is checked against them, even in the interpreter's fast mode, because
//! helpers are cheap next to their checks), the maps of the program, and the [`Platform`]
//! the kernel implements (clock, core number, log sink, randomness). The prototypes the
//! verifier checks are in [`crate::helpers`]; ids match.

use alloc::string::String;
use alloc::sync::Arc;
use core::fmt::{self, Write};

use crate::helpers::id;
use crate::limits::{MAX_HELPER_ID, MAX_MAP_KEY_SIZE, MAX_TRACE_LINE};
use crate::maps::{Map, MapError};
use crate::memory::{self, Regions};

/// Tag in the high bits of a map handle (the value `lddw rX, map:N` loads). The low bits are
/// the program's map index. The value is not an address of any region, so a program cannot
/// dereference it.
pub const MAP_HANDLE_TAG: u64 = 0xebbf_0000_0000_0000;

/// What the kernel (or a host test) provides to helpers. The current core is not here: it
/// comes with each run ([`crate::vm::RunOptions::cpu`]), so per-CPU maps and
/// `bpf_get_smp_processor_id` agree.
pub trait Platform {
    /// Monotonic time in nanoseconds (`bpf_ktime_get_ns`).
    fn now_ns(&self) -> u64;
    /// Receives one formatted `bpf_trace_printk` line (without newline).
    fn log(&self, line: &str);
    /// A random number (`bpf_get_prandom_u32`).
    fn random_u32(&self) -> u32;
}

/// A platform with fixed answers: time counts up by 1000 ns per call, log lines are
/// dropped, a fixed xorshift sequence. For tests, the CLI and benchmarks.
#[derive(Default)]
pub struct HostPlatform {
    clock: core::sync::atomic::AtomicU64,
    seed: core::sync::atomic::AtomicU32,
}

impl Platform for HostPlatform {
    fn now_ns(&self) -> u64 {
        self.clock
            .fetch_add(1000, core::sync::atomic::Ordering::Relaxed)
    }
    fn log(&self, _line: &str) {}
    fn random_u32(&self) -> u32 {
        let mut x = self.seed.load(core::sync::atomic::Ordering::Relaxed) ^ 0x9e37_79b9;
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        self.seed.store(x, core::sync::atomic::Ordering::Relaxed);
        x
    }
}

/// Why a helper call did not return a value normally.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HelperError {
    /// A pointer argument is outside the run's memory (or not writable when written).
    Memory { addr: u64, len: u64, write: bool },
    /// An argument that should be a map handle is not one of this program's maps.
    BadMapHandle(u64),
    /// The helper asks the program to stop now with this r0 (the conformance suite's
    /// "unwind" helper). Not a failure: the run returns `r0`.
    Stop { r0: u64 },
    /// A helper-specific failure, with a description.
    Failed(String),
}

impl fmt::Display for HelperError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HelperError::Memory { addr, len, write } => write!(
                f,
                "helper {} {len} bytes at {addr:#x} outside the program's memory",
                if *write { "writes" } else { "reads" }
            ),
            HelperError::BadMapHandle(v) => write!(f, "{v:#x} is not a map of this program"),
            HelperError::Stop { r0 } => write!(f, "helper stopped the program with r0={r0}"),
            HelperError::Failed(why) => write!(f, "helper failed: {why}"),
        }
    }
}

/// What a helper sees during one call.
pub struct HelperContext<'a> {
    pub(crate) regions: &'a Regions,
    pub(crate) maps: &'a [Arc<Map>],
    /// The platform the run was given.
    pub platform: &'a dyn Platform,
    /// The core the run is on (index for per-CPU maps).
    pub cpu: usize,
}

impl HelperContext<'_> {
    /// Checks that `[addr, addr + len)` is inside the run's memory (writable if `write`).
    pub fn check(&self, addr: u64, len: u64, write: bool) -> Result<(), HelperError> {
        if len == 0 || self.regions.allows(addr, len, write) {
            Ok(())
        } else {
            Err(HelperError::Memory { addr, len, write })
        }
    }

    /// Copies program memory at `addr` into `out`.
    pub fn read(&self, addr: u64, out: &mut [u8]) -> Result<(), HelperError> {
        self.check(addr, out.len() as u64, false)?;
        if !out.is_empty() {
            #[allow(unsafe_code)]
            // SAFETY: the range was checked against the run's live regions just above.
            unsafe {
                memory::copy_out(addr, out)
            };
        }
        Ok(())
    }

    /// Copies `data` into program memory at `addr`.
    pub fn write(&self, addr: u64, data: &[u8]) -> Result<(), HelperError> {
        self.check(addr, data.len() as u64, true)?;
        for (i, &b) in data.iter().enumerate() {
            #[allow(unsafe_code)]
            // SAFETY: `[addr, addr + len)` was checked writable above; `i < len`.
            unsafe {
                memory::store(addr + i as u64, 1, b as u64)
            };
        }
        Ok(())
    }

    /// The map a handle argument names.
    pub fn map(&self, handle: u64) -> Result<&Map, HelperError> {
        if handle & !0xffff_ffff != MAP_HANDLE_TAG {
            return Err(HelperError::BadMapHandle(handle));
        }
        self.maps
            .get((handle & 0xffff_ffff) as usize)
            .map(|m| &**m)
            .ok_or(HelperError::BadMapHandle(handle))
    }

    /// Reads a key of `map`'s key size from `addr` into `buf`, returning the key slice.
    fn key<'b>(&self, map: &Map, addr: u64, buf: &'b mut [u8]) -> Result<&'b [u8], HelperError> {
        let key = &mut buf[..map.def().key_size as usize];
        self.read(addr, key)?;
        Ok(key)
    }
}

/// A helper implementation: r1..r5 in, r0 out.
pub type HelperFn = fn(&mut HelperContext<'_>, [u64; 5]) -> Result<u64, HelperError>;

/// Helpers callable by id (0..=[`MAX_HELPER_ID`]).
#[derive(Clone)]
pub struct HelperTable {
    table: [Option<HelperFn>; MAX_HELPER_ID as usize + 1],
}

impl Default for HelperTable {
    fn default() -> Self {
        HelperTable::empty()
    }
}

impl fmt::Debug for HelperTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ids: alloc::vec::Vec<usize> = (0..self.table.len())
            .filter(|&i| self.table[i].is_some())
            .collect();
        f.debug_struct("HelperTable").field("ids", &ids).finish()
    }
}

impl HelperTable {
    /// No helpers.
    pub fn empty() -> Self {
        HelperTable {
            table: [None; MAX_HELPER_ID as usize + 1],
        }
    }

    /// The standard helpers of [`crate::helpers::HELPER_PROTOTYPES`].
    pub fn standard() -> Self {
        let mut t = HelperTable::empty();
        t.table[id::MAP_LOOKUP_ELEM as usize] = Some(map_lookup_elem);
        t.table[id::MAP_UPDATE_ELEM as usize] = Some(map_update_elem);
        t.table[id::MAP_DELETE_ELEM as usize] = Some(map_delete_elem);
        t.table[id::KTIME_GET_NS as usize] = Some(ktime_get_ns);
        t.table[id::TRACE_PRINTK as usize] = Some(trace_printk);
        t.table[id::GET_PRANDOM_U32 as usize] = Some(get_prandom_u32);
        t.table[id::GET_SMP_PROCESSOR_ID as usize] = Some(get_smp_processor_id);
        t.table[id::RINGBUF_OUTPUT as usize] = Some(ringbuf_output);
        t
    }

    /// Registers (or replaces) helper `id`. Returns false when `id` is above [`MAX_HELPER_ID`].
    pub fn register(&mut self, id: u32, helper: HelperFn) -> bool {
        match self.table.get_mut(id as usize) {
            Some(slot) => {
                *slot = Some(helper);
                true
            }
            None => false,
        }
    }

    /// Removes helper `id`.
    pub fn unregister(&mut self, id: u32) {
        if let Some(slot) = self.table.get_mut(id as usize) {
            *slot = None;
        }
    }

    /// The helper with this id, if any (ids are taken as unsigned).
    #[inline]
    pub fn get(&self, id: u64) -> Option<HelperFn> {
        self.table.get(usize::try_from(id).ok()?).copied().flatten()
    }
}

fn map_result(r: Result<(), MapError>) -> u64 {
    match r {
        Ok(()) => 0,
        Err(e) => e.errno() as u64,
    }
}

fn map_lookup_elem(ctx: &mut HelperContext<'_>, a: [u64; 5]) -> Result<u64, HelperError> {
    let map = ctx.map(a[0])?;
    let mut buf = [0u8; MAX_MAP_KEY_SIZE as usize];
    let key = ctx.key(map, a[1], &mut buf)?;
    Ok(map.lookup_addr(key, ctx.cpu).unwrap_or(0))
}

fn map_update_elem(ctx: &mut HelperContext<'_>, a: [u64; 5]) -> Result<u64, HelperError> {
    let map = ctx.map(a[0])?;
    let mut buf = [0u8; MAX_MAP_KEY_SIZE as usize];
    let key = ctx.key(map, a[1], &mut buf)?;
    ctx.check(a[2], map.def().value_size as u64, false)?;
    Ok(map_result(map.update_from_addr(key, a[2], a[3], ctx.cpu)))
}

fn map_delete_elem(ctx: &mut HelperContext<'_>, a: [u64; 5]) -> Result<u64, HelperError> {
    let map = ctx.map(a[0])?;
    let mut buf = [0u8; MAX_MAP_KEY_SIZE as usize];
    let key = ctx.key(map, a[1], &mut buf)?;
    Ok(map_result(map.delete(key)))
}

fn ktime_get_ns(ctx: &mut HelperContext<'_>, _: [u64; 5]) -> Result<u64, HelperError> {
    Ok(ctx.platform.now_ns())
}

fn get_prandom_u32(ctx: &mut HelperContext<'_>, _: [u64; 5]) -> Result<u64, HelperError> {
    Ok(ctx.platform.random_u32() as u64)
}

fn get_smp_processor_id(ctx: &mut HelperContext<'_>, _: [u64; 5]) -> Result<u64, HelperError> {
    Ok(ctx.cpu as u64)
}

fn ringbuf_output(ctx: &mut HelperContext<'_>, a: [u64; 5]) -> Result<u64, HelperError> {
    let map = ctx.map(a[0])?;
    let len = a[2];
    if len > crate::limits::MAX_MAP_VALUE_SIZE as u64 {
        return Ok(MapError::Full.errno() as u64);
    }
    let mut data = alloc::vec![0u8; len as usize];
    ctx.read(a[1], &mut data)?;
    Ok(map_result(map.ringbuf_output(&data)))
}

/// Bounded line buffer for trace_printk.
struct Line(String);

impl Write for Line {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for c in s.chars() {
            if self.0.len() + c.len_utf8() > MAX_TRACE_LINE {
                return Err(fmt::Error);
            }
            self.0.push(c);
        }
        Ok(())
    }
}

/// Formats a `bpf_trace_printk` line: `%d %i %u %x %c %%` with optional `l`/`ll`, at most
/// three arguments, as Linux. Returns `None` for an unsupported conversion.
pub fn format_trace(fmt_bytes: &[u8], args: [u64; 3]) -> Option<String> {
    let end = fmt_bytes
        .iter()
        .position(|&b| b == 0)
        .unwrap_or(fmt_bytes.len());
    let text = core::str::from_utf8(&fmt_bytes[..end]).ok()?;
    let mut line = Line(String::new());
    let mut chars = text.chars().peekable();
    let mut next_arg = 0;
    while let Some(c) = chars.next() {
        if c != '%' {
            if c != '\n' {
                let _ = line.write_char(c);
            }
            continue;
        }
        let mut long = 0;
        while chars.peek() == Some(&'l') {
            chars.next();
            long += 1;
        }
        let conv = chars.next()?;
        if conv == '%' {
            let _ = line.write_char('%');
            continue;
        }
        let raw = *args.get(next_arg)?;
        next_arg += 1;
        let value = if long > 0 { raw } else { raw as u32 as u64 };
        let _ = match conv {
            'd' | 'i' if long > 0 => write!(line, "{}", value as i64),
            'd' | 'i' => write!(line, "{}", value as u32 as i32),
            'u' => write!(line, "{value}"),
            'x' => write!(line, "{value:x}"),
            'c' => write!(line, "{}", char::from(value as u8)),
            _ => return None,
        };
    }
    Some(line.0)
}

fn trace_printk(ctx: &mut HelperContext<'_>, a: [u64; 5]) -> Result<u64, HelperError> {
    let len = a[1].min(MAX_TRACE_LINE as u64) as usize;
    let mut fmt_bytes = [0u8; MAX_TRACE_LINE];
    ctx.read(a[0], &mut fmt_bytes[..len])?;
    match format_trace(&fmt_bytes[..len], [a[2], a[3], a[4]]) {
        Some(line) => {
            ctx.platform.log(&line);
            Ok(line.len() as u64)
        }
        None => Ok((-22i64) as u64), // EINVAL, as Linux for a bad format
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trace_format_conversions() {
        assert_eq!(
            format_trace(b"v=%d u=%u x=%x\n\0", [(-5i64) as u64, 7, 255]).as_deref(),
            Some("v=-5 u=7 x=ff")
        );
        assert_eq!(
            format_trace(b"%lld %llx %%", [(-1i64) as u64, 0x1_0000_0000, 0]).as_deref(),
            Some("-1 100000000 %")
        );
        assert_eq!(format_trace(b"%s", [0, 0, 0]), None);
        assert_eq!(format_trace(b"%d %d %d %d", [1, 2, 3]), None);
    }

    #[test]
    fn table_registers_and_bounds_ids() {
        let mut t = HelperTable::empty();
        assert!(t.get(1).is_none());
        assert!(t.register(200, ktime_get_ns));
        assert!(!t.register(MAX_HELPER_ID + 1, ktime_get_ns));
        assert!(t.get(200).is_some());
        assert!(t.get(u64::MAX).is_none());
        let s = HelperTable::standard();
        for proto in crate::helpers::HELPER_PROTOTYPES {
            assert!(s.get(proto.id as u64).is_some(), "{} missing", proto.name);
        }
    }
}

//! Test world: a task system with an in-memory model of user memory, one helper per syscall.
#![allow(dead_code)]

use abi::{ReturnRegisters, Syscall, TaskId, UserSlice};
use std::string::String;
use tasking::policy::DefaultPolicy;
use tasking::sched::{CoreId, CoreMask, Priority};
use tasking::system::{LogSink, SyscallEffect, TaskDescriptor, TaskSystem};
use tasking::time::Instant;
use tasking::usermem::{
    AddressSpaceMap, CheckedSlice, CopyError, Permissions, Region, RegionKind, UserMemory,
};

/// Text (read + execute) of every test task.
pub const TEXT_BASE: u64 = 0x1_0000;
/// Data (read + write) of every test task.
pub const DATA_BASE: u64 = 0x10_0000;
/// Size of the data region.
pub const DATA_BYTES: u64 = 0x1_0000;
/// Top of the stack region (stack is the last 16 KiB of data).
pub const STACK_TOP: u64 = DATA_BASE + DATA_BYTES;
/// Guard range under the data region.
pub const GUARD: std::ops::Range<u64> = (DATA_BASE - 0x4000)..DATA_BASE;

pub fn address_space() -> AddressSpaceMap {
    AddressSpaceMap::new(vec![
        Region {
            base: TEXT_BASE,
            size: 0x4000,
            permissions: Permissions::READ_EXECUTE,
            kind: RegionKind::Image,
        },
        Region {
            base: DATA_BASE,
            size: DATA_BYTES,
            permissions: Permissions::READ_WRITE,
            kind: RegionKind::Image,
        },
    ])
    .expect("test map is valid")
}

pub fn descriptor(
    name: &str,
    priority: u8,
    affinity: CoreMask,
    supervisor: bool,
) -> TaskDescriptor {
    TaskDescriptor {
        name: String::from(name),
        priority: Priority(priority),
        affinity,
        supervisor,
        address_space: address_space(),
        entry: TEXT_BASE,
        stack_top: STACK_TOP,
        stack_guard: GUARD,
    }
}

/// User memory of every task: the data region is real bytes, text reads as zero.
#[derive(Default)]
pub struct FakeMemory {
    pub data: Vec<Vec<u8>>,
    pub copies: u64,
}

impl FakeMemory {
    fn region(&mut self, task: TaskId) -> &mut Vec<u8> {
        let index = task.index_usize();
        while self.data.len() <= index {
            self.data.push(vec![0; DATA_BYTES as usize]);
        }
        &mut self.data[index]
    }
}

impl UserMemory for FakeMemory {
    fn read(&mut self, from: &CheckedSlice, offset: u64, into: &mut [u8]) -> Result<(), CopyError> {
        assert!(
            offset + into.len() as u64 <= from.len(),
            "read beyond the checked slice"
        );
        let addr = from.addr() + offset;
        self.copies += 1;
        if addr >= DATA_BASE {
            let start = (addr - DATA_BASE) as usize;
            let region = self.region(from.owner());
            into.copy_from_slice(&region[start..start + into.len()]);
        } else {
            into.fill(0);
        }
        Ok(())
    }

    fn write(&mut self, to: &CheckedSlice, offset: u64, bytes: &[u8]) -> Result<(), CopyError> {
        assert!(
            offset + bytes.len() as u64 <= to.len(),
            "write beyond the checked slice"
        );
        let addr = to.addr() + offset;
        if addr < DATA_BASE {
            return Err(CopyError {
                task: to.owner(),
                addr,
            });
        }
        let start = (addr - DATA_BASE) as usize;
        let region = self.region(to.owner());
        region[start..start + bytes.len()].copy_from_slice(bytes);
        Ok(())
    }
}

#[derive(Default)]
pub struct CapturedLog(pub Vec<(TaskId, String, Vec<u8>)>);

impl LogSink for CapturedLog {
    fn log(&mut self, task: TaskId, name: &str, bytes: &[u8]) {
        self.0.push((task, String::from(name), bytes.to_vec()));
    }
}

pub struct World {
    pub sys: TaskSystem<DefaultPolicy>,
    pub memory: FakeMemory,
    pub log: CapturedLog,
    pub now: Instant,
}

impl World {
    pub fn new(cores: usize) -> World {
        World {
            sys: TaskSystem::new(cores, DefaultPolicy::default()),
            memory: FakeMemory::default(),
            log: CapturedLog::default(),
            now: Instant(1_000),
        }
    }

    /// Spawns a task pinned to `core` (so tests know who is current where).
    pub fn spawn_on(&mut self, name: &str, priority: u8, core: usize) -> TaskId {
        let id = self
            .sys
            .spawn(
                descriptor(name, priority, CoreMask::only(CoreId(core)), false),
                self.now,
            )
            .expect("spawn");
        self.sys.current(CoreId(core), self.now);
        id
    }

    pub fn spawn_supervisor_on(&mut self, name: &str, core: usize) -> TaskId {
        let id = self
            .sys
            .spawn(
                descriptor(name, 0, CoreMask::only(CoreId(core)), true),
                self.now,
            )
            .expect("spawn");
        self.sys.current(CoreId(core), self.now);
        id
    }

    pub fn current(&mut self, core: usize) -> Option<TaskId> {
        self.sys.current(CoreId(core), self.now)
    }

    /// Makes the current task of `core` issue `call`.
    pub fn call(&mut self, core: usize, call: Syscall) -> SyscallEffect {
        let (number, args) = call.encode();
        self.call_raw(core, number, &args)
    }

    pub fn call_raw(&mut self, core: usize, number: u64, args: &[u64; 6]) -> SyscallEffect {
        self.sys.current(CoreId(core), self.now);
        let effect = self.sys.syscall(
            CoreId(core),
            self.now,
            number,
            args,
            &mut self.memory,
            &mut self.log,
        );
        self.sys
            .check_invariants()
            .expect("invariants after a syscall");
        effect
    }

    /// `call`, expecting an immediate result, which is returned.
    pub fn call_now(&mut self, core: usize, call: Syscall) -> ReturnRegisters {
        let task = self.current(core).expect("a current task");
        assert_eq!(
            self.call(core, call),
            SyscallEffect::Returned,
            "{call:?} should return"
        );
        self.sys.take_pending_return(task).expect("a result")
    }

    pub fn result(&mut self, task: TaskId) -> Option<ReturnRegisters> {
        self.sys.take_pending_return(task)
    }

    pub fn poke(&mut self, task: TaskId, addr: u64, bytes: &[u8]) {
        let start = (addr - DATA_BASE) as usize;
        let region = self.memory.region(task);
        region[start..start + bytes.len()].copy_from_slice(bytes);
    }

    pub fn peek(&mut self, task: TaskId, addr: u64, len: usize) -> Vec<u8> {
        let start = (addr - DATA_BASE) as usize;
        self.memory.region(task)[start..start + len].to_vec()
    }

    pub fn advance_to(&mut self, nanos: u64) {
        self.now = Instant(nanos);
        for core in 0..self.sys.scheduler().core_count() {
            self.sys.tick(CoreId(core), self.now);
        }
        self.sys
            .check_invariants()
            .expect("invariants after a tick");
    }
}

pub fn slice(addr: u64, len: u64) -> UserSlice {
    UserSlice::new(addr, len)
}

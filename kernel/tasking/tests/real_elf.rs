//! A real linker's output (tests/fixtures/hello.elf, from hello.S) goes through the whole
//! portable path: parse, plan, build page tables, spawn, and a `log` syscall whose bytes the
//! kernel-style copy reads *through the task's page tables*.

use abi::{Syscall, TaskId, UserSlice};
use std::collections::BTreeMap;
use tasking::elf;
use tasking::layout::{self, STACK_TOP};
use tasking::pagetable::{PageFlags, PageTable, PhysAddr, PhysicalMemory};
use tasking::policy::DefaultPolicy;
use tasking::sched::{CoreId, CoreMask, Priority};
use tasking::system::{LogSink, SyscallEffect, TaskSystem};
use tasking::time::Instant;
use tasking::usermem::{CheckedSlice, CopyError, UserMemory, PAGE_BYTES};

const HELLO: &[u8] = include_bytes!("fixtures/hello.elf");

#[derive(Default)]
struct Frames {
    frames: BTreeMap<u64, Vec<u8>>,
    next: u64,
}

impl PhysicalMemory for Frames {
    fn allocate_frame(&mut self) -> Option<PhysAddr> {
        let address = 0x8000_0000 + self.next * PAGE_BYTES;
        self.next += 1;
        self.frames.insert(address, vec![0; PAGE_BYTES as usize]);
        Some(PhysAddr(address))
    }
    fn free_frame(&mut self, frame: PhysAddr) {
        self.frames.remove(&frame.0);
    }
    fn read_u64(&self, address: PhysAddr) -> u64 {
        let mut bytes = [0u8; 8];
        self.read_bytes(address, &mut bytes);
        u64::from_le_bytes(bytes)
    }
    fn write_u64(&mut self, address: PhysAddr, value: u64) {
        self.write_bytes(address, &value.to_le_bytes());
    }
    fn write_bytes(&mut self, address: PhysAddr, bytes: &[u8]) {
        let base = address.0 & !(PAGE_BYTES - 1);
        let at = (address.0 - base) as usize;
        self.frames.get_mut(&base).expect("frame")[at..at + bytes.len()].copy_from_slice(bytes);
    }
    fn read_bytes(&self, address: PhysAddr, into: &mut [u8]) {
        let base = address.0 & !(PAGE_BYTES - 1);
        let at = (address.0 - base) as usize;
        into.copy_from_slice(&self.frames.get(&base).expect("frame")[at..at + into.len()]);
    }
}

/// The kernel's copy path in miniature: translate through the owner's tables, byte by byte
/// (the kernel does it page by page through its linear map).
struct TableBackedMemory<'a> {
    frames: &'a mut Frames,
    tables: BTreeMap<u16, &'a PageTable>,
}

impl UserMemory for TableBackedMemory<'_> {
    fn read(&mut self, from: &CheckedSlice, offset: u64, into: &mut [u8]) -> Result<(), CopyError> {
        let table = self.tables[&from.owner().index()];
        for (n, byte) in into.iter_mut().enumerate() {
            let address = from.addr() + offset + n as u64;
            let translation = table.translate(&*self.frames, address).ok_or(CopyError {
                task: from.owner(),
                addr: address,
            })?;
            let mut one = [0u8];
            self.frames.read_bytes(translation.physical, &mut one);
            *byte = one[0];
        }
        Ok(())
    }
    fn write(&mut self, to: &CheckedSlice, _offset: u64, _bytes: &[u8]) -> Result<(), CopyError> {
        Err(CopyError {
            task: to.owner(),
            addr: to.addr(),
        })
    }
}

#[derive(Default)]
struct Console(Vec<u8>);

impl LogSink for Console {
    fn log(&mut self, _task: TaskId, name: &str, bytes: &[u8]) {
        self.0.extend_from_slice(name.as_bytes());
        self.0.extend_from_slice(b": ");
        self.0.extend_from_slice(bytes);
    }
}

#[test]
fn a_linked_task_image_loads_and_its_log_call_reads_through_its_page_tables() {
    let image = elf::parse(HELLO).expect("linker output parses");
    assert_eq!(image.entry, 0x11000);
    assert_eq!(image.segments.len(), 3);
    let plan = layout::plan(&image, 0).expect("fits the layout");
    let mut frames = Frames::default();
    let built = layout::build(&plan, &image, &mut frames).expect("builds");

    // The entry point holds `adr x0, message` and the text is user-executable only.
    let entry = built
        .table
        .translate(&frames, image.entry)
        .expect("entry mapped");
    assert_eq!(entry.flags, PageFlags::USER_TEXT);
    let mut first = [0u8; 4];
    frames.read_bytes(entry.physical, &mut first);
    let adr = u32::from_le_bytes(first);
    assert_eq!(adr & 0x9F00_001F, 0x1000_0000, "adr x0, label");
    let immediate = (((adr >> 5) & 0x7FFFF) << 2 | (adr >> 29) & 3) as i64;
    let immediate = (immediate << 43) >> 43; // sign-extend 21 bits
    let message = (image.entry as i64 + immediate) as u64;
    // .data holds 42 and the 8 KiB .bss is mapped, writable and zero.
    let data_segment = image
        .segments
        .iter()
        .find(|s| s.permissions.write)
        .expect("data");
    let data = built
        .table
        .translate(&frames, data_segment.virtual_address)
        .expect("data mapped");
    let mut word = [0u8; 8];
    frames.read_bytes(data.physical, &mut word);
    assert_eq!(u64::from_le_bytes(word), 42);
    let bss_end = data_segment.end() - 1;
    let bss = built.table.translate(&frames, bss_end).expect("bss mapped");
    assert_eq!(bss.flags, PageFlags::USER_DATA);
    assert!(built.table.translate(&frames, STACK_TOP - 8).is_some());

    // Spawn it and run its first syscall as the CPU would issue it.
    let mut system = TaskSystem::new(1, DefaultPolicy::default());
    let descriptor = plan.task_descriptor("hello", Priority(3), CoreMask::ALL, false);
    let task = system.spawn(descriptor, Instant(0)).expect("spawn");
    assert_eq!(system.current(CoreId(0), Instant(0)), Some(task));
    let start = system.take_start_request(task).expect("fresh task");
    assert_eq!((start.entry, start.stack_pointer), (0x11000, STACK_TOP));
    let mut memory = TableBackedMemory {
        frames: &mut frames,
        tables: BTreeMap::from([(0, &built.table)]),
    };
    let mut console = Console::default();
    let (number, args) = Syscall::Log {
        message: UserSlice::new(message, 13),
    }
    .encode();
    let effect = system.syscall(
        CoreId(0),
        Instant(1),
        number,
        &args,
        &mut memory,
        &mut console,
    );
    assert_eq!(effect, SyscallEffect::Returned);
    assert_eq!(console.0, b"hello: hello, world\n");
    // A log of kernel memory, as a hostile task would try, is refused before any copy.
    let (number, args) = Syscall::Log {
        message: UserSlice::new(0xFFFF_0000_0000_0000, 13),
    }
    .encode();
    system.syscall(
        CoreId(0),
        Instant(2),
        number,
        &args,
        &mut memory,
        &mut console,
    );
    let refused = system.take_pending_return(task).expect("result");
    assert_eq!(refused.kernel_error(), Some(abi::KernelError::BadPointer));
    let (number, args) = Syscall::Exit { code: 0 }.encode();
    let effect = system.syscall(
        CoreId(0),
        Instant(3),
        number,
        &args,
        &mut memory,
        &mut console,
    );
    assert_eq!(effect, SyscallEffect::Exited);
    layout::release(built, &mut frames);
    assert!(frames.frames.is_empty());
}

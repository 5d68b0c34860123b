//! Host benchmark of the portable core's own cost per operation (no hardware: no exception
//! entry, no TTBR0 switch, no cache effects). It bounds what the state machines add on top of
//! the kernel's trap and switch path, and catches algorithmic regressions.
//!
//! Run: `cargo run --release -p tasking --example core_costs [--json]`
//!
//! Time is this thread's *on-CPU* time from `/proc/thread-self/schedstat` (Linux), so other
//! load on a shared machine does not inflate the figures; elsewhere it falls back to wall time.

use abi::{Syscall, TaskId, UserSlice};
use std::hint::black_box;
use std::time::Instant as WallClock;

/// Nanoseconds this thread has run on a CPU (wall-clock nanoseconds where unavailable).
struct CpuClock {
    wall: WallClock,
    cpu: Option<u64>,
}

fn thread_cpu_nanos() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    text.split_whitespace().next()?.parse().ok()
}

impl CpuClock {
    fn now() -> CpuClock {
        CpuClock {
            wall: WallClock::now(),
            cpu: thread_cpu_nanos(),
        }
    }
    fn elapsed_nanos(&self) -> u128 {
        match (self.cpu, thread_cpu_nanos()) {
            (Some(start), Some(end)) => (end - start) as u128,
            _ => self.wall.elapsed().as_nanos(),
        }
    }
}
use tasking::policy::DefaultPolicy;
use tasking::sched::{CoreId, CoreMask, Priority};
use tasking::system::{LogSink, TaskDescriptor, TaskSystem};
use tasking::time::Instant;
use tasking::usermem::{
    AddressSpaceMap, CheckedSlice, CopyError, Permissions, Region, RegionKind, UserMemory,
};

const DATA: u64 = 0x10_0000;

struct Memory(Vec<Vec<u8>>);

impl UserMemory for Memory {
    fn read(&mut self, from: &CheckedSlice, offset: u64, into: &mut [u8]) -> Result<(), CopyError> {
        let start = (from.addr() + offset - DATA) as usize;
        into.copy_from_slice(&self.0[from.owner().index_usize()][start..start + into.len()]);
        Ok(())
    }
    fn write(&mut self, to: &CheckedSlice, offset: u64, bytes: &[u8]) -> Result<(), CopyError> {
        let start = (to.addr() + offset - DATA) as usize;
        self.0[to.owner().index_usize()][start..start + bytes.len()].copy_from_slice(bytes);
        Ok(())
    }
}

struct Quiet;

impl LogSink for Quiet {
    fn log(&mut self, _task: TaskId, _name: &str, _bytes: &[u8]) {}
}

fn descriptor(name: &str, core: usize) -> TaskDescriptor {
    let map = AddressSpaceMap::new(vec![Region {
        base: DATA,
        size: 0x1_0000,
        permissions: Permissions::READ_WRITE,
        kind: RegionKind::Image,
    }])
    .expect("map");
    TaskDescriptor {
        name: name.into(),
        priority: Priority(3),
        affinity: CoreMask::only(CoreId(core)),
        supervisor: false,
        address_space: map,
        entry: DATA,
        stack_top: DATA + 0x1_0000,
        stack_guard: 0..0,
    }
}

/// What the kernel does around one `svc`: hand the current task its earlier result (as it
/// would before `eret`), run the syscall, and collect the new result if the task goes on.
fn call(
    system: &mut TaskSystem<DefaultPolicy>,
    memory: &mut Memory,
    core: usize,
    now: u64,
    call: Syscall,
) -> Option<abi::ReturnRegisters> {
    let caller = system.current(CoreId(core), Instant(now))?;
    black_box(system.take_pending_return(caller));
    let (number, args) = call.encode();
    system.syscall(
        CoreId(core),
        Instant(now),
        number,
        &args,
        memory,
        &mut Quiet,
    );
    system.take_pending_return(caller)
}

fn report(json: bool, name: &str, iterations: u64, nanos: u128) {
    let per = nanos as f64 / iterations as f64;
    if json {
        println!(
            "{{\"bench\":\"tasking.{name}\",\"ns_per_op\":{per:.1},\"iterations\":{iterations}}}"
        );
    } else {
        println!(
            "{name:<36} {per:>9.1} ns/op   ({iterations} iterations, host, portable core only)"
        );
    }
}

fn main() {
    let json = std::env::args().any(|arg| arg == "--json");
    let iterations = 1_000_000u64;

    // 1. Trivial syscall (get_time): decode + dispatch + result.
    let mut system = TaskSystem::new(2, DefaultPolicy::default());
    let mut memory = Memory(vec![vec![0; 0x1_0000]; 2]);
    let client = system
        .spawn(descriptor("client", 0), Instant(0))
        .expect("spawn");
    let server = system
        .spawn(descriptor("server", 1), Instant(0))
        .expect("spawn");
    system.current(CoreId(0), Instant(0));
    system.current(CoreId(1), Instant(0));
    let start = CpuClock::now();
    for n in 0..iterations {
        call(&mut system, &mut memory, 0, n, Syscall::GetTime);
    }
    report(json, "syscall(get_time)", iterations, start.elapsed_nanos());

    // 2. IPC round trip across two cores: receive (blocks), send 64 B, reply 64 B.
    let receive = Syscall::Receive {
        buffer: UserSlice::new(DATA + 0x1000, 256),
        notification_mask: 0,
        from: None,
    };
    let send = Syscall::Send {
        target: server,
        operation: 1,
        request: UserSlice::new(DATA, 64),
        response: UserSlice::new(DATA + 0x2000, 64),
    };
    let reply = Syscall::Reply {
        client,
        code: 0,
        message: UserSlice::new(DATA + 0x3000, 64),
    };
    let start = CpuClock::now();
    for n in 0..iterations {
        call(&mut system, &mut memory, 1, n, receive);
        call(&mut system, &mut memory, 0, n, send);
        call(&mut system, &mut memory, 1, n, reply);
    }
    report(
        json,
        "ipc_round_trip(64B, 3 syscalls)",
        iterations,
        start.elapsed_nanos(),
    );
    // The loop did real round trips: the client's last result is the reply.
    let last = system.take_pending_return(client).expect("reply delivered");
    assert_eq!(
        (last.code(), last.0[1]),
        (0, 64),
        "round trip failed: {last:?}"
    );
    system
        .check_invariants()
        .expect("invariants after the benchmark");

    // 3. Scheduler tick with a preemption every slice: 4 spinners on one core.
    let mut system = TaskSystem::new(1, DefaultPolicy::default());
    for index in 0..4 {
        system
            .spawn(descriptor(&format!("spin{index}"), 0), Instant(0))
            .expect("spawn");
    }
    system.current(CoreId(0), Instant(0));
    let start = CpuClock::now();
    for n in 1..=iterations {
        black_box(system.tick(CoreId(0), Instant(n * 1_000_000)));
    }
    report(
        json,
        "tick(4 spinners, 5-tick slices)",
        iterations,
        start.elapsed_nanos(),
    );
    let stats = system.scheduler().core_stats(CoreId(0)).expect("core");
    if !json {
        println!(
            "  run-queue wait p50 {} ms, p99 {} ms over {} dispatches",
            stats.wait.p50().unwrap_or(0) / 1_000_000,
            stats.wait.p99().unwrap_or(0) / 1_000_000,
            stats.dispatches
        );
    }
}

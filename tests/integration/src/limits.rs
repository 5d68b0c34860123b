//! Static limits of the QEMU test harness, each with the reason for its number.
//!
//! Every wait in the harness is bounded: a test fails with the console transcript when a
//! bound is crossed, and never passes because of one.

use std::time::Duration;

/// Longest wait for the banner and the first prompt. A healthy boot takes well under a
/// second under TCG, but CI runs two QEMUs with four vCPUs each on two host cores, and the
/// 98 MB model initrd is read from disk first: 60 s leaves room for a loaded machine
/// without letting a hung kernel stall the suite for long.
pub const BOOT_TIMEOUT: Duration = Duration::from_secs(60);

/// Longest wait for one console command's reply and the next prompt. Console commands of
/// the foundation (help, info, log) answer at once; slow commands (inference) pass their
/// own timeout to [`crate::Qemu::command_with_timeout`].
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);

/// Longest wait for QEMU to exit after `poweroff` or a fatal fault.
pub const EXIT_TIMEOUT: Duration = Duration::from_secs(30);

/// How often the harness polls the QEMU process for its exit. Short enough not to add
/// visible latency to a test, long enough to cost nothing.
pub const EXIT_POLL_INTERVAL: Duration = Duration::from_millis(20);

/// How many bytes of the console transcript an error message shows (the tail). Enough to
/// see the last few commands and a decoded fault; more would drown the test report.
pub const TRANSCRIPT_TAIL_BYTES: usize = 4000;

/// The longest console line the tests send as "overlong". The kernel's line buffer is
/// expected to be much shorter (a few hundred bytes); 4 KiB is clearly over any sensible
/// limit and still sends in well under a second through QEMU's UART.
pub const OVERLONG_LINE_BYTES: usize = 4096;

//! Static limits of xtask, each with the reason for its number.

use std::time::Duration;

/// Longest wait for `rustup target add aarch64-unknown-none`. It fetched in about 2 s on
/// this kind of machine; a minute covers a slow mirror, and past that the registry is
/// unreachable and the Debian fallback route is the better bet.
pub const RUSTUP_TARGET_ADD_TIMEOUT: Duration = Duration::from_secs(60);

/// Boots per configuration in `bench boot`; the median of 5 ignores one slow outlier on
/// a shared 2-core machine without making the bench long.
pub const BENCH_BOOT_RUNS: usize = 5;

/// Runs per core count of `bench infer` (median reported): wall-clock tok/s under TCG moves by
/// ±20 % run to run on a shared host, so one run is not a figure.
pub const BENCH_INFER_RUNS: usize = 3;

/// Largest kernel image xtask accepts from an ELF: the flat image spans from the lowest
/// to the highest loaded address, so a stray segment (e.g. one linked at a device
/// address) would make a gigantic file. 64 MiB is far above any kernel we build (the
/// model is a separate initrd) and far below anything that hurts.
pub const MAX_IMAGE_BYTES: u64 = 64 * 1024 * 1024;

/// Offset and value of the arm64 Image header's magic ("ARM\x64" at byte 56), which
/// both QEMU and the Raspberry Pi firmware look for.
pub const ARM64_IMAGE_MAGIC_OFFSET: usize = 56;
/// See [`ARM64_IMAGE_MAGIC_OFFSET`].
pub const ARM64_IMAGE_MAGIC: [u8; 4] = *b"ARM\x64";

/// Smallest QEMU major version accepted: `raspi4b` exists since 9.0, and the boot facts
/// this project relies on (raw Image on raspi4b at EL2, /chosen patched) were checked on
/// 10.0.2, the version bookworm-backports ships.
pub const MIN_QEMU_MAJOR: u32 = 10;

//! The one place that knows how to start QEMU for Anneal: board, machine, CPU, memory,
//! console and boot arguments become a QEMU argument vector.
//!
//! `cargo xtask run` (and so `./qemu.sh`), `cargo xtask bench` and the QEMU tests all
//! build their command line here, so what a test boots is exactly what a user boots.
//!
//! Board facts that QEMU imposes (checked on QEMU 10.0.2):
//! - `virt` needs `-cpu cortex-a72` or `max` (its default CPU is 32-bit), takes any `-smp`
//!   from 1 up and any `-m`; the GIC version is a machine property (`gic-version=2|3`).
//! - `raspi4b` has exactly 4 Cortex-A72 cores, exactly 2 GiB of RAM and a GIC-400 (v2); it
//!   makes no device tree, so `-dtb bcm2711-rpi-4-b.dtb` is required. Its first serial port
//!   (`-serial stdio`) is the PL011 UART0.
//! - The kernel is a raw arm64 Image (not an ELF): only then does QEMU pass the device tree
//!   in x0, load `-initrd`, write `-append` into `/chosen/bootargs`, and start raspi4b at
//!   EL2 as the real firmware does.
//! - `-semihosting` lets the kernel end QEMU with its exit status; the kernel uses it only
//!   when the boot arguments say `semihosting`, so both are always passed together.

use std::ffi::OsString;
use std::fmt;
use std::path::PathBuf;

/// Default QEMU binary (Debian package `qemu-system-arm`, QEMU 10 from bookworm-backports).
pub const DEFAULT_QEMU: &str = "qemu-system-aarch64";

/// Memory the `raspi4b` machine has; QEMU refuses any other `-m`.
pub const RPI4_MEM_MIB: u32 = 2048;

/// Cores the `raspi4b` machine has; QEMU refuses any other `-smp`.
pub const RPI4_CORES: u32 = 4;

/// Default memory for `virt`: the 98 MB default model goes in as the initrd and needs
/// `-m 512M` or more; 1 GiB leaves room for the KV cache and the heap beside it.
pub const DEFAULT_VIRT_MEM_MIB: u32 = 1024;

/// Most cores the tests and `run` accept for `virt` (GICv2 serves at most 8; QEMU's
/// virt board takes up to 512 with GICv3, far more than 2 host cores can run usefully).
pub const MAX_VIRT_CORES: u32 = 8;

/// Default CPU model for `virt`, the CPU of the Raspberry Pi 4.
pub const DEFAULT_CPU: &str = "cortex-a72";

/// Default GIC version for `virt`.
pub const DEFAULT_GIC: u8 = 3;

/// Which machine QEMU emulates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Board {
    /// QEMU's generic `virt` machine.
    Virt,
    /// QEMU's `raspi4b` machine (Raspberry Pi 4 Model B).
    Rpi4,
}

impl Board {
    /// Parses the name used on the command line (`virt` or `rpi4`).
    pub fn parse(name: &str) -> Option<Board> {
        match name {
            "virt" => Some(Board::Virt),
            "rpi4" | "raspi4b" => Some(Board::Rpi4),
            _ => None,
        }
    }

    /// The name used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Board::Virt => "virt",
            Board::Rpi4 => "rpi4",
        }
    }

    /// What the kernel's `info` prints on its `board:` line for this board.
    pub fn info_name(self) -> &'static str {
        match self {
            Board::Virt => "qemu-virt",
            Board::Rpi4 => "raspberrypi-4b",
        }
    }
}

/// How QEMU's console is attached to stdio.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConsoleMode {
    /// UART on stdio and nothing else: every byte goes to the guest (tests, piped input).
    Plain,
    /// `-nographic`: UART and monitor multiplexed on stdio, Ctrl-C goes to the guest and
    /// Ctrl-A X quits QEMU (interactive use on a terminal).
    Multiplexed,
}

/// A QEMU configuration that cannot run, with the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigError {
    /// `raspi4b` has a fixed core count.
    Rpi4Cores { requested: u32 },
    /// `raspi4b` has a fixed memory size.
    Rpi4Memory { requested_mib: u32 },
    /// `raspi4b` has a fixed CPU model and GIC.
    Rpi4FixedHardware { what: &'static str },
    /// `raspi4b` needs the device tree file.
    Rpi4NeedsDtb,
    /// Core count outside 1..=MAX_VIRT_CORES.
    Cores { requested: u32 },
    /// GIC version other than 2 or 3.
    Gic { requested: u8 },
    /// Less memory than the kernel can use.
    Memory { requested_mib: u32 },
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::Rpi4Cores { requested } => write!(
                f,
                "--smp {requested}: the rpi4 board (QEMU raspi4b) always has {RPI4_CORES} cores"
            ),
            ConfigError::Rpi4Memory { requested_mib } => write!(
                f,
                "--mem {requested_mib}: the rpi4 board (QEMU raspi4b) always has {RPI4_MEM_MIB} MiB"
            ),
            ConfigError::Rpi4FixedHardware { what } => write!(
                f,
                "{what}: the rpi4 board has a fixed Cortex-A72 and GIC-400 (v2); these options are for virt"
            ),
            ConfigError::Rpi4NeedsDtb => write!(
                f,
                "the rpi4 board needs bcm2711-rpi-4-b.dtb (QEMU raspi4b makes no device tree); \
                 `cargo xtask build --board rpi4` fetches it"
            ),
            ConfigError::Cores { requested } => {
                write!(f, "--smp {requested}: virt takes 1 to {MAX_VIRT_CORES} cores")
            }
            ConfigError::Gic { requested } => write!(f, "--gic {requested}: use 2 or 3"),
            ConfigError::Memory { requested_mib } => write!(
                f,
                "--mem {requested_mib}: give at least {MIN_MEM_MIB} MiB"
            ),
        }
    }
}

impl std::error::Error for ConfigError {}

/// Least memory accepted for `virt`: below this the kernel image, its page tables and a
/// heap do not fit comfortably (the model needs 512 MiB on top).
pub const MIN_MEM_MIB: u32 = 64;

/// Everything that decides how QEMU boots Anneal.
#[derive(Clone, Debug)]
pub struct QemuConfig {
    /// QEMU binary to run.
    pub qemu: PathBuf,
    /// Machine.
    pub board: Board,
    /// Raw kernel image (arm64 Image header), given as `-kernel`.
    pub image: PathBuf,
    /// Cores (`-smp`).
    pub smp: u32,
    /// Memory in MiB (`-m`).
    pub mem_mib: u32,
    /// GIC version for virt (2 or 3).
    pub gic: u8,
    /// CPU model for virt.
    pub cpu: String,
    /// File given as `-initrd` (the model), if any.
    pub initrd: Option<PathBuf>,
    /// Device tree file (`-dtb`), required for rpi4.
    pub dtb: Option<PathBuf>,
    /// `loglevel=` boot argument, if any.
    pub loglevel: Option<String>,
    /// More boot arguments after `semihosting` and `loglevel=`.
    pub extra_bootargs: Vec<String>,
    /// Wait for gdb on TCP port 1234 (`-s -S`).
    pub gdb: bool,
    /// `-icount shift=N`: guest time counts guest instructions (deterministic timings).
    pub icount_shift: Option<u32>,
    /// How the console is attached.
    pub console: ConsoleMode,
    /// Further raw QEMU arguments, appended last.
    pub extra_args: Vec<String>,
    /// Machine option `dumpdtb=FILE`: QEMU writes the device tree it would pass and
    /// exits without booting (see [`crate::dtb`]).
    pub dumpdtb: Option<PathBuf>,
}

impl QemuConfig {
    /// A `virt` configuration with the defaults: cortex-a72, 1 core, 1 GiB, GICv3, no initrd.
    pub fn virt(image: impl Into<PathBuf>) -> QemuConfig {
        QemuConfig {
            qemu: PathBuf::from(DEFAULT_QEMU),
            board: Board::Virt,
            image: image.into(),
            smp: 1,
            mem_mib: DEFAULT_VIRT_MEM_MIB,
            gic: DEFAULT_GIC,
            cpu: DEFAULT_CPU.to_string(),
            initrd: None,
            dtb: None,
            loglevel: None,
            extra_bootargs: Vec::new(),
            gdb: false,
            icount_shift: None,
            console: ConsoleMode::Plain,
            extra_args: Vec::new(),
            dumpdtb: None,
        }
    }

    /// A `raspi4b` configuration: 4 cores, 2 GiB, the given device tree, no initrd.
    pub fn rpi4(image: impl Into<PathBuf>, dtb: impl Into<PathBuf>) -> QemuConfig {
        QemuConfig {
            board: Board::Rpi4,
            smp: RPI4_CORES,
            mem_mib: RPI4_MEM_MIB,
            gic: 2,
            dtb: Some(dtb.into()),
            ..QemuConfig::virt(image)
        }
    }

    /// Checks that QEMU can run this configuration, so the user gets a clear reason
    /// instead of QEMU's own message.
    pub fn validate(&self) -> Result<(), ConfigError> {
        match self.board {
            Board::Rpi4 => {
                if self.smp != RPI4_CORES {
                    return Err(ConfigError::Rpi4Cores {
                        requested: self.smp,
                    });
                }
                if self.mem_mib != RPI4_MEM_MIB {
                    return Err(ConfigError::Rpi4Memory {
                        requested_mib: self.mem_mib,
                    });
                }
                if self.cpu != DEFAULT_CPU {
                    return Err(ConfigError::Rpi4FixedHardware { what: "--cpu" });
                }
                if self.gic != 2 {
                    return Err(ConfigError::Rpi4FixedHardware { what: "--gic" });
                }
                if self.dtb.is_none() {
                    return Err(ConfigError::Rpi4NeedsDtb);
                }
            }
            Board::Virt => {
                if self.smp == 0 || self.smp > MAX_VIRT_CORES {
                    return Err(ConfigError::Cores {
                        requested: self.smp,
                    });
                }
                if self.gic != 2 && self.gic != 3 {
                    return Err(ConfigError::Gic {
                        requested: self.gic,
                    });
                }
                if self.mem_mib < MIN_MEM_MIB {
                    return Err(ConfigError::Memory {
                        requested_mib: self.mem_mib,
                    });
                }
            }
        }
        Ok(())
    }

    /// The kernel command line (`-append`): always `semihosting` first.
    pub fn bootargs(&self) -> String {
        let mut args = vec!["semihosting".to_string()];
        if let Some(level) = &self.loglevel {
            args.push(format!("loglevel={level}"));
        }
        args.extend(self.extra_bootargs.iter().cloned());
        args.join(" ")
    }

    /// QEMU's arguments (without the program name).
    pub fn args(&self) -> Vec<OsString> {
        let mut args: Vec<OsString> = Vec::new();
        let dump = self
            .dumpdtb
            .as_ref()
            .map_or(String::new(), |f| format!(",dumpdtb={}", f.display()));
        let mut push = |a: &str| args.push(OsString::from(a));
        match self.board {
            Board::Virt => {
                push("-M");
                push(&format!("virt,gic-version={}{dump}", self.gic));
                push("-cpu");
                push(&self.cpu);
            }
            Board::Rpi4 => {
                push("-M");
                push(&format!("raspi4b{dump}"));
            }
        }
        push("-smp");
        push(&self.smp.to_string());
        push("-m");
        push(&format!("{}M", self.mem_mib));
        match self.console {
            ConsoleMode::Plain => {
                push("-display");
                push("none");
                push("-monitor");
                push("none");
                push("-serial");
                push("stdio");
            }
            ConsoleMode::Multiplexed => push("-nographic"),
        }
        push("-semihosting");
        if let Some(shift) = self.icount_shift {
            push("-icount");
            push(&format!("shift={shift}"));
        }
        push("-append");
        push(&self.bootargs());
        if self.gdb {
            push("-s");
            push("-S");
        }
        args.push(OsString::from("-kernel"));
        args.push(self.image.clone().into_os_string());
        if let Some(dtb) = &self.dtb {
            args.push(OsString::from("-dtb"));
            args.push(dtb.clone().into_os_string());
        }
        if let Some(initrd) = &self.initrd {
            args.push(OsString::from("-initrd"));
            args.push(initrd.clone().into_os_string());
        }
        args.extend(self.extra_args.iter().map(OsString::from));
        args
    }

    /// The whole command line, quoted so that it can be pasted into a shell.
    pub fn command_line(&self) -> String {
        let mut words = vec![shell_quote(&self.qemu.to_string_lossy())];
        words.extend(
            self.args()
                .iter()
                .map(|a| shell_quote(&a.to_string_lossy())),
        );
        words.join(" ")
    }
}

/// Quotes a word for a POSIX shell when it holds anything but safe characters.
pub fn shell_quote(word: &str) -> String {
    let safe = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c));
    if safe {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args_of(config: &QemuConfig) -> Vec<String> {
        config
            .args()
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect()
    }

    fn value_after(args: &[String], flag: &str) -> Option<String> {
        let at = args.iter().position(|a| a == flag)?;
        args.get(at + 1).cloned()
    }

    #[test]
    fn virt_command_line_carries_every_setting() {
        let mut config = QemuConfig::virt("/k/Image");
        config.smp = 4;
        config.mem_mib = 768;
        config.gic = 2;
        config.cpu = "max".into();
        config.initrd = Some("/m/model.gguf".into());
        config.loglevel = Some("debug".into());
        let args = args_of(&config);
        assert_eq!(
            value_after(&args, "-M").as_deref(),
            Some("virt,gic-version=2")
        );
        assert_eq!(value_after(&args, "-cpu").as_deref(), Some("max"));
        assert_eq!(value_after(&args, "-smp").as_deref(), Some("4"));
        assert_eq!(value_after(&args, "-m").as_deref(), Some("768M"));
        assert_eq!(value_after(&args, "-kernel").as_deref(), Some("/k/Image"));
        assert_eq!(
            value_after(&args, "-initrd").as_deref(),
            Some("/m/model.gguf")
        );
        assert_eq!(
            value_after(&args, "-append").as_deref(),
            Some("semihosting loglevel=debug")
        );
        assert!(args.iter().any(|a| a == "-semihosting"));
        assert!(!args.iter().any(|a| a == "-dtb"));
        assert!(!args.iter().any(|a| a == "-S"));
        assert_eq!(config.validate(), Ok(()));
    }

    #[test]
    fn rpi4_command_line_uses_raspi4b_with_its_dtb() {
        let config = QemuConfig::rpi4("/k/Image", "/d/bcm2711-rpi-4-b.dtb");
        let args = args_of(&config);
        assert_eq!(value_after(&args, "-M").as_deref(), Some("raspi4b"));
        assert_eq!(value_after(&args, "-smp").as_deref(), Some("4"));
        assert_eq!(value_after(&args, "-m").as_deref(), Some("2048M"));
        assert_eq!(
            value_after(&args, "-dtb").as_deref(),
            Some("/d/bcm2711-rpi-4-b.dtb")
        );
        assert!(!args.iter().any(|a| a == "-cpu"));
        assert_eq!(config.validate(), Ok(()));
    }

    #[test]
    fn rpi4_rejects_what_the_machine_cannot_do() {
        let mut config = QemuConfig::rpi4("/k/Image", "/d/x.dtb");
        config.smp = 2;
        assert_eq!(
            config.validate(),
            Err(ConfigError::Rpi4Cores { requested: 2 })
        );
        let mut config = QemuConfig::rpi4("/k/Image", "/d/x.dtb");
        config.mem_mib = 1024;
        assert_eq!(
            config.validate(),
            Err(ConfigError::Rpi4Memory {
                requested_mib: 1024
            })
        );
        let mut config = QemuConfig::rpi4("/k/Image", "/d/x.dtb");
        config.dtb = None;
        assert_eq!(config.validate(), Err(ConfigError::Rpi4NeedsDtb));
        let mut config = QemuConfig::rpi4("/k/Image", "/d/x.dtb");
        config.gic = 3;
        assert!(config.validate().unwrap_err().to_string().contains("--gic"));
    }

    #[test]
    fn virt_rejects_impossible_settings() {
        let mut config = QemuConfig::virt("/k/Image");
        config.smp = 0;
        assert_eq!(config.validate(), Err(ConfigError::Cores { requested: 0 }));
        config.smp = MAX_VIRT_CORES + 1;
        assert!(config.validate().is_err());
        let mut config = QemuConfig::virt("/k/Image");
        config.gic = 4;
        assert_eq!(config.validate(), Err(ConfigError::Gic { requested: 4 }));
        let mut config = QemuConfig::virt("/k/Image");
        config.mem_mib = 16;
        assert_eq!(
            config.validate(),
            Err(ConfigError::Memory { requested_mib: 16 })
        );
    }

    #[test]
    fn gdb_and_icount_and_console_modes() {
        let mut config = QemuConfig::virt("/k/Image");
        config.gdb = true;
        config.icount_shift = Some(0);
        config.console = ConsoleMode::Multiplexed;
        let args = args_of(&config);
        assert!(args.iter().any(|a| a == "-s"));
        assert!(args.iter().any(|a| a == "-S"));
        assert_eq!(value_after(&args, "-icount").as_deref(), Some("shift=0"));
        assert!(args.iter().any(|a| a == "-nographic"));
        assert!(!args.iter().any(|a| a == "-serial"));
    }

    #[test]
    fn dumpdtb_is_a_machine_option() {
        let mut config = QemuConfig::rpi4("/k/Image", "/d/x.dtb");
        config.dumpdtb = Some("/tmp/out.dtb".into());
        assert_eq!(
            value_after(&args_of(&config), "-M").as_deref(),
            Some("raspi4b,dumpdtb=/tmp/out.dtb")
        );
        let mut config = QemuConfig::virt("/k/Image");
        config.dumpdtb = Some("/tmp/v.dtb".into());
        assert_eq!(
            value_after(&args_of(&config), "-M").as_deref(),
            Some("virt,gic-version=3,dumpdtb=/tmp/v.dtb")
        );
    }

    #[test]
    fn command_line_quotes_words_with_spaces() {
        let mut config = QemuConfig::virt("/path with space/Image");
        config.loglevel = Some("info".into());
        let line = config.command_line();
        assert!(line.starts_with("qemu-system-aarch64 -M virt,gic-version=3"));
        assert!(line.contains("-append 'semihosting loglevel=info'"));
        assert!(line.contains("-kernel '/path with space/Image'"));
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote(""), "''");
    }

    #[test]
    fn board_names_round_trip() {
        for board in [Board::Virt, Board::Rpi4] {
            assert_eq!(Board::parse(board.name()), Some(board));
        }
        assert_eq!(Board::parse("raspi4b"), Some(Board::Rpi4));
        assert_eq!(Board::parse("pc"), None);
        assert_eq!(Board::Rpi4.info_name(), "raspberrypi-4b");
    }
}

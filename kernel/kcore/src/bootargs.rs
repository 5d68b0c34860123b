//! Kernel command line (`/chosen/bootargs`): space-separated words, unknown ones ignored.
//!
//! The words the kernel understands are part of the contract with the test harness:
//! `semihosting` (QEMU runs with `-semihosting`, so exit statuses go through semihosting
//! SYS_EXIT_EXTENDED) and `loglevel=error|warn|info|debug|trace`. Anything else is ignored so a
//! firmware that adds its own words (the Pi firmware adds many) does not stop the boot.

/// A log verbosity, in increasing detail. Mirrors the `log` crate's levels without depending on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    /// Only errors.
    Error,
    /// Errors and warnings.
    Warn,
    /// Normal boot messages.
    Info,
    /// Developer detail.
    Debug,
    /// Everything.
    Trace,
}

impl LogLevel {
    /// Parses `error|warn|info|debug|trace` (case-insensitive); `None` for anything else.
    pub fn parse(text: &str) -> Option<Self> {
        const NAMES: [(&str, LogLevel); 5] = [
            ("error", LogLevel::Error),
            ("warn", LogLevel::Warn),
            ("info", LogLevel::Info),
            ("debug", LogLevel::Debug),
            ("trace", LogLevel::Trace),
        ];
        NAMES
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(text))
            .map(|(_, level)| *level)
    }

    /// The lower-case name.
    pub fn name(&self) -> &'static str {
        match self {
            LogLevel::Error => "error",
            LogLevel::Warn => "warn",
            LogLevel::Info => "info",
            LogLevel::Debug => "debug",
            LogLevel::Trace => "trace",
        }
    }
}

/// What the kernel takes from its command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BootOptions {
    /// `semihosting`: exit through semihosting SYS_EXIT_EXTENDED.
    pub semihosting: bool,
    /// `loglevel=...`; the last valid one wins.
    pub log_level: Option<LogLevel>,
}

impl BootOptions {
    /// Parses a command line. Never fails: unknown or malformed words are ignored.
    pub fn parse(command_line: &str) -> Self {
        let mut options = BootOptions::default();
        for word in command_line.split_ascii_whitespace() {
            if word == "semihosting" {
                options.semihosting = true;
            } else if let Some(level) = word.strip_prefix("loglevel=") {
                if let Some(level) = LogLevel::parse(level) {
                    options.log_level = Some(level);
                }
            }
        }
        options
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_known_words_and_ignores_the_rest() {
        let options =
            BootOptions::parse("coherent_pool=1M semihosting  loglevel=debug 8250.nr_uarts=1");
        assert!(options.semihosting);
        assert_eq!(options.log_level, Some(LogLevel::Debug));
        let options = BootOptions::parse("loglevel=loud semihostingx");
        assert_eq!(options, BootOptions::default());
        assert_eq!(BootOptions::parse(""), BootOptions::default());
    }

    #[test]
    fn level_names_round_trip() {
        for level in [
            LogLevel::Error,
            LogLevel::Warn,
            LogLevel::Info,
            LogLevel::Debug,
            LogLevel::Trace,
        ] {
            assert_eq!(LogLevel::parse(level.name()), Some(level));
        }
        assert_eq!(LogLevel::parse("WARN"), Some(LogLevel::Warn));
        assert!(LogLevel::Error < LogLevel::Trace);
    }
}

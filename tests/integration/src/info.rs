//! Parsing of the kernel's `info` reply (`key: value` lines), so tests assert on values
//! rather than on exact strings.
//!
//! The line format is the kernel's contract: `board: qemu-virt|raspberrypi-4b`,
//! `cores: <online> online of <n>`, `memory: <MiB> MiB in <n> range(s)`, `gic: v2|v3`,
//! `uptime: <s.mmm> s`, `initrd: <bytes> bytes at 0x<addr>` or `initrd: none`,
//! `bootargs: ...`, plus `cpu:` and `heap:` lines.

use std::collections::BTreeMap;

/// The `info` reply as key/value pairs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Info {
    fields: BTreeMap<String, String>,
    text: String,
}

/// An `info` field that is missing or not in the contract's format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InfoError {
    /// The key.
    pub key: &'static str,
    /// What was wrong.
    pub problem: String,
    /// The whole reply, for the test report.
    pub reply: String,
}

impl std::fmt::Display for InfoError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "info `{}`: {}; reply was:\n{}",
            self.key, self.problem, self.reply
        )
    }
}

impl std::error::Error for InfoError {}

/// An initrd as `info` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InitrdInfo {
    /// Size in bytes.
    pub bytes: u64,
    /// Physical start address.
    pub address: u64,
}

impl Info {
    /// Parses an `info` reply; lines without `: ` are ignored.
    pub fn parse(reply: &str) -> Info {
        let fields = reply
            .lines()
            .filter_map(|line| line.split_once(": "))
            .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
            .collect();
        Info {
            fields,
            text: reply.to_string(),
        }
    }

    fn error(&self, key: &'static str, problem: impl Into<String>) -> InfoError {
        InfoError {
            key,
            problem: problem.into(),
            reply: self.text.clone(),
        }
    }

    /// The raw value of a field.
    pub fn get(&self, key: &'static str) -> Result<&str, InfoError> {
        self.fields
            .get(key)
            .map(String::as_str)
            .ok_or_else(|| self.error(key, "missing"))
    }

    /// `board:`.
    pub fn board(&self) -> Result<&str, InfoError> {
        self.get("board")
    }

    /// `cores: <online> online of <n>` as (online, n).
    pub fn cores(&self) -> Result<(u32, u32), InfoError> {
        let value = self.get("cores")?;
        let words: Vec<&str> = value.split_whitespace().collect();
        match words.as_slice() {
            [online, "online", "of", total] => match (online.parse(), total.parse()) {
                (Ok(o), Ok(t)) => Ok((o, t)),
                _ => Err(self.error("cores", format!("numbers expected in {value:?}"))),
            },
            _ => Err(self.error(
                "cores",
                format!("`<n> online of <n>` expected, got {value:?}"),
            )),
        }
    }

    /// `memory: <MiB> MiB in <n> range(s)` as (MiB, ranges).
    pub fn memory(&self) -> Result<(u64, u32), InfoError> {
        let value = self.get("memory")?;
        let words: Vec<&str> = value.split_whitespace().collect();
        match words.as_slice() {
            [mib, "MiB", "in", ranges, _] => match (mib.parse(), ranges.parse()) {
                (Ok(m), Ok(r)) => Ok((m, r)),
                _ => Err(self.error("memory", format!("numbers expected in {value:?}"))),
            },
            _ => Err(self.error(
                "memory",
                format!("`<MiB> MiB in <n> range(s)` expected, got {value:?}"),
            )),
        }
    }

    /// `gic: v2|v3` as 2 or 3.
    pub fn gic(&self) -> Result<u8, InfoError> {
        match self.get("gic")? {
            "v2" => Ok(2),
            "v3" => Ok(3),
            other => Err(self.error("gic", format!("v2 or v3 expected, got {other:?}"))),
        }
    }

    /// `uptime: <s.mmm> s` in milliseconds.
    pub fn uptime_ms(&self) -> Result<u64, InfoError> {
        let value = self.get("uptime")?;
        let number = value
            .strip_suffix(" s")
            .ok_or_else(|| self.error("uptime", format!("`<s.mmm> s` expected, got {value:?}")))?;
        let (secs, millis) = number
            .split_once('.')
            .ok_or_else(|| self.error("uptime", format!("`<s.mmm>` expected, got {number:?}")))?;
        match (secs.parse::<u64>(), millis.parse::<u64>(), millis.len()) {
            (Ok(s), Ok(m), 3) => Ok(s * 1000 + m),
            _ => Err(self.error("uptime", format!("`<s.mmm>` expected, got {number:?}"))),
        }
    }

    /// `initrd: <bytes> bytes at 0x<addr>` or `initrd: none`.
    pub fn initrd(&self) -> Result<Option<InitrdInfo>, InfoError> {
        let value = self.get("initrd")?;
        if value == "none" {
            return Ok(None);
        }
        let words: Vec<&str> = value.split_whitespace().collect();
        let parsed = match words.as_slice() {
            [bytes, "bytes", "at", address] => address
                .strip_prefix("0x")
                .and_then(|hex| u64::from_str_radix(hex, 16).ok())
                .zip(bytes.parse().ok())
                .map(|(address, bytes)| InitrdInfo { bytes, address }),
            _ => None,
        };
        parsed.map(Some).ok_or_else(|| {
            self.error(
                "initrd",
                format!("`<n> bytes at 0x<addr>` or `none` expected, got {value:?}"),
            )
        })
    }

    /// `bootargs:`.
    pub fn bootargs(&self) -> Result<&str, InfoError> {
        self.get("bootargs")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "board: qemu-virt\ncpu: cortex-a72 (MIDR 0x410fd083)\n\
        cores: 4 online of 4\nmemory: 1024 MiB in 1 range(s)\nheap: 16 MiB\ngic: v3\n\
        uptime: 12.034 s\ninitrd: 98362432 bytes at 0x48000000\nbootargs: semihosting loglevel=info\n";

    #[test]
    fn parses_every_contract_line() {
        let info = Info::parse(SAMPLE);
        assert_eq!(info.board(), Ok("qemu-virt"));
        assert_eq!(info.cores(), Ok((4, 4)));
        assert_eq!(info.memory(), Ok((1024, 1)));
        assert_eq!(info.gic(), Ok(3));
        assert_eq!(info.uptime_ms(), Ok(12_034));
        assert_eq!(
            info.initrd(),
            Ok(Some(InitrdInfo {
                bytes: 98_362_432,
                address: 0x4800_0000
            }))
        );
        assert_eq!(info.bootargs(), Ok("semihosting loglevel=info"));
        assert_eq!(info.get("cpu"), Ok("cortex-a72 (MIDR 0x410fd083)"));
    }

    #[test]
    fn reports_missing_and_malformed_fields() {
        let info = Info::parse("board: x\ncores: four\nuptime: 1.5 s\ninitrd: none\ngic: v4\n");
        assert_eq!(info.initrd(), Ok(None));
        let err = info.memory().unwrap_err();
        assert_eq!(err.key, "memory");
        assert!(err.to_string().contains("missing"));
        assert!(info.cores().unwrap_err().problem.contains("four"));
        assert!(info.uptime_ms().is_err());
        assert!(info.gic().is_err());
        let bad = Info::parse("initrd: 12 bytes at 48000000\n");
        assert!(bad.initrd().is_err());
    }
}

//! Capability manifest: what a module may do, carried inside the module itself.
//!
//! The manifest lives in a custom section named [`MANIFEST_SECTION`] so one file carries code
//! and capabilities together, and a module cannot be separated from its grant list. The
//! payload is a small line-oriented UTF-8 text (documented in extensions/wasm/README.md),
//! chosen over a binary layout because the model that writes modules also reads manifests in
//! its prompt, people review them in `wasm info`, and a text parser is easy to make total:
//!
//! ```text
//! anneal-manifest 1
//! # comment
//! hook sched.slice
//! grant hook_input
//! grant hook_output
//! telemetry sched.switches
//! map task_stats
//! fuel 20000
//! memory-pages 1
//! ```
//!
//! Every line is `key value`; the first line names the format version. Unknown keys,
//! duplicates of single-valued keys, out-of-range budgets and unknown grants are errors that
//! name the line, so a typo never silently widens or narrows what a module may do.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use crate::host::HOST_FUNCTIONS;
use crate::limits;

/// Name of the custom section that holds the manifest.
pub const MANIFEST_SECTION: &str = "anneal.manifest";

/// First line of every manifest: format name and version.
pub const MANIFEST_HEADER: &str = "anneal-manifest 1";

/// A parsed, checked capability manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    /// Hook point the module may attach to (e.g. `sched.slice`), if any.
    pub hook: Option<String>,
    /// Host functions (import names under module `anneal`) the module may import.
    pub grants: Vec<String>,
    /// Telemetry counters the module may read through `telemetry_read`.
    pub telemetry: Vec<String>,
    /// eBPF maps shared with the module; the index in this list is the map handle.
    pub maps: Vec<String>,
    /// Fuel given to every call.
    pub fuel_per_call: u64,
    /// Most linear-memory pages (64 KiB) the module may have.
    pub memory_pages: u32,
}

impl Default for Manifest {
    fn default() -> Self {
        Self {
            hook: None,
            grants: Vec::new(),
            telemetry: Vec::new(),
            maps: Vec::new(),
            fuel_per_call: limits::DEFAULT_FUEL_PER_CALL,
            memory_pages: limits::DEFAULT_MEMORY_PAGES,
        }
    }
}

/// Why a manifest was rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ManifestError {
    /// The module has no `anneal.manifest` section.
    Missing,
    /// More than one manifest section: which one counts would be ambiguous.
    Duplicate,
    /// The section is larger than [`limits::MAX_MANIFEST_BYTES`].
    TooLarge { bytes: usize },
    /// The payload is not UTF-8.
    NotUtf8,
    /// The first line is not [`MANIFEST_HEADER`].
    BadHeader { found: String },
    /// A line is malformed.
    Line {
        line: usize,
        reason: ManifestLineError,
    },
    /// The module binary is malformed around its sections (so the manifest cannot be found).
    MalformedModule { offset: usize },
}

/// What is wrong with one manifest line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ManifestLineError {
    /// The key is not one of the documented keys.
    UnknownKey(String),
    /// The key needs a value and has none.
    MissingValue(String),
    /// A single-valued key appeared twice.
    DuplicateKey(String),
    /// A number did not parse or is out of range.
    BadNumber { key: String, value: String },
    /// A `grant` names no host function.
    UnknownGrant(String),
    /// A name has characters outside `[A-Za-z0-9_.-]` or is too long.
    BadName(String),
    /// A list (grants, telemetry, maps) is too long.
    TooManyEntries(String),
}

impl fmt::Display for ManifestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Missing => write!(f, "no {MANIFEST_SECTION} custom section"),
            Self::Duplicate => write!(f, "more than one {MANIFEST_SECTION} section"),
            Self::TooLarge { bytes } => write!(
                f,
                "manifest is {bytes} bytes (limit {})",
                limits::MAX_MANIFEST_BYTES
            ),
            Self::NotUtf8 => write!(f, "manifest is not UTF-8"),
            Self::BadHeader { found } => {
                write!(
                    f,
                    "manifest line 1: expected `{MANIFEST_HEADER}`, found `{found}`"
                )
            }
            Self::Line { line, reason } => write!(f, "manifest line {line}: {reason}"),
            Self::MalformedModule { offset } => {
                write!(f, "malformed module section at byte {offset}")
            }
        }
    }
}

impl fmt::Display for ManifestLineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnknownKey(k) => write!(f, "unknown key `{k}`"),
            Self::MissingValue(k) => write!(f, "key `{k}` needs a value"),
            Self::DuplicateKey(k) => write!(f, "key `{k}` given twice"),
            Self::BadNumber { key, value } => write!(f, "bad value `{value}` for `{key}`"),
            Self::UnknownGrant(g) => write!(f, "`{g}` is not a host function"),
            Self::BadName(n) => write!(f, "bad name `{n}`"),
            Self::TooManyEntries(k) => write!(
                f,
                "too many `{k}` entries (limit {})",
                limits::MAX_MANIFEST_LIST_ENTRIES
            ),
        }
    }
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= limits::MAX_NAME_BYTES
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

impl Manifest {
    /// Parses a manifest payload (the custom section's contents).
    pub fn parse(payload: &[u8]) -> Result<Self, ManifestError> {
        if payload.len() > limits::MAX_MANIFEST_BYTES {
            return Err(ManifestError::TooLarge {
                bytes: payload.len(),
            });
        }
        let text = core::str::from_utf8(payload).map_err(|_| ManifestError::NotUtf8)?;
        let mut lines = text.lines().enumerate();
        let header = lines.next().map(|(_, l)| l.trim()).unwrap_or("");
        if header != MANIFEST_HEADER {
            return Err(ManifestError::BadHeader {
                found: String::from(header.get(..40).unwrap_or(header)),
            });
        }
        let mut manifest = Manifest::default();
        let (mut seen_fuel, mut seen_pages) = (false, false);
        for (index, raw) in lines {
            let line = index + 1;
            let err = |reason| ManifestError::Line { line, reason };
            let content = raw.split('#').next().unwrap_or("").trim();
            if content.is_empty() {
                continue;
            }
            let (key, value) = match content.split_once(char::is_whitespace) {
                Some((k, v)) => (k, v.trim()),
                None => (content, ""),
            };
            let owned = |s: &str| String::from(s.get(..limits::MAX_NAME_BYTES).unwrap_or(s));
            if value.is_empty() {
                return Err(err(ManifestLineError::MissingValue(owned(key))));
            }
            let check_name = |v: &str| {
                if valid_name(v) {
                    Ok(String::from(v))
                } else {
                    Err(err(ManifestLineError::BadName(owned(v))))
                }
            };
            let push = |list: &mut Vec<String>, v: String| {
                if list.len() >= limits::MAX_MANIFEST_LIST_ENTRIES {
                    return Err(err(ManifestLineError::TooManyEntries(owned(key))));
                }
                if !list.contains(&v) {
                    list.push(v);
                }
                Ok(())
            };
            match key {
                "hook" => {
                    if manifest.hook.is_some() {
                        return Err(err(ManifestLineError::DuplicateKey(owned(key))));
                    }
                    manifest.hook = Some(check_name(value)?);
                }
                "grant" => {
                    if !HOST_FUNCTIONS.iter().any(|h| h.name == value) {
                        return Err(err(ManifestLineError::UnknownGrant(owned(value))));
                    }
                    push(&mut manifest.grants, String::from(value))?;
                }
                "telemetry" => push(&mut manifest.telemetry, check_name(value)?)?,
                "map" => push(&mut manifest.maps, check_name(value)?)?,
                "fuel" => {
                    if seen_fuel {
                        return Err(err(ManifestLineError::DuplicateKey(owned(key))));
                    }
                    seen_fuel = true;
                    manifest.fuel_per_call = match value.parse::<u64>() {
                        Ok(n) if (1..=limits::MAX_FUEL_PER_CALL).contains(&n) => n,
                        _ => {
                            return Err(err(ManifestLineError::BadNumber {
                                key: owned(key),
                                value: owned(value),
                            }))
                        }
                    };
                }
                "memory-pages" => {
                    if seen_pages {
                        return Err(err(ManifestLineError::DuplicateKey(owned(key))));
                    }
                    seen_pages = true;
                    manifest.memory_pages = match value.parse::<u32>() {
                        Ok(n) if n <= limits::MAX_MEMORY_PAGES => n,
                        _ => {
                            return Err(err(ManifestLineError::BadNumber {
                                key: owned(key),
                                value: owned(value),
                            }))
                        }
                    };
                }
                _ => return Err(err(ManifestLineError::UnknownKey(owned(key)))),
            }
        }
        Ok(manifest)
    }

    /// Writes the manifest in its text form (what [`Manifest::parse`] reads back).
    pub fn to_text(&self) -> String {
        use core::fmt::Write;
        let mut out = String::from(MANIFEST_HEADER);
        out.push('\n');
        // Writing to a String cannot fail.
        if let Some(hook) = &self.hook {
            let _ = writeln!(out, "hook {hook}");
        }
        for g in &self.grants {
            let _ = writeln!(out, "grant {g}");
        }
        for t in &self.telemetry {
            let _ = writeln!(out, "telemetry {t}");
        }
        for m in &self.maps {
            let _ = writeln!(out, "map {m}");
        }
        let _ = writeln!(out, "fuel {}", self.fuel_per_call);
        let _ = writeln!(out, "memory-pages {}", self.memory_pages);
        out
    }

    /// Whether the module may import host function `name`.
    pub fn grants(&self, name: &str) -> bool {
        self.grants.iter().any(|g| g == name)
    }

    /// Finds and parses the manifest section of a module binary.
    pub fn from_module(module: &[u8]) -> Result<Self, ManifestError> {
        let mut found = None;
        for section in Sections::new(module) {
            let section = section?;
            if section.id == 0 && section.custom_name == Some(MANIFEST_SECTION) {
                if found.is_some() {
                    return Err(ManifestError::Duplicate);
                }
                found = Some(section.payload);
            }
        }
        Manifest::parse(found.ok_or(ManifestError::Missing)?)
    }
}

/// Appends a custom section `name` with `payload` to a module binary. Custom sections may
/// appear anywhere, so appending keeps the module valid.
pub fn append_custom_section(module: &mut Vec<u8>, name: &str, payload: &[u8]) {
    let mut body = Vec::with_capacity(name.len() + payload.len() + 5);
    write_leb_u32(&mut body, name.len() as u32);
    body.extend_from_slice(name.as_bytes());
    body.extend_from_slice(payload);
    module.push(0);
    write_leb_u32(module, body.len() as u32);
    module.extend_from_slice(&body);
}

/// Returns `module` with its manifest replaced by (or set to) `manifest`.
pub fn with_manifest(module: &[u8], manifest: &Manifest) -> Result<Vec<u8>, ManifestError> {
    let mut out = Vec::with_capacity(module.len() + 256);
    out.extend_from_slice(
        module
            .get(..8)
            .ok_or(ManifestError::MalformedModule { offset: 0 })?,
    );
    for section in Sections::new(module) {
        let section = section?;
        if section.id == 0 && section.custom_name == Some(MANIFEST_SECTION) {
            continue;
        }
        out.extend_from_slice(section.raw);
    }
    append_custom_section(&mut out, MANIFEST_SECTION, manifest.to_text().as_bytes());
    Ok(out)
}

/// Returns `module` without any custom sections (names, manifest, producers): what is left
/// is what decides behaviour. Used to compare compilers byte for byte.
pub fn strip_custom_sections(module: &[u8]) -> Result<Vec<u8>, ManifestError> {
    let mut out = Vec::with_capacity(module.len());
    out.extend_from_slice(
        module
            .get(..8)
            .ok_or(ManifestError::MalformedModule { offset: 0 })?,
    );
    for section in Sections::new(module) {
        let section = section?;
        if section.id != 0 {
            out.extend_from_slice(section.raw);
        }
    }
    Ok(out)
}

fn write_leb_u32(out: &mut Vec<u8>, mut value: u32) {
    loop {
        let byte = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// Reads an unsigned LEB128 u32 at `*pos`, advancing it.
fn read_leb_u32(bytes: &[u8], pos: &mut usize) -> Option<u32> {
    let mut result: u32 = 0;
    for shift in (0..35).step_by(7) {
        let byte = *bytes.get(*pos)?;
        *pos += 1;
        let low = u32::from(byte & 0x7f);
        if shift == 28 && low > 0x0f {
            return None;
        }
        result |= low << shift;
        if byte & 0x80 == 0 {
            return Some(result);
        }
    }
    None
}

/// One section of a module binary.
pub(crate) struct Section<'a> {
    pub id: u8,
    /// For custom sections (id 0): the section name.
    pub custom_name: Option<&'a str>,
    /// The payload (after the name, for custom sections).
    pub payload: &'a [u8],
    /// The whole section including id and size.
    pub raw: &'a [u8],
}

/// Iterator over the sections of a module binary; yields an error (then stops) on malformed
/// framing. It checks only the framing, not the contents: wasmi validates those.
pub(crate) struct Sections<'a> {
    bytes: &'a [u8],
    pos: usize,
    failed: bool,
}

impl<'a> Sections<'a> {
    pub fn new(bytes: &'a [u8]) -> Self {
        let ok = bytes.get(..4) == Some(b"\0asm".as_slice()) && bytes.len() >= 8;
        Self {
            bytes,
            pos: 8,
            failed: !ok,
        }
    }
}

impl<'a> Iterator for Sections<'a> {
    type Item = Result<Section<'a>, ManifestError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed && self.pos == 8 {
            // The header itself is bad: report once, then stop.
            self.pos = usize::MAX;
            return Some(Err(ManifestError::MalformedModule { offset: 0 }));
        }
        if self.failed || self.pos >= self.bytes.len() {
            return None;
        }
        let start = self.pos;
        let fail = |s: &mut Self| {
            s.failed = true;
            s.pos = usize::MAX;
            Some(Err(ManifestError::MalformedModule { offset: start }))
        };
        let id = self.bytes[start];
        let mut pos = start + 1;
        let Some(size) = read_leb_u32(self.bytes, &mut pos) else {
            return fail(self);
        };
        let Some(end) = pos
            .checked_add(size as usize)
            .filter(|&e| e <= self.bytes.len())
        else {
            return fail(self);
        };
        let mut payload = &self.bytes[pos..end];
        let mut custom_name = None;
        if id == 0 {
            let mut p = 0;
            let Some(name_len) = read_leb_u32(payload, &mut p) else {
                return fail(self);
            };
            let Some(name_end) = p
                .checked_add(name_len as usize)
                .filter(|&e| e <= payload.len())
            else {
                return fail(self);
            };
            let Ok(name) = core::str::from_utf8(&payload[p..name_end]) else {
                return fail(self);
            };
            custom_name = Some(name);
            payload = &payload[name_end..];
        }
        self.pos = end;
        Some(Ok(Section {
            id,
            custom_name,
            payload,
            raw: &self.bytes[start..end],
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn empty_module() -> Vec<u8> {
        b"\0asm\x01\0\0\0".to_vec()
    }

    #[test]
    fn round_trips_through_text() {
        let manifest = Manifest {
            hook: Some("sched.slice".into()),
            grants: vec!["hook_input".into(), "console_write".into()],
            telemetry: vec!["sched.switches".into()],
            maps: vec!["task_stats".into()],
            fuel_per_call: 1234,
            memory_pages: 2,
        };
        assert_eq!(Manifest::parse(manifest.to_text().as_bytes()), Ok(manifest));
    }

    #[test]
    fn round_trips_through_a_module_section() {
        let manifest = Manifest {
            grants: vec!["log".into()],
            ..Manifest::default()
        };
        let module = with_manifest(&empty_module(), &manifest).unwrap();
        assert_eq!(Manifest::from_module(&module), Ok(manifest.clone()));
        // Replacing keeps exactly one section.
        let again = with_manifest(&module, &Manifest::default()).unwrap();
        assert_eq!(Manifest::from_module(&again), Ok(Manifest::default()));
    }

    #[test]
    fn rejects_bad_lines_with_their_number() {
        let cases: &[(&str, ManifestError)] = &[
            (
                "anneal-manifest 1\nfuel 0\n",
                ManifestError::Line {
                    line: 2,
                    reason: ManifestLineError::BadNumber {
                        key: "fuel".into(),
                        value: "0".into(),
                    },
                },
            ),
            (
                "anneal-manifest 1\n\ngrant reboot\n",
                ManifestError::Line {
                    line: 3,
                    reason: ManifestLineError::UnknownGrant("reboot".into()),
                },
            ),
            (
                "anneal-manifest 1\nmemory-pages 65\n",
                ManifestError::Line {
                    line: 2,
                    reason: ManifestLineError::BadNumber {
                        key: "memory-pages".into(),
                        value: "65".into(),
                    },
                },
            ),
            (
                "anneal-manifest 1\nhook a\nhook b\n",
                ManifestError::Line {
                    line: 3,
                    reason: ManifestLineError::DuplicateKey("hook".into()),
                },
            ),
            (
                "anneal-manifest 1\ncolour blue\n",
                ManifestError::Line {
                    line: 2,
                    reason: ManifestLineError::UnknownKey("colour".into()),
                },
            ),
            (
                "anneal-manifest 1\ntelemetry a/b\n",
                ManifestError::Line {
                    line: 2,
                    reason: ManifestLineError::BadName("a/b".into()),
                },
            ),
            (
                "anneal-manifest 1\nmap\n",
                ManifestError::Line {
                    line: 2,
                    reason: ManifestLineError::MissingValue("map".into()),
                },
            ),
            (
                "anneal-manifest 2\n",
                ManifestError::BadHeader {
                    found: "anneal-manifest 2".into(),
                },
            ),
        ];
        for (text, expected) in cases {
            assert_eq!(
                &Manifest::parse(text.as_bytes()).unwrap_err(),
                expected,
                "{text}"
            );
        }
        assert_eq!(
            Manifest::parse(&[0xff, 0xfe]).unwrap_err(),
            ManifestError::NotUtf8
        );
    }

    #[test]
    fn comments_and_blank_lines_are_ignored() {
        let m = Manifest::parse(b"anneal-manifest 1\n# hello\n  fuel 5 # five\n\n").unwrap();
        assert_eq!(m.fuel_per_call, 5);
    }

    #[test]
    fn missing_duplicate_and_malformed_sections_are_errors() {
        assert_eq!(
            Manifest::from_module(&empty_module()),
            Err(ManifestError::Missing)
        );
        let mut twice = empty_module();
        append_custom_section(&mut twice, MANIFEST_SECTION, MANIFEST_HEADER.as_bytes());
        append_custom_section(&mut twice, MANIFEST_SECTION, MANIFEST_HEADER.as_bytes());
        assert_eq!(Manifest::from_module(&twice), Err(ManifestError::Duplicate));
        let mut truncated = empty_module();
        truncated.extend_from_slice(&[0, 0x20, 1]);
        assert_eq!(
            Manifest::from_module(&truncated),
            Err(ManifestError::MalformedModule { offset: 8 })
        );
        assert_eq!(
            Manifest::from_module(b"\x7fELF"),
            Err(ManifestError::MalformedModule { offset: 0 })
        );
    }
}

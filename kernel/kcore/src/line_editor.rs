//! The console's line editor: bytes in, echo out, whole lines to the shell.
//!
//! Piped input and a person at a terminal must both work: CR, LF and CRLF each end exactly one
//! line (a CR remembers itself so the LF of a CRLF is swallowed). Backspace and DEL erase one
//! character (a whole UTF-8 sequence), Ctrl-U erases the line, Ctrl-C abandons it. Terminal escape
//! sequences are consumed without inserting bytes; of them, up and down arrows walk a small history
//! of earlier lines (the last [`HISTORY_DEPTH`] lines that were not blank, each at most
//! [`HISTORY_LINE_MAX`] bytes). Other control bytes are ignored.
//!
//! A line longer than [`MAX_CONSOLE_LINE`] is never truncated and run: the editor stops storing,
//! stops echoing, and at the end of that line reports [`Outcome::TooLong`] with the full length,
//! so the shell prints one clear message. A line that is not UTF-8 is reported as
//! [`Outcome::NotUtf8`]. Every byte value is accepted in every state; nothing here can panic.

use crate::limits::MAX_CONSOLE_LINE;

/// Lines kept for up/down recall. Eight covers the "repeat the last few commands" use at a
/// console without making the editor (which lives on the shell's stack) large.
pub const HISTORY_DEPTH: usize = 8;
/// Longest line kept in the history; longer lines run but are not recalled.
pub const HISTORY_LINE_MAX: usize = 256;

/// What one input byte did.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome<'a> {
    /// The line is still being typed.
    Pending,
    /// A complete line (without its terminator). May be empty.
    Line(&'a str),
    /// Ctrl-C: the line was abandoned.
    Cancelled,
    /// The line ended but was longer than the limit; `length` counts every byte received.
    TooLong { length: usize },
    /// The line ended but was not valid UTF-8.
    NotUtf8,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Escape {
    /// Normal input.
    None,
    /// Just saw ESC.
    Start,
    /// Inside `ESC [` or `ESC O`: waiting for the final byte.
    Sequence,
}

/// Earlier lines, oldest overwritten first.
#[derive(Debug, Clone)]
struct History {
    lines: [[u8; HISTORY_LINE_MAX]; HISTORY_DEPTH],
    lengths: [usize; HISTORY_DEPTH],
    /// How many lines were ever stored (the newest is at `(stored - 1) % HISTORY_DEPTH`).
    stored: usize,
}

impl History {
    const fn new() -> Self {
        Self {
            lines: [[0; HISTORY_LINE_MAX]; HISTORY_DEPTH],
            lengths: [0; HISTORY_DEPTH],
            stored: 0,
        }
    }

    fn push(&mut self, line: &[u8]) {
        if line.is_empty() || line.len() > HISTORY_LINE_MAX || self.get(1) == Some(line) {
            return;
        }
        let slot = self.stored % HISTORY_DEPTH;
        self.lines[slot][..line.len()].copy_from_slice(line);
        self.lengths[slot] = line.len();
        self.stored += 1;
    }

    /// The line `back` steps into the past (1 = the newest).
    fn get(&self, back: usize) -> Option<&[u8]> {
        if back == 0 || back > self.stored.min(HISTORY_DEPTH) {
            return None;
        }
        let slot = (self.stored - back) % HISTORY_DEPTH;
        Some(&self.lines[slot][..self.lengths[slot]])
    }
}

/// Editor state for one console.
#[derive(Debug, Clone)]
pub struct LineEditor {
    buffer: [u8; MAX_CONSOLE_LINE],
    length: usize,
    /// Bytes received for the current line, including those not stored.
    received: usize,
    overflowed: bool,
    after_carriage_return: bool,
    line_done: bool,
    escape: Escape,
    history: History,
    /// How far back the up arrow has gone for the current line (0 = not browsing).
    browsing: usize,
}

impl Default for LineEditor {
    fn default() -> Self {
        Self::new()
    }
}

const BACKSPACE: u8 = 0x08;
const DELETE: u8 = 0x7f;
const CONTROL_C: u8 = 0x03;
const CONTROL_U: u8 = 0x15;
const ESCAPE: u8 = 0x1b;
const ERASE_ONE: &[u8] = b"\x08 \x08";

impl LineEditor {
    /// An empty editor.
    pub const fn new() -> Self {
        Self {
            buffer: [0; MAX_CONSOLE_LINE],
            length: 0,
            received: 0,
            overflowed: false,
            after_carriage_return: false,
            line_done: false,
            escape: Escape::None,
            history: History::new(),
            browsing: 0,
        }
    }

    /// The bytes typed so far on the current line.
    pub fn pending(&self) -> &[u8] {
        &self.buffer[..self.length]
    }

    fn reset_line(&mut self) {
        self.browsing = 0;
        self.length = 0;
        self.received = 0;
        self.overflowed = false;
        self.line_done = false;
    }

    fn end_line(&mut self, echo: &mut dyn FnMut(&[u8])) -> Outcome<'_> {
        echo(b"\r\n");
        self.line_done = true;
        if !self.overflowed {
            self.history.push(&self.buffer[..self.length]);
        }
        if self.overflowed {
            return Outcome::TooLong {
                length: self.received,
            };
        }
        match core::str::from_utf8(&self.buffer[..self.length]) {
            Ok(line) => Outcome::Line(line),
            Err(_) => Outcome::NotUtf8,
        }
    }

    /// Replaces the typed line with the history entry `back` steps back (0 = an empty line).
    fn recall(&mut self, back: usize, echo: &mut dyn FnMut(&[u8])) {
        if self.overflowed || (back > 0 && self.history.get(back).is_none()) {
            return;
        }
        let characters = self.pending().iter().filter(|&&b| b & 0xc0 != 0x80).count();
        for _ in 0..characters {
            echo(ERASE_ONE);
        }
        let entry_length = match self.history.get(back) {
            Some(entry) => {
                self.buffer[..entry.len()].copy_from_slice(entry);
                entry.len()
            }
            None => 0,
        };
        self.length = entry_length;
        self.received = entry_length;
        self.browsing = back;
        echo(&self.buffer[..self.length]);
    }

    /// Feeds one byte; `echo` receives what should be written back to the terminal.
    pub fn feed(&mut self, byte: u8, echo: &mut dyn FnMut(&[u8])) -> Outcome<'_> {
        if self.line_done {
            self.reset_line();
        }
        let after_carriage_return = core::mem::replace(&mut self.after_carriage_return, false);
        match self.escape {
            Escape::Start => {
                self.escape = if byte == b'[' || byte == b'O' {
                    Escape::Sequence
                } else {
                    Escape::None
                };
                return Outcome::Pending;
            }
            Escape::Sequence => {
                if (0x40..=0x7e).contains(&byte) {
                    self.escape = Escape::None;
                    match byte {
                        b'A' => self.recall(self.browsing + 1, echo),
                        b'B' => self.recall(self.browsing.saturating_sub(1), echo),
                        _ => {}
                    }
                }
                return Outcome::Pending;
            }
            Escape::None => {}
        }
        match byte {
            b'\r' => {
                self.after_carriage_return = true;
                self.end_line(echo)
            }
            b'\n' if after_carriage_return => Outcome::Pending,
            b'\n' => self.end_line(echo),
            BACKSPACE | DELETE => {
                if self.overflowed {
                    return Outcome::Pending;
                }
                if self.length > 0 {
                    // Remove continuation bytes, then the lead byte of the last character.
                    while self.length > 0 && self.buffer[self.length - 1] & 0xc0 == 0x80 {
                        self.length -= 1;
                    }
                    self.length = self.length.saturating_sub(1);
                    self.received = self.length;
                    echo(ERASE_ONE);
                }
                Outcome::Pending
            }
            CONTROL_U => {
                if !self.overflowed {
                    let characters = self.pending().iter().filter(|&&b| b & 0xc0 != 0x80).count();
                    for _ in 0..characters {
                        echo(ERASE_ONE);
                    }
                }
                self.reset_line();
                Outcome::Pending
            }
            CONTROL_C => {
                echo(b"^C\r\n");
                self.line_done = true;
                Outcome::Cancelled
            }
            ESCAPE => {
                self.escape = Escape::Start;
                Outcome::Pending
            }
            0x00..=0x1f => Outcome::Pending,
            _ => {
                self.received = self.received.saturating_add(1);
                if self.overflowed {
                    return Outcome::Pending;
                }
                match self.buffer.get_mut(self.length) {
                    Some(slot) => {
                        *slot = byte;
                        self.length += 1;
                        echo(&[byte]);
                    }
                    None => self.overflowed = true,
                }
                Outcome::Pending
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `input`, returns (lines/outcomes as strings, echoed bytes).
    fn run(editor: &mut LineEditor, input: &[u8]) -> (Vec<String>, Vec<u8>) {
        let mut outcomes = Vec::new();
        let mut echoed = Vec::new();
        for &byte in input {
            let mut sink = |bytes: &[u8]| echoed.extend_from_slice(bytes);
            match editor.feed(byte, &mut sink) {
                Outcome::Pending => {}
                Outcome::Line(line) => outcomes.push(format!("line:{line}")),
                Outcome::Cancelled => outcomes.push("cancelled".into()),
                Outcome::TooLong { length } => outcomes.push(format!("too-long:{length}")),
                Outcome::NotUtf8 => outcomes.push("not-utf8".into()),
            }
        }
        (outcomes, echoed)
    }

    #[test]
    fn cr_lf_and_crlf_each_end_one_line() {
        let mut editor = LineEditor::new();
        let (lines, _) = run(&mut editor, b"a\rb\nc\r\nd\n\n");
        assert_eq!(lines, vec!["line:a", "line:b", "line:c", "line:d", "line:"]);
    }

    #[test]
    fn echo_and_backspace_erase_whole_utf8_characters() {
        let mut editor = LineEditor::new();
        let (lines, echoed) = run(&mut editor, "hé\x7fllo\x08p\r".as_bytes());
        assert_eq!(lines, vec!["line:hllp"]);
        assert!(echoed.starts_with(b"h"));
        assert!(echoed.windows(3).any(|w| w == ERASE_ONE));
        assert!(echoed.ends_with(b"\r\n"));
        // Backspace on an empty line echoes nothing.
        let (_, echoed) = run(&mut editor, b"\x7f");
        assert!(echoed.is_empty());
    }

    #[test]
    fn control_u_kills_and_control_c_cancels() {
        let mut editor = LineEditor::new();
        let (lines, _) = run(&mut editor, b"garbage\x15info\n");
        assert_eq!(lines, vec!["line:info"]);
        let (lines, echoed) = run(&mut editor, b"poweroff\x03help\n");
        assert_eq!(lines, vec!["cancelled", "line:help"]);
        assert!(echoed.windows(4).any(|w| w == b"^C\r\n"));
    }

    #[test]
    fn escape_sequences_and_control_bytes_are_not_inserted() {
        let mut editor = LineEditor::new();
        let (lines, _) = run(&mut editor, b"in\x1b[D\x1b[1;5Cfo\x00\x07\t\x1bOA\n");
        assert_eq!(lines, vec!["line:info"]);
    }

    #[test]
    fn overlong_line_is_rejected_whole_and_the_next_line_works() {
        let mut editor = LineEditor::new();
        let mut input = vec![b'x'; MAX_CONSOLE_LINE + 10];
        input.extend_from_slice(b"\ninfo\n");
        let (lines, echoed) = run(&mut editor, &input);
        assert_eq!(
            lines,
            vec![
                format!("too-long:{}", MAX_CONSOLE_LINE + 10),
                "line:info".to_string()
            ]
        );
        // Echo stopped at the limit.
        assert!(echoed.len() < MAX_CONSOLE_LINE + 20);
        // A line of exactly the limit is accepted.
        let exact = vec![b'y'; MAX_CONSOLE_LINE];
        let (lines, _) = run(&mut editor, &[exact.as_slice(), b"\n"].concat());
        assert_eq!(lines.len(), 1);
        assert!(lines[0].starts_with("line:yyy"));
    }

    #[test]
    fn up_and_down_arrows_recall_earlier_lines() {
        let mut editor = LineEditor::new();
        let (lines, _) = run(&mut editor, b"info\nlog debug\n\n");
        assert_eq!(lines, vec!["line:info", "line:log debug", "line:"]);
        // Up twice reaches "info", down once returns to "log debug".
        let (lines, echoed) = run(&mut editor, b"\x1b[A\x1b[A\x1b[B\n");
        assert_eq!(lines, vec!["line:log debug"]);
        assert!(echoed.windows(4).any(|w| w == b"info"));
        // Up past the oldest entry stays there; down past the newest gives an empty line.
        let (lines, _) = run(&mut editor, b"\x1b[A\x1b[A\x1b[A\x1b[A\n");
        assert_eq!(lines, vec!["line:info"]);
        let (lines, _) = run(&mut editor, b"typed\x1b[A\x1b[B\n");
        assert_eq!(lines, vec!["line:"]);
        // Only the last HISTORY_DEPTH lines are kept.
        for index in 0..(HISTORY_DEPTH + 3) {
            run(&mut editor, format!("cmd{index}\n").as_bytes());
        }
        let ups = "\x1b[A".repeat(HISTORY_DEPTH + 5);
        let (lines, _) = run(&mut editor, format!("{ups}\n").as_bytes());
        assert_eq!(lines, vec![format!("line:cmd{}", 3)]);
    }

    #[test]
    fn invalid_utf8_is_reported_not_run() {
        let mut editor = LineEditor::new();
        let (lines, _) = run(&mut editor, b"\xff\xfeinfo\n");
        assert_eq!(lines, vec!["not-utf8"]);
    }

    #[test]
    fn every_byte_in_every_state_is_accepted() {
        let mut editor = LineEditor::new();
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut input = Vec::new();
        for _ in 0..200_000 {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            input.push((state >> 56) as u8);
        }
        let (lines, _) = run(&mut editor, &input);
        assert!(!lines.is_empty());
    }
}

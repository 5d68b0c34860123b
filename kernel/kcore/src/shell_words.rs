//! Splitting a console line into a command word and its arguments.
//!
//! The shell's grammar is deliberately plain: words separated by ASCII whitespace, the first is
//! the command. Commands that take free text (a prompt for `ai`) use [`rest_after_command`] to get
//! the line after the command word untouched.

use crate::bounded::BoundedList;
use crate::limits::MAX_COMMAND_WORDS;

/// A line split into words; at most [`MAX_COMMAND_WORDS`], extra words are counted.
#[derive(Debug, Clone, Copy, Default)]
pub struct Words<'a> {
    /// The words in order (the first is the command).
    pub words: BoundedList<&'a str, MAX_COMMAND_WORDS>,
    /// Words beyond the limit.
    pub dropped: usize,
}

impl<'a> Words<'a> {
    /// Splits `line` on ASCII whitespace.
    pub fn split(line: &'a str) -> Self {
        let mut result = Words::default();
        for word in line.split_ascii_whitespace() {
            if result.words.push(word).is_err() {
                result.dropped += 1;
            }
        }
        result
    }

    /// The command word, if the line is not blank.
    pub fn command(&self) -> Option<&'a str> {
        self.words.as_slice().first().copied()
    }

    /// The arguments after the command word.
    pub fn arguments(&self) -> &[&'a str] {
        self.words.as_slice().get(1..).unwrap_or(&[])
    }
}

/// The text after the first word, with leading whitespace removed.
pub fn rest_after_command(line: &str) -> &str {
    let trimmed = line.trim_start();
    match trimmed.find(|c: char| c.is_ascii_whitespace()) {
        Some(position) => trimmed[position..].trim_start(),
        None => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_command_and_arguments() {
        let words = Words::split("  log   debug  ");
        assert_eq!(words.command(), Some("log"));
        assert_eq!(words.arguments(), &["debug"]);
        assert_eq!(Words::split("   ").command(), None);
        assert_eq!(rest_after_command("ai  hello  world "), "hello  world ");
        assert_eq!(rest_after_command("info"), "");
    }

    #[test]
    fn counts_words_beyond_the_limit() {
        let line = "w ".repeat(MAX_COMMAND_WORDS + 3);
        let words = Words::split(&line);
        assert_eq!(words.words.len(), MAX_COMMAND_WORDS);
        assert_eq!(words.dropped, 3);
    }
}

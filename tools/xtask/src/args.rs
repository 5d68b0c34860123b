//! A small command-line parser: `--flag`, `--key value`, `--key=value` and positionals.
//! Hand-written (no clap) so that `cargo xtask` builds in seconds on a fresh machine.
//! Every subcommand takes what it knows and calls [`Args::finish`], which rejects
//! anything left over, so a misspelt flag is an error rather than silently ignored.

use crate::error::{Error, Result};

/// The arguments of one subcommand, consumed as they are read.
#[derive(Debug, Clone)]
pub struct Args {
    words: Vec<String>,
}

impl Args {
    /// Wraps the words after the subcommand name.
    pub fn new(words: Vec<String>) -> Args {
        Args { words }
    }

    /// True (and consumed) when `--name` is present.
    pub fn flag(&mut self, name: &str) -> bool {
        let before = self.words.len();
        self.words.retain(|w| w != name);
        self.words.len() != before
    }

    /// The value of `--name VALUE` or `--name=VALUE` (consumed), if present.
    pub fn value(&mut self, name: &str) -> Result<Option<String>> {
        let prefix = format!("{name}=");
        if let Some(at) = self.words.iter().position(|w| w.starts_with(&prefix)) {
            let word = self.words.remove(at);
            return Ok(Some(word[prefix.len()..].to_string()));
        }
        match self.words.iter().position(|w| w == name) {
            None => Ok(None),
            Some(at) if at + 1 < self.words.len() && !self.words[at + 1].starts_with("--") => {
                let value = self.words.remove(at + 1);
                self.words.remove(at);
                Ok(Some(value))
            }
            Some(_) => Err(Error::Usage(format!("{name} needs a value"))),
        }
    }

    /// A number value.
    pub fn number(&mut self, name: &str) -> Result<Option<u32>> {
        match self.value(name)? {
            None => Ok(None),
            Some(text) => text
                .parse()
                .map(Some)
                .map_err(|_| Error::Usage(format!("{name} {text}: a number is expected"))),
        }
    }

    /// The next positional word (consumed), if any.
    pub fn positional(&mut self) -> Option<String> {
        let at = self.words.iter().position(|w| !w.starts_with("--"))?;
        Some(self.words.remove(at))
    }

    /// Fails when anything was not consumed.
    pub fn finish(&self) -> Result<()> {
        if self.words.is_empty() {
            Ok(())
        } else {
            Err(Error::Usage(format!(
                "unexpected argument(s): {}",
                self.words.join(" ")
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Args {
        Args::new(s.split_whitespace().map(String::from).collect())
    }

    #[test]
    fn reads_flags_values_and_positionals() {
        let mut a = args("boot --json --smp 4 --mem=512 --board rpi4");
        assert!(a.flag("--json"));
        assert!(!a.flag("--json"));
        assert_eq!(a.number("--smp").unwrap(), Some(4));
        assert_eq!(a.number("--mem").unwrap(), Some(512));
        assert_eq!(a.value("--board").unwrap().as_deref(), Some("rpi4"));
        assert_eq!(a.value("--gic").unwrap(), None);
        assert_eq!(a.positional().as_deref(), Some("boot"));
        assert!(a.finish().is_ok());
    }

    #[test]
    fn rejects_leftovers_missing_values_and_bad_numbers() {
        let mut a = args("--smp");
        assert!(a
            .value("--smp")
            .unwrap_err()
            .to_string()
            .contains("needs a value"));
        let mut a = args("--smp --json");
        assert!(a.number("--smp").is_err());
        let mut a = args("--smp four");
        assert!(a.number("--smp").unwrap_err().to_string().contains("four"));
        let a = args("--bogus");
        assert!(a.finish().unwrap_err().to_string().contains("--bogus"));
    }
}

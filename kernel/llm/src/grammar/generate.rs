//! Random sentences of a grammar, for tests and fuzzing: they exercise whatever consumes the
//! model's constrained output (assembler, WAT compiler, verifier) with everything the grammar
//! lets through, not just hand-written examples.
//!
//! Expansion picks a random alternative until `max_depth` nested rules, then the alternative
//! with the fewest bytes (minimal lengths are computed by fixpoint once), so generation always
//! ends; a hard cap on output length bounds it further.

use alloc::vec;
use alloc::vec::Vec;

use super::{Element, Grammar};
use crate::sample::Pcg32;

/// Output cap: sentences longer than this are cut (and then usually invalid).
const MAX_GENERATED_BYTES: usize = 64 * 1024;

struct Generator<'g> {
    grammar: &'g Grammar,
    min_len: Vec<u64>,
    rng: Pcg32,
    max_depth: usize,
    out: Vec<u8>,
}

impl Grammar {
    /// A random sentence of the grammar (seeded, deterministic). Rules nested deeper than
    /// `max_depth` take their shortest alternative.
    pub fn generate(&self, seed: u64, max_depth: usize) -> Vec<u8> {
        let mut generator = Generator {
            grammar: self,
            min_len: self.minimal_lengths(),
            rng: Pcg32::new(seed),
            max_depth,
            out: Vec::new(),
        };
        generator.rule(self.root, 0);
        generator.out
    }

    /// Fewest bytes each rule can produce (`u64::MAX` for rules that cannot finish).
    fn minimal_lengths(&self) -> Vec<u64> {
        let mut min_len = vec![u64::MAX; self.rule_count()];
        let mut changed = true;
        while changed {
            changed = false;
            for rule in 0..self.rule_count() {
                for &start in self.alternatives(rule as u32) {
                    let length = self.alternative_length(start, &min_len);
                    if length < min_len[rule] {
                        min_len[rule] = length;
                        changed = true;
                    }
                }
            }
        }
        min_len
    }

    fn alternative_length(&self, start: u32, min_len: &[u64]) -> u64 {
        let mut total: u64 = 0;
        let mut position = start as usize;
        loop {
            match self.elements[position] {
                Element::End => return total,
                Element::Byte(_) | Element::Set(_) => total = total.saturating_add(1),
                Element::Rule(rule) => total = total.saturating_add(min_len[rule as usize]),
            }
            position += 1;
        }
    }
}

impl Generator<'_> {
    fn rule(&mut self, rule: u32, depth: usize) {
        if self.out.len() >= MAX_GENERATED_BYTES || depth > self.max_depth * 4 + 64 {
            return;
        }
        let alternatives = self.grammar.alternatives(rule);
        let start = if depth < self.max_depth {
            alternatives[self.rng.next_u32() as usize % alternatives.len()]
        } else {
            *alternatives
                .iter()
                .min_by_key(|&&start| self.grammar.alternative_length(start, &self.min_len))
                .unwrap_or(&alternatives[0])
        };
        let mut position = start as usize;
        loop {
            match self.grammar.elements[position] {
                Element::End => return,
                Element::Byte(byte) => self.out.push(byte),
                Element::Set(set) => {
                    let set = &self.grammar.byte_sets[set as usize];
                    let members: u32 = set.0.iter().map(|w| w.count_ones()).sum();
                    let mut pick = self.rng.next_u32() % members.max(1);
                    for byte in 0..=255u8 {
                        if set.contains(byte) {
                            if pick == 0 {
                                self.out.push(byte);
                                break;
                            }
                            pick -= 1;
                        }
                    }
                }
                Element::Rule(inner) => self.rule(inner, depth + 1),
            }
            position += 1;
        }
    }
}

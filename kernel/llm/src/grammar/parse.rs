//! Grammar text to compiled [`Grammar`]: a recursive-descent parser, desugaring of `*`, `+`,
//! `?` and groups into generated rules, Unicode classes into UTF-8 byte sequences, and the
//! checks (undefined rules, missing root, left recursion) that make the recogniser total.

use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec;
use alloc::vec::Vec;

use super::limits::{MAX_ELEMENTS, MAX_GRAMMAR_TEXT, MAX_GROUP_NESTING, MAX_RULES};
use super::utf8::split_range;
use super::{ByteSet, Element, Grammar, GrammarError, GrammarErrorKind};

/// A parsed but not yet flattened element.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Item {
    Byte(u8),
    Set(u32),
    Rule(u32),
}

type Alternatives = Vec<Vec<Item>>;

struct Parser<'t> {
    text: &'t str,
    position: usize,
    rules: Vec<Alternatives>,
    defined: Vec<bool>,
    names: Vec<String>,
    name_ids: BTreeMap<String, u32>,
    /// Byte offset of the first reference to each rule (for "undefined rule" errors).
    first_use: Vec<usize>,
    byte_sets: Vec<ByteSet>,
    nesting: usize,
    current_rule: String,
    generated_count: usize,
}

pub(super) fn parse(text: &str) -> Result<Grammar, GrammarError> {
    if text.len() > MAX_GRAMMAR_TEXT {
        return Err(GrammarError {
            line: 1,
            column: 1,
            kind: GrammarErrorKind::TooLarge,
        });
    }
    let mut parser = Parser {
        text,
        position: 0,
        rules: Vec::new(),
        defined: Vec::new(),
        names: Vec::new(),
        name_ids: BTreeMap::new(),
        first_use: Vec::new(),
        byte_sets: Vec::new(),
        nesting: 0,
        current_rule: String::new(),
        generated_count: 0,
    };
    loop {
        parser.skip_space(true);
        if parser.peek().is_none() {
            break;
        }
        parser.parse_rule()?;
    }
    parser.finish()
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '-'
}

impl<'t> Parser<'t> {
    fn error_at(&self, offset: usize, kind: GrammarErrorKind) -> GrammarError {
        let offset = offset.min(self.text.len());
        let before = &self.text[..offset];
        let line = before.bytes().filter(|&b| b == b'\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let column = before[line_start..].chars().count() + 1;
        GrammarError { line, column, kind }
    }

    fn error(&self, kind: GrammarErrorKind) -> GrammarError {
        self.error_at(self.position, kind)
    }

    fn peek(&self) -> Option<char> {
        self.text[self.position..].chars().next()
    }

    fn peek_second(&self) -> Option<char> {
        let mut chars = self.text[self.position..].chars();
        chars.next();
        chars.next()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.position += c.len_utf8();
        Some(c)
    }

    /// Skip blanks and `#` comments; newlines too when `newlines` is true.
    fn skip_space(&mut self, newlines: bool) {
        while let Some(c) = self.peek() {
            match c {
                ' ' | '\t' | '\r' => self.position += 1,
                '\n' if newlines => self.position += 1,
                '#' => {
                    while let Some(c) = self.peek() {
                        if c == '\n' {
                            break;
                        }
                        self.position += c.len_utf8();
                    }
                }
                _ => break,
            }
        }
    }

    fn parse_name(&mut self) -> Option<&'t str> {
        let start = self.position;
        while self.peek().is_some_and(is_name_char) {
            self.position += 1;
        }
        (self.position > start).then(|| &self.text[start..self.position])
    }

    /// Is the text at the current position `name ::=`?
    fn at_rule_definition(&mut self) -> bool {
        let start = self.position;
        let found = self.parse_name().is_some() && {
            self.skip_space(false);
            self.text[self.position..].starts_with("::=")
        };
        self.position = start;
        found
    }

    fn rule_id(&mut self, name: &str, offset: usize) -> Result<u32, GrammarError> {
        if let Some(&id) = self.name_ids.get(name) {
            return Ok(id);
        }
        let id = self.new_rule(name.to_string(), offset)?;
        self.name_ids.insert(name.to_string(), id);
        Ok(id)
    }

    fn new_rule(&mut self, name: String, offset: usize) -> Result<u32, GrammarError> {
        if self.rules.len() >= MAX_RULES {
            return Err(self.error_at(offset, GrammarErrorKind::TooLarge));
        }
        self.rules.push(Vec::new());
        self.defined.push(false);
        self.names.push(name);
        self.first_use.push(offset);
        Ok((self.rules.len() - 1) as u32)
    }

    /// A new rule generated for a group, repetition or class, already defined.
    fn generated_rule(&mut self, alternatives: Alternatives) -> Result<u32, GrammarError> {
        self.generated_count += 1;
        let name = format!("{}_{}", self.current_rule, self.generated_count);
        let id = self.new_rule(name, self.position)?;
        self.rules[id as usize] = alternatives;
        self.defined[id as usize] = true;
        Ok(id)
    }

    fn parse_rule(&mut self) -> Result<(), GrammarError> {
        let start = self.position;
        let name = self
            .parse_name()
            .ok_or_else(|| self.error(GrammarErrorKind::ExpectedRuleName))?;
        self.skip_space(false);
        if !self.text[self.position..].starts_with("::=") {
            return Err(self.error(GrammarErrorKind::ExpectedDefinition));
        }
        self.position += 3;
        let id = self.rule_id(name, start)?;
        if self.defined[id as usize] {
            return Err(self.error_at(start, GrammarErrorKind::DuplicateRule(name.to_string())));
        }
        self.defined[id as usize] = true;
        self.current_rule = name.to_string();
        self.generated_count = 0;
        self.skip_space(false);
        let alternatives = self.parse_alternatives(false)?;
        self.rules[id as usize] = alternatives;
        // The rule must end at a line end (or the end of the text).
        self.skip_space(false);
        let at_line_start = self.text[..self.position]
            .trim_end_matches([' ', '\t', '\r'])
            .ends_with('\n');
        match self.peek() {
            None | Some('\n') => Ok(()),
            Some(_) if at_line_start && self.at_rule_definition() => Ok(()),
            Some(c) => Err(self.error(GrammarErrorKind::UnexpectedCharacter(c))),
        }
    }

    fn parse_alternatives(&mut self, nested: bool) -> Result<Alternatives, GrammarError> {
        let mut alternatives = vec![self.parse_sequence(nested)?];
        loop {
            let before = self.position;
            // At top level a rule may continue on a following line that starts with `|`.
            self.skip_space(true);
            if self.peek() == Some('|') {
                self.position += 1;
                self.skip_space(true);
                alternatives.push(self.parse_sequence(nested)?);
            } else {
                if !nested {
                    self.position = before;
                }
                return Ok(alternatives);
            }
        }
    }

    fn parse_sequence(&mut self, nested: bool) -> Result<Vec<Item>, GrammarError> {
        let mut sequence = Vec::new();
        loop {
            self.skip_space(nested);
            let start = self.position;
            let items = match self.peek() {
                None | Some('|') | Some(')') | Some('\n') => return Ok(sequence),
                Some('"') => {
                    self.position += 1;
                    self.parse_string()?
                }
                Some('[') => {
                    self.position += 1;
                    let ranges = self.parse_class()?;
                    self.class_items(&ranges)?
                }
                Some('.') => {
                    self.position += 1;
                    self.class_items(&[(0, 0x10_FFFF)])?
                }
                Some('(') => {
                    if self.nesting >= MAX_GROUP_NESTING {
                        return Err(self.error(GrammarErrorKind::NestingTooDeep));
                    }
                    self.position += 1;
                    self.nesting += 1;
                    self.skip_space(true);
                    let alternatives = self.parse_alternatives(true)?;
                    self.skip_space(true);
                    self.nesting -= 1;
                    if self.peek() != Some(')') {
                        return Err(self.error_at(start, GrammarErrorKind::UnclosedGroup));
                    }
                    self.position += 1;
                    vec![Item::Rule(self.generated_rule(alternatives)?)]
                }
                Some(c) if is_name_char(c) => {
                    // `a ::= x |` followed by the next rule: the last alternative is empty.
                    if !nested && self.at_rule_definition() {
                        return Ok(sequence);
                    }
                    let name = self.parse_name().unwrap_or_default();
                    vec![Item::Rule(self.rule_id(name, start)?)]
                }
                Some(c) => return Err(self.error(GrammarErrorKind::UnexpectedCharacter(c))),
            };
            let items = match self.peek() {
                Some(operator @ ('*' | '+' | '?')) => {
                    self.position += 1;
                    self.repeat(items, operator)?
                }
                _ => items,
            };
            sequence.extend(items);
        }
    }

    fn repeat(&mut self, items: Vec<Item>, operator: char) -> Result<Vec<Item>, GrammarError> {
        let atom = if items.len() == 1 {
            items[0]
        } else {
            Item::Rule(self.generated_rule(vec![items])?)
        };
        Ok(match operator {
            '*' => vec![Item::Rule(self.star_rule(atom)?)],
            '+' => vec![atom, Item::Rule(self.star_rule(atom)?)],
            _ => vec![Item::Rule(
                self.generated_rule(vec![vec![atom], Vec::new()])?,
            )],
        })
    }

    /// `R ::= atom R | ε`: right recursion in tail position, so the stack does not grow.
    fn star_rule(&mut self, atom: Item) -> Result<u32, GrammarError> {
        let id = self.generated_rule(Vec::new())?;
        self.rules[id as usize] = vec![vec![atom, Item::Rule(id)], Vec::new()];
        Ok(id)
    }

    fn parse_escape(&mut self) -> Result<char, GrammarError> {
        let start = self.position;
        let bad = |parser: &Self| parser.error_at(start, GrammarErrorKind::BadEscape);
        let c = self.bump().ok_or_else(|| bad(self))?;
        let digits = match c {
            'n' => return Ok('\n'),
            'r' => return Ok('\r'),
            't' => return Ok('\t'),
            '0' => return Ok('\0'),
            '\\' | '"' | '[' | ']' | '-' | '^' | '\'' => return Ok(c),
            'x' => 2,
            'u' => 4,
            'U' => 8,
            _ => return Err(bad(self)),
        };
        let mut value = 0u32;
        for _ in 0..digits {
            let digit = self
                .bump()
                .and_then(|d| d.to_digit(16))
                .ok_or_else(|| bad(self))?;
            value = value * 16 + digit;
        }
        char::from_u32(value).ok_or_else(|| bad(self))
    }

    fn parse_string(&mut self) -> Result<Vec<Item>, GrammarError> {
        let start = self.position - 1;
        let mut items = Vec::new();
        loop {
            let c = match self.bump() {
                None | Some('\n') => {
                    return Err(self.error_at(start, GrammarErrorKind::UnterminatedString))
                }
                Some('"') => return Ok(items),
                Some('\\') => self.parse_escape()?,
                Some(c) => c,
            };
            let mut buffer = [0u8; 4];
            items.extend(c.encode_utf8(&mut buffer).bytes().map(Item::Byte));
        }
    }

    /// Parse a class body after `[`; returns sorted, merged code-point ranges (negation applied).
    fn parse_class(&mut self) -> Result<Vec<(u32, u32)>, GrammarError> {
        let start = self.position - 1;
        let negated = self.peek() == Some('^');
        if negated {
            self.position += 1;
        }
        let mut ranges = Vec::new();
        loop {
            let low = match self.bump() {
                None | Some('\n') => {
                    return Err(self.error_at(start, GrammarErrorKind::UnterminatedClass))
                }
                Some(']') => break,
                Some('\\') => self.parse_escape()?,
                Some(c) => c,
            } as u32;
            let mut high = low;
            if self.peek() == Some('-') && self.peek_second().is_some_and(|c| c != ']') {
                self.position += 1;
                high = match self.bump() {
                    Some('\\') => self.parse_escape()?,
                    Some(c) => c,
                    None => return Err(self.error_at(start, GrammarErrorKind::UnterminatedClass)),
                } as u32;
                if high < low {
                    return Err(self.error_at(start, GrammarErrorKind::InvertedRange { low, high }));
                }
            }
            ranges.push((low, high));
        }
        ranges.sort_unstable();
        let mut merged: Vec<(u32, u32)> = Vec::new();
        for (low, high) in ranges {
            match merged.last_mut() {
                Some(last) if low <= last.1.saturating_add(1) => last.1 = last.1.max(high),
                _ => merged.push((low, high)),
            }
        }
        if negated {
            let mut complement = Vec::new();
            let mut next = 0u32;
            for &(low, high) in &merged {
                if low > next {
                    complement.push((next, low - 1));
                }
                next = high + 1;
            }
            if next <= 0x10_FFFF {
                complement.push((next, 0x10_FFFF));
            }
            merged = complement;
        }
        // Surrogates are not characters: a class that holds only them is empty.
        let has_scalar = merged
            .iter()
            .any(|&(low, high)| low < 0xD800 || high > 0xDFFF);
        if merged.is_empty() || !has_scalar {
            return Err(self.error_at(start, GrammarErrorKind::EmptyClass));
        }
        Ok(merged)
    }

    fn intern_set(&mut self, set: ByteSet) -> Item {
        let mut members = (0..=255u8).filter(|&b| set.contains(b));
        if let (Some(only), None) = (members.next(), members.next()) {
            return Item::Byte(only);
        }
        match self.byte_sets.iter().position(|&s| s == set) {
            Some(index) => Item::Set(index as u32),
            None => {
                self.byte_sets.push(set);
                Item::Set((self.byte_sets.len() - 1) as u32)
            }
        }
    }

    /// Items matching exactly the UTF-8 encodings of the code points in `ranges`.
    fn class_items(&mut self, ranges: &[(u32, u32)]) -> Result<Vec<Item>, GrammarError> {
        let mut sequences = Vec::new();
        for &(low, high) in ranges {
            split_range(low, high, &mut sequences);
        }
        let mut ascii = ByteSet::default();
        let mut has_ascii = false;
        let mut alternatives: Alternatives = Vec::new();
        for sequence in &sequences {
            let parts = sequence.ranges();
            if parts.len() == 1 {
                ascii.insert_range(parts[0].low, parts[0].high);
                has_ascii = true;
                continue;
            }
            let mut items = Vec::with_capacity(parts.len());
            for part in parts {
                let mut set = ByteSet::default();
                set.insert_range(part.low, part.high);
                items.push(self.intern_set(set));
            }
            alternatives.push(items);
        }
        let ascii_item = has_ascii.then(|| self.intern_set(ascii));
        if alternatives.is_empty() {
            return match ascii_item {
                Some(item) => Ok(vec![item]),
                None => Err(self.error(GrammarErrorKind::EmptyClass)),
            };
        }
        if let Some(item) = ascii_item {
            alternatives.insert(0, vec![item]);
        }
        Ok(vec![Item::Rule(self.generated_rule(alternatives)?)])
    }

    fn finish(self) -> Result<Grammar, GrammarError> {
        for (rule, defined) in self.defined.iter().enumerate() {
            if !defined {
                return Err(self.error_at(
                    self.first_use[rule],
                    GrammarErrorKind::UndefinedRule(self.names[rule].clone()),
                ));
            }
        }
        let root = *self
            .name_ids
            .get("root")
            .ok_or_else(|| self.error_at(0, GrammarErrorKind::MissingRoot))?;
        self.check_left_recursion()?;

        let mut elements = Vec::new();
        let mut rule_alternatives = Vec::with_capacity(self.rules.len());
        let mut alternative_starts = Vec::new();
        for alternatives in &self.rules {
            rule_alternatives.push((alternative_starts.len() as u32, alternatives.len() as u32));
            for sequence in alternatives {
                alternative_starts.push(elements.len() as u32);
                elements.extend(sequence.iter().map(|item| match *item {
                    Item::Byte(b) => Element::Byte(b),
                    Item::Set(s) => Element::Set(s),
                    Item::Rule(r) => Element::Rule(r),
                }));
                elements.push(Element::End);
            }
            if elements.len() > MAX_ELEMENTS {
                return Err(self.error_at(self.text.len(), GrammarErrorKind::TooLarge));
            }
        }
        Ok(Grammar {
            elements,
            rule_alternatives,
            alternative_starts,
            byte_sets: self.byte_sets,
            names: self.names,
            root,
        })
    }

    /// Reject grammars where a rule can reach itself without consuming input: the recogniser's
    /// expansion would never end.
    fn check_left_recursion(&self) -> Result<(), GrammarError> {
        let count = self.rules.len();
        // Nullable rules, by fixpoint.
        let mut nullable = vec![false; count];
        let mut changed = true;
        while changed {
            changed = false;
            for rule in 0..count {
                if nullable[rule] {
                    continue;
                }
                let can_be_empty = self.rules[rule].iter().any(|sequence| {
                    sequence.iter().all(|item| match item {
                        Item::Rule(r) => nullable[*r as usize],
                        _ => false,
                    })
                });
                if can_be_empty {
                    nullable[rule] = true;
                    changed = true;
                }
            }
        }
        // Edges r -> s when s can be the first thing r expands to.
        let mut edges: Vec<Vec<u32>> = vec![Vec::new(); count];
        for (rule, alternatives) in self.rules.iter().enumerate() {
            for sequence in alternatives {
                for item in sequence {
                    match item {
                        Item::Rule(r) => {
                            edges[rule].push(*r);
                            if !nullable[*r as usize] {
                                break;
                            }
                        }
                        _ => break,
                    }
                }
            }
        }
        // Iterative depth-first search for a cycle (0 = new, 1 = on the path, 2 = done).
        let mut color = vec![0u8; count];
        for start in 0..count {
            if color[start] != 0 {
                continue;
            }
            let mut path: Vec<(usize, usize)> = vec![(start, 0)];
            color[start] = 1;
            while let Some(&mut (rule, ref mut next_edge)) = path.last_mut() {
                if let Some(&target) = edges[rule].get(*next_edge) {
                    *next_edge += 1;
                    let target = target as usize;
                    match color[target] {
                        0 => {
                            color[target] = 1;
                            path.push((target, 0));
                        }
                        1 => {
                            // Name the first user-written rule on the cycle.
                            let on_cycle =
                                path.iter().map(|&(r, _)| r).skip_while(|&r| r != target);
                            let named = on_cycle
                                .clone()
                                .find(|&r| self.name_ids.contains_key(&self.names[r]))
                                .unwrap_or(target);
                            return Err(self.error_at(
                                self.first_use[named],
                                GrammarErrorKind::LeftRecursion(self.names[named].clone()),
                            ));
                        }
                        _ => {}
                    }
                } else {
                    color[rule] = 2;
                    path.pop();
                }
            }
        }
        Ok(())
    }
}

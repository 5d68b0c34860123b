//! Lexer and S-expression reader for the WAT subset.
//!
//! The text is read into a tree of [`Sexpr`] nodes (atoms, `$ids`, strings, lists), each
//! carrying its line and column. The compiler then walks the tree; keeping the tree step
//! separate means every later error can point at the node it is about. Nesting is bounded by
//! `MAX_WAT_NESTING`, so hostile text cannot exhaust the kernel stack through recursion.

use alloc::string::String;
use alloc::vec::Vec;

use super::{WatError, WatErrorKind};
use crate::limits;

/// Position in the source: 1-based line and column (columns count characters).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Pos {
    /// Line, from 1.
    pub line: u32,
    /// Column, from 1.
    pub column: u32,
}

/// A node of the S-expression tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sexpr {
    /// A keyword or number: `module`, `i32.add`, `offset=4`, `-12`, `0x10`.
    Atom(String, Pos),
    /// An identifier, without its `$`.
    Id(String, Pos),
    /// A string literal's bytes (escapes decoded).
    Str(Vec<u8>, Pos),
    /// A parenthesised list.
    List(Vec<Sexpr>, Pos),
}

impl Sexpr {
    /// Where the node starts.
    pub fn pos(&self) -> Pos {
        match self {
            Sexpr::Atom(_, p) | Sexpr::Id(_, p) | Sexpr::Str(_, p) | Sexpr::List(_, p) => *p,
        }
    }

    /// The atom text, if this is an atom.
    pub fn atom(&self) -> Option<&str> {
        match self {
            Sexpr::Atom(a, _) => Some(a),
            _ => None,
        }
    }

    /// The list items and the head keyword, if this is a list starting with an atom.
    pub fn head(&self) -> Option<(&str, &[Sexpr])> {
        match self {
            Sexpr::List(items, _) => match items.first() {
                Some(Sexpr::Atom(a, _)) => Some((a, &items[1..])),
                _ => None,
            },
            _ => None,
        }
    }
}

struct Lexer<'a> {
    text: &'a str,
    offset: usize,
    pos: Pos,
}

impl<'a> Lexer<'a> {
    fn peek(&self) -> Option<char> {
        self.text.get(self.offset..)?.chars().next()
    }

    fn peek2(&self) -> Option<char> {
        let mut chars = self.text.get(self.offset..)?.chars();
        chars.next();
        chars.next()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.offset += c.len_utf8();
        if c == '\n' {
            self.pos.line += 1;
            self.pos.column = 1;
        } else {
            self.pos.column += 1;
        }
        Some(c)
    }

    fn error(&self, pos: Pos, kind: WatErrorKind) -> WatError {
        WatError {
            line: pos.line,
            column: pos.column,
            kind,
        }
    }

    /// Skips whitespace and comments (`;; line`, nested `(; block ;)`).
    fn skip_trivia(&mut self) -> Result<(), WatError> {
        loop {
            match (self.peek(), self.peek2()) {
                (Some(c), _) if c.is_whitespace() => {
                    self.bump();
                }
                (Some(';'), Some(';')) => {
                    while let Some(c) = self.bump() {
                        if c == '\n' {
                            break;
                        }
                    }
                }
                (Some('('), Some(';')) => {
                    let start = self.pos;
                    self.bump();
                    self.bump();
                    let mut depth = 1usize;
                    while depth > 0 {
                        match (self.bump(), self.peek()) {
                            (Some(';'), Some(')')) => {
                                self.bump();
                                depth -= 1;
                            }
                            (Some('('), Some(';')) => {
                                self.bump();
                                depth += 1;
                            }
                            (Some(_), _) => {}
                            (None, _) => {
                                return Err(self.error(start, WatErrorKind::UnclosedComment))
                            }
                        }
                    }
                }
                _ => return Ok(()),
            }
        }
    }

    fn is_idchar(c: char) -> bool {
        c.is_ascii_alphanumeric() || "!#$%&'*+-./:<=>?@\\^_`|~".contains(c)
    }

    fn word(&mut self) -> String {
        let start = self.offset;
        while let Some(c) = self.peek() {
            if !Self::is_idchar(c) {
                break;
            }
            self.bump();
        }
        String::from(self.text.get(start..self.offset).unwrap_or(""))
    }

    fn string(&mut self, start: Pos) -> Result<Vec<u8>, WatError> {
        self.bump(); // opening quote
        let mut out = Vec::new();
        loop {
            let here = self.pos;
            match self.bump() {
                None | Some('\n') => return Err(self.error(start, WatErrorKind::UnclosedString)),
                Some('"') => return Ok(out),
                Some('\\') => {
                    let bad = |s: &Self| s.error(here, WatErrorKind::BadEscape);
                    match self.bump() {
                        Some('n') => out.push(b'\n'),
                        Some('t') => out.push(b'\t'),
                        Some('r') => out.push(b'\r'),
                        Some('\\') => out.push(b'\\'),
                        Some('\'') => out.push(b'\''),
                        Some('"') => out.push(b'"'),
                        Some('u') => {
                            if self.bump() != Some('{') {
                                return Err(bad(self));
                            }
                            let mut value: u32 = 0;
                            let mut digits = 0;
                            loop {
                                match self.bump() {
                                    Some('}') if digits > 0 => break,
                                    Some(c) if c.is_ascii_hexdigit() && digits < 6 => {
                                        value = value * 16 + c.to_digit(16).unwrap_or(0);
                                        digits += 1;
                                    }
                                    _ => return Err(bad(self)),
                                }
                            }
                            let c = char::from_u32(value).ok_or_else(|| bad(self))?;
                            let mut buf = [0u8; 4];
                            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                        }
                        Some(h) if h.is_ascii_hexdigit() => {
                            let l = self.bump().filter(char::is_ascii_hexdigit);
                            let (Some(hi), Some(lo)) =
                                (h.to_digit(16), l.and_then(|l| l.to_digit(16)))
                            else {
                                return Err(bad(self));
                            };
                            out.push((hi * 16 + lo) as u8);
                        }
                        _ => return Err(bad(self)),
                    }
                }
                Some(c) => {
                    let mut buf = [0u8; 4];
                    out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                }
            }
        }
    }
}

/// Reads the whole text into top-level S-expressions.
pub fn read(text: &str) -> Result<Vec<Sexpr>, WatError> {
    if text.len() > limits::MAX_WAT_SOURCE_BYTES {
        return Err(WatError {
            line: 1,
            column: 1,
            kind: WatErrorKind::SourceTooLarge,
        });
    }
    let mut lexer = Lexer {
        text,
        offset: 0,
        pos: Pos { line: 1, column: 1 },
    };
    // Explicit stack instead of recursion: (items, start) per open list.
    let mut stack: Vec<(Vec<Sexpr>, Pos)> = Vec::new();
    let mut top: Vec<Sexpr> = Vec::new();
    loop {
        lexer.skip_trivia()?;
        let pos = lexer.pos;
        let Some(c) = lexer.peek() else { break };
        let node = match c {
            '(' => {
                lexer.bump();
                if stack.len() >= limits::MAX_WAT_NESTING {
                    return Err(lexer.error(pos, WatErrorKind::TooDeep));
                }
                stack.push((Vec::new(), pos));
                continue;
            }
            ')' => {
                lexer.bump();
                let Some((items, start)) = stack.pop() else {
                    return Err(lexer.error(pos, WatErrorKind::UnexpectedCloseParen));
                };
                Sexpr::List(items, start)
            }
            '"' => Sexpr::Str(lexer.string(pos)?, pos),
            '$' => {
                lexer.bump();
                let name = lexer.word();
                if name.is_empty() {
                    return Err(lexer.error(pos, WatErrorKind::EmptyId));
                }
                Sexpr::Id(name, pos)
            }
            c if Lexer::is_idchar(c) => Sexpr::Atom(lexer.word(), pos),
            other => return Err(lexer.error(pos, WatErrorKind::UnexpectedChar(other))),
        };
        match stack.last_mut() {
            Some((items, _)) => items.push(node),
            None => top.push(node),
        }
    }
    if let Some((_, start)) = stack.last() {
        return Err(lexer.error(*start, WatErrorKind::UnclosedParen));
    }
    Ok(top)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_nested_lists_with_positions() {
        let tree = read(
            "(module\n  (func $f (i32.const -1)) ;; c\n (; block (; nested ;) ;) \"a\\n\\41\")",
        )
        .unwrap();
        assert_eq!(tree.len(), 1);
        let Sexpr::List(items, pos) = &tree[0] else {
            panic!()
        };
        assert_eq!(*pos, Pos { line: 1, column: 1 });
        assert_eq!(
            items[0],
            Sexpr::Atom("module".into(), Pos { line: 1, column: 2 })
        );
        let Sexpr::List(func, fpos) = &items[1] else {
            panic!()
        };
        assert_eq!(*fpos, Pos { line: 2, column: 3 });
        assert_eq!(func[1], Sexpr::Id("f".into(), Pos { line: 2, column: 9 }));
        assert_eq!(
            items[2],
            Sexpr::Str(
                b"a\nA".to_vec(),
                Pos {
                    line: 3,
                    column: 27
                }
            )
        );
    }

    #[test]
    fn reports_lexical_errors_at_their_position() {
        let cases: &[(&str, u32, u32, WatErrorKind)] = &[
            ("(module", 1, 1, WatErrorKind::UnclosedParen),
            ("(module))", 1, 9, WatErrorKind::UnexpectedCloseParen),
            ("(module\n \"abc", 2, 2, WatErrorKind::UnclosedString),
            ("(data \"\\q\")", 1, 8, WatErrorKind::BadEscape),
            ("(; open", 1, 1, WatErrorKind::UnclosedComment),
            ("( $ )", 1, 3, WatErrorKind::EmptyId),
            ("(module {)", 1, 9, WatErrorKind::UnexpectedChar('{')),
        ];
        for (text, line, column, kind) in cases {
            let e = read(text).unwrap_err();
            assert_eq!(
                (e.line, e.column, &e.kind),
                (*line, *column, kind),
                "{text}"
            );
        }
    }

    #[test]
    fn nesting_is_bounded() {
        let deep = "(".repeat(limits::MAX_WAT_NESTING + 1);
        assert_eq!(read(&deep).unwrap_err().kind, WatErrorKind::TooDeep);
    }
}

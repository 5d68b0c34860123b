//! One-line JSON objects for `--json` output (DESIGN interface 3: one object a line),
//! written by hand to keep xtask free of a serialisation dependency.

/// A JSON object being built, in insertion order.
#[derive(Debug, Default, Clone)]
pub struct JsonLine {
    fields: Vec<(String, String)>,
}

/// Escapes a string for a JSON string literal (quotes included).
pub fn quote(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

impl JsonLine {
    /// An empty object.
    pub fn new() -> JsonLine {
        JsonLine::default()
    }

    /// Adds a string field.
    pub fn str(mut self, key: &str, value: &str) -> JsonLine {
        self.fields.push((key.to_string(), quote(value)));
        self
    }

    /// Adds an integer field.
    pub fn int(mut self, key: &str, value: u64) -> JsonLine {
        self.fields.push((key.to_string(), value.to_string()));
        self
    }

    /// Adds a number field (non-finite values become null, which JSON can hold).
    pub fn num(mut self, key: &str, value: f64) -> JsonLine {
        let text = if value.is_finite() {
            format!("{value}")
        } else {
            "null".to_string()
        };
        self.fields.push((key.to_string(), text));
        self
    }

    /// The object on one line.
    pub fn render(&self) -> String {
        let body: Vec<String> = self
            .fields
            .iter()
            .map(|(k, v)| format!("{}:{v}", quote(k)))
            .collect();
        format!("{{{}}}", body.join(","))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_one_escaped_object() {
        let line = JsonLine::new()
            .str("bench", "boot")
            .int("smp", 4)
            .num("median_ms", 812.5)
            .num("bad", f64::NAN)
            .str("note", "a \"b\"\n\\c\u{1}")
            .render();
        assert_eq!(
            line,
            r#"{"bench":"boot","smp":4,"median_ms":812.5,"bad":null,"note":"a \"b\"\n\\c\u0001"}"#
        );
        assert!(!line.contains('\n'));
    }
}

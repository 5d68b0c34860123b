//! Chat templates: turn a conversation into the prompt text a model was trained on.
//!
//! GGUF files carry a Jinja template (`tokenizer.chat_template`); running Jinja in the kernel is
//! not worth it, so the two families we ship are written out by hand and chosen by looking at the
//! template text (falling back to the tokenizer family):
//!
//! * **ChatML** (SmolLM2, Qwen, ...): `<|im_start|>{role}\n{content}<|im_end|>\n` per message
//!   and `<|im_start|>assistant\n` to prompt a reply. SmolLM2's template inserts a default system
//!   turn ("You are a helpful AI assistant named SmolLM, trained by Hugging Face") when the
//!   conversation has none; [`ChatTemplate::from_gguf`] extracts that text from the template so
//!   it can be used, but it is only inserted when asked ([`ChatTemplate::with_default_system`]):
//!   the golden prompt of TOOLCHAIN.md (21 tokens) has no system turn.
//! * **Zephyr** (TinyLlama-1.1B-Chat): `<|{role}|>\n{content}</s>\n` per message and
//!   `<|assistant|>\n` to prompt a reply (what the Jinja template gives with Hugging Face's
//!   `trim_blocks`). `</s>` is the EOS text; encode the prompt with `parse_special = true` so it
//!   becomes the EOS id.
//!
//! The output is text; special-token strings in it become ids when the tokenizer encodes it
//! with `parse_special`. Message contents are inserted as written: a user who types
//! `<|im_end|>` can end their own turn, which is what the console's `--raw` mode is for anyway;
//! callers that must prevent it encode contents separately with `parse_special = false`.

use alloc::string::{String, ToString};

use crate::gguf::{Gguf, Value};

/// Who speaks a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    System,
    User,
    Assistant,
}

impl Role {
    /// The role's name in templates.
    pub fn name(self) -> &'static str {
        match self {
            Role::System => "system",
            Role::User => "user",
            Role::Assistant => "assistant",
        }
    }
}

/// One message of a conversation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Message<'a> {
    pub role: Role,
    pub content: &'a str,
}

impl<'a> Message<'a> {
    /// A system message.
    pub fn system(content: &'a str) -> Self {
        Self {
            role: Role::System,
            content,
        }
    }

    /// A user message.
    pub fn user(content: &'a str) -> Self {
        Self {
            role: Role::User,
            content,
        }
    }

    /// An assistant message.
    pub fn assistant(content: &'a str) -> Self {
        Self {
            role: Role::Assistant,
            content,
        }
    }
}

/// The template families the engine knows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChatTemplate {
    /// `<|im_start|>role\ncontent<|im_end|>\n`; `default_system` is inserted first when the
    /// conversation has no system message and it is set.
    ChatMl {
        default_system: Option<String>,
        /// The default system text found in the model's template (not used unless moved into
        /// `default_system` by [`ChatTemplate::with_default_system`]).
        template_system: Option<String>,
    },
    /// `<|role|>\ncontent</s>\n` (TinyLlama / Zephyr); `eos_text` is the EOS token's text.
    Zephyr { eos_text: String },
}

impl ChatTemplate {
    /// ChatML without a default system turn.
    pub fn chat_ml() -> Self {
        ChatTemplate::ChatMl {
            default_system: None,
            template_system: None,
        }
    }

    /// Zephyr with `</s>` as EOS text.
    pub fn zephyr() -> Self {
        ChatTemplate::Zephyr {
            eos_text: "</s>".to_string(),
        }
    }

    /// Choose from the GGUF metadata: the template text if present, otherwise the tokenizer
    /// family (`gpt2` → ChatML, `llama` → Zephyr).
    pub fn from_gguf(gguf: &Gguf<'_>) -> Self {
        let template = match gguf.get("tokenizer.chat_template") {
            Some(Value::String(text)) => text,
            _ => "",
        };
        let eos_text = (|| {
            let eos = gguf.get_u32("tokenizer.ggml.eos_token_id").ok()?;
            gguf.get_array_str("tokenizer.ggml.tokens")
                .ok()?
                .nth(eos as usize)
        })();
        if template.contains("<|im_start|>") {
            return ChatTemplate::ChatMl {
                default_system: None,
                template_system: default_system_of(template),
            };
        }
        if template.contains("<|user|>") {
            return ChatTemplate::Zephyr {
                eos_text: eos_text.unwrap_or("</s>").to_string(),
            };
        }
        match gguf.get("tokenizer.ggml.model") {
            Some(Value::String("llama")) => ChatTemplate::Zephyr {
                eos_text: eos_text.unwrap_or("</s>").to_string(),
            },
            _ => Self::chat_ml(),
        }
    }

    /// Insert the model template's default system turn when a conversation has none (as the
    /// SmolLM2 Jinja template does). No effect for templates without one.
    pub fn with_default_system(self) -> Self {
        match self {
            ChatTemplate::ChatMl {
                template_system, ..
            } => ChatTemplate::ChatMl {
                default_system: template_system.clone(),
                template_system,
            },
            other => other,
        }
    }

    /// The prompt text for `messages`, ending with the assistant's turn opener when
    /// `add_generation_prompt`.
    pub fn apply(&self, messages: &[Message<'_>], add_generation_prompt: bool) -> String {
        let mut out = String::new();
        match self {
            ChatTemplate::ChatMl { default_system, .. } => {
                let has_system = messages.first().is_some_and(|m| m.role == Role::System);
                if let (false, Some(system)) = (has_system, default_system) {
                    push_chat_ml(&mut out, "system", system);
                }
                for message in messages {
                    push_chat_ml(&mut out, message.role.name(), message.content);
                }
                if add_generation_prompt {
                    out.push_str("<|im_start|>assistant\n");
                }
            }
            ChatTemplate::Zephyr { eos_text } => {
                for message in messages {
                    out.push_str("<|");
                    out.push_str(message.role.name());
                    out.push_str("|>\n");
                    out.push_str(message.content);
                    out.push_str(eos_text);
                    out.push('\n');
                }
                if add_generation_prompt {
                    out.push_str("<|assistant|>\n");
                }
            }
        }
        out
    }

    /// The text that ends an assistant turn (generation should stop there).
    pub fn end_of_turn_text(&self) -> &str {
        match self {
            ChatTemplate::ChatMl { .. } => "<|im_end|>",
            ChatTemplate::Zephyr { eos_text } => eos_text,
        }
    }
}

fn push_chat_ml(out: &mut String, role: &str, content: &str) {
    out.push_str("<|im_start|>");
    out.push_str(role);
    out.push('\n');
    out.push_str(content);
    out.push_str("<|im_end|>\n");
}

/// The default system text a ChatML Jinja template inserts, if it has one: the content between
/// `<|im_start|>system\n` and the next `<|im_end|>` inside the template.
fn default_system_of(template: &str) -> Option<String> {
    let marker = "<|im_start|>system\n";
    let start = template.find(marker)? + marker.len();
    let end = start + template[start..].find("<|im_end|>")?;
    let text = &template[start..end];
    // A template that builds the system turn from a variable has no literal default.
    (!text.contains("{{") && !text.contains('\'')).then(|| text.to_string())
}

/// Expands the escapes a console line uses for characters it cannot hold: `\n`, `\t` and
/// `\\`; any other backslash stays as written. The console's `ai` command applies it to every
/// prompt (templated or `--raw`), and tests that predict its output apply the same function.
pub fn expand_console_escapes(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('\\') => out.push('\\'),
            Some(other) => {
                out.push('\\');
                out.push(other);
            }
            None => out.push('\\'),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn console_escapes_expand_newline_tab_and_backslash_only() {
        assert_eq!(
            super::expand_console_escapes(r"a\nb\tc\\d\qe\"),
            "a\nb\tc\\d\\qe\\"
        );
    }

    use super::*;
    use alloc::vec;

    const SMOLLM2_TEMPLATE: &str = "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

    #[test]
    fn chat_ml_without_and_with_the_default_system_turn() {
        let template = ChatTemplate::ChatMl {
            default_system: None,
            template_system: default_system_of(SMOLLM2_TEMPLATE),
        };
        let messages = [Message::user(
            "Write a C function that returns the larger of two integers.",
        )];
        assert_eq!(
            template.apply(&messages, true),
            "<|im_start|>user\nWrite a C function that returns the larger of two integers.<|im_end|>\n<|im_start|>assistant\n"
        );
        let with_system = template.clone().with_default_system();
        assert_eq!(
            with_system.apply(&[Message::user("hi")], true),
            "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"
        );
        // An explicit system message replaces the default.
        assert_eq!(
            with_system.apply(&[Message::system("Be brief."), Message::user("hi"), Message::assistant("hello")], false),
            "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\nhello<|im_end|>\n"
        );
        assert_eq!(template.end_of_turn_text(), "<|im_end|>");
    }

    #[test]
    fn zephyr_for_tinyllama() {
        let template = ChatTemplate::zephyr();
        let messages = vec![Message::system("You are a kernel."), Message::user("Hello")];
        assert_eq!(
            template.apply(&messages, true),
            "<|system|>\nYou are a kernel.</s>\n<|user|>\nHello</s>\n<|assistant|>\n"
        );
        assert_eq!(template.end_of_turn_text(), "</s>");
    }

    #[test]
    fn default_system_extraction() {
        assert_eq!(
            default_system_of(SMOLLM2_TEMPLATE).as_deref(),
            Some("You are a helpful AI assistant named SmolLM, trained by Hugging Face")
        );
        assert_eq!(
            default_system_of("{{'<|im_start|>' + message['role'] + '\n'}}"),
            None
        );
    }
}

//! Errors of the TOML layer (syntax, unknown keys, wrong types, unknown presets) told as the
//! builder's errors are: the file, line and column, the validator whose table holds the
//! mistake, the key, and the nearest known name for a misspelt one.
//!
//! `toml` reports a byte span and a message; the table and the key are read back from the text
//! around the span. That reading only decorates the message: a line it cannot read simply
//! gives no validator or key.

use crate::error::{Error, ErrorKind, Location};
use crate::suggest::did_you_mean;

use super::file::{column_of, line_of};

/// `e`, located in `text` (named `origin`), with its validator, key and a suggestion.
pub(super) fn describe(e: &toml::de::Error, text: &str, origin: &str) -> Error {
    let message = e.message().trim_end();
    let at = e.span().map_or(0, |s| s.start.min(text.len()));
    let mut path = key_path(text, at);
    let message = match misspelt(message) {
        Some((word, known)) => {
            // The unknown word is the key (or preset) at the span: name its table instead.
            if path.last().is_some_and(|last| last == word) {
                path.pop();
            }
            match did_you_mean(word, known.iter().map(String::as_str)) {
                Some(near) => format!("unknown key `{word}`; did you mean `{near}`?"),
                None => format!("unknown key `{word}`; expected one of {}", known.join(", ")),
            }
        }
        None => message.to_owned(),
    };
    let mut err = Error::new(ErrorKind::Config, message).at(Location::new(
        origin,
        line_of(text, at),
        column_of(text, at),
    ));
    if !path.is_empty() {
        err = err.in_field(path.join("."));
    }
    if let Some(name) = validator_at(text, at) {
        err = err.in_validator(&name);
    }
    err
}

/// The unknown word of an "unknown field/variant" or "unexpected keys" message, and the names
/// it lists as known.
fn misspelt(message: &str) -> Option<(&str, Vec<String>)> {
    let listed = |s: &str| -> Vec<String> {
        s.split(',')
            .map(|n| n.trim().trim_matches('`').to_owned())
            .filter(|n| !n.is_empty())
            .collect()
    };
    for prefix in ["unknown field ", "unknown variant "] {
        if let Some(rest) = message.strip_prefix(prefix) {
            let word = rest.split('`').nth(1)?;
            let known = rest.split_once("expected one of ").map(|(_, l)| listed(l));
            let known = known.or_else(|| rest.split_once("expected ").map(|(_, one)| listed(one)));
            return Some((word, known.unwrap_or_default()));
        }
    }
    // `unexpected keys in table: a, b, available keys: x, y` (flattened and inline tables).
    let rest = message.strip_prefix("unexpected keys in table: ")?;
    let (words, known) = rest.split_once(", available keys: ")?;
    let word = words.split(',').next()?.trim();
    Some((word, listed(known)))
}

/// The dotted keys leading to byte `at` on its line: `["cookie", "name"]` for the `5` of
/// `cookie = { name = 5 }`, `["audiance"]` for the key itself. Strings are skipped, so a
/// `{` or `=` inside one does not count.
fn key_path(text: &str, at: usize) -> Vec<String> {
    let start = text[..at].rfind('\n').map_or(0, |i| i + 1);
    let end = text[at..].find('\n').map_or(text.len(), |i| at + i);
    let line = &text[start..end];
    let at = at - start;
    let mut stack: Vec<String> = Vec::new();
    let mut word = String::new();
    let mut key: Option<String> = None;
    let mut chars = line.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if i >= at {
            break;
        }
        match c {
            '"' | '\'' => {
                for (_, d) in chars.by_ref() {
                    if d == c {
                        break;
                    }
                }
            }
            '=' => key = Some(std::mem::take(&mut word)),
            '{' => {
                stack.extend(key.take());
                word.clear();
            }
            '}' => {
                stack.pop();
                word.clear();
            }
            ',' => {
                key = None;
                word.clear();
            }
            c if c.is_alphanumeric() || c == '_' || c == '-' => word.push(c),
            _ => {}
        }
    }
    // At a value: the key it belongs to; at a key: that key.
    match key {
        Some(k) if !k.is_empty() => stack.push(k),
        _ => {
            let here: String = line[at.min(line.len())..]
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == '-')
                .collect();
            let whole = format!("{word}{here}");
            if !whole.is_empty() {
                stack.push(whole);
            }
        }
    }
    stack
}

/// The `name` of the `[[validator]]` table holding byte `at`, if it holds it.
fn validator_at(text: &str, at: usize) -> Option<String> {
    let mut table: Option<usize> = None;
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        if offset > at {
            break;
        }
        let header = line.trim();
        if header == "[[validator]]" {
            table = Some(offset);
        } else if header.starts_with('[') && !header.starts_with("[validator.") {
            table = None;
        }
        offset += line.len();
    }
    let start = table?;
    let body = &text[start..];
    for line in body.split_inclusive('\n').skip(1) {
        let trimmed = line.trim();
        if trimmed.starts_with('[') {
            break;
        }
        if let Some(value) = trimmed.strip_prefix("name") {
            let value = value.trim_start().strip_prefix('=')?.trim();
            return value
                .strip_prefix('"')
                .and_then(|v| v.split('"').next())
                .map(str::to_owned);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_read_back_from_the_line() {
        let cases = [
            ("audiance = 5", 0, vec!["audiance"]),
            ("issuer = 5", 9, vec!["issuer"]),
            ("cookie = { name = 5 }", 18, vec!["cookie", "name"]),
            (
                "provider = { cloudflare = { team = \"{=\" } }",
                13,
                vec!["provider", "cloudflare"],
            ),
            (
                "user = { static = \"a,b\", statc = 4 }",
                25,
                vec!["user", "statc"],
            ),
        ];
        for (line, at, want) in cases {
            assert_eq!(key_path(line, at), want, "{line} at {at}");
        }
    }

    #[test]
    fn the_validator_is_the_table_around_the_offset() {
        let text = "realm = \"r\"\n[[validator]]\nname = \"a\"\nx = 1\n[[validator]]\nissuer = \"i\"\nname = \"b\"\n[validator.login]\ny = 2\n[[route]]\nz = 3\n";
        let at = |s: &str| text.find(s).unwrap();
        assert_eq!(validator_at(text, at("realm")), None);
        assert_eq!(validator_at(text, at("x = 1")).as_deref(), Some("a"));
        assert_eq!(validator_at(text, at("issuer")).as_deref(), Some("b"));
        assert_eq!(validator_at(text, at("y = 2")).as_deref(), Some("b"));
        assert_eq!(validator_at(text, at("z = 3")), None);
    }
}

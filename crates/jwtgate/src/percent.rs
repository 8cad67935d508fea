//! The one percent-encoder and decoder (RFC 3986 2.1): query values of redirects, the gRPC
//! `grpc-message` (its own set of bytes kept, by the gRPC spec), token query parameters and the
//! sign-in routes' query strings. Decoding is strict: a broken escape or a result that is not
//! UTF-8 is refused, never guessed at.

use std::borrow::Cow;

/// RFC 3986's unreserved characters: what a query value keeps as it is.
pub(crate) fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

/// `text` with every byte `keep` refuses written `%XX`.
pub(crate) fn encode(text: &str, keep: impl Fn(u8) -> bool) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if keep(b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A query value encoded once, whatever it holds.
pub(crate) fn encode_query_value(value: &str) -> String {
    encode(value, is_unreserved)
}

/// A form-encoded value decoded (`%XX`, and `+` for a space); `None` for a broken escape or
/// bytes that are not UTF-8. Borrowed when there is nothing to decode.
pub(crate) fn decode_form(raw: &str) -> Option<Cow<'_, str>> {
    decode(raw, true)
}

/// A URI path decoded (`%XX` only: a `+` in a path is a `+`), as strictly as
/// [`decode_form`].
#[cfg_attr(not(feature = "forward-auth"), allow(dead_code))]
pub(crate) fn decode_path(raw: &str) -> Option<Cow<'_, str>> {
    decode(raw, false)
}

fn decode(raw: &str, plus_is_space: bool) -> Option<Cow<'_, str>> {
    if !(raw.contains('%') || plus_is_space && raw.contains('+')) {
        return Some(Cow::Borrowed(raw));
    }
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = bytes.get(i + 1..i + 3)?;
                let hex = std::str::from_utf8(hex).ok()?;
                if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return None;
                }
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' if plus_is_space => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok().map(Cow::Owned)
}

/// The pairs of a query string, decoded; at most `limit` of them, and a pair that does not
/// decode is left out.
#[cfg_attr(not(feature = "login"), allow(dead_code))]
pub(crate) fn query_pairs(query: &str, limit: usize) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .take(limit)
        .filter_map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            Some((decode_form(k)?.into_owned(), decode_form(v)?.into_owned()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoding_keeps_only_what_it_is_told_to() {
        assert_eq!(
            encode_query_value("/a b?x=1&y=é"),
            "%2Fa%20b%3Fx%3D1%26y%3D%C3%A9"
        );
        assert_eq!(encode_query_value("plain-_.~"), "plain-_.~");
        let grpc = |b: u8| (0x20..=0x7e).contains(&b) && b != b'%';
        assert_eq!(encode("keys 100% down\n", grpc), "keys 100%25 down%0A");
    }

    #[test]
    fn decoding_is_strict() {
        assert_eq!(decode_form("a.b%2Ec").as_deref(), Some("a.b.c"));
        assert_eq!(decode_form("a+b").as_deref(), Some("a b"));
        assert!(matches!(decode_form("plain"), Some(Cow::Borrowed("plain"))));
        assert_eq!(decode_path("/a+b%2Bc%20d").as_deref(), Some("/a+b+c d"));
        assert!(matches!(decode_path("/a+b"), Some(Cow::Borrowed("/a+b"))));
        assert_eq!(decode_path("/%ff"), None);
        for bad in ["%zz", "%2", "%", "%ff", "%+1"] {
            assert_eq!(decode_form(bad), None, "{bad}");
        }
        assert_eq!(
            query_pairs("return_to=%2Fpage%3Fx%3D1&bad=%zz&&code=a+b&flag", 32),
            [
                ("return_to".to_owned(), "/page?x=1".to_owned()),
                ("code".to_owned(), "a b".to_owned()),
                ("flag".to_owned(), String::new()),
            ]
        );
        assert_eq!(query_pairs("a=1&b=2&c=3", 2).len(), 2);
    }
}

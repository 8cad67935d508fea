//! A differential oracle for the claim reader: generated claim sets (escaped and unescaped
//! strings, surrogate pairs, integers, floats in every notation, literals, nesting), written out
//! as JSON text by this test's own writer, then read by jwtgate's strict in-place reader
//! (`jwtgate::__fuzz::read_claims`). The generator knows the truth: a set it built is accepted
//! and every value a handler can read equals the value generated; a set it broke on purpose (a
//! duplicate member, even spelled with an escape; nesting past the bound; a number beyond an
//! f64; a lone surrogate; serde_json's `RawValue` marker as a name) is refused.

use proptest::prelude::*;
use serde_json::{Map, Number, Value};

/// Depth jwtgate accepts at most for a value inside the claim set (the set itself is 1).
const MAX_DEPTH: usize = 15;

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<bool>().prop_map(Value::Bool),
        Just(Value::Null),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        (-1e300f64..1e300).prop_map(|f| Number::from_f64(f).map_or(Value::Null, Value::Number)),
        prop_oneof![
            any::<f64>(),
            Just(f64::MIN_POSITIVE),
            Just(5e-324),
            Just(f64::MAX)
        ]
        .prop_filter_map("finite", |f| Number::from_f64(f).map(Value::Number)),
        ".{0,12}".prop_map(Value::String),
        "[\"\\\\/\\u{0}-\\u{1f}\\u{7f}\\u{e9}\\u{2028}\\u{1f600}a]{0,8}".prop_map(Value::String),
    ]
}

fn value() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(4, 24, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::btree_map("[a-z$_\\u{e9}]{1,6}", inner, 0..5)
                .prop_map(|m| Value::Object(m.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

fn claims() -> impl Strategy<Value = Map<String, Value>> {
    prop::collection::btree_map("[a-z_\\u{e9}\\u{1f600}]{1,8}", value(), 1..8)
        .prop_map(|m| m.into_iter().collect())
}

/// How this writer spells things: which characters of strings are escaped, and how numbers
/// are written. Each choice is drawn per run.
#[derive(Clone, Debug)]
struct Style {
    escape_all: bool,
    exponent: bool,
    spaces: bool,
}

fn style() -> impl Strategy<Value = Style> {
    (any::<bool>(), any::<bool>(), any::<bool>()).prop_map(|(escape_all, exponent, spaces)| Style {
        escape_all,
        exponent,
        spaces,
    })
}

fn write_str(s: &str, style: &Style, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || (style.escape_all && !c.is_ascii_alphanumeric()) => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    out.push_str(&format!("\\u{unit:04x}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

fn write(v: &Value, style: &Style, out: &mut String) {
    let sep = if style.spaces { ", " } else { "," };
    let colon = if style.spaces { " : " } else { ":" };
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => match (n.as_f64(), n.is_f64()) {
            (Some(f), true) if style.exponent => out.push_str(&format!("{f:e}")),
            (Some(f), true) => out.push_str(&format!("{f:?}")),
            _ => out.push_str(&n.to_string()),
        },
        Value::String(s) => write_str(s, style, out),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(sep);
                }
                write(item, style, out);
            }
            out.push(']');
        }
        Value::Object(map) => {
            out.push('{');
            for (i, (k, item)) in map.iter().enumerate() {
                if i > 0 {
                    out.push_str(sep);
                }
                write_str(k, style, out);
                out.push_str(colon);
                write(item, style, out);
            }
            out.push('}');
        }
    }
}

fn text(claims: &Map<String, Value>, style: &Style) -> String {
    let mut out = String::new();
    write(&Value::Object(claims.clone()), style, &mut out);
    out
}

/// Nesting below the top level, as jwtgate counts it.
fn depth(v: &Value) -> usize {
    match v {
        Value::Array(items) => 1 + items.iter().map(depth).max().unwrap_or(0),
        Value::Object(map) => 1 + map.values().map(depth).max().unwrap_or(0),
        _ => 0,
    }
}

fn has_raw_value_marker(v: &Value) -> bool {
    match v {
        Value::Array(items) => items.iter().any(has_raw_value_marker),
        Value::Object(map) => map
            .iter()
            .any(|(k, v)| k == "$serde_json::private::RawValue" || has_raw_value_marker(v)),
        _ => false,
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn what_was_written_is_what_handlers_read(claims in claims(), style in style()) {
        let doc = text(&claims, &style);
        let read = jwtgate::__fuzz::read_claims(&doc);
        let valid = claims.values().all(|v| depth(v) <= MAX_DEPTH && !has_raw_value_marker(v));
        prop_assert_eq!(read.is_ok(), valid, "{}: {:?}", doc, read);
        let Ok(read) = read else { return Ok(()) };
        prop_assert_eq!(read.len(), claims.len());
        for (name, got) in &read {
            let want = &claims[name];
            prop_assert_eq!(&got.tree, want, "{} in {}", name, doc);
            prop_assert_eq!(got.string.as_deref(), want.as_str(), "{}", name);
            prop_assert_eq!(got.boolean, want.as_bool(), "{}", name);
            prop_assert_eq!(got.null, want.is_null(), "{}", name);
            prop_assert_eq!(got.integer, want.as_u64(), "{}", name);
            prop_assert_eq!(got.number, want.as_f64(), "{}", name);
        }
    }

    #[test]
    fn a_duplicate_member_is_refused_however_it_is_spelled(
        claims in claims(),
        style in style(),
        escaped in any::<bool>(),
        extra in leaf(),
    ) {
        let doc = text(&claims, &style);
        let name = claims.keys().next().unwrap().clone();
        let mut again = String::new();
        write_str(&name, &Style { escape_all: escaped, ..style }, &mut again);
        let mut value = String::new();
        write(&extra, &style, &mut value);
        let doc = format!("{},{again}:{value}}}", &doc[..doc.len() - 1]);
        prop_assert!(jwtgate::__fuzz::read_claims(&doc).is_err(), "{}", doc);
    }

    #[test]
    fn numbers_beyond_an_f64_lone_surrogates_and_deep_nesting_are_refused(
        claims in claims(),
        style in style(),
        which in 0..4usize,
    ) {
        let bad = match which {
            0 => "1e400".to_owned(),
            1 => "[-1.5E+999]".to_owned(),
            2 => "\"a\\ud800b\"".to_owned(),
            _ => format!("{}0{}", "[".repeat(MAX_DEPTH + 1), "]".repeat(MAX_DEPTH + 1)),
        };
        let doc = text(&claims, &style);
        let doc = format!("{},\"zz-bad\":{bad}}}", &doc[..doc.len() - 1]);
        prop_assert!(jwtgate::__fuzz::read_claims(&doc).is_err(), "{}", doc);
    }
}

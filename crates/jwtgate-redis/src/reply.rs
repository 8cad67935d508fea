//! Reading Redis replies. Store contents are untrusted: every shape is checked, and what is
//! not as expected is an error or a skipped entry, never a panic.

use jwtgate::revocation::Revocation;
use redis::Value;

/// A reply not in the expected shape.
#[derive(Debug)]
pub(crate) struct Unexpected(pub(crate) &'static str);

fn bytes(v: &Value) -> Option<&[u8]> {
    match v {
        Value::BulkString(b) => Some(b),
        Value::SimpleString(s) => Some(s.as_bytes()),
        _ => None,
    }
}

fn array(v: &Value) -> Option<&[Value]> {
    match v {
        Value::Array(a) | Value::Set(a) => Some(a),
        _ => None,
    }
}

/// A stream id (`ms-seq`): digits and one dash, short.
fn stream_id(v: &Value) -> Option<String> {
    let id = std::str::from_utf8(bytes(v)?).ok()?;
    (id.len() <= 41
        && id.split_once('-').is_some_and(|(a, b)| {
            !a.is_empty()
                && !b.is_empty()
                && (a.bytes().chain(b.bytes())).all(|c| c.is_ascii_digit())
        }))
    .then(|| id.to_owned())
}

/// `XREVRANGE log + - COUNT 1`: the last id, or `0-0` for an empty log.
pub(crate) fn last_id(v: &Value) -> Result<String, Unexpected> {
    let entries = array(v).ok_or(Unexpected("XREVRANGE: not an array"))?;
    match entries.first() {
        None => Ok("0-0".into()),
        Some(entry) => array(entry)
            .and_then(|e| e.first())
            .and_then(stream_id)
            .ok_or(Unexpected("XREVRANGE: no entry id")),
    }
}

/// A hash's (field, value) pairs, borrowed from the reply.
pub(crate) type Pairs<'a> = Vec<(&'a [u8], &'a [u8])>;

/// One `HSCAN` page: the next cursor and the (field, value) pairs.
pub(crate) fn scan_page(v: &Value) -> Result<(u64, Pairs<'_>), Unexpected> {
    let page = array(v).ok_or(Unexpected("HSCAN: not an array"))?;
    let [cursor, items] = page else {
        return Err(Unexpected("HSCAN: not a cursor and items"));
    };
    let cursor = bytes(cursor)
        .and_then(|c| std::str::from_utf8(c).ok())
        .and_then(|c| c.parse().ok())
        .ok_or(Unexpected("HSCAN: bad cursor"))?;
    let items = array(items).ok_or(Unexpected("HSCAN: items not an array"))?;
    let pairs = items
        .chunks(2)
        .filter_map(|pair| match pair {
            [k, v] => Some((bytes(k)?, bytes(v)?)),
            _ => None,
        })
        .collect();
    Ok((cursor, pairs))
}

/// What one read of the change log brought.
pub(crate) struct LogRead {
    /// The last record's id: where the next read starts.
    pub(crate) last: String,
    pub(crate) entries: Vec<Revocation>,
    /// Records that did not decode (counted, not applied).
    pub(crate) unreadable: usize,
}

/// `XREAD ... STREAMS log id`: the entries after `id` and the last id read (`None`: the
/// block timed out with nothing new). Entries that do not decode are counted, not applied.
pub(crate) fn read_log(v: &Value) -> Result<Option<LogRead>, Unexpected> {
    let streams = match v {
        Value::Nil => return Ok(None),
        other => array(other).ok_or(Unexpected("XREAD: not an array"))?,
    };
    let Some(stream) = streams.first() else {
        return Ok(None);
    };
    let entries = array(stream)
        .and_then(|s| s.get(1))
        .and_then(array)
        .ok_or(Unexpected("XREAD: no entries"))?;
    let mut last = None;
    let mut out = Vec::with_capacity(entries.len());
    let mut bad = 0;
    for entry in entries {
        let Some([id, fields]) = array(entry).and_then(|e| <&[Value; 2]>::try_from(e).ok()) else {
            return Err(Unexpected("XREAD: bad entry"));
        };
        last = Some(stream_id(id).ok_or(Unexpected("XREAD: bad entry id"))?);
        let value = array(fields).and_then(|f| match f {
            [name, value] if bytes(name) == Some(b"e") => bytes(value),
            _ => None,
        });
        match value.map(Revocation::decode) {
            Some(Ok(r)) => out.push(r),
            _ => bad += 1,
        }
    }
    Ok(last.map(|last| LogRead {
        last,
        entries: out,
        unreadable: bad,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use jwtgate::revocation::Target;

    fn b(s: &str) -> Value {
        Value::BulkString(s.as_bytes().to_vec())
    }

    #[test]
    fn replies_are_read_and_odd_ones_refused() {
        assert_eq!(last_id(&Value::Array(vec![])).unwrap(), "0-0");
        let one = Value::Array(vec![Value::Array(vec![b("17-3"), Value::Array(vec![])])]);
        assert_eq!(last_id(&one).unwrap(), "17-3");
        assert!(last_id(&Value::Array(vec![Value::Array(vec![b("17")])])).is_err());
        assert!(last_id(&Value::Int(3)).is_err());

        let entry = Revocation::new("i", Target::Token("j".into()), 9).encode();
        let log = Value::Array(vec![Value::Array(vec![
            b("log"),
            Value::Array(vec![
                Value::Array(vec![b("1-0"), Value::Array(vec![b("e"), b(&entry)])]),
                Value::Array(vec![b("2-0"), Value::Array(vec![b("e"), b("{nope")])]),
                Value::Array(vec![b("3-0"), Value::Array(vec![b("x"), b(&entry)])]),
            ]),
        ])]);
        let read = read_log(&log).unwrap().unwrap();
        assert_eq!(
            (read.last.as_str(), read.entries.len(), read.unreadable),
            ("3-0", 1, 2)
        );
        assert!(read_log(&Value::Nil).unwrap().is_none());
        let no_id = Value::Array(vec![Value::Array(vec![
            b("log"),
            Value::Array(vec![Value::Array(vec![b("x"), Value::Array(vec![])])]),
        ])]);
        assert!(read_log(&no_id).is_err());

        let page = Value::Array(vec![b("12"), Value::Array(vec![b("k"), b("v"), b("odd")])]);
        let (cursor, pairs) = scan_page(&page).unwrap();
        assert_eq!((cursor, pairs), (12, vec![(&b"k"[..], &b"v"[..])]));
        assert!(scan_page(&Value::Array(vec![b("x"), Value::Array(vec![])])).is_err());
    }
}

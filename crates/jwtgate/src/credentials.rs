//! Where a request's token comes from: each validator has an ordered list of [`TokenSource`]s
//! (the `Authorization` header by default; a raw header, a provider's cookie or, opt-in, a
//! query parameter), and the first one present in a request is its credential.
//!
//! A present but malformed credential is refused; it never falls back to a later source, as a
//! header beats a cookie. The session-cookie guard lives here too, since it reads the same
//! `Cookie` headers.

use std::borrow::Cow;
use std::fmt;

use http::header::{AUTHORIZATION, COOKIE};
use http::{HeaderMap, HeaderName, Uri};

use crate::error::{Error, ErrorKind};

/// One place a validator looks for its token.
///
/// ```
/// use jwtgate::{TokenSource, Validator};
///
/// // Cloudflare Access: its header first, its cookie for browsers that lose the header.
/// let v = Validator::new("cf").token_sources([
///     TokenSource::header("Cf-Access-Jwt-Assertion"),
///     TokenSource::cookie("CF_Authorization"),
/// ]);
/// # let _ = v;
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct TokenSource(Source);

#[derive(Clone, PartialEq, Eq)]
enum Source {
    Authorization,
    Header {
        name: String,
        scheme: Option<String>,
    },
    Cookie(String),
    Query(String),
}

impl TokenSource {
    /// `Authorization: Bearer <token>` (RFC 6750 2.1; the scheme is case-insensitive). The
    /// default when a validator names no source.
    pub fn authorization() -> Self {
        Self(Source::Authorization)
    }

    /// A header holding the raw token, as identity-aware proxies send it
    /// (`Cf-Access-Jwt-Assertion`, `X-Forwarded-Access-Token`, ...).
    pub fn header(name: impl Into<String>) -> Self {
        Self(Source::Header {
            name: name.into(),
            scheme: None,
        })
    }

    /// A header holding `<scheme> <token>`, the scheme compared case-insensitively.
    pub fn header_with_scheme(name: impl Into<String>, scheme: impl Into<String>) -> Self {
        Self(Source::Header {
            name: name.into(),
            scheme: Some(scheme.into()),
        })
    }

    /// A cookie holding the provider's own token as it is (Cloudflare's `CF_Authorization`).
    /// Not to be confused with cookie mode, where jwtgate issues a cookie of its own.
    pub fn cookie(name: impl Into<String>) -> Self {
        Self(Source::Cookie(name.into()))
    }

    /// A query parameter (RFC 6750 2.3). **Opt-in only**: URLs end up in server logs, browser
    /// history and `Referer` headers, so a token in one leaks. Use it only where nothing else
    /// can carry the token (a WebSocket opened by a browser, for example) and with short-lived
    /// tokens.
    pub fn query(name: impl Into<String>) -> Self {
        Self(Source::Query(name.into()))
    }

    /// The cookie this source reads, if it reads one.
    pub(crate) fn cookie_name(&self) -> Option<&str> {
        match &self.0 {
            Source::Cookie(name) => Some(name),
            _ => None,
        }
    }

    /// Checks names once, when the registry is built.
    pub(crate) fn compile(&self) -> Result<CompiledSource, Error> {
        let bad = |what: String| Error::new(ErrorKind::InvalidSetting, what).in_field("sources");
        Ok(match &self.0 {
            Source::Authorization => CompiledSource::Authorization,
            Source::Header { name, scheme } => {
                let header = HeaderName::from_bytes(name.as_bytes())
                    .map_err(|_| bad(format!("{name:?} is not a header name")))?;
                if let Some(s) = scheme
                    && (s.is_empty() || !s.bytes().all(is_token_char))
                {
                    return Err(bad(format!("scheme {s:?} is not an HTTP token")));
                }
                CompiledSource::Header {
                    name: header,
                    scheme: scheme.clone(),
                }
            }
            Source::Cookie(name) => {
                if name.is_empty() || !name.bytes().all(is_token_char) {
                    return Err(bad(format!("{name:?} is not a cookie name")));
                }
                CompiledSource::Cookie(name.clone())
            }
            Source::Query(name) => {
                if name.is_empty()
                    || !name
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
                {
                    return Err(bad(format!("{name:?} is not a query parameter name")));
                }
                CompiledSource::Query(name.clone())
            }
        })
    }
}

impl fmt::Debug for TokenSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Source::Authorization => f.write_str("Authorization"),
            Source::Header { name, scheme } => f
                .debug_struct("Header")
                .field("name", name)
                .field("scheme", scheme)
                .finish(),
            Source::Cookie(name) => f.debug_tuple("Cookie").field(name).finish(),
            Source::Query(name) => f.debug_tuple("Query").field(name).finish(),
        }
    }
}

/// RFC 9110 `tchar`.
pub(crate) fn is_token_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// A source ready to read requests.
#[derive(Clone, Debug)]
pub(crate) enum CompiledSource {
    Authorization,
    Header {
        name: HeaderName,
        scheme: Option<String>,
    },
    Cookie(String),
    Query(String),
}

impl CompiledSource {
    /// Where this source looks, for a client told that nothing was found.
    pub(crate) fn describe(&self) -> String {
        match self {
            Self::Authorization => "the Authorization header (Bearer)".to_owned(),
            Self::Header { name, .. } => format!("the {name} header"),
            Self::Cookie(name) => format!("the {name} cookie"),
            Self::Query(name) => format!("the {name} query parameter"),
        }
    }
}

/// What a request carries for one validator.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Credential<'r> {
    /// A token from one of the validator's sources.
    Token(Cow<'r, str>),
    /// The validator's own cookie-mode cookie.
    ModeCookie(&'r str),
}

/// The request parts credentials are read from; cookies are parsed once, when first needed.
pub(crate) struct RequestView<'r> {
    headers: &'r HeaderMap,
    uri: &'r Uri,
    cookies: Option<Cookies<'r>>,
}

impl<'r> RequestView<'r> {
    pub(crate) fn new(headers: &'r HeaderMap, uri: &'r Uri) -> Self {
        Self {
            headers,
            uri,
            cookies: None,
        }
    }

    fn cookies(&mut self) -> &Cookies<'r> {
        let headers = self.headers;
        self.cookies.get_or_insert_with(|| Cookies::parse(headers))
    }

    /// Whether the request may carry the session cookie `name`: it does, or one of its
    /// `Cookie` headers cannot be parsed (what cannot be read cannot be ruled out).
    pub(crate) fn may_carry_cookie(&mut self, name: &str) -> bool {
        let cookies = self.cookies();
        cookies.unparsable || cookies.get(name).is_some()
    }

    /// The credential of the first source present, or a client-safe reason why it is
    /// malformed. `mode_cookie` (cookie mode) is read after the sources.
    pub(crate) fn find(
        &mut self,
        sources: &[CompiledSource],
        mode_cookie: Option<&str>,
    ) -> Result<Option<Credential<'r>>, &'static str> {
        for source in sources {
            let found = match source {
                CompiledSource::Authorization => {
                    header_token(self.headers, &AUTHORIZATION, Some("Bearer"))?
                }
                CompiledSource::Header { name, scheme } => {
                    header_token(self.headers, name, scheme.as_deref())?
                }
                CompiledSource::Cookie(name) => match self.cookies().get(name) {
                    None => None,
                    Some(value) => Some(Cow::Borrowed(cookie_token(value)?)),
                },
                CompiledSource::Query(name) => query_token(self.uri, name)?,
            };
            if let Some(token) = found {
                return Ok(Some(Credential::Token(token)));
            }
        }
        if let Some(name) = mode_cookie
            && let Some(value) = self.cookies().get(name)
        {
            return Ok(Some(Credential::ModeCookie(cookie_token(value)?)));
        }
        Ok(None)
    }
}

/// A token must be non-empty and hold no whitespace.
fn plausible(token: &str) -> bool {
    !token.is_empty() && !token.bytes().any(|b| b.is_ascii_whitespace())
}

/// Reads `<scheme> <token>` (or the raw token when there is no scheme) from the one header
/// `name`; several such headers are malformed, since they could disagree.
fn header_token<'r>(
    headers: &'r HeaderMap,
    name: &HeaderName,
    scheme: Option<&str>,
) -> Result<Option<Cow<'r, str>>, &'static str> {
    let is_authorization = name == AUTHORIZATION;
    let mut values = headers.get_all(name).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(if is_authorization {
            "more than one Authorization header"
        } else {
            "more than one token header"
        });
    }
    let malformed = match (is_authorization, scheme.is_some()) {
        (true, _) => "malformed Authorization header, expected: Bearer <token>",
        (false, true) => "malformed token header, expected: <scheme> <token>",
        (false, false) => "malformed token header",
    };
    let value = value.as_bytes();
    let token = match scheme {
        None => value.trim_ascii(),
        Some(scheme) => match value.iter().position(|b| *b == b' ') {
            Some(at) if value[..at].eq_ignore_ascii_case(scheme.as_bytes()) => &value[at + 1..],
            _ => return Err(malformed),
        },
    };
    // One pass: visible ASCII only (no whitespace, no control or non-ASCII byte), which is
    // also what makes it a `str`.
    if token.is_empty() || !all_visible_ascii(token) {
        return Err(malformed);
    }
    std::str::from_utf8(token)
        .map(|token| Some(Cow::Borrowed(token)))
        .map_err(|_| malformed)
}

/// Whether every byte is visible ASCII (`!` to `~`). Folded without an early exit, so that
/// the compiler checks many bytes per instruction: tokens are hundreds of bytes.
fn all_visible_ascii(bytes: &[u8]) -> bool {
    bytes
        .iter()
        .fold(true, |ok, b| ok & (b.wrapping_sub(b'!') <= b'~' - b'!'))
}

fn cookie_token(value: &[u8]) -> Result<&str, &'static str> {
    match std::str::from_utf8(value) {
        Ok(token) if plausible(token) => Ok(token),
        _ => Err("malformed token cookie"),
    }
}

/// The one query parameter `name`, percent-decoded.
fn query_token<'r>(uri: &'r Uri, name: &str) -> Result<Option<Cow<'r, str>>, &'static str> {
    let Some(query) = uri.query() else {
        return Ok(None);
    };
    let mut found = None;
    for pair in query.split('&') {
        let (n, v) = pair.split_once('=').unwrap_or((pair, ""));
        if n != name {
            continue;
        }
        if found.is_some() {
            return Err("more than one token query parameter");
        }
        found = Some(v);
    }
    let Some(raw) = found else {
        return Ok(None);
    };
    let token = crate::percent::decode_form(raw).ok_or("malformed token query parameter")?;
    if plausible(&token) {
        Ok(Some(token))
    } else {
        Err("malformed token query parameter")
    }
}

/// The value of the first cookie `name` that is valid UTF-8, read as credentials read cookies.
#[cfg_attr(not(feature = "login"), allow(dead_code))]
pub(crate) fn cookie_value<'r>(headers: &'r HeaderMap, name: &str) -> Option<&'r str> {
    Cookies::parse(headers)
        .get(name)
        .and_then(|v| std::str::from_utf8(v).ok())
}

/// The cookies of a request, read from the bytes of every `Cookie` header.
struct Cookies<'r> {
    pairs: Vec<(&'r [u8], &'r [u8])>,
    /// A pair without `=` or with a name that is not a token: the header was not understood.
    unparsable: bool,
}

impl<'r> Cookies<'r> {
    fn parse(headers: &'r HeaderMap) -> Self {
        let mut pairs = Vec::new();
        let mut unparsable = false;
        for header in headers.get_all(COOKIE) {
            for pair in header.as_bytes().split(|b| *b == b';') {
                let pair = pair.trim_ascii();
                if pair.is_empty() {
                    continue;
                }
                let Some(eq) = pair.iter().position(|b| *b == b'=') else {
                    unparsable = true;
                    continue;
                };
                // `session_id =1` is the cookie `session_id`.
                let name = pair[..eq].trim_ascii();
                if name.is_empty() || !name.iter().all(|b| is_token_char(*b)) {
                    unparsable = true;
                    continue;
                }
                let value = pair[eq + 1..].trim_ascii();
                let value = value
                    .strip_prefix(b"\"")
                    .and_then(|v| v.strip_suffix(b"\""))
                    .unwrap_or(value);
                pairs.push((name, value));
            }
        }
        Self { pairs, unparsable }
    }

    fn get(&self, name: &str) -> Option<&'r [u8]> {
        self.pairs
            .iter()
            .find(|(n, _)| *n == name.as_bytes())
            .map(|(_, v)| *v)
    }
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    fn headers(pairs: &[(&str, &[u8])]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (name, value) in pairs {
            h.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_bytes(value).unwrap(),
            );
        }
        h
    }

    fn find(
        h: &HeaderMap,
        uri: &str,
        sources: &[TokenSource],
        mode: Option<&str>,
    ) -> Result<Option<String>, &'static str> {
        let uri: Uri = uri.parse().unwrap();
        let sources: Vec<_> = sources.iter().map(|s| s.compile().unwrap()).collect();
        let found = RequestView::new(h, &uri).find(&sources, mode)?;
        Ok(found.map(|c| match c {
            Credential::Token(t) => format!("token:{t}"),
            Credential::ModeCookie(c) => format!("mode:{c}"),
        }))
    }

    #[test]
    fn a_bad_byte_anywhere_in_a_long_token_is_found() {
        // Past the length the compiler checks at once, a bad byte anywhere is found.
        let long = "a".repeat(300);
        for at in [1, 31, 32, 63, 298] {
            let mut token = long.clone().into_bytes();
            token[at] = b' ';
            let h = headers(&[("x-token", &token[..])]);
            let src = [TokenSource::header("X-Token")];
            assert_eq!(
                find(&h, "/", &src, None),
                Err("malformed token header"),
                "{at}"
            );
        }
    }

    #[test]
    fn first_present_source_wins_and_malformed_never_falls_back() {
        let cf = [
            TokenSource::header("Cf-Access-Jwt-Assertion"),
            TokenSource::cookie("CF_Authorization"),
        ];
        let both = headers(&[
            ("cf-access-jwt-assertion", b"a.b.c"),
            ("cookie", b"CF_Authorization=d.e.f"),
        ]);
        assert_eq!(find(&both, "/", &cf, None), Ok(Some("token:a.b.c".into())));
        let cookie = headers(&[("cookie", b"x=1; CF_Authorization=d.e.f")]);
        assert_eq!(
            find(&cookie, "/", &cf, None),
            Ok(Some("token:d.e.f".into()))
        );
        let bad = headers(&[
            ("cf-access-jwt-assertion", b"a b"),
            ("cookie", b"CF_Authorization=d.e.f"),
        ]);
        assert_eq!(find(&bad, "/", &cf, None), Err("malformed token header"));
        let empty = headers(&[("cookie", b"CF_Authorization=")]);
        assert_eq!(find(&empty, "/", &cf, None), Err("malformed token cookie"));
        assert_eq!(find(&HeaderMap::new(), "/", &cf, None), Ok(None));
    }

    #[test]
    fn authorization_and_schemes() {
        let auth = [TokenSource::authorization()];
        let h = headers(&[("authorization", b"bEaReR a.b.c")]);
        assert_eq!(find(&h, "/", &auth, None), Ok(Some("token:a.b.c".into())));
        // Any visible ASCII is a token character; whitespace, controls and non-ASCII are not.
        let h = headers(&[("authorization", b"bearer !a.b~")]);
        assert_eq!(find(&h, "/", &auth, None), Ok(Some("token:!a.b~".into())));
        for bad in [
            &b"Basic a.b.c"[..],
            b"Bearer",
            b"Bearer ",
            b"Bearer a b",
            b"Bearer  a",
            b"Bearer a\tb",
            b"Bearer a\xc3\xa9b",
            b"Bearera.b.c",
        ] {
            let h = headers(&[("authorization", bad)]);
            assert_eq!(
                find(&h, "/", &auth, None),
                Err("malformed Authorization header, expected: Bearer <token>"),
                "{bad:?}"
            );
        }
        let two = headers(&[
            ("authorization", b"Bearer a"),
            ("authorization", b"Bearer a"),
        ]);
        assert_eq!(
            find(&two, "/", &auth, None),
            Err("more than one Authorization header")
        );
        let scheme = [TokenSource::header_with_scheme("X-Token", "Token")];
        let h = headers(&[("x-token", b"token a.b.c")]);
        assert_eq!(find(&h, "/", &scheme, None), Ok(Some("token:a.b.c".into())));
        let h = headers(&[("x-token", b"a.b.c")]);
        assert_eq!(
            find(&h, "/", &scheme, None),
            Err("malformed token header, expected: <scheme> <token>")
        );
    }

    #[test]
    fn query_is_decoded_and_single() {
        let q = [TokenSource::query("access_token")];
        let h = HeaderMap::new();
        assert_eq!(
            find(&h, "/ws?x=1&access_token=a.b%2Ec", &q, None),
            Ok(Some("token:a.b.c".into()))
        );
        assert_eq!(
            find(&h, "/ws?access_token=a&access_token=b", &q, None),
            Err("more than one token query parameter")
        );
        for bad in ["/ws?access_token=%zz", "/ws?access_token="] {
            assert_eq!(
                find(&h, bad, &q, None),
                Err("malformed token query parameter"),
                "{bad}"
            );
        }
        assert_eq!(find(&h, "/ws?other=1", &q, None), Ok(None));
    }

    #[test]
    fn cookie_mode_is_read_after_the_sources() {
        let auth = [TokenSource::authorization()];
        let h = headers(&[("cookie", b"demo_auth=m.n.o")]);
        assert_eq!(
            find(&h, "/", &auth, Some("demo_auth")),
            Ok(Some("mode:m.n.o".into()))
        );
        let h = headers(&[
            ("cookie", b"demo_auth=m.n.o"),
            ("authorization", b"Bearer a.b.c"),
        ]);
        assert_eq!(
            find(&h, "/", &auth, Some("demo_auth")),
            Ok(Some("token:a.b.c".into()))
        );
    }

    #[test]
    fn cookies_from_bytes_with_trimmed_names() {
        let h = headers(&[("cookie", b"a=1; session_id =2"), ("cookie", b"c=\"3\"")]);
        let uri = Uri::from_static("/");
        let mut view = RequestView::new(&h, &uri);
        assert!(view.may_carry_cookie("session_id"));
        assert!(!view.may_carry_cookie("other"));
        assert_eq!(view.cookies().get("c"), Some(&b"3"[..]));
        // Non-UTF-8 values are still parsed (and refused only as tokens).
        let h = headers(&[("cookie", b"v=\xff\xfe; w=1")]);
        let mut view = RequestView::new(&h, &uri);
        assert!(!view.may_carry_cookie("session_id"));
        assert_eq!(view.cookies().get("w"), Some(&b"1"[..]));
        // What cannot be parsed may hide the session cookie.
        for bad in [&b"session_id"[..], b"a=1; junk", b"se(ss)ion=1"] {
            let h = headers(&[("cookie", bad)]);
            let mut view = RequestView::new(&h, &uri);
            assert!(view.may_carry_cookie("session_id"), "{bad:?}");
        }
    }

    #[test]
    fn names_are_checked() {
        let refused = [
            (
                TokenSource::header("bad header"),
                "\"bad header\" is not a header name",
            ),
            (TokenSource::cookie("a;b"), "\"a;b\" is not a cookie name"),
            (TokenSource::query(""), "\"\" is not a query parameter name"),
            (
                TokenSource::header_with_scheme("x", "a b"),
                "scheme \"a b\" is not an HTTP token",
            ),
        ];
        for (source, message) in refused {
            let err = source.compile().err().unwrap();
            assert_eq!(err.field(), Some("sources"), "{source:?}");
            assert_eq!(err.message(), message, "{source:?}");
        }
        assert!(
            TokenSource::header("Cf-Access-Jwt-Assertion")
                .compile()
                .is_ok()
        );
    }
}
